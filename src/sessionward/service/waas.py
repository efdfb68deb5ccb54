"""The WaaS application: every use case, wired to one :class:`Runtime`.

The HTTP layer (``sessionward.api``) authenticates a request, turns it into a :class:`Caller`
and calls exactly one method here; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from sessionward.crypto.request_signature import ReplayStore
from sessionward.store.alerts import AlertSink

from .anomaly import AnomalyMonitor
from .config import Settings
from .credentials import Credentials
from .devices import Devices
from .dispatcher import Dispatcher, DispatcherLoop
from .idempotency import IdempotentRequests
from .ops_overview import OpsOverview
from .revocation import Revocations
from .runtime import Runtime, build_runtime
from .sessions import SessionDirectory, Sessions
from .transactions import Transactions
from .wallets import Wallets
from .webhooks import WebhookDispatcher

T = TypeVar("T")


class Waas:
    """The three-actor service. Attributes group the use cases by domain noun."""

    def __init__(self, rt: Runtime, *, alert_sink: AlertSink | None = None) -> None:
        self.runtime = rt
        self.directory = SessionDirectory(rt)
        self.credentials = Credentials(rt)
        self.devices = Devices(rt)
        self.wallets = Wallets(rt, self.credentials)
        self.sessions = Sessions(rt, self.directory)
        self.revocations = Revocations(rt, self.directory, alert_sink)
        self.anomaly = AnomalyMonitor(rt, self.directory, self.revocations, alert_sink)
        # One dispatcher (relayer, reconciler, lease) per network; the first is the default's.
        self.dispatchers = tuple(Dispatcher(rt.on(n.chain_id)) for n in rt.networks) or (
            Dispatcher(rt),
        )
        self.dispatcher = self.dispatchers[0]
        self.transactions = Transactions(
            rt, self.directory, self.anomaly, on_pending=self._wake_dispatchers
        )
        for dispatcher in self.dispatchers:
            dispatcher.reconciler.sink = alert_sink  # disagreement alerts go out as webhooks
        self.idempotency = IdempotentRequests(rt.store.idempotency, rt.now, nonces=rt.store.replay)
        self.request_nonces: ReplayStore = rt.store.replay
        """Where the API remembers request-signature nonces (shared by every node)."""
        self.ops_overview = OpsOverview(rt)
        self._loops: list[DispatcherLoop] = []
        self._webhooks: WebhookDispatcher | None = None
        self.credentials.ensure_ops(rt.settings.ops_credentials)

    @classmethod
    def from_settings(cls, settings: Settings) -> Waas:
        """Everything from settings, alerts delivered as signed webhooks (a no-op without URLs)."""
        hooks = WebhookDispatcher.from_settings(settings)
        waas = cls(build_runtime(settings), alert_sink=hooks)
        waas._webhooks = hooks
        return waas

    def one_transaction(self, *, durable: bool = False) -> AbstractContextManager[None]:
        """Everything this thread does with the service inside the block commits together, in
        one database transaction, or not at all (a unit of work: see
        :meth:`sessionward.store.database.Database.unit`). ``durable``: committed so that it
        survives a power cut once the block has returned (what revocations need)."""
        return self.runtime.store.db.unit(durable=durable)

    @property
    def groups_units(self) -> bool:
        """Whether units of work are best run one after another and committed in groups
        (:meth:`run_units`): yes. On SQLite writers take turns on one lock anyway; on
        PostgreSQL a group spares every unit but one its BEGIN and COMMIT and the node a thread
        and a connection per unit in flight (measured: about a quarter less CPU per session
        call, server and database together). A group holds its units' locks until it
        commits; a unit that would wait for one long gives way and runs alone
        (:meth:`sessionward.store.database.Database.run_units`)."""
        return True

    def run_units(self, units: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run each callable as a unit of work of its own (see :meth:`one_transaction`), in
        order on this thread, committed together: what each returned or raised (see
        :meth:`sessionward.store.database.Database.run_units`)."""
        return self.runtime.store.db.run_units(units)

    def check_database(self) -> None:
        """Return if the database answers (it is asked for its migration revision), raise
        whatever its driver raised otherwise: the health check."""
        self.runtime.store.current_revision()

    def _wake_dispatchers(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.wake()

    @property
    def holds_relay_lease(self) -> bool | None:
        """Whether this node holds the relayer lease now (of the default network; see
        :meth:`relay_leases` for each); ``None`` when it is not relaying (not started, or
        ``run_relayer`` off). For readiness reports (``/readyz``)."""
        return self._loops[0].holds_lease if self._loops else None

    def relay_leases(self) -> dict[str, bool]:
        """Each network's name and whether this node holds its relayer lease now (empty when
        it is not relaying)."""
        return {loop.network_name: loop.holds_lease for loop in self._loops}

    def reconciler_snapshot(self) -> dict[str, float]:
        """Every network's reconciler counts, summed (for ``/metrics``)."""
        total: dict[str, float] = {}
        for dispatcher in self.dispatchers:
            for name, value in dispatcher.reconciler.stats.snapshot().items():
                total[name] = total.get(name, 0) + value
        return total

    def start(self) -> None:
        """Start relaying in the background: one loop per network, each relaying only on the
        node that wins that network's lease."""
        if self.runtime.settings.run_relayer and not self._loops:
            for dispatcher in self.dispatchers:
                loop = DispatcherLoop(
                    dispatcher, self.runtime.store.db, self.runtime.settings.relayer_poll_s
                )
                loop.start()
                self._loops.append(loop)

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        self._loops = []
        for dispatcher in self.dispatchers:
            dispatcher.signal.close()  # its notifying thread, if it ever rang on PostgreSQL
        if self._webhooks is not None:
            self._webhooks.close()
            self._webhooks = None
        self.runtime.close()
