# pragma version ~=0.4.3
"""
@title Revert reasons
@notice Every refusal of the SessionWard contracts reverts with `Error(string)` whose string is
        a reason code of docs/protocol.md (sessionward.reasons.ReasonCode), so on-chain
        and off-chain verdicts compare mechanically.

        A plain `assert cond, "REASON"` costs about 110 bytes of code per site and the account
        has ~70 sites, which alone would push it past the EIP-170 size limit. Here each code is
        a constant `offset << 8 | length` into one string table and every site is a short
        `if ...: reasons._fail(reasons.CODE)`; the test suite checks that each constant slices
        to its own name.
"""

_TABLE: constant(Bytes[510]) = b"SESSION_UNKNOWNSESSION_NOT_YET_VALIDSESSION_EXPIREDSESSION_REVOKEDCHAIN_MISMATCHACCOUNT_MISMATCHCALLDATA_MALFORMEDEMPTY_BATCHCALL_TYPE_FORBIDDENSELF_CALL_FORBIDDENNON_DELEGABLE_ACTIONTARGET_NOT_ALLOWEDSELECTOR_NOT_ALLOWEDARG_RULE_VIOLATEDVALUE_CAP_EXCEEDEDVALUE_LIMIT_EXCEEDEDTOKEN_LIMIT_EXCEEDEDUSAGE_LIMIT_REACHEDENVELOPE_MALFORMEDWINDOW_INVALIDSIGNATURE_INVALIDSIGNATURE_MALLEABLESIGNER_ZERO_ADDRESSNONCE_REPLAYEDNOT_AUTHORIZEDSTORAGE_LAYOUT_MISMATCHINPUT_MALFORMEDFEE_LIMIT_EXCEEDEDTOKEN_FUNCTION_UNDEFINED"

SESSION_UNKNOWN: constant(uint256) = (0 << 8) | 15
SESSION_NOT_YET_VALID: constant(uint256) = (15 << 8) | 21
SESSION_EXPIRED: constant(uint256) = (36 << 8) | 15
SESSION_REVOKED: constant(uint256) = (51 << 8) | 15
CHAIN_MISMATCH: constant(uint256) = (66 << 8) | 14
ACCOUNT_MISMATCH: constant(uint256) = (80 << 8) | 16
CALLDATA_MALFORMED: constant(uint256) = (96 << 8) | 18
EMPTY_BATCH: constant(uint256) = (114 << 8) | 11
CALL_TYPE_FORBIDDEN: constant(uint256) = (125 << 8) | 19
SELF_CALL_FORBIDDEN: constant(uint256) = (144 << 8) | 19
NON_DELEGABLE_ACTION: constant(uint256) = (163 << 8) | 20
TARGET_NOT_ALLOWED: constant(uint256) = (183 << 8) | 18
SELECTOR_NOT_ALLOWED: constant(uint256) = (201 << 8) | 20
ARG_RULE_VIOLATED: constant(uint256) = (221 << 8) | 17
VALUE_CAP_EXCEEDED: constant(uint256) = (238 << 8) | 18
VALUE_LIMIT_EXCEEDED: constant(uint256) = (256 << 8) | 20
TOKEN_LIMIT_EXCEEDED: constant(uint256) = (276 << 8) | 20
USAGE_LIMIT_REACHED: constant(uint256) = (296 << 8) | 19
ENVELOPE_MALFORMED: constant(uint256) = (315 << 8) | 18
WINDOW_INVALID: constant(uint256) = (333 << 8) | 14
SIGNATURE_INVALID: constant(uint256) = (347 << 8) | 17
SIGNATURE_MALLEABLE: constant(uint256) = (364 << 8) | 19
SIGNER_ZERO_ADDRESS: constant(uint256) = (383 << 8) | 19
NONCE_REPLAYED: constant(uint256) = (402 << 8) | 14
NOT_AUTHORIZED: constant(uint256) = (416 << 8) | 14
STORAGE_LAYOUT_MISMATCH: constant(uint256) = (430 << 8) | 23
INPUT_MALFORMED: constant(uint256) = (453 << 8) | 15
FEE_LIMIT_EXCEEDED: constant(uint256) = (468 << 8) | 18
TOKEN_FUNCTION_UNDEFINED: constant(uint256) = (486 << 8) | 24


@internal
@pure
def _fail(reason: uint256):
    """
    @dev Revert with the reason code `reason` (one of the constants above).
    """
    raise convert(slice(_TABLE, reason >> 8, reason & 255), String[32])
