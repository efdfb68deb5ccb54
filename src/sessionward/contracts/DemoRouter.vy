# pragma version ~=0.4.3
"""
@title SessionWard demo swap router
@notice A constant-product router over its own token balances, with the two entry points the
        action catalog knows: Uniswap-V2-style `swapExactTokensForTokens` and V3-style
        `exactInputSingle`. It pulls `tokenIn` from the caller with `transferFrom` and pays
        `tokenOut` from its reserves, so a `swap.execute` session moves real balances.

        Quote for one hop: `out = in*(1e6 - fee)*reserveOut / (reserveIn*1e6 + in*(1e6 - fee))`
        with `fee` in millionths (3000 = 0.3%, the V2 fee). Multi-hop paths quote hop by hop on
        the router's balances; only the first and last tokens move.
"""

from ethereum.ercs import IERC20


struct ExactInputSingleParams:
    tokenIn: address
    tokenOut: address
    fee: uint24
    recipient: address
    deadline: uint256
    amountIn: uint256
    amountOutMinimum: uint256
    sqrtPriceLimitX96: uint160


FEE_DENOMINATOR: constant(uint256) = 1_000_000
V2_FEE: constant(uint256) = 3_000
MAX_PATH: constant(uint256) = 4


event Swap:
    sender: indexed(address)
    recipient: indexed(address)
    token_in: address
    token_out: address
    amount_in: uint256
    amount_out: uint256


@internal
@view
def _quote(token_in: address, token_out: address, amount_in: uint256, fee: uint256) -> uint256:
    reserve_in: uint256 = staticcall IERC20(token_in).balanceOf(self)
    reserve_out: uint256 = staticcall IERC20(token_out).balanceOf(self)
    assert token_in != token_out, "IDENTICAL_TOKENS"
    assert reserve_in != 0 and reserve_out != 0, "NO_LIQUIDITY"
    in_with_fee: uint256 = amount_in * (FEE_DENOMINATOR - fee)
    return in_with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + in_with_fee)


@internal
def _settle(token_in: address, token_out: address, amount_in: uint256, amount_out: uint256, to: address):
    assert extcall IERC20(token_in).transferFrom(msg.sender, self, amount_in, default_return_value=True)
    assert extcall IERC20(token_out).transfer(to, amount_out, default_return_value=True)
    log Swap(
        sender=msg.sender,
        recipient=to,
        token_in=token_in,
        token_out=token_out,
        amount_in=amount_in,
        amount_out=amount_out,
    )


@external
@view
def getAmountsOut(amountIn: uint256, path: DynArray[address, MAX_PATH]) -> DynArray[uint256, MAX_PATH]:
    """
    @notice The amounts a V2-style swap along `path` would produce at the current reserves.
    """
    assert len(path) >= 2, "INVALID_PATH"
    amounts: DynArray[uint256, MAX_PATH] = [amountIn]
    for i: uint256 in range(MAX_PATH - 1):
        if i + 1 == len(path):
            break
        amounts.append(self._quote(path[i], path[i + 1], amounts[i], V2_FEE))
    return amounts


@external
def swapExactTokensForTokens(
    amountIn: uint256,
    amountOutMin: uint256,
    path: DynArray[address, MAX_PATH],
    to: address,
    deadline: uint256,
) -> DynArray[uint256, MAX_PATH]:
    """
    @notice Swap exactly `amountIn` of `path[0]` for at least `amountOutMin` of `path[-1]`.
    """
    assert block.timestamp <= deadline, "EXPIRED"
    assert len(path) >= 2, "INVALID_PATH"
    amounts: DynArray[uint256, MAX_PATH] = [amountIn]
    for i: uint256 in range(MAX_PATH - 1):
        if i + 1 == len(path):
            break
        amounts.append(self._quote(path[i], path[i + 1], amounts[i], V2_FEE))
    amount_out: uint256 = amounts[len(amounts) - 1]
    assert amount_out >= amountOutMin, "INSUFFICIENT_OUTPUT_AMOUNT"
    self._settle(path[0], path[len(path) - 1], amountIn, amount_out, to)
    return amounts


@external
def exactInputSingle(params: ExactInputSingleParams) -> uint256:
    """
    @notice Swap exactly `amountIn` of `tokenIn` for at least `amountOutMinimum` of `tokenOut`.
            `fee` is in millionths; `sqrtPriceLimitX96` is accepted and ignored (no ticks here).
    """
    assert block.timestamp <= params.deadline, "EXPIRED"
    assert convert(params.fee, uint256) < FEE_DENOMINATOR, "INVALID_FEE"
    amount_out: uint256 = self._quote(
        params.tokenIn, params.tokenOut, params.amountIn, convert(params.fee, uint256)
    )
    assert amount_out >= params.amountOutMinimum, "TOO_LITTLE_RECEIVED"
    self._settle(params.tokenIn, params.tokenOut, params.amountIn, amount_out, params.recipient)
    return amount_out
