"""Calldata for SessionWard's contracts, as the service submits them through the relayer.

The ABIs come from the Vyper sources (compiled once, cached on disk), so the encodings cannot
drift from the contracts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from sessionward.chain.artifacts import session_account, session_account_factory
from sessionward.chain.interface import CallRequest, Chain
from sessionward.chain.relay_jobs import DuplicateRelayJob, RelayJob
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.crypto.typed_data import SCHEMA
from sessionward.domain.bounds import MAX_TRANSACTION_GAS, enable_gas_ceiling
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.store.database import Database
from sessionward.store.relay_jobs import SqlRelayJobStore

# Gas limits given to the relayer for the service's own calls (no estimation: an estimate
# against the current state would fail for a call that depends on an earlier queued one, such
# as a removal queued behind its install). Enabling is estimated (:func:`enable_gas_limit`):
# its cost grows with the grant, up to about 12M gas at the grant size bound.
DEPLOY_GAS: Final = 600_000
REVOKE_GAS: Final = 150_000
ENABLE_GAS_MARGIN_PERCENT: Final = 20
EXECUTE_BASE_GAS: Final = 300_000
EXECUTE_GAS_PER_CALL: Final = 250_000


class AccountCalls:
    """Encoders for the account factory and the SessionAccount's sessions module."""

    def __init__(self) -> None:
        self._account = session_account()
        self._factory = session_account_factory()

    def create_account(self, owner: str, salt: bytes) -> bytes:
        return self._factory.encode("create_account", owner, salt)

    def get_address(self, owner: str, salt: bytes) -> bytes:
        return self._factory.encode("get_address", owner, salt)

    def decode_address(self, data: bytes) -> str:
        (address,) = self._factory.decode_output("get_address", data)
        assert isinstance(address, str)
        return address

    def owner(self) -> bytes:
        return self._account.encode("owner")

    def decode_owner(self, data: bytes) -> str:
        (owner,) = self._account.decode_output("owner", data)
        assert isinstance(owner, str)
        return owner

    def epoch(self) -> bytes:
        return self._account.encode("epoch")

    def decode_uint(self, function: str, data: bytes) -> int:
        (value,) = self._account.decode_output(function, data)
        assert isinstance(value, int)
        return value

    def enable_session(self, grant: Mapping[str, Any], owner_signature: bytes) -> bytes:
        """``enable_session(SessionGrant, bytes)`` with the grant message the owner signed."""
        return self._account.encode(
            "enable_session", as_abi_tuple("SessionGrant", grant), owner_signature
        )

    def execute_with_session(
        self,
        session_key: str,
        mode: bytes,
        execution: bytes,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> bytes:
        """The relayed session call; ``nonce`` is the session-call nonce the key signed."""
        return self._account.encode(
            "execute_with_session", session_key, mode, execution, nonce, deadline, signature
        )

    def execute_session_op(self, session_key: str, mode: bytes, execution: bytes) -> bytes:
        """A session call as a UserOperation's call data (the EntryPoint runs it after the
        account's ``validateUserOp`` checked the key's signature of the whole operation)."""
        return self._account.encode("execute_session_op", session_key, mode, execution)

    def revoke_session(self, session_key: str) -> bytes:
        return self._account.encode("revoke_session", session_key)

    def session(self, session_key: str) -> bytes:
        return self._account.encode("session", session_key)

    def decode_session(self, data: bytes) -> tuple[int, int, int]:
        """``session(key)``'s view as ``(status, epoch, expiresAt)``."""
        (view,) = self._account.decode_output("session", data)
        assert isinstance(view, tuple)
        status, _valid_after, expires_at, _period, _uses_max, epoch = view[:6]
        assert isinstance(status, int) and isinstance(epoch, int)
        assert isinstance(expires_at, int)
        return status, epoch, expires_at

    def grant_nonce_used(self, nonce: int) -> bytes:
        return self._account.encode("grant_nonce_used", nonce)

    def decode_bool(self, function: str, data: bytes) -> bool:
        (value,) = self._account.decode_output(function, data)
        assert isinstance(value, bool)
        return value


class Installed(IntEnum):
    """A session key's state on its account, as the account's own views say."""

    NEVER = 0
    """Not installed, and its grant can still be installed by anyone holding the signature."""
    ACTIVE = 1
    """Installed and live (current epoch)."""
    REMOVED = 2
    """Installed once and removed (revoked, or its epoch was bumped by revoke-all)."""
    NEVER_INSTALLABLE = 3
    """Not installed, and its grant can no longer be installed (grant nonce spent or epoch
    bumped): verified never installed."""


@dataclass(frozen=True, slots=True)
class OnchainSession:
    """What the chain says about one session (read by :func:`read_onchain_session`)."""

    state: Installed
    expires_at: int


def read_onchain_session(
    chain: Chain,
    calls: AccountCalls,
    *,
    account: str,
    session_key: str,
    grant_nonce: int,
    grant_epoch: int,
) -> OnchainSession:
    """The session's state from the account's ``session(key)``, ``epoch()`` and
    ``grant_nonce_used(nonce)`` views (raises :class:`~sessionward.chain.errors.ChainError`
    when the node cannot answer). An account not deployed has installed nothing."""
    if not chain.get_code(account):
        return OnchainSession(Installed.NEVER, 0)
    # Read in this order: the views may answer from different blocks, and a grant nonce once
    # spent stays spent. Spent before the key's state was read, with the key never installed,
    # means another grant used it; unspent then, the key's state read after is the newer fact.
    used = calls.decode_bool(
        "grant_nonce_used", chain.call(account, calls.grant_nonce_used(grant_nonce))
    )
    status, epoch, expires_at = calls.decode_session(
        chain.call(account, calls.session(session_key))
    )
    account_epoch = calls.decode_uint("epoch", chain.call(account, calls.epoch()))
    if status == 1:
        live = epoch == account_epoch
        return OnchainSession(Installed.ACTIVE if live else Installed.REMOVED, expires_at)
    if status == 2:
        return OnchainSession(Installed.REMOVED, expires_at)
    if used or account_epoch != grant_epoch:
        return OnchainSession(Installed.NEVER_INSTALLABLE, 0)
    return OnchainSession(Installed.NEVER, 0)


class EnableTooCostly(SessionWardError):
    """The enable call's estimate is above what one transaction may use (EIP-7825)."""

    def __init__(self, estimate: int) -> None:
        super().__init__(
            ReasonCode.GRANT_TOO_LARGE,
            f"enabling this grant needs {estimate} gas; a transaction may use at most "
            f"{MAX_TRANSACTION_GAS}",
        )
        self.estimate = estimate


def enable_gas_limit(
    chain: Chain, *, sender: str, account: str, data: bytes, words: int, contract_owner: bool
) -> int:
    """The gas limit of an install job: ``enable_session`` calldata ``data`` estimated from
    ``sender`` (the relayer) against the account, plus :data:`ENABLE_GAS_MARGIN_PERCENT`,
    at most :data:`~sessionward.domain.bounds.MAX_TRANSACTION_GAS`.

    An account whose deployment is still queued has no code to estimate against: it gets the
    grant's computed ceiling (:func:`~sessionward.domain.bounds.enable_gas_ceiling` of its
    ``words`` storage words and call data, which every grant the domain accepts keeps under the
    cap), or the cap itself for a ``contract_owner`` (ERC-1271), whose signature check costs
    what the owner contract spends. Only the gas used is paid. Raises
    :class:`~sessionward.chain.errors.ExecutionReverted` when the account would refuse the
    grant, another :class:`~sessionward.chain.errors.ChainError` when the node cannot answer,
    and :class:`EnableTooCostly` (``GRANT_TOO_LARGE``) for an estimate above the cap."""
    if not chain.get_code(account):
        if contract_owner:
            return MAX_TRANSACTION_GAS
        ceiling = enable_gas_ceiling(words=words, calldata_bytes=len(data))
        return min(ceiling, MAX_TRANSACTION_GAS)
    estimate = chain.estimate_gas(CallRequest(to=account, data=data, sender=sender))
    if estimate > MAX_TRANSACTION_GAS:
        raise EnableTooCostly(estimate)
    return min(estimate + estimate * ENABLE_GAS_MARGIN_PERCENT // 100, MAX_TRANSACTION_GAS)


def revert_code(reason: str | None) -> ReasonCode | None:
    """The reason code an account revert carries as its ``Error(string)`` text (the
    SessionAccount reverts with the code itself), or ``None`` for any other text."""
    try:
        return ReasonCode(reason) if reason is not None else None
    except ValueError:
        return None


def queue_relay_job(
    db: Database, *, sender: str, job_id: str, to: str, data: bytes, gas_limit: int
) -> RelayJob:
    """Write a relay job for the relayer (``queued``) in the caller's transaction or unit of
    work, without asking the chain anything: so a state transition and the job that carries it
    to the chain commit together, even while the node is down. The fee cap is checked when the
    relayer signs it (refused then, nothing sent). Idempotent on ``job_id``."""
    store = SqlRelayJobStore(db)
    job = RelayJob(
        job_id=job_id,
        sender=normalize_address(sender),
        to=normalize_address(to),
        data=bytes(data),
        value=0,
        gas_limit=gas_limit,
        created_at_ms=int(time.time() * 1000),
    )
    existing = store.get(job_id)
    if existing is not None:
        return existing
    with suppress(DuplicateRelayJob):  # another node wrote it first: the same job
        store.add(job)
    stored = store.get(job_id)
    assert stored is not None
    return stored


def as_abi_tuple(struct: str, message: Mapping[str, Any]) -> tuple[object, ...]:
    """An EIP-712 struct message as the ABI tuple of the same struct (fields in declared order,
    nested structs and arrays of structs converted too): the contract takes the grant exactly
    as the owner signed it."""
    return SCHEMA.abi_tuple(struct, message)
