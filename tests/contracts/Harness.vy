# pragma version ~=0.4.3
"""
@title Exposes the account's internal pieces that have no external entry point
"""

from sessionward.contracts import erc7579
from sessionward.contracts import reasons


@external
@pure
def decode(
    mode: bytes32, execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES], min_call_data: uint256
) -> DynArray[erc7579.CallRef, erc7579.MAX_BATCH]:
    return erc7579._decode(mode, execution_calldata, min_call_data)


@external
@pure
def fail(reason: uint256):
    reasons._fail(reason)
