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

        Prototype scope (the full rule set of session_grants.vy comes when that module is split):
        a permission is a (target, selector) pair with no value; a grant that asks for anything
        this version cannot enforce (on-chain argument rules, value or token limits, uses,
        rate limits, destinations, approval-like selectors) is refused (ENVELOPE_MALFORMED),
        never silently widened. The fee budget (`maxFeeWei`) is enforced as in SessionAccount.
"""

from .. import reasons
from .. import eip712
from .. import erc7579
from .. import session_grants
from .. import session_catalog


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
# Permission, x = keccak256(abi_encode(PERMISSION_TAG, generation, target, selector)), n = 0.
PERMISSION_TAG: constant(bytes32) = keccak256("sessionward.erc7579.permission")
# Target of some permission, x = keccak256(abi_encode(TARGET_TAG, generation, target)), n = 0.
TARGET_TAG: constant(bytes32) = keccak256("sessionward.erc7579.target")
# Grant nonce spent, x = keccak256(abi_encode(GRANT_NONCE_TAG, epoch, nonce)), n = 0.
GRANT_NONCE_TAG: constant(bytes32) = keccak256("sessionward.erc7579.grant-nonce")
# Relayed call nonces of a key (all epochs), x = keccak256(abi_encode(CALL_NONCE_TAG, key,
# nonce >> 8)), n = 0: bit `nonce & 255` set when used.
CALL_NONCE_TAG: constant(bytes32) = keccak256("sessionward.erc7579.call-nonce")


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


@external
@view
def grant_digest(grant: session_grants.SessionGrant) -> bytes32:
    """
    @notice The EIP-712 digest the owner signs for `grant` (domain: the grant's account).
    @dev `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(grant))` with the SessionWard domain
         of `grant.account` on this chain; session_grants.vy computes `hashStruct`.
    @param grant The grant.
    @return The digest, equal to SessionAccount's for the same account and grant.
    """
    return self._typed_digest(grant.account, session_grants._grant_struct_hash(grant))


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


@internal
@pure
def _check_enforceable(envelope: session_grants.Envelope):
    """
    @dev Refuse (ENVELOPE_MALFORMED) every grant field this prototype cannot enforce, so a
         grant is never widened by being installed here.
    """
    if (
        len(envelope.allowedDestinations) != 0
        or envelope.valueLimit != 0
        or len(envelope.tokenLimits) != 0
        or envelope.maxUses != 0
        or envelope.rateCount != 0
    ):
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    for permission: session_grants.Permission in envelope.permissions:
        if permission.maxValuePerCall != 0 or session_catalog._approval_kind(permission.selector) != 0:
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        if permission.selector != convert(slice(keccak256(permission.function), 0, 4), bytes4):
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        for rule: session_grants.Rule in permission.rules:
            if rule.offset != session_catalog.OFFCHAIN_ONLY:
                reasons._fail(reasons.ENVELOPE_MALFORMED)


@external
def enable_session(grant: session_grants.SessionGrant, owner_signature: Bytes[MAX_SIGNATURE]):
    """
    @notice Enable a session key on `grant.account` with the owner's grant. Anyone may submit
            it with the owner's signature (checked by the account's ERC-1271); the account
            itself may submit it unsigned.
    @dev Checks, in order: the account has the module installed as either type
         (NOT_AUTHORIZED), chain
         (CHAIN_MISMATCH), epoch (SESSION_REVOKED), grant nonce unused in this epoch
         (NONCE_REPLAYED), session key and window (ENVELOPE_MALFORMED, WINDOW_INVALID),
         what this version can enforce (ENVELOPE_MALFORMED), permission targets (the account
         or this module: SELF_CALL_FORBIDDEN; a pair twice: ENVELOPE_MALFORMED), then the
         owner's authority (SIGNATURE_INVALID). Re-enabling a key replaces its grant: new
         window, new permissions (a new generation), new fee budget.
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
    self._check_enforceable(grant.envelope)
    self._check_owner_approval(
        account, self._typed_digest(account, session_grants._grant_struct_hash(grant)), owner_signature
    )

    self._store(account, nonce_key, 0, 1)
    generation: uint256 = ((word >> ACC_GENERATION) & MASK32) + 1
    if generation > MASK32:
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    self._store(account, ACCOUNT_KEY, 0, (word & ~(MASK32 << ACC_GENERATION)) | (generation << ACC_GENERATION))
    for permission: session_grants.Permission in grant.envelope.permissions:
        if permission.target == account or permission.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
        permission_key: bytes32 = self._permission_key(generation, permission.target, permission.selector)
        if self._load(account, permission_key, 0) != 0:
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        self._store(account, permission_key, 0, 1)
        self._store(account, self._target_key(generation, permission.target), 0, 1)

    session: bytes32 = self._session_key(epoch, grant.sessionKey)
    self._store(
        account, session, 0,
        STATUS_ACTIVE
        | (convert(grant.envelope.validAfter, uint256) << ST_VALID_AFTER)
        | (convert(grant.envelope.expiresAt, uint256) << ST_EXPIRES_AT)
        | (generation << ST_GENERATION),
    )
    self._store(account, session, 1, grant.envelope.maxFeeWei)
    self._store(account, session, 2, convert(grant.revoker, uint256))
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
        revoker: uint256 = self._load(account, session, 2)
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
def _check_calls(account: address, state: uint256, calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH], selectors: DynArray[bytes4, erc7579.MAX_BATCH]):
    """
    @dev Every call (`calls[i]` with selector `selectors[i]`, decoded by erc7579._decode:
         mode and encoding already checked) is within the session's grant: not the account
         nor this module (SELF_CALL_FORBIDDEN), no value (VALUE_CAP_EXCEEDED), a granted
         target and selector (TARGET_NOT_ALLOWED, SELECTOR_NOT_ALLOWED). Reads associated
         storage only. Takes the decoded calls, not the execution bytes, so the execution is
         not copied into another memory frame.
    """
    generation: uint256 = (state >> ST_GENERATION) & MASK32
    for i: uint256 in range(erc7579.MAX_BATCH):
        if i == len(calls):
            break
        c: erc7579.CallRef = calls[i]
        if c.target == account or c.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
        if c.value != 0:
            reasons._fail(reasons.VALUE_CAP_EXCEEDED)
        selector: bytes4 = selectors[i]
        if self._load(account, self._permission_key(generation, c.target, selector), 0) == 0:
            if self._load(account, self._target_key(generation, c.target), 0) == 0:
                reasons._fail(reasons.TARGET_NOT_ALLOWED)
            reasons._fail(reasons.SELECTOR_NOT_ALLOWED)


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
    @dev The signature is `sessionKey (20) ‖ r ‖ s ‖ v` over the EIP-191 hash of `userOpHash`.
         Returns SIG_VALIDATION_FAILED (1) when the module is not installed for the caller,
         the operation is not the caller's or the signature has another length (before any
         check), or, after the fee charge, when the signature is malleable or not the key's.
         Reverts, so the EntryPoint refuses the operation (AA23), when:
         the key has no session in the account's epoch (SESSION_UNKNOWN: never enabled, or
         before an uninstall or revoke_all) or a revoked one (SESSION_REVOKED); the call data
         is not the account's `execute(mode, executionCalldata)` (SELF_CALL_FORBIDDEN); the
         execution is malformed (CALL_TYPE_FORBIDDEN, EMPTY_BATCH, CALLDATA_MALFORMED); an
         inner call targets the account or this module (SELF_CALL_FORBIDDEN), sends value
         (VALUE_CAP_EXCEEDED), or is outside the grant (TARGET_NOT_ALLOWED,
         SELECTOR_NOT_ALLOWED); the operation's maximum cost to the account exceeds what is
         left of the fee budget (FEE_LIMIT_EXCEEDED; the cost is charged). On success returns
         the window as validationData (validAfter - 1, expiresAt - 1: the EntryPoint accepts
         `validAfter' < now <= validUntil`; no TIMESTAMP in validation). Reads and writes only
         associated storage of the caller (ERC-7562).
    @param userOp The packed user operation (v0.7).
    @param userOpHash The EntryPoint's hash of it.
    @return validationData (0 window bounds never: expiresAt <= 1 fails).
    """
    account: address = msg.sender
    if userOp.sender != account or len(userOp.signature) != SESSION_SIGNATURE_LENGTH:
        return SIG_VALIDATION_FAILED
    word: uint256 = self._load(account, ACCOUNT_KEY, 0)
    if word & ACC_INSTALLED == 0:
        return SIG_VALIDATION_FAILED
    session_key: address = convert(convert(slice(userOp.signature, 0, 20), bytes20), address)
    session: bytes32 = self._session_key((word >> ACC_EPOCH) & MASK32, session_key)
    state: uint256 = self._load(account, session, 0)
    self._live_session(state)

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
    selectors: DynArray[bytes4, erc7579.MAX_BATCH] = []
    for c: erc7579.CallRef in calls:
        selectors.append(convert(slice(execution, c.start, 4), bytes4))
    self._check_calls(account, state, calls, selectors)

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
        budget: uint256 = self._load(account, session, 1)
        if gas_units > budget // max_fee_per_gas:
            reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
        self._store(account, session, 1, budget - gas_units * max_fee_per_gas)

    expires_at: uint256 = (state >> ST_EXPIRES_AT) & MASK48
    if signer != session_key or expires_at <= 1:
        return SIG_VALIDATION_FAILED
    valid_after: uint256 = (state >> ST_VALID_AFTER) & MASK48
    if valid_after != 0:
        valid_after -= 1
    return ((expires_at - 1) << 160) | (valid_after << 208)


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
         (NONCE_REPLAYED); the scope (as for user operations: mode and encoding, then `_check_calls`). The nonce is spent before
         the account runs anything.
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
    state: uint256 = self._load(account, self._session_key((word >> ACC_EPOCH) & MASK32, session_key), 0)
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
    selectors: DynArray[bytes4, erc7579.MAX_BATCH] = []
    for c: erc7579.CallRef in calls:
        selectors.append(convert(slice(execution_calldata, c.start, 4), bytes4))
    self._check_calls(account, state, calls, selectors)
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
