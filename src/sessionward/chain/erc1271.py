"""ERC-1271 contract signatures checked on chain.

:class:`ChainErc1271Checker` implements
:class:`sessionward.crypto.owner_signature.Erc1271Checker`: it ``eth_call``s
``isValidSignature(bytes32 digest, bytes signature)`` on the owner contract and answers
``True`` only if the call succeeded and its first return word is exactly the magic value
``0x1626ba7e`` left-aligned (the ABI encoding of that ``bytes4``), like OpenZeppelin's
``SignatureChecker``. A revert, an account without code, a short or different answer is a
plain ``False``.

Transport failures (node unreachable, malformed JSON-RPC) are *not* verdicts: they raise
:class:`ChainError`, and the caller fails closed. So does a chain id this checker has no
connection for (:class:`UnknownChain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sessionward.chain.errors import ExecutionReverted, UnknownChain
from sessionward.chain.interface import Chain
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.domain.abi import encode_call, parse_signature

__all__ = ["ERC1271_MAGIC", "ChainErc1271Checker"]

ERC1271_MAGIC: Final = bytes.fromhex("1626ba7e")
_MAGIC_WORD: Final = ERC1271_MAGIC + bytes(28)
_IS_VALID_SIGNATURE = parse_signature("isValidSignature(bytes32,bytes)")


class ChainErc1271Checker:
    """Asks ``isValidSignature`` on the chain the owner lives on.

    ``chains`` is one :class:`Chain` or a mapping ``chain_id -> Chain``.
    """

    def __init__(self, chains: Chain | Mapping[int, Chain]) -> None:
        if isinstance(chains, Mapping):
            self._chains = dict(chains)
        else:
            self._chains = {chains.chain_id: chains}

    def is_valid_signature(
        self, chain_id: int, contract: str, digest: bytes, signature: bytes
    ) -> bool:
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        chain = self._chains.get(chain_id)
        if chain is None:
            raise UnknownChain(f"no chain connection for chain id {chain_id}")
        address = normalize_address(contract)
        data = encode_call(_IS_VALID_SIGNATURE, (digest, bytes(signature)))
        try:
            answer = chain.call(address, data)
        except ExecutionReverted:
            return False
        # An EOA or empty account "answers" b"" without reverting: not a signer.
        return len(answer) >= 32 and answer[:32] == _MAGIC_WORD
