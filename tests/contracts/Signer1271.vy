# pragma version ~=0.4.3
"""
@title Test double of an ERC-1271 contract owner (a smart wallet owned by one EOA key)
"""

MAGIC: constant(bytes4) = 0x1626BA7E

signer: public(address)


@deploy
def __init__(signer_: address):
    self.signer = signer_


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[1024]) -> bytes4:
    if len(signature) != 65:
        return 0xFFFFFFFF
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(hash, v, r, s) == self.signer:
        return MAGIC
    return 0xFFFFFFFF


@external
def forward(target: address, data: Bytes[8192]):
    """
    @notice Let the signer act as this contract (e.g. call its account's `execute`).
    """
    assert msg.sender == self.signer, "NOT_SIGNER"
    raw_call(target, data)
