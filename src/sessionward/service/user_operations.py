"""The ERC-4337 path of a session call: the service builds the UserOperation, the vault signs
it with the session key, a bundler submits it, and its receipt is the call's outcome.

The split follows Execute's discipline (nothing over the network while holding the write
lock):

1. :meth:`UserOperationPath.plan`, before the unit of work: the operation's fields, the
   bundler's gas estimate (run with a stub signature; the account answers
   ``SIG_VALIDATION_FAILED`` only after paying, so the estimate sees real costs), the fees,
   and, when the owner chose sponsorship, the paymaster's signed, time-bounded approval. An
   out-of-scope call is already refused here, by the account's own validation, with its
   reason code.
2. In the unit: the vault signs :attr:`UserOperationPlan.digest` (EIP-191 of the
   ``userOpHash``) and the signed operation is written with the decision.
3. :meth:`UserOperationPath.submit` hands it to the bundler, again after a crash (idempotent),
   and :meth:`UserOperationPath.outcome` reads its receipt.

Nonces: every operation gets a nonce *key* of its own, derived from the transaction's id
(ERC-4337's two-dimensional nonce: ``key << 64 | sequence``, sequence 0; on a module wallet
the key's first 160 bits name the module, which the account then asks to validate it, and
the transaction has the last 32: :meth:`~sessionward.service.onchain.OnchainSessions.user_operation_nonce`). Operations of one
account never wait on each other, a dropped one leaves no gap, rebuilding after a crash gives
the same nonce, and once mined the key's sequence is 1, so the operation cannot be replayed.
The cost is the first write of that key's slot in the EntryPoint (about 20,000 gas).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from sessionward.chain.bundler import BundlerClient, BundlerRefused, UserOperationReceipt
from sessionward.chain.interface import Chain
from sessionward.chain.paymaster import VerifyingPaymasterSponsor
from sessionward.chain.user_operations import UserOperation
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.service.onchain import (
    AccountCalls,
    AccountSessions,
    OnchainSessions,
    transaction_nonce_key,
)

__all__ = [
    "UserOperationPath",
    "UserOperationPlan",
    "UserOperationRefused",
    "nonce_for",
    "with_session_signature",
]

# A well-formed signature by no session key (r = the generator's x, s = 1): the account's
# checks recover an address and find it is not the key's.
_STUB_SIGNATURE: Final = bytes.fromhex(
    "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "1b"
)
# The "already mined or queued" answers of a resent operation, compared in lower case: the
# EntryPoint's nonce check (AA25) and bundlers' duplicate answers (alto: "Already known").
_ALREADY_SEEN: Final = ("aa25", "already known", "already in mempool", "duplicate")


class UserOperationRefused(SessionWardError):
    """The bundler (through the account's or the paymaster's validation) refused the
    operation. ``code`` is the account's reason code, or ``USER_OPERATION_REFUSED``."""


def nonce_for(txn_id: str) -> int:
    """The EntryPoint nonce of transaction ``txn_id``'s operation on a SessionAccount: a
    192-bit key from ``keccak256(txn_id)`` and sequence 0."""
    return transaction_nonce_key(txn_id, bits=192) << 64


def with_session_signature(op: UserOperation, signature: bytes) -> UserOperation:
    """``op`` as planned (its signature field laid out around the stub signature, in the
    wallet's own format) carrying the session key's 65-byte ``signature`` instead of the
    stub. Raises ``ValueError`` for an operation without the stub (not a plan)."""
    if len(signature) != 65:
        raise ValueError("a session signature is 65 bytes r ‖ s ‖ v")
    at = op.signature.find(_STUB_SIGNATURE)
    if at < 0:
        raise ValueError("the operation carries no stub signature to replace")
    spliced = op.signature[:at] + bytes(signature) + op.signature[at + len(_STUB_SIGNATURE) :]
    return replace(op, signature=spliced)


@dataclass(frozen=True, slots=True)
class UserOperationPlan:
    """An operation ready to be signed: every field final but the account's signature.

    ``digest`` is what the session key signs: the EIP-191 hash of ``user_op_hash``."""

    operation: UserOperation
    user_op_hash: bytes
    digest: bytes
    session_key: str

    def signed(self, signature: bytes) -> UserOperation:
        """The operation carrying the session key's 65-byte signature of :attr:`digest`."""
        return with_session_signature(self.operation, signature)


class UserOperationPath:
    """The ERC-4337 submission path of one network (one chain, EntryPoint and bundler)."""

    def __init__(
        self,
        *,
        chain: Chain,
        bundler: BundlerClient,
        calls: AccountCalls,
        sponsor: VerifyingPaymasterSponsor | None = None,
    ) -> None:
        self._chain = chain
        self._bundler = bundler
        self._calls = calls
        self._sponsor = sponsor

    @property
    def entry_point(self) -> str:
        return self._bundler.entry_point

    @property
    def paymaster(self) -> str | None:
        """The paymaster the service signs for on this network, if any."""
        return None if self._sponsor is None else self._sponsor.paymaster

    def plan(
        self,
        *,
        txn_id: str,
        account: str,
        session_key: str,
        mode: bytes,
        execution: bytes,
        sponsored: bool,
        now: int,
        sessions: OnchainSessions | None = None,
        nonce: int | None = None,
    ) -> UserOperationPlan:
        """Build, estimate and (when ``sponsored``) sponsor the operation of one session call.
        ``sessions``: where the wallet's sessions live (default: ``account`` is a
        SessionAccount), which sets the operation's call data, nonce and signature format;
        ``nonce``: the EntryPoint nonce to use (default: the transaction's first candidate).

        Raises :class:`UserOperationRefused` when the bundler refuses it (the account's reason
        code when it gave one), ``ValueError`` when sponsorship is asked of a network without
        a paymaster, and :class:`sessionward.chain.errors.ChainUnavailable` when the bundler
        or the node cannot be reached."""
        if sponsored and self._sponsor is None:
            raise ValueError("this network has no paymaster to sponsor operations")
        if sessions is None:
            sessions = AccountSessions(self._calls, account)
        fees = self._chain.max_fee()
        op = UserOperation(
            sender=account,
            nonce=sessions.user_operation_nonce(txn_id) if nonce is None else nonce,
            call_data=sessions.user_operation_call_data(session_key, mode, execution),
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            signature=sessions.user_operation_signature(session_key, _STUB_SIGNATURE, now=now),
        )
        if sponsored:
            assert self._sponsor is not None
            op = self._sponsor.for_estimation(op)
        try:
            estimate = self._bundler.estimate(op)
        except BundlerRefused as refused:
            raise _refusal(refused) from None
        op = op.with_gas(estimate)
        if sponsored:
            assert self._sponsor is not None
            op = self._sponsor.sponsor(op, now=now)
        user_op_hash = op.hash(entry_point=self.entry_point, chain_id=self._chain.chain_id)
        return UserOperationPlan(
            operation=op,
            user_op_hash=user_op_hash,
            digest=personal_message_hash(user_op_hash),
            session_key=session_key,
        )

    def submit(self, op: UserOperation) -> str:
        """Hand the signed ``op`` to the bundler; returns its ``userOpHash``. Sending it again
        (after a crash, or a lost answer) is harmless: an operation the bundler already has,
        or the EntryPoint already ran, answers with its hash all the same."""
        user_op_hash = (
            "0x" + op.hash(entry_point=self.entry_point, chain_id=self._chain.chain_id).hex()
        )
        try:
            return self._bundler.send(op)
        except BundlerRefused as refused:
            if any(mark in refused.message.lower() for mark in _ALREADY_SEEN):
                return user_op_hash
            raise _refusal(refused) from None

    def outcome(self, user_op_hash: str) -> UserOperationReceipt | None:
        """The operation's receipt once mined, else ``None``."""
        return self._bundler.receipt(user_op_hash)


def _refusal(refused: BundlerRefused) -> UserOperationRefused:
    code = refused.reason or ReasonCode.USER_OPERATION_REFUSED
    return UserOperationRefused(code, f"the bundler refused the operation: {refused.message}")
