# pragma version ~=0.4.3
"""
@title SessionWard EIP-712 domain and strict secp256k1 signatures
@notice Stateless helpers shared by the account and its sessions module.

        The domain is the one of docs/protocol.md section 1:
        `{name: "SessionWard", version: "1", chainId, verifyingContract: the account}`.
        It is recomputed on every use (no cached immutable) because the same code runs
        behind many addresses: CREATE2 proxies and EIP-7702 delegated EOAs. `self` is
        always the account, never the implementation.

        Signatures are 65 bytes `r ‖ s ‖ v` with `v` in {27, 28}. `s` above n/2 is the
        malleable twin of a valid signature and is refused, and so is a signature that
        recovers to the zero address (ecrecover's failure value).
"""

from snekmate.utils import message_hash_utils

from . import reasons


DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("SessionWard")
VERSION_HASH: constant(bytes32) = keccak256("1")

# n/2 for secp256k1: a signature with a larger `s` is the malleable twin of one with n - s.
# (0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)
SECP256K1_HALF_N: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev The EIP-712 domain separator of this account on this chain.
    """
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@view
def _typed_digest(struct_hash: bytes32) -> bytes32:
    """
    @dev `keccak256(0x1901 ‖ domainSeparator ‖ structHash)` for this account's domain.
    """
    return message_hash_utils._to_typed_data_hash(self._domain_separator(), struct_hash)


@internal
@pure
def _eth_signed_digest(digest: bytes32) -> bytes32:
    """
    @dev The EIP-191 personal-message hash of a 32-byte digest (used for ERC-4337 userOpHash).
    """
    return message_hash_utils._to_eth_signed_message_hash(digest)


@internal
@pure
def _recover_strict(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev Recover the signer of `digest`, reverting with the exact reason code on any defect:
         wrong length or `v` (SIGNATURE_INVALID), high `s` (SIGNATURE_MALLEABLE), no signer
         (SIGNER_ZERO_ADDRESS). The caller still compares the signer with the expected one.
    """
    if len(signature) != 65:
        reasons._fail(reasons.SIGNATURE_INVALID)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if s > SECP256K1_HALF_N:
        reasons._fail(reasons.SIGNATURE_MALLEABLE)
    if v != 27 and v != 28:
        reasons._fail(reasons.SIGNATURE_INVALID)
    signer: address = ecrecover(digest, v, r, s)
    if signer == empty(address):
        reasons._fail(reasons.SIGNER_ZERO_ADDRESS)
    return signer


@internal
@pure
def _try_recover(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev Like `_recover_strict` but never reverts: every defect yields the zero address, which
         never equals a real signer. Used where a standard forbids reverting on a bad signature
         (ERC-1271 `isValidSignature`, ERC-4337 `validateUserOp`).
    """
    if len(signature) != 65:
        return empty(address)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if s > SECP256K1_HALF_N or (v != 27 and v != 28):
        return empty(address)
    return ecrecover(digest, v, extract32(signature, 0, output_type=uint256), s)
