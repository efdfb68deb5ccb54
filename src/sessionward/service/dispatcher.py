"""The dispatcher: carries signed work to the chain through the relayer, and brings outcomes
back (transaction status, reservation settled or released, session installed or removed).

Relay job ids say what a job is for: ``deploy:<wallet>``, ``enable:<session>``,
``exec:<txn>``, ``revoke:<session>``. The relayer is FIFO per key, so a session is installed
before its calls and removed after them. With several service nodes on one database, only the
node holding the dispatcher lease (a PostgreSQL advisory lock) runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from sessionward.chain.errors import ChainError
from sessionward.chain.relay_jobs import JobState, RelayJob
from sessionward.store.database import Database
from sessionward.store.transactions import TransactionRecord

from .reconciler import Reconciler
from .runtime import Runtime
from .transactions import gas_limit_for

_log = logging.getLogger(__name__)


class Dispatcher:
    """One :meth:`step` moves every piece of on-chain work one stage forward."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._lock = threading.Lock()
        self.reconciler = Reconciler(rt)

    def step(self) -> None:
        with self._lock:
            self._queue_executions()
            self._queue_revocations()
            try:
                changed = self._rt.relayer.process()
            except ChainError as exc:
                _log.warning("relayer round failed: %s", exc)
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

    def _queue_executions(self) -> None:
        rt = self._rt
        for txn in rt.store.transactions.pending():
            job_id = f"exec:{txn.id}"
            job = rt.relayer.job(job_id)
            if job is None:
                self._enqueue_execution(job_id, txn)
            elif job.state.is_final:
                self._apply(job)

    def _enqueue_execution(self, job_id: str, txn: TransactionRecord) -> None:
        rt = self._rt
        record = rt.store.sessions.get(txn.session_id)
        wallet = rt.store.wallets.get(txn.wallet_id)
        assert record is not None and wallet is not None
        assert txn.mode is not None and txn.execution is not None and txn.signature is not None
        assert txn.deadline is not None and txn.call_nonce is not None
        data = rt.calls.execute_with_session(
            record.session_key_address,
            txn.mode,
            txn.execution,
            txn.call_nonce,
            txn.deadline,
            txn.signature,
        )
        try:
            rt.relayer.enqueue(job_id, to=wallet.account, data=data, gas_limit=gas_limit_for(8))
        except ChainError as exc:  # fee cap or node refusal: the call will not be relayed
            self._finish_execution(txn.id, JobState.REFUSED, None, str(exc))

    def _queue_revocations(self) -> None:
        """Sessions and chain compared, installs and removals queued or repaired (the
        reconciler; a session the node cannot answer for waits for the next round)."""
        self.reconciler.run()

    # --- outcomes -------------------------------------------------------------------------

    def _apply(self, job: RelayJob) -> None:
        if not job.state.is_final:
            return
        kind, _, subject = job.job_id.partition(":")
        if kind == "exec":
            self._finish_execution(subject, job.state, job.tx_hash, job.revert_reason or job.error)
        elif kind in ("enable", "revoke"):
            # Installed or removed is recorded from the chain's own view, not the receipt alone.
            self.reconciler.settle(job)
        if kind != "exec" and job.state is not JobState.EXECUTED:
            _log.warning(
                "relay job %s ended %s: %s", job.job_id, job.state, job.revert_reason or job.error
            )

    def _finish_execution(
        self, txn_id: str, state: JobState, tx_hash: str | None, failure: str | None
    ) -> None:
        rt = self._rt
        txn = rt.store.transactions.get(txn_id)
        if txn is None or txn.status != "pending":
            return
        now = rt.now()
        executed = state is JobState.EXECUTED
        if not rt.store.transactions.finish(
            txn_id,
            status="executed" if executed else "failed",
            now=now,
            tx_hash=tx_hash,
            failure=None if executed else failure,
        ):
            return
        if txn.reservation_id is not None:
            if executed:
                rt.store.budget.settle(txn.reservation_id, now=now)
            else:
                rt.store.budget.release(txn.reservation_id, now=now)
        rt.store.audit.append(
            txn.wallet_id,
            "session.call.executed" if executed else "session.call.failed",
            {"txn": txn_id, "txHash": tx_hash, "failure": failure},
            at=now,
        )


class DispatcherLoop:
    """Runs :meth:`Dispatcher.step` every ``interval`` seconds in a daemon thread, on the node
    that holds the lease."""

    def __init__(self, dispatcher: Dispatcher, db: Database, interval: float) -> None:
        self._dispatcher = dispatcher
        self._db = db
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="sessionward-dispatcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # A node without the lease keeps trying, so a new leader takes over if the old one dies.
        while not self._stop.is_set():
            with self._lease() as held:
                if held:
                    self._lead()
                    return
            self._stop.wait(5.0)

    def _lead(self) -> None:
        try:
            self._dispatcher.reconcile()
        except ChainError as exc:
            _log.warning("reconciliation failed: %s", exc)
        while not self._stop.wait(self._interval):
            try:
                self._dispatcher.step()
            except Exception:  # keep relaying whatever one round did
                _log.exception("dispatcher round failed")

    @contextmanager
    def _lease(self) -> Iterator[bool]:
        if not self._db.is_postgresql:
            yield True
            return
        with self._db.engine.connect() as conn:
            held = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self._db.lease_key("dispatcher")}
                ).scalar()
            )
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"),
                        {"k": self._db.lease_key("dispatcher")},
                    )
                    conn.commit()
