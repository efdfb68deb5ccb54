"""Calldata for SessionWard's contracts, as the service submits them through the relayer.

A wallet's sessions live in one of two places, and :meth:`AccountCalls.sessions_of` gives the
:class:`OnchainSessions` that drives them:

- :class:`AccountSessions`: a SessionAccount (factory-made or EIP-7702), whose sessions module
  is compiled into the account: the service's transactions go to the account;
- :class:`ModuleSessions`: any ERC-7579 account with SessionWard's module
  (``SessionWardModule.vy``) installed as validator and executor: the module holds the
  sessions of every account, keyed by account, and the service's transactions go to it.

Both enforce the same rules with the same reason codes and take the same owner-signed
``SessionGrant`` and session-key-signed ``SessionCall`` (the account is the EIP-712
``verifyingContract`` in both), so everything before the chain is the same for both kinds.

The SessionAccount's ABI comes from its Vyper source (compiled once, cached on disk), so its
encodings cannot drift from the contract; the module's few entry points are spelled here and a
test checks them against the module's compiled ABI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from sessionward.chain.artifacts import session_account, session_account_factory
from sessionward.chain.interface import CallRequest, Chain
from sessionward.chain.relay_batch import BatchedCall
from sessionward.chain.relay_jobs import DuplicateRelayJob, RelayJob, RelayJobStore
from sessionward.contracts.encoding import session_user_op_signature
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.crypto.typed_data import SCHEMA
from sessionward.domain.abi import TupleType as AbiTuple
from sessionward.domain.abi import decode_tuple, encode_call, parse_signature
from sessionward.domain.bounds import MAX_BATCH, MAX_TRANSACTION_GAS, enable_gas_ceiling
from sessionward.domain.calldata import encode_execute
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.store.database import Database
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.store.transaction_records import TransactionRecord
from sessionward.store.wallets import WalletRecord

if TYPE_CHECKING:  # the runtime holds this module's AccountCalls
    from .runtime import Runtime

# Gas limits given to the relayer for the service's own calls (no estimation: an estimate
# against the current state would fail for a call that depends on an earlier queued one, such
# as a removal queued behind its install). Enabling is estimated (:func:`enable_gas_limit`):
# its cost grows with the grant, up to about 12M gas at the grant size bound.
DEPLOY_GAS: Final = 600_000
REVOKE_GAS: Final = 150_000
ENABLE_GAS_MARGIN_PERCENT: Final = 20
EXECUTE_BASE_GAS: Final = 300_000
EXECUTE_GAS_PER_CALL: Final = 250_000
RELAYED_CALL_GAS: Final = EXECUTE_BASE_GAS + EXECUTE_GAS_PER_CALL * MAX_BATCH
"""The gas the relayer gives a session call: enough for the largest execution an Execute
signs (``MAX_BATCH`` calls)."""


class AccountCalls:
    """Encoders for the account factory and the SessionAccount's sessions module."""

    def __init__(self) -> None:
        self._account = session_account()
        self._factory = session_account_factory()

    def sessions_of(self, wallet: WalletRecord) -> OnchainSessions:
        """Where ``wallet``'s sessions live on chain, and how the service drives them."""
        if wallet.session_module is None:
            return AccountSessions(self, wallet.account)
        return ModuleSessions(self, wallet.account, wallet.session_module)

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


def transaction_nonce_key(txn_id: str, *, bits: int) -> int:
    """The first ``bits`` bits of ``keccak256("sessionward/user-operation\\0" ‖ txn_id)``: the
    part of a UserOperation's nonce key (ERC-4337's ``key << 64 | sequence``) that is the
    transaction's own, so every operation has a key of its own, rebuilt the same after a
    crash."""
    digest = keccak256(b"sessionward/user-operation\x00" + txn_id.encode())
    return int.from_bytes(digest) >> (256 - bits)


def _candidate(txn_id: str, attempt: int) -> str:
    """What names the ``attempt``-th nonce key of a transaction (the first: its id alone)."""
    return txn_id if attempt == 0 else f"{txn_id}#{attempt}"


class OnchainSessions(Protocol):
    """The contract that holds one wallet's sessions, as the service drives it.

    ``address`` is where the service's transactions go (enable, relayed session calls,
    removal); every encoder returns the full calldata for it. The grant and the session call
    are signed over the account's EIP-712 domain whichever kind holds them."""

    @property
    def address(self) -> str: ...

    def enable_session(self, grant: Mapping[str, Any], owner_signature: bytes) -> bytes:
        """Enable a session with the grant message the owner signed."""
        ...

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
        ...

    def revoke_session(self, session_key: str) -> bytes:
        """The removal the service sends as the grant's ``revoker`` (its relayer)."""
        ...

    def epoch(self, chain: Chain) -> int:
        """The account's current session epoch (a grant names it); raises ``ChainError``."""
        ...

    def read(
        self, chain: Chain, *, session_key: str, grant_nonce: int, grant_epoch: int
    ) -> OnchainSession:
        """The session's state on chain; raises ``ChainError`` when the node cannot answer."""
        ...

    def user_operation_call_data(self, session_key: str, mode: bytes, execution: bytes) -> bytes:
        """A session call as a UserOperation's ``callData``."""
        ...

    def user_operation_nonce(self, txn_id: str, *, attempt: int = 0) -> int:
        """The EntryPoint nonce of transaction ``txn_id``'s operation (sequence 0); its key
        is the transaction's ``attempt``-th candidate (another when a key is taken)."""
        ...

    def user_operation_signature(self, session_key: str, signature: bytes, *, now: int) -> bytes:
        """``userOp.signature`` around the session key's 65-byte signature of the
        EIP-191 hash of the ``userOpHash``; ``now`` is when the operation is meant to run."""
        ...


class AccountSessions:
    """A SessionAccount's own sessions module (the account is the contract)."""

    def __init__(self, calls: AccountCalls, account: str) -> None:
        self._calls = calls
        self._account = normalize_address(account)

    @property
    def address(self) -> str:
        return self._account

    def enable_session(self, grant: Mapping[str, Any], owner_signature: bytes) -> bytes:
        return self._calls.enable_session(grant, owner_signature)

    def execute_with_session(
        self,
        session_key: str,
        mode: bytes,
        execution: bytes,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> bytes:
        return self._calls.execute_with_session(
            session_key, mode, execution, nonce, deadline, signature
        )

    def revoke_session(self, session_key: str) -> bytes:
        return self._calls.revoke_session(session_key)

    def epoch(self, chain: Chain) -> int:
        if not chain.get_code(self._account):
            return 0  # not deployed yet: its first epoch
        return self._calls.decode_uint("epoch", chain.call(self._account, self._calls.epoch()))

    def read(
        self, chain: Chain, *, session_key: str, grant_nonce: int, grant_epoch: int
    ) -> OnchainSession:
        return read_onchain_session(
            chain,
            self._calls,
            account=self._account,
            session_key=session_key,
            grant_nonce=grant_nonce,
            grant_epoch=grant_epoch,
        )

    def user_operation_call_data(self, session_key: str, mode: bytes, execution: bytes) -> bytes:
        return self._calls.execute_session_op(session_key, mode, execution)

    def user_operation_nonce(self, txn_id: str, *, attempt: int = 0) -> int:
        # The whole 192-bit key is the transaction's: the account validates every operation.
        return transaction_nonce_key(_candidate(txn_id, attempt), bits=192) << 64

    def user_operation_signature(self, session_key: str, signature: bytes, *, now: int) -> bytes:
        return session_user_op_signature(session_key, signature)


# SessionWardModule's entry points the service uses (checked against its compiled ABI by
# tests/module_wallets), and the ERC-7579 account functions it calls.
_MODULE_EXECUTE = parse_signature(
    "execute_with_session(address,address,bytes32,bytes,uint256,uint48,bytes)"
)
_MODULE_REVOKE = parse_signature("revoke_session_as_revoker(address,address)")
_MODULE_SESSION = parse_signature("session(address,address)")
_MODULE_EPOCH = parse_signature("epoch(address)")
_MODULE_GRANT_NONCE_USED = parse_signature("grant_nonce_used(address,uint256)")
_IS_MODULE_INSTALLED = parse_signature("isModuleInstalled(uint256,address,bytes)")
_THREE_WORDS = AbiTuple(parse_signature("r(uint256,uint256,uint256)").params)
_ONE_WORD = AbiTuple(parse_signature("r(uint256)").params)
_ONE_BOOL = AbiTuple(parse_signature("r(bool)").params)

MODULE_TYPE_VALIDATOR: Final = 1
"""ERC-7579's module type of a validator."""
MODULE_TYPE_EXECUTOR: Final = 2
"""ERC-7579's module type of an executor."""
CLAIMED_TIME_BYTES: Final = 6
"""A module session operation's signature ends with the uint48 time it claims to run at."""


def is_module_installed_call(module_type: int, module: str) -> bytes:
    """An ERC-7579 account's ``isModuleInstalled(moduleTypeId, module, "")``."""
    return encode_call(_IS_MODULE_INSTALLED, (module_type, module, b""))


def decode_bool(data: bytes) -> bool:
    """A ``bool`` return value (strict ABI: anything but a canonical bool raises)."""
    (value,) = decode_tuple(_ONE_BOOL, data, what="a bool return value")
    assert isinstance(value, bool)
    return value


class ModuleSessions:
    """The sessions of an ERC-7579 account held by SessionWard's module (the module is the
    contract; every call names the account).

    The module revokes through ``revoke_session_as_revoker`` (the grant's ``revoker``, the
    service's relayer); a UserOperation's nonce key is ``module ‖ 32 bits of the transaction``
    (the account's validator selection, as ERC-7579 accounts do), its call data the account's
    own ``execute(mode, executionCalldata)``, and its signature ``sessionKey ‖ r ‖ s ‖ v ‖
    time`` where ``time`` (6 bytes) is when it is meant to run: the module charges the refill
    windows of that time in validation, where ERC-7562 bans reading the clock."""

    def __init__(self, calls: AccountCalls, account: str, module: str) -> None:
        self._calls = calls
        self._account = normalize_address(account)
        self._module = normalize_address(module)

    @property
    def address(self) -> str:
        return self._module

    def enable_session(self, grant: Mapping[str, Any], owner_signature: bytes) -> bytes:
        # The module's enable_session has SessionAccount's ABI (the same SessionGrant struct).
        return self._calls.enable_session(grant, owner_signature)

    def execute_with_session(
        self,
        session_key: str,
        mode: bytes,
        execution: bytes,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> bytes:
        return encode_call(
            _MODULE_EXECUTE,
            (self._account, session_key, mode, execution, nonce, deadline, signature),
        )

    def revoke_session(self, session_key: str) -> bytes:
        return encode_call(_MODULE_REVOKE, (self._account, session_key))

    def epoch(self, chain: Chain) -> int:
        data = chain.call(self._module, encode_call(_MODULE_EPOCH, (self._account,)))
        (value,) = decode_tuple(_ONE_WORD, data, what="the module's epoch")
        assert isinstance(value, int)
        return value

    def read(
        self, chain: Chain, *, session_key: str, grant_nonce: int, grant_epoch: int
    ) -> OnchainSession:
        # The same order as read_onchain_session: a spent grant nonce stays spent.
        used = decode_bool(
            chain.call(
                self._module, encode_call(_MODULE_GRANT_NONCE_USED, (self._account, grant_nonce))
            )
        )
        data = chain.call(self._module, encode_call(_MODULE_SESSION, (self._account, session_key)))
        status, _valid_after, expires_at = decode_tuple(_THREE_WORDS, data, what="a session")
        assert isinstance(status, int) and isinstance(expires_at, int)
        epoch = self.epoch(chain)
        # The module answers for the current epoch only: a session of an earlier one (before a
        # revoke_all or an uninstall) reads as none, and can never be live again.
        if status == 1:
            return OnchainSession(Installed.ACTIVE, expires_at)
        if status == 2:
            return OnchainSession(Installed.REMOVED, expires_at)
        if used or epoch != grant_epoch:
            return OnchainSession(Installed.NEVER_INSTALLABLE, 0)
        return OnchainSession(Installed.NEVER, 0)

    def user_operation_call_data(self, session_key: str, mode: bytes, execution: bytes) -> bytes:
        return encode_execute(mode, execution)

    def user_operation_nonce(self, txn_id: str, *, attempt: int = 0) -> int:
        own = transaction_nonce_key(_candidate(txn_id, attempt), bits=32)
        return ((int(self._module, 16) << 32) | own) << 64

    def user_operation_signature(self, session_key: str, signature: bytes, *, now: int) -> bytes:
        if len(signature) != 65:
            raise ValueError("a session signature is 65 bytes r ‖ s ‖ v")
        key = bytes.fromhex(normalize_address(session_key)[2:])
        return key + bytes(signature) + now.to_bytes(CLAIMED_TIME_BYTES, "big")


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
    chain: Chain, *, sender: str, to: str, data: bytes, words: int, contract_owner: bool
) -> int:
    """The gas limit of an install job: ``enable_session`` calldata ``data`` estimated from
    ``sender`` (the relayer) against ``to`` (the account, or the module holding its
    sessions), plus :data:`ENABLE_GAS_MARGIN_PERCENT`, at most
    :data:`~sessionward.domain.bounds.MAX_TRANSACTION_GAS`.

    An account whose deployment is still queued has no code to estimate against: it gets the
    grant's computed ceiling (:func:`~sessionward.domain.bounds.enable_gas_ceiling` of its
    ``words`` storage words and call data, which every grant the domain accepts keeps under the
    cap), or the cap itself for a ``contract_owner`` (ERC-1271), whose signature check costs
    what the owner contract spends. Only the gas used is paid. Raises
    :class:`~sessionward.chain.errors.ExecutionReverted` when the account would refuse the
    grant, another :class:`~sessionward.chain.errors.ChainError` when the node cannot answer,
    and :class:`EnableTooCostly` (``GRANT_TOO_LARGE``) for an estimate above the cap."""
    if not chain.get_code(to):
        if contract_owner:
            return MAX_TRANSACTION_GAS
        ceiling = enable_gas_ceiling(words=words, calldata_bytes=len(data))
        return min(ceiling, MAX_TRANSACTION_GAS)
    estimate = chain.estimate_gas(CallRequest(to=to, data=data, sender=sender))
    if estimate > MAX_TRANSACTION_GAS:
        raise EnableTooCostly(estimate)
    return min(estimate + estimate * ENABLE_GAS_MARGIN_PERCENT // 100, MAX_TRANSACTION_GAS)


def call_job_id(txn_id: str) -> str:
    """The relay job id of a call relayed alone: ``exec:<txn>``."""
    return f"exec:{txn_id}"


def job_of_call(jobs: RelayJobStore, txn_id: str) -> RelayJob | None:
    """The relay job that carries call ``txn_id``: the batch it went in, or its own job (one
    queued before jobs carried refs is found by its id alone)."""
    return jobs.job_of_ref(txn_id) or jobs.get(call_job_id(txn_id))


def relayed_session_call(rt: Runtime, txn: TransactionRecord) -> BatchedCall:
    """A signed (pending) session call as the relayer sends it: ``execute_with_session`` on
    the account, or the module it installed, with the gas of the largest call an Execute
    signs."""
    record = rt.store.sessions.get(txn.session_id)
    wallet = rt.store.wallets.get(txn.wallet_id)
    assert record is not None and wallet is not None
    assert txn.mode is not None and txn.execution is not None and txn.signature is not None
    assert txn.deadline is not None and txn.call_nonce is not None
    sessions = rt.calls.sessions_of(wallet)
    data = sessions.execute_with_session(
        record.session_key_address,
        txn.mode,
        txn.execution,
        txn.call_nonce,
        txn.deadline,
        txn.signature,
    )
    return BatchedCall(sessions.address, RELAYED_CALL_GAS, data)


def revert_code(reason: str | None) -> ReasonCode | None:
    """The reason code an account revert carries as its ``Error(string)`` text (the
    SessionAccount reverts with the code itself), or ``None`` for any other text."""
    try:
        return ReasonCode(reason) if reason is not None else None
    except ValueError:
        return None


def queue_relay_job(
    db: Database,
    *,
    sender: str,
    job_id: str,
    to: str,
    data: bytes,
    gas_limit: int,
    refs: tuple[str, ...] = (),
) -> RelayJob:
    """Write a relay job for the relayer (``queued``) in the caller's transaction or unit of
    work, without asking the chain anything: so a state transition and the job that carries it
    to the chain commit together, even while the node is down. The fee cap is checked when the
    relayer signs it (refused then, nothing sent). Idempotent on ``job_id``; ``refs``: what
    it carries (:meth:`sessionward.chain.relayer.Relayer.enqueue`)."""
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
        store.add(job, refs)
    stored = store.get(job_id)
    assert stored is not None
    return stored


def as_abi_tuple(struct: str, message: Mapping[str, Any]) -> tuple[object, ...]:
    """An EIP-712 struct message as the ABI tuple of the same struct (fields in declared order,
    nested structs and arrays of structs converted too): the contract takes the grant exactly
    as the owner signed it."""
    return SCHEMA.abi_tuple(struct, message)
