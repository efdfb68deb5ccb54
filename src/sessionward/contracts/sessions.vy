# pragma version ~=0.4.3
"""
@title SessionWard session storage: the account's session state and its views
@notice Every session word of the account, in the account's own storage (the module is
        initialised by SessionAccount; its slots 0-13 are the deployed layout, which a test
        keeps equal to tests/contracts/session_account_interface.json), the accessors of the
        account-wide word and of a session's state word, and the read-only views relayers and
        reconciliation use. Writers: session_enable (grants), session_enforce (nonces,
        windows, uses), session_fees (fee budget), session_revocation (state word, epoch).

        Storage: every value lives at a keccak-derived slot (HashMap entries) and the one
        account-wide word sits under a namespaced key with a layout tag, so code the EOA
        delegated to before (EIP-7702) cannot alias it with its sequential slots, and a future
        layout can refuse to run on this one.
"""

from . import reasons

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


# Token state word: window (48) | remaining (208).
TOKEN_REMAINING: constant(uint256) = 48
MAX_TOKEN_REMAINING: constant(uint256) = 2**208 - 1


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
    """
    @dev Write the account-wide word with this layout's tag; bits 160..247 are kept zero.
    """
    self._account[ACCOUNT_NAMESPACE] = (word & MASK160) | (LAYOUT_TAG << ACC_LAYOUT)


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


# =============================================================================================
# Views.

@external
@view
def session(session_key: address) -> SessionView:
    """
    @notice The decoded state of a session key on this account.
    @dev Reads the key's state, extra and native-value words; writes nothing. Never enabled:
         all zeroes (status 0). Revoked one by one: status 2 with the window, use and epoch
         fields zero (the state word is deleted; the extra word, kept forever, tells it from
         unknown). A status-1 session whose epoch is below `epoch()` is revoked too
         (revoke-all). `uses` is counted only when the grant has a maxUses; the native window
         is the one last written (a later window reads as the full limit when next used).
    @param session_key The session key (its address), as in the grant's `sessionKey`.
    @return The `SessionView`: status (0 none, 1 active, 2 revoked), validAfter, expiresAt,
            valuePeriod, maxUses, epoch, generation (which grant), uses, nativeWindow,
            nativeRemaining, valueLimit (clamped to 2**96 - 1) and revoker.
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
    @notice The lowest call nonce this key has not used on this account.
    @dev Any unused nonce is accepted by `execute_with_session`; for a signer that numbers its
         calls 0, 1, 2, ... and lost none, this is the next one. Used nonces stay used across
         revocations and re-enables (no `SessionCall` can be replayed). Scans at most
         `MAX_NONCE_SCAN_WORDS` bitmap words (262,144 nonces) and returns that bound when they
         are all used.
    @param session_key The session key.
    @return The lowest unused nonce, or 262,144 when every nonce below it is used.
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
    @dev One bit of the key's nonce bitmap (word `nonce >> 8`, bit `nonce & 255`); a bit once
         set is never cleared.
    @param session_key The session key.
    @param nonce The `SessionCall` nonce.
    @return True when the nonce is spent (a call with it reverts NONCE_REPLAYED).
    """
    return (self._nonce_bits[session_key][nonce >> NONCE_WORD_SHIFT] >> (nonce & NONCE_BIT_MASK)) & 1 == 1


@external
@view
def token_usage(session_key: address, token: address) -> (uint256, uint256):
    """
    @notice What is left of a token limit of the session's current grant.
    @dev The token's state word, keyed by (the grant's generation, token): a re-enabled
         key's new grant starts from its own full limits. As last written: a later window
         reads as the full limit when the token is next used. A token without a limit in the
         grant has nothing left.
    @param session_key The session key.
    @param token The ERC-20 token of the limit.
    @return The window index last charged (`(now - validAfter) // period`, 0 without a period).
    @return The amount left in that window.
    """
    generation: uint256 = (self._session_extra[session_key] >> EX_GENERATION) & MASK32
    state: uint256 = self._token_state[keccak256(abi_encode(generation, token))]
    return state & MASK48, state >> TOKEN_REMAINING


@external
@view
def epoch() -> uint256:
    """
    @notice The account's session epoch.
    @dev Only sessions enabled in the current epoch run; `revoke_all` and an owner-signed
         revoke-all increase it by one and never decrease it (SESSION_REVOKED at 2**32 - 1).
         STORAGE_LAYOUT_MISMATCH when the account word carries another layout tag.
    @return The current epoch (a grant must name it to be enabled).
    """
    return self._account_word() & MASK32


@external
@view
def owner_nonce() -> uint256:
    """
    @notice The nonce the next owner-signed `Revocation` must carry.
    @dev Increased by one by every relayed owner-signed revocation, never otherwise.
         STORAGE_LAYOUT_MISMATCH when the account word carries another layout tag.
    @return The next owner-operation nonce.
    """
    return (self._account_word() >> ACC_OWNER_NONCE) & MASK32


@external
@view
def grant_nonce_used(nonce: uint256) -> bool:
    """
    @notice Whether a grant with this nonce was already enabled on this account.
    @dev Set by `enable_session` and never cleared: one signed grant enables at most once,
         even after its session is revoked.
    @param nonce The grant's `nonce`.
    @return True when spent (enabling a grant with it reverts NONCE_REPLAYED).
    """
    return self._grant_nonce_used[nonce]
