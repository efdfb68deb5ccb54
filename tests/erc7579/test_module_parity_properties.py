"""Property: for generated argument rules and generated calls, SessionAccount and SessionWard's
ERC-7579 module (on the OpenZeppelin account) give the same verdict, ALLOW or the same reason
code, both for the grant (an unknown operator, a rule without its operands: refused alike) and
for every call: relayed (``execute_with_session``, simulated on both) and, for the first call of
each example, as a session user operation through the EntryPoint. So SessionAccount allows a
call exactly when the module allows it.

Rules are drawn over ``transfer(address to, uint256 amount)`` of USDX (words 0 and 1, word 2
past the call, or off-chain only) with every operator and operands from small pools the calls
also draw from, so both outcomes are frequent. ``SESSIONWARD_MODULE_PARITY_EXAMPLES`` sets the
example count (25 by default, CI-sized).
"""

from __future__ import annotations

import os

import pytest
from erc4337_support import USDX, Key, Stage
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from module_support import deploy_module
from parity_support import ALLOW, Pair, new_pair, permission, word

from sessionward.chain.contracts import DeployedContract
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

TRANSFER = "transfer(address,uint256)"
EXAMPLES = int(os.environ.get("SESSIONWARD_MODULE_PARITY_EXAMPLES", "25"))
ADDRESSES = tuple(Key().address for _ in range(3))
AMOUNTS = (0, 1, 5 * USDX, 5 * USDX + 1, 10 * USDX)
OFFSETS = (0, 1, 1, 2, 0xFFFF)  # to, amount (twice as likely), past the call, off-chain only
OPERATORS = (0, 1, 2, 3, 4, 5) * 4 + (6,)  # eq ne lte gte in not_in; rarely 6 (unknown)


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture(scope="module")
def pair(stage: Stage, module: DeployedContract, rpc: JsonRpcClient, account_kind: str) -> Pair:
    return new_pair(stage, module, rpc, account_kind)


def _operand_pool(offset: int) -> tuple[bytes, ...]:
    if offset == 0:
        return tuple(word(a) for a in ADDRESSES)
    return tuple(word(a) for a in AMOUNTS)


@st.composite
def rules(draw: st.DrawFn) -> list[tuple[int, int, list[bytes]]]:
    drawn = []
    for _ in range(draw(st.integers(0, 4))):
        offset = draw(st.sampled_from(OFFSETS))
        op = draw(st.sampled_from(OPERATORS))
        pool = _operand_pool(offset)
        if op in (4, 5):
            values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            if draw(st.integers(0, 19)) == 0:
                values = []  # refused at grant time, on both
        else:
            values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=1))
            if draw(st.integers(0, 19)) == 0:
                values = values * 2  # refused at grant time, on both
        drawn.append((op, offset, values))
    return drawn


transfers = st.lists(
    st.tuples(st.sampled_from(ADDRESSES), st.sampled_from(AMOUNTS)), min_size=1, max_size=3
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(granted=rules(), batches=st.lists(transfers, min_size=1, max_size=3))
def test_sessionaccount_allows_exactly_what_the_module_allows(
    pair: Pair, granted: list[tuple[int, int, list[bytes]]], batches: list[list[tuple[str, int]]]
) -> None:
    usdx = pair.stage.demo.token("USDX")
    enabled = pair.enable([permission(usdx, TRANSFER, *granted)])
    note(f"rules {granted}: enable {enabled}")
    assert enabled[0] == enabled[1]
    event(f"enable {enabled[0]}")
    if enabled[0] != ALLOW:
        return
    for i, batch in enumerate(batches):
        calls = [Call(usdx, 0, encode_call(parse_signature(TRANSFER), t)) for t in batch]
        verdicts = pair.simulate_relayed(*calls)
        note(f"calls {batch}: relayed {verdicts}")
        assert verdicts[0] == verdicts[1]
        event(f"call {verdicts[0]}")
        if i == 0:
            assert pair.user_op(*calls) == verdicts


LIMITS = (0, 5 * USDX, 10 * USDX, 20 * USDX)
PERIODS = (0, 600)
VALUE_LIMITS = (0, 50, 100)
VALUE_CAPS = (0, 30, 60)
USES = (0, 1, 2, 3)
SPENDS = (0, 1, USDX, 3 * USDX, 5 * USDX)
VALUES = (0, 0, 10, 30, 31, 60)
JUMPS = (0, 0, 1, 599, 600)
PAYEE = Key().address
FRIEND = ADDRESSES[0]
LIMIT_EXAMPLES = int(os.environ.get("SESSIONWARD_MODULE_LIMIT_PARITY_EXAMPLES", "15"))

step_calls = st.lists(
    st.one_of(
        st.tuples(st.just("transfer"), st.sampled_from(SPENDS)),
        st.tuples(st.just("approve"), st.sampled_from(SPENDS)),
        st.tuples(st.just("ping"), st.sampled_from(VALUES)),
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=LIMIT_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.sampled_from(LIMITS),
    period=st.sampled_from(PERIODS),
    value_limit=st.sampled_from(VALUE_LIMITS),
    value_period=st.sampled_from(PERIODS),
    value_cap=st.sampled_from(VALUE_CAPS),
    uses=st.sampled_from(USES),
    steps=st.lists(st.tuples(step_calls, st.sampled_from(JUMPS)), min_size=1, max_size=5),
)
def test_limits_run_out_and_refill_identically(
    pair: Pair,
    limit: int,
    period: int,
    value_limit: int,
    value_period: int,
    value_cap: int,
    uses: int,
    steps: list[tuple[list[tuple[str, int]], int]],
) -> None:
    """Generated token limits (with or without a refill period), native value limits and caps,
    use counts, then a generated sequence of batches and time jumps: every step, mined on
    both, gets the same verdict (``Pair.relayed``: a refused step changes nothing)."""
    usdx = pair.stage.demo.token("USDX")
    enabled = pair.enable(
        [
            permission(usdx, TRANSFER),
            permission(usdx, "approve(address,uint256)"),
            permission(PAYEE, "ping()", max_value=value_cap),
        ],
        tokenLimits=[{"token": usdx, "limit": limit, "period": period}],
        valueLimit=value_limit,
        valuePeriod=value_period,
        maxUses=uses,
    )
    assert enabled == (ALLOW, ALLOW)
    signatures = {
        "transfer": parse_signature(TRANSFER),
        "approve": parse_signature("approve(address,uint256)"),
        "ping": parse_signature("ping()"),
    }
    for calls, jump in steps:
        built = []
        for kind, amount in calls:
            if kind == "ping":
                built.append(Call(PAYEE, amount, encode_call(signatures["ping"], ())))
            else:
                args = (pair.recipient if kind == "transfer" else FRIEND, amount)
                built.append(Call(usdx, 0, encode_call(signatures[kind], args)))
        verdict = pair.relayed(*built, tokens=(usdx,))
        note(f"{calls} -> {verdict}")
        event(f"step {verdict}")
        if jump:
            pair.stage.chain.time_travel(jump)
