"""Crashes on the ERC-4337 path of a session call (``Execute {submission: "userop"}``): the
service dies at each step boundary (the plan recorded, the userOpHash signed, the operation
handed to the bundler, its receipt read), is started again on the same data directory, and
the database must then agree with the chain: the operation ran at most once (its EntryPoint
nonce key), TransactionStatus says what its receipt says, a plan that never committed has no
signature and never ran, and nothing is spent twice or lost (see
:mod:`user_operation_crash_support` for every check).

The real parts: anvil, the canonical EntryPoint v0.7 from npm, the alto bundler from npm, and
the service's own database, vault and dispatcher. The crash points are
:data:`user_operation_fault_points.STEPS`.

- ``test_a_node_killed_*``: a ``sessionward serve`` process armed at one step dies there by
  SIGKILL (``kill -9``); a clean process recovers on the same data directory (SQLite), and the
  backend executes again a call whose Execute was never answered.
- The other tests: the service in process, abandoned at the step by an exception (everything it
  held in memory is dropped, the database keeps what committed) and built again over the same
  data directory, as a new process would be: at every step; the two regressions (the bundler
  still holding the operation when the new service sends it again; a service down longer than
  ``call_deadline_s``); and a property that draws the crash step, at which reaching of it the
  crash comes, a sequence of calls of an account with ample USDX and of one with 5 USDX
  (whose calls may be refused at planning or revert on chain), and whether the chain stalls
  (mines nothing) around the crash.

The in-process tests at every step and the regressions run on SQLite and on PostgreSQL
(``SESSIONWARD_TEST_PG_URL``, a fresh schema); the property on SQLite. It runs
``SW_USEROP_CRASH_EXAMPLES`` examples (default 8, about half a second each); a deep run:
``SW_USEROP_CRASH_EXAMPLES=200 pytest tests/faults/test_faults_user_operation_crash.py``
(40 examples: 45 s).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import user_operation_fault_points as fault_points
from faults_support import answered_execute, statuses, wait_final, wait_killed
from hypothesis import event, given, settings
from hypothesis import strategies as st
from multinode_support import Cluster, OpsKey, Party, node_environment
from user_operation_crash_support import (
    CHAIN_ID,
    ENTRY_POINT_V07,
    Alto,
    Call,
    InProcess,
    Ledger,
    assert_database_agrees_with_chain,
    automine,
    bundle_in_pool,
    deploy_entry_point,
    funded,
    grant_user_operation_session,
    start_node,
)

import anvil_node
from database_support import PG_URL, drop_schema
from loopback_processes import free_port
from sessionward.chain.bundler import BundlerClient
from sessionward.chain.demo import DemoDeployment
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.service.config import NetworkSettings
from sessionward.store import Store, faults, open_store

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

EXAMPLES = int(os.environ.get("SW_USEROP_CRASH_EXAMPLES", "8"))
# A real process per crash costs two service starts (3-5 s each on the loaded 2-core machine):
# the four boundaries between the path's steps. The two steps inside a unit of work (Execute's,
# the outcome's) are crashed in process here, and by kill -9 in tests/faults/test_kill_nine.py.
KILL_STEPS = (
    "userop.after_plan",
    "userop.before_send",
    "userop.after_send",
    "userop.after_receipt",
)
CONFIG = """\
relayer_lease_ttl_s = 2.0
[anomaly]
velocity_fraction = 0.0
denial_burst_count = 0
"""


@pytest.fixture(scope="module")
def userop_anvil() -> Iterator[str]:
    yield from anvil_node.session_node(CHAIN_ID)


@pytest.fixture(scope="module")
def userop_chain(userop_anvil: str) -> Iterator[RpcChain]:
    """The node, with the canonical EntryPoint v0.7 deployed."""
    with RpcChain(userop_anvil, timeout=60) as chain:
        deployer = LocalTransactionSigner(secrets.token_bytes(32))
        chain.set_balance(deployer.address, 10**21)
        deploy_entry_point(chain, deployer)
        yield chain


@pytest.fixture(scope="module")
def alto(userop_chain: RpcChain, userop_anvil: str) -> Iterator[Alto]:
    with funded(userop_chain, userop_anvil) as bundler:
        yield bundler


@pytest.fixture(scope="module")
def bundler(alto: Alto) -> Iterator[BundlerClient]:
    """The test's own client of the bundler (receipts)."""
    with BundlerClient(alto.url, entry_point=ENTRY_POINT_V07) as client:
        yield client


@pytest.fixture
def no_faults() -> Iterator[None]:
    fault_points.disarm()
    yield
    fault_points.disarm()


# --- in process ------------------------------------------------------------------------------


class Services:
    """The service in process, built on first use: on SQLite (in its data directory) or on
    PostgreSQL (a fresh schema, dropped at the end)."""

    def __init__(
        self, chain: RpcChain, network: NetworkSettings, tmp: pytest.TempPathFactory
    ) -> None:
        self._chain, self._network, self._tmp = chain, network, tmp
        self._built: dict[str, InProcess] = {}
        self._schema = f"sw_userop_crash_{uuid.uuid4().hex[:12]}"

    def on(self, backend: str) -> InProcess:
        if backend not in self._built:
            database = {}
            if backend == "postgresql":
                database = {"database_url": PG_URL, "database_schema": self._schema}
            data_dir = self._tmp.mktemp(f"userop-crash-{backend}")
            self._built[backend] = InProcess(data_dir, self._network, self._chain, **database)
        return self._built[backend]

    def close(self) -> None:
        for built in self._built.values():
            built.close()
        if "postgresql" in self._built:
            drop_schema(self._schema)


@pytest.fixture(scope="module")
def services(
    userop_chain: RpcChain, userop_anvil: str, alto: Alto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    network = NetworkSettings(
        "local", CHAIN_ID, rpc_url=userop_anvil, entry_point=ENTRY_POINT_V07, bundler_url=alto.url
    )
    built = Services(userop_chain, network, tmp_path_factory)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def service(request: pytest.FixtureRequest, services: Services) -> InProcess:
    """The service in process, on each database."""
    return services.on(request.param)


@pytest.fixture(scope="module")
def sqlite_service(services: Services) -> InProcess:
    """The service in process on SQLite (the property's: its examples cost half as much as on
    PostgreSQL; the tests at every step run on both)."""
    return services.on("sqlite")


def _check(service: InProcess, bundler: BundlerClient) -> None:
    assert_database_agrees_with_chain(
        service.store, service.chain, bundler, service.token, service.ledger
    )


def test_a_crash_after_the_bundler_took_the_operation_while_the_chain_stalls_records_it_once(
    service: InProcess, bundler: BundlerClient, no_faults: None
) -> None:
    """Regression: the restarted service hands the operation to the bundler again while it
    still waits in alto's mempool; alto answers "Already known", which the service took for
    a refusal (it matched "already known" in lower case only), recorded the call failed and
    released its budget, and the operation then ran on chain. (While the operation is still
    queued in alto, not yet in a bundle, alto answers AA25 instead, which was matched.)"""
    service.begin()
    call = service.quote(service.rich, 3)
    assert service.execute(call) == "pending"
    fault_points.arm("userop.after_send")
    automine(service.chain, on=False)
    try:
        with pytest.raises(faults.FaultInjected):
            service.drive([call.txn_id], paused_rounds=100, timeout_s=10)
        fault_points.disarm()
        # alto sent it in a bundle: the operation is no longer queued there.
        assert bundle_in_pool(service.chain)
        service.restart()
        # Still unmined when the new service sends it again: it must wait for the receipt.
        service.drive([call.txn_id], paused_rounds=3)
    finally:
        fault_points.disarm()
        automine(service.chain, on=True)
    _check(service, bundler)


def test_a_service_down_longer_than_the_call_deadline_records_the_operation_mined_meanwhile(
    service: InProcess, bundler: BundlerClient, no_faults: None
) -> None:
    """Regression: the service dies after the operation was submitted (and mined) and comes
    back more than ``call_deadline_s`` later. The dispatcher took the operation for one gone
    unmined: it sent it again (the bundler answers AA25, which is "already seen") on every
    round and never read its receipt, so the call stayed pending and its budget held."""
    service.begin()
    call = service.quote(service.rich, 2)
    assert service.execute(call) == "pending"
    fault_points.arm("userop.after_receipt")
    with pytest.raises(faults.FaultInjected):
        service.drive([call.txn_id])
    fault_points.disarm()
    deadline = service.world.rt.settings.call_deadline_s
    try:
        service.restart(later_s=deadline + 60)
        service.drive([call.txn_id], timeout_s=10)
    finally:
        service.restart()  # the module's service on the wall clock again
    _check(service, bundler)


def _crash_and_restart(
    service: InProcess, quoted: list[Call], crashes: list[tuple[str, int]], stall: bool
) -> None:
    """Execute every call and drive them to their end, through ``crashes``: each is a step
    and at which reaching of it the service dies, armed in turn (the next one once the service
    is restarted after the previous, so a crash may come in the middle of a recovery). After a
    crash the backend executes again what was never committed."""
    ids = [c.txn_id for c in quoted]
    paused = 4 if stall else 0
    left = list(crashes)
    step, hit = left.pop(0)
    fault_points.arm(step, hit=hit)
    try:
        for _ in range(len(crashes) + 1):
            try:
                for call in quoted:
                    if statuses(service.store, [call.txn_id])[call.txn_id] == "quoted":
                        service.execute(call)
                if stall:
                    automine(service.chain, on=False)
                service.drive(ids, paused_rounds=paused)
                return
            except faults.FaultInjected:
                fault_points.disarm()
                if stall:  # the chain still stalls after the restart
                    automine(service.chain, on=False)
                    bundle_in_pool(service.chain, timeout_s=0.5)  # whatever was sent, bundled
                service.restart()
                if left:
                    step, hit = left.pop(0)
                    fault_points.arm(step, hit=hit)
        raise AssertionError("more crashes than were armed")
    finally:
        fault_points.disarm()
        automine(service.chain, on=True)


@pytest.mark.parametrize("step", fault_points.STEPS)
def test_a_service_crashed_at_this_step_runs_the_operation_once_and_records_what_the_chain_did(
    service: InProcess, bundler: BundlerClient, step: str, no_faults: None
) -> None:
    """Three calls signed before any is mined: the poor account's two (3 USDX each of its 5)
    both pass the bundler's estimate, the second one mined reverts on chain."""
    service.begin()
    restarts = service.restarts
    calls = [service.quote(service.rich, 2), service.quote(service.poor, 3)]
    calls.append(service.quote(service.poor, 3))
    _crash_and_restart(service, calls, [(step, 1)], stall=False)
    assert service.restarts == restarts + 1, f"the service never reached {step}"
    _check(service, bundler)
    assert sorted(service.statuses([c.txn_id for c in calls])) == ["executed", "executed", "failed"]


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data(), stall=st.booleans())
def test_wherever_the_service_crashes_each_operation_runs_at_most_once_and_is_recorded_as_it_ran(
    sqlite_service: InProcess, bundler: BundlerClient, data: st.DataObject, stall: bool
) -> None:
    service = sqlite_service
    calls = data.draw(
        st.lists(st.tuples(st.booleans(), st.integers(1, 4)), min_size=1, max_size=3),
        label="calls (ample account?, USDX)",
    )
    crash = st.tuples(st.sampled_from(fault_points.STEPS), st.integers(1, len(calls)))
    crashes = data.draw(st.lists(crash, min_size=1, max_size=2), label="crashes (step, reaching)")
    event(f"{crashes[0][0]}, stall={stall}, crashes={len(crashes)}")
    service.begin()
    quoted = [service.quote(service.rich if ample else service.poor, usdx) for ample, usdx in calls]
    _crash_and_restart(service, quoted, crashes, stall)
    _check(service, bundler)


# --- kill -9 of a real process ---------------------------------------------------------------


class Served:
    """The module's data directory, its service's environment and port, the chain, one
    party with a UserOperation session, and the ledger."""

    def __init__(self, data_dir: Path, env: dict[str, str], port: int) -> None:
        self.data_dir, self.env, self.port = data_dir, env, port
        self.ledger = Ledger()
        self.cluster: Cluster
        self.party: Party
        self.session: str
        self.runs = 0

    @property
    def store(self) -> Store:
        return self.cluster.store

    def log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"


@pytest.fixture(scope="module")
def served(
    userop_chain: RpcChain, userop_anvil: str, alto: Alto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("userop-kill9")
    config = data_dir / "userop-kill9.toml"
    config.write_text(CONFIG, encoding="utf-8")
    ops = OpsKey("ops-1", secrets.token_bytes(32))
    env = node_environment(
        data_dir=data_dir,
        schema="unused",
        rpc_url=userop_anvil,
        ops_keys=ops.entry,
        config=config,
    )
    for name in ("SESSIONWARD_DATABASE_URL", "SESSIONWARD_DATABASE_SCHEMA"):
        env.pop(name)  # the embedded default: SQLite in the data directory
    env.update(SESSIONWARD_ENTRY_POINT=ENTRY_POINT_V07, SESSIONWARD_BUNDLER_URL=alto.url)
    built = Served(data_dir, env, free_port())
    first = start_node("setup", env, built.log("setup"), port=built.port)
    store: Store | None = None
    try:
        first.wait_ready()
        deployment = DemoDeployment(**json.loads((data_dir / "deployment.json").read_text()))
        store = open_store(data_dir=data_dir)
        built.cluster = Cluster([first], data_dir, "", userop_chain, deployment, store, [ops])
        built.party = built.cluster.new_party(usdx=1_000)
        userop_chain.set_balance(built.party.account, 10**18)  # it pays its operations
        built.session = grant_user_operation_session(built.party)
        built.ledger.start_usdx[built.party.account] = 1_000 * 10**6
    finally:
        first.stop()
    try:
        yield built
    finally:
        built.party.close()
        if store is not None:
            store.close()


def _execute(party: Party, txn_id: str) -> bool:
    """Execute as a UserOperation; False if no answer came (the node died mid-request)."""
    return answered_execute(party, txn_id, submission="userop")


def _killed_at(served: Served, step: str, *, usdx: int) -> Call:
    """Start a node armed at ``step``, make one call that reaches it, wait for the SIGKILL."""
    served.runs += 1
    party = served.party
    dying = start_node(
        f"dying-{served.runs}", served.env, served.log(step), port=served.port, kill_at=step
    )
    try:
        dying.wait_ready()
        txn_id = party.quote(served.session, usdx)
        call = Call(txn_id, served.session, party.wallet_id, party.account, usdx)
        served.ledger.add(call)
        answered = _execute(party, txn_id)
        assert wait_killed(dying) == -9, f"the node did not die at {step}"
    finally:
        dying.stop()
    row = served.store.transactions.get(txn_id)
    assert row is not None
    if step in ("userop.after_plan", "execute.after_sign"):
        # Died before the unit committed: no answer, no signature, nothing sent. (Over HTTP on
        # SQLite the whole request is one unit of the server's writer thread, the plan's write
        # among them: no plan survives either.)
        assert not answered and row.status == "quoted" and row.signature is None
        plans = served.store.user_operations.of_transaction(txn_id)
        assert all(p.submitted_at is None for p in plans)
    else:
        assert row.status == "pending" and row.signature is not None
    return call


def _recover(served: Served, call: Call) -> None:
    """A clean node on the same data directory; the backend executes again a call that was
    never committed; every call so far must end as the chain has it."""
    clean = start_node(f"clean-{served.runs}", served.env, served.log("clean"), port=served.port)
    try:
        clean.wait_ready()
        if statuses(served.store, [call.txn_id])[call.txn_id] == "quoted":
            assert _execute(served.party, call.txn_id)
        wait_final(served.store, [call.txn_id])
        with BundlerClient(
            served.env["SESSIONWARD_BUNDLER_URL"], entry_point=ENTRY_POINT_V07
        ) as bundler:
            assert_database_agrees_with_chain(
                served.store,
                served.cluster.chain,
                bundler,
                served.cluster.deployment.token("USDX"),
                served.ledger,
            )
    finally:
        clean.stop()


@pytest.mark.parametrize("step", KILL_STEPS)
def test_a_node_killed_at_this_step_runs_the_operation_once_and_records_what_the_chain_did(
    served: Served, step: str
) -> None:
    call = _killed_at(served, step, usdx=2)
    _recover(served, call)
