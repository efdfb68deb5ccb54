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
