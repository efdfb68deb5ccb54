"""The relayer's jobs in the ``relay_jobs`` table (created by migration ``0002``).

A :class:`sessionward.chain.relay_jobs.RelayJobStore` over SQL, shared by every node:

- :meth:`SqlRelayJobStore.replace` is one conditional ``UPDATE ... WHERE version = :previous``
  (compare-and-set), so two relayer processes never both move one job;
- with a lease fence, that same ``UPDATE`` also requires the node's relayer lease at its epoch
  (:mod:`sessionward.store.lease`), so a node that lost the lease cannot claim a job;
- the partial unique index ``uq_relay_jobs_outstanding_nonce`` on ``(sender, nonce)`` for jobs
  in ``signed``/``submitted`` makes the database refuse two outstanding jobs on one nonce (a
  violation is reported as a lost race: ``False``), so two processes never both sign a nonce.

Column conventions follow :mod:`sessionward.store.schema`: times are integer unix
milliseconds (``*_ms``), wei amounts :class:`Uint256`, gas and nonces ``BIGINT`` (a nonce is
below 2**63 in practice; a larger one is refused with ``ValueError`` rather than stored wrong).
The authorization list is kept as its RLP encoding; ``tx_hashes`` as space-separated hex.

The table is declared on the store's shared ``metadata`` so the migration/metadata drift check
covers it once this module is imported.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from sqlalchemy import (
    Row,
    case,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from sessionward.chain.ethereum_transactions import (
    decode_authorization_list,
    encode_authorization_list,
)
from sessionward.chain.relay_jobs import DuplicateRelayJob, JobState, RelayJob
from sessionward.crypto.secp256k1 import normalize_address

from . import faults
from .database import Database
from .lease import FENCE_CONDITION, LeaseFence
from .schema import relay_job_refs, relay_jobs

__all__ = ["SqlRelayJobStore", "relay_jobs"]

_BIGINT_MAX: Final = 2**63 - 1


def _checked_bigint(name: str, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= _BIGINT_MAX:
        raise ValueError(f"{name} does not fit a BIGINT column")
    return value


def _values(job: RelayJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "sender": job.sender,
        "to_address": job.to,
        "data": job.data,
        "value": job.value,
        "gas_limit": _checked_bigint("gas_limit", job.gas_limit),
        "fee_cap_wei": job.fee_cap_wei,
        "authorization_list": encode_authorization_list(job.authorization_list),
        "state": job.state.value,
        "nonce": _checked_bigint("nonce", job.nonce),
        "max_fee_per_gas": job.max_fee_per_gas,
        "max_priority_fee_per_gas": job.max_priority_fee_per_gas,
        "raw_tx": job.raw_tx,
        "tx_hash": job.tx_hash,
        "tx_hashes": " ".join(job.tx_hashes),
        "created_at_ms": job.created_at_ms,
        "submitted_at_ms": job.submitted_at_ms,
        "updated_at_ms": job.updated_at_ms,
        "block_number": job.block_number,
        "gas_used": job.gas_used,
        "effective_gas_price": job.effective_gas_price,
        "revert_reason": job.revert_reason,
        "error": job.error,
        "attempts": job.attempts,
        "version": job.version,
    }


def _job(row: Row[tuple[object, ...]]) -> RelayJob:
    m = row._mapping
    raw_tx = m["raw_tx"]
    return RelayJob(
        job_id=m["job_id"],
        sender=m["sender"],
        to=m["to_address"],
        data=bytes(m["data"]),
        value=m["value"],
        gas_limit=m["gas_limit"],
        created_at_ms=m["created_at_ms"],
        fee_cap_wei=m["fee_cap_wei"],
        authorization_list=decode_authorization_list(bytes(m["authorization_list"])),
        state=JobState(m["state"]),
        nonce=m["nonce"],
        max_fee_per_gas=m["max_fee_per_gas"],
        max_priority_fee_per_gas=m["max_priority_fee_per_gas"],
        raw_tx=None if raw_tx is None else bytes(raw_tx),
        tx_hash=m["tx_hash"],
        tx_hashes=tuple(m["tx_hashes"].split()),
        submitted_at_ms=m["submitted_at_ms"],
        updated_at_ms=m["updated_at_ms"],
        block_number=m["block_number"],
        gas_used=m["gas_used"],
        effective_gas_price=m["effective_gas_price"],
        revert_reason=m["revert_reason"],
        error=m["error"],
        attempts=m["attempts"],
        version=m["version"],
    )


class SqlRelayJobStore:
    """A :class:`sessionward.chain.relay_jobs.RelayJobStore` over SQL.

    With a :attr:`fence` (the relayer lease its node holds, :mod:`sessionward.store.lease`),
    every :meth:`replace` (claiming a queued job by signing it, and every later move) is
    conditioned on that lease in the same ``UPDATE``: a node whose lease expired or was taken
    over (a higher epoch) moves nothing, and without a term it does not even ask.
    """

    def __init__(self, db: Database, *, fence: LeaseFence | None = None) -> None:
        self._db = db
        self.fence = fence

    def add(self, job: RelayJob, refs: Sequence[str] = ()) -> None:
        try:
            with self._db.writing() as conn:
                conn.execute(insert(relay_jobs).values(**_values(job)))
                if refs:
                    conn.execute(
                        insert(relay_job_refs),
                        [
                            {"job_id": job.job_id, "position": i, "ref": ref}
                            for i, ref in enumerate(refs)
                        ],
                    )
        except IntegrityError:
            raise DuplicateRelayJob(job.job_id) from None

    def get(self, job_id: str) -> RelayJob | None:
        with self._db.reading() as conn:
            row = conn.execute(select(relay_jobs).where(relay_jobs.c.job_id == job_id)).first()
        return None if row is None else _job(row)

    def refs_of(self, job_id: str) -> tuple[str, ...]:
        with self._db.reading() as conn:
            rows = conn.execute(
                select(relay_job_refs.c.ref)
                .where(relay_job_refs.c.job_id == job_id)
                .order_by(relay_job_refs.c.position)
            )
            return tuple(str(ref) for (ref,) in rows)

    def job_of_ref(self, ref: str) -> RelayJob | None:
        with self._db.reading() as conn:
            row = conn.execute(
                select(relay_jobs)
                .join(relay_job_refs, relay_job_refs.c.job_id == relay_jobs.c.job_id)
                .where(relay_job_refs.c.ref == ref)
            ).first()
        return None if row is None else _job(row)

    def replace(self, job: RelayJob) -> bool:
        values = _values(job)
        del values["job_id"]
        statement = update(relay_jobs).where(
            relay_jobs.c.job_id == job.job_id, relay_jobs.c.version == job.version - 1
        )
        fence = self.fence
        if fence is not None:
            bound = fence.parameters()
            if bound is None:
                return False  # no term: this node may not move any job
            condition = FENCE_CONDITION[self._db.dialect_name]
            statement = statement.where(text(condition).bindparams(**bound))
        faults.point(f"relay_job.before_save.{job.state.value}")
        try:
            with self._db.writing() as conn:
                result = conn.execute(statement.values(**values))
        except IntegrityError:
            return False  # another outstanding job holds this (sender, nonce)
        if result.rowcount != 1:
            return False
        faults.point(f"relay_job.after_save.{job.state.value}")
        return True

    def in_states(self, sender: str, states: Collection[JobState]) -> list[RelayJob]:
        wanted = [JobState(s).value for s in states]
        if not wanted:
            return []
        query = (
            select(relay_jobs)
            .where(
                relay_jobs.c.sender == normalize_address(sender),
                relay_jobs.c.state.in_(wanted),
            )
            .order_by(
                case((relay_jobs.c.nonce.is_(None), 1), else_=0),
                relay_jobs.c.nonce,
                relay_jobs.c.created_at_ms,
                relay_jobs.c.job_id,
            )
        )
        with self._db.reading() as conn:
            return [_job(row) for row in conn.execute(query)]
