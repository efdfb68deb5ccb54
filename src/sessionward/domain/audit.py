"""The tamper-evident audit log: a SHA-256 hash chain per stream, and its verifier (pure).

Each record belongs to a *stream* (a wallet id, or ``"global"``) and has a sequence number
``seq`` starting at 1 with no gaps. Its ``hash`` commits to its content and to the hash of the
record before it (``prev_hash``; the first record links to :data:`GENESIS_HASH`, 32 zero bytes):

    hash = SHA-256( canonical_json({
        "at": at, "kind": kind, "payload": payload,
        "prev_hash": prev_hash as 64 lower-case hex digits, "seq": seq, "stream": stream,
    }) )

``canonical_json`` is JSON with keys sorted (recursively), no insignificant whitespace
(``","`` and ``":"`` separators), non-ASCII characters escaped as ``\\u`` plus four lower-case hex
digits, encoded as ASCII. Payloads hold only objects with string keys, arrays, strings, integers
(any size), booleans and null: floats are refused because their text form is not canonical
across implementations (write amounts as decimal strings or integers).

What the chain proves, and what it does not
    Editing a record's content, deleting a record, or moving records around is detected by
    :func:`verify_chain`. Because the hash is unkeyed, someone able to rewrite *every* record from
    some point to the end can forge a consistent tail; and deleting the last records leaves a
    shorter valid chain. Both are caught when the verifier is given the stream's head (last seq
    and hash) recorded somewhere the attacker cannot write (an exported report, another system):
    pass it as ``heads``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final, Literal

GENESIS_HASH: Final = bytes(32)
"""The ``prev_hash`` of the first record of every stream."""

GLOBAL_STREAM: Final = "global"
"""The stream of events that belong to no single wallet (global freezes, ops actions)."""

ProblemKind = Literal["edited", "deleted", "reordered"]

# How far from its claimed seq the verifier looks for a record's original position. Only used to
# *classify* a damaged record (moved vs edited); detection never depends on it.
_RELOCATION_SEARCH: Final = 64
# Damaged records the verifier tries to relocate before classifying the rest as edited, so a
# wholly rewritten log is verified in linear time.
_RELOCATION_BUDGET: Final = 1024
# A gap longer than this is reported as one problem (its first missing seq) instead of one each.
_GAP_DETAIL_LIMIT: Final = 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of a stream. ``hash`` is :func:`chain_hash` of the other fields."""

    stream: str
    seq: int
    at: int
    kind: str
    payload: Mapping[str, Any]
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The last record of a stream as seen by someone who will verify it later."""

    stream: str
    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One inconsistency, located at ``seq`` of ``stream``.

    - ``edited``: the record at ``seq`` does not hash to its stored hash, or its stored hash is
      not the one the next record (or the trusted head) committed to.
    - ``deleted``: the record that should be at ``seq`` is missing (a gap in the sequence, or a
      record linking to a predecessor that is gone).
    - ``reordered``: the record at ``seq`` is intact but was written at another position, or
      comes out of sequence order, or links to a record that is not its predecessor.
    """

    kind: ProblemKind
    stream: str
    seq: int
    detail: str


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """The result of a verification: ``ok`` iff no problem was found."""

    problems: tuple[AuditProblem, ...]
    records_checked: int

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON value (see the module docstring).

    Raises ``ValueError`` for floats, non-string keys and anything that is not JSON.
    """
    _check_canonical(value)
    return _encode(value)


_encode: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
).encode
"""The canonical encoder (for values already checked by :func:`_check_canonical`)."""


def _check_canonical(value: Any) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise ValueError("audit payloads hold no floats: use integers or decimal strings")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("audit payload keys are strings")
            _check_canonical(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical(item)
        return
    raise ValueError(f"audit payloads hold JSON values only, not {type(value).__name__}")


def chain_hash(
    prev_hash: bytes, stream: str, seq: int, at: int, kind: str, payload: Mapping[str, Any]
) -> bytes:
    """SHA-256 of the canonical serialisation of a record (see the module docstring)."""
    return canonical_chain_hash(prev_hash, stream, seq, at, kind, canonical_json(payload))


def canonical_chain_hash(
    prev_hash: bytes, stream: str, seq: int, at: int, kind: str, canonical_payload: str
) -> bytes:
    """:func:`chain_hash` of a record whose payload is given as its canonical text
    (``canonical_json(payload)``, taken as it is), so that a payload serialised once for
    storage is not serialised again for its hash.

    The record's document is written out around that text: its keys in sorted order and its
    other values encoded as :func:`canonical_json` encodes them, which is exactly
    ``canonical_json`` of the whole document (canonical forms nest).
    """
    if len(prev_hash) != 32:
        raise ValueError("prev_hash is 32 bytes")
    for number in (seq, at):
        _check_canonical(number)
    document = (
        f'{{"at":{_encode(at)},"kind":{_encode(kind)},"payload":{canonical_payload},'
        f'"prev_hash":"{prev_hash.hex()}","seq":{_encode(seq)},"stream":{_encode(stream)}}}'
    )
    return hashlib.sha256(document.encode("ascii")).digest()


def next_record(
    head: AuditRecord | None, stream: str, kind: str, payload: Mapping[str, Any], *, at: int
) -> AuditRecord:
    """The record that follows ``head`` (or opens ``stream`` when ``head`` is None)."""
    if head is not None and head.stream != stream:
        raise ValueError("the head belongs to another stream")
    seq = 1 if head is None else head.seq + 1
    prev_hash = GENESIS_HASH if head is None else head.hash
    digest = chain_hash(prev_hash, stream, seq, at, kind, payload)
    return AuditRecord(stream, seq, at, kind, payload, prev_hash, digest)


def record_is_intact(record: AuditRecord) -> bool:
    """True iff ``record.hash`` matches its content (never raises on bad content)."""
    try:
        expected = chain_hash(
            record.prev_hash, record.stream, record.seq, record.at, record.kind, record.payload
        )
    except ValueError:
        return False
    return expected == record.hash


def verify_chain(
    records: Sequence[AuditRecord], *, heads: Mapping[str, AuditHead] | None = None
) -> AuditVerdict:
    """Check every stream found in ``records`` (given in stored order) and report each problem.

    Per stream: records must come in increasing ``seq`` order, each must hash to its stored
    hash, seqs must run 1, 2, 3, … without gaps, and each record must link to its predecessor's
    hash (the first to :data:`GENESIS_HASH`). A damaged record is classified ``reordered`` when
    it hashes correctly at another seq close by (it was moved), else ``edited``. With ``heads``,
    a stream must also reach its head's seq and end with its head's hash (tail truncation and
    forged tails), and a stream absent from ``records`` but present in ``heads`` is reported as
    deleted.
    """
    by_stream: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_stream.setdefault(record.stream, []).append(record)
    problems: list[AuditProblem] = []
    budget = [_RELOCATION_BUDGET]
    for stream, stream_records in by_stream.items():
        head = heads.get(stream) if heads else None
        problems.extend(_verify_stream(stream, stream_records, head, budget))
    for stream, head in (heads or {}).items():
        if stream not in by_stream and head.seq > 0:
            problems.extend(_missing(stream, 1, head.seq, "the stream has no records left"))
    return AuditVerdict(tuple(_unique(problems)), len(records))


@dataclass(frozen=True, slots=True)
class _Placed:
    """A record at the seq the evidence says it was written at."""

    seq: int
    record: AuditRecord
    intact: bool


def _verify_stream(
    stream: str,
    records: list[AuditRecord],
    head: AuditHead | None,
    budget: list[int],
) -> list[AuditProblem]:
    problems: list[AuditProblem] = []

    # 1. Stored order: each record must come after a smaller seq.
    for before, record in pairwise(records):
        if record.seq <= before.seq:
            problems.append(
                AuditProblem(
                    "reordered", stream, record.seq, f"seq {record.seq} after seq {before.seq}"
                )
            )

    # 2. Content: where was each record written?
    ordered = sorted(records, key=lambda r: r.seq)
    by_hash = {r.hash: r for r in ordered}
    placed: list[_Placed] = []
    for record in ordered:
        if record_is_intact(record):
            placed.append(_Placed(record.seq, record, True))
            continue
        original = _original_seq(record, budget)
        if original is None:
            problems.append(
                AuditProblem("edited", stream, record.seq, "content does not match its hash")
            )
            placed.append(_Placed(record.seq, record, False))
        else:
            problems.append(
                AuditProblem(
                    "reordered", stream, record.seq, f"holds the record written as seq {original}"
                )
            )
            placed.append(_Placed(original, record, True))
    placed.sort(key=lambda p: p.seq)

    # 3. Gaps: every seq from 1 to the last (or the trusted head) must be present.
    expected = 1
    for item in placed:
        if item.seq > expected:
            problems.extend(_missing(stream, expected, item.seq - 1, "missing from the sequence"))
        expected = max(expected, item.seq + 1)
    if head is not None:
        if head.seq >= expected:
            problems.extend(_missing(stream, expected, head.seq, "missing before the known head"))
        at_head = [p for p in placed if p.seq == head.seq]
        if at_head and at_head[-1].record.hash != head.hash:
            problems.append(
                AuditProblem("edited", stream, head.seq, "hash differs from the known head")
            )

    # 4. Links: each intact record must link to its intact predecessor.
    previous: _Placed | None = None
    for item in placed:
        if item.intact and item.seq == 1 and item.record.prev_hash != GENESIS_HASH:
            problems.append(_bad_link(stream, item, None, by_hash))
        elif (
            item.intact
            and previous is not None
            and previous.intact
            and previous.seq == item.seq - 1
            and item.record.prev_hash != previous.record.hash
        ):
            problems.append(_bad_link(stream, item, previous, by_hash))
        previous = item
    return problems


def _bad_link(
    stream: str,
    item: _Placed,
    previous: _Placed | None,
    by_hash: Mapping[bytes, AuditRecord],
) -> AuditProblem:
    """Classify a record whose ``prev_hash`` is not its predecessor's hash."""
    target = by_hash.get(item.record.prev_hash)
    if target is not None and (previous is None or target is not previous.record):
        return AuditProblem(
            "reordered", stream, item.record.seq, f"links to the record at seq {target.seq}"
        )
    if previous is None:
        return AuditProblem("edited", stream, item.record.seq, "first record does not open a chain")
    return AuditProblem(
        "edited",
        stream,
        previous.record.seq,
        f"its hash is not the one seq {item.seq} committed to",
    )


def _original_seq(record: AuditRecord, budget: list[int]) -> int | None:
    """The seq near ``record.seq`` at which the record's hash is correct, if any."""
    if budget[0] <= 0:
        return None
    budget[0] -= 1
    low = max(1, record.seq - _RELOCATION_SEARCH)
    for candidate in range(low, record.seq + _RELOCATION_SEARCH + 1):
        if candidate == record.seq:
            continue
        try:
            digest = chain_hash(
                record.prev_hash,
                record.stream,
                candidate,
                record.at,
                record.kind,
                record.payload,
            )
        except ValueError:
            return None
        if digest == record.hash:
            return candidate
    return None


def _missing(stream: str, first: int, last: int, detail: str) -> list[AuditProblem]:
    if last - first + 1 > _GAP_DETAIL_LIMIT:
        return [AuditProblem("deleted", stream, first, f"seqs {first}..{last} {detail}")]
    return [AuditProblem("deleted", stream, seq, detail) for seq in range(first, last + 1)]


def _unique(problems: Iterable[AuditProblem]) -> list[AuditProblem]:
    seen: set[tuple[str, str, int]] = set()
    unique: list[AuditProblem] = []
    for problem in problems:
        key = (problem.kind, problem.stream, problem.seq)
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique
