"""Specification of the policy engine (sessionward.domain.policy.evaluate), with real calldata.

Every refusal asserts its exact ReasonCode and that nothing changed: the decision is not allowed,
carries the violation, the usage passed in is untouched and (for limits) its charge could not be
reserved. Scenarios follow docs/design.md section 4 and docs/protocol.md section 4.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from domain_support import (
    ACCOUNT,
    DAI,
    ETHER,
    MAX_UINT256,
    MERCHANT,
    MULTISEND,
    NOW,
    OTHER_ACCOUNT,
    PERMIT2,
    ROUTER_A,
    ROUTER_B,
    SEED_EXPIRY,
    STRANGER,
    SWAP_V2,
    TOKEN_X,
    TRANSFER_OWNERSHIP,
    USDC,
    USDC_UNIT,
    WETH,
    WITHDRAW,
    apply_charges,
    approve,
    assert_refused,
    batch_request,
    call_request,
    deposit,
    exact_input_single,
    increase_allowance,
    permit,
    permit2_approve,
    reservable,
    single_request,
    snapshot,
    swap_v2,
    transfer,
    transfer_from,
    usage_of,
    usd,
)

from sessionward.domain.abi import encode_call
from sessionward.domain.calldata import Call, encode_execute, encode_multisend, mode_batch
from sessionward.domain.catalog import Catalog
from sessionward.domain.decision import Decision
from sessionward.domain.grant import Scope
from sessionward.domain.policy import SessionStatus, SessionView, evaluate
from sessionward.domain.prices import FixedPrices, Price
from sessionward.domain.usage import FEE, NATIVE, RATE, USD, USES, Charge, Usage, token_bucket
from sessionward.domain.values import UINT256_MAX
from sessionward.reasons import ReasonCode

Decide = Callable[..., Decision]
ScopeOf = Callable[..., Scope]

SWAP_100 = swap_v2(100 * USDC_UNIT)
OWNERSHIP = encode_call(TRANSFER_OWNERSHIP, (STRANGER,))

TOKEN_ONLY: dict[str, Any] = {
    "capabilities": [
        "erc20.transfer",
        "erc20.transferFrom",
        "erc20.approve",
        "erc20.increaseAllowance",
        "erc20.permit",
    ],
    "allowedDestinations": [USDC, ROUTER_A, MERCHANT],
    "tokenLimits": [{"token": USDC, "limit": 1000}],
    "maxValueUsd": None,
}


def refused(
    decision: Decision, code: ReasonCode, usage: Usage | None = None, call_index: int | None = None
) -> None:
    """Denied with ``code`` and nothing changed (``decide`` already checked ``usage`` is untouched)."""
    assert_refused(
        decision, code, usage=usage if usage is not None else Usage(), call_index=call_index
    )


def allowed(decision: Decision) -> None:
    assert decision.allowed, decision.violations
    assert decision.reasons == ()


# --- the seed scenarios --------------------------------------------------------------------


def test_a_swap_within_the_cap_is_allowed(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(call_request(ROUTER_A, SWAP_100), scope_of())
    allowed(decision)
    assert decision.action_class == "swap.execute"
    (intent,) = decision.intents
    assert intent.function == SWAP_V2.canonical and intent.arguments[0] == 100 * USDC_UNIT


def test_an_allowed_swap_charges_its_usd_value_and_one_use(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(ROUTER_A, SWAP_100), scope_of())
    assert set(decision.charges) == {
        Charge(USD, 0, usd(100), usd(500), ReasonCode.USD_LIMIT_EXCEEDED),
        Charge(USES, 0, 1, UINT256_MAX, ReasonCode.USAGE_LIMIT_REACHED),
    }
    assert reservable(Usage(), decision.charges)


def test_the_same_swap_on_another_router_is_target_not_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(ROUTER_B, SWAP_100), scope_of())
    refused(decision, ReasonCode.TARGET_NOT_ALLOWED, call_index=0)


def test_a_swap_over_the_usd_cap_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    refused(
        decide(call_request(ROUTER_A, swap_v2(501 * USDC_UNIT)), scope_of()),
        ReasonCode.USD_LIMIT_EXCEEDED,
    )


def test_the_usd_cap_is_cumulative_and_reaching_it_exactly_is_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    spent = usage_of(usd=(0, usd(400)))
    allowed(decide(call_request(ROUTER_A, SWAP_100), scope_of(), spent))
    over = decide(call_request(ROUTER_A, swap_v2(100 * USDC_UNIT + 1)), scope_of(), spent)
    refused(over, ReasonCode.USD_LIMIT_EXCEEDED, spent)


def test_transfer_ownership_is_non_delegable(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(call_request(ROUTER_A, OWNERSHIP), scope_of())
    refused(decision, ReasonCode.NON_DELEGABLE_ACTION, call_index=0)
    assert decision.action_class == "account.ownership"


def test_a_request_for_another_chain_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    refused(
        decide(call_request(ROUTER_A, SWAP_100, chain_id=10), scope_of()), ReasonCode.CHAIN_MISMATCH
    )


def test_a_request_for_another_account_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(call_request(ROUTER_A, SWAP_100, account=OTHER_ACCOUNT), scope_of())
    refused(decision, ReasonCode.ACCOUNT_MISMATCH)


def test_a_swap_at_expiry_is_refused_and_one_second_before_is_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    refused(
        decide(call_request(ROUTER_A, SWAP_100), scope_of(), now=SEED_EXPIRY),
        ReasonCode.SESSION_EXPIRED,
    )
    allowed(decide(call_request(ROUTER_A, SWAP_100), scope_of(), now=SEED_EXPIRY - 1))


@pytest.mark.parametrize(
    "status,code",
    [
        (SessionStatus.REVOKED, ReasonCode.SESSION_REVOKED),
        (SessionStatus.PENDING, ReasonCode.SESSION_PENDING_APPROVAL),
        (SessionStatus.SUSPENDED, ReasonCode.SESSION_SUSPENDED),
    ],
)
def test_a_session_that_is_not_active_is_refused(
    scope_of: ScopeOf,
    decide: Decide,
    active: Callable[..., SessionView],
    status: SessionStatus,
    code: ReasonCode,
) -> None:
    refused(decide(call_request(ROUTER_A, SWAP_100), active(scope_of(), status=status)), code)


@pytest.mark.parametrize(
    "state,code",
    [
        ({"credential_revoked": True}, ReasonCode.CREDENTIAL_REVOKED),
        ({"credential_expires_at": NOW}, ReasonCode.CREDENTIAL_EXPIRED),
        ({"wallet_frozen": True}, ReasonCode.WALLET_FROZEN),
        ({"global_freeze": True}, ReasonCode.GLOBAL_FREEZE),
    ],
)
def test_credential_and_freeze_state_refuse_everything(
    scope_of: ScopeOf,
    decide: Decide,
    active: Callable[..., SessionView],
    state: dict[str, Any],
    code: ReasonCode,
) -> None:
    decision = decide(call_request(ROUTER_A, SWAP_100), active(scope_of(), **state))
    refused(decision, code)
    assert decision.reasons == (code,)


def test_a_credential_is_valid_until_the_second_before_its_expiry(
    scope_of: ScopeOf, decide: Decide, active: Callable[..., SessionView]
) -> None:
    allowed(
        decide(call_request(ROUTER_A, SWAP_100), active(scope_of(), credential_expires_at=NOW + 1))
    )


def test_a_frozen_action_class_is_refused_and_others_are_not(
    scope_of: ScopeOf, decide: Decide, active: Callable[..., SessionView]
) -> None:
    frozen = active(scope_of(), frozen_action_classes=frozenset({"swap.execute"}))
    decision = decide(call_request(ROUTER_A, SWAP_100), frozen)
    refused(decision, ReasonCode.ACTION_CLASS_FROZEN, call_index=0)
    assert decision.violations[0].rule == "freeze[swap.execute]"
    other = active(scope_of(), frozen_action_classes=frozenset({"erc20.approve"}))
    allowed(decide(call_request(ROUTER_A, SWAP_100), other))


def test_an_unknown_session_is_refused(catalog: Catalog) -> None:
    decision = evaluate(call_request(ROUTER_A, SWAP_100), None, Usage(), NOW, catalog=catalog)
    refused(decision, ReasonCode.SESSION_UNKNOWN)


# --- decision-time windows -----------------------------------------------------------------


def test_valid_after_is_inclusive_and_expires_at_exclusive(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(validAfter=NOW + 10)
    request = call_request(ROUTER_A, SWAP_100)
    refused(decide(request, scope, now=NOW + 9), ReasonCode.SESSION_NOT_YET_VALID)
    allowed(decide(request, scope, now=NOW + 10))
    allowed(decide(request, scope, now=SEED_EXPIRY - 1))
    refused(decide(request, scope, now=SEED_EXPIRY), ReasonCode.SESSION_EXPIRED)


def test_a_one_second_window_allows_exactly_one_second(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(validAfter=SEED_EXPIRY - 1)
    request = call_request(ROUTER_A, SWAP_100)
    refused(decide(request, scope, now=SEED_EXPIRY - 2), ReasonCode.SESSION_NOT_YET_VALID)
    allowed(decide(request, scope, now=SEED_EXPIRY - 1))
    refused(decide(request, scope, now=SEED_EXPIRY), ReasonCode.SESSION_EXPIRED)


@pytest.mark.parametrize("offset", [0, 5, 10, 11, 20, 100])
def test_an_inverted_window_allows_nothing_at_any_time(
    scope_of: ScopeOf, decide: Decide, offset: int
) -> None:
    # A scope that could never pass grant validation, in case one reaches the engine anyway.
    scope = dataclasses.replace(scope_of(), valid_after=NOW + 10, expires_at=NOW + 10)
    inverted = dataclasses.replace(scope, valid_after=NOW + 20)
    for broken in (scope, inverted):
        decision = decide(call_request(ROUTER_A, SWAP_100), broken, now=NOW + offset)
        assert not decision.allowed
        assert set(decision.reasons) & {
            ReasonCode.SESSION_NOT_YET_VALID,
            ReasonCode.SESSION_EXPIRED,
        }


# --- execution shape and batch escapes -----------------------------------------------------


def test_a_single_execution_of_a_permitted_call_is_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    allowed(decide(single_request(Call(ROUTER_A, 0, SWAP_100)), scope_of()))


def test_an_empty_batch_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    refused(decide(batch_request([]), scope_of()), ReasonCode.EMPTY_BATCH)


@pytest.mark.parametrize(
    "mode",
    [
        b"\xff" + bytes(31),  # delegatecall
        b"\x01\x01" + bytes(30),  # batch, try
        b"\x00\x01" + bytes(30),  # single, try
        b"\xfe" + bytes(31),  # static call
        b"\x01" + bytes(5) + b"\x00\x00\x00\x01" + bytes(22),  # unknown mode selector
    ],
    ids=["delegatecall", "batch-try", "single-try", "static", "mode-selector"],
)
def test_any_mode_but_plain_single_or_batch_is_refused(
    scope_of: ScopeOf, decide: Decide, mode: bytes
) -> None:
    decision = decide(batch_request([Call(ROUTER_A, 0, SWAP_100)], mode=mode), scope_of())
    refused(decision, ReasonCode.CALL_TYPE_FORBIDDEN)


def test_a_delegatecall_single_execution_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(
        single_request(Call(ROUTER_A, 0, SWAP_100), mode=b"\xff" + bytes(31)), scope_of()
    )
    refused(decision, ReasonCode.CALL_TYPE_FORBIDDEN)


def test_value_sent_along_with_execute_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    request = batch_request([Call(ROUTER_A, 0, SWAP_100)])
    decision = decide(dataclasses.replace(request, value=1), scope_of())
    refused(decision, ReasonCode.CALL_TYPE_FORBIDDEN)


def test_a_direct_self_call_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    refused(decide(call_request(ACCOUNT, OWNERSHIP), scope_of()), ReasonCode.SELF_CALL_FORBIDDEN)


def test_a_batch_call_to_the_account_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(
        batch_request([Call(ROUTER_A, 0, SWAP_100), Call(ACCOUNT, 0, OWNERSHIP)]), scope_of()
    )
    refused(decision, ReasonCode.SELF_CALL_FORBIDDEN, call_index=1)


def test_a_nested_execute_inside_a_batch_is_a_self_call(scope_of: ScopeOf, decide: Decide) -> None:
    inner = encode_execute(mode_batch(), b"")  # never unwrapped: the target alone refuses it
    nested = encode_execute(
        mode_batch(),
        batch_request([Call(ROUTER_A, 0, SWAP_100)]).data[4:],
    )
    for data in (nested, inner):
        decision = decide(
            batch_request([Call(ROUTER_A, 0, SWAP_100), Call(ACCOUNT, 0, data)]), scope_of()
        )
        refused(decision, ReasonCode.SELF_CALL_FORBIDDEN, call_index=1)


def test_a_batch_with_one_call_out_of_scope_is_refused_as_a_whole(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(
        batch_request([Call(ROUTER_A, 0, SWAP_100), Call(ROUTER_B, 0, SWAP_100)]), scope_of()
    )
    refused(decision, ReasonCode.TARGET_NOT_ALLOWED, call_index=1)
    assert [v.call_index for v in decision.violations] == [1]
    assert [i.index for i in decision.intents] == [0, 1]


def test_every_inner_call_of_a_batch_is_checked(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(
        batch_request(
            [
                Call(ROUTER_A, 0, OWNERSHIP),
                Call(ROUTER_A, 0, SWAP_100),
                Call(ROUTER_A, 0, swap_v2(1, to=STRANGER)),
                Call(STRANGER, 0, SWAP_100),
            ]
        ),
        scope_of(),
    )
    assert not decision.allowed
    assert {(v.code, v.call_index) for v in decision.violations} >= {
        (ReasonCode.NON_DELEGABLE_ACTION, 0),
        (ReasonCode.ARG_RULE_VIOLATED, 2),
        (ReasonCode.TARGET_NOT_ALLOWED, 3),
    }
    assert all(v.call_index != 1 for v in decision.violations)


def test_batch_outflows_add_up_against_the_caps(scope_of: ScopeOf, decide: Decide) -> None:
    half = swap_v2(300 * USDC_UNIT)
    decision = decide(batch_request([Call(ROUTER_A, 0, half), Call(ROUTER_A, 0, half)]), scope_of())
    refused(decision, ReasonCode.USD_LIMIT_EXCEEDED)
    (usd_charge,) = (c for c in decision.charges if c.bucket == USD)
    assert usd_charge.amount == usd(600)


def test_multisend_records_are_each_checked(scope_of: ScopeOf, decide: Decide) -> None:
    good = encode_multisend([Call(ROUTER_A, 0, SWAP_100)])
    allowed(decide(call_request(MULTISEND, good), scope_of()))
    bad = encode_multisend([Call(ROUTER_A, 0, SWAP_100), Call(ROUTER_B, 0, SWAP_100)])
    refused(
        decide(call_request(MULTISEND, bad), scope_of()),
        ReasonCode.TARGET_NOT_ALLOWED,
        call_index=1,
    )
    delegate = encode_multisend([Call(ROUTER_A, 0, SWAP_100)], operations=[1])
    refused(decide(call_request(MULTISEND, delegate), scope_of()), ReasonCode.CALL_TYPE_FORBIDDEN)


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_calldata_shorter_than_a_selector_is_malformed(
    scope_of: ScopeOf, decide: Decide, size: int
) -> None:
    data = SWAP_100[:size]
    refused(decide(call_request(ROUTER_A, data), scope_of()), ReasonCode.CALLDATA_MALFORMED)
    refused(
        decide(batch_request([Call(ROUTER_A, 0, data)]), scope_of()), ReasonCode.CALLDATA_MALFORMED
    )


@pytest.mark.parametrize(
    "data",
    [
        SWAP_100 + bytes(32),  # trailing word
        SWAP_100 + b"\x00",  # trailing byte
        SWAP_100[:-1],  # truncated
        SWAP_100[: 4 + 32 * 3] + b"\x01" + SWAP_100[4 + 32 * 3 + 1 :],  # dirty padding of `to`
        SWAP_100[: 4 + 64] + (0xC0).to_bytes(32, "big") + SWAP_100[4 + 96 :],  # wrong path offset
    ],
    ids=["trailing-word", "trailing-byte", "truncated", "dirty-address", "offset"],
)
def test_non_canonical_arguments_are_malformed(
    scope_of: ScopeOf, decide: Decide, data: bytes
) -> None:
    assert data != SWAP_100
    decision = decide(call_request(ROUTER_A, data), scope_of())
    refused(decision, ReasonCode.CALLDATA_MALFORMED, call_index=0)


def test_a_swap_with_an_empty_path_is_malformed_not_a_crash(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(ROUTER_A, swap_v2(100 * USDC_UNIT, path=[])), scope_of())
    refused(decision, ReasonCode.CALLDATA_MALFORMED, call_index=0)


# --- scope: rules, recipients, unlimited approvals -----------------------------------------


def test_a_recipient_outside_the_destinations_breaks_the_implicit_rule(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(ROUTER_A, swap_v2(100 * USDC_UNIT, to=STRANGER)), scope_of())
    refused(decision, ReasonCode.ARG_RULE_VIOLATED, call_index=0)
    (violation,) = decision.violations
    assert violation.rule == f"permissions[{ROUTER_A}.{SWAP_V2.canonical}].rules[to eq {ACCOUNT}]"


def test_a_transfer_to_a_stranger_is_refused_and_to_a_destination_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(**TOKEN_ONLY)
    allowed(decide(call_request(USDC, transfer(MERCHANT, 10)), scope))
    decision = decide(call_request(USDC, transfer(STRANGER, 10)), scope)
    refused(decision, ReasonCode.ARG_RULE_VIOLATED, call_index=0)
    assert "to in [" in decision.violations[0].rule


def test_an_explicit_rule_names_itself_when_broken(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(
        permissions=[
            {
                "target": ROUTER_A,
                "function": SWAP_V2.canonical,
                "rules": [{"arg": "0", "op": "lte", "value": 100 * USDC_UNIT}],
            }
        ]
    )
    allowed(decide(call_request(ROUTER_A, SWAP_100), scope))
    decision = decide(call_request(ROUTER_A, swap_v2(100 * USDC_UNIT + 1)), scope)
    refused(decision, ReasonCode.ARG_RULE_VIOLATED, call_index=0)
    assert decision.violations[0].rule.endswith(f".rules[0 lte {100 * USDC_UNIT}]")


def test_a_permitted_target_with_another_selector_is_selector_not_allowed(
    scope_of: ScopeOf, decide: Decide
) -> None:
    other = encode_call(WITHDRAW, (1,))
    refused(
        decide(call_request(ROUTER_A, other), scope_of()),
        ReasonCode.SELECTOR_NOT_ALLOWED,
        call_index=0,
    )


@pytest.mark.parametrize(
    "data",
    [
        approve(ROUTER_A, MAX_UINT256),
        increase_allowance(ROUTER_A, MAX_UINT256),
        permit(ACCOUNT, ROUTER_A, MAX_UINT256),
    ],
    ids=["approve", "increaseAllowance", "permit"],
)
def test_an_unlimited_approval_is_non_delegable_even_when_approvals_are_permitted(
    scope_of: ScopeOf, decide: Decide, data: bytes
) -> None:
    decision = decide(call_request(USDC, data), scope_of(**TOKEN_ONLY))
    refused(decision, ReasonCode.NON_DELEGABLE_ACTION, call_index=0)


def test_an_unlimited_permit2_approval_is_non_delegable(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(
        capabilities=["permit2.approve"],
        allowedDestinations=[PERMIT2, ROUTER_A],
        tokenLimits=[{"token": USDC, "limit": 1000}],
        maxValueUsd=None,
    )
    decision = decide(call_request(PERMIT2, permit2_approve(USDC, ROUTER_A, 2**160 - 1)), scope)
    refused(decision, ReasonCode.NON_DELEGABLE_ACTION, call_index=0)


def test_an_unlimited_approval_outside_the_scope_is_named_as_such(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(USDC, approve(ROUTER_A, MAX_UINT256)), scope_of())
    refused(decision, ReasonCode.NON_DELEGABLE_ACTION, call_index=0)
    assert ReasonCode.TARGET_NOT_ALLOWED in decision.reasons


# --- token limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        transfer(MERCHANT, 600),
        approve(ROUTER_A, 600),
        increase_allowance(ROUTER_A, 600),
        permit(ACCOUNT, ROUTER_A, 600),
        transfer_from(ACCOUNT, MERCHANT, 600),
    ],
    ids=["transfer", "approve", "increaseAllowance", "permit", "transferFrom-account"],
)
def test_every_way_of_letting_tokens_go_draws_down_the_token_limit(
    scope_of: ScopeOf, decide: Decide, data: bytes
) -> None:
    scope = scope_of(**TOKEN_ONLY)
    fresh = decide(call_request(USDC, data), scope)
    allowed(fresh)
    assert (
        Charge(token_bucket(USDC), 0, 600, 1000, ReasonCode.TOKEN_LIMIT_EXCEEDED) in fresh.charges
    )
    spent = usage_of(**{f"token_{USDC}": (0, 500)})
    refused(decide(call_request(USDC, data), scope, spent), ReasonCode.TOKEN_LIMIT_EXCEEDED, spent)


@pytest.mark.parametrize(
    "data",
    [transfer_from(STRANGER, ACCOUNT, 600), permit(STRANGER, ROUTER_A, 600)],
    ids=["transferFrom-someone-else", "permit-of-someone-else"],
)
def test_moving_someone_elses_tokens_does_not_count(
    scope_of: ScopeOf, decide: Decide, data: bytes
) -> None:
    spent = usage_of(**{f"token_{USDC}": (0, 1000)})
    decision = decide(call_request(USDC, data), scope_of(**TOKEN_ONLY), spent)
    allowed(decision)
    assert all(c.bucket != token_bucket(USDC) for c in decision.charges)


def test_a_permit2_approval_counts_against_the_tokens_limit(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=["permit2.approve"],
        allowedDestinations=[PERMIT2, ROUTER_A],
        tokenLimits=[{"token": USDC, "limit": 1000}],
        maxValueUsd=None,
    )
    data = permit2_approve(USDC, ROUTER_A, 600)
    fresh = decide(call_request(PERMIT2, data), scope)
    allowed(fresh)
    assert (
        Charge(token_bucket(USDC), 0, 600, 1000, ReasonCode.TOKEN_LIMIT_EXCEEDED) in fresh.charges
    )
    spent = usage_of(**{f"token_{USDC}": (0, 401)})
    refused(
        decide(call_request(PERMIT2, data), scope, spent), ReasonCode.TOKEN_LIMIT_EXCEEDED, spent
    )


def test_swap_inputs_and_weth_withdrawals_count_as_outflow(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=["swap.execute", "weth.withdraw"],
        allowedDestinations=[ROUTER_B, WETH],
        tokenLimits=[{"token": USDC, "limit": 1000}, {"token": WETH, "limit": ETHER}],
        maxValueUsd=None,
    )
    swap = decide(call_request(ROUTER_B, exact_input_single(1001)), scope)
    refused(swap, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    unwrap = decide(call_request(WETH, encode_call(WITHDRAW, (ETHER + 1,))), scope)
    refused(unwrap, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    assert any(c.bucket == token_bucket(WETH) and c.amount == ETHER + 1 for c in unwrap.charges)


def test_five_calls_under_the_per_call_cap_cannot_cross_the_total(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=[],
        allowedDestinations=[USDC, MERCHANT],
        tokenLimits=[{"token": USDC, "limit": 450}],
        maxValueUsd=None,
        permissions=[
            {
                "target": USDC,
                "function": "transfer(address to,uint256 amount)",
                "rules": [{"arg": "amount", "op": "lte", "value": 100}],
            }
        ],
    )
    usage = Usage()
    for _ in range(4):
        decision = decide(call_request(USDC, transfer(MERCHANT, 100)), scope, usage)
        allowed(decision)
        usage = apply_charges(usage, decision.charges)
    assert usage.spent(token_bucket(USDC), 0) == 400
    fifth = decide(call_request(USDC, transfer(MERCHANT, 100)), scope, usage)
    refused(fifth, ReasonCode.TOKEN_LIMIT_EXCEEDED, usage)
    assert fifth.reasons == (ReasonCode.TOKEN_LIMIT_EXCEEDED,)
    allowed(decide(call_request(USDC, transfer(MERCHANT, 50)), scope, usage))


def test_a_periodic_limit_refills_exactly_at_the_period_boundary(
    scope_of: ScopeOf, decide: Decide
) -> None:
    period = 600
    scope = scope_of(
        **{**TOKEN_ONLY, "tokenLimits": [{"token": USDC, "limit": 100, "period": period}]}
    )
    first = decide(call_request(USDC, transfer(MERCHANT, 100)), scope)
    allowed(first)
    usage = apply_charges(Usage(), first.charges)
    request = call_request(USDC, transfer(MERCHANT, 1))
    refused(
        decide(request, scope, usage, now=NOW + period - 1), ReasonCode.TOKEN_LIMIT_EXCEEDED, usage
    )
    refill = decide(request, scope, usage, now=NOW + period)
    allowed(refill)
    assert Charge(token_bucket(USDC), 1, 1, 100, ReasonCode.TOKEN_LIMIT_EXCEEDED) in refill.charges


def test_the_period_anchor_is_valid_after(scope_of: ScopeOf, decide: Decide) -> None:
    start = NOW - 1000  # validAfter in the past: windows are counted from it, not from now
    scope = scope_of(
        **{
            **TOKEN_ONLY,
            "validAfter": start,
            "tokenLimits": [{"token": USDC, "limit": 100, "period": 600}],
        }
    )
    usage = usage_of(**{f"token_{USDC}": (1, 100)})  # window 1 = [start+600, start+1200)
    request = call_request(USDC, transfer(MERCHANT, 1))
    refused(decide(request, scope, usage, now=start + 1199), ReasonCode.TOKEN_LIMIT_EXCEEDED, usage)
    allowed(decide(request, scope, usage, now=start + 1200))


def test_a_token_with_neither_a_limit_nor_a_usd_cap_is_refused(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=["erc20.transfer"],
        allowedDestinations=[USDC, DAI, MERCHANT],
        tokenLimits=[{"token": DAI, "limit": 10**18}],
        maxValueUsd=None,
    )
    decision = decide(call_request(USDC, transfer(MERCHANT, 1)), scope)
    refused(decision, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    assert decision.violations[0].rule == f"tokenLimits[{USDC}]"


def test_a_zero_amount_transfer_moves_nothing(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(call_request(USDC, transfer(MERCHANT, 0)), scope_of(**TOKEN_ONLY))
    allowed(decision)
    assert {c.bucket for c in decision.charges} == {USES}


# --- native value --------------------------------------------------------------------------


def test_value_sent_with_a_token_only_permission_is_refused_twice(
    scope_of: ScopeOf, decide: Decide
) -> None:
    decision = decide(call_request(USDC, transfer(MERCHANT, 1), value=1), scope_of(**TOKEN_ONLY))
    refused(decision, ReasonCode.VALUE_CAP_EXCEEDED, call_index=0)
    refused(decision, ReasonCode.VALUE_LIMIT_EXCEEDED)


def test_native_value_is_bounded_per_call_and_in_total(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(
        capabilities=["weth.deposit"],
        allowedDestinations=[WETH],
        maxValueUsd=None,
        valueLimit={"limit": str(ETHER)},
    )
    allowed(decide(call_request(WETH, deposit(), value=ETHER), scope))
    over = decide(call_request(WETH, deposit(), value=ETHER + 1), scope)
    refused(over, ReasonCode.VALUE_CAP_EXCEEDED, call_index=0)
    refused(over, ReasonCode.VALUE_LIMIT_EXCEEDED)
    spent = usage_of(native=(0, ETHER))
    refused(
        decide(call_request(WETH, deposit(), value=1), scope, spent),
        ReasonCode.VALUE_LIMIT_EXCEEDED,
        spent,
    )


def test_native_value_is_priced_under_a_usd_cap(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(
        capabilities=["weth.deposit"],
        allowedDestinations=[WETH],
        valueLimit={"limit": str(ETHER)},
        maxValueUsd=500,
    )
    decision = decide(call_request(WETH, deposit(), value=ETHER // 5), scope)  # 600 USD at 3000
    refused(decision, ReasonCode.USD_LIMIT_EXCEEDED)
    assert Charge(USD, 0, usd(600), usd(500), ReasonCode.USD_LIMIT_EXCEEDED) in decision.charges


# --- USD pricing ---------------------------------------------------------------------------


def test_an_unpriced_token_under_a_usd_cap_is_refused(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(call_request(ROUTER_A, swap_v2(1, path=[TOKEN_X, USDC])), scope_of())
    refused(decision, ReasonCode.USD_PRICE_UNKNOWN)
    assert all(c.bucket != USD for c in decision.charges)


def test_an_unpriced_native_coin_under_a_usd_cap_is_refused(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=["weth.deposit"], allowedDestinations=[WETH], valueLimit={"limit": 10}
    )
    usdc_only = FixedPrices({(1, USDC): Price(Decimal(1), 6)})
    decision = decide(call_request(WETH, deposit(), value=1), scope, prices=usdc_only)
    refused(decision, ReasonCode.USD_PRICE_UNKNOWN)


def test_an_unpriced_native_coin_does_not_switch_off_the_usd_cap_for_tokens(
    scope_of: ScopeOf, decide: Decide
) -> None:
    # With native value of unknown price in the same batch, a 10,000 USD transfer must not
    # slip past a 500 USD cap.
    scope = scope_of(
        capabilities=["erc20.transfer", "weth.deposit"],
        allowedDestinations=[USDC, WETH, MERCHANT],
        valueLimit={"limit": 10},
    )
    usdc_only = FixedPrices({(1, USDC): Price(Decimal(1), 6)})
    request = batch_request(
        [Call(WETH, 1, deposit()), Call(USDC, 0, transfer(MERCHANT, 10_000 * USDC_UNIT))]
    )
    decision = decide(request, scope, prices=usdc_only)
    refused(decision, ReasonCode.USD_PRICE_UNKNOWN)


def test_a_token_priced_below_a_micro_dollar_is_not_free(scope_of: ScopeOf, decide: Decide) -> None:
    # 0.0000005 USD per unit: 10**9 units are worth 500 USD, over a 100 USD cap.
    scope = scope_of(
        capabilities=["erc20.transfer"], allowedDestinations=[USDC, MERCHANT], maxValueUsd=100
    )
    cheap = FixedPrices({(1, USDC): Price(Decimal("0.0000005"), 0)})
    decision = decide(call_request(USDC, transfer(MERCHANT, 10**9)), scope, prices=cheap)
    refused(decision, ReasonCode.USD_LIMIT_EXCEEDED)


def test_prices_round_up_never_down() -> None:
    prices = FixedPrices({(1, USDC): Price(Decimal(1), 6)})
    assert prices.usd_value(1, USDC, 1) == 1
    weth = FixedPrices({(1, WETH): Price(Decimal(3000), 18)})
    assert weth.usd_value(1, WETH, 1) == 1  # 3e-12 micro-USD rounds up to 1
    assert weth.usd_value(1, WETH, ETHER) == usd(3000)
    assert weth.usd_value(10, WETH, ETHER) is None


# --- uses, rate, fee -----------------------------------------------------------------------


def test_max_uses_is_reached_after_the_last_use(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(maxUses=3)
    allowed(decide(call_request(ROUTER_A, SWAP_100), scope, usage_of(uses=(0, 2))))
    spent = usage_of(uses=(0, 3))
    refused(
        decide(call_request(ROUTER_A, SWAP_100), scope, spent),
        ReasonCode.USAGE_LIMIT_REACHED,
        spent,
    )


def test_a_batch_is_one_use(scope_of: ScopeOf, decide: Decide) -> None:
    decision = decide(
        batch_request([Call(ROUTER_A, 0, SWAP_100), Call(ROUTER_A, 0, SWAP_100)]),
        scope_of(maxUses=1),
    )
    allowed(decision)
    assert Charge(USES, 0, 1, 1, ReasonCode.USAGE_LIMIT_REACHED) in decision.charges


def test_the_rate_limit_refuses_within_a_window_and_allows_the_next(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(rateLimit={"count": 2, "interval": 60})
    usage = Usage()
    for _ in range(2):
        decision = decide(call_request(ROUTER_A, SWAP_100), scope, usage, now=NOW + 30)
        allowed(decision)
        usage = apply_charges(usage, decision.charges)
    refused(
        decide(call_request(ROUTER_A, SWAP_100), scope, usage, now=NOW + 59),
        ReasonCode.RATE_LIMITED,
        usage,
    )
    nxt = decide(call_request(ROUTER_A, SWAP_100), scope, usage, now=NOW + 60)
    allowed(nxt)
    assert Charge(RATE, 1, 1, 2, ReasonCode.RATE_LIMITED) in nxt.charges


def test_the_fee_budget_is_cumulative(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of(maxFeeWei=1000)
    refused(
        decide(call_request(ROUTER_A, SWAP_100, fee_wei=1001), scope), ReasonCode.FEE_LIMIT_EXCEEDED
    )
    spent = usage_of(fee=(0, 900))
    allowed(decide(call_request(ROUTER_A, SWAP_100, fee_wei=100), scope, spent))
    refused(
        decide(call_request(ROUTER_A, SWAP_100, fee_wei=101), scope, spent),
        ReasonCode.FEE_LIMIT_EXCEEDED,
        spent,
    )


# --- all at once, and what an allowed decision asks to reserve -----------------------------


def test_every_violation_is_reported_not_only_the_first(
    scope_of: ScopeOf, decide: Decide, active: Callable[..., SessionView]
) -> None:
    session = active(scope_of(maxUses=1), status=SessionStatus.REVOKED, wallet_frozen=True)
    request = dataclasses.replace(
        batch_request(
            [
                Call(ROUTER_B, 0, SWAP_100),
                Call(ROUTER_A, 0, swap_v2(600 * USDC_UNIT, to=STRANGER)),
                Call(ROUTER_A, 0, OWNERSHIP),
            ]
        ),
        chain_id=10,
    )
    spent = usage_of(uses=(0, 1))
    decision = decide(request, session, spent, now=SEED_EXPIRY)
    assert set(decision.reasons) == {
        ReasonCode.SESSION_REVOKED,
        ReasonCode.WALLET_FROZEN,
        ReasonCode.SESSION_EXPIRED,
        ReasonCode.CHAIN_MISMATCH,
        ReasonCode.TARGET_NOT_ALLOWED,
        ReasonCode.ARG_RULE_VIOLATED,
        ReasonCode.NON_DELEGABLE_ACTION,
        ReasonCode.USD_LIMIT_EXCEEDED,
        ReasonCode.USAGE_LIMIT_REACHED,
    }
    assert dict(spent.counters) == snapshot(usage_of(uses=(0, 1)))
    assert decision.action_class == "batch"


def test_an_allowed_decision_asks_to_reserve_every_bucket_it_touches(
    scope_of: ScopeOf, decide: Decide
) -> None:
    scope = scope_of(
        capabilities=["erc20.transfer", "weth.deposit"],
        allowedDestinations=[USDC, WETH, MERCHANT],
        tokenLimits=[{"token": USDC, "limit": 1000 * USDC_UNIT, "period": 600}],
        valueLimit={"limit": str(ETHER), "period": 300},
        maxValueUsd=5000,
        maxUses=10,
        rateLimit={"count": 5, "interval": 60},
        maxFeeWei=10**16,
    )
    request = dataclasses.replace(
        batch_request(
            [Call(WETH, ETHER // 10, deposit()), Call(USDC, 0, transfer(MERCHANT, 250 * USDC_UNIT))]
        ),
        fee_wei=10**15,
    )
    decision = decide(request, scope, now=NOW + 700)
    allowed(decision)
    assert set(decision.charges) == {
        Charge(NATIVE, 2, ETHER // 10, ETHER, ReasonCode.VALUE_LIMIT_EXCEEDED),
        Charge(
            token_bucket(USDC),
            1,
            250 * USDC_UNIT,
            1000 * USDC_UNIT,
            ReasonCode.TOKEN_LIMIT_EXCEEDED,
        ),
        Charge(USD, 0, usd(300) + usd(250), usd(5000), ReasonCode.USD_LIMIT_EXCEEDED),
        Charge(USES, 0, 1, 10, ReasonCode.USAGE_LIMIT_REACHED),
        Charge(RATE, 11, 1, 5, ReasonCode.RATE_LIMITED),
        Charge(FEE, 0, 10**15, 10**16, ReasonCode.FEE_LIMIT_EXCEEDED),
    }
    assert len(decision.charges) == 6
    assert [i.action_class for i in decision.intents] == ["weth.deposit", "erc20.transfer"]


def test_evaluation_is_pure(scope_of: ScopeOf, decide: Decide) -> None:
    scope = scope_of()
    usage = usage_of(usd=(0, usd(10)))
    request = call_request(ROUTER_A, SWAP_100)
    first = decide(request, scope, usage)
    assert decide(request, scope, usage) == first
    assert dict(usage.counters) == snapshot(usage_of(usd=(0, usd(10))))
