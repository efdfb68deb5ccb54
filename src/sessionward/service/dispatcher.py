"""The dispatcher: carries signed work to the chain through the relayer, and brings outcomes
back (transaction status, reservation settled or released, session installed or removed).

Relay job ids say what a job is for: ``deploy:<wallet>``, ``enable:<session>``,
``exec:<txn>``, ``batch:<hash of its calls>``, ``revoke:<session>``. The relayer is FIFO per key, so a
session is installed before its calls and removed after them.

Calls of one account that are pending together go in one transaction through the network's
``RelayBatch`` contract (:mod:`sessionward.chain.relay_batch`; up to eight a batch): each runs
on its own there (one that reverts undoes nothing of the others) and is recorded from the
batch contract's own event for it. A job carries the ids of its calls (``refs``, stored with
it), and a call is carried by one job at most, ever: a call once batched is never queued again
on its own. With several service nodes on one database, only the
node holding the relayer lease of the chain runs it, and the lease fences its writes (see
:class:`DispatcherLoop`).

A relayed call's outcome is written in one database transaction (status, reservation, audit
record, decision event); :meth:`Dispatcher.recover` finishes whatever an older version or a bug
left half-done (a final job whose call is still pending, a held reservation no call carries).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence

from sessionward.chain.errors import ChainError, FeeCapExceeded
from sessionward.chain.relay_batch import (
    MAX_CALLS,
    batch_gas_limit,
    encode_relay,
    relayed_outcomes,
)
from sessionward.chain.relay_jobs import DuplicateRelayJob, JobState, RelayJob
from sessionward.chain.revert import decode_revert_reason
from sessionward.chain.user_operations import UserOperation
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import SignatureError, personal_message_hash, recover_signer
from sessionward.reasons import ReasonCode
from sessionward.store.database import Database
from sessionward.store.decisions import DecisionEvent
from sessionward.store.lease import LeaseFence, Leases
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.store.relay_signal import RelaySignal
from sessionward.store.transaction_records import TransactionRecord
from sessionward.store.user_operations import UserOperationPlanRecord

from .onchain import call_job_id, job_of_call, relayed_session_call
from .reconciler import Reconciler
from .runtime import Runtime
from .user_operations import UserOperationRefused, with_session_signature

_log = logging.getLogger(__name__)

RECOVERY_GRACE_S = 60
"""A held reservation is looked at by recovery only once it is this old (seconds)."""
RECEIPT_POLL_S = 0.025
"""How soon the loop looks again for the receipt of a submitted call (instead of its slow
poll), so a mined call is recorded within this of its block."""


class Dispatcher:
    """One :meth:`step` moves every piece of on-chain work one stage forward, on the network
    of its runtime (:attr:`Runtime.network`): with several networks there is one dispatcher
    per network, each with its own relayer, reconciler and lease, and each carries only the
    work of its network's wallets."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._lock = threading.Lock()
        self.awaiting_user_operations = False
        """Whether a submitted UserOperation still waits for its receipt (the loop then
        looks for receipts every :data:`RECEIPT_POLL_S`)."""
        self._wallet_chains: dict[str, int] = {}  # a wallet's chain never changes
        self.reconciler = Reconciler(rt)
        self.signal = RelaySignal(rt.store.db)
        """Rung by :meth:`wake`; the relaying loop waits on it between rounds."""

    @property
    def runtime(self) -> Runtime:
        return self._rt

    def ours(self, wallet_id: str) -> bool:
        """Whether the wallet's work is this dispatcher's (always, with one network)."""
        rt = self._rt
        if not rt.several_networks:
            return True
        chain_id = self._wallet_chains.get(wallet_id)
        if chain_id is None:
            wallet = rt.store.wallets.get(wallet_id)
            if wallet is None:
                return False
            chain_id = self._wallet_chains[wallet_id] = wallet.chain_id
        return chain_id == rt.chain_id

    def wake(self) -> None:
        """Work for the chain has committed (an Execute): relay it now, on whichever node
        relays (see :mod:`sessionward.store.relay_signal`). Never blocks."""
        self.signal.ring()

    def step(self) -> None:
        with self._lock:
            # The sessions first, then the calls: a session read as revoking has every call
            # it signed committed already (an Execute signs only while the session's row says
            # active, and the revocation's update of that row waits for it), so all of them
            # are queued below, ahead of its removal.
            due = self.reconciler.due()
            self._queue_executions()
            self.reconciler.compare(due)
            try:
                changed = self._rt.relayer.process()
            except ChainError as exc:
                _log.warning("relayer round failed: %s", exc)
                return
            for job in changed:
                self._apply(job)

    def poll_receipts(self) -> None:
        """Only look for the receipts of submitted calls and record their outcomes (what the
        loop does between full rounds while a call waits to be mined)."""
        with self._lock:
            if self.awaiting_user_operations:
                self._advance_user_operations(self._pending())
            try:
                changed = self._rt.relayer.poll()
            except ChainError as exc:
                _log.warning("receipt poll failed: %s", exc)
                return
            for job in changed:
                self._apply(job)

    def reconcile(self) -> None:
        """At start-up: settle the relayer's outstanding jobs, then every outcome, then compare
        every session the chain can contradict with the chain (:mod:`.reconciler`)."""
        with self._lock:
            for job in self._rt.relayer.reconcile():
                self._apply(job)
            self.reconciler.run(everything=True)

    # --- queueing -------------------------------------------------------------------------

    def _pending(self) -> list[TransactionRecord]:
        """This dispatcher's pending calls."""
        return [t for t in self._rt.store.transactions.pending() if self.ours(t.wallet_id)]

    def _queue_executions(self) -> None:
        unqueued: list[TransactionRecord] = []
        applied: set[str] = set()  # a batch's calls share its job: applied once
        for txn in self._advance_user_operations(self._pending()):
            job = self._job_of(txn.id)
            if job is None:
                unqueued.append(txn)
            elif job.state.is_final and job.job_id not in applied:
                applied.add(job.job_id)
                self._apply(job)
        for calls in self._batches(unqueued):
            if len(calls) == 1:
                self._enqueue_execution(calls[0])
            else:
                self._enqueue_batch(calls)

    def _job_of(self, txn_id: str) -> RelayJob | None:
        """The relay job that carries call ``txn_id``: the batch it went in, or its own job
        (``exec:<txn>``; one queued before jobs carried refs has none)."""
        return job_of_call(self._rt.relayer.store, txn_id)

    def _batches(self, calls: list[TransactionRecord]) -> list[list[TransactionRecord]]:
        """``calls`` (in the order they became pending) as the relay jobs to queue: each
        account's calls together, up to :data:`~sessionward.chain.relay_batch.MAX_CALLS` a
        batch, when the network has a ``RelayBatch``; else one job per call."""
        if self._rt.deployment.relay_batch is None:
            return [[txn] for txn in calls]
        by_wallet: dict[str, list[TransactionRecord]] = {}
        for txn in calls:
            by_wallet.setdefault(txn.wallet_id, []).append(txn)
        return [
            mine[i : i + MAX_CALLS]
            for mine in by_wallet.values()
            for i in range(0, len(mine), MAX_CALLS)
        ]

    # --- the ERC-4337 path ----------------------------------------------------------------

    def _advance_user_operations(self, pending: list[TransactionRecord]) -> list[TransactionRecord]:
        """Submit, or look for the receipt of, every pending call sent as a UserOperation
        (one read finds which have a plan); returns the others, which go through the
        relayer."""
        planned = self._rt.store.user_operations.planned_among([t.id for t in pending])
        relayed, awaiting = [], False
        for txn in pending:
            user_operation = self._user_operation_of(txn) if txn.id in planned else None
            if user_operation is None:
                relayed.append(txn)
            else:
                awaiting |= self._advance_user_operation(txn, *user_operation)
        self.awaiting_user_operations = awaiting
        return relayed

    def _user_operation_of(
        self, txn: TransactionRecord
    ) -> tuple[UserOperation, UserOperationPlanRecord] | None:
        """The signed UserOperation of a pending call, if it was executed as one: the plan
        whose ``userOpHash`` the call's signature signs (a call signed for the relayer, or
        with no plan, is ``None``)."""
        rt = self._rt
        plans = rt.store.user_operations.of_transaction(txn.id)
        if not plans or txn.signature is None:
            return None
        record = rt.store.sessions.get(txn.session_id)
        assert record is not None
        for plan in plans:
            digest = personal_message_hash(bytes.fromhex(plan.user_op_hash[2:]))
            try:
                signer = recover_signer(digest, txn.signature)
            except SignatureError:
                continue
            if signer == record.session_key_address:
                unsigned = UserOperation.from_rpc(json.loads(plan.operation))
                return with_session_signature(unsigned, txn.signature), plan
        return None

    def _advance_user_operation(
        self, txn: TransactionRecord, op: UserOperation, plan: UserOperationPlanRecord
    ) -> bool:
        """One step of a call sent as a UserOperation: submit it (again, if it went unmined
        for ``call_deadline_s``), or record its outcome from its receipt. Returns whether it
        still waits for a receipt."""
        rt = self._rt
        path = rt.user_operations
        now = rt.now()
        if path is None:  # the network's bundler was removed from the configuration
            self._finish_execution(
                txn.id, JobState.FAILED, None, ReasonCode.USER_OPERATION_REFUSED.value
            )
            return False
        try:
            if plan.submitted_at is None:
                path.submit(op)
                rt.store.user_operations.mark_submitted(plan.user_op_hash, now=now)
                return True
            # The receipt first: an operation mined while the service was down (or late) is
            # recorded, never only sent again.
            receipt = path.outcome(plan.user_op_hash)
            if receipt is None and now - plan.submitted_at > rt.settings.call_deadline_s:
                path.submit(op)
                return True
        except UserOperationRefused as refused:
            self._finish_execution(txn.id, JobState.FAILED, None, refused.code.value)
            return False
        except ChainError as exc:
            _log.warning("bundler round failed for %s: %s", txn.id, exc)
            return True
        if receipt is None:
            return True
        reason = None if receipt.reason is None else receipt.reason.value
        state = JobState.EXECUTED if receipt.success else JobState.FAILED
        self._finish_execution(txn.id, state, receipt.transaction_hash, reason)
        return False

    def _enqueue_execution(self, txn: TransactionRecord) -> None:
        call = relayed_session_call(self._rt, txn)
        try:
            self._rt.relayer.enqueue(
                call_job_id(txn.id),
                to=call.target,
                data=call.data,
                gas_limit=call.gas,
                refs=(txn.id,),
            )
        except DuplicateRelayJob:  # queued meanwhile (another round or node): nothing to do
            return
        except ChainError as exc:  # fee cap or node refusal: the call will not be relayed
            self._finish_execution(txn.id, JobState.REFUSED, None, str(exc))

    def _enqueue_batch(self, txns: list[TransactionRecord]) -> None:
        """One job for several calls of one account, carrying their transaction ids in order
        (its id names exactly those calls: :func:`batch_job_id`). Queued as one job per call
        instead when the batch is over the fee cap (each then checked against the cap alone)
        or when one of its calls was queued meanwhile (by another node's round): every call
        this round saw pending then has a job before any removal this round queues."""
        batch = self._rt.deployment.relay_batch
        assert batch is not None
        calls = [relayed_session_call(self._rt, txn) for txn in txns]
        txn_ids = tuple(txn.id for txn in txns)
        try:
            self._rt.relayer.enqueue(
                batch_job_id(txn_ids),
                to=batch,
                data=encode_relay(calls),
                gas_limit=batch_gas_limit(calls),
                refs=txn_ids,
            )
        except (DuplicateRelayJob, FeeCapExceeded):
            for txn in txns:
                self._enqueue_execution(txn)
        except ChainError as exc:
            for txn in txns:
                self._finish_execution(txn.id, JobState.REFUSED, None, str(exc))

    # --- outcomes -------------------------------------------------------------------------

    def _apply(self, job: RelayJob) -> None:
        if not job.state.is_final:
            return
        kind, _, subject = job.job_id.partition(":")
        if kind == "exec":
            self._finish_execution(subject, job.state, job.tx_hash, job.revert_reason or job.error)
        elif kind == "batch":
            self._finish_batch(job)
        elif kind in ("enable", "revoke"):
            # Installed or removed is recorded from the chain's own view, not the receipt alone.
            self.reconciler.settle(job)
        if kind not in ("exec", "batch") and job.state is not JobState.EXECUTED:
            _log.warning(
                "relay job %s ended %s: %s", job.job_id, job.state, job.revert_reason or job.error
            )

    def _finish_batch(self, job: RelayJob) -> None:
        """Record each call of a final batch job: from the batch contract's own events when
        its transaction was mined (a call that reverted failed with its own reason, the others
        executed); all failed when it reverted or was never sent. Events that do not account
        for every call once record nothing (the calls stay pending; logged)."""
        rt = self._rt
        txn_ids = rt.relayer.refs_of(job.job_id)
        if job.state is not JobState.EXECUTED or job.tx_hash is None:
            for txn_id in txn_ids:
                self._finish_execution(
                    txn_id, job.state, job.tx_hash, job.revert_reason or job.error
                )
            return
        receipt = rt.chain.get_receipt(job.tx_hash)
        outcomes = (
            None if receipt is None else relayed_outcomes(receipt, batch=job.to, calls=len(txn_ids))
        )
        if outcomes is None:  # left pending: looked at again next round
            why = "no receipt" if receipt is None else "events not accounting for every call"
            _log.error("relay batch %s mined, but %s: its calls stay pending", job.job_id, why)
            return
        for txn_id, outcome in zip(txn_ids, outcomes, strict=True):
            if outcome.success:
                self._finish_execution(txn_id, JobState.EXECUTED, job.tx_hash, None)
            else:
                reason = decode_revert_reason(outcome.revert_data) or "reverted"
                self._finish_execution(txn_id, JobState.FAILED, job.tx_hash, reason)

    def _finish_execution(
        self, txn_id: str, state: JobState, tx_hash: str | None, failure: str | None
    ) -> None:
        """Record a relayed call's outcome: status, reservation, audit record and decision
        event in one database transaction (:meth:`sessionward.store.execution.Executions.finish`);
        a no-op for a transaction that is not pending any more. A call that did not execute
        has its session compared with the chain at once (:meth:`Reconciler.call_failed`)."""
        rt = self._rt
        txn = rt.store.transactions.get(txn_id)
        if txn is None or txn.status != "pending":
            return
        now = rt.now()
        executed = state is JobState.EXECUTED
        rt.store.executions.finish(
            txn_id,
            executed=executed,
            now=now,
            tx_hash=tx_hash,
            failure=failure,
            decision=_outcome_event(txn, executed=executed, failure=failure, now=now),
        )
        if not executed:  # the chain may no longer have the session: ask it now
            self.reconciler.call_failed(txn.session_id)

    # --- recovery -------------------------------------------------------------------------

    def recover(self, *, grace_s: int = RECOVERY_GRACE_S) -> int:
        """Finish whatever a crash left between two steps of a call; returns how many were.

        - a pending transaction whose relay job is final (the outcome was not recorded):
          its outcome is recorded now;
        - a ``held`` reservation that no pending transaction carries (older than ``grace_s``):
          settled if its call executed, released otherwise, with an audit record.
        """
        with self._lock:
            return self._recover(grace_s)

    def _recover(self, grace_s: int) -> int:
        rt = self._rt
        finished = 0
        applied: set[str] = set()  # a batch's calls share its job: applied once
        for txn in rt.store.transactions.pending():
            if not self.ours(txn.wallet_id):
                continue
            job = self._job_of(txn.id)
            if job is not None and job.state.is_final:
                if job.job_id not in applied:
                    applied.add(job.job_id)
                    self._apply(job)
                finished += 1
        now = rt.now()
        if rt.several_networks and rt.chain_id != rt.networks[0].chain_id:
            return finished  # stranded reservations: the first network's dispatcher's work
        for reservation_id in rt.store.executions.stranded_reservations(
            created_before=now - grace_s
        ):
            outcome = rt.store.executions.close_stranded(reservation_id, now=now)
            if outcome is not None:
                _log.warning("stranded reservation %s %s by recovery", reservation_id, outcome)
                finished += 1
        return finished


def batch_job_id(txn_ids: Sequence[str]) -> str:
    """The relay job id of a batch of exactly these calls, in this order:
    ``batch:<keccak256 of their ids, 20 bytes>``. Two nodes queueing the same batch name the
    same job (queued once); a batch of other calls never does."""
    return "batch:" + keccak256(",".join(txn_ids).encode()).hex()[:40]


def _outcome_event(
    txn: TransactionRecord, *, executed: bool, failure: str | None, now: int
) -> DecisionEvent:
    """The decision event of a relayed call's outcome (``request_kind`` ``relay``, outside the
    delegated-request population of the weekly report): the chain allowed the call or not; a
    failure names its reason code when the chain gave a known one."""
    reasons: tuple[str, ...] = ()
    if not executed:
        known = failure is not None and failure in ReasonCode.__members__
        reasons = (str(failure),) if known else (ReasonCode.CALL_FAILED_ON_CHAIN.value,)
    return DecisionEvent(
        id=f"dec_relay_{txn.id}",
        at=now,
        verdict="allow" if executed else "deny",
        reasons=reasons,
        latency_us=0,
        request_kind="relay",
        session_id=txn.session_id,
        wallet_id=txn.wallet_id,
        credential_id=txn.credential_id,
        action_class=txn.action_class,
    )


class DispatcherLoop:
    """Runs :meth:`Dispatcher.step` in a daemon thread, on the node that holds the relayer
    lease of its chain (:mod:`sessionward.store.lease`): at once when the dispatcher is woken
    (:meth:`Dispatcher.wake`, in process or, on PostgreSQL, from another node), and otherwise
    every ``interval`` seconds (the slow poll that finds whatever no wake announced). While a
    submitted call waits for its receipt, it also looks for receipts (only:
    :meth:`Dispatcher.poll_receipts`) every :data:`RECEIPT_POLL_S`.

    Every node runs one; a heartbeat thread renews the node's lease (or tries to take an
    expired one) every third of ``lease_ttl_s``, whatever a relaying round is doing. The lease fences the node's relay-job store: every
    claim of a job is conditioned on the lease's epoch in the same statement, so a node that
    lost the lease (a dropped connection, a stall past the expiry) cannot submit even if this
    loop has not noticed yet. At the start of each term the holder reconciles the relayer's
    outstanding jobs and runs the recovery pass (:meth:`Dispatcher.recover`), and it repeats
    the recovery every ``recover_every_s``.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        db: Database,
        interval: float,
        *,
        lease_ttl_s: float | None = None,
        recover_every_s: float = 60.0,
        holder: str | None = None,
    ) -> None:
        rt = dispatcher.runtime
        self._dispatcher = dispatcher
        self._interval = interval
        self._ttl_ms = int(1000 * (lease_ttl_s or rt.settings.relayer_lease_ttl_s))
        self._recover_every = recover_every_s
        self._leases = Leases(db)
        self._fence = LeaseFence(
            f"relayer:{rt.chain_id}",  # one lease per network
            holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}",
        )
        store = rt.relayer.store
        if isinstance(store, SqlRelayJobStore):
            store.fence = self._fence
        self._term: int | None = None
        self._doubt = threading.Event()
        self._recovered_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holds_lease(self) -> bool:
        """Whether this node believes it holds the relayer lease right now (its writes are
        still checked against the database)."""
        return self._fence.epoch is not None

    @property
    def network_name(self) -> str:
        return self._dispatcher.runtime.network_name

    @property
    def lease_epoch(self) -> int | None:
        return self._fence.epoch

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run,
            name=f"sessionward-dispatcher-{self._dispatcher.runtime.network_name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dispatcher.signal.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self._leases.release(self._fence)
        except Exception:  # the database is gone: the lease expires on its own
            _log.warning("could not release the relayer lease", exc_info=True)

    def _run(self) -> None:
        self._dispatcher.signal.listen()
        self._lease()
        heartbeat = threading.Thread(
            target=self._heartbeat, name="sessionward-relayer-lease", daemon=True
        )
        heartbeat.start()
        receipts_only = False
        last_round = float("-inf")
        while not self._stop.is_set():
            wait = self._interval
            try:
                epoch = self._fence.epoch
                if epoch is None:
                    wait = self._ttl_ms / 3000
                else:
                    if epoch != self._term or self._doubt.is_set():
                        # A new term, or the lease was in doubt: re-read what may have moved.
                        self._doubt.clear()
                        self._term = epoch
                        _log.info("relayer lease held: %s, epoch %d", self._fence.name, epoch)
                        self._begin_term()
                        receipts_only = False
                    if receipts_only and time.monotonic() - last_round < self._interval:
                        self._dispatcher.poll_receipts()  # nothing new was announced
                    else:
                        last_round = time.monotonic()
                        self._lead()
            except Exception:  # never let the loop die: a node that stops relaying stays silent
                _log.exception("dispatcher loop round failed")
            signal = self._dispatcher.signal
            signal.leading = self._fence.epoch is not None
            awaiting = signal.leading and (
                self._dispatcher.runtime.relayer.awaiting_receipt
                or self._dispatcher.awaiting_user_operations
            )
            if awaiting:
                wait = min(wait, RECEIPT_POLL_S)
            receipts_only = not signal.wait(wait) and awaiting
        heartbeat.join(timeout=10)

    def _heartbeat(self) -> None:
        """Renew (or try to take) the lease every third of its time, on its own thread, so a
        long relaying round does not let it expire under a live holder."""
        while not self._stop.wait(self._ttl_ms / 3000):
            self._lease()

    def _lease(self) -> bool:
        """One renewal (or takeover attempt); True while held. A failed renewal or a lost lease
        leaves the fence without a term (every claim refused) and puts the term in doubt."""
        held = self._fence.epoch is not None
        try:
            epoch = self._leases.acquire(self._fence, ttl_ms=self._ttl_ms)
        except Exception:  # database unreachable: hold nothing until it answers again
            _log.warning("relayer lease not renewed", exc_info=True)
            self._doubt.set()
            return False
        if epoch is None:
            if held:
                _log.warning("relayer lease lost: %s", self._fence.name)
            self._doubt.set()
            return False
        return True

    def _begin_term(self) -> None:
        try:
            self._dispatcher.reconcile()
        except ChainError as exc:
            _log.warning("reconciliation failed: %s", exc)
        except Exception:  # the database failed under it: begin the term again next round
            _log.exception("reconciliation failed")
            self._doubt.set()
            return
        self._recover()

    def _recover(self) -> None:
        self._recovered_at = time.monotonic()
        try:
            finished = self._dispatcher.recover()
        except Exception:  # the next term or the next period tries again
            _log.exception("recovery pass failed")
            return
        if finished:
            _log.warning("recovery pass finished %d interrupted call(s)", finished)

    def _lead(self) -> None:
        try:
            self._dispatcher.step()
        except Exception:  # keep relaying whatever one round did
            _log.exception("dispatcher round failed")
        if time.monotonic() - self._recovered_at >= self._recover_every:
            self._recover()
