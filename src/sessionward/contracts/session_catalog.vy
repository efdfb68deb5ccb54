# pragma version ~=0.4.3
"""
@title SessionWard call catalog: rule operators and the token functions rule 2 and 7 know
@notice Stateless (pure): the argument-rule operators, the selectors whose amount is a token
        outflow (docs/protocol.md rule 7) or whose maximum amount is non-delegable (rule 2),
        and their classification into the kinds stored in a permission word at enable time.
"""

# ---------------------------------------------------------------------------------------------
# Rule operators (docs/protocol.md: 0 eq, 1 ne, 2 lte, 3 gte, 4 in, 5 not_in).

OP_EQ: constant(uint256) = 0
OP_NE: constant(uint256) = 1
OP_LTE: constant(uint256) = 2
OP_GTE: constant(uint256) = 3
OP_IN: constant(uint256) = 4
OP_NOT_IN: constant(uint256) = 5
OFFCHAIN_ONLY: constant(uint16) = 65535

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
