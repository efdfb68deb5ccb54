# pragma version ~=0.4.3
"""
@title SessionWard SessionAccount
@notice A smart account with an owner and session keys:

        - ERC-7579-style `execute(mode, executionCalldata)` (single and batch CALLs) with the
          owner's authority (the owner, the account itself, or the ERC-4337 EntryPoint);
        - ERC-4337 v0.7 `validateUserOp` accepting an owner signature or a session signature
          (signature envelope: `0x00 ‖ ownerSignature` or `0x01 ‖ sessionKey ‖ signature`);
        - ERC-1271 `isValidSignature`, bound to this account: ERC-7739 nested typed data
          (`TypedDataSign`, `PersonalSign`) and SessionWard's own `AccountMessage` wrapper,
          with the ERC-5267 `eip712Domain` wallets read to build them;
        - the sessions modules, whose state lives here: `sessions.vy` (storage and views),
          `session_grants.vy` (grant type, EIP-712 digests), `session_catalog.vy` (rule
          operators, token functions), `session_enable.vy`, `session_enforce.vy`,
          `session_fees.vy`, `session_revocation.vy`;
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
from . import session_grants
from . import session_enable
from . import session_enforce
from . import session_fees
from . import session_revocation

initializes: account_auth
initializes: sessions
initializes: session_enable[sessions := sessions]
initializes: session_enforce[sessions := sessions, account_auth := account_auth]
initializes: session_fees[sessions := sessions]
initializes: session_revocation[sessions := sessions, account_auth := account_auth]

exports: (
    account_auth.ENTRY_POINT,
    session_enable.enable_session,
    session_enforce.execute_with_session,
    session_enforce.execute_session_op,
    session_revocation.revoke_session,
    session_revocation.revoke_session_signed,
    session_revocation.revoke_all,
    sessions.session,
    sessions.session_nonce,
    sessions.session_nonce_used,
    sessions.token_usage,
    session_fees.fee_budget,
    sessions.epoch,
    sessions.owner_nonce,
    sessions.grant_nonce_used,
    session_grants.grant_digest,
    session_grants.session_call_digest,
    session_grants.revocation_digest,
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
MASK128: constant(uint256) = 2**128 - 1
# paymaster (20) ‖ paymasterVerificationGasLimit (16) ‖ paymasterPostOpGasLimit (16) ‖ data
PAYMASTER_DATA_OFFSET: constant(uint256) = 52
SIGNATURE_KIND_OWNER: constant(bytes1) = 0x00
SIGNATURE_KIND_SESSION: constant(bytes1) = 0x01
# 0x01 ‖ sessionKey (20) ‖ r ‖ s ‖ v (65)
SESSION_SIGNATURE_LENGTH: constant(uint256) = 86
SESSION_OP_SELECTOR: constant(bytes4) = method_id("execute_session_op(address,bytes32,bytes)", output_type=bytes4)

ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E
ERC1271_INVALID: constant(bytes4) = 0xFFFFFFFF
# EIP-712 wrapper of a hash submitted to isValidSignature (same SessionWard domain).
ACCOUNT_MESSAGE_TYPEHASH: constant(bytes32) = keccak256("AccountMessage(bytes32 hash)")
# ERC-7739 support detection: isValidSignature(0x7739…7739, any) answers 0x77390001.
ERC7739_DETECTION_HASH: constant(bytes32) = 0x7739773977397739773977397739773977397739773977397739773977397739
ERC7739_SUPPORTED: constant(bytes4) = 0x77390001
ERC7739_PERSONAL_SIGN_TYPEHASH: constant(bytes32) = keccak256("PersonalSign(bytes prefixed)")
# NestedTypedDataVerifier.vy: CREATE2 address of its exact initcode (vyper 0.4.3, default
# settings) under the deterministic deployment proxy 0x4e59b44847b379578588920ca78fbf26c0b4956c
# with salt 0; a test recomputes it. Where nothing is deployed there, the TypedDataSign
# workflow is off (its signatures are invalid); PersonalSign and AccountMessage still work.
ERC7739_VERIFIER: constant(address) = 0x2423aEC8dDC924e22D6D452f6e4E3ba0aC6B2D1d


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
    @dev NOT_AUTHORIZED unless called by the owner, the account itself or the EntryPoint (which
         runs only owner-validated user operations here: `validateUserOp` lets a session
         operation call nothing but `execute_session_op`). Mode and encoding are checked like a
         session's (CALL_TYPE_FORBIDDEN, EMPTY_BATCH, CALLDATA_MALFORMED), but no session rule
         applies: the owner may call the account itself and send plain value. Never
         DELEGATECALLs; a failing call reverts the whole execution. Touches no session state.
    @param mode The ERC-7579 mode: single or batch CALL, default exec type.
    @param executionCalldata The ERC-7579 execution calldata (canonical encoding only).
    """
    account_auth._check_owner_caller()
    erc7579._run(executionCalldata, erc7579._decode(mode, executionCalldata, 0))


@external
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256:
    """
    @notice ERC-4337 v0.7 validation of a user operation signed by the owner or by a session
            key. The signer signs the EIP-191 hash of `userOpHash`.
    @dev Only the EntryPoint may call it (NOT_AUTHORIZED). `0x00 ‖ ownerSignature`: 0, or
         SIG_VALIDATION_FAILED on a bad signature. `0x01 ‖ sessionKey ‖ signature`: see
         `_validate_session_op` (scope refusals revert with their reason code, so such an
         operation is never mined and never paid for). Any other envelope fails
         (SIG_VALIDATION_FAILED). Validation obeys ERC-7562: it reads only this account's
         storage and code, and uses no TIMESTAMP, NUMBER, BALANCE or bare GAS. Pays the
         EntryPoint `missingAccountFunds`, never more.
    @param userOp The packed user operation (its `signature` is the envelope above).
    @param userOpHash The EntryPoint's hash of the operation (binds chain and EntryPoint).
    @param missingAccountFunds What the EntryPoint asks the account to deposit.
    @return 0 (valid, no window), 1 (SIG_VALIDATION_FAILED), or a session's packed window:
            `validUntil << 160 | validAfter << 208`.
    """
    if msg.sender != account_auth.ENTRY_POINT or msg.sender == empty(address):
        reasons._fail(reasons.NOT_AUTHORIZED)
    signature_length: uint256 = len(userOp.signature)
    if signature_length == 0:
        return SIG_VALIDATION_FAILED
    kind: bytes1 = convert(slice(userOp.signature, 0, 1), bytes1)
    if kind == SIGNATURE_KIND_SESSION:
        return self._validate_session_op(userOp, userOpHash, missingAccountFunds)
    validation: uint256 = SIG_VALIDATION_FAILED
    if kind == SIGNATURE_KIND_OWNER and account_auth._is_owner_signature(
        eip712._eth_signed_digest(userOpHash), slice(userOp.signature, 1, signature_length - 1)
    ):
        validation = 0
    self._pay_prefund(missingAccountFunds)
    return validation


@internal
def _pay_prefund(amount: uint256):
    """
    @dev Pay what the EntryPoint asks for. The explicit gas argument keeps the GAS opcode out
         of validation (ERC-7562 OP-012 allows GAS only right before a CALL; vyper pushes a
         default gas argument first); the CALL takes all but 1/64 of the gas left, as
         `gas: type(uint256).max` does in Solidity accounts. A failed transfer fails the
         operation in the EntryPoint, which accounts for the deposit.
    """
    if amount != 0:
        paid: bool = raw_call(msg.sender, b"", value=amount, gas=max_value(uint256), revert_on_failure=False)


@internal
def _validate_session_op(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256:
    """
    @dev A session user operation (`0x01 ‖ sessionKey ‖ r ‖ s ‖ v`, 86 bytes, else
         SIG_VALIDATION_FAILED). Refused in validation, so never mined and never paid for:
         1. the call data must be `execute_session_op(sessionKey, mode, execution)` for the
            envelope's own key (else SELF_CALL_FORBIDDEN: a session may not use the
            account's owner functions), decoded here exactly as the call will decode it;
         2. the session is known and unrevoked (SESSION_UNKNOWN / SESSION_REVOKED);
         3. every inner call is in scope: mode, encoding, self-call, maximum approvals,
            target and selector, static argument rules, per-call value cap (the reason
            codes of `session_enforce._enforce` rules 1-5);
         4. the signature is the key's, else SIG_VALIDATION_FAILED, returned only after step
            5's charge and prefund as ERC-4337 asks: the EntryPoint then reverts the whole
            operation (AA24), so nothing is charged or paid on chain, while a bundler's gas
            estimate, which simulates with changed gas fields and so a stale or stub
            signature, sees the prefund paid instead of failing AA21;
         5. the fee budget: the most this operation can cost the account, (all gas limits,
            paymaster gas included) × maxFeePerGas, is charged against the session's
            `maxFeeWei` budget (FEE_LIMIT_EXCEEDED when over; zero when a paymaster pays),
            and the EntryPoint may not ask for more than that (FEE_LIMIT_EXCEEDED).
         The window is returned in `validationData` as `validAfter' = validAfter - 1`
         (0 stays 0), `validUntil = expiresAt - 1`, because the EntryPoint accepts
         `validAfter' < now <= validUntil` (no TIMESTAMP in validation, ERC-7562).
         Cumulative limits (native value, tokens, uses) are checked in execution.
    """
    if len(userOp.signature) != SESSION_SIGNATURE_LENGTH:
        return SIG_VALIDATION_FAILED
    session_key: address = convert(convert(slice(userOp.signature, 1, 20), bytes20), address)
    # 1. A session may only run the session path, for its own key (the first argument).
    call_data_length: uint256 = len(userOp.callData)
    if call_data_length < 36:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if convert(slice(userOp.callData, 0, 4), bytes4) != SESSION_OP_SELECTOR:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if extract32(userOp.callData, 4, output_type=uint256) != convert(session_key, uint256):
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    # 2.
    state: uint256 = sessions._known_session(session_key)
    # 3. The ABI decoder of `execute_session_op` reads the same bytes the same way.
    key_argument: address = empty(address)
    mode: bytes32 = empty(bytes32)
    execution: Bytes[erc7579.MAX_EXECUTION_BYTES] = b""
    key_argument, mode, execution = abi_decode(
        slice(userOp.callData, 4, call_data_length - 4),
        (address, bytes32, Bytes[erc7579.MAX_EXECUTION_BYTES]),
    )
    session_enforce._check_op_scope(state, mode, execution)
    # 4. Checked here, answered after the prefund (see the docstring).
    signed: bool = eip712._try_recover(eip712._eth_signed_digest(userOpHash), slice(userOp.signature, 21, 65)) == session_key
    valid_after: uint256 = (state >> sessions.ST_VALID_AFTER) & sessions.MASK48
    expires_at: uint256 = (state >> sessions.ST_EXPIRES_AT) & sessions.MASK48
    if expires_at <= 1:
        # validUntil would be 0, which the EntryPoint reads as "forever".
        return SIG_VALIDATION_FAILED
    # 5.
    gas_units: uint256 = 0
    max_fee_per_gas: uint256 = 0
    gas_units, max_fee_per_gas = self._account_paid_gas(userOp)
    if missingAccountFunds > session_fees._charge_fee(session_key, gas_units, max_fee_per_gas):
        reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
    self._pay_prefund(missingAccountFunds)
    if not signed:
        return SIG_VALIDATION_FAILED
    if valid_after != 0:
        valid_after -= 1
    return ((expires_at - 1) << 160) | (valid_after << 208)


@internal
@pure
def _account_paid_gas(userOp: PackedUserOperation) -> (uint256, uint256):
    """
    @dev `(gas, maxFeePerGas)` of what the EntryPoint v0.7 may take from the account for
         `userOp`: its required prefund is `(verificationGasLimit + callGasLimit +
         paymasterVerificationGasLimit + paymasterPostOpGasLimit + preVerificationGas) ×
         maxFeePerGas`, and it bounds the actual cost (the unused-gas penalty included).
         `(0, 0)` when a paymaster pays (non-zero paymaster address: the EntryPoint takes
         the prefund from the paymaster's deposit and asks the account for nothing). A
         `paymasterAndData` with the zero paymaster is paid by the account, its paymaster
         gas limits included; one shorter than 52 bytes is refused by the EntryPoint
         (AA93) and here (CALLDATA_MALFORMED). Gas values above 2**128 are FEE_LIMIT_EXCEEDED
         (the EntryPoint refuses values above 2**120).
    """
    gas_units: uint256 = 0
    paymaster_length: uint256 = len(userOp.paymasterAndData)
    if paymaster_length != 0:
        if paymaster_length < PAYMASTER_DATA_OFFSET:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        if convert(slice(userOp.paymasterAndData, 0, 20), bytes20) != empty(bytes20):
            return 0, 0
        # paymasterVerificationGasLimit ‖ paymasterPostOpGasLimit, 16 bytes each.
        paymaster_gas: uint256 = extract32(userOp.paymasterAndData, 20, output_type=uint256)
        gas_units = (paymaster_gas >> 128) + (paymaster_gas & MASK128)
    if userOp.preVerificationGas > MASK128:
        reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
    limits: uint256 = convert(userOp.accountGasLimits, uint256)
    gas_units += (limits >> 128) + (limits & MASK128) + userOp.preVerificationGas
    return gas_units, convert(userOp.gasFees, uint256) & MASK128


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[account_auth.MAX_OWNER_SIGNATURE]) -> bytes4:
    """
    @notice ERC-1271: the owner signed `hash` *for this account*, so a signature for account A
            never validates on account B of the same owner, nor on another chain. Three forms:
            ERC-7739 `TypedDataSign` (the application's typed data nested in this account's
            domain fields: the wallet shows the application's message), ERC-7739
            `PersonalSign` (an EIP-191 message hash), and SessionWard's `AccountMessage(bytes32
            hash)` in this account's SessionWard domain. Session keys cannot sign for the account.
    @dev The workflow is deduced as ERC-7739 requires: a signature whose nested tail rebuilds
         `hash` is checked as `TypedDataSign` only; any other as `PersonalSign`, then
         `AccountMessage`. Never reverts on a bad signature (0xffffffff).
    @param hash The hash the application verifies.
    @param signature The owner's signature (65 bytes, or an ERC-1271 owner's), with the
           ERC-7739 nested tail for `TypedDataSign`.
    @return 0x1626ba7e when valid; 0x77390001 for the ERC-7739 detection hash; else 0xffffffff.
    """
    if hash == ERC7739_DETECTION_HASH:
        return ERC7739_SUPPORTED
    # A plain 65-byte signature cannot carry a nested tail: the verifier is not asked (so an
    # owned account's ERC-4337 validation never touches an address that may have no code).
    if len(signature) > 66:
        success: bool = False
        answer: Bytes[96] = b""
        success, answer = raw_call(
            ERC7739_VERIFIER,
            abi_encode(hash, signature, method_id=method_id("nested_digest(bytes32,bytes)")),
            max_outsize=96,
            is_static_call=True,
            revert_on_failure=False,
        )
        if success and len(answer) == 96 and extract32(answer, 0) != empty(bytes32):
            inner: uint256 = convert(extract32(answer, 64), uint256)
            if inner != 0 and account_auth._is_owner_signature(extract32(answer, 32), slice(signature, 0, inner)):
                return ERC1271_MAGIC
            return ERC1271_INVALID
    for typehash: bytes32 in [ERC7739_PERSONAL_SIGN_TYPEHASH, ACCOUNT_MESSAGE_TYPEHASH]:
        digest: bytes32 = eip712._typed_digest(keccak256(abi_encode(typehash, hash)))
        if account_auth._is_owner_signature(digest, signature):
            return ERC1271_MAGIC
    return ERC1271_INVALID


@external
@view
def eip712Domain() -> (bytes1, String[11], String[1], uint256, address, bytes32, DynArray[uint256, 1]):
    """
    @notice ERC-5267: this account's EIP-712 domain, the one ERC-7739 signatures are built on.
    @dev The same domain every SessionWard digest of this account uses: `self` is the account
         (proxy or EIP-7702 EOA), never the implementation, and the chain id is read live.
    @return fields (0x0f: name, version, chainId, verifyingContract), name "SessionWard",
            version "1", this chain, this account, no salt, no extensions.
    """
    return 0x0f, "SessionWard", "1", chain.id, self, empty(bytes32), []


@external
@view
def owner() -> address:
    """
    @notice The account's owner.
    @dev Read from the account's code, never from storage: the address appended to a factory
         proxy's code, or the account itself under EIP-7702 (and for the inert implementation).
         Nothing can change it.
    @return The owner address.
    """
    return account_auth._owner()


@external
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator of this account on this chain.
    @dev `{name: "SessionWard", version: "1", chainId, verifyingContract: self}`, recomputed on
         every call so a chain fork or another proxy of the same code never shares it.
    @return The domain separator.
    """
    return eip712._domain_separator()


@external
@payable
def __default__():
    """
    @notice Receive ether.
    @dev Accepts only empty call data: an unknown function reverts CALLDATA_MALFORMED instead of
         silently succeeding. Changes no storage.
    """
    if len(msg.data) != 0:
        reasons._fail(reasons.CALLDATA_MALFORMED)
