# pragma version ~=0.4.3
"""
@title SessionWard demo ERC-20 (with EIP-2612 permit)
@notice snekmate's ERC-20 module (transfer, approve, transferFrom, permit, burn, mint by
        minters) plus `increaseAllowance`, so every outflow kind a session's token limit counts
        exists on one token. The deployer is the owner and the first minter.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    ownable.__init__()
    # The EIP-712 domain of `permit` is (name, "1", chainId, token).
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def increaseAllowance(spender: address, added_value: uint256) -> bool:
    """
    @notice Raise the caller's allowance to `spender` by `added_value`.
    """
    erc20._approve(msg.sender, spender, erc20.allowance[msg.sender][spender] + added_value)
    return True
