"""The audit hash chain and its verifier (pure): any single mutation of a valid chain is found,
and located."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.domain.audit import (
    GENESIS_HASH,
    AuditHead,
    AuditRecord,
    canonical_chain_hash,
    canonical_json,
    chain_hash,
    next_record,
    record_is_intact,
    verify_chain,
)

T0 = 1_771_700_000


def chain(count: int, stream: str = "w1") -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for i in range(count):
        head = records[-1] if records else None
        records.append(next_record(head, stream, "decision", {"n": i, "ok": True}, at=T0 + i))
    return records


def head_of(records: list[AuditRecord]) -> dict[str, AuditHead]:
    last = records[-1]
    return {last.stream: AuditHead(last.stream, last.seq, last.hash)}


def located(records: list[AuditRecord], **kw: Any) -> set[tuple[str, int]]:
    return {(p.kind, p.seq) for p in verify_chain(records, **kw).problems}


# ------------------------------------------------------------------ the hash


def test_chain_hash_is_sha256_of_the_documented_canonical_json() -> None:
    payload = {"b": [1, "é"], "a": None}
    expected_text = (
        '{"at":5,"kind":"k","payload":{"a":null,"b":[1,"\\u00e9"]},'
        f'"prev_hash":"{"00" * 32}","seq":1,"stream":"w1"}}'
    )
    assert (
        chain_hash(GENESIS_HASH, "w1", 1, 5, "k", payload)
        == hashlib.sha256(expected_text.encode("ascii")).digest()
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**300), max_value=2**300) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    payload=st.dictionaries(st.text(), json_values, max_size=5),
    stream=st.text(),
    kind=st.text(),
    seq=st.integers(min_value=1, max_value=2**64),
    at=st.integers(min_value=0, max_value=2**40),
    prev_hash=st.binary(min_size=32, max_size=32),
)
def test_hash_of_a_canonical_payload_text_is_the_hash_of_the_whole_document(
    payload: dict[str, Any], stream: str, kind: str, seq: int, at: int, prev_hash: bytes
) -> None:
    """The store hashes the payload text it stores; that must be the documented hash."""
    document = {
        "at": at,
        "kind": kind,
        "payload": payload,
        "prev_hash": prev_hash.hex(),
        "seq": seq,
        "stream": stream,
    }
    expected = hashlib.sha256(canonical_json(document).encode("ascii")).digest()
    text = canonical_json(payload)
    assert canonical_chain_hash(prev_hash, stream, seq, at, kind, text) == expected
    assert chain_hash(prev_hash, stream, seq, at, kind, payload) == expected


def test_a_record_hash_needs_a_32_byte_predecessor_and_integer_positions() -> None:
    with pytest.raises(ValueError):
        canonical_chain_hash(b"\x00" * 31, "w1", 1, T0, "k", "{}")
    with pytest.raises(ValueError):
        canonical_chain_hash(GENESIS_HASH, "w1", 1, 1.5, "k", "{}")  # type: ignore[arg-type]


def test_canonical_json_refuses_floats_and_non_string_keys() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": 0.1})
    with pytest.raises(ValueError):
        canonical_json({1: "x"})
    with pytest.raises(ValueError):
        canonical_json({"x": {1, 2}})
    assert canonical_json({"big": 2**256 - 1}) == f'{{"big":{2**256 - 1}}}'


def test_first_record_links_to_genesis_and_each_next_to_its_predecessor() -> None:
    records = chain(3)
    assert records[0].seq == 1 and records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
    assert all(record_is_intact(r) for r in records)


def test_next_record_refuses_a_head_of_another_stream() -> None:
    with pytest.raises(ValueError):
        next_record(chain(1, "w1")[0], "w2", "k", {}, at=T0)


# ---------------------------------------------------------------- the verifier


def test_valid_chains_verify_ok() -> None:
    records = chain(5) + chain(3, "global")
    verdict = verify_chain(records, heads=head_of(records[:5]) | head_of(records[5:]))
    assert verdict.ok and verdict.records_checked == 8
    assert verify_chain([]).ok


def test_edited_payload_is_located() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], payload={"n": 99, "ok": True})
    assert located(records) == {("edited", 3)}


def test_edit_with_recomputed_hash_is_located_by_the_next_link() -> None:
    records = chain(5)
    r = records[2]
    forged = chain_hash(r.prev_hash, r.stream, r.seq, r.at, r.kind, {"n": 99})
    records[2] = dataclasses.replace(r, payload={"n": 99}, hash=forged)
    assert located(records) == {("edited", 3)}


def test_forged_last_record_is_found_only_against_the_head() -> None:
    records = chain(4)
    heads = head_of(records)
    r = records[-1]
    forged = chain_hash(r.prev_hash, r.stream, r.seq, r.at, r.kind, {"n": 99})
    records[-1] = dataclasses.replace(r, payload={"n": 99}, hash=forged)
    assert verify_chain(records).ok
    assert located(records, heads=heads) == {("edited", 4)}


def test_deleted_record_is_named_by_its_seq() -> None:
    records = chain(6)
    del records[3]
    assert located(records) == {("deleted", 4)}


def test_deleted_first_record_is_found() -> None:
    records = chain(3)[1:]
    assert located(records) == {("deleted", 1)}


def test_deleted_tail_is_found_against_the_head() -> None:
    records = chain(6)
    heads = head_of(records)
    assert located(records[:4], heads=heads) == {("deleted", 5), ("deleted", 6)}


def test_deleted_stream_is_found_against_its_head() -> None:
    records = chain(2)
    assert located([], heads=head_of(records)) == {("deleted", 1), ("deleted", 2)}


def test_delete_and_renumber_is_found_as_a_deletion() -> None:
    records = chain(6)
    del records[2]
    records = records[:2] + [dataclasses.replace(r, seq=r.seq - 1) for r in records[2:]]
    problems = located(records)
    assert ("deleted", 3) in problems
    assert {kind for kind, _ in problems} <= {"deleted", "reordered"}


def test_records_with_swapped_seqs_are_reordered() -> None:
    records = chain(6)
    a, b = records[2], records[3]
    records[2], records[3] = dataclasses.replace(b, seq=3), dataclasses.replace(a, seq=4)
    assert located(records) == {("reordered", 3), ("reordered", 4)}


def test_records_stored_out_of_order_are_reordered() -> None:
    records = chain(5)
    records[1], records[2] = records[2], records[1]
    assert located(records) == {("reordered", 2)}


def test_gap_beyond_the_detail_limit_is_one_problem() -> None:
    records = chain(2)
    far = dataclasses.replace(records[1], seq=1_000_000)
    problems = verify_chain([records[0], far]).problems
    assert any(p.kind == "deleted" and p.seq == 2 and "999999" in p.detail for p in problems)
    assert len(problems) < 5


# ------------------------------------------------------------ property: any mutation

MUTATIONS = ["payload", "kind", "at", "prev_hash", "hash", "delete", "swap", "seq", "stream"]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=12),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
)
def test_any_single_mutation_of_a_valid_chain_is_detected(
    length: int, mutation: str, data: st.DataObject
) -> None:
    records = chain(length)
    heads = head_of(records)
    i = data.draw(st.integers(min_value=0, max_value=length - 1), label="index")
    r = records[i]
    if mutation == "payload":
        records[i] = dataclasses.replace(r, payload={**r.payload, "x": data.draw(st.text())})
    elif mutation == "kind":
        records[i] = dataclasses.replace(r, kind=r.kind + data.draw(st.text(min_size=1)))
    elif mutation == "at":
        delta = data.draw(st.integers(min_value=1, max_value=10**6))
        records[i] = dataclasses.replace(r, at=r.at + delta)
    elif mutation == "prev_hash":
        records[i] = dataclasses.replace(r, prev_hash=_flip(r.prev_hash, data))
    elif mutation == "hash":
        records[i] = dataclasses.replace(r, hash=_flip(r.hash, data))
    elif mutation == "delete":
        del records[i]
    elif mutation == "swap":
        if length < 2:
            return
        j = data.draw(st.integers(min_value=0, max_value=length - 1).filter(lambda j: j != i))
        a, b = records[i], records[j]
        records[i], records[j] = (
            dataclasses.replace(b, seq=a.seq),
            dataclasses.replace(a, seq=b.seq),
        )
    elif mutation == "seq":
        new_seq = data.draw(
            st.integers(min_value=0, max_value=length + 5).filter(lambda s: s != r.seq)
        )
        records[i] = dataclasses.replace(r, seq=new_seq)
    else:
        records[i] = dataclasses.replace(r, stream="w2")

    verdict = verify_chain(records, heads=heads)

    assert not verdict.ok
    if mutation in ("payload", "kind", "at", "hash"):
        assert ("edited", i + 1) in {(p.kind, p.seq) for p in verdict.problems}
    if mutation == "delete":
        assert ("deleted", i + 1) in {(p.kind, p.seq) for p in verdict.problems}
    if mutation == "swap":
        assert {p.kind for p in verdict.problems} == {"reordered"}


def _flip(value: bytes, data: st.DataObject) -> bytes:
    index = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    return value[:index] + bytes([value[index] ^ (1 << bit)]) + value[index + 1 :]
