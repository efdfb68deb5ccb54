# pragma version ~=0.4.3
"""
@title SessionWard ERC-7579 module (prototype: the session-key paths)
@notice One deployment per chain serves every ERC-7579 account that installs it, as a
        validator (module type 1: session user operations through an ERC-4337 EntryPoint)
        and/or as an executor (module type 2: session calls relayed by anyone,
        `execute_with_session`, run through the account's `executeFromExecutor`). The type is
        the first byte of the install and uninstall data (empty: validator), because ERC-7579
        does not pass it to `onInstall`. An account's owner grants a session key scoped permissions with an EIP-712
        `SessionGrant` (the same typed data and domain as SessionAccount: `{name "SessionWard",
        version "1", chainId, verifyingContract: the account}`), checked through the
        account's own ERC-1271 `isValidSignature`, or enabled by the account calling
        `enable_session` itself. The session key then signs user operations (the EIP-191 hash
        of the userOpHash) that the account routes to this module.

        Storage: every per-account word sits at an ERC-7562 *associated* slot of this
        contract, `keccak256(account ‖ x) + n` (0 <= n <= 127), so a bundler accepts the
        validation reading and writing it. Vyper's HashMap slot is `keccak256(slot ‖ key)`,
        never associated, so this module declares no storage variable at all: it reaches its
        own storage only by DELEGATECALL to AssociatedStorage (54 bytes of hand-written EVM,
        `associated_storage.py`), at the address the deterministic deployment proxy gives it on
        any chain; the constructor refuses to deploy where that code is missing or different.

        Uninstalling (either type) bumps the account's epoch: every session, fee budget and
        grant nonce is keyed by the epoch, so a reinstall starts clean (nothing from before is
        reachable) and no grant signed before can be enabled again (a grant names its epoch).
        Only the relayed calls' nonces are kept per key across epochs: a `SessionCall` does
        not name the epoch, so a call signed before could otherwise be replayed after the
        owner grants the same key again.

        Rules: docs/protocol.md section 4 exactly as session_enforce.vy enforces it in
        SessionAccount (same order, same reason codes; tests/erc7579/test_module_parity*.py
        run both side by side): self-calls, maximum approvals, target and selector, static
        argument rules, the per-call value cap; then per execution the native value and
        token limits with their refill windows and the use count. A grant field
        SessionAccount does not enforce on chain (allowed destinations, which the grant
        builder turns into rules, the USD cap, the rate limit, off-chain-only rules) is
        signed and left to the service, as there. The fee budget (`maxFeeWei`) is enforced as
        in SessionAccount.

        Time in validation: a user operation's refill windows (rules 6 and 7 with a period)
        are those of the time the operation claims (6 bytes after its signature; 0 when
        absent), and `validationData` narrows its validity to the range where every charged
        window holds, so the EntryPoint runs it only while what validation charged is what
        SessionAccount would charge at execution (ERC-7562 bans TIMESTAMP in validation).
        Rules 6-8 are charged in validation: a charged operation whose calls then revert
        keeps its charge (SessionAccount's would revert with them), the fee budget's rule too.
"""

from .. import reasons
from .. import eip712
from .. import erc7579
from .. import session_grants
from .. import session_catalog
# Read-only imports of SessionAccount's modules: sessions.vy for the permission-word packing
# (the same bits, so a grant means the same on both), session_enforce.vy for `_window` (pure).
# Neither is initialised: the module touches no storage of theirs.
from .. import sessions
from .. import session_enforce


# ---------------------------------------------------------------------------------------------
# ERC-4337 / ERC-7579 types and constants.

struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[MAX_INIT_CODE]
    callData: Bytes[MAX_USER_OP_CALLDATA]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[MAX_PAYMASTER_DATA]
    signature: Bytes[MAX_SIGNATURE]


interface ERC1271:
    def isValidSignature(hash: bytes32, signature: Bytes[MAX_SIGNATURE]) -> bytes4: view


interface AssociatedWords:
    def associated_word(account: address, key: bytes32, n: uint256) -> uint256: view


MAX_INIT_CODE: constant(uint256) = 512
MAX_PAYMASTER_DATA: constant(uint256) = 1024
MAX_SIGNATURE: constant(uint256) = 1024
# execute(bytes32,bytes): selector, mode, offset, length, payload.
MAX_USER_OP_CALLDATA: constant(uint256) = erc7579.MAX_EXECUTION_BYTES + 4 + 32 * 3
EXECUTE_SELECTOR: constant(bytes4) = method_id("execute(bytes32,bytes)", output_type=bytes4)

MODULE_TYPE_VALIDATOR: constant(uint256) = 1
MODULE_TYPE_EXECUTOR: constant(uint256) = 2
EXECUTE_FROM_EXECUTOR: constant(bytes4) = method_id("executeFromExecutor(bytes32,bytes)", output_type=bytes4)
SIG_VALIDATION_FAILED: constant(uint256) = 1
ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E
ERC1271_INVALID: constant(bytes4) = 0xFFFFFFFF
# sessionKey (20) ‖ r ‖ s ‖ v (65)
SESSION_SIGNATURE_LENGTH: constant(uint256) = 85
SECP256K1_HALF_N: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)
MASK32: constant(uint256) = 2**32 - 1
MASK48: constant(uint256) = 2**48 - 1
MASK128: constant(uint256) = 2**128 - 1
# paymaster (20) ‖ paymasterVerificationGasLimit (16) ‖ paymasterPostOpGasLimit (16) ‖ data
PAYMASTER_DATA_OFFSET: constant(uint256) = 52

# AssociatedStorage (associated_storage.py): CREATE2 address under the deterministic
# deployment proxy 0x4e59b44847b379578588920ca78fbf26c0b4956c with salt 0, and its code hash.
ASSOCIATED_STORAGE: constant(address) = 0x1EbE076464AA985a424351f74CAce7E8b09376fB
ASSOCIATED_STORAGE_CODEHASH: constant(bytes32) = 0x78c0aca07c336bb0ea42fc35db2d1e7f4d569f70a7c3d6b3915e4f9ee3afd941

# EIP-712 domain of docs/protocol.md section 1, with the account as verifyingContract.
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("SessionWard")
VERSION_HASH: constant(bytes32) = keccak256("1")

# ---------------------------------------------------------------------------------------------
# Associated storage layout: `x` (the key hashed after the account) and the word offset `n`.

# Account word, x = ACCOUNT_KEY, n = 0.
ACCOUNT_KEY: constant(bytes32) = keccak256("sessionward.erc7579.account.v1")
ACC_INSTALLED: constant(uint256) = 1        # bit 0: installed as a validator
ACC_EXECUTOR: constant(uint256) = 2         # bit 1: installed as an executor
ACC_ANY_TYPE: constant(uint256) = 3
ACC_EPOCH: constant(uint256) = 8            # uint32: bumped by uninstall and revoke_all
ACC_GENERATION: constant(uint256) = 40      # uint32: enables so far (keys a grant's permissions)
ACC_OWNER_NONCE: constant(uint256) = 72     # uint32: next owner-signed revocation nonce
# Session, x = keccak256(abi_encode(SESSION_TAG, epoch, sessionKey)): n = 0 state, n = 1 fee
# budget, n = 2 the grant's revoker (0: none).
SESSION_TAG: constant(bytes32) = keccak256("sessionward.erc7579.session")
STATUS_ACTIVE: constant(uint256) = 1        # bits 0..7
STATUS_REVOKED: constant(uint256) = 2       # the whole word after revoke_session
ST_VALID_AFTER: constant(uint256) = 8       # uint48
ST_EXPIRES_AT: constant(uint256) = 56       # uint48
ST_GENERATION: constant(uint256) = 104      # uint32
ST_MAX_USES: constant(uint256) = 136        # uint32: the grant's maxUses (0: none)
ST_USES: constant(uint256) = 168            # uint32: executions so far (counted under a maxUses)
# Session words: n = 3 native value (sessions.vy packing: window | remaining | limit),
# n = 4 the grant's valuePeriod.
SESSION_FEE: constant(uint256) = 1
SESSION_REVOKER: constant(uint256) = 2
SESSION_NATIVE: constant(uint256) = 3
SESSION_VALUE_PERIOD: constant(uint256) = 4
# Permission, x = keccak256(abi_encode(PERMISSION_TAG, generation, target, selector)): n = 0 the
# permission word (sessions.vy's packing: PERM_*), n = 1 + i the operand of scalar rule i.
PERMISSION_TAG: constant(bytes32) = keccak256("sessionward.erc7579.permission")
# Member of the value set of `in` / `not_in` rule i of a permission,
# x = keccak256(abi_encode(MEMBER_TAG, permission x, i, value)), n = 0: 1 when a member.
MEMBER_TAG: constant(bytes32) = keccak256("sessionward.erc7579.rule-member")
# Token limit, x = keccak256(abi_encode(TOKEN_TAG, generation, token)): n = 0 state (window |
# remaining << 48, sessions.vy's packing), n = 1 limit and n = 2 period (only with a period).
TOKEN_TAG: constant(bytes32) = keccak256("sessionward.erc7579.token-limit")
TOKEN_LIMIT: constant(uint256) = 1
TOKEN_PERIOD: constant(uint256) = 2
# Target of some permission, x = keccak256(abi_encode(TARGET_TAG, generation, target)), n = 0.
TARGET_TAG: constant(bytes32) = keccak256("sessionward.erc7579.target")
# Grant nonce spent, x = keccak256(abi_encode(GRANT_NONCE_TAG, epoch, nonce)), n = 0.
GRANT_NONCE_TAG: constant(bytes32) = keccak256("sessionward.erc7579.grant-nonce")
# Relayed call nonces of a key (all epochs), x = keccak256(abi_encode(CALL_NONCE_TAG, key,
# nonce >> 8)), n = 0: bit `nonce & 255` set when used.
CALL_NONCE_TAG: constant(bytes32) = keccak256("sessionward.erc7579.call-nonce")


# A token's outflow in one execution (rule 7), summed per token.
struct Outflow:
    token: address
    amount: uint256
    period: uint256


event ModuleInstalledFor:
    account: indexed(address)
    epoch: uint256

event ModuleUninstalledFor:
    account: indexed(address)
    epoch: uint256

event SessionEnabled:
    account: indexed(address)
    session_key: indexed(address)
    grant_nonce: uint256
    credential: bytes32
    valid_after: uint48
    expires_at: uint48
    epoch: uint256

event SessionExecuted:
    account: indexed(address)
    session_key: indexed(address)
    nonce: uint256

event SessionRevoked:
    account: indexed(address)
    session_key: indexed(address)

event SessionsRevokedAll:
    account: indexed(address)
    epoch: uint256


@deploy
def __init__():
    """
    @notice Deploy the module on a chain where AssociatedStorage is deployed.
    @dev Reverts NOT_AUTHORIZED unless the code at ASSOCIATED_STORAGE is exactly
         AssociatedStorage's (its code hash): the module delegates all its storage to it.
    """
    if ASSOCIATED_STORAGE.codehash != ASSOCIATED_STORAGE_CODEHASH:
        reasons._fail(reasons.NOT_AUTHORIZED)


# =============================================================================================
# Associated storage through AssociatedStorage.

@internal
def _load(account: address, key: bytes32, n: uint256) -> uint256:
    """
    @dev The word of this contract's storage at `keccak256(account ‖ key) + n` (n <= 127).
         DELEGATECALL with an explicit gas argument: vyper's default pushes GAS long before
         the call, which ERC-7562 (OP-012) forbids in validation.
    """
    word: Bytes[32] = raw_call(
        ASSOCIATED_STORAGE,
        abi_encode(account, key, n),
        max_outsize=32,
        gas=max_value(uint256),
        is_delegate_call=True,
    )
    return convert(word, uint256)


@internal
def _store(account: address, key: bytes32, n: uint256, word: uint256):
    """
    @dev Write `word` at `keccak256(account ‖ key) + n` of this contract's storage.
    """
    raw_call(
        ASSOCIATED_STORAGE,
        abi_encode(account, key, n, word),
        gas=max_value(uint256),
        is_delegate_call=True,
    )


@external
def associated_word(account: address, key: bytes32, n: uint256) -> uint256:
    """
    @notice The module's storage word at `keccak256(account ‖ key) + n` (for the views, which
            reach it by a static call to this function). Writes nothing.
    @dev Not a view only because vyper forbids DELEGATECALL in views; AssociatedStorage is
         given 96 bytes, its load form, so nothing can be written through this function.
    @param account The account the word belongs to.
    @param key The key hashed after the account.
    @param n The word offset, at most 127.
    @return The stored word.
    """
    return self._load(account, key, n)


@internal
@view
def _read(account: address, key: bytes32, n: uint256) -> uint256:
    return staticcall AssociatedWords(self).associated_word(account, key, n)


@internal
@pure
def _session_key(epoch: uint256, session_key: address) -> bytes32:
    return keccak256(abi_encode(SESSION_TAG, epoch, session_key))


@internal
@pure
def _permission_key(generation: uint256, target: address, selector: bytes4) -> bytes32:
    return keccak256(abi_encode(PERMISSION_TAG, generation, target, selector))


@internal
@pure
def _target_key(generation: uint256, target: address) -> bytes32:
    return keccak256(abi_encode(TARGET_TAG, generation, target))


@internal
@pure
def _member_key(permission: bytes32, index: uint256, member: bytes32) -> bytes32:
    return keccak256(abi_encode(MEMBER_TAG, permission, index, member))


@internal
@pure
def _token_key(generation: uint256, token: address) -> bytes32:
    return keccak256(abi_encode(TOKEN_TAG, generation, token))


# =============================================================================================
# ERC-7579 module interface.

@internal
@pure
def _type_bit(data: Bytes[1024]) -> uint256:
    """
    @dev The account-word bit of the module type named by the first byte of install or
         uninstall data: empty or 0x01 validator, 0x02 executor; INPUT_MALFORMED otherwise.
    """
    if len(data) == 0:
        return ACC_INSTALLED
    kind: uint256 = convert(slice(data, 0, 1), uint256)
    if kind == MODULE_TYPE_VALIDATOR:
        return ACC_INSTALLED
    if kind == MODULE_TYPE_EXECUTOR:
        return ACC_EXECUTOR
    reasons._fail(reasons.INPUT_MALFORMED)
    return 0


@external
def onInstall(data: Bytes[1024]):
    """
    @notice ERC-7579: the calling account installs the module as the type `data` names.
            Sessions are enabled afterwards with owner-signed grants.
    @dev Marks the type installed in the account's current epoch (0 the first time; the
         epoch an uninstall moved to afterwards, so nothing from before is reachable).
         Installing a type twice without an uninstall changes nothing.
    @param data Empty or 0x01: validator; 0x02: executor (INPUT_MALFORMED otherwise).
    """
    bit: uint256 = self._type_bit(data)
    word: uint256 = self._load(msg.sender, ACCOUNT_KEY, 0)
    if word & bit == 0:
        self._store(msg.sender, ACCOUNT_KEY, 0, word | bit)
    log ModuleInstalledFor(account=msg.sender, epoch=(word >> ACC_EPOCH) & MASK32)


@external
def onUninstall(data: Bytes[1024]):
    """
    @notice ERC-7579: the calling account uninstalls the module's type `data` names; every
            session, fee budget and grant nonce of the account becomes unreachable.
    @dev Clears the type's bit and bumps the epoch (the key of all session state), so a
         reinstall starts clean. The generation counter and the relayed calls' nonces are
         kept. Reverts SESSION_REVOKED if the epoch would overflow uint32.
    @param data Empty or 0x01: validator; 0x02: executor (INPUT_MALFORMED otherwise).
    """
    bit: uint256 = self._type_bit(data)
    word: uint256 = self._load(msg.sender, ACCOUNT_KEY, 0)
    epoch: uint256 = self._next_epoch(word)
    self._store(
        msg.sender, ACCOUNT_KEY, 0,
        ((word & ~(MASK32 << ACC_EPOCH)) | (epoch << ACC_EPOCH)) & ~bit,
    )
    log ModuleUninstalledFor(account=msg.sender, epoch=epoch)


@internal
@pure
def _next_epoch(word: uint256) -> uint256:
    epoch: uint256 = ((word >> ACC_EPOCH) & MASK32) + 1
    if epoch > MASK32:
        reasons._fail(reasons.SESSION_REVOKED)
    return epoch


@external
@pure
def isModuleType(moduleTypeId: uint256) -> bool:
    """
    @notice ERC-7579 module type check.
    @dev A validator and an executor (no hook or fallback).
    @param moduleTypeId The type asked about.
    @return True for 1 (validator) and 2 (executor).
    """
    return moduleTypeId == MODULE_TYPE_VALIDATOR or moduleTypeId == MODULE_TYPE_EXECUTOR


@external
@view
def isInitialized(smartAccount: address) -> bool:
    """
    @notice Whether `smartAccount` has the module installed (as either type).
    @dev The type bits of the account word; an uninstall clears one and bumps the epoch.
    @param smartAccount The account.
    @return True while a type is installed.
    """
    return self._read(smartAccount, ACCOUNT_KEY, 0) & ACC_ANY_TYPE != 0


@external
@view
def isValidSignatureWithSender(sender: address, hash: bytes32, signature: Bytes[MAX_SIGNATURE]) -> bytes4:
    """
    @notice ERC-7579 validator ERC-1271 hook: session keys never sign for the account, so
            this module validates no ERC-1271 signature.
    @dev Never reverts, never reads storage.
    @param sender The caller of the account's isValidSignature.
    @param hash The hash to validate.
    @param signature The signature.
    @return Always 0xffffffff.
    """
    return ERC1271_INVALID


# =============================================================================================
# Sessions.

@internal
@view
def _typed_digest(account: address, struct_hash: bytes32) -> bytes32:
    """
    @dev `keccak256(0x1901 ‖ domainSeparator(account) ‖ structHash)`.
    """
    separator: bytes32 = keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, account))
    return keccak256(concat(b"\x19\x01", separator, struct_hash))


@internal
@view
def _check_owner_approval(account: address, digest: bytes32, signature: Bytes[MAX_SIGNATURE]):
    """
    @dev The owner's authority over `account` for `digest`: the account itself calling, or
         the account's ERC-1271 approval of `digest` (SIGNATURE_INVALID otherwise: a
         revert, a short answer or any other value). The module cannot know what an
         account's owner is; the account says what its owner signed.
    """
    if msg.sender == account:
        return
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        account,
        abi_encode(digest, signature, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not success or len(response) != 32 or convert(slice(response, 0, 4), bytes4) != ERC1271_MAGIC:
        reasons._fail(reasons.SIGNATURE_INVALID)


@external
def enable_session(grant: session_grants.SessionGrant, owner_signature: Bytes[MAX_SIGNATURE]):
    """
    @notice Enable a session key on `grant.account` with the owner's grant. Anyone may submit
            it with the owner's signature (checked by the account's ERC-1271); the account
            itself may submit it unsigned.
    @dev Checks, in order: the account has the module installed as either type
         (NOT_AUTHORIZED), chain (CHAIN_MISMATCH), epoch (SESSION_REVOKED), grant nonce unused
         in this epoch (NONCE_REPLAYED), session key and window (ENVELOPE_MALFORMED,
         WINDOW_INVALID), the owner's authority (SIGNATURE_INVALID), then, while storing them as session_enable.vy does,
         each token limit (a token twice: ENVELOPE_MALFORMED) and each permission (the account
         or this module as target: SELF_CALL_FORBIDDEN; selector not the function's, a pair
         twice, an unknown operator, a rule without its operands: ENVELOPE_MALFORMED; a
         function on a limited token whose outflow rule 7 cannot measure:
         TOKEN_FUNCTION_UNDEFINED). Off-chain-only rules (offset 0xffff), allowed
         destinations (already implicit rules of the grant), the USD cap and the rate limit
         are signed but not stored, as on SessionAccount. Re-enabling a key replaces its
         grant: new window, permissions and limits (a new generation), new fee budget,
         native limit and use count.
    @param grant The owner's SessionGrant (docs/protocol.md section 2).
    @param owner_signature What the account's isValidSignature accepts for the grant digest.
    """
    account: address = grant.account
    word: uint256 = self._load(account, ACCOUNT_KEY, 0)
    if word & ACC_ANY_TYPE == 0:
        reasons._fail(reasons.NOT_AUTHORIZED)
    if grant.envelope.chainId != chain.id:
        reasons._fail(reasons.CHAIN_MISMATCH)
    epoch: uint256 = (word >> ACC_EPOCH) & MASK32
    if grant.epoch != epoch:
        reasons._fail(reasons.SESSION_REVOKED)
    nonce_key: bytes32 = keccak256(abi_encode(GRANT_NONCE_TAG, epoch, grant.nonce))
    if self._load(account, nonce_key, 0) != 0:
        reasons._fail(reasons.NONCE_REPLAYED)
    if grant.sessionKey == empty(address):
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    if grant.envelope.validAfter >= grant.envelope.expiresAt:
        reasons._fail(reasons.WINDOW_INVALID)
    self._check_owner_approval(
        account, self._typed_digest(account, session_grants._grant_struct_hash(grant)), owner_signature
    )

    self._store(account, nonce_key, 0, 1)
    generation: uint256 = ((word >> ACC_GENERATION) & MASK32) + 1
    if generation > MASK32:
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    self._store(account, ACCOUNT_KEY, 0, (word & ~(MASK32 << ACC_GENERATION)) | (generation << ACC_GENERATION))

    # Token limits, keyed by (generation, token): a new grant starts from full limits.
    for i: uint256 in range(session_grants.MAX_TOKEN_LIMITS):
        if i == len(grant.envelope.tokenLimits):
            break
        limit: session_grants.TokenLimit = grant.envelope.tokenLimits[i]
        for j: uint256 in range(session_grants.MAX_TOKEN_LIMITS):
            if j == i:
                break
            if grant.envelope.tokenLimits[j].token == limit.token:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
        token_key: bytes32 = self._token_key(generation, limit.token)
        if limit.period != 0:
            self._store(account, token_key, TOKEN_LIMIT, limit.limit)
            self._store(account, token_key, TOKEN_PERIOD, convert(limit.period, uint256))
        self._store(
            account, token_key, 0, min(limit.limit, sessions.MAX_TOKEN_REMAINING) << sessions.TOKEN_REMAINING
        )

    for permission: session_grants.Permission in grant.envelope.permissions:
        self._store_permission(account, generation, permission, grant.envelope.tokenLimits)

    session: bytes32 = self._session_key(epoch, grant.sessionKey)
    self._store(
        account, session, 0,
        STATUS_ACTIVE
        | (convert(grant.envelope.validAfter, uint256) << ST_VALID_AFTER)
        | (convert(grant.envelope.expiresAt, uint256) << ST_EXPIRES_AT)
        | (generation << ST_GENERATION)
        | (convert(grant.envelope.maxUses, uint256) << ST_MAX_USES),
    )
    # Always written: a re-enabled key must not inherit its previous grant's budget or window.
    self._store(account, session, SESSION_FEE, grant.envelope.maxFeeWei)
    self._store(account, session, SESSION_REVOKER, convert(grant.revoker, uint256))
    value_limit: uint256 = min(grant.envelope.valueLimit, sessions.MAX_NATIVE_LIMIT)
    self._store(
        account, session, SESSION_NATIVE,
        (value_limit << sessions.NATIVE_REMAINING) | (value_limit << sessions.NATIVE_LIMIT),
    )
    self._store(account, session, SESSION_VALUE_PERIOD, convert(grant.envelope.valuePeriod, uint256))
    log SessionEnabled(
        account=account,
        session_key=grant.sessionKey,
        grant_nonce=grant.nonce,
        credential=grant.credential,
        valid_after=grant.envelope.validAfter,
        expires_at=grant.envelope.expiresAt,
        epoch=epoch,
    )


@internal
def _store_permission(
    account: address,
    generation: uint256,
    permission: session_grants.Permission,
    token_limits: DynArray[session_grants.TokenLimit, session_grants.MAX_TOKEN_LIMITS],
):
    """
    @dev Store one permission as session_enable.vy's `_store_permission` does, in the
         account's associated storage: the permission word (sessions.vy's PERM_* packing:
         approval kind, value cap, token and argument-outflow kinds, on-chain rules) at n = 0
         of the permission key, scalar rule operands at n = 1 + i, `in` / `not_in` values as
         members (`_member_key`), and the target as known. Refusals as `enable_session` lists.
    """
    if permission.target == account or permission.target == self:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if permission.selector != convert(slice(keccak256(permission.function), 0, 4), bytes4):
        reasons._fail(reasons.ENVELOPE_MALFORMED)

    word: uint256 = (
        sessions.PERM_PRESENT
        | (session_catalog._approval_kind(permission.selector) << sessions.PERM_APPROVAL)
        | (min(permission.maxValuePerCall, sessions.MAX_VALUE_CAP) << sessions.PERM_VALUE_CAP)
    )
    for limit: session_grants.TokenLimit in token_limits:
        if limit.token == permission.target:
            word |= sessions.PERM_TOKEN | (convert(limit.period, uint256) << sessions.PERM_TOKEN_PERIOD)
    if len(token_limits) != 0:
        word |= session_catalog._argument_outflow_kind(permission.selector) << sessions.PERM_ARG_OUTFLOW
    if (
        word & sessions.PERM_TOKEN != 0
        and word & sessions.ARG_OUTFLOW_BITS == 0
        and not session_catalog._measured_on_token(permission.selector)
    ):
        reasons._fail(reasons.TOKEN_FUNCTION_UNDEFINED)

    key: bytes32 = self._permission_key(generation, permission.target, permission.selector)
    if self._load(account, key, 0) != 0:
        reasons._fail(reasons.ENVELOPE_MALFORMED)

    stored: uint256 = 0
    for rule: session_grants.Rule in permission.rules:
        op: uint256 = convert(rule.op, uint256)
        if op > session_catalog.OP_NOT_IN:
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        if rule.offset == session_catalog.OFFCHAIN_ONLY:
            continue
        if op == session_catalog.OP_IN or op == session_catalog.OP_NOT_IN:
            if len(rule.values) == 0:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            for value: bytes32 in rule.values:
                self._store(account, self._member_key(key, stored, value), 0, 1)
        else:
            if len(rule.values) != 1:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            self._store(account, key, stored + 1, convert(rule.values[0], uint256))
        word |= (op | (convert(rule.offset, uint256) << 8)) << (sessions.PERM_RULES + 24 * stored)
        stored += 1
    self._store(account, key, 0, word | (stored << sessions.PERM_RULE_COUNT))
    self._store(account, self._target_key(generation, permission.target), 0, 1)


@internal
def _revoke(account: address, session_key: address, by_revoker: bool):
    """
    @dev Mark the session STATUS_REVOKED (window and generation dropped), so its operations
         are refused SESSION_REVOKED. SESSION_UNKNOWN when the key has no session in the
         current epoch, SESSION_REVOKED when it is revoked already; with `by_revoker`,
         NOT_AUTHORIZED unless `msg.sender` is the grant's non-zero revoker.
    """
    epoch: uint256 = (self._load(account, ACCOUNT_KEY, 0) >> ACC_EPOCH) & MASK32
    session: bytes32 = self._session_key(epoch, session_key)
    if by_revoker:
        revoker: uint256 = self._load(account, session, SESSION_REVOKER)
        if revoker == 0 or convert(msg.sender, uint256) != revoker:
            reasons._fail(reasons.NOT_AUTHORIZED)
    self._live_session(self._load(account, session, 0))
    self._store(account, session, 0, STATUS_REVOKED)
    log SessionRevoked(account=account, session_key=session_key)


@external
def revoke_session(session_key: address):
    """
    @notice The calling account revokes one of its sessions (its owner sends this through
            the account's `execute`).
    @dev Its operations are then refused SESSION_REVOKED. SESSION_UNKNOWN when the key has
         no session in the current epoch, SESSION_REVOKED when it is revoked already.
    @param session_key The session key to revoke.
    """
    self._revoke(msg.sender, session_key, False)


@external
def revoke_session_as_revoker(account: address, session_key: address):
    """
    @notice The grant's `revoker` revokes the session (it can only revoke, never widen), as
            SessionAccount's `revoke_session` lets it.
    @dev NOT_AUTHORIZED unless `msg.sender` is the non-zero revoker of the key's grant in
         the account's current epoch; then as `revoke_session`.
    @param account The account.
    @param session_key The session key to revoke.
    """
    self._revoke(account, session_key, True)


@external
def revoke_all():
    """
    @notice The calling account revokes every session at once (epoch bump; stays installed).
    @dev Every session, fee budget and grant nonce is keyed by the epoch, so none from before
         is reachable; SESSION_REVOKED if the epoch would overflow uint32.
    """
    word: uint256 = self._load(msg.sender, ACCOUNT_KEY, 0)
    epoch: uint256 = self._next_epoch(word)
    self._store(msg.sender, ACCOUNT_KEY, 0, (word & ~(MASK32 << ACC_EPOCH)) | (epoch << ACC_EPOCH))
    log SessionsRevokedAll(account=msg.sender, epoch=epoch)


@external
def revoke_session_signed(
    account: address, session_key: address, epoch: uint256, nonce: uint256, owner_signature: Bytes[MAX_SIGNATURE]
):
    """
    @notice Relay the owner's EIP-712 `Revocation` (SessionAccount's typed data, the
            account's domain); `session_key = 0` revokes all (epoch bump).
    @dev `nonce` must be the account's next owner-revocation nonce and `epoch` its current
         epoch (a stale message is NONCE_REPLAYED); the owner's approval comes from the
         account's ERC-1271 (SIGNATURE_INVALID) or the account calling; the nonce is then
         spent, and the key is revoked as by `revoke_session` (SESSION_UNKNOWN,
         SESSION_REVOKED).
    @param account The account.
    @param session_key The session key to revoke, or zero for all.
    @param epoch The account's current epoch.
    @param nonce The account's next owner-revocation nonce (`owner_nonce`).
    @param owner_signature What the account's isValidSignature accepts for the digest.
    """
    word: uint256 = self._load(account, ACCOUNT_KEY, 0)
    if nonce != (word >> ACC_OWNER_NONCE) & MASK32 or epoch != (word >> ACC_EPOCH) & MASK32:
        reasons._fail(reasons.NONCE_REPLAYED)
    struct_hash: bytes32 = keccak256(
        abi_encode(session_grants.REVOCATION_TYPEHASH, account, session_key, epoch, nonce)
    )
    self._check_owner_approval(account, self._typed_digest(account, struct_hash), owner_signature)
    if nonce == MASK32:
        reasons._fail(reasons.NONCE_REPLAYED)
    word += 1 << ACC_OWNER_NONCE
    if session_key == empty(address):
        next_epoch: uint256 = self._next_epoch(word)
        self._store(account, ACCOUNT_KEY, 0, (word & ~(MASK32 << ACC_EPOCH)) | (next_epoch << ACC_EPOCH))
        log SessionsRevokedAll(account=account, epoch=next_epoch)
        return
    self._store(account, ACCOUNT_KEY, 0, word)
    self._revoke(account, session_key, False)


@external
@view
def owner_nonce(account: address) -> uint256:
    """
    @notice The account's next owner-revocation nonce (for `revoke_session_signed`).
    @dev Bits 72..103 of the account word; kept across epochs.
    @param account The account.
    @return The nonce the next signed revocation must carry.
    """
    return (self._read(account, ACCOUNT_KEY, 0) >> ACC_OWNER_NONCE) & MASK32


@internal
def _enforce(
    account: address,
    session: bytes32,
    state: uint256,
    now: uint256,
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH],
    base: uint256,
) -> (uint256, uint256):
    """
    @dev docs/protocol.md section 4 for one decoded execution of `account` (mode and encoding
         already checked by erc7579._decode; its bytes are read in place from this call's
         calldata, where they start at byte `base`: no copy of up to 4 KiB into this frame), exactly as session_enforce.vy's `_enforce`, with
         the rules read from this module's associated storage. Reverts with the first
         violation: per call in order 1 SELF_CALL_FORBIDDEN (the account or this module),
         2 NON_DELEGABLE_ACTION (maximum approvals), 3 TARGET_NOT_ALLOWED /
         SELECTOR_NOT_ALLOWED, 4 CALLDATA_MALFORMED / ARG_RULE_VIOLATED, 5 VALUE_CAP_EXCEEDED;
         then per execution 6 VALUE_LIMIT_EXCEEDED, 7 TOKEN_LIMIT_EXCEEDED,
         8 USAGE_LIMIT_REACHED. Charges rules 6-8 (the native and token windows, the use
         count under a maxUses) at time `now`: `block.timestamp` on the relayer path, the
         time the user operation claims in validation (no TIMESTAMP there, ERC-7562).
    @return The time range `[from, until)` in which `now`'s refill windows hold for every
            periodic limit charged (`(0, 2**256 - 1)` when none): a user operation is valid
            only inside it, so what validation charged is what execution time would charge.
    """
    generation: uint256 = (state >> ST_GENERATION) & MASK32
    native_total: uint256 = 0
    outflows: DynArray[Outflow, erc7579.MAX_BATCH] = []
    # The permission of the previous call, reused when a batch repeats (target, selector).
    last_target: address = empty(address)
    last_selector: bytes4 = empty(bytes4)
    key: bytes32 = empty(bytes32)
    word: uint256 = 0
    # The last rule that held, by (permission, rule index + 1, argument).
    held_key: bytes32 = empty(bytes32)
    held_index: uint256 = 0
    held_argument: bytes32 = empty(bytes32)

    for c: erc7579.CallRef in calls:
        # 1. The account itself and this module.
        if c.target == account or c.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
        selector: bytes4 = convert(slice(msg.data, base + c.start, 4), bytes4)

        # 3. Target and selector: the permission word.
        if c.target != last_target or selector != last_selector:
            key = self._permission_key(generation, c.target, selector)
            word = self._load(account, key, 0)
            last_target = c.target
            last_selector = selector

        # 2. Maximum-amount approvals, before 3 refuses.
        kind: uint256 = (word >> sessions.PERM_APPROVAL) & 3
        if word == 0:
            kind = session_catalog._approval_kind(selector)
        if kind != session_catalog.APPROVAL_NONE:
            approved_word: uint256 = 1
            if kind != session_catalog.APPROVAL_WORD1:
                approved_word = 2
            if c.length >= 36 + 32 * approved_word:
                approved: uint256 = self._arg(base, c.start + 4 + 32 * approved_word)
                if approved == max_value(uint256) or (
                    kind == session_catalog.APPROVAL_PERMIT2 and approved == sessions.MASK160
                ):
                    reasons._fail(reasons.NON_DELEGABLE_ACTION)
        if word == 0:
            if self._load(account, self._target_key(generation, c.target), 0) != 0:
                reasons._fail(reasons.SELECTOR_NOT_ALLOWED)
            reasons._fail(reasons.TARGET_NOT_ALLOWED)

        # 4. Argument rules (static words only; off-chain-only rules were not stored).
        for i: uint256 in range((word >> sessions.PERM_RULE_COUNT) & sessions.MASK8, bound=session_grants.MAX_RULES):
            spec: uint256 = (word >> (sessions.PERM_RULES + 24 * i)) & sessions.MASK24
            op: uint256 = spec & sessions.MASK8
            position: uint256 = 4 + 32 * (spec >> 8)
            if position + 32 > c.length:
                reasons._fail(reasons.CALLDATA_MALFORMED)
            argument: bytes32 = convert(self._arg(base, c.start + position), bytes32)
            if key == held_key and i + 1 == held_index and argument == held_argument:
                continue
            ok: bool = False
            if op == session_catalog.OP_IN:
                ok = self._load(account, self._member_key(key, i, argument), 0) != 0
            elif op == session_catalog.OP_NOT_IN:
                ok = self._load(account, self._member_key(key, i, argument), 0) == 0
            else:
                operand: uint256 = self._load(account, key, i + 1)
                if op == session_catalog.OP_EQ:
                    ok = convert(argument, uint256) == operand
                elif op == session_catalog.OP_NE:
                    ok = convert(argument, uint256) != operand
                elif op == session_catalog.OP_LTE:
                    ok = convert(argument, uint256) <= operand
                else:  # OP_GTE (operators were validated when the grant was enabled)
                    ok = convert(argument, uint256) >= operand
            if not ok:
                reasons._fail(reasons.ARG_RULE_VIOLATED)
            held_key = key
            held_index = i + 1
            held_argument = argument

        # 5. Per-call native value.
        if c.value != 0:
            if c.value > word >> sessions.PERM_VALUE_CAP:
                reasons._fail(reasons.VALUE_CAP_EXCEEDED)
            native_total += c.value

        # Token outflow, summed per token: of a limited token called directly, or of the token
        # an argument names (swaps, Permit2) when the grant has token limits.
        if word & (sessions.PERM_TOKEN | sessions.ARG_OUTFLOW_BITS) != 0:
            outflows = self._add_outflow(account, generation, word, selector, c, base, outflows)

    # Rules 6-8 (nothing to charge, and no frame to copy the outflows into, without them).
    if native_total == 0 and len(outflows) == 0 and (state >> ST_MAX_USES) & MASK32 == 0:
        return 0, max_value(uint256)
    return self._charge(account, session, state, now, native_total, outflows)


@internal
def _add_outflow(
    account: address,
    generation: uint256,
    word: uint256,
    selector: bytes4,
    c: erc7579.CallRef,
    base: uint256,
    outflows: DynArray[Outflow, erc7579.MAX_BATCH],
) -> DynArray[Outflow, erc7579.MAX_BATCH]:
    """
    @dev `outflows` with the token outflow of call `c` (permission word `word`) added, measured as
         session_enforce.vy measures it (docs/protocol.md rule 7): transfer, approve and
         increaseAllowance amounts on a limited token, transferFrom and permit when the account
         pays, WETH withdraw; a swap's input, Permit2 approve, and Permit2 permit of the
         account, on the token an argument names. CALLDATA_MALFORMED when a word it reads is
         missing, an offset points outside the call, a path is empty or a token word is dirty.
         Sums saturate (an overflowing sum exceeds any limit).
    """
    token: address = c.target
    amount_word: uint256 = 0
    counted: bool = True
    if word & sessions.ARG_OUTFLOW_BITS != 0:
        outflow_kind: uint256 = (word >> sessions.PERM_ARG_OUTFLOW) & 7
        if c.length < 36 + 32 * 2:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        token_word: uint256 = self._arg(base, c.start + 4)
        if outflow_kind == session_catalog.ARG_OUTFLOW_SWAP_V2:
            offset: uint256 = self._arg(base, c.start + 68)
            if offset > c.length or c.length < offset + 68:
                reasons._fail(reasons.CALLDATA_MALFORMED)
            if self._arg(base, c.start + 4 + offset) == 0:
                reasons._fail(reasons.CALLDATA_MALFORMED)
            token_word = self._arg(base, c.start + 36 + offset)
        elif outflow_kind == session_catalog.ARG_OUTFLOW_PERMIT2_PERMIT:
            counted = token_word == convert(account, uint256)
            token_word = self._arg(base, c.start + 36)
            amount_word = 2
        elif outflow_kind == session_catalog.ARG_OUTFLOW_SWAP_V3:
            amount_word = 5
        elif outflow_kind == session_catalog.ARG_OUTFLOW_SWAP_V3_02:
            amount_word = 4
        else:
            amount_word = 2
        if token_word >> 160 != 0:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        token = convert(token_word, address)
    elif (
        selector == session_catalog.SEL_TRANSFER
        or selector == session_catalog.SEL_APPROVE
        or selector == session_catalog.SEL_INCREASE_ALLOWANCE
    ):
        amount_word = 1
    elif selector == session_catalog.SEL_TRANSFER_FROM or selector == session_catalog.SEL_PERMIT:
        if c.length < 36:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        counted = self._arg(base, c.start + 4) == convert(account, uint256)
        amount_word = 2
    elif selector != session_catalog.SEL_WITHDRAW:
        counted = False
    if not counted:
        return outflows
    if c.length < 4 + 32 * (amount_word + 1):
        reasons._fail(reasons.CALLDATA_MALFORMED)
    amount: uint256 = self._arg(base, c.start + 4 + 32 * amount_word)
    for k: uint256 in range(erc7579.MAX_BATCH):
        if k == len(outflows):
            break
        if outflows[k].token == token:
            total: uint256 = unsafe_add(outflows[k].amount, amount)
            if total < amount:
                total = max_value(uint256)
            outflows[k].amount = total
            return outflows
    period: uint256 = (word >> sessions.PERM_TOKEN_PERIOD) & sessions.MASK48
    if word & sessions.ARG_OUTFLOW_BITS != 0:
        period = self._load(account, self._token_key(generation, token), TOKEN_PERIOD)
    outflows.append(Outflow(token=token, amount=amount, period=period))
    return outflows


@internal
@view
def _arg(base: uint256, position: uint256) -> uint256:
    """
    @dev The 32-byte word at `position` of the execution whose first byte is calldata byte
         `base` (the caller keeps `position + 32` within the decoded execution).
    """
    return convert(slice(msg.data, base + position, 32), uint256)


@internal
def _charge(
    account: address,
    session: bytes32,
    state: uint256,
    now: uint256,
    native_total: uint256,
    outflows: DynArray[Outflow, erc7579.MAX_BATCH],
) -> (uint256, uint256):
    """
    @dev Rules 6-8 of one execution at time `now`, as session_enforce.vy: native value per
         refill window (VALUE_LIMIT_EXCEEDED), each token's outflow per window
         (TOKEN_LIMIT_EXCEEDED; a token without a limit has nothing left), the use count
         under a maxUses (USAGE_LIMIT_REACHED); writes what it charged. Windows are
         session_enforce._window of `now`, anchored at the session's validAfter.
    @return `[from, until)`: the intersection of the refill windows charged (see `_enforce`).
    """
    valid_after: uint256 = (state >> ST_VALID_AFTER) & MASK48
    window_from: uint256 = 0
    window_until: uint256 = max_value(uint256)
    if native_total != 0:
        native: uint256 = self._load(account, session, SESSION_NATIVE)
        period: uint256 = self._load(account, session, SESSION_VALUE_PERIOD)
        window: uint256 = session_enforce._window(now, valid_after, period)
        remaining: uint256 = (native >> sessions.NATIVE_REMAINING) & sessions.MASK112
        if window != native & sessions.MASK48:
            remaining = native >> sessions.NATIVE_LIMIT
        if native_total > remaining:
            reasons._fail(reasons.VALUE_LIMIT_EXCEEDED)
        self._store(
            account, session, SESSION_NATIVE,
            window
            | ((remaining - native_total) << sessions.NATIVE_REMAINING)
            | ((native >> sessions.NATIVE_LIMIT) << sessions.NATIVE_LIMIT),
        )
        window_from, window_until = self._narrow(window_from, window_until, valid_after, period, window)

    generation: uint256 = (state >> ST_GENERATION) & MASK32
    for outflow: Outflow in outflows:
        token_key: bytes32 = self._token_key(generation, outflow.token)
        token_state: uint256 = self._load(account, token_key, 0)
        window: uint256 = session_enforce._window(now, valid_after, outflow.period)
        remaining: uint256 = token_state >> sessions.TOKEN_REMAINING
        if window != token_state & sessions.MASK48:
            remaining = min(self._load(account, token_key, TOKEN_LIMIT), sessions.MAX_TOKEN_REMAINING)
        if outflow.amount > remaining:
            reasons._fail(reasons.TOKEN_LIMIT_EXCEEDED)
        self._store(account, token_key, 0, window | ((remaining - outflow.amount) << sessions.TOKEN_REMAINING))
        window_from, window_until = self._narrow(window_from, window_until, valid_after, outflow.period, window)

    max_uses: uint256 = (state >> ST_MAX_USES) & MASK32
    if max_uses != 0:
        if (state >> ST_USES) & MASK32 >= max_uses:
            reasons._fail(reasons.USAGE_LIMIT_REACHED)
        self._store(account, session, 0, state + (1 << ST_USES))
    return window_from, window_until


@internal
@pure
def _narrow(
    window_from: uint256, window_until: uint256, anchor: uint256, period: uint256, window: uint256
) -> (uint256, uint256):
    """
    @dev `[window_from, window_until)` intersected with the times session_enforce._window maps
         to `window` (period > 0): `(-inf, anchor + period)` for window 0, else
         `[anchor + window * period, anchor + (window + 1) * period)`.
    """
    if period == 0:
        return window_from, window_until
    start: uint256 = 0
    if window != 0:
        start = anchor + window * period
    return max(window_from, start), min(window_until, anchor + (window + 1) * period)


@internal
@pure
def _live_session(state: uint256):
    """
    @dev SESSION_UNKNOWN for an empty session word, SESSION_REVOKED for a revoked one.
    """
    if state == 0:
        reasons._fail(reasons.SESSION_UNKNOWN)
    if state & 255 != STATUS_ACTIVE:
        reasons._fail(reasons.SESSION_REVOKED)


# =============================================================================================
# Validation.

@external
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32) -> uint256:
    """
    @notice ERC-7579 validator: validate a session user operation of the calling account
            (installed as a validator).
    @dev The signature is `sessionKey (20) ‖ r ‖ s ‖ v` over the EIP-191 hash of `userOpHash`,
         optionally followed by 6 bytes: the time the operation claims to run at (unsigned;
         0 when absent), whose refill windows rules 6 and 7 charge.
         Returns SIG_VALIDATION_FAILED (1) when the module is not installed for the caller,
         the operation is not the caller's or the signature has another length (before any
         check), or, after the charges, when the signature is malleable or not the key's, or
         no time is left in which every charged window holds.
         Reverts, so the EntryPoint refuses the operation (AA23), when:
         the key has no session in the account's epoch (SESSION_UNKNOWN: never enabled, or
         before an uninstall or revoke_all) or a revoked one (SESSION_REVOKED); the call data
         is not the account's `execute(mode, executionCalldata)` (SELF_CALL_FORBIDDEN); the
         execution is malformed (CALL_TYPE_FORBIDDEN, EMPTY_BATCH, CALLDATA_MALFORMED); any
         rule of `_enforce` (rules 1-8, SessionAccount's codes; rules 6-8 charged here); the
         operation's maximum cost to the account exceeds what is left of the fee budget
         (FEE_LIMIT_EXCEEDED; the cost is charged). On success returns the session's window
         narrowed to the charged refill windows as validationData (from - 1, until - 1: the
         EntryPoint accepts `validAfter' < now <= validUntil`; no TIMESTAMP in validation).
         Reads and writes only associated storage of the caller (ERC-7562).
    @param userOp The packed user operation (v0.7).
    @param userOpHash The EntryPoint's hash of it.
    @return validationData (0 window bounds never: expiresAt <= 1 fails).
    """
    account: address = msg.sender
    signature_length: uint256 = len(userOp.signature)
    if userOp.sender != account or (
        signature_length != SESSION_SIGNATURE_LENGTH and signature_length != SESSION_SIGNATURE_LENGTH + 6
    ):
        return SIG_VALIDATION_FAILED
    word: uint256 = self._load(account, ACCOUNT_KEY, 0)
    if word & ACC_INSTALLED == 0:
        return SIG_VALIDATION_FAILED
    session_key: address = convert(convert(slice(userOp.signature, 0, 20), bytes20), address)
    session: bytes32 = self._session_key((word >> ACC_EPOCH) & MASK32, session_key)
    state: uint256 = self._load(account, session, 0)
    self._live_session(state)
    # The time the operation claims to run at (unsigned: it only picks the refill windows,
    # and the operation is then valid only while they hold; 0 when absent).
    claimed: uint256 = 0
    if signature_length != SESSION_SIGNATURE_LENGTH:
        claimed = convert(slice(userOp.signature, SESSION_SIGNATURE_LENGTH, 6), uint256)

    # The call: the account's ERC-7579 execute, decoded as the account's ABI decoder reads it.
    call_data_length: uint256 = len(userOp.callData)
    if call_data_length < 4 or convert(slice(userOp.callData, 0, 4), bytes4) != EXECUTE_SELECTOR:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    mode: bytes32 = empty(bytes32)
    execution: Bytes[erc7579.MAX_EXECUTION_BYTES] = b""
    mode, execution = abi_decode(
        slice(userOp.callData, 4, call_data_length - 4), (bytes32, Bytes[erc7579.MAX_EXECUTION_BYTES])
    )
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(mode, execution, 4)
    valid_from: uint256 = 0
    valid_until: uint256 = 0
    # Byte 0 of the execution in this call's calldata, through the offsets the ABI decoder
    # followed: the userOp tuple, its callData, the execution inside `execute(mode, bytes)`
    # (so `_enforce` reads exactly the bytes `execution` holds; tests/erc7579 checks rules at
    # every position of single and batch executions on both paths).
    op_start: uint256 = 4 + convert(slice(msg.data, 4, 32), uint256)
    call_data_start: uint256 = op_start + convert(slice(msg.data, op_start + 96, 32), uint256) + 32
    base: uint256 = call_data_start + 36 + extract32(userOp.callData, 36, output_type=uint256)
    valid_from, valid_until = self._enforce(account, session, state, claimed, calls, base)

    # The session key's signature (a malleable or malformed one recovers no signer).
    r: uint256 = extract32(userOp.signature, 20, output_type=uint256)
    s: uint256 = extract32(userOp.signature, 52, output_type=uint256)
    v: uint256 = convert(slice(userOp.signature, 84, 1), uint256)
    signer: address = empty(address)
    if s <= SECP256K1_HALF_N and (v == 27 or v == 28):
        digest: bytes32 = keccak256(concat(b"\x19Ethereum Signed Message:\n32", userOpHash))
        signer = ecrecover(digest, v, r, s)

    # The fee budget: the most this operation can cost the account. Charged before the
    # signature's verdict, as ERC-4337 asks (a gas estimate simulates with a stub signature
    # and must see the real cost); a refused signature reverts the whole operation (AA24).
    gas_units: uint256 = 0
    max_fee_per_gas: uint256 = 0
    gas_units, max_fee_per_gas = self._account_paid_gas(userOp)
    if gas_units != 0 and max_fee_per_gas != 0:
        budget: uint256 = self._load(account, session, SESSION_FEE)
        if gas_units > budget // max_fee_per_gas:
            reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
        self._store(account, session, SESSION_FEE, budget - gas_units * max_fee_per_gas)

    # The session's window, narrowed to the refill windows charged above.
    valid_from = max(valid_from, (state >> ST_VALID_AFTER) & MASK48)
    valid_until = min(valid_until, (state >> ST_EXPIRES_AT) & MASK48)
    if signer != session_key or valid_until <= 1 or valid_from >= valid_until:
        return SIG_VALIDATION_FAILED
    if valid_from != 0:
        valid_from -= 1
    return ((valid_until - 1) << 160) | (valid_from << 208)


@internal
@pure
def _account_paid_gas(userOp: PackedUserOperation) -> (uint256, uint256):
    """
    @dev `(gas, maxFeePerGas)` the EntryPoint v0.7 may take from the account for `userOp`
         (all gas limits, the paymaster's included when the paymaster address is zero);
         `(0, 0)` when a paymaster pays. CALLDATA_MALFORMED for a paymasterAndData shorter
         than 52 bytes, FEE_LIMIT_EXCEEDED for a preVerificationGas above 2**128.
    """
    gas_units: uint256 = 0
    paymaster_length: uint256 = len(userOp.paymasterAndData)
    if paymaster_length != 0:
        if paymaster_length < PAYMASTER_DATA_OFFSET:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        if convert(slice(userOp.paymasterAndData, 0, 20), bytes20) != empty(bytes20):
            return 0, 0
        paymaster_gas: uint256 = extract32(userOp.paymasterAndData, 20, output_type=uint256)
        gas_units = (paymaster_gas >> 128) + (paymaster_gas & MASK128)
    if userOp.preVerificationGas > MASK128:
        reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
    limits: uint256 = convert(userOp.accountGasLimits, uint256)
    gas_units += (limits >> 128) + (limits & MASK128) + userOp.preVerificationGas
    return gas_units, convert(userOp.gasFees, uint256) & MASK128


# =============================================================================================
# Relayed session calls (executor).

@internal
@view
def _session_call_digest(
    account: address, session_key: address, execution_hash: bytes32, nonce: uint256, deadline: uint48
) -> bytes32:
    """
    @dev SessionAccount's `SessionCall` digest for `account` (session_grants.vy's type hash).
    """
    return self._typed_digest(
        account,
        keccak256(abi_encode(session_grants.SESSION_CALL_TYPEHASH, account, session_key, execution_hash, nonce, deadline)),
    )


@external
def execute_with_session(
    account: address,
    session_key: address,
    mode: bytes32,
    execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES],
    nonce: uint256,
    deadline: uint48,
    signature: Bytes[65],
):
    """
    @notice Run an ERC-7579 execution on `account` with a session's authority, signed by the
            session key as SessionAccount's `SessionCall`; anyone may relay it. The account
            runs it through `executeFromExecutor`.
    @dev Checks, in order: the module is installed on `account` as an executor
         (NOT_AUTHORIZED); the session (SESSION_UNKNOWN, SESSION_REVOKED); its window
         (SESSION_NOT_YET_VALID, SESSION_EXPIRED) and the call's deadline (`now < deadline`,
         SESSION_EXPIRED); the key's signature (SIGNATURE_INVALID, SIGNATURE_MALLEABLE,
         SIGNER_ZERO_ADDRESS); the nonce unused by this key on this account in any epoch
         (NONCE_REPLAYED); mode and encoding, then `_enforce` at `block.timestamp` (rules 1-8,
         as SessionAccount's `execute_with_session`). The nonce and the charges are written
         before the account runs anything.
    @param account The ERC-7579 account.
    @param session_key The session key.
    @param mode The ERC-7579 execution mode (single or batch, default exec type).
    @param execution_calldata The ERC-7579 execution calldata.
    @param nonce Any nonce this key has not used on this account.
    @param deadline The call is refused from this time on.
    @param signature The session key's 65-byte signature of the SessionCall digest.
    """
    word: uint256 = self._load(account, ACCOUNT_KEY, 0)
    if word & ACC_EXECUTOR == 0:
        reasons._fail(reasons.NOT_AUTHORIZED)
    session: bytes32 = self._session_key((word >> ACC_EPOCH) & MASK32, session_key)
    state: uint256 = self._load(account, session, 0)
    self._live_session(state)
    if block.timestamp < (state >> ST_VALID_AFTER) & MASK48:
        reasons._fail(reasons.SESSION_NOT_YET_VALID)
    if block.timestamp >= (state >> ST_EXPIRES_AT) & MASK48 or block.timestamp >= convert(deadline, uint256):
        reasons._fail(reasons.SESSION_EXPIRED)
    digest: bytes32 = self._session_call_digest(
        account, session_key, keccak256(concat(mode, execution_calldata)), nonce, deadline
    )
    if eip712._recover_strict(digest, signature) != session_key:
        reasons._fail(reasons.SIGNATURE_INVALID)
    nonce_key: bytes32 = keccak256(abi_encode(CALL_NONCE_TAG, session_key, nonce >> 8))
    bits: uint256 = self._load(account, nonce_key, 0)
    bit: uint256 = 1 << (nonce & 255)
    if bits & bit != 0:
        reasons._fail(reasons.NONCE_REPLAYED)
    self._store(account, nonce_key, 0, bits | bit)
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(mode, execution_calldata, 4)
    valid_from: uint256 = 0
    valid_until: uint256 = 0
    # Byte 0 of `execution_calldata` in the calldata (its offset is the fourth head word).
    base: uint256 = 36 + convert(slice(msg.data, 100, 32), uint256)
    valid_from, valid_until = self._enforce(account, session, state, block.timestamp, calls, base)
    log SessionExecuted(account=account, session_key=session_key, nonce=nonce)
    raw_call(account, abi_encode(mode, execution_calldata, method_id=EXECUTE_FROM_EXECUTOR), max_outsize=0)


@external
@view
def session_nonce_used(account: address, session_key: address, nonce: uint256) -> bool:
    """
    @notice Whether `nonce` was used by a relayed call of `session_key` on `account`.
    @dev Kept across epochs (see the module notice).
    @param account The account.
    @param session_key The session key.
    @param nonce The nonce.
    @return True once used.
    """
    bits: uint256 = self._read(account, keccak256(abi_encode(CALL_NONCE_TAG, session_key, nonce >> 8)), 0)
    return (bits >> (nonce & 255)) & 1 == 1


# =============================================================================================
# Views.

@external
@view
def epoch(account: address) -> uint256:
    """
    @notice The account's current epoch (grants must name it).
    @dev Bits 8..39 of the account word.
    @param account The account.
    @return The epoch: 0 at first install, +1 per uninstall or revoke_all.
    """
    return (self._read(account, ACCOUNT_KEY, 0) >> ACC_EPOCH) & MASK32


@external
@view
def grant_nonce_used(account: address, nonce: uint256) -> bool:
    """
    @notice Whether a grant with `nonce` was enabled on `account` in its current epoch.
    @dev Grant nonces are keyed by the epoch: after an uninstall or revoke_all every nonce
         reads unused, and a grant of an earlier epoch is refused SESSION_REVOKED anyway.
    @param account The account.
    @param nonce The grant's nonce.
    @return True once a grant with this nonce was enabled in the current epoch.
    """
    epoch: uint256 = (self._read(account, ACCOUNT_KEY, 0) >> ACC_EPOCH) & MASK32
    return self._read(account, keccak256(abi_encode(GRANT_NONCE_TAG, epoch, nonce)), 0) != 0


@external
@view
def session(account: address, session_key: address) -> (uint256, uint256, uint256):
    """
    @notice A session of the account in its current epoch.
    @dev Sessions of earlier epochs read as none.
    @param account The account.
    @param session_key The session key.
    @return (status: 1 live, 2 revoked, 0 none; validAfter; expiresAt).
    """
    state: uint256 = self._read(
        account, self._session_key((self._read(account, ACCOUNT_KEY, 0) >> ACC_EPOCH) & MASK32, session_key), 0
    )
    return state & 255, (state >> ST_VALID_AFTER) & MASK48, (state >> ST_EXPIRES_AT) & MASK48


@external
@view
def fee_budget(account: address, session_key: address) -> uint256:
    """
    @notice What is left of the session's fee budget in the account's current epoch, in wei.
    @dev Word 1 of the session; charged by every session operation the account pays for.
    @param account The account.
    @param session_key The session key.
    @return The remaining budget (0 for an unknown session).
    """
    return self._read(
        account, self._session_key((self._read(account, ACCOUNT_KEY, 0) >> ACC_EPOCH) & MASK32, session_key), 1
    )
