"""Cumulative-limit parity, differentially (see parity_support): token limits with and without
refill periods (transfer, approve and a swap's input measured as SessionAccount measures them,
summed over a batch), native value (per-call cap and per-window limit) and use counts give the
same verdicts, step by step, on SessionAccount and through SessionWard's ERC-7579 module on the
OpenZeppelin account: relayed on both (each refused step changing nothing on either) and as
session user operations (SessionAccount refuses rules 6-8 in execution, the module in
validation: same reason code). Grants SessionAccount refuses for their limits the module
refuses alike.

Time: refill windows are entered with anvil's ``evm_increaseTime``; the module's user
operations claim the next block's time (6 bytes after the signature), and one claiming a later
window than the block's is not run by the EntryPoint, with nothing charged.
"""

from __future__ import annotations

import pytest
from erc4337_support import ONE_ETH, USDX, Key, Stage
from module_support import deploy_module
from oz_account import MODULE_TYPE_EXECUTOR, MODULE_TYPE_VALIDATOR, handle_op_refusal
from parity_support import ALLOW, Pair, new_pair, permission, simulate, word

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

TRANSFER = "transfer(address,uint256)"
APPROVE = "approve(address,uint256)"
SWAP = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
SWAP_V3 = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
PING = "ping()"
EQ, IN = 0, 4
HOUR = 3600


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture
def pair(stage: Stage, module: DeployedContract, rpc: JsonRpcClient, account_kind: str) -> Pair:
    return new_pair(stage, module, rpc, account_kind)


def _call(target: str, function: str, *args: object, value: int = 0) -> Call:
    return Call(target, value, encode_call(parse_signature(function), args))


def _usdx(pair: Pair) -> str:
    return pair.stage.demo.token("USDX")


def _pay(pair: Pair, amount: int) -> Call:
    return _call(_usdx(pair), TRANSFER, pair.recipient, amount)


def _limit(token: str, limit: int, period: int = 0) -> dict[str, object]:
    return {"token": token, "limit": limit, "period": period}


def test_a_token_limit_without_period_is_spent_alike(pair: Pair) -> None:
    usdx = _usdx(pair)
    granted = pair.enable([permission(usdx, TRANSFER)], tokenLimits=[_limit(usdx, 10 * USDX)])
    assert granted == (ALLOW, ALLOW)
    tokens = (usdx,)
    assert pair.relayed(_pay(pair, 6 * USDX), tokens=tokens) == ALLOW
    assert pair.relayed(_pay(pair, 3 * USDX), _pay(pair, 2 * USDX), tokens=tokens) == (
        "TOKEN_LIMIT_EXCEEDED"
    )
    assert pair.relayed(_pay(pair, 4 * USDX), tokens=tokens) == ALLOW
    assert pair.relayed(_pay(pair, 1), tokens=tokens) == "TOKEN_LIMIT_EXCEEDED"
    pair.stage.chain.time_travel(10 * HOUR)  # no period: nothing refills
    assert pair.relayed(_pay(pair, 1), tokens=tokens) == "TOKEN_LIMIT_EXCEEDED"


def test_a_token_limit_refills_at_each_period_alike(pair: Pair) -> None:
    usdx = _usdx(pair)
    limits = [_limit(usdx, 10 * USDX, HOUR)]
    assert pair.enable([permission(usdx, TRANSFER)], tokenLimits=limits) == (ALLOW, ALLOW)
    tokens = (usdx,)
    assert pair.relayed(_pay(pair, 10 * USDX), tokens=tokens) == ALLOW
    assert pair.relayed(_pay(pair, 1), tokens=tokens) == "TOKEN_LIMIT_EXCEEDED"
    pair.stage.chain.time_travel(HOUR)
    assert pair.relayed(_pay(pair, 7 * USDX), tokens=tokens) == ALLOW
    assert pair.relayed(_pay(pair, 3 * USDX + 1), tokens=tokens) == "TOKEN_LIMIT_EXCEEDED"
    assert pair.relayed(_pay(pair, 3 * USDX), tokens=tokens) == ALLOW


def test_approvals_and_transfers_share_the_token_limit_alike(pair: Pair) -> None:
    usdx = _usdx(pair)
    friend = Key().address
    granted = pair.enable(
        [permission(usdx, TRANSFER), permission(usdx, APPROVE, (IN, 0, [word(friend)]))],
        tokenLimits=[_limit(usdx, 10 * USDX)],
    )
    assert granted == (ALLOW, ALLOW)
    approve = _call(usdx, APPROVE, friend, 7 * USDX)
    assert pair.relayed(approve, _pay(pair, 4 * USDX), tokens=(usdx,)) == "TOKEN_LIMIT_EXCEEDED"
    assert pair.relayed(approve, _pay(pair, 3 * USDX), tokens=(usdx,)) == ALLOW


def test_a_swaps_input_counts_against_its_tokens_limit_alike(pair: Pair) -> None:
    usdx, weth = _usdx(pair), pair.stage.demo.token("WETHX")
    router = pair.stage.demo.router
    granted = pair.enable(
        [permission(usdx, APPROVE, (EQ, 0, [word(router)])), permission(router, SWAP)],
        tokenLimits=[_limit(usdx, 10 * USDX)],
    )
    assert granted == (ALLOW, ALLOW)
    deadline = pair.stage.chain.block_timestamp() + HOUR

    def swap(token_in: str, token_out: str, amount: int) -> Call:
        return _call(router, SWAP, amount, 0, [token_in, token_out], pair.recipient, deadline)

    approve = _call(usdx, APPROVE, router, 5 * USDX)
    tokens = (usdx, weth)
    assert pair.relayed(approve, swap(usdx, weth, 6 * USDX), tokens=tokens) == (
        "TOKEN_LIMIT_EXCEEDED"
    )
    assert pair.relayed(approve, swap(usdx, weth, 5 * USDX), tokens=tokens) == ALLOW
    # A token without a limit of its own has nothing to spend under token limits.
    assert pair.relayed(swap(weth, usdx, 1), tokens=tokens) == "TOKEN_LIMIT_EXCEEDED"


def test_native_value_is_capped_per_call_and_limited_per_window_alike(pair: Pair) -> None:
    payee = Key().address
    granted = pair.enable([permission(payee, PING, max_value=60)], valueLimit=100, valuePeriod=HOUR)
    assert granted == (ALLOW, ALLOW)
    ping = parse_signature(PING)

    def pay(value: int) -> Call:
        return Call(payee, value, encode_call(ping, ()))

    assert pair.relayed(pay(61)) == "VALUE_CAP_EXCEEDED"
    assert pair.relayed(pay(60)) == ALLOW
    assert pair.relayed(pay(30), pay(11)) == "VALUE_LIMIT_EXCEEDED"
    assert pair.relayed(pay(30), pay(10)) == ALLOW
    assert pair.relayed(pay(1)) == "VALUE_LIMIT_EXCEEDED"
    pair.stage.chain.time_travel(HOUR)
    assert pair.relayed(pay(60), pay(40)) == ALLOW
    assert pair.stage.chain.get_balance(payee) == 2 * 200


def test_no_value_limit_means_no_native_value_alike(pair: Pair) -> None:
    payee = Key().address
    assert pair.enable([permission(payee, PING, max_value=ONE_ETH)]) == (ALLOW, ALLOW)
    assert pair.relayed(Call(payee, 1, encode_call(parse_signature(PING), ()))) == (
        "VALUE_LIMIT_EXCEEDED"
    )


def test_the_use_count_runs_out_alike(pair: Pair) -> None:
    assert pair.enable([permission(_usdx(pair), TRANSFER)], maxUses=2) == (ALLOW, ALLOW)
    assert pair.relayed(_pay(pair, 1), _pay(pair, 1)) == ALLOW  # a batch is one use
    assert pair.relayed(_pay(pair, 1)) == ALLOW
    assert pair.relayed(_pay(pair, 1)) == "USAGE_LIMIT_REACHED"


def test_limits_hold_alike_for_user_operations(pair: Pair) -> None:
    """SessionAccount refuses rules 6-8 when the operation executes, the module when it
    validates it (with the time the operation claims): the same codes, step by step."""
    usdx = _usdx(pair)
    granted = pair.enable(
        [permission(usdx, TRANSFER)], tokenLimits=[_limit(usdx, 10 * USDX, HOUR)], maxUses=2
    )
    assert granted == (ALLOW, ALLOW)

    def op(amount: int) -> tuple[str, str]:
        return pair.user_op(_pay(pair, amount), claimed_time=pair.stage.chain.block_timestamp() + 1)

    assert op(8 * USDX) == (ALLOW, ALLOW)
    assert op(3 * USDX) == ("TOKEN_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED")
    pair.stage.chain.time_travel(HOUR)
    assert op(10 * USDX) == (ALLOW, ALLOW)
    assert op(1) == ("TOKEN_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED")  # rule 7 before rule 8
    assert op(0) == ("USAGE_LIMIT_REACHED", "USAGE_LIMIT_REACHED")
    assert pair.stage.token_balance(pair.account.address) == pair.stage.token_balance(
        pair.module.address
    )


def test_an_operation_claiming_another_window_is_not_run_and_charges_nothing(
    pair: Pair,
) -> None:
    """The claimed time picks the window charged; the validity the module returns is that
    window, so an operation claiming the next hour's window is not due now (AA22), one
    claiming a window after the session's end can never run (AA24: no validity range, so no
    far window's refill can be charged now), and one claiming none (window 0) is stale once
    the first hour has passed."""
    usdx = _usdx(pair)
    limits = [_limit(usdx, 10 * USDX, HOUR)]
    assert pair.enable([permission(usdx, TRANSFER)], tokenLimits=limits) == (ALLOW, ALLOW)
    now = pair.stage.chain.block_timestamp()
    later = pair.module.session_op(_pay(pair, 10 * USDX), claimed_time=now + 2 * HOUR)
    assert handle_op_refusal(pair.stage, later).reason == "AA22 expired or not due"
    beyond = pair.module.session_op(_pay(pair, 10 * USDX), claimed_time=2**48 - 1)
    assert handle_op_refusal(pair.stage, beyond).reason == "AA24 signature error"
    pair.stage.chain.time_travel(HOUR)
    unclaimed = pair.module.session_op(_pay(pair, 10 * USDX))
    assert handle_op_refusal(pair.stage, unclaimed).reason == "AA22 expired or not due"
    now = pair.stage.chain.block_timestamp()
    assert pair.user_op(_pay(pair, 10 * USDX), claimed_time=now + 1) == (ALLOW, ALLOW)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("a token twice", "ENVELOPE_MALFORMED"),
        ("an unmeasured function on a limited token", "TOKEN_FUNCTION_UNDEFINED"),
    ],
)
def test_a_limit_grant_sessionaccount_refuses_the_module_refuses_alike(
    pair: Pair, case: str, reason: str
) -> None:
    usdx = _usdx(pair)
    if case == "a token twice":
        granted = pair.enable(
            [permission(usdx, TRANSFER)], tokenLimits=[_limit(usdx, 1), _limit(usdx, 2)]
        )
    else:
        granted = pair.enable([permission(usdx, "burn(uint256)")], tokenLimits=[_limit(usdx, 1)])
    assert granted == (reason, reason)


def test_an_uninstall_and_reinstall_start_the_limits_clean(pair: Pair) -> None:
    """Limits and uses are keyed by the epoch and the grant's generation: after the owner
    uninstalls and reinstalls the module and grants again, the new grant starts full, and
    the old session is gone."""
    usdx = _usdx(pair)
    module = pair.module
    grant = module.grant(permissions=[permission(usdx, TRANSFER)], valid_for=3600)
    grant["envelope"].update(tokenLimits=[_limit(usdx, 10 * USDX)], maxUses=1)
    module.enable(grant)
    deadline = pair.stage.chain.block_timestamp() + 600
    relay = pair.stage.chain, pair.stage.deployer, module.module_address
    spend = module.relayed_call_data(_pay(pair, 10 * USDX), nonce=1, deadline=deadline)
    assert transact(*relay[:2], to=relay[2], data=spend).succeeded
    again = module.relayed_call_data(_pay(pair, 1), nonce=2, deadline=deadline)
    assert simulate(pair.stage, module.module_address, again) == "TOKEN_LIMIT_EXCEEDED"
    for module_type in (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR):
        module.uninstall(module_type)
    for module_type in (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR):
        module.install(module_type)
    assert simulate(pair.stage, module.module_address, again) == "SESSION_UNKNOWN"
    fresh = module.grant(permissions=[permission(usdx, TRANSFER)], valid_for=3600)
    fresh["envelope"].update(tokenLimits=[_limit(usdx, 10 * USDX)], maxUses=1)
    module.enable(fresh)
    full = module.relayed_call_data(_pay(pair, 10 * USDX), nonce=3, deadline=deadline)
    assert transact(*relay[:2], to=relay[2], data=full).succeeded
    assert simulate(pair.stage, module.module_address, again) == "TOKEN_LIMIT_EXCEEDED"


def test_a_v3_swaps_input_counts_against_its_tokens_limit_alike(pair: Pair) -> None:
    """``exactInputSingle`` (the deadline variant): ``params.amountIn`` of ``params.tokenIn``
    counts, on both, with the approval that pays for it."""
    usdx, weth = _usdx(pair), pair.stage.demo.token("WETHX")
    router = pair.stage.demo.router
    granted = pair.enable(
        [permission(usdx, APPROVE, (EQ, 0, [word(router)])), permission(router, SWAP_V3)],
        tokenLimits=[_limit(usdx, 10 * USDX, HOUR)],
    )
    assert granted == (ALLOW, ALLOW)
    deadline = pair.stage.chain.block_timestamp() + HOUR

    def swap(amount: int) -> Call:
        params = (usdx, weth, 3000, pair.recipient, deadline, amount, 0, 0)
        return _call(router, SWAP_V3, params)

    tokens = (usdx, weth)
    assert pair.relayed(_call(usdx, APPROVE, router, 4 * USDX), swap(4 * USDX), tokens=tokens) == (
        ALLOW
    )
    assert pair.relayed(_call(usdx, APPROVE, router, USDX), swap(2 * USDX), tokens=tokens) == (
        "TOKEN_LIMIT_EXCEEDED"
    )
    assert pair.relayed(_call(usdx, APPROVE, router, USDX), swap(USDX), tokens=tokens) == ALLOW
    assert pair.relayed(swap(0), tokens=tokens) == ALLOW


def test_transfer_from_counts_only_when_the_account_pays_alike(pair: Pair) -> None:
    """``transferFrom(from, to, amount)`` on a limited token counts when ``from`` is the
    account (each side names its own account), and not otherwise (the token then refuses
    it on both, with the same message)."""
    usdx = _usdx(pair)
    transfer_from = "transferFrom(address,address,uint256)"
    granted = pair.enable(
        [permission(usdx, APPROVE), permission(usdx, transfer_from)],
        tokenLimits=[_limit(usdx, 10 * USDX)],
    )
    assert granted == (ALLOW, ALLOW)

    def own(account: str, amount: int) -> tuple[Call, ...]:
        return (
            _call(usdx, APPROVE, account, amount),
            _call(usdx, transfer_from, account, pair.recipient, amount),
        )

    def both(amount: int) -> str:
        return pair.relayed(
            *own(pair.account.address, amount),
            tokens=(usdx,),
            module_calls=own(pair.module.address, amount),
        )

    assert both(6 * USDX) == "TOKEN_LIMIT_EXCEEDED"  # approve 6 + transferFrom 6 > 10
    assert both(5 * USDX) == ALLOW
    assert both(1) == "TOKEN_LIMIT_EXCEEDED"
    stranger = Key().address
    not_ours = _call(usdx, transfer_from, stranger, pair.recipient, 20 * USDX)
    verdicts = pair.simulate_relayed(not_ours)
    assert verdicts[0] == verdicts[1] != "TOKEN_LIMIT_EXCEEDED"
