"""The service as the signer of a verifying paymaster: it sponsors the gas of the user
operations it has itself approved.

The paymaster contract is the sample ``VerifyingPaymaster`` of ``@account-abstraction/contracts``
0.7.0 (or one with its interface): it pays from its EntryPoint deposit for any operation whose
``paymasterData`` carries its signer's EIP-191 signature over
:func:`sessionward.chain.user_operations.verifying_paymaster_digest`. The signer key is the
paymaster deposit's only guard, so it is a key of its own, never the relayer's, and a
sponsorship is bounded in time (``validUntil``): a signed operation that was not mined in time
cannot spend the deposit later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final, Protocol

from sessionward.chain.user_operations import (
    UserOperation,
    verifying_paymaster_data,
    verifying_paymaster_digest,
)
from sessionward.crypto.secp256k1 import normalize_address

__all__ = ["MessageSigner", "VerifyingPaymasterSponsor"]

# A well-formed signature by no known key over the zero digest: what estimation runs with. It
# must be recoverable (OpenZeppelin's ECDSA.recover reverts on r = s = 0), so the paymaster
# answers "signature failed" instead of reverting, after its own checks and costs.
_STUB_SIGNATURE: Final = bytes.fromhex(
    "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "1b"
)


class MessageSigner(Protocol):
    """A key that signs EIP-191 personal messages (:class:`LocalTransactionSigner` is one)."""

    @property
    def address(self) -> str: ...

    def sign_personal_message(self, message: bytes) -> bytes: ...


class VerifyingPaymasterSponsor:
    """Sponsors operations through one ``VerifyingPaymaster`` on one chain.

    Invariant: every sponsorship it signs names this paymaster and chain, covers every field
    of the operation but its signature, and ends ``validity_s`` seconds after ``now``.
    """

    def __init__(
        self,
        *,
        paymaster: str,
        chain_id: int,
        signer: MessageSigner,
        validity_s: int = 600,
    ) -> None:
        if validity_s <= 0:
            raise ValueError("a sponsorship must end: validity_s > 0")
        self._paymaster = normalize_address(paymaster)
        self._chain_id = chain_id
        self._signer = signer
        self._validity_s = validity_s

    @property
    def paymaster(self) -> str:
        return self._paymaster

    @property
    def signer(self) -> str:
        return self._signer.address

    def for_estimation(self, op: UserOperation) -> UserOperation:
        """``op`` naming this paymaster, with a stub sponsorship of the final one's length."""
        return replace(
            op,
            paymaster=self._paymaster,
            paymaster_data=verifying_paymaster_data(
                valid_until=0, valid_after=0, signature=_STUB_SIGNATURE
            ),
        )

    def sponsor(self, op: UserOperation, *, now: int) -> UserOperation:
        """``op`` (its gas limits final) with this paymaster's signed sponsorship, valid from
        now until ``now + validity_s``. The operation's own signature comes after: the
        account signs the ``userOpHash``, which covers ``paymasterAndData``."""
        named = replace(op, paymaster=self._paymaster)
        valid_until, valid_after = now + self._validity_s, 0
        digest = verifying_paymaster_digest(
            named,
            paymaster=self._paymaster,
            chain_id=self._chain_id,
            valid_until=valid_until,
            valid_after=valid_after,
        )
        return replace(
            named,
            paymaster_data=verifying_paymaster_data(
                valid_until=valid_until,
                valid_after=valid_after,
                signature=self._signer.sign_personal_message(digest),
            ),
        )
