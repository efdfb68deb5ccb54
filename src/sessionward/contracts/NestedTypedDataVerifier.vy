# pragma version ~=0.4.3
"""
@title SessionWard ERC-7739 nested typed data verifier
@notice A stateless singleton that SessionAccount asks (STATICCALL) what its owner signed
        when an application passes `hash` and an ERC-7739 `TypedDataSign` signature to
        `isValidSignature`. It holds no storage, no owner and no upgrade path; the account
        names it by a fixed address (see SessionAccount's `ERC7739_VERIFIER`) that is the
        CREATE2 address of this exact code under the deterministic deployment proxy, so no
        other code can ever answer there. The account's own code has no room for this parsing
        under the EIP-170 size limit.

        The digest is bound to the *caller* (`msg.sender`, the account) and this chain, in the
        SessionWard domain fields (`name` "SessionWard", `version` "1", no salt):

        `keccak256(0x1901 ‖ appDomainSeparator ‖ hashStruct(TypedDataSign{contents, name,
        version, chainId, verifyingContract: msg.sender, salt: 0}))`

        where the signature is `ownerSignature ‖ appDomainSeparator ‖ contents ‖
        contentsDescription ‖ uint16(len(contentsDescription))` and
        `hash == keccak256(0x1901 ‖ appDomainSeparator ‖ contents)`.

        `contentsDescription` is `contentsType` (implicit mode: it ends with `)` and starts with
        its name) or `contentsType ‖ contentsName` (explicit mode). A name that is empty,
        starts with a lower-case letter or `(`, or holds `,`, space, `(`, `)` or NUL is refused:
        it could break out of the `TypedDataSign` type string so that the wallet shows
        something else than what is verified.
"""

MAX_SIGNATURE: constant(uint256) = 1024
# The trailing words of a nested signature: app domain, contents hash, uint16 length.
NESTED_TAIL: constant(uint256) = 66

NAME_HASH: constant(bytes32) = keccak256("SessionWard")
VERSION_HASH: constant(bytes32) = keccak256("1")
# `TypedDataSign(` ‖ contentsName ‖ TYPED_DATA_SIGN_FIELDS ‖ contentsType
TYPED_DATA_SIGN_FIELDS: constant(Bytes[92]) = b" contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"

OPEN_PAREN: constant(uint256) = 40
CLOSE_PAREN: constant(uint256) = 41
COMMA: constant(uint256) = 44
SPACE: constant(uint256) = 32
LOWER_A: constant(uint256) = 97
LOWER_Z: constant(uint256) = 122


@internal
@pure
def _byte(data: Bytes[MAX_SIGNATURE], index: uint256) -> uint256:
    return convert(slice(data, index, 1), uint256)


@internal
@pure
def _typehash(description: Bytes[MAX_SIGNATURE]) -> bytes32:
    """
    @dev The `TypedDataSign` type hash for a contents description, or zero when the
         description is refused (see the contract notice).
    """
    length: uint256 = len(description)
    if length == 0:
        return empty(bytes32)
    name_start: uint256 = 0
    name_end: uint256 = 0
    type_end: uint256 = length
    found: bool = False
    if self._byte(description, length - 1) == CLOSE_PAREN:
        for i: uint256 in range(length, bound=MAX_SIGNATURE):
            if self._byte(description, i) == OPEN_PAREN:
                name_end = i
                found = True
                break
    else:
        for j: uint256 in range(length, bound=MAX_SIGNATURE):
            if self._byte(description, length - 1 - j) == CLOSE_PAREN:
                type_end = length - j
                found = True
                break
        name_start = type_end
        name_end = length
    if not found or name_end == name_start:
        return empty(bytes32)
    first: uint256 = self._byte(description, name_start)
    if first == OPEN_PAREN or (first >= LOWER_A and first <= LOWER_Z):
        return empty(bytes32)
    for k: uint256 in range(name_end - name_start, bound=MAX_SIGNATURE):
        c: uint256 = self._byte(description, name_start + k)
        if c == COMMA or c == SPACE or c == OPEN_PAREN or c == CLOSE_PAREN or c == 0:
            return empty(bytes32)
    return keccak256(
        concat(
            b"TypedDataSign(",
            slice(description, name_start, name_end - name_start),
            TYPED_DATA_SIGN_FIELDS,
            slice(description, 0, type_end),
        )
    )


@external
@view
def nested_digest(hash: bytes32, signature: Bytes[MAX_SIGNATURE]) -> (bool, bytes32, uint256):
    """
    @notice What the caller's owner signed, if `signature` is an ERC-7739 `TypedDataSign`
            signature for `hash` (the workflow deduction of ERC-7739).
    @dev Pure computation bound to `msg.sender` and `chain.id`; never reverts on any input
         that fits the bounds.
    @param hash The hash the application passed to the account's `isValidSignature`.
    @param signature The signature it passed (at most 1,024 bytes).
    @return nested False when the nested tail does not rebuild `hash` (the account then uses
            its `PersonalSign` workflow); digest what the owner signed; length the length of
            the owner's signature at the start of `signature`, 0 when the contents
            description is refused (the signature is invalid).
    """
    size: uint256 = len(signature)
    if size < NESTED_TAIL + 1:
        return False, empty(bytes32), 0
    described: uint256 = convert(slice(signature, size - 2, 2), uint256)
    if size < NESTED_TAIL + 1 + described:
        return False, empty(bytes32), 0
    inner: uint256 = size - NESTED_TAIL - described
    app_domain: bytes32 = extract32(signature, inner)
    contents: bytes32 = extract32(signature, inner + 32)
    if keccak256(concat(b"\x19\x01", app_domain, contents)) != hash:
        return False, empty(bytes32), 0
    typehash: bytes32 = self._typehash(slice(signature, inner + 64, described))
    if typehash == empty(bytes32):
        return True, empty(bytes32), 0
    struct_hash: bytes32 = keccak256(
        abi_encode(typehash, contents, NAME_HASH, VERSION_HASH, chain.id, msg.sender, empty(bytes32))
    )
    return True, keccak256(concat(b"\x19\x01", app_domain, struct_hash)), inner
