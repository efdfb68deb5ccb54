# pragma version ~=0.4.3
"""
@title SessionWard session enabling: installing an owner-signed grant
@notice Writes the account's session storage (sessions.vy) for one grant: the account word
        (generation), the grant nonce, the permission words and rule operands, the token
        limits, and the session's state, extra, native-value and fee-budget words.
"""

from . import reasons
from . import eip712
from . import account_auth
from . import sessions
from . import session_grants as grants
from . import session_catalog as catalog

uses: sessions

event SessionEnabled:
    session_key: indexed(address)
    grant_nonce: indexed(uint256)
    credential: bytes32
    valid_after: uint48
    expires_at: uint48
    epoch: uint256

# =============================================================================================
# Enabling.

@external
def enable_session(
    grant: grants.SessionGrant, owner_signature: Bytes[account_auth.MAX_OWNER_SIGNATURE]
):
    """
    @notice Install an owner-signed grant for its session key. Anyone may submit it (the
            relayer does).
    @dev Checks, in order: account (ACCOUNT_MISMATCH), chain (CHAIN_MISMATCH), epoch
         (SESSION_REVOKED), grant nonce never used (NONCE_REPLAYED), session key and window
         (ENVELOPE_MALFORMED, WINDOW_INVALID), the owner's signature over the full EIP-712
         digest (SIGNATURE_*), then each token limit and permission while storing it
         (ENVELOPE_MALFORMED, SELF_CALL_FORBIDDEN, TOKEN_FUNCTION_UNDEFINED); any refusal
         reverts everything. Invariants: the grant nonce is then spent forever; the grant's
         records are keyed by a new generation, so re-enabling a key (after a revocation, or
         to replace its grant) starts clean counters, limits and fee budget and drops the old
         permissions; only the key's used call nonces carry over, so no SessionCall executed
         under an earlier grant can be replayed. Amounts above what the packed words hold are
         clamped (the grant builder refuses them first).
    @param grant The grant, field for field the EIP-712 `SessionGrant` of docs/protocol.md.
    @param owner_signature The owner's signature over `grant_digest(grant)`: 65 bytes
           `r ‖ s ‖ v` (low s), or what the owner's ERC-1271 contract accepts.
    """
    if grant.account != self:
        reasons._fail(reasons.ACCOUNT_MISMATCH)
    if grant.envelope.chainId != chain.id:
        reasons._fail(reasons.CHAIN_MISMATCH)
    account_word: uint256 = sessions._account_word()
    epoch: uint256 = account_word & sessions.MASK32
    if grant.epoch != epoch:
        reasons._fail(reasons.SESSION_REVOKED)
    if sessions._grant_nonce_used[grant.nonce]:
        reasons._fail(reasons.NONCE_REPLAYED)
    if grant.sessionKey == empty(address):
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    if grant.envelope.validAfter >= grant.envelope.expiresAt:
        reasons._fail(reasons.WINDOW_INVALID)

    account_auth._check_owner_signature(
        eip712._typed_digest(grants._grant_struct_hash(grant)), owner_signature
    )

    sessions._grant_nonce_used[grant.nonce] = True
    generation: uint256 = ((account_word >> sessions.ACC_GENERATION) & sessions.MASK32) + 1
    if generation > sessions.MASK32:
        reasons._fail(reasons.ENVELOPE_MALFORMED)
    sessions._store_account_word(
        (account_word & ~(sessions.MASK32 << sessions.ACC_GENERATION))
        | (generation << sessions.ACC_GENERATION)
    )

    # Token limits of this grant, keyed by (generation, token): a new grant starts clean.
    for i: uint256 in range(grants.MAX_TOKEN_LIMITS):
        if i == len(grant.envelope.tokenLimits):
            break
        limit: grants.TokenLimit = grant.envelope.tokenLimits[i]
        for j: uint256 in range(grants.MAX_TOKEN_LIMITS):
            if j == i:
                break
            if grant.envelope.tokenLimits[j].token == limit.token:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
        token_key: bytes32 = keccak256(abi_encode(generation, limit.token))
        if limit.period != 0:
            sessions._token_limit[token_key] = limit.limit
            sessions._token_period[token_key] = convert(limit.period, uint256)
        sessions._token_state[token_key] = (
            min(limit.limit, sessions.MAX_TOKEN_REMAINING) << sessions.TOKEN_REMAINING
        )

    for permission: grants.Permission in grant.envelope.permissions:
        self._store_permission(generation, permission, grant.envelope.tokenLimits)

    value_limit: uint256 = min(grant.envelope.valueLimit, sessions.MAX_NATIVE_LIMIT)
    key: address = grant.sessionKey
    # Uses start from zero, the native window full; the key's used call nonces are kept in
    # `_nonce_bits`, which no grant resets.
    sessions._session_state[key] = (
        sessions.STATUS_ACTIVE
        | (convert(grant.envelope.validAfter, uint256) << sessions.ST_VALID_AFTER)
        | (convert(grant.envelope.expiresAt, uint256) << sessions.ST_EXPIRES_AT)
        | (convert(grant.envelope.maxUses, uint256) << sessions.ST_MAX_USES)
        | (epoch << sessions.ST_EPOCH)
        | (generation << sessions.ST_GENERATION)
    )
    sessions._session_extra[key] = (
        convert(grant.revoker, uint256)
        | (convert(grant.envelope.valuePeriod, uint256) << sessions.EX_VALUE_PERIOD)
        | (generation << sessions.EX_GENERATION)
        | sessions.EX_ENABLED
    )
    sessions._session_native[key] = (
        (value_limit << sessions.NATIVE_REMAINING) | (value_limit << sessions.NATIVE_LIMIT)
    )
    # Always written: a re-enabled key must not inherit its previous grant's budget.
    sessions._fee_budget[key] = grant.envelope.maxFeeWei

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
    generation: uint256,
    permission: grants.Permission,
    token_limits: DynArray[grants.TokenLimit, grants.MAX_TOKEN_LIMITS],
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
        sessions.PERM_PRESENT
        | (catalog._approval_kind(permission.selector) << sessions.PERM_APPROVAL)
        | (min(permission.maxValuePerCall, sessions.MAX_VALUE_CAP) << sessions.PERM_VALUE_CAP)
    )
    for limit: grants.TokenLimit in token_limits:
        if limit.token == permission.target:
            word |= sessions.PERM_TOKEN | (convert(limit.period, uint256) << sessions.PERM_TOKEN_PERIOD)
    if len(token_limits) != 0:
        word |= catalog._argument_outflow_kind(permission.selector) << sessions.PERM_ARG_OUTFLOW
    if (
        word & sessions.PERM_TOKEN != 0
        and word & sessions.ARG_OUTFLOW_BITS == 0
        and not catalog._measured_on_token(permission.selector)
    ):
        # A function on a limited token whose outflow rule 7 does not measure (a custom
        # `transferAndCall`, `increaseApproval`, ...) would move the token uncounted.
        reasons._fail(reasons.TOKEN_FUNCTION_UNDEFINED)

    base: uint256 = convert(keccak256(abi_encode(generation, permission.target, permission.selector)), uint256)
    if sessions._perm[base] != 0:
        reasons._fail(reasons.ENVELOPE_MALFORMED)

    stored: uint256 = 0
    for rule: grants.Rule in permission.rules:
        op: uint256 = convert(rule.op, uint256)
        if op > catalog.OP_NOT_IN:
            reasons._fail(reasons.ENVELOPE_MALFORMED)
        if rule.offset == catalog.OFFCHAIN_ONLY:
            continue
        slot: uint256 = unsafe_add(base, stored + 1)
        if op == catalog.OP_IN or op == catalog.OP_NOT_IN:
            if len(rule.values) == 0:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            for value: bytes32 in rule.values:
                sessions._rule_member[slot][value] = True
        else:
            if len(rule.values) != 1:
                reasons._fail(reasons.ENVELOPE_MALFORMED)
            sessions._rule_word[slot] = rule.values[0]
        word |= (op | (convert(rule.offset, uint256) << 8)) << (sessions.PERM_RULES + 24 * stored)
        stored += 1
    sessions._perm[base] = word | (stored << sessions.PERM_RULE_COUNT)
    sessions._target_known[keccak256(abi_encode(generation, permission.target))] = True
