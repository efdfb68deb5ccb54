"""The reconciler: the database and the chain agree on every session (docs/design.md section 8).

It runs on the relaying node, from the dispatcher's loop (:meth:`Reconciler.run` every round,
:meth:`Reconciler.settle` as soon as an install or removal job ends, and
:meth:`Reconciler.call_failed` as soon as a session's call fails). For every session the
chain can still contradict (``installing``, ``revoking`` every round; ``active``,
``suspended`` and recently revoked ones ``slow_batch`` at a time every ``slow_every_s``
seconds) it reads the account's own views (``session(key)``, ``epoch()``,
``grant_nonce_used(nonce)``) and moves the session only from what they say:

=============  ====================================  ==============================================
database       chain                                 repair
=============  ====================================  ==============================================
installing     installed                             ``active`` (an install by anyone: recognised)
installing     not installed, install job failed     ``revoking`` (install failed)
installing     removed / never installable           ``revoking`` then ``revoked``
active, susp.  removed                               revoked (by ``chain``), then ``revoked``
revoking       installed                             removal queued (again if one failed)
revoking       removed / never installable           ``revoked`` (``onchainRevokedAt``)
revoking       never installed, grant never sent     ``revoked`` (verified never installed)
revoked        installed                             back to ``revoking``, removal queued
=============  ====================================  ==============================================

A session revoked while its install job is still queued has that job cancelled (a
compare-and-set on the job row, in the revocation's own transaction: see
:func:`carry_revocation`), so its grant never leaves the service. A grant that was sent but is
not installed can be installed by anyone until it expires: such a session stays ``revoking``
(watched) until then, and is removed if it appears.

Every disagreement (the chain contradicting what the database believes, beyond work in flight)
raises a ``chain_disagreement`` alert; when the two agree again the alert's action is recorded,
so ``action_at - at`` is the time to agreement (weekly report). :class:`ReconcilerStats` counts
them for ``/metrics``. During a global freeze queued installs are held (cancelled with
``GLOBAL_FREEZE``) and queued again once it is lifted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from sessionward.chain.errors import ChainError, ExecutionReverted
from sessionward.chain.relay_jobs import JobState, RelayJob
from sessionward.domain.grant import enable_storage_words
from sessionward.reasons import ReasonCode
from sessionward.store.alerts import AlertRecord, AlertSink
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.store.sessions import SessionRecord

from .ids import new_id
from .onchain import (
    REVOKE_GAS,
    EnableTooCostly,
    Installed,
    call_job_id,
    enable_gas_limit,
    job_of_call,
    queue_relay_job,
    relayed_session_call,
)
from .runtime import Runtime
from .sessions import SessionDirectory, global_freeze_in_force, grant_message, install_job_id

_log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 16
"""Install or removal attempts per session (job ids ``…#2`` … ``…#16``)."""
DISAGREEMENT: Final = "chain_disagreement"
CANCELLED_BY_REVOCATION: Final = "cancelled: the session was revoked before it was sent"
HELD_BY_FREEZE: Final = ReasonCode.GLOBAL_FREEZE.value
_LIVE: Final = frozenset({"active", "suspended"})
"""The statuses in which a session signs, or may sign again once renewed (``suspended``): what
the database must not go on believing of a session the chain has removed."""


def removal_job_id(session_id: str, attempt: int = 1) -> str:
    """The relay job id of a session's removal: ``revoke:<session>`` (``#<n>`` for repeats)."""
    return f"revoke:{session_id}" if attempt == 1 else f"revoke:{session_id}#{attempt}"


def job_subject(job_id: str) -> tuple[str, str]:
    """``(kind, session id)`` of an ``enable:``/``revoke:`` job id (attempt suffix dropped)."""
    kind, _, subject = job_id.partition(":")
    return kind, subject.partition("#")[0]


def attempts(rt: Runtime, make_id: Callable[[str, int], str], session_id: str) -> list[RelayJob]:
    """Every attempt of one kind of job for a session, oldest first."""
    found: list[RelayJob] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = rt.relayer.job(make_id(session_id, attempt))
        if job is None:
            break
        found.append(job)
    return found


def _exposed(jobs: list[RelayJob]) -> bool:
    """Whether any of these jobs' transactions ever left the service (signed and so possibly
    seen by anyone): its calldata, with the owner's grant signature, is then public."""
    return any(j.tx_hashes for j in jobs)


def cancel_queued(rt: Runtime, job: RelayJob, why: str) -> bool:
    """Move a ``queued`` job to ``refused`` (compare-and-set: it fails if the relayer signed it
    meanwhile, and the relayer's own update then fails if this won). True iff cancelled."""
    if job.state is not JobState.QUEUED:
        return False
    store = SqlRelayJobStore(rt.store.db)
    return store.replace(
        job.evolve(state=JobState.REFUSED, error=why, updated_at_ms=int(time.time() * 1000))
    )


def queue_removal(rt: Runtime, record: SessionRecord) -> RelayJob | None:
    """Queue the session's removal on chain unless one is queued or in flight; a new attempt
    after a failed one. Returns the job waiting on chain (None when out of attempts)."""
    removals = attempts(rt, removal_job_id, record.id)
    if removals and not removals[-1].state.is_final:
        return removals[-1]
    # None yet, or the last one ended (failed, or mined and yet the session is live): a new one.
    if len(removals) >= MAX_ATTEMPTS:
        return None
    wallet = rt.store.wallets.get(record.wallet_id)
    assert wallet is not None
    rt = rt.on(wallet.chain_id)  # removed by the relayer of the wallet's own network
    holder = rt.calls.sessions_of(wallet)  # the account, or the module it installed
    return queue_relay_job(
        rt.store.db,
        sender=rt.relayer.address,
        job_id=removal_job_id(record.id, len(removals) + 1),
        to=holder.address,
        data=holder.revoke_session(record.session_key_address),
        gas_limit=REVOKE_GAS,
    )


def carry_revocation(rt: Runtime, record: SessionRecord) -> str:
    """In the revocation's own unit of work: write what carries it to the chain. Returns
    what was done (``none``, ``install cancelled``, ``removal queued``, ``watch``).

    - never approved: nothing (no owner signature exists for anyone to install it);
    - install job still queued: cancelled, so the grant never leaves the service;
    - install sent, mined, or the session seen installed (by anyone): removal queued, after
      the install in the relayer's order;
    - otherwise (install failed): the reconciler checks the chain.
    """
    if record.approved_at is None:
        return "none"
    installs = attempts(rt, install_job_id, record.id)
    latest = installs[-1] if installs else None
    if latest is not None and latest.state is JobState.QUEUED:
        if cancel_queued(rt, latest, CANCELLED_BY_REVOCATION):
            latest = rt.relayer.job(latest.job_id)
            if record.onchain_enabled_at is None and not _exposed(installs):
                return "install cancelled"
        else:
            latest = rt.relayer.job(latest.job_id)  # the relayer signed it meanwhile
    sent = latest is not None and latest.state in (
        JobState.SIGNED,
        JobState.SUBMITTED,
        JobState.EXECUTED,
    )
    if sent or record.onchain_enabled_at is not None:
        queue_signed_calls(rt, record)
        queue_removal(rt, record)
        return "removal queued"
    return "watch"


def queue_signed_calls(rt: Runtime, record: SessionRecord) -> None:
    """Give each call the session signed that has no relay job yet a job of its own, now: in
    the revocation's unit, just before the removal, so the relayer sends them first (the
    account refuses a removed session's calls). Every call the session signed is committed
    by then (an Execute signs only while the session's row says active, and the revocation's
    update of that row waited for it); one the dispatcher would relay later would reach the
    chain after the removal and fail ``SESSION_REVOKED``. Calls with a UserOperation plan go
    through the bundler, not the relayer: left to the dispatcher."""
    waiting = rt.store.transactions.pending_of_session(record.id)
    if not waiting:
        return
    wallet = rt.store.wallets.get(record.wallet_id)
    assert wallet is not None
    rt = rt.on(wallet.chain_id)
    planned = rt.store.user_operations.planned_among([txn.id for txn in waiting])
    jobs = SqlRelayJobStore(rt.store.db)
    for txn in waiting:
        if txn.id in planned or job_of_call(jobs, txn.id) is not None:
            continue
        call = relayed_session_call(rt, txn)
        queue_relay_job(
            rt.store.db,
            sender=rt.relayer.address,
            job_id=call_job_id(txn.id),
            to=call.target,
            data=call.data,
            gas_limit=call.gas,
            refs=(txn.id,),
        )


@dataclass
class ReconcilerStats:
    """Counts for ``/metrics`` (read at scrape time; updated under a lock)."""

    rounds: int = 0
    checked: int = 0
    disagreements: int = 0
    """Disagreements seen since start (each raised an alert)."""
    repairs: int = 0
    chain_errors: int = 0
    open_disagreements: int = 0
    last_agreement_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return {
                "rounds": self.rounds,
                "checked": self.checked,
                "disagreements": self.disagreements,
                "repairs": self.repairs,
                "chain_errors": self.chain_errors,
                "open_disagreements": self.open_disagreements,
            }


class Reconciler:
    """Compares non-final sessions with the chain and repairs the database or the chain.

    It works on its runtime's network: with several networks there is one per network (each
    on its dispatcher), and each looks only at the sessions of its network's wallets."""

    def __init__(
        self,
        rt: Runtime,
        sink: AlertSink | None = None,
        *,
        slow_every_s: float = 30.0,
        slow_batch: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = rt
        self.sink = sink
        """Where each disagreement alert goes once recorded (e.g. the signed webhooks)."""
        self._slow_every_s = slow_every_s
        self._slow_batch = slow_batch
        self._slow_after = ""
        self._clock = clock
        self._last_slow: float | None = None
        self._open: dict[str, str] = {}  # session id -> its open disagreement alert
        self._wallet_chains: dict[str, int] = {}  # a wallet's chain never changes
        self.stats = ReconcilerStats()

    def ours(self, record: SessionRecord) -> bool:
        """Whether the session's wallet is on this reconciler's network (always, with one)."""
        rt = self._rt
        if not rt.several_networks:
            return True
        chain_id = self._wallet_chains.get(record.wallet_id)
        if chain_id is None:
            wallet = rt.store.wallets.get(record.wallet_id)
            if wallet is None:
                return False
            chain_id = self._wallet_chains[record.wallet_id] = wallet.chain_id
        return chain_id == rt.chain_id

    # --- rounds ---------------------------------------------------------------------------

    def run(self, *, everything: bool = False) -> None:
        """One round: :meth:`compare` the sessions :meth:`due` names."""
        self.compare(self.due(everything=everything))

    def due(self, *, everything: bool = False) -> list[SessionRecord]:
        """The sessions a round compares, as the database has them now: every
        ``installing``/``revoking`` one, and every ``slow_every_s`` the next ``slow_batch`` of
        the sessions the database thinks settled (``active``, ``suspended``, revoked ones still
        within their window), in id order, wrapping around; with ``everything``, all of
        those at once."""
        store = self._rt.store.sessions
        records = store.in_status("installing", "revoking")
        now_s = self._clock()
        if everything or self._last_slow is None or now_s - self._last_slow >= self._slow_every_s:
            self._last_slow = now_s
            records += self._slow_page(everything=everything)
        return records

    def compare(self, records: list[SessionRecord]) -> None:
        """Compare each of ``records`` with the chain, queueing installs and removals or
        repairing; a chain error leaves a session (and the rest) for the next round."""
        with self.stats.lock:
            self.stats.rounds += 1
        for record in records:
            if not self.ours(record):
                continue  # another network's reconciler compares it with its chain
            if not self._one(record):
                break  # the node does not answer: the rest waits for the next round

    def _slow_page(self, *, everything: bool) -> list[SessionRecord]:
        store, now = self._rt.store.sessions, self._rt.now()
        if everything:
            self._slow_after = ""
            page: list[SessionRecord] = []
            while batch := store.watch_page(after=self._slow_after, limit=1000, now=now):
                page += batch
                self._slow_after = batch[-1].id
            self._slow_after = ""
            return page
        page = store.watch_page(after=self._slow_after, limit=self._slow_batch, now=now)
        # The end of the list: start again from the first one next time.
        self._slow_after = page[-1].id if len(page) == self._slow_batch else ""
        return page

    def settle(self, job: RelayJob) -> None:
        """An install or removal job ended: compare its session with the chain now."""
        kind, session_id = job_subject(job.job_id)
        if kind in ("enable", "revoke"):
            self._compare_now(session_id)

    def call_failed(self, session_id: str) -> None:
        """A call the session signed did not execute (reverted, refused by the bundler's
        validation, or never relayed): compare the session with the chain now, not at its
        turn in the slow pass. A session its owner removed behind the service's back then
        stops signing after its first failed call, instead of being allowed calls the chain
        refuses for up to ``slow_every_s``. The account's own views decide, not the failure's
        reason: nothing is repaired unless they contradict the database.

        If the chain did not have the session any more, the wallet's other live sessions are
        compared too: an owner's ``revoke_all`` (a new epoch) removes them all at once. Only
        then: a call failing for its own reasons costs one comparison, whatever the wallet's
        number of sessions."""
        before = self._compare_now(session_id)
        if before is None or before.status not in _LIVE:
            return
        after = self._rt.store.sessions.get(session_id)
        if after is None or after.status in _LIVE:
            return
        for other in self._rt.store.sessions.of_wallet(before.wallet_id):
            if other.id != session_id and other.status in _LIVE and not self._one(other):
                return  # the node does not answer: the slow pass will come to the rest

    def _compare_now(self, session_id: str) -> SessionRecord | None:
        """Compare one session with the chain now (if it is this network's): the record as
        it was before."""
        record = self._rt.store.sessions.get(session_id)
        if record is None or not self.ours(record):
            return None
        self._one(record)
        return record

    def _one(self, record: SessionRecord) -> bool:
        """Compare one session; False if the chain node could not answer."""
        try:
            self.check(record)
        except ChainError as exc:
            with self.stats.lock:
                self.stats.chain_errors += 1
            _log.warning("cannot compare session %s with the chain: %s", record.id, exc)
            return False
        return True

    # --- one session ----------------------------------------------------------------------

    def check(self, record: SessionRecord) -> None:
        """Compare one session with the chain and repair (raises ``ChainError`` when the node
        cannot answer; nothing is changed then). A session of another network is left to
        that network's reconciler."""
        if not self.ours(record):
            return
        rt = self._rt
        with self.stats.lock:
            self.stats.checked += 1
        wallet = rt.store.wallets.get(record.wallet_id)
        assert wallet is not None
        onchain = (
            rt.calls.sessions_of(wallet)
            .read(
                rt.chain,
                session_key=record.session_key_address,
                grant_nonce=record.grant_nonce,
                grant_epoch=record.epoch,
            )
            .state
        )
        now = rt.now()
        if record.status == "installing":
            self._installing(record, onchain, now)
        elif record.status in _LIVE:
            self._live(record, onchain, now)
        elif record.status == "revoking":
            self._revoking(record, onchain, now)
        elif record.status == "revoked" and onchain is Installed.ACTIVE:
            self._disagree(record, "revoked in the database, live on chain", now)
            with rt.store.db.unit(durable=True):
                rt.store.sessions.reopen_revocation(record.id)
                queue_removal(rt, record)
                self._audit(record, "session.removal.repeated", {"why": "live on chain"}, now)
            self._repaired()

    def _installing(self, record: SessionRecord, onchain: Installed, now: int) -> None:
        rt = self._rt
        installs = attempts(rt, install_job_id, record.id)
        latest = installs[-1] if installs else None
        if latest is not None and latest.state in (JobState.SIGNED, JobState.SUBMITTED):
            # Our install is on its way (perhaps mined, its receipt not read yet): judged once
            # it is settled (the dispatcher calls settle() then).
            return
        if onchain is Installed.ACTIVE:
            ours = latest is not None and latest.state is JobState.EXECUTED
            if not ours:
                # Someone else (anyone may send the public enable transaction) installed it.
                self._disagree(record, "installed on chain by another sender", now)
            with rt.store.db.unit():
                rt.store.sessions.mark_onchain_enabled(record.id, now=now)
                self._audit(
                    record, "session.installed", {"by": "relayer" if ours else "other"}, now
                )
            self._agree(record, now)
            return
        if onchain is not Installed.NEVER:
            self._install_failed(record, f"the chain will not install it ({onchain.name})", now)
            return
        if record.expires_at <= now:
            if latest is not None and latest.state is JobState.QUEUED:
                cancel_queued(rt, latest, ReasonCode.SESSION_EXPIRED.value)  # pointless now
            rt.store.sessions.expire(record.id, now=now)
            return
        if global_freeze_in_force(rt):
            if latest is not None and latest.state is JobState.QUEUED:
                cancel_queued(rt, latest, HELD_BY_FREEZE)
            return
        held = (
            latest is not None
            and latest.state is JobState.REFUSED
            and latest.error == (HELD_BY_FREEZE)
        )
        if latest is None or held:
            self._queue_install(record, len(installs) + 1)
        elif latest.state in (JobState.FAILED, JobState.REFUSED):
            why = latest.revert_reason or latest.error or latest.state.value
            self._install_failed(record, f"install failed on chain: {why}", now)

    def _live(self, record: SessionRecord, onchain: Installed, now: int) -> None:
        rt = self._rt
        if onchain is Installed.ACTIVE:
            if record.expires_at <= now:
                rt.store.sessions.expire(record.id, now=now)
            self._agree(record, now)
            return
        # The database lets the session sign; the chain does not have it: the chain wins.
        self._disagree(record, f"{record.status} in the database, {onchain.name} on chain", now)
        with rt.store.db.unit(durable=True):
            if rt.store.sessions.revoke_session(
                record.id, by="chain", reason=f"not live on chain ({onchain.name})", now=now
            ):
                rt.vault.disable(record.session_key_id, now=now)
                self._audit(record, "session.revoked", {"by": "chain", "reason": onchain.name}, now)
        self._repaired()
        fresh = rt.store.sessions.get(record.id)
        if fresh is not None and fresh.status == "revoking":
            self._revoking(fresh, onchain, now)

    def _revoking(self, record: SessionRecord, onchain: Installed, now: int) -> None:
        rt = self._rt
        installs = attempts(rt, install_job_id, record.id)
        latest = installs[-1] if installs else None
        if latest is not None and latest.state is JobState.QUEUED:
            cancel_queued(rt, latest, CANCELLED_BY_REVOCATION)
            return  # looked at again next round, once the job is settled either way
        if onchain is Installed.ACTIVE:
            removals = attempts(rt, removal_job_id, record.id)
            if removals and not removals[-1].state.is_final:
                return  # the removal is on its way
            if latest is not None and not latest.state.is_final:
                queue_removal(rt, record)  # queued behind the install still in flight
                return
            if removals:
                # A removal ended and the session is still live: disagreement; try again.
                self._disagree(record, "revoked in the database, live on chain", now)
                self._repaired()
            elif record.onchain_enabled_at is None:
                self._disagree(record, "revoked in the database, installed by another", now)
            with rt.store.db.unit():
                if record.onchain_enabled_at is None:
                    rt.store.sessions.mark_onchain_enabled(record.id, now=now)
                queue_removal(rt, record)
            return
        if onchain is Installed.NEVER:
            if latest is not None and not latest.state.is_final:
                return  # the install may still land: its removal is queued behind it
            if _exposed(installs) and record.expires_at > now:
                return  # its grant was sent: anyone could install it until it expires
        how = {
            Installed.REMOVED: "removed",
            Installed.NEVER_INSTALLABLE: "never installed (no longer installable)",
            Installed.NEVER: "never installed",
        }[onchain]
        with rt.store.db.unit():
            if rt.store.sessions.mark_onchain_revoked(record.id, now=now):
                self._audit(record, "session.removed.onchain", {"how": how}, now)
        self._agree(record, now)

    # --- helpers --------------------------------------------------------------------------

    def _queue_install(self, record: SessionRecord, attempt: int) -> None:
        rt = self._rt
        if attempt > MAX_ATTEMPTS or record.owner_signature is None:
            return
        wallet = rt.store.wallets.get(record.wallet_id)
        assert wallet is not None
        grant = json.loads(record.grant)
        scope = SessionDirectory(rt).scope(record)
        holder = rt.calls.sessions_of(wallet)  # the account, or the module it installed
        data = holder.enable_session(
            grant_message(scope, record, grant["revoker"]), bytes.fromhex(record.owner_signature)
        )
        # The approval's estimate when there is one (a held install is the same call); else
        # estimated now, like the approval (a ChainError leaves the session for the next pass).
        earlier = attempts(rt, install_job_id, record.id)
        if earlier:
            gas_limit = earlier[-1].gas_limit
        else:
            try:
                gas_limit = enable_gas_limit(
                    rt.chain,
                    sender=rt.relayer.address,
                    to=holder.address,
                    data=data,
                    words=enable_storage_words(
                        scope.token_limits.values(), scope.permissions.values()
                    ),
                    contract_owner=wallet.owner_kind == "erc1271",
                )
            except (ExecutionReverted, EnableTooCostly) as exc:
                why = exc.reason if isinstance(exc, ExecutionReverted) else exc.code.value
                self._install_failed(record, f"the chain will not install it ({why})", rt.now())
                return
        queue_relay_job(
            rt.store.db,
            sender=rt.relayer.address,
            job_id=install_job_id(record.id, attempt),
            to=holder.address,
            data=data,
            gas_limit=gas_limit,
        )

    def _install_failed(self, record: SessionRecord, why: str, now: int) -> None:
        rt = self._rt
        with rt.store.db.unit(durable=True):
            if rt.store.sessions.install_failed(record.id, reason=why, now=now):
                rt.vault.disable(record.session_key_id, now=now)
                self._audit(record, "session.install.failed", {"why": why}, now)
        fresh = rt.store.sessions.get(record.id)
        if fresh is not None and fresh.status == "revoking":
            self.check(fresh)

    def _audit(self, record: SessionRecord, kind: str, detail: dict[str, object], now: int) -> None:
        self._rt.store.audit.append(
            record.wallet_id, kind, {"session": record.id, **detail}, at=now
        )

    def _disagree(self, record: SessionRecord, what: str, now: int) -> None:
        """Raise one alert per disagreement (kept open until the two agree again)."""
        if record.id in self._open:
            return
        alert = AlertRecord(
            id=new_id("alr"),
            at=now,
            rule=DISAGREEMENT,
            severity="warning",
            detail={"session": record.id, "database": record.status, "disagreement": what},
            session_id=record.id,
            wallet_id=record.wallet_id,
            credential_id=record.credential_id,
        )
        self._rt.store.alerts.record(alert)
        self._open[record.id] = alert.id
        with self.stats.lock:
            self.stats.disagreements += 1
            self.stats.open_disagreements = len(self._open)
        _log.warning("session %s: %s", record.id, what)
        if self.sink is not None:
            self._rt.store.db.after_commit(partial(self.sink, alert))

    def _agree(self, record: SessionRecord, now: int) -> None:
        alert_id = self._open.pop(record.id, None)
        if alert_id is None:
            return
        self._rt.store.alerts.mark_action(alert_id, "agreed with chain", at=now)
        with self.stats.lock:
            self.stats.open_disagreements = len(self._open)
            alert = self._rt.store.alerts.get(alert_id)
            if alert is not None and alert.action_at is not None:
                self.stats.last_agreement_s = float(alert.action_at - alert.at)

    def _repaired(self) -> None:
        with self.stats.lock:
            self.stats.repairs += 1
