"""Relay jobs: what the relayer must submit, and where it keeps track of them.

A job's life (the relayer's write-ahead discipline makes every crash point recoverable)::

    queued ──sign──▶ signed ──send──▶ submitted ──receipt──▶ executed | failed
       │               │  ▲                │
       │               │  └── rebroadcast ─┘ (same bytes, same hash)
       │               └── nonce proven consumed by another tx, none of ours mined ──▶ queued
       └── fee cap exceeded at signing time ──▶ refused (nothing signed or sent)

- ``signed`` is persisted **before** the transaction is sent, with its nonce, raw bytes and
  hash, so a crash between signing and sending, or after sending but before the answer was
  recorded, is resolved on restart by looking the hash up on chain.
- ``tx_hashes`` lists every hash ever signed for the job (a re-signed job keeps the old ones),
  so the relayer can always tell whether *any* of its transactions for the job was mined.
- ``version`` increases with every update; stores update with compare-and-set on it, so two
  relayer processes can never both move the same job, and refuse a second *outstanding* job on
  the same (sender, nonce), so they can never both sign one nonce.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from sessionward.chain.ethereum_transactions import Authorization
from sessionward.crypto.secp256k1 import normalize_address

__all__ = [
    "OUTSTANDING",
    "DuplicateRelayJob",
    "InMemoryRelayJobStore",
    "JobState",
    "RelayJob",
    "RelayJobStore",
]


class JobState(StrEnum):
    QUEUED = "queued"
    SIGNED = "signed"
    SUBMITTED = "submitted"
    EXECUTED = "executed"
    FAILED = "failed"
    REFUSED = "refused"

    @property
    def is_final(self) -> bool:
        return self in (JobState.EXECUTED, JobState.FAILED, JobState.REFUSED)


# Jobs holding a nonce whose transaction may still be mined.
OUTSTANDING = frozenset({JobState.SIGNED, JobState.SUBMITTED})


class DuplicateRelayJob(ValueError):
    """A job with this id already exists."""


@dataclass(frozen=True, slots=True)
class RelayJob:
    """One transaction the relayer owes the service. Times are unix milliseconds."""

    job_id: str
    sender: str
    to: str
    data: bytes = field(repr=False)
    value: int
    gas_limit: int
    created_at_ms: int
    fee_cap_wei: int | None = None
    authorization_list: tuple[Authorization, ...] = ()
    state: JobState = JobState.QUEUED
    nonce: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    raw_tx: bytes | None = field(default=None, repr=False)
    tx_hash: str | None = None
    tx_hashes: tuple[str, ...] = ()
    submitted_at_ms: int | None = None
    updated_at_ms: int | None = None
    block_number: int | None = None
    gas_used: int | None = None
    effective_gas_price: int | None = None
    revert_reason: str | None = None
    error: str | None = None
    attempts: int = 0
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sender", normalize_address(self.sender))
        object.__setattr__(self, "to", normalize_address(self.to))
        if self.value < 0 or self.gas_limit <= 0:
            raise ValueError("a job needs a non-negative value and a positive gas limit")
        if self.state in OUTSTANDING and (
            self.nonce is None or self.raw_tx is None or self.tx_hash is None
        ):
            raise ValueError(f"a {self.state} job needs its nonce, raw transaction and hash")

    def evolve(self, **changes: object) -> RelayJob:
        """A copy with ``changes`` and the next ``version``."""
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]


class RelayJobStore(Protocol):
    """Durable job records (SQL in the service, memory in unit tests)."""

    def add(self, job: RelayJob, refs: Sequence[str] = ()) -> None:
        """Insert a new job and, with it (atomically), what it carries: ``refs``, in order
        (a batch's calls). Raises :class:`DuplicateRelayJob` if the id exists or one of the
        refs belongs to a job already; nothing is stored then."""
        ...

    def get(self, job_id: str) -> RelayJob | None:
        """The job as last stored."""
        ...

    def refs_of(self, job_id: str) -> tuple[str, ...]:
        """The refs the job was added with, in order (empty for none, or no such job)."""
        ...

    def job_of_ref(self, ref: str) -> RelayJob | None:
        """The job that carries ``ref``, if any (at most one ever does)."""
        ...

    def replace(self, job: RelayJob) -> bool:
        """Store ``job`` iff the stored version is ``job.version - 1`` (compare-and-set) and,
        if ``job`` is outstanding, no *other* outstanding job of its sender holds its nonce.
        Returns False otherwise; nothing is changed then."""
        ...

    def in_states(self, sender: str, states: Collection[JobState]) -> list[RelayJob]:
        """``sender``'s jobs in ``states``, ordered by nonce (jobs without one last), then by
        creation time, then id."""
        ...


def _order(job: RelayJob) -> tuple[bool, int, int, str]:
    return (job.nonce is None, job.nonce or 0, job.created_at_ms, job.job_id)


class InMemoryRelayJobStore:
    """A :class:`RelayJobStore` in a dict (unit tests; also survives a simulated relayer
    restart when the same instance is handed to a new relayer)."""

    def __init__(self) -> None:
        self._jobs: dict[str, RelayJob] = {}
        self._refs: dict[str, tuple[str, ...]] = {}
        self._job_of_ref: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, job: RelayJob, refs: Sequence[str] = ()) -> None:
        with self._lock:
            taken = any(ref in self._job_of_ref for ref in refs) or len(set(refs)) < len(refs)
            if job.job_id in self._jobs or taken:
                raise DuplicateRelayJob(job.job_id)
            self._jobs[job.job_id] = job
            if refs:
                self._refs[job.job_id] = tuple(refs)
                self._job_of_ref.update((ref, job.job_id) for ref in refs)

    def get(self, job_id: str) -> RelayJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def refs_of(self, job_id: str) -> tuple[str, ...]:
        with self._lock:
            return self._refs.get(job_id, ())

    def job_of_ref(self, ref: str) -> RelayJob | None:
        with self._lock:
            job_id = self._job_of_ref.get(ref)
            return None if job_id is None else self._jobs[job_id]

    def replace(self, job: RelayJob) -> bool:
        with self._lock:
            current = self._jobs.get(job.job_id)
            if current is None or current.version != job.version - 1:
                return False
            if job.state in OUTSTANDING and any(
                other.job_id != job.job_id
                and other.sender == job.sender
                and other.nonce == job.nonce
                and other.state in OUTSTANDING
                for other in self._jobs.values()
            ):
                return False
            self._jobs[job.job_id] = job
            return True

    def in_states(self, sender: str, states: Collection[JobState]) -> list[RelayJob]:
        wanted = normalize_address(sender)
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.sender == wanted and j.state in states]
        return sorted(jobs, key=_order)
