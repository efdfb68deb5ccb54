"""Time from a trusted source (issue 13): a node whose clock disagrees with the chain head
signs nothing, and sessions close for signing a margin before their ``expiresAt``.

On anvil (a JSON-RPC node with its own clock): the in-process chain stamps its blocks with the
node's own clock, so there is nothing to compare with there and the check is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import ManualClock, Session, World, codes, make_ops_keys

import anvil_node
from sessionward.reasons import ReasonCode
from sessionward.service.config import AnomalyRules, Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas

pytestmark = pytest.mark.anvil


class SkewedClock(ManualClock):
    """The node's clock: wall-clock seconds plus a ``skew`` the test sets (either sign)."""

    skew = 0

    def __call__(self) -> int:
        return super().__call__() + self.skew


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    yield from anvil_node.session_node(1)


@pytest.fixture(scope="module")
def world(anvil: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ops = make_ops_keys()
    clock = SkewedClock()
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("skew")),
        rpc_url=anvil,
        ops_credentials=tuple(o.credential for o in ops),
        anomaly=AnomalyRules(velocity_fraction=0.0, denial_burst_count=0),
    )
    built = World(Waas(build_runtime(settings, clock=clock)), clock, ops)
    yield built
    built.close()


@pytest.fixture
def clock(world: World) -> Iterator[SkewedClock]:
    assert isinstance(world.clock, SkewedClock)
    yield world.clock
    world.clock.skew = 0


@pytest.fixture
def session(world: World) -> Session:
    return world.session(world.wallet(), world.backend())


def _execute_refused(world: World, session: Session, txn_id: str) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        world.execute(session, txn_id)
    return refused.value


def test_a_node_whose_clock_is_behind_the_chain_signs_and_reserves_nothing(
    world: World, session: Session, clock: SkewedClock
) -> None:
    quote = world.quote(session, 2)
    world.chain.mine()  # a fresh head: its timestamp is the chain's now
    time.sleep(world.rt.settings.chain_time_ttl_s)  # let the cached head expire
    before = world.snapshot(session.session_id)
    sent = world.chain.get_transaction_count(world.rt.relayer.address, "latest")

    clock.skew = -(world.rt.settings.max_clock_skew_s + 20)  # the node, 50 s behind
    refused = _execute_refused(world, session, quote["txnId"])

    assert (refused.kind, refused.code) == ("unavailable", ReasonCode.CLOCK_SKEW)
    world.assert_unchanged(before)  # no reservation, no signature, no audit record
    txn = world.rt.store.transactions.get(quote["txnId"])
    assert txn is not None and (txn.status, txn.signature) == ("quoted", None)
    world.settle()
    assert world.rt.relayer.job(f"exec:{quote['txnId']}") is None
    assert world.chain.get_transaction_count(world.rt.relayer.address, "latest") == sent

    clock.skew = 0  # the same quote executes on a node whose clock agrees
    assert world.execute(session, quote["txnId"])["status"] == "pending"
    world.settle()
    assert world.rt.store.transactions.get(quote["txnId"]).status == "executed"  # type: ignore[union-attr]


def test_a_node_within_the_bound_signs(world: World, clock: SkewedClock) -> None:
    clock.skew = -(world.rt.settings.max_clock_skew_s - 5)
    session = world.session()  # its window starts at this node's (late) now
    quote = world.quote(session, 1)
    world.chain.mine()
    time.sleep(world.rt.settings.chain_time_ttl_s)
    assert world.execute(session, quote["txnId"])["status"] == "pending"
    world.settle()


def test_a_session_closes_for_signing_a_margin_before_it_expires(
    world: World, clock: SkewedClock
) -> None:
    margin = world.rt.settings.session_close_margin_s
    session = world.session(expiresAt=world.now() + margin + 30)
    open_quote = world.quote(session, 1)
    assert world.execute(session, open_quote["txnId"])["status"] == "pending"
    late = world.quote(session, 1)
    before = world.snapshot(session.session_id)

    clock.skew = 31  # inside the margin, still before expiresAt (and within the clock bound)
    refused = _execute_refused(world, session, late["txnId"])

    assert codes(refused) == (ReasonCode.SESSION_EXPIRED,)
    world.assert_unchanged(before, except_txn=late["txnId"])


def test_no_quote_is_given_inside_the_close_margin(world: World, clock: SkewedClock) -> None:
    margin = world.rt.settings.session_close_margin_s
    session = world.session(expiresAt=world.now() + margin + 30)
    before = world.snapshot(session.session_id)

    clock.skew = 31  # inside the margin, still before expiresAt (and within the clock bound)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1)

    assert codes(refused.value) == (ReasonCode.SESSION_EXPIRED,)
    after = world.snapshot(session.session_id)
    [(denied_txn, _status, _signed)] = set(after.transactions) - set(before.transactions)
    world.assert_unchanged(before, except_txn=denied_txn)
