# pragma version ~=0.4.3
"""
@title SessionWard sessions module
@notice Initialised by SessionAccount: its state lives in the account's storage and "calling
        the module" is calling the account, so an inner call to the module is a self-call
        (SELF_CALL_FORBIDDEN for sessions).

        - `enable_session` installs an owner-signed EIP-712 `SessionGrant` (docs/protocol.md
          section 2, hashed here in full, nested arrays included);
        - `execute_with_session` runs an ERC-7579 execution signed by the session key
          (EIP-712 `SessionCall` with any nonce the key has not used yet), relayed by anyone;
        - `execute_session_op` is the same execution for an ERC-4337 user operation signed by
          the session key (the EntryPoint's nonce and `validateUserOp` replace the call
          signature);
        - `revoke_session`, `revoke_session_signed`, `revoke_all` revoke.

        Enforcement follows docs/protocol.md section 4 and reverts with the reason code as the
        revert string, first violation first. See docs/contracts.md for the storage layout and
        the rule-to-code map.

        Storage: every value lives at a keccak-derived slot (HashMap entries) and the one
        account-wide word sits under a namespaced key with a layout tag, so code the EOA
        delegated to before (EIP-7702) cannot alias it with its sequential slots, and a future
        layout can refuse to run on this one.
"""

from . import eip712
from . import reasons
from . import erc7579
from . import account_auth

uses: account_auth

# ---------------------------------------------------------------------------------------------
# Size bounds (enforced by ABI decoding: a larger grant or execution does not decode).

MAX_PERMISSIONS: constant(uint256) = 16
MAX_RULES: constant(uint256) = 4
MAX_RULE_VALUES: constant(uint256) = 16
MAX_CAPABILITIES: constant(uint256) = 16
MAX_DESTINATIONS: constant(uint256) = 15
MAX_TOKEN_LIMITS: constant(uint256) = 8
MAX_BATCH: constant(uint256) = erc7579.MAX_BATCH
MAX_EXECUTION_BYTES: constant(uint256) = erc7579.MAX_EXECUTION_BYTES
MAX_OWNER_SIGNATURE: constant(uint256) = account_auth.MAX_OWNER_SIGNATURE

# ---------------------------------------------------------------------------------------------
# The typed grant, field for field the EIP-712 types of docs/protocol.md section 2.

struct Rule:
    arg: String[64]
    op: uint8
    offset: uint16
    values: DynArray[bytes32, MAX_RULE_VALUES]

struct Permission:
    target: address
    selector: bytes4
    function: String[128]
    actionClass: String[64]
    maxValuePerCall: uint256
    rules: DynArray[Rule, MAX_RULES]

struct TokenLimit:
    token: address
    limit: uint256
    period: uint48

struct Envelope:
    chainId: uint256
    validAfter: uint48
    expiresAt: uint48
    capabilities: DynArray[String[64], MAX_CAPABILITIES]
    permissions: DynArray[Permission, MAX_PERMISSIONS]
    allowedDestinations: DynArray[address, MAX_DESTINATIONS]
    valueLimit: uint256
    valuePeriod: uint48
    tokenLimits: DynArray[TokenLimit, MAX_TOKEN_LIMITS]
    maxValueUsd: String[32]
    maxUses: uint32
    rateCount: uint32
    rateInterval: uint32
    maxFeeWei: uint256

struct SessionGrant:
    account: address
    sessionKey: address
    credential: bytes32
    nonce: uint256
    epoch: uint256
    revoker: address
    envelope: Envelope

# A decoded view of a session, for relayers and reconciliation.
struct SessionView:
    status: uint8
    validAfter: uint48
    expiresAt: uint48
    valuePeriod: uint48
    maxUses: uint32
    epoch: uint32
    generation: uint32
    uses: uint32
    nativeWindow: uint48
    nativeRemaining: uint256
    valueLimit: uint256
    revoker: address

struct TokenOutflow:
    token: address
    amount: uint256
    period: uint48

# ---------------------------------------------------------------------------------------------
# EIP-712 type hashes (encodeType: referenced structs appended in alphabetical order).

RULE_TYPEHASH: constant(bytes32) = keccak256("Rule(string arg,uint8 op,uint16 offset,bytes32[] values)")
TOKEN_LIMIT_TYPEHASH: constant(bytes32) = keccak256("TokenLimit(address token,uint256 limit,uint48 period)")
PERMISSION_TYPEHASH: constant(bytes32) = keccak256(
    "Permission(address target,bytes4 selector,string function,string actionClass,uint256 maxValuePerCall,Rule[] rules)Rule(string arg,uint8 op,uint16 offset,bytes32[] values)"
)
ENVELOPE_TYPEHASH: constant(bytes32) = keccak256(
    "Envelope(uint256 chainId,uint48 validAfter,uint48 expiresAt,string[] capabilities,Permission[] permissions,address[] allowedDestinations,uint256 valueLimit,uint48 valuePeriod,TokenLimit[] tokenLimits,string maxValueUsd,uint32 maxUses,uint32 rateCount,uint32 rateInterval,uint256 maxFeeWei)Permission(address target,bytes4 selector,string function,string actionClass,uint256 maxValuePerCall,Rule[] rules)Rule(string arg,uint8 op,uint16 offset,bytes32[] values)TokenLimit(address token,uint256 limit,uint48 period)"
)
SESSION_GRANT_TYPEHASH: constant(bytes32) = keccak256(
    "SessionGrant(address account,address sessionKey,bytes32 credential,uint256 nonce,uint256 epoch,address revoker,Envelope envelope)Envelope(uint256 chainId,uint48 validAfter,uint48 expiresAt,string[] capabilities,Permission[] permissions,address[] allowedDestinations,uint256 valueLimit,uint48 valuePeriod,TokenLimit[] tokenLimits,string maxValueUsd,uint32 maxUses,uint32 rateCount,uint32 rateInterval,uint256 maxFeeWei)Permission(address target,bytes4 selector,string function,string actionClass,uint256 maxValuePerCall,Rule[] rules)Rule(string arg,uint8 op,uint16 offset,bytes32[] values)TokenLimit(address token,uint256 limit,uint48 period)"
)
SESSION_CALL_TYPEHASH: constant(bytes32) = keccak256(
    "SessionCall(address account,address sessionKey,bytes32 executionHash,uint256 nonce,uint48 deadline)"
)
REVOCATION_TYPEHASH: constant(bytes32) = keccak256(
    "Revocation(address account,address sessionKey,uint256 epoch,uint256 nonce)"
)

# ---------------------------------------------------------------------------------------------
# Rule operators (docs/protocol.md: 0 eq, 1 ne, 2 lte, 3 gte, 4 in, 5 not_in).

OP_EQ: constant(uint256) = 0
OP_NE: constant(uint256) = 1
OP_LTE: constant(uint256) = 2
OP_GTE: constant(uint256) = 3
OP_IN: constant(uint256) = 4
OP_NOT_IN: constant(uint256) = 5
OFFCHAIN_ONLY: constant(uint16) = 65535
SELECTOR_SIZE: constant(uint256) = 4

# Selectors whose amount is a token outflow (rule 7) or whose maximum amount is non-delegable.
SEL_TRANSFER: constant(bytes4) = 0xA9059CBB       # transfer(address,uint256)
SEL_APPROVE: constant(bytes4) = 0x095EA7B3        # approve(address,uint256)
SEL_INCREASE_ALLOWANCE: constant(bytes4) = 0x39509351  # increaseAllowance(address,uint256)
SEL_TRANSFER_FROM: constant(bytes4) = 0x23B872DD  # transferFrom(address,address,uint256)
SEL_PERMIT: constant(bytes4) = 0xD505ACCF         # permit(address,address,uint256,uint256,uint8,bytes32,bytes32)
SEL_PERMIT2_APPROVE: constant(bytes4) = 0x87517C45  # Permit2 approve(address,address,uint160,uint48)
SEL_WITHDRAW: constant(bytes4) = 0x2E1A7D4D       # WETH withdraw(uint256)
SEL_DEPOSIT: constant(bytes4) = 0xD0E30DB0        # WETH deposit(): no token leaves
# Functions whose outflow is a token named by an argument (docs/protocol.md rule 7, catalog).
SEL_SWAP_V2: constant(bytes4) = 0x38ED1739        # swapExactTokensForTokens(uint256,uint256,address[],address,uint256)
SEL_SWAP_V3: constant(bytes4) = 0x414BF389        # exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))
SEL_SWAP_V3_02: constant(bytes4) = 0x04E45AAF     # exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))
SEL_PERMIT2_PERMIT: constant(bytes4) = 0x2B67B570  # Permit2 permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)

# ---------------------------------------------------------------------------------------------
# Packed words (bit offsets). Vyper does not pack storage, so the hot fields are packed by hand:
# an execution reads one word for the account, one for the session, one of its nonce bitmap.

MASK8: constant(uint256) = 2**8 - 1
MASK24: constant(uint256) = 2**24 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK48: constant(uint256) = 2**48 - 1
MASK160: constant(uint256) = 2**160 - 1

# Account word, stored at `_account[ACCOUNT_NAMESPACE]`.
ACCOUNT_NAMESPACE: constant(bytes32) = keccak256("sessionward.account.v1")
# 2: unordered call nonces (`_session_state`, `_session_extra`, `_nonce_bits`); 1 was the layout
# with sequential nonces, whose words at the same slots mean something else.
LAYOUT_TAG: constant(uint256) = 2
ACC_EPOCH: constant(uint256) = 0           # uint32: current session epoch
ACC_OWNER_NONCE: constant(uint256) = 32    # uint32: next owner-operation (revocation) nonce
ACC_GENERATION: constant(uint256) = 64     # uint32: enables so far (keys a grant's records)
ACC_LAYOUT: constant(uint256) = 248        # uint8: layout tag (0 = fresh, LAYOUT_TAG = this layout)

# Session state word: everything an execution reads in one slot. Written at enable, by
# executions of a grant with a maxUses (the use count), and deleted by a revocation (the gas
# refund of clearing a slot is what keeps a revocation under 30,000 gas).
STATUS_NONE: constant(uint256) = 0          # views only: never enabled
STATUS_ACTIVE: constant(uint256) = 1        # bits 0..7 of a live state word
STATUS_REVOKED: constant(uint256) = 2       # views only: state word deleted, extra word kept
ST_VALID_AFTER: constant(uint256) = 8       # uint48
ST_EXPIRES_AT: constant(uint256) = 56       # uint48
ST_MAX_USES: constant(uint256) = 104        # uint32
ST_USES: constant(uint256) = 136            # uint32: executions under this grant (maxUses > 0)
ST_EPOCH: constant(uint256) = 168           # uint32
ST_GENERATION: constant(uint256) = 200      # uint32

# Session extra word (written at enable only; read by revocations by the revoker, by
# executions that send native value, and by views). Non-zero for every key ever enabled, so
# a deleted state word reads as revoked, not unknown.
EX_VALUE_PERIOD: constant(uint256) = 160    # bits 0..159: revoker; uint48: valuePeriod
EX_GENERATION: constant(uint256) = 208      # uint32: the grant's generation (for views)
EX_ENABLED: constant(uint256) = 2**255

# Session call nonces: a bitmap per key, word `nonce >> 8`, bit `nonce & 255` (1 = used).
NONCE_WORD_SHIFT: constant(uint256) = 8
NONCE_BIT_MASK: constant(uint256) = 255
# `session_nonce` scans at most this many bitmap words (256 nonces each).
MAX_NONCE_SCAN_WORDS: constant(uint256) = 1024

# Session native-value word (read and written only by executions that send value).
NATIVE_REMAINING: constant(uint256) = 48    # bits 0..47: window; uint112: left in the window
NATIVE_LIMIT: constant(uint256) = 160       # uint96: valueLimit clamped (> total ether supply)
MAX_NATIVE_LIMIT: constant(uint256) = 2**96 - 1
MASK112: constant(uint256) = 2**112 - 1

# Permission word, at `_perm[base]`; rule operands at the next four keys.
PERM_PRESENT: constant(uint256) = 1
PERM_TOKEN: constant(uint256) = 2           # target has a TokenLimit in this grant
PERM_APPROVAL: constant(uint256) = 2        # 2 bits: the selector's approval kind (below)
PERM_ARG_OUTFLOW: constant(uint256) = 4     # 3 bits: argument-token outflow kind (below)
ARG_OUTFLOW_BITS: constant(uint256) = 7 << 4
PERM_RULE_COUNT: constant(uint256) = 16     # uint8: on-chain rules stored
PERM_TOKEN_PERIOD: constant(uint256) = 24   # uint48
PERM_RULES: constant(uint256) = 72          # 4 x 24 bits: op (8) | offset (16)
PERM_VALUE_CAP: constant(uint256) = 168     # uint88: maxValuePerCall clamped (> total ether supply)
MAX_VALUE_CAP: constant(uint256) = 2**88 - 1

# Approval kinds (rule 2: a maximum amount is never delegable), stored in the permission word
# so that a permitted call tests one field instead of comparing its selector four times.
APPROVAL_NONE: constant(uint256) = 0
APPROVAL_WORD1: constant(uint256) = 1       # approve / increaseAllowance: amount is word 1
APPROVAL_PERMIT: constant(uint256) = 2      # EIP-2612 permit: value is word 2
APPROVAL_PERMIT2: constant(uint256) = 3     # Permit2 approve: amount (uint160) is word 2

# Argument-token outflow kinds (rule 7), stored only when the grant has token limits: the token
# and amount of the outflow are arguments of the call, not the call's target.
ARG_OUTFLOW_NONE: constant(uint256) = 0
ARG_OUTFLOW_SWAP_V2: constant(uint256) = 1        # path[0], amountIn (word 0)
ARG_OUTFLOW_SWAP_V3: constant(uint256) = 2        # params.tokenIn (word 0), params.amountIn (word 5)
ARG_OUTFLOW_SWAP_V3_02: constant(uint256) = 3     # params.tokenIn (word 0), params.amountIn (word 4)
ARG_OUTFLOW_PERMIT2_APPROVE: constant(uint256) = 4  # token (word 0), amount (word 2)
ARG_OUTFLOW_PERMIT2_PERMIT: constant(uint256) = 5   # owner (word 0) = account: token (word 1), amount (word 2)

# Token state word: window (48) | remaining (208).
TOKEN_REMAINING: constant(uint256) = 48
MAX_TOKEN_REMAINING: constant(uint256) = 2**208 - 1

# Event nonce of executions that came through the EntryPoint (they use its nonce, not ours).
ENTRY_POINT_NONCE: constant(uint256) = max_value(uint256)


# ---------------------------------------------------------------------------------------------
# Storage (all HashMaps: data only at keccak-derived slots).

_account: HashMap[bytes32, uint256]
_session_state: HashMap[address, uint256]
_session_extra: HashMap[address, uint256]
_session_native: HashMap[address, uint256]
_grant_nonce_used: HashMap[uint256, bool]
_perm: HashMap[uint256, uint256]
_rule_word: HashMap[uint256, bytes32]
_rule_member: HashMap[uint256, HashMap[bytes32, bool]]
_target_known: HashMap[bytes32, bool]
_token_limit: HashMap[bytes32, uint256]
_token_state: HashMap[bytes32, uint256]
_nonce_bits: HashMap[address, HashMap[uint256, uint256]]
# What is left of the session's fee budget (`maxFeeWei`), in wei: written at enable, charged by
# the validation of every session user operation the account pays for (see `_charge_fee`).
_fee_budget: HashMap[address, uint256]
# The refill period of a token limit, keyed like `_token_limit` (only when `period > 0`): read
# when the outflow's token comes from an argument (a swap's input), not from the permission.
_token_period: HashMap[bytes32, uint256]

# ---------------------------------------------------------------------------------------------
# Events.

event SessionEnabled:
    session_key: indexed(address)
    grant_nonce: indexed(uint256)
    credential: bytes32
    valid_after: uint48
    expires_at: uint48
    epoch: uint256

event SessionExecuted:
    session_key: indexed(address)
    nonce: uint256

event SessionRevoked:
    session_key: indexed(address)
    revoked_by: indexed(address)

event SessionsRevokedAll:
    epoch: uint256


# =============================================================================================
# Account word.

@internal
@view
def _account_word() -> uint256:
    """
    @dev The account-wide word; refuses to run on a storage layout it does not know.
    """
    word: uint256 = self._account[ACCOUNT_NAMESPACE]
    layout: uint256 = word >> ACC_LAYOUT
    if layout != 0 and layout != LAYOUT_TAG:
        reasons._fail(reasons.STORAGE_LAYOUT_MISMATCH)
    return word


@internal
def _store_account_word(word: uint256):
    self._account[ACCOUNT_NAMESPACE] = (word & MASK160) | (LAYOUT_TAG << ACC_LAYOUT)


# =============================================================================================
# EIP-712 hashing of the grant.

@internal
@pure
def _hash_words(words: DynArray[bytes32, MAX_PERMISSIONS]) -> bytes32:
    """
    @dev EIP-712 `encodeData` of an array: keccak256 of the concatenated 32-byte encodings.
         `abi_encode` of a dynamic array is `0x20 ‖ length ‖ words`; the words start at 64.
    """
    return keccak256(slice(abi_encode(words), 64, 32 * len(words)))


@internal
@pure
def _hash_rule(rule: Rule) -> bytes32:
    return keccak256(
        abi_encode(
            RULE_TYPEHASH,
            keccak256(rule.arg),
            rule.op,
            rule.offset,
            keccak256(slice(abi_encode(rule.values), 64, 32 * len(rule.values))),
        )
    )


@internal
@pure
def _hash_permission(permission: Permission) -> bytes32:
    rule_hashes: DynArray[bytes32, MAX_PERMISSIONS] = []
    for rule: Rule in permission.rules:
        rule_hashes.append(self._hash_rule(rule))
    return keccak256(
        abi_encode(
            PERMISSION_TYPEHASH,
            permission.target,
            permission.selector,
            keccak256(permission.function),
            keccak256(permission.actionClass),
            permission.maxValuePerCall,
            self._hash_words(rule_hashes),
        )
    )


@internal
@pure
def _grant_struct_hash(grant: SessionGrant) -> bytes32:
    """
    @dev `hashStruct(SessionGrant)` exactly as docs/protocol.md section 2 defines it.
    """
    words: DynArray[bytes32, MAX_PERMISSIONS] = []
    for capability: String[64] in grant.envelope.capabilities:
        words.append(keccak256(capability))
    capabilities_hash: bytes32 = self._hash_words(words)

    words = []
    for permission: Permission in grant.envelope.permissions:
        words.append(self._hash_permission(permission))
    permissions_hash: bytes32 = self._hash_words(words)

    words = []
    for limit: TokenLimit in grant.envelope.tokenLimits:
        words.append(keccak256(abi_encode(TOKEN_LIMIT_TYPEHASH, limit.token, limit.limit, limit.period)))
    token_limits_hash: bytes32 = self._hash_words(words)

    destinations: DynArray[address, MAX_DESTINATIONS] = grant.envelope.allowedDestinations
    destinations_hash: bytes32 = keccak256(slice(abi_encode(destinations), 64, 32 * len(destinations)))

    envelope_hash: bytes32 = keccak256(
        concat(
            abi_encode(
                ENVELOPE_TYPEHASH,
                grant.envelope.chainId,
                grant.envelope.validAfter,
                grant.envelope.expiresAt,
                capabilities_hash,
                permissions_hash,
                destinations_hash,
                grant.envelope.valueLimit,
            ),
            abi_encode(
                grant.envelope.valuePeriod,
                token_limits_hash,
                keccak256(grant.envelope.maxValueUsd),
                grant.envelope.maxUses,
                grant.envelope.rateCount,
                grant.envelope.rateInterval,
                grant.envelope.maxFeeWei,
            ),
        )
    )
    return keccak256(
        abi_encode(
            SESSION_GRANT_TYPEHASH,
            grant.account,
            grant.sessionKey,
            grant.credential,
            grant.nonce,
            grant.epoch,
            grant.revoker,
            envelope_hash,
        )
    )


@internal
@view
def _session_call_digest(
    session_key: address, execution_hash: bytes32, nonce: uint256, deadline: uint48
) -> bytes32:
    return eip712._typed_digest(
        keccak256(abi_encode(SESSION_CALL_TYPEHASH, self, session_key, execution_hash, nonce, deadline))
    )


@internal
@view
def _revocation_digest(session_key: address, epoch: uint256, nonce: uint256) -> bytes32:
    return eip712._typed_digest(
        keccak256(abi_encode(REVOCATION_TYPEHASH, self, session_key, epoch, nonce))
    )


# =============================================================================================
# Enabling.

@external
def enable_session(grant: SessionGrant, owner_signature: Bytes[MAX_OWNER_SIGNATURE]):
    """
    @notice Install an owner-signed grant. Anyone may submit it (the relayer does).
    @dev Checks, in order: account (ACCOUNT_MISMATCH), chain (CHAIN_MISMATCH), epoch
         (SESSION_REVOKED), grant nonce never used (NONCE_REPLAYED), session key and window
         (ENVELOPE_MALFORMED, WINDOW_INVALID), the owner's signature over the full EIP-712
         digest (SIGNATURE_*), then each token limit and permission while storing it
         (ENVELOPE_MALFORMED, SELF_CALL_FORBIDDEN). The grant nonce is then spent forever.
         Re-enabling a key (after a revocation, or to replace its grant) starts clean counters
         and drops the old permissions; only the key's used call nonces carry over, so no
         SessionCall executed under an earlier grant can be replayed.
    """
    if grant.account != self:
        reasons._fail(reasons.ACCOUNT_MISMATCH)
    if grant.envelope.chainId != chain.id:
        reasons._fail(reasons.CHAIN_MISMATCH)
    account_word: uint256 = self._account_word()
    epoch: uint256 = account_word & MASK32
    if grant.epoch != epoch:
        reasons._fail(reasons.SESSION_REVOKED)
    if self._grant_nonce_used[grant.nonce]:
        reasons._fail(reasons.NONCE_REPLAYED)
    if grant.sessionKey == empty(address):
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    if grant.envelope.validAfter >= grant.envelope.expiresAt:
        reasons._fail(reasons.WINDOW_INVALID)

    account_auth._check_owner_signature(
        eip712._typed_digest(self._grant_struct_hash(grant)), owner_signature
    )

    self._grant_nonce_used[grant.nonce] = True
    generation: uint256 = ((account_word >> ACC_GENERATION) & MASK32) + 1
    if generation > MASK32:
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    self._store_account_word(
        (account_word & ~(MASK32 << ACC_GENERATION)) | (generation << ACC_GENERATION)
    )

    # Token limits of this grant, keyed by (generation, token): a new grant starts clean.
    for i: uint256 in range(MAX_TOKEN_LIMITS):
        if i == len(grant.envelope.tokenLimits):
            break
        limit: TokenLimit = grant.envelope.tokenLimits[i]
        for j: uint256 in range(MAX_TOKEN_LIMITS):
            if j == i:
                break
            if grant.envelope.tokenLimits[j].token == limit.token:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
        token_key: bytes32 = keccak256(abi_encode(generation, limit.token))
        if limit.period != 0:
            self._token_limit[token_key] = limit.limit
            self._token_period[token_key] = convert(limit.period, uint256)
        self._token_state[token_key] = min(limit.limit, MAX_TOKEN_REMAINING) << TOKEN_REMAINING

    for permission: Permission in grant.envelope.permissions:
        self._store_permission(generation, permission, grant.envelope.tokenLimits)

    value_limit: uint256 = min(grant.envelope.valueLimit, MAX_NATIVE_LIMIT)
    key: address = grant.sessionKey
    # Uses start from zero, the native window full; the key's used call nonces are kept in
    # `_nonce_bits`, which no grant resets.
    self._session_state[key] = (
        STATUS_ACTIVE
        | (convert(grant.envelope.validAfter, uint256) << ST_VALID_AFTER)
        | (convert(grant.envelope.expiresAt, uint256) << ST_EXPIRES_AT)
        | (convert(grant.envelope.maxUses, uint256) << ST_MAX_USES)
        | (epoch << ST_EPOCH)
        | (generation << ST_GENERATION)
    )
    self._session_extra[key] = (
        convert(grant.revoker, uint256)
        | (convert(grant.envelope.valuePeriod, uint256) << EX_VALUE_PERIOD)
        | (generation << EX_GENERATION)
        | EX_ENABLED
    )
    self._session_native[key] = (value_limit << NATIVE_REMAINING) | (value_limit << NATIVE_LIMIT)
    # Always written: a re-enabled key must not inherit its previous grant's budget.
    self._fee_budget[key] = grant.envelope.maxFeeWei

    log SessionEnabled(
        session_key=key,
        grant_nonce=grant.nonce,
        credential=grant.credential,
        valid_after=grant.envelope.validAfter,
        expires_at=grant.envelope.expiresAt,
        epoch=epoch,
    )


@internal
def _store_permission(
    generation: uint256, permission: Permission, token_limits: DynArray[TokenLimit, MAX_TOKEN_LIMITS]
):
    """
    @dev Store one permission: a packed word at `base = keccak(generation, target, selector)`
         and its rule operands at `base + 1 + i` (scalar operators) or as members of the set
         keyed `keccak(base + 1 + i, value)` (`in` / `not_in`). Rules marked off-chain only
         (offset 0xffff) are hashed but not stored. A (target, selector) appears at most once
         per grant, as in the off-chain scope (ENVELOPE_MALFORMED otherwise).
    """
    if permission.target == self:
        reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    if permission.selector != convert(slice(keccak256(permission.function), 0, 4), bytes4):
        reasons._fail(reasons.ENVELOPE_MALFORMED)

    word: uint256 = (
        PERM_PRESENT
        | (self._approval_kind(permission.selector) << PERM_APPROVAL)
        | (min(permission.maxValuePerCall, MAX_VALUE_CAP) << PERM_VALUE_CAP)
    )
    for limit: TokenLimit in token_limits:
        if limit.token == permission.target:
            word |= PERM_TOKEN | (convert(limit.period, uint256) << PERM_TOKEN_PERIOD)
    if len(token_limits) != 0:
        word |= self._argument_outflow_kind(permission.selector) << PERM_ARG_OUTFLOW
    if word & PERM_TOKEN != 0 and word & ARG_OUTFLOW_BITS == 0 and not self._measured_on_token(permission.selector):
        # A function on a limited token whose outflow rule 7 does not measure (a custom
        # `transferAndCall`, `increaseApproval`, ...) would move the token uncounted.
        reasons._fail(reasons.TOKEN_FUNCTION_UNDEFINED)

    base: uint256 = convert(keccak256(abi_encode(generation, permission.target, permission.selector)), uint256)
    if self._perm[base] != 0:
        reasons._fail(reasons.ENVELOPE_MALFORMED)

    stored: uint256 = 0
    for rule: Rule in permission.rules:
        op: uint256 = convert(rule.op, uint256)
        if op > OP_NOT_IN:
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        if rule.offset == OFFCHAIN_ONLY:
            continue
        slot: uint256 = unsafe_add(base, stored + 1)
        if op == OP_IN or op == OP_NOT_IN:
            if len(rule.values) == 0:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            for value: bytes32 in rule.values:
                self._rule_member[slot][value] = True
        else:
            if len(rule.values) != 1:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            self._rule_word[slot] = rule.values[0]
        word |= (op | (convert(rule.offset, uint256) << 8)) << (PERM_RULES + 24 * stored)
        stored += 1
    self._perm[base] = word | (stored << PERM_RULE_COUNT)
    self._target_known[keccak256(abi_encode(generation, permission.target))] = True


# =============================================================================================
# Session state.

@internal
@view
def _dead_session(session_key: address):
    """
    @dev Revert for a key without a live state word: SESSION_REVOKED if it was ever enabled
         (its extra word survives the revocation), else SESSION_UNKNOWN.
    """
    if self._session_extra[session_key] != 0:
        reasons._fail(reasons.SESSION_REVOKED)
    reasons._fail(reasons.SESSION_UNKNOWN)


@internal
@view
def _known_session(session_key: address) -> uint256:
    """
    @dev The state word of an enabled, unrevoked session of the current epoch
         (SESSION_UNKNOWN, SESSION_REVOKED).
    """
    state: uint256 = self._session_state[session_key]
    if state == 0:
        self._dead_session(session_key)
    if (state >> ST_EPOCH) & MASK32 != self._account_word() & MASK32:
        reasons._fail(reasons.SESSION_REVOKED)
    return state


@internal
@view
def _check_window(state: uint256):
    """
    @dev The session is valid now: validAfter <= now < expiresAt.
    """
    if block.timestamp < (state >> ST_VALID_AFTER) & MASK48:
        reasons._fail(reasons.SESSION_NOT_YET_VALID)
    if block.timestamp >= (state >> ST_EXPIRES_AT) & MASK48:
        reasons._fail(reasons.SESSION_EXPIRED)


@internal
@pure
def _window(now: uint256, anchor: uint256, period: uint256) -> uint256:
    """
    @dev The refilling window containing `now`: `(now - anchor) // period`, 0 before the anchor
         or without a period. A limit refills exactly at `anchor + k*period`.
    """
    if period == 0 or now <= anchor:
        return 0
    return (now - anchor) // period


# =============================================================================================
# Execution.

@external
def execute_with_session(
    session_key: address,
    mode: bytes32,
    execution_calldata: Bytes[MAX_EXECUTION_BYTES],
    nonce: uint256,
    deadline: uint48,
    signature: Bytes[65],
):
    """
    @notice Run an ERC-7579 execution with a session's authority. Anyone may relay it.
    @dev Session state (SESSION_UNKNOWN, SESSION_REVOKED, SESSION_NOT_YET_VALID,
         SESSION_EXPIRED), the call's deadline (`now < deadline`, else SESSION_EXPIRED), the
         session key's signature over `SessionCall(..., nonce, deadline)` (SIGNATURE_*), the
         nonce never used by this key on this account (NONCE_REPLAYED), then docs/protocol.md
         section 4 (see `_enforce`). Nonces are unordered: any unused value works, so a call
         that reverted (and therefore did not spend its nonce) blocks no later call. The nonce
         and the counters are committed before any call runs.
    """
    state: uint256 = self._known_session(session_key)
    self._check_window(state)
    if block.timestamp >= convert(deadline, uint256):
        reasons._fail(reasons.SESSION_EXPIRED)
    execution_hash: bytes32 = keccak256(concat(mode, execution_calldata))
    signer: address = eip712._recover_strict(
        self._session_call_digest(session_key, execution_hash, nonce, deadline), signature
    )
    if signer != session_key:
        reasons._fail(reasons.SIGNATURE_INVALID)
    # The nonce: bit `nonce & 255` of bitmap word `nonce >> 8`, spent before anything runs.
    word: uint256 = nonce >> NONCE_WORD_SHIFT
    bits: uint256 = self._nonce_bits[session_key][word]
    bit: uint256 = 1 << (nonce & NONCE_BIT_MASK)
    if bits & bit != 0:
        reasons._fail(reasons.NONCE_REPLAYED)
    self._nonce_bits[session_key][word] = bits | bit
    calls: DynArray[erc7579.CallRef, MAX_BATCH] = erc7579._decode(mode, execution_calldata, SELECTOR_SIZE)
    self._enforce(session_key, state, calls, execution_calldata)
    # Everything is committed before the CALLs: a callee re-entering sees the spent nonce.
    log SessionExecuted(session_key=session_key, nonce=nonce)
    erc7579._run(execution_calldata, calls)


@external
def execute_session_op(session_key: address, mode: bytes32, execution_calldata: Bytes[MAX_EXECUTION_BYTES]):
    """
    @notice The session execution path of an ERC-4337 user operation: only the EntryPoint
            may call it, after `validateUserOp` checked the session key's signature over the
            userOpHash and that this call names that same key.
    @dev Same state and section 4 checks as `execute_with_session`, without the call
         signature and nonce (the EntryPoint's nonce covers replay).
    """
    if msg.sender != account_auth.ENTRY_POINT or msg.sender == empty(address):
        reasons._fail(reasons.NOT_AUTHORIZED)
    state: uint256 = self._known_session(session_key)
    self._check_window(state)
    calls: DynArray[erc7579.CallRef, MAX_BATCH] = erc7579._decode(mode, execution_calldata, SELECTOR_SIZE)
    self._enforce(session_key, state, calls, execution_calldata)
    log SessionExecuted(session_key=session_key, nonce=ENTRY_POINT_NONCE)
    erc7579._run(execution_calldata, calls)


@internal
def _enforce(
    session_key: address,
    state: uint256,
    calls: DynArray[erc7579.CallRef, MAX_BATCH],
    execution_calldata: Bytes[MAX_EXECUTION_BYTES],
):
    """
    @dev docs/protocol.md section 4 for one decoded execution (its shape, including call
         data under 4 bytes, was checked by `erc7579._decode`); writes the native and token
         windows, and the use count when the grant has a maxUses (an unread counter would
         cost an SSTORE per execution).
         `session_key = empty(address)` (user operation validation; no session has that key)
         stops after the per-call scope checks 1-5, before reading TIMESTAMP (banned in
         validation by ERC-7562) and writing anything: the cumulative checks 6-8 run in the
         execution phase. (A flag argument would cost every session call gas; the key is only
         used from rule 6 on.)
         Reverts with the first violation: per call in order 1 SELF_CALL_FORBIDDEN,
         2 NON_DELEGABLE_ACTION (maximum approvals), 3 TARGET_NOT_ALLOWED /
         SELECTOR_NOT_ALLOWED, 4 CALLDATA_MALFORMED / ARG_RULE_VIOLATED, 5 VALUE_CAP_EXCEEDED;
         then per execution 6 VALUE_LIMIT_EXCEEDED, 7 TOKEN_LIMIT_EXCEEDED,
         8 USAGE_LIMIT_REACHED.
    """
    generation: uint256 = (state >> ST_GENERATION) & MASK32
    native_total: uint256 = 0
    outflows: DynArray[TokenOutflow, MAX_BATCH] = []
    # The permission of the previous call, reused when a batch repeats (target, selector).
    last_target: address = empty(address)
    last_selector: bytes4 = empty(bytes4)
    base: uint256 = 0
    word: uint256 = 0
    # The last rule that held, by (rule slot, argument): a batch repeating a recipient skips
    # the lookup (slot 0 is never a rule slot: rule slots are keccak results plus 1..4).
    held_slot: uint256 = 0
    held_argument: bytes32 = empty(bytes32)

    for c: erc7579.CallRef in calls:
        # 1. The account itself (its sessions module, execute, ...).
        if c.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
        # The selector is the low 4 bytes of the word ending at c.start + 4: in bounds, as every
        # call starts at byte 52 or later and has at least 4 bytes (`erc7579._decode`).
        selector: bytes4 = convert(
            convert(extract32(execution_calldata, unsafe_sub(c.start, 28), output_type=uint256) << 224, bytes32),
            bytes4,
        )

        # 3. Target and selector: the permission word (reused when a batch repeats the pair).
        if c.target != last_target or selector != last_selector:
            base = convert(keccak256(abi_encode(generation, c.target, selector)), uint256)
            word = self._perm[base]
            last_target = c.target
            last_selector = selector

        # 2. Maximum-amount approvals, before 3 refuses: an unpermitted call's kind comes from
        #    its selector, a permitted call's from its permission word (stored at enable).
        kind: uint256 = (word >> PERM_APPROVAL) & 3
        if word == 0:
            kind = self._approval_kind(selector)
        if kind != APPROVAL_NONE:
            approved_word: uint256 = 1
            if kind != APPROVAL_WORD1:
                approved_word = 2
            # Unchecked: approved_word <= 2, c.start and c.length <= 4096.
            if c.length >= unsafe_add(36, unsafe_mul(32, approved_word)):
                approved: uint256 = extract32(
                    execution_calldata,
                    unsafe_add(c.start, unsafe_add(4, unsafe_mul(32, approved_word))),
                    output_type=uint256,
                )
                if approved == max_value(uint256) or (kind == APPROVAL_PERMIT2 and approved == MASK160):
                    reasons._fail(reasons.NON_DELEGABLE_ACTION)
        if word == 0:
            if self._target_known[keccak256(abi_encode(generation, c.target))]:
                reasons._fail(reasons.SELECTOR_NOT_ALLOWED)
            reasons._fail(reasons.TARGET_NOT_ALLOWED)

        # 4. Argument rules (static words only; off-chain-only rules were not stored).
        # Unchecked arithmetic below: i < 4, offsets < 2**16, c.start and c.length <= 4096.
        for i: uint256 in range((word >> PERM_RULE_COUNT) & MASK8, bound=MAX_RULES):
            spec: uint256 = (word >> unsafe_add(PERM_RULES, unsafe_mul(24, i))) & MASK24
            op: uint256 = spec & MASK8
            position: uint256 = unsafe_add(4, unsafe_mul(32, spec >> 8))
            if unsafe_add(position, 32) > c.length:
                reasons._fail(reasons.CALLDATA_MALFORMED)
            argument: bytes32 = extract32(execution_calldata, unsafe_add(c.start, position))
            slot: uint256 = unsafe_add(base, unsafe_add(i, 1))
            if slot == held_slot and argument == held_argument:
                continue
            ok: bool = False
            if op == OP_IN:
                ok = self._rule_member[slot][argument]
            elif op == OP_NOT_IN:
                ok = not self._rule_member[slot][argument]
            else:
                operand: bytes32 = self._rule_word[slot]
                if op == OP_EQ:
                    ok = argument == operand
                elif op == OP_NE:
                    ok = argument != operand
                elif op == OP_LTE:
                    ok = convert(argument, uint256) <= convert(operand, uint256)
                else:  # OP_GTE (operators were validated when the grant was enabled)
                    ok = convert(argument, uint256) >= convert(operand, uint256)
            if not ok:
                reasons._fail(reasons.ARG_RULE_VIOLATED)
            held_slot = slot
            held_argument = argument

        # 5. Per-call native value.
        if c.value != 0:
            if c.value > word >> PERM_VALUE_CAP:
                reasons._fail(reasons.VALUE_CAP_EXCEEDED)
            native_total += c.value

        # Token outflow (summed per token, checked per execution below): of a limited token
        # called directly, or of the token an argument names (swaps, Permit2) when the grant
        # has token limits; such a token without a limit has nothing left (rule 7).
        # Locals are few and block-scoped on purpose: this frame's size is memory every
        # session call pays for.
        if word & (PERM_TOKEN | ARG_OUTFLOW_BITS) != 0:
            token: address = c.target
            amount_word: uint256 = 0
            counted: bool = True
            if word & ARG_OUTFLOW_BITS != 0:
                # The words the router's (Permit2's) decoder reads. An offset or length outside
                # the call, an empty path or a dirty address word is CALLDATA_MALFORMED.
                outflow_kind: uint256 = (word >> PERM_ARG_OUTFLOW) & 7
                if c.length < 36 + 32 * 2:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                token_word: uint256 = extract32(execution_calldata, c.start + 4, output_type=uint256)
                if outflow_kind == ARG_OUTFLOW_SWAP_V2:
                    # path[0] (word 2 is the offset of `path`), amountIn (word 0).
                    offset: uint256 = extract32(execution_calldata, c.start + 68, output_type=uint256)
                    if offset > c.length or c.length < offset + 68:
                        reasons._fail(reasons.CALLDATA_MALFORMED)
                    if extract32(execution_calldata, c.start + 4 + offset, output_type=uint256) == 0:
                        reasons._fail(reasons.CALLDATA_MALFORMED)
                    token_word = extract32(execution_calldata, c.start + 36 + offset, output_type=uint256)
                elif outflow_kind == ARG_OUTFLOW_PERMIT2_PERMIT:
                    # Counted when owner (word 0) is the account: token word 1, amount word 2.
                    counted = token_word == convert(self, uint256)
                    token_word = extract32(execution_calldata, c.start + 36, output_type=uint256)
                    amount_word = 2
                elif outflow_kind == ARG_OUTFLOW_SWAP_V3:
                    amount_word = 5  # params.amountIn of params.tokenIn (word 0)
                elif outflow_kind == ARG_OUTFLOW_SWAP_V3_02:
                    amount_word = 4  # params.amountIn of params.tokenIn (word 0)
                else:
                    amount_word = 2  # Permit2 approve: amount of token (word 0)
                if token_word >> 160 != 0:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                token = convert(token_word, address)
            elif selector == SEL_TRANSFER or selector == SEL_APPROVE or selector == SEL_INCREASE_ALLOWANCE:
                amount_word = 1
            elif selector == SEL_TRANSFER_FROM or selector == SEL_PERMIT:
                # Counts only when the account is the one paying (`from` / `owner`).
                if c.length < 36:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                counted = extract32(execution_calldata, c.start + 4, output_type=uint256) == convert(self, uint256)
                amount_word = 2
            elif selector != SEL_WITHDRAW:
                counted = False
            if counted:
                if c.length < 4 + 32 * (amount_word + 1):
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                amount: uint256 = extract32(
                    execution_calldata, c.start + 4 + 32 * amount_word, output_type=uint256
                )
                merged: bool = False
                for k: uint256 in range(MAX_BATCH):
                    if k == len(outflows):
                        break
                    if outflows[k].token == token:
                        # Saturating: an overflowing sum exceeds any limit (rule 7), not a panic.
                        total: uint256 = unsafe_add(outflows[k].amount, amount)
                        if total < amount:
                            total = max_value(uint256)
                        outflows[k].amount = total
                        merged = True
                        break
                if not merged:
                    # The token's refill period: in the permission word of a limited token
                    # called directly, in `_token_period` for an argument token.
                    period: uint256 = (word >> PERM_TOKEN_PERIOD) & MASK48
                    if word & ARG_OUTFLOW_BITS != 0:
                        period = self._token_period[keccak256(abi_encode(generation, token))]
                    outflows.append(TokenOutflow(token=token, amount=amount, period=convert(period, uint48)))

    if session_key == empty(address):
        return
    now: uint256 = block.timestamp
    valid_after: uint256 = (state >> ST_VALID_AFTER) & MASK48

    # 6. Native value per window (valueLimit = 0: no value at all).
    if native_total != 0:
        native: uint256 = self._session_native[session_key]
        period: uint256 = (self._session_extra[session_key] >> EX_VALUE_PERIOD) & MASK48
        window: uint256 = self._window(now, valid_after, period)
        remaining: uint256 = (native >> NATIVE_REMAINING) & MASK112
        if window != native & MASK48:
            remaining = native >> NATIVE_LIMIT
        if native_total > remaining:
            reasons._fail(reasons.VALUE_LIMIT_EXCEEDED)
        self._session_native[session_key] = (
            window
            | ((remaining - native_total) << NATIVE_REMAINING)
            | ((native >> NATIVE_LIMIT) << NATIVE_LIMIT)
        )

    # 7. Token outflow per window.
    for outflow: TokenOutflow in outflows:
        token_key: bytes32 = keccak256(abi_encode(generation, outflow.token))
        token_state: uint256 = self._token_state[token_key]
        window: uint256 = self._window(now, valid_after, convert(outflow.period, uint256))
        remaining: uint256 = token_state >> TOKEN_REMAINING
        if window != token_state & MASK48:
            remaining = min(self._token_limit[token_key], MAX_TOKEN_REMAINING)
        if outflow.amount > remaining:
            reasons._fail(reasons.TOKEN_LIMIT_EXCEEDED)
        self._token_state[token_key] = window | ((remaining - outflow.amount) << TOKEN_REMAINING)

    # 8. Use count: counted only under a maxUses (an unread counter would cost an SSTORE).
    max_uses: uint256 = (state >> ST_MAX_USES) & MASK32
    if max_uses != 0:
        if (state >> ST_USES) & MASK32 >= max_uses:
            reasons._fail(reasons.USAGE_LIMIT_REACHED)
        self._session_state[session_key] = state + (1 << ST_USES)


@internal
def _check_op_scope(state: uint256, mode: bytes32, execution_calldata: Bytes[MAX_EXECUTION_BYTES]):
    """
    @dev The stateless scope of a session user operation, for `validateUserOp`: mode and
         encoding (CALL_TYPE_FORBIDDEN, EMPTY_BATCH, CALLDATA_MALFORMED), then rules 1-5 of
         `_enforce` for every inner call. Reads only this account's storage, writes nothing,
         no TIMESTAMP (ERC-7562). The window is the caller's (validationData); rules 6-8 run
         again with everything else in `execute_session_op`.
    """
    calls: DynArray[erc7579.CallRef, MAX_BATCH] = erc7579._decode(mode, execution_calldata, SELECTOR_SIZE)
    self._enforce(empty(address), state, calls, execution_calldata)


@internal
def _charge_fee(session_key: address, gas_units: uint256, max_fee_per_gas: uint256) -> uint256:
    """
    @dev Charge `gas_units * max_fee_per_gas` (the most the EntryPoint can take from the account for
         this operation) against the session's fee budget and return it, or
         FEE_LIMIT_EXCEEDED. Compared by division first, so no product overflows. A zero cost
         writes nothing.
    """
    if gas_units == 0 or max_fee_per_gas == 0:
        return 0
    budget: uint256 = self._fee_budget[session_key]
    if gas_units > budget // max_fee_per_gas:
        reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
    cost: uint256 = gas_units * max_fee_per_gas
    self._fee_budget[session_key] = budget - cost
    return cost


@internal
@pure
def _measured_on_token(selector: bytes4) -> bool:
    """
    @dev The functions a limited token may be called with: those whose outflow rule 7 measures
         on the token itself, and WETH `deposit` (nothing leaves). The catalog's token
         functions, exactly (the grant builder refuses the rest: TOKEN_FUNCTION_UNDEFINED).
    """
    return (
        selector == SEL_TRANSFER
        or selector == SEL_APPROVE
        or selector == SEL_INCREASE_ALLOWANCE
        or selector == SEL_TRANSFER_FROM
        or selector == SEL_PERMIT
        or selector == SEL_WITHDRAW
        or selector == SEL_DEPOSIT
    )


@internal
@pure
def _argument_outflow_kind(selector: bytes4) -> uint256:
    """
    @dev Which argument-token outflow `selector` has (0: none), whatever the target.
    """
    if selector == SEL_SWAP_V2:
        return ARG_OUTFLOW_SWAP_V2
    if selector == SEL_SWAP_V3:
        return ARG_OUTFLOW_SWAP_V3
    if selector == SEL_SWAP_V3_02:
        return ARG_OUTFLOW_SWAP_V3_02
    if selector == SEL_PERMIT2_APPROVE:
        return ARG_OUTFLOW_PERMIT2_APPROVE
    if selector == SEL_PERMIT2_PERMIT:
        return ARG_OUTFLOW_PERMIT2_PERMIT
    return ARG_OUTFLOW_NONE


@internal
@pure
def _approval_kind(selector: bytes4) -> uint256:
    """
    @dev Which approval-like function `selector` is (rule 2), whatever the target.
    """
    if selector == SEL_APPROVE or selector == SEL_INCREASE_ALLOWANCE:
        return APPROVAL_WORD1
    if selector == SEL_PERMIT:
        return APPROVAL_PERMIT
    if selector == SEL_PERMIT2_APPROVE:
        return APPROVAL_PERMIT2
    return APPROVAL_NONE


# =============================================================================================
# Revocation.

@internal
def _revoke(session_key: address, revoked_by: address):
    """
    @dev Delete the session's state word (one SSTORE, refunded in part). SESSION_UNKNOWN when
         never enabled, SESSION_REVOKED when already revoked.
    """
    if self._session_state[session_key] == 0:
        self._dead_session(session_key)
    self._session_state[session_key] = 0
    log SessionRevoked(session_key=session_key, revoked_by=revoked_by)


@internal
def _bump_epoch(account_word: uint256):
    epoch: uint256 = (account_word & MASK32) + 1
    if epoch > MASK32:
        reasons._fail(reasons.SESSION_REVOKED)
    self._store_account_word((account_word & ~MASK32) | epoch)
    log SessionsRevokedAll(epoch=epoch)


@external
def revoke_session(session_key: address):
    """
    @notice Revoke one session. Callable with the owner's authority or by the grant's
            `revoker` (which can only revoke, never widen): NOT_AUTHORIZED otherwise.
    """
    if not account_auth._is_owner_caller():
        revoker: uint256 = self._session_extra[session_key] & MASK160
        if revoker == 0 or convert(msg.sender, uint256) != revoker:
            reasons._fail(reasons.NOT_AUTHORIZED)
    self._revoke(session_key, msg.sender)


@external
def revoke_all():
    """
    @notice Revoke every session of the account at once (epoch bump). Owner authority only.
    """
    account_auth._check_owner_caller()
    self._bump_epoch(self._account_word())


@external
def revoke_session_signed(
    session_key: address, epoch: uint256, nonce: uint256, owner_signature: Bytes[MAX_OWNER_SIGNATURE]
):
    """
    @notice Relay the owner's EIP-712 `Revocation`; `session_key = 0` revokes all (epoch bump).
    @dev `nonce` must be the account's next owner-operation nonce and `epoch` the current
         epoch (a stale message is NONCE_REPLAYED); the nonce is then spent.
    """
    account_word: uint256 = self._account_word()
    if nonce != (account_word >> ACC_OWNER_NONCE) & MASK32 or epoch != account_word & MASK32:
        reasons._fail(reasons.NONCE_REPLAYED)
    account_auth._check_owner_signature(self._revocation_digest(session_key, epoch, nonce), owner_signature)
    account_word += 1 << ACC_OWNER_NONCE
    if session_key == empty(address):
        self._bump_epoch(account_word)
    else:
        self._store_account_word(account_word)
        self._revoke(session_key, account_auth._owner())


# =============================================================================================
# Views.

@external
@view
def session(session_key: address) -> SessionView:
    """
    @notice The decoded state of a session key: zeroes when never enabled; status 2 with the
            window, use and epoch fields zero once revoked (the state word is deleted). A
            status-1 session whose epoch is below `epoch()` is revoked too (revoke-all).
            `uses` is counted only when the grant has a maxUses.
    """
    state: uint256 = self._session_state[session_key]
    extra: uint256 = self._session_extra[session_key]
    native: uint256 = self._session_native[session_key]
    status: uint8 = convert(state & MASK8, uint8)
    if state == 0 and extra != 0:
        status = convert(STATUS_REVOKED, uint8)
    return SessionView(
        status=status,
        validAfter=convert((state >> ST_VALID_AFTER) & MASK48, uint48),
        expiresAt=convert((state >> ST_EXPIRES_AT) & MASK48, uint48),
        valuePeriod=convert((extra >> EX_VALUE_PERIOD) & MASK48, uint48),
        maxUses=convert((state >> ST_MAX_USES) & MASK32, uint32),
        epoch=convert((state >> ST_EPOCH) & MASK32, uint32),
        generation=convert((extra >> EX_GENERATION) & MASK32, uint32),
        uses=convert((state >> ST_USES) & MASK32, uint32),
        nativeWindow=convert(native & MASK48, uint48),
        nativeRemaining=(native >> NATIVE_REMAINING) & MASK112,
        valueLimit=native >> NATIVE_LIMIT,
        revoker=convert(extra & MASK160, address),
    )


@external
@view
def session_nonce(session_key: address) -> uint256:
    """
    @notice The lowest call nonce this key has not used on this account. Any unused nonce is
            accepted; for a signer that numbers its calls 0, 1, 2, ... and lost none, this is
            the next one. Scans at most `MAX_NONCE_SCAN_WORDS` bitmap words (262,144 nonces)
            and returns that bound when they are all used.
    """
    for w: uint256 in range(MAX_NONCE_SCAN_WORDS):
        bits: uint256 = self._nonce_bits[session_key][w]
        if bits != max_value(uint256):
            for b: uint256 in range(256):
                if bits & (1 << b) == 0:
                    return (w << NONCE_WORD_SHIFT) | b
    return MAX_NONCE_SCAN_WORDS << NONCE_WORD_SHIFT


@external
@view
def session_nonce_used(session_key: address, nonce: uint256) -> bool:
    """
    @notice Whether `nonce` was already used by a `SessionCall` of this key on this account.
    """
    return (self._nonce_bits[session_key][nonce >> NONCE_WORD_SHIFT] >> (nonce & NONCE_BIT_MASK)) & 1 == 1


@external
@view
def token_usage(session_key: address, token: address) -> (uint256, uint256):
    """
    @notice `(window, remaining)` of a token limit of the session's current grant, as last
            written (a later window reads as the full limit when next used).
    """
    generation: uint256 = (self._session_extra[session_key] >> EX_GENERATION) & MASK32
    state: uint256 = self._token_state[keccak256(abi_encode(generation, token))]
    return state & MASK48, state >> TOKEN_REMAINING


@external
@view
def fee_budget(session_key: address) -> uint256:
    """
    @notice What is left of the session's fee budget (`maxFeeWei` minus the maximum cost of
            every session user operation the account paid for), in wei.
    """
    return self._fee_budget[session_key]


@external
@view
def epoch() -> uint256:
    return self._account_word() & MASK32


@external
@view
def owner_nonce() -> uint256:
    return (self._account_word() >> ACC_OWNER_NONCE) & MASK32


@external
@view
def grant_nonce_used(nonce: uint256) -> bool:
    return self._grant_nonce_used[nonce]


@external
@view
def grant_digest(grant: SessionGrant) -> bytes32:
    """
    @notice The EIP-712 digest the owner signs for `grant` on this account.
    """
    return eip712._typed_digest(self._grant_struct_hash(grant))


@external
@view
def session_call_digest(
    session_key: address, mode: bytes32, execution_calldata: Bytes[MAX_EXECUTION_BYTES], nonce: uint256, deadline: uint48
) -> bytes32:
    """
    @notice The EIP-712 digest a session key signs for `execute_with_session`.
    """
    return self._session_call_digest(session_key, keccak256(concat(mode, execution_calldata)), nonce, deadline)


@external
@view
def revocation_digest(session_key: address, epoch: uint256, nonce: uint256) -> bytes32:
    """
    @notice The EIP-712 digest the owner signs for `revoke_session_signed`.
    """
    return self._revocation_digest(session_key, epoch, nonce)
