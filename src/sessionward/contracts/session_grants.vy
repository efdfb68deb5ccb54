# pragma version ~=0.4.3
"""
@title SessionWard session grants: the typed grant and its EIP-712 digests
@notice Stateless (no storage; reads only `self` and `chain.id` through the domain): the
        `SessionGrant` type, field for field the EIP-712 types of docs/protocol.md section 2,
        its `hashStruct` (nested arrays included), and the digests the owner and the session
        keys sign: `SessionGrant`, `SessionCall`, `Revocation`, each in the account's
        SessionWard domain (eip712.vy), so a signature binds the account and the chain.

        The size bounds below are enforced by ABI decoding: a larger grant does not decode.
        `sessionward.domain.bounds` holds the same numbers (a test keeps them equal).
"""

from . import eip712
from . import erc7579

# ---------------------------------------------------------------------------------------------
# Size bounds.

MAX_PERMISSIONS: constant(uint256) = 16
MAX_RULES: constant(uint256) = 4
MAX_RULE_VALUES: constant(uint256) = 16
MAX_CAPABILITIES: constant(uint256) = 16
MAX_DESTINATIONS: constant(uint256) = 15
MAX_TOKEN_LIMITS: constant(uint256) = 8

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
    """
    @dev `hashStruct(Rule)`; `values` encoded like `_hash_words` (bytes32[] of at most 16).
    """
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
    """
    @dev `hashStruct(Permission)`, its `rules` array hashed rule by rule.
    """
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
    """
    @dev The typed digest of `SessionCall(self, session_key, execution_hash, nonce, deadline)`.
    """
    return eip712._typed_digest(
        keccak256(abi_encode(SESSION_CALL_TYPEHASH, self, session_key, execution_hash, nonce, deadline))
    )


@internal
@view
def _revocation_digest(session_key: address, epoch: uint256, nonce: uint256) -> bytes32:
    """
    @dev The typed digest of `Revocation(self, session_key, epoch, nonce)`.
    """
    return eip712._typed_digest(
        keccak256(abi_encode(REVOCATION_TYPEHASH, self, session_key, epoch, nonce))
    )


# =============================================================================================
# Digest views.

@external
@view
def grant_digest(grant: SessionGrant) -> bytes32:
    """
    @notice The EIP-712 digest the owner signs for `grant` on this account.
    @dev `hashStruct(SessionGrant)` of docs/protocol.md section 2 in this account's SessionWard
         domain (chain id and `verifyingContract = self`), exactly what `enable_session` checks
         the owner's signature against. Reads no storage; checks nothing in the grant.
    @param grant The grant, as `enable_session` takes it.
    @return The digest.
    """
    return eip712._typed_digest(self._grant_struct_hash(grant))


@external
@view
def session_call_digest(
    session_key: address, mode: bytes32, execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES], nonce: uint256, deadline: uint48
) -> bytes32:
    """
    @notice The EIP-712 digest a session key signs for `execute_with_session`.
    @dev `SessionCall(account, sessionKey, executionHash, nonce, deadline)` with
         `executionHash = keccak256(mode ‖ execution_calldata)`, in this account's domain. Reads
         no storage; checks nothing (a used nonce still has a digest).
    @param session_key The session key that signs.
    @param mode The ERC-7579 execution mode.
    @param execution_calldata The ERC-7579 execution calldata.
    @param nonce Any nonce the key has not used on this account.
    @param deadline The timestamp from which the call is refused (SESSION_EXPIRED).
    @return The digest.
    """
    return self._session_call_digest(session_key, keccak256(concat(mode, execution_calldata)), nonce, deadline)


@external
@view
def revocation_digest(session_key: address, epoch: uint256, nonce: uint256) -> bytes32:
    """
    @notice The EIP-712 digest the owner signs for `revoke_session_signed`.
    @dev `Revocation(account, sessionKey, epoch, nonce)` in this account's domain. Reads no
         storage; checks nothing.
    @param session_key The session to revoke, or the zero address for all sessions.
    @param epoch The account's current epoch.
    @param nonce The account's next owner-operation nonce (`owner_nonce()`).
    @return The digest.
    """
    return self._revocation_digest(session_key, epoch, nonce)
