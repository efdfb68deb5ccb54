"""The stored audit log: append-only chains, and tampering done directly in SQL is found."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import text
from store_support import T0

from sessionward.domain.audit import GENESIS_HASH, AuditProblem
from sessionward.store import Store


def fill(store: Store, stream: str = "w1", count: int = 6) -> None:
    for i in range(count):
        store.audit.append(stream, "decision", {"n": i, "verdict": "allow"}, at=T0 + i)


def sql(store: Store, statement: str, **params: object) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def kinds(problems: tuple[AuditProblem, ...]) -> set[tuple[str, int]]:
    return {(p.kind, p.seq) for p in problems}


def test_appended_records_form_a_verified_chain(store: Store) -> None:
    first = store.audit.append("w1", "session.granted", {"session": "s1"}, at=T0)
    second = store.audit.append("w1", "session.revoked", {"session": "s1", "by": "owner"}, at=T0)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert store.audit.records("w1") == [first, second]
    head = store.audit.head("w1")
    assert head is not None and (head.seq, head.hash) == (2, second.hash)
    verdict = store.audit.verify("w1")
    assert verdict.ok and verdict.records_checked == 2


def test_streams_are_chained_independently(store: Store) -> None:
    fill(store, "w1", 3)
    fill(store, "global", 2)
    assert store.audit.streams() == ["global", "w1"]
    assert [r.seq for r in store.audit.records("global")] == [1, 2]
    assert store.audit.verify().ok


def test_payload_with_floats_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.audit.append("w1", "x", {"amount": 1.5}, at=T0)
    assert store.audit.records("w1") == []


def test_payload_edited_in_sql_is_named_as_edited(store: Store) -> None:
    fill(store)
    sql(
        store,
        "UPDATE audit SET payload = :p WHERE stream = 'w1' AND seq = 4",
        p='{"n":3,"verdict":"deny"}',
    )
    verdict = store.audit.verify("w1")
    assert kinds(verdict.problems) == {("edited", 4)}


def test_edit_with_a_recomputed_hash_is_still_found(store: Store) -> None:
    fill(store)
    from sessionward.domain.audit import chain_hash

    [third] = [r for r in store.audit.records("w1") if r.seq == 3]
    forged = chain_hash(third.prev_hash, "w1", 3, third.at, third.kind, {"n": 2, "verdict": "x"})
    sql(
        store,
        "UPDATE audit SET payload = :p, hash = :h WHERE stream = 'w1' AND seq = 3",
        p='{"n":2,"verdict":"x"}',
        h=forged.hex(),
    )
    assert kinds(store.audit.verify("w1").problems) == {("edited", 3)}


def test_deleted_row_is_named_by_its_seq(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit WHERE stream = 'w1' AND seq = 3")
    assert kinds(store.audit.verify("w1").problems) == {("deleted", 3)}


def test_rows_with_swapped_seqs_are_named_as_reordered(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit SET seq = -1 WHERE stream = 'w1' AND seq = 3")
    sql(store, "UPDATE audit SET seq = 3 WHERE stream = 'w1' AND seq = 4")
    sql(store, "UPDATE audit SET seq = 4 WHERE stream = 'w1' AND seq = -1")
    problems = store.audit.verify("w1").problems
    assert {p.kind for p in problems} == {"reordered"}
    assert {p.seq for p in problems} == {3, 4}


def test_truncated_tail_is_found_against_a_kept_head(store: Store) -> None:
    fill(store)
    head = store.audit.head("w1")
    assert head is not None
    sql(store, "DELETE FROM audit WHERE stream = 'w1' AND seq >= 5")
    assert store.audit.verify("w1").ok  # invisible without an anchor...
    verdict = store.audit.verify("w1", heads={"w1": head})
    assert kinds(verdict.problems) == {("deleted", 5), ("deleted", 6)}


def test_garbage_in_a_row_is_reported_not_raised(store: Store) -> None:
    fill(store, count=3)
    sql(store, "UPDATE audit SET payload = 'not json', prev_hash = 'zz' WHERE seq = 2")
    assert kinds(store.audit.verify("w1").problems) == {("edited", 2)}


def test_concurrent_appends_from_many_nodes_form_one_chain(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    node = open_another(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(15):
                node.audit.append("w1", "decision", {"worker": i, "j": j}, at=T0)
        except BaseException as exc:  # re-raised by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    records = store.audit.records("w1")
    assert [r.seq for r in records] == list(range(1, 121))
    assert store.audit.verify("w1").ok
