"""Three service nodes on one PostgreSQL database behave as one service (docs/design.md sections 8
and 10): a revocation on one node holds on every other node at once, concurrent executions on
several nodes never sign after a revocation returned nor spend past a budget, and a global
freeze by ops on one node stops every node until two distinct ops lift it.

Nothing here is cached per node: the decision, the reservation and the revocation check happen
in one database transaction, so these properties come from the database alone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from multinode_support import (
    MICRO_USD,
    Attempt,
    Cluster,
    Party,
    execute_once,
    outcome_counts,
    usd_usage,
)

from sessionward.reasons import ReasonCode
from sessionward.sdk import OpsClient, SessionWardApiError

RACE_EXECUTES = 200
RACE_WORKERS = 24
SIGNED_BEFORE_REVOKE = 60
BUDGET_AFFORDS = 12
BUDGET_EXECUTES = 60


@pytest.fixture
def party(cluster: Cluster) -> Iterator[Party]:
    """A fresh owner (funded wallet) and backend for each test."""
    made = cluster.new_party()
    yield made
    made.close()


def test_a_revoke_on_one_node_refuses_the_next_execute_on_another(party: Party) -> None:
    session = party.grant_swap_session(max_usd=1_000)
    before = party.quote(session, 1, node=0)
    assert party.backends[1].execute(before)["status"] == "pending"
    quoted_before_revoke = party.quote(session, 1, node=1)
    uses_before = usd_usage(party, session)

    revoked = party.owners[0].revoke_access(party.wallet_id, party.credential_id, session)
    assert revoked["revokedSessions"] == [session]

    with pytest.raises(SessionWardApiError) as refused:
        party.backends[1].execute(quoted_before_revoke)
    assert refused.value.code == ReasonCode.SESSION_REVOKED.value
    seen = party.owners[2].get_session(session)
    assert seen["status"] == "revoked"
    # RevokeAccess answers the clock when it replies, which may be a second after the recorded
    # revocation (service/revocation.py computes revokedAt afresh); never before it.
    assert seen["revokedAt"] is not None and seen["revokedAt"] <= revoked["revokedAt"]
    # Nothing changed for the refused call: no signature, no reservation, no spending.
    txn = party.cluster.store.transactions.get(quoted_before_revoke)
    assert txn is not None
    assert txn.status == "denied"
    assert txn.signature is None and txn.reservation_id is None
    assert usd_usage(party, session) == uses_before


def test_no_signature_is_produced_after_a_revoke_returns_in_a_race_over_three_nodes(
    party: Party,
) -> None:
    session = party.grant_swap_session(max_usd=100_000)
    with ThreadPoolExecutor(6) as pool:
        quotes = list(pool.map(lambda i: party.quote(session, 1, node=i % 3), range(RACE_EXECUTES)))
    lock = threading.Lock()
    signed_so_far = 0
    enough_signed = threading.Event()
    revoke: dict[str, float] = {}

    def execute(index: int) -> Attempt:
        nonlocal signed_so_far
        attempt = execute_once(party, quotes[index], index % 3)
        if attempt.signed:
            with lock:
                signed_so_far += 1
                if signed_so_far >= SIGNED_BEFORE_REVOKE:
                    enough_signed.set()
        return attempt

    def revoke_part_way() -> None:
        enough_signed.wait(timeout=60)
        revoke["sent"] = time.time()
        party.owners[0].revoke_access(party.wallet_id, party.credential_id, session)
        revoke["returned"] = time.time()

    owner = threading.Thread(target=revoke_part_way)
    owner.start()
    with ThreadPoolExecutor(RACE_WORKERS) as pool:
        attempts = list(pool.map(execute, range(RACE_EXECUTES)))
    owner.join(timeout=60)
    assert "returned" in revoke, "the owner's revoke did not return"
    returned = revoke["returned"]

    signed = {a.txn_id for a in attempts if a.signed}
    refused = [a for a in attempts if not a.signed]
    counts = outcome_counts(attempts)
    assert len(signed) >= SIGNED_BEFORE_REVOKE, counts
    assert refused, f"the revoke came after every execution, the race proved nothing: {counts}"
    assert {a.outcome for a in refused} == {ReasonCode.SESSION_REVOKED.value}, counts
    # Every Execute sent after the revoke returned was refused, on every node.
    late = [a for a in attempts if a.sent_at > returned]
    assert all(not a.signed for a in late)
    assert all(a.answered_at > revoke["sent"] for a in refused)

    # The audit log: every signature precedes the revocation record, none is timed after it.
    records = party.cluster.store.audit.records(party.wallet_id)
    revoked_index = [i for i, r in enumerate(records) if r.kind == "session.revoked"]
    assert len(revoked_index) == 1
    signed_records = {
        str(r.payload["txn"]): (i, r.at)
        for i, r in enumerate(records)
        if r.kind == "session.call.signed" and r.payload.get("session") == session
    }
    assert set(signed_records) == signed
    assert all(i < revoked_index[0] for i, _at in signed_records.values())
    assert all(at <= returned for _i, at in signed_records.values())
    assert records[revoked_index[0]].at <= returned
    assert party.cluster.store.audit.verify(party.wallet_id).ok

    # The transactions agree: exactly the signed ones carry a signature and a reservation,
    # each executed no later than the revoke's answer; the refused ones are denied, unsigned.
    rows = {t.id: t for t in party.cluster.store.transactions.of_session(session)}
    assert set(rows) == set(quotes)
    carrying = {t.id for t in rows.values() if t.signature is not None}
    assert carrying == signed
    for txn_id in signed:
        row = rows[txn_id]
        assert row.status in ("pending", "executed"), (row.status, row.failure)
        assert row.executed_at is not None and row.executed_at <= returned
        assert row.reservation_id is not None
    for attempt in refused:
        row = rows[attempt.txn_id]
        assert row.status == "denied" and row.reservation_id is None
        assert ReasonCode.SESSION_REVOKED.value in row.reasons.split(",")
    assert len(signed) + len(refused) == RACE_EXECUTES


def test_concurrent_executes_over_three_nodes_never_exceed_a_usd_budget(party: Party) -> None:
    session = party.grant_swap_session(max_usd=BUDGET_AFFORDS)  # 1 USDX swaps: K of them fit
    with ThreadPoolExecutor(6) as pool:
        quotes = list(
            pool.map(lambda i: party.quote(session, 1, node=i % 3), range(BUDGET_EXECUTES))
        )
    start = threading.Barrier(RACE_WORKERS)

    def execute(index: int) -> Attempt:
        if index < RACE_WORKERS:
            start.wait(timeout=30)  # the first wave leaves together
        return execute_once(party, quotes[index], index % 3)

    with ThreadPoolExecutor(RACE_WORKERS) as pool:
        attempts = list(pool.map(execute, range(BUDGET_EXECUTES)))

    counts = outcome_counts(attempts)
    assert counts == {
        "pending": BUDGET_AFFORDS,
        ReasonCode.USD_LIMIT_EXCEEDED.value: BUDGET_EXECUTES - BUDGET_AFFORDS,
    }
    assert {a.node for a in attempts if a.signed} != set(), counts
    spent, cap = usd_usage(party, session)
    assert cap == BUDGET_AFFORDS * MICRO_USD
    assert spent == cap
    rows = party.cluster.store.transactions.of_session(session)
    assert sum(t.signature is not None for t in rows) == BUDGET_AFFORDS


@pytest.fixture
def ops(cluster: Cluster) -> Iterator[list[list[OpsClient]]]:
    """``ops[i][n]``: ops credential ``i + 1`` talking to node ``n + 1``."""
    clients = [[cluster.ops(i, node=n) for n in range(len(cluster.nodes))] for i in range(2)]
    yield clients
    for row in clients:
        for client in row:
            client.close()


def test_a_global_freeze_on_one_node_stops_every_node_until_two_ops_lift_it(
    party: Party, ops: list[list[OpsClient]]
) -> None:
    session = party.grant_swap_session(max_usd=1_000)
    quotes = party.quotes(session, 6, 1)
    frozen = ops[0][1].emergency_revoke("global", None, "multinode test: incident drill")
    assert frozen["freezeId"]
    try:
        # At once, on the two other nodes.
        for txn_id, node in ((quotes[0], 0), (quotes[1], 2)):
            attempt = execute_once(party, txn_id, node)
            assert attempt.outcome == ReasonCode.GLOBAL_FREEZE.value, attempt

        with pytest.raises(SessionWardApiError) as first:
            ops[0][0].lift_freeze("global")
        assert first.value.code == ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS.value
        assert execute_once(party, quotes[2], 2).outcome == ReasonCode.GLOBAL_FREEZE.value
        # The same ops approving again, on another node, is still one approval.
        with pytest.raises(SessionWardApiError) as again:
            ops[0][2].lift_freeze("global")
        assert again.value.code == ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS.value
        assert execute_once(party, quotes[3], 0).outcome == ReasonCode.GLOBAL_FREEZE.value

        lifted = ops[1][2].lift_freeze("global")
        assert lifted["approvals"] == ["ops-1", "ops-2"]
        assert lifted["lifted"] >= 1
    finally:
        # Leave no global freeze behind for later tests, whatever happened above.
        for row in ops:
            with contextlib.suppress(SessionWardApiError):
                row[0].lift_freeze("global")
    assert execute_once(party, quotes[4], 0).outcome == "pending"
    assert execute_once(party, quotes[5], 2).outcome == "pending"
    spent, _cap = usd_usage(party, session)
    assert spent == 2 * MICRO_USD  # only the two calls after the lift were reserved
