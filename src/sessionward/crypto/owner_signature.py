"""Owner signatures over EIP-712 digests: an EOA (ecrecover) or an ERC-1271 contract signer.

An owner is described by its address and its kind. EOA signatures follow
:mod:`sessionward.crypto.secp256k1` exactly (65 bytes, ``v`` 27/28, low ``s``, no zero
address), which is also what the SessionAccount contract accepts. A contract owner (a smart
account, a multisig, a passkey account) is asked through an injected :class:`Erc1271Checker`;
the signature bytes are passed through untouched because their format is the contract's
business, as is the ERC-1271 magic value ``0x1626ba7e``.
"""

from __future__ import annotations

from typing import Literal, Protocol

from sessionward.crypto.secp256k1 import SignatureError, normalize_address, verify_signer
from sessionward.reasons import ReasonCode

__all__ = ["Erc1271Checker", "OwnerKind", "verify_owner_signature"]

OwnerKind = Literal["eoa", "erc1271"]


class Erc1271Checker(Protocol):
    """Asks a contract on a chain whether it accepts ``signature`` for ``digest``.

    Returns ``True`` only when ``isValidSignature(digest, signature)`` returned the ERC-1271
    magic value. Transport failures (node unreachable) raise; they are not a verdict.
    """

    def is_valid_signature(
        self, chain_id: int, contract: str, digest: bytes, signature: bytes
    ) -> bool: ...


def verify_owner_signature(
    *,
    owner: str,
    owner_kind: OwnerKind,
    chain_id: int,
    digest: bytes,
    signature: bytes,
    erc1271: Erc1271Checker | None,
) -> None:
    """Accept ``signature`` over the 32-byte ``digest`` as the owner's, or raise.

    Raises :class:`SignatureError`: for an EOA whatever :func:`verify_signer` raises
    (``SIGNATURE_INVALID``, ``SIGNATURE_MALLEABLE``, ``SIGNER_ZERO_ADDRESS``,
    ``SIGNER_MISMATCH``); for an ERC-1271 owner ``SIGNATURE_INVALID`` when no checker is
    configured, when the owner is the zero address, or when the contract does not answer
    exactly ``True``. A malformed owner address, digest or kind is a ``ValueError``
    (a programming error, not a refusal). Fails closed: errors from the checker propagate.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ValueError("a digest is 32 bytes")
    owner_address = normalize_address(owner)
    if owner_kind == "eoa":
        verify_signer(digest, signature, owner_address)
        return
    if owner_kind != "erc1271":
        raise ValueError(f"unknown owner kind {owner_kind!r}")
    if erc1271 is None:
        raise SignatureError(
            ReasonCode.SIGNATURE_INVALID,
            "owner is an ERC-1271 contract but no ERC-1271 checker is configured",
        )
    if int(owner_address, 16) == 0:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "an ERC-1271 owner cannot be address 0")
    # ``is True``: a truthy non-bool (a mock, a non-empty byte string) must not pass for yes.
    verdict = erc1271.is_valid_signature(chain_id, owner_address, digest, bytes(signature))
    if verdict is not True:
        raise SignatureError(
            ReasonCode.SIGNATURE_INVALID, "the owner contract does not accept this signature"
        )
