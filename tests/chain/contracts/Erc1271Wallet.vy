# pragma version ~=0.4.3
"""
@title Erc1271Wallet: an ERC-1271 contract signer for the chain tests
@notice Mode 0 accepts a 65-byte r‖s‖v signature by `owner` over the digest itself; the other
        modes misbehave on purpose: 1 reverts, 2 answers a wrong bytes4, 3 answers only 4 bytes
        (a short return), 4 answers the magic value followed by extra words, 5 hits an
        invalid opcode (a failure that is not a revert).
"""

MAGIC: constant(bytes4) = 0x1626ba7e

owner: public(address)
mode: public(uint8)


@deploy
def __init__(owner: address, mode: uint8):
    self.owner = owner
    self.mode = mode


@internal
@view
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    if len(signature) != 65:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    return ecrecover(digest, v, r, s)


@external
@view
@raw_return
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> Bytes[96]:
    if self.mode == 1:
        raise "NO"
    if self.mode == 2:
        return abi_encode(0xffffffff)
    if self.mode == 3:
        return concat(MAGIC, b"")
    if self.mode == 4:
        return abi_encode(MAGIC, digest, digest)
    assert self.mode != 5, UNREACHABLE
    signer: address = self._recover(digest, signature)
    if signer != empty(address) and signer == self.owner:
        return abi_encode(MAGIC)
    return abi_encode(0xffffffff)
