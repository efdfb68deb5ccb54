"""Attacks on "the chain is the boundary" at grant and decision time (issue 12.3-12.5).

A compromised service holds the session key and ignores its own policy: every test below is what
it would try with the seed envelope (``swap.execute``, ``maxValueUsd: 500``, one router) or with
envelopes an app might ask for. Each is refused with its exact reason code, and nothing is
charged (``assert_refused``: the usage is untouched and the charge could not be reserved).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from domain_support import (
    ACCOUNT,
    MERCHANT,
    MULTISEND,
    ROUTER_A,
    STRANGER,
    SWAP_V2,
    TOKEN_X,
    TOKEN_Y,
    TRANSFER,
    USDC,
    USDC_UNIT,
    WETH,
    apply_charges,
    assert_refused,
    call_request,
    compile_scope,
    exact_input_single,
    swap_v2,
    transfer,
    usd,
)

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, account_execution, encode_multisend, unwrap_execution
from sessionward.domain.catalog import Catalog
from sessionward.domain.decision import Decision, GrantRefused
from sessionward.domain.envelope import Envelope, EnvelopeMalformed
from sessionward.domain.grant import (
    MAX_TOKEN_LIMIT,
    MAX_VALUE_LIMIT,
    MAX_VALUE_PER_CALL,
    Scope,
    validate_grant,
)
from sessionward.domain.prices import DEFAULT_PRICES, Price
from sessionward.domain.usage import Usage
from sessionward.reasons import ReasonCode

Decide = Callable[..., Decision]
LIMIT_USDC = 500 * USDC_UNIT


@pytest.fixture
def seed(catalog: Catalog) -> Scope:
    """The seed envelope as the service compiles it (with its price source)."""
    return compile_scope(catalog, prices=DEFAULT_PRICES)


# --- 12.3: the seed's USD cap is signed as on-chain token limits ----------------------------


def test_the_seed_grant_signs_token_limits_worth_the_usd_cap_at_the_grant_prices(
    seed: Scope,
) -> None:
    limits = {t["token"]: t["limit"] for t in seed.envelope_message()["tokenLimits"]}
    assert limits[USDC] == LIMIT_USDC
    assert limits[WETH] == 500 * 10**18 // 3000  # 0.1666... WETH at 3,000 USD
    assert set(limits) == set(DEFAULT_PRICES.priced_tokens(1))
    # Each limit is the largest amount the cap buys: one base unit more is worth more.
    for token, limit in limits.items():
        assert DEFAULT_PRICES.usd_value(1, token, limit) <= usd(500)  # type: ignore[operator]
        assert DEFAULT_PRICES.usd_value(1, token, limit + 1) > usd(500)  # type: ignore[operator]
    # No valueLimit was asked for: the cap never grants native value.
    assert seed.envelope_message()["valueLimit"] == 0


def test_a_tighter_token_limit_of_the_owner_is_kept_and_a_looser_one_tightened(
    catalog: Catalog,
) -> None:
    scope = compile_scope(
        catalog,
        prices=DEFAULT_PRICES,
        tokenLimits=[
            {"token": USDC, "limit": 10 * USDC_UNIT, "period": 86400},
            {"token": WETH, "limit": 10**18},
        ],
        valueLimit={"limit": str(10**18)},
    )
    limits = {t.token: t for t in scope.envelope.token_limits}
    assert (limits[USDC].limit, limits[USDC].period) == (10 * USDC_UNIT, 86400)
    assert limits[WETH].limit == 500 * 10**18 // 3000
    assert scope.envelope.value_limit is not None
    assert scope.envelope.value_limit.limit == 500 * 10**18 // 3000


def test_the_converted_envelope_compiles_to_the_same_grant_without_prices(
    catalog: Catalog, seed: Scope
) -> None:
    # The service stores scope.envelope and recompiles it later without a price source: the
    # limits are in the envelope itself, so the grant (and its digest) cannot drift.
    again = validate_grant(
        Envelope.from_json(seed.envelope.to_json()),
        catalog=catalog,
        account=ACCOUNT,
        chain_id=1,
        now=seed.valid_after,
    )
    assert again.envelope_message() == seed.envelope_message()


def test_a_usd_cap_on_a_token_without_price_is_refused_at_grant(catalog: Catalog) -> None:
    with pytest.raises(GrantRefused) as refused:
        compile_scope(
            catalog,
            prices=DEFAULT_PRICES,
            capabilities=["erc20.transfer"],
            allowedDestinations=[TOKEN_X, MERCHANT],
        )
    assert [(v.code, v.rule) for v in refused.value.violations] == [
        (ReasonCode.USD_PRICE_UNKNOWN, f"tokenLimits[{TOKEN_X}]")
    ]


def test_a_compromised_service_drives_the_seed_swap_to_its_limit_and_no_further(
    seed: Scope, decide: Decide
) -> None:
    at_limit = decide(call_request(ROUTER_A, swap_v2(LIMIT_USDC)), seed)
    assert at_limit.allowed
    spent = apply_charges(Usage(), at_limit.charges)
    before = dict(spent.counters)
    one_more = decide(call_request(ROUTER_A, swap_v2(1)), seed, spent)
    assert_refused(one_more, ReasonCode.TOKEN_LIMIT_EXCEEDED, usage=spent, before=before)
    assert_refused(one_more, ReasonCode.USD_LIMIT_EXCEEDED, usage=spent, before=before)


@pytest.mark.parametrize("build", [swap_v2, exact_input_single])
def test_a_swap_beyond_the_cap_is_refused_by_the_token_limit_and_the_usd_cap(
    seed: Scope, decide: Decide, build: Callable[..., bytes]
) -> None:
    usage = Usage()
    decision = decide(call_request(ROUTER_A, build(LIMIT_USDC + 1)), seed, usage)
    assert {v.code for v in decision.violations} == {
        ReasonCode.TOKEN_LIMIT_EXCEEDED,
        ReasonCode.USD_LIMIT_EXCEEDED,
    }
    assert_refused(decision, ReasonCode.TOKEN_LIMIT_EXCEEDED, usage=usage, before={})


@pytest.mark.parametrize("recipient", [ROUTER_A, STRANGER, MERCHANT])
def test_a_swap_whose_output_goes_anywhere_but_the_account_is_refused(
    seed: Scope, decide: Decide, recipient: str
) -> None:
    for data, arg in (
        (swap_v2(USDC_UNIT, to=recipient), "to"),
        (exact_input_single(USDC_UNIT, recipient=recipient), "params.recipient"),
    ):
        decision = decide(call_request(ROUTER_A, data), seed)
        (violation,) = decision.violations
        assert violation.code is ReasonCode.ARG_RULE_VIOLATED
        assert violation.rule.endswith(f".rules[{arg} eq {ACCOUNT}]")


def test_a_swap_of_a_token_no_limit_measures_is_refused(seed: Scope, decide: Decide) -> None:
    # The input token must be one the grant limits (on chain too for exactInputSingle).
    decision = decide(call_request(ROUTER_A, exact_input_single(1, token_in=TOKEN_Y)), seed)
    assert ReasonCode.ARG_RULE_VIOLATED in decision.reasons
    assert any("params.tokenIn in [" in v.rule for v in decision.violations)
    v2 = decide(call_request(ROUTER_A, swap_v2(1, path=(TOKEN_Y, WETH))), seed)
    assert any(
        v.code is ReasonCode.ARG_RULE_VIOLATED and "path[0] in [" in v.rule for v in v2.violations
    )


# --- 12.4: nothing the owner did not see reaches the chain ----------------------------------


def refusal(catalog: Catalog, **overrides: Any) -> list[tuple[ReasonCode, str]]:
    with pytest.raises(GrantRefused) as refused:
        compile_scope(catalog, **overrides)
    return [(v.code, v.rule) for v in refused.value.violations]


LIMITED = {
    "capabilities": ["erc20.transfer"],
    "allowedDestinations": [USDC, MERCHANT],
    "tokenLimits": [{"token": USDC, "limit": 100 * USDC_UNIT}],
    "maxValueUsd": None,
}


@pytest.mark.parametrize(
    "function",
    [
        "transferAndCall(address dest,uint256 amount)",
        "transferAndCall(address to,uint256 value,bytes data)",
        "burn(uint256 amount)",
        "send(address recipient,uint256 amount,bytes data)",
    ],
)
def test_a_custom_function_on_a_limited_token_is_refused_at_grant(
    catalog: Catalog, function: str
) -> None:
    permission = {"target": USDC, "function": function}
    assert refusal(catalog, **LIMITED, permissions=[permission]) == [
        (ReasonCode.TOKEN_FUNCTION_UNDEFINED, "permissions[0].function")
    ]


def test_a_catalog_function_on_a_limited_token_stays_grantable(catalog: Catalog) -> None:
    permission = {
        "target": USDC,
        "function": "transfer(address to,uint256 amount)",
        "rules": [{"arg": "amount", "op": "lte", "value": 5}],
    }
    scope = compile_scope(catalog, **LIMITED, permissions=[permission])
    assert (USDC, TRANSFER.selector) in scope.permissions


@pytest.mark.parametrize(
    "function",
    [
        "increaseApproval(address spender,uint256 addedValue)",
        "approveAndCall(address spender,uint256 amount,bytes data)",
        "decreaseAllowance(address spender,uint256 subtractedValue)",
    ],
)
@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"arg": "spender", "op": "eq", "value": MERCHANT}],  # no amount bound
        [{"arg": "1", "op": "lte", "value": 1000}],  # no named spender
        [
            {"arg": "spender", "op": "in", "values": [MERCHANT, STRANGER]},
            {"arg": "1", "op": "lte", "value": 1000},
        ],
        [
            {"arg": "spender", "op": "eq", "value": MERCHANT},
            {"arg": "1", "op": "lte", "value": str(2**256 - 1)},  # "bounded" by the maximum
        ],
    ],
)
def test_an_approval_look_alike_needs_a_named_spender_and_a_bounded_amount(
    catalog: Catalog, function: str, rules: list[dict[str, Any]]
) -> None:
    permission = {"target": TOKEN_X, "function": function, "rules": rules}
    assert refusal(
        catalog,
        allowedDestinations=[ROUTER_A, TOKEN_X],
        maxValueUsd=None,
        tokenLimits=[{"token": USDC, "limit": 1}],
        permissions=[permission],
    ) == [(ReasonCode.APPROVAL_UNBOUNDED, "permissions[0].rules")]


def test_an_approval_look_alike_with_spender_and_bound_is_granted_and_enforced(
    catalog: Catalog, decide: Decide
) -> None:
    function = parse_signature("increaseApproval(address spender,uint256 addedValue)")
    permission = {
        "target": TOKEN_X,
        "function": "increaseApproval(address spender,uint256 addedValue)",
        "rules": [
            {"arg": "spender", "op": "eq", "value": MERCHANT},
            {"arg": "addedValue", "op": "lte", "value": 1000},
        ],
    }
    scope = compile_scope(
        catalog,
        allowedDestinations=[ROUTER_A, TOKEN_X],
        maxValueUsd=None,
        tokenLimits=[{"token": USDC, "limit": 1}],
        permissions=[permission],
    )
    ok = decide(call_request(TOKEN_X, encode_call(function, (MERCHANT, 1000))), scope)
    assert ok.allowed
    for args in ((MERCHANT, 2**256 - 1), (STRANGER, 1)):
        denied = decide(call_request(TOKEN_X, encode_call(function, args)), scope)
        assert denied.reasons == (ReasonCode.ARG_RULE_VIOLATED,)


def test_an_approval_look_alike_on_a_limited_token_is_refused_even_when_bounded(
    catalog: Catalog,
) -> None:
    # Bounded per call is not bounded in total: the limit could not count it.
    permission = {
        "target": USDC,
        "function": "increaseApproval(address spender,uint256 addedValue)",
        "rules": [
            {"arg": "spender", "op": "eq", "value": MERCHANT},
            {"arg": "addedValue", "op": "lte", "value": 1},
        ],
    }
    assert refusal(catalog, **LIMITED, permissions=[permission]) == [
        (ReasonCode.TOKEN_FUNCTION_UNDEFINED, "permissions[0].function")
    ]


def test_two_permissions_on_one_target_and_selector_are_refused_not_merged(
    catalog: Catalog,
) -> None:
    first = {
        "target": USDC,
        "function": "transfer(address to,uint256 amount)",
        "rules": [{"arg": "to", "op": "eq", "value": MERCHANT}],
    }
    # Same selector, other argument names and another rule: only one could be signed.
    second = {
        "target": USDC,
        "function": "transfer(address dest,uint256 value)",
        "rules": [{"arg": "value", "op": "lte", "value": 5}],
    }
    assert refusal(catalog, **LIMITED, permissions=[first, second]) == [
        (ReasonCode.PERMISSION_OVERLAP, "permissions[1].function")
    ]
    # Identical duplicates never get that far: the envelope itself is malformed.
    with pytest.raises(EnvelopeMalformed):
        compile_scope(catalog, **LIMITED, permissions=[first, first])


def test_an_explicit_permission_over_a_capability_narrows_it_exactly(
    catalog: Catalog, decide: Decide
) -> None:
    # The documented merge: the explicit rules plus the catalog's implicit rules, nothing else.
    explicit = {
        "target": ROUTER_A,
        "function": (
            "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,"
            "address to,uint256 deadline)"
        ),
        "rules": [{"arg": "amountIn", "op": "lte", "value": 10 * USDC_UNIT}],
    }
    scope = compile_scope(catalog, prices=DEFAULT_PRICES, permissions=[explicit])
    rules = scope.permissions[(ROUTER_A, SWAP_V2.selector)].rules
    assert [(r.arg, r.op.value, r.implicit) for r in rules] == [
        ("amountIn", "lte", False),
        ("to", "eq", True),
        ("path[0]", "in", True),
    ]
    assert decide(call_request(ROUTER_A, swap_v2(10 * USDC_UNIT)), scope).allowed
    too_much = decide(call_request(ROUTER_A, swap_v2(10 * USDC_UNIT + 1)), scope)
    assert too_much.reasons == (ReasonCode.ARG_RULE_VIOLATED,)


# --- 12.5: a MultiSend is executed as decided -----------------------------------------------


def test_a_multisend_is_decided_and_executed_as_the_same_calls(seed: Scope, decide: Decide) -> None:
    records = [Call(ROUTER_A, 0, swap_v2(100 * USDC_UNIT)), Call(ROUTER_A, 0, swap_v2(USDC_UNIT))]
    data = encode_multisend(records)
    decision = decide(call_request(MULTISEND, data), seed)
    assert decision.allowed
    mode, execution = account_execution(
        account=ACCOUNT, to=MULTISEND, value=0, data=data, multisend=frozenset({MULTISEND})
    )
    assert unwrap_execution(mode, execution) == tuple(records)
    assert [i.to for i in decision.intents] == [ROUTER_A, ROUTER_A]
    # The same records beyond the cap: refused as a whole, nothing executed.
    over = encode_multisend([*records, Call(ROUTER_A, 0, swap_v2(LIMIT_USDC))])
    usage = Usage()
    assert_refused(
        decide(call_request(MULTISEND, over), seed),
        ReasonCode.TOKEN_LIMIT_EXCEEDED,
        usage=usage,
        before={},
    )


def test_a_multisend_with_an_outsider_recipient_is_refused_at_its_record(
    seed: Scope, decide: Decide
) -> None:
    data = encode_multisend(
        [Call(ROUTER_A, 0, swap_v2(USDC_UNIT)), Call(ROUTER_A, 0, swap_v2(1, to=STRANGER))]
    )
    decision = decide(call_request(MULTISEND, data), seed)
    (violation,) = decision.violations
    assert (violation.code, violation.call_index) == (ReasonCode.ARG_RULE_VIOLATED, 1)


def test_a_transfer_of_a_limited_token_counts_once_in_a_multisend(
    catalog: Catalog, decide: Decide
) -> None:
    scope = compile_scope(catalog, **LIMITED)
    half = Call(USDC, 0, transfer(MERCHANT, 50 * USDC_UNIT))
    assert decide(call_request(MULTISEND, encode_multisend([half, half])), scope).allowed
    over = encode_multisend([half, half, Call(USDC, 0, transfer(MERCHANT, 1))])
    assert decide(call_request(MULTISEND, over), scope).reasons == (
        ReasonCode.TOKEN_LIMIT_EXCEEDED,
    )


# --- amounts the account cannot hold are refused, not clamped -------------------------------

SESSIONS_VY = Path(__file__).resolve().parents[2] / "src/sessionward/contracts/sessions.vy"


def test_the_largest_amounts_equal_what_the_contract_stores() -> None:
    constants = dict(
        re.findall(
            r"^([A-Z][A-Z0-9_]*): constant\([^)]*\) = (.+?)\s*(?:#.*)?$",
            SESSIONS_VY.read_text(),
            re.MULTILINE,
        )
    )
    for contract_name, domain_value in (
        ("MAX_VALUE_CAP", MAX_VALUE_PER_CALL),
        ("MAX_NATIVE_LIMIT", MAX_VALUE_LIMIT),
        ("MAX_TOKEN_REMAINING", MAX_TOKEN_LIMIT),
    ):
        match = re.fullmatch(r"2\*\*(\d+) - 1", constants[contract_name])
        assert match is not None, constants[contract_name]
        assert domain_value == 2 ** int(match.group(1)) - 1, contract_name


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        (
            {"tokenLimits": [{"token": USDC, "limit": str(MAX_TOKEN_LIMIT + 1)}]},
            f"tokenLimits[{USDC}]",
        ),
        ({"valueLimit": {"limit": str(MAX_VALUE_LIMIT + 1)}}, "valueLimit.limit"),
        (
            {
                "allowedDestinations": [ROUTER_A, TOKEN_X],
                "permissions": [
                    {
                        "target": TOKEN_X,
                        "function": "claim(uint256 id)",
                        "maxValuePerCall": str(MAX_VALUE_PER_CALL + 1),
                    }
                ],
            },
            f"permissions[{TOKEN_X}.claim(uint256)].maxValuePerCall",
        ),
    ],
)
def test_an_amount_the_account_would_clamp_is_refused_at_grant(
    catalog: Catalog, overrides: dict[str, Any], rule: str
) -> None:
    assert (ReasonCode.ENVELOPE_MALFORMED, rule) in refusal(catalog, **overrides)


def test_a_usd_cap_on_a_nearly_free_token_converts_to_the_largest_storable_limit(
    catalog: Catalog,
) -> None:
    cheap = DEFAULT_PRICES.with_prices({(1, USDC): Price(Decimal("1e-60"), 6)})
    scope = compile_scope(catalog, prices=cheap, valueLimit={"limit": str(MAX_VALUE_LIMIT)})
    limits = {t.token: t.limit for t in scope.envelope.token_limits}
    assert limits[USDC] == MAX_TOKEN_LIMIT
