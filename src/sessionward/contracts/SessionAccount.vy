# pragma version ~=0.4.3
"""
@title SessionWard SessionAccount
@notice A smart account with an owner and session keys:

        - ERC-7579-style `execute(mode, executionCalldata)` (single and batch CALLs) with the
          owner's authority (the owner, the account itself, or the ERC-4337 EntryPoint);
        - ERC-4337 v0.7 `validateUserOp` accepting an owner signature or a session signature
          (signature envelope: `0x00 ‖ ownerSignature` or `0x01 ‖ sessionKey ‖ signature`);
        - ERC-1271 `isValidSignature`, bound to this account by an EIP-712 wrapper;
        - the sessions module (`sessions.vy`), whose state lives here;
        - usable as a CREATE2 proxy (`SessionAccountFactory`) or as an EIP-7702 delegation
          target (the EOA is its own owner, nothing to initialise).

        The implementation holds no state of its own: `ENTRY_POINT` is an immutable (in code,
        so shared by proxies and delegating EOAs) and the owner is read from the account's code
        (see account_auth.vy).
"""

from . import eip712
from . import reasons
from . import erc7579
from . import account_auth
from . import sessions

initializes: account_auth
initializes: sessions[account_auth := account_auth]

exports: (
    account_auth.ENTRY_POINT,
    sessions.enable_session,
    sessions.execute_with_session,
    sessions.execute_session_op,
    sessions.revoke_session,
    sessions.revoke_session_signed,
    sessions.revoke_all,
    sessions.session,
    sessions.session_nonce,
    sessions.session_nonce_used,
    sessions.token_usage,
    sessions.epoch,
    sessions.owner_nonce,
    sessions.grant_nonce_used,
    sessions.grant_digest,
    sessions.session_call_digest,
    sessions.revocation_digest,
)


# ERC-4337 v0.7 packed user operation.
struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[MAX_INIT_CODE]
    callData: Bytes[MAX_USER_OP_CALLDATA]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[MAX_PAYMASTER_DATA]
    signature: Bytes[MAX_USER_OP_SIGNATURE]


MAX_INIT_CODE: constant(uint256) = 256
MAX_PAYMASTER_DATA: constant(uint256) = 1024
# execute / execute_session_op calldata: selector, three head words, length word, payload.
MAX_USER_OP_CALLDATA: constant(uint256) = erc7579.MAX_EXECUTION_BYTES + 4 + 32 * 4
# The owner signature inside a user operation is at most 1023 bytes (one byte is the kind).
MAX_USER_OP_SIGNATURE: constant(uint256) = account_auth.MAX_OWNER_SIGNATURE

SIG_VALIDATION_FAILED: constant(uint256) = 1
SIGNATURE_KIND_OWNER: constant(bytes1) = 0x00
SIGNATURE_KIND_SESSION: constant(bytes1) = 0x01
# 0x01 ‖ sessionKey (20) ‖ r ‖ s ‖ v (65)
SESSION_SIGNATURE_LENGTH: constant(uint256) = 86
SESSION_OP_SELECTOR: constant(bytes4) = method_id("execute_session_op(address,bytes32,bytes)", output_type=bytes4)

ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E
ERC1271_INVALID: constant(bytes4) = 0xFFFFFFFF
# EIP-712 wrapper of a hash submitted to isValidSignature (same SessionWard domain).
ACCOUNT_MESSAGE_TYPEHASH: constant(bytes32) = keccak256("AccountMessage(bytes32 hash)")


@deploy
def __init__(entry_point: address):
    """
    @param entry_point The ERC-4337 v0.7 EntryPoint trusted by every account using this
           implementation (zero address: no ERC-4337).
    """
    account_auth.__init__(entry_point)


@external
@payable
def execute(mode: bytes32, executionCalldata: Bytes[erc7579.MAX_EXECUTION_BYTES]):
    """
    @notice Run a single or batch ERC-7579 execution with the owner's authority.
    @dev NOT_AUTHORIZED unless called by the owner, the account itself or the EntryPoint.
         Mode and encoding are checked like a session's (CALL_TYPE_FORBIDDEN, EMPTY_BATCH,
         CALLDATA_MALFORMED); the owner may call the account itself and send plain value.
    """
    account_auth._check_owner_caller()
    erc7579._run(executionCalldata, erc7579._decode(mode, executionCalldata, 0))


@external
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256:
    """
    @notice ERC-4337 v0.7 validation. The signer signs the EIP-191 hash of `userOpHash`.
    @dev `0x00 ‖ ownerSignature`: returns 0, or SIG_VALIDATION_FAILED on a bad signature.
         `0x01 ‖ sessionKey ‖ signature`: the call data must be
         `execute_session_op(sessionKey, ...)` for that same key (else SELF_CALL_FORBIDDEN:
         a session may not use the account's owner functions), the session must be known and
         unrevoked (SESSION_UNKNOWN / SESSION_REVOKED), and the signature must be the key's;
         the session's window is returned in `validationData` as
         `validAfter' = validAfter - 1` (0 stays 0), `validUntil = expiresAt - 1`, because the
         EntryPoint accepts `validAfter' < now <= validUntil`. Any other envelope fails.
    """
    if msg.sender != account_auth.ENTRY_POINT or msg.sender == empty(address):
        reasons._fail(reasons.NOT_AUTHORIZED)
    validation: uint256 = self._validate(userOp, userOpHash)
    if missingAccountFunds != 0:
        # The EntryPoint accounts for the deposit; a failed transfer fails the op there.
        paid: bool = raw_call(msg.sender, b"", value=missingAccountFunds, revert_on_failure=False)
    return validation


@internal
@view
def _validate(userOp: PackedUserOperation, userOpHash: bytes32) -> uint256:
    signature_length: uint256 = len(userOp.signature)
    if signature_length == 0:
        return SIG_VALIDATION_FAILED
    digest: bytes32 = eip712._eth_signed_digest(userOpHash)
    kind: bytes1 = convert(slice(userOp.signature, 0, 1), bytes1)

    if kind == SIGNATURE_KIND_OWNER:
        if account_auth._is_owner_signature(digest, slice(userOp.signature, 1, signature_length - 1)):
            return 0
        return SIG_VALIDATION_FAILED

    if kind != SIGNATURE_KIND_SESSION or signature_length != SESSION_SIGNATURE_LENGTH:
        return SIG_VALIDATION_FAILED
    session_key: address = convert(convert(slice(userOp.signature, 1, 20), bytes20), address)
    # A session may only run the session path, for its own key (the first argument).
    if len(userOp.callData) < 36:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if convert(slice(userOp.callData, 0, 4), bytes4) != SESSION_OP_SELECTOR:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if extract32(userOp.callData, 4, output_type=uint256) != convert(session_key, uint256):
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    state: uint256 = sessions._known_session(session_key)
    if eip712._try_recover(digest, slice(userOp.signature, 21, 65)) != session_key:
        return SIG_VALIDATION_FAILED

    valid_after: uint256 = (state >> sessions.ST_VALID_AFTER) & sessions.MASK48
    expires_at: uint256 = (state >> sessions.ST_EXPIRES_AT) & sessions.MASK48
    if expires_at <= 1:
        # validUntil would be 0, which the EntryPoint reads as "forever".
        return SIG_VALIDATION_FAILED
    if valid_after != 0:
        valid_after -= 1
    return ((expires_at - 1) << 160) | (valid_after << 208)


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[account_auth.MAX_OWNER_SIGNATURE]) -> bytes4:
    """
    @notice ERC-1271: the owner signed `hash` *for this account*. The owner signs the EIP-712
            digest of `AccountMessage(bytes32 hash)` in this account's SessionWard domain, so a
            signature for account A never validates on account B of the same owner (nor on
            another chain). Session keys cannot sign for the account.
    """
    digest: bytes32 = eip712._typed_digest(keccak256(abi_encode(ACCOUNT_MESSAGE_TYPEHASH, hash)))
    if account_auth._is_owner_signature(digest, signature):
        return ERC1271_MAGIC
    return ERC1271_INVALID


@external
@view
def owner() -> address:
    """
    @notice The owner: the address in a factory proxy's code, or the account itself (EIP-7702).
    """
    return account_auth._owner()


@external
@view
def domain_separator() -> bytes32:
    return eip712._domain_separator()


@external
@payable
def __default__():
    """
    @notice Receive ether. Unknown functions revert instead of silently succeeding.
    """
    if len(msg.data) != 0:
        reasons._fail(reasons.CALLDATA_MALFORMED)
