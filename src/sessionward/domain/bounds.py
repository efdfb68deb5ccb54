"""Size bounds the on-chain sessions module can hold.

A grant or an execution beyond them would not even decode on chain, so they are refused here
first: off-chain ALLOW must imply on-chain success. The values mirror
``sessionward.contracts`` (a test keeps the two equal); the domain does not import the
contracts package.
"""

from typing import Final

MAX_PERMISSIONS: Final = 16
MAX_RULES: Final = 4
"""Rules per permission, implicit recipient rules included."""
MAX_RULE_VALUES: Final = 16
MAX_CAPABILITIES: Final = 16
MAX_DESTINATIONS: Final = 15
MAX_TOKEN_LIMITS: Final = 8
MAX_BATCH: Final = 8
"""Inner calls per execution."""
MAX_EXECUTION_BYTES: Final = 4096
"""Length of the ERC-7579 ``executionCalldata``."""
STRING_BOUNDS: Final = {
    "capability": 64,
    "function": 128,
    "actionClass": 64,
    "arg": 64,
    "maxValueUsd": 32,
}
"""Maximum UTF-8 length of each string field of a grant."""

MAX_ENABLE_STORAGE_WORDS: Final = 512
"""Storage words the account's ``enable_session`` may write for one grant (see
:func:`sessionward.domain.grant.enable_storage_words`). Each fresh word costs about 22,100 gas
(cold ``SSTORE``), so a grant at this bound, with every other field at its own bound, enables in
well under EIP-7825's per-transaction gas cap (:data:`MAX_TRANSACTION_GAS`) even with the
service's 20 % estimate margin: ``tests/contracts/test_enable_bounds.py`` measures it."""
MAX_TRANSACTION_GAS: Final = 2**24
"""EIP-7825 (Osaka): no transaction may ask for more gas, whatever the block's limit."""

ENABLE_FIXED_GAS: Final = 400_000
"""What ``enable_session`` spends whatever the grant (intrinsic gas, the owner's ECDSA check,
the session's own words, the event), with room to spare: a one-permission grant measured
about 212,000 gas in all."""
ENABLE_GAS_PER_WORD: Final = 23_500
"""Per storage word counted by ``enable_storage_words``: a cold ``SSTORE`` of a fresh slot
(22,100) plus the hashing and the loop around it."""
ENABLE_GAS_PER_BYTE: Final = 48
"""Per byte of ``enable_session`` call data: 16 intrinsic (or up to 40 under EIP-7623's floor)
plus copying, ABI decoding and EIP-712 hashing of what it carries."""


def enable_gas_ceiling(*, words: int, calldata_bytes: int) -> int:
    """An upper bound of the gas ``enable_session`` needs for a grant writing ``words`` storage
    words with ``calldata_bytes`` bytes of call data, for an account whose owner is an EOA
    (an ERC-1271 owner's check is the owner contract's own, unbounded here). Used when there is
    nothing to estimate against yet (the account's deployment is still queued);
    ``tests/contracts/test_enable_bounds.py`` checks it against measured grants."""
    return ENABLE_FIXED_GAS + ENABLE_GAS_PER_WORD * words + ENABLE_GAS_PER_BYTE * calldata_bytes
