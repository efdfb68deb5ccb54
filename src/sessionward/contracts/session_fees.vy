# pragma version ~=0.4.3
"""
@title SessionWard session fee budget
@notice The session's budget for ERC-4337 gas the account pays (`maxFeeWei`, written by
        session_enable), charged by the validation of each session user operation.
"""

from . import reasons
from . import sessions

uses: sessions

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
    budget: uint256 = sessions._fee_budget[session_key]
    if gas_units > budget // max_fee_per_gas:
        reasons._fail(reasons.FEE_LIMIT_EXCEEDED)
    cost: uint256 = gas_units * max_fee_per_gas
    sessions._fee_budget[session_key] = budget - cost
    return cost


@external
@view
def fee_budget(session_key: address) -> uint256:
    """
    @notice What is left of the session's fee budget, in wei.
    @dev `maxFeeWei` of the key's current grant (rewritten by every enable), minus the maximum
         cost of every session user operation the account paid for; never increased otherwise.
         Operations a paymaster sponsors are not charged.
    @param session_key The session key.
    @return The wei left; 0 for a key never enabled.
    """
    return sessions._fee_budget[session_key]
