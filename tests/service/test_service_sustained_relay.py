"""Sustained relaying on the in-process chain: chain time follows the clock, not the number of
blocks, so a session's calls keep executing however many are mined (issue 16, item 4).

Each relayed call is mined in its own block: this world's deployment record names no
``RelayBatch`` (as one written before it existed), so the dispatcher relays every call in a
transaction of its own (the path such deployments take). When every block was stamped a
second after the previous one, chain time ran ahead of the clock by one second per call: after a few hundred
calls Execute refused with ``CLOCK_SKEW`` and after 1,800 the contract refused every call of
a 30-minute session with ``SESSION_EXPIRED``, although no real time had passed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from service_support import USDX_UNIT, World

from sessionward.service.config import AnomalyRules

pytestmark = pytest.mark.slow

CALLS = 2_000
BATCH = 50
"""Calls executed (signed, pending) before one dispatcher round relays them, one block each."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # The velocity rule would suspend a session spending its budget this fast: not the subject.
    built = World.build(
        tmp_path_factory.mktemp("waas"), anomaly=AnomalyRules(velocity_fraction=0.0)
    )
    relaying = built.waas.dispatcher.runtime
    relaying.deployment = dataclasses.replace(relaying.deployment, relay_batch=None)
    yield built
    built.close()


def test_two_thousand_calls_in_a_row_execute_within_a_30_minute_session(world: World) -> None:
    wallet = world.wallet(usdx=CALLS * 2 * USDX_UNIT)
    session = world.session(wallet, maxValueUsd=CALLS * 2)  # expires in 30 minutes
    expires_at = world.record(session.session_id).expires_at
    first_block = world.chain.block_number()
    started = time.time()

    txn_ids: list[str] = []
    for _ in range(CALLS // BATCH):
        for _ in range(BATCH):
            view = world.swap(session, 1)
            assert view["status"] == "pending", view
            txn_ids.append(view["txnId"])
        world.settle(rounds=2)
        assert world.chain.block_timestamp() <= time.time() + 1  # never ahead of the clock

    assert world.chain.block_number() - first_block == CALLS  # one block per call
    assert world.chain.block_timestamp() < expires_at
    statuses = [world.rt.store.transactions.get(t) for t in txn_ids]
    failures = [(r.status, r.failure) for r in statuses if r is None or r.status != "executed"]  # type: ignore[union-attr]
    assert failures == []
    assert world.uses(session.session_id) == CALLS
    assert world.balance(world.usdx, wallet.account) == CALLS * USDX_UNIT
    assert time.time() - started < 1_800  # the session's window was never reached in real time
