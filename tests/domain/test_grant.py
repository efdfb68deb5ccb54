"""Specification of grant-time validation and expansion (sessionward.domain.grant).

``validate_grant`` is where an envelope becomes authority: everything refused here never reaches
the owner's signature. Every refusal names its exact ReasonCode, and all problems of an envelope
are reported at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from domain_support import (
    ACCOUNT,
    CHAIN_ID,
    DAI,
    MERCHANT,
    NOW,
    PERMIT2,
    ROUTER_A,
    ROUTER_B,
    SEED_EXPIRY,
    SESSION_KEY,
    STRANGER,
    SWAP_V2,
    TOKEN_X,
    TOKEN_Y,
    TRANSFER,
    USDC,
    WETH,
    ZERO,
    compile_scope,
    seed_doc,
)

from sessionward.domain.abi import encode_word, parse_signature, parse_type
from sessionward.domain.catalog import Catalog, Tier
from sessionward.domain.decision import GrantRefused
from sessionward.domain.envelope import Envelope, RuleOp
from sessionward.domain.grant import CUSTOM_ACTION, OFFCHAIN_ONLY, Scope, validate_grant
from sessionward.reasons import ReasonCode

HOUR = 3600
DAY = 86400
ADDRESS_WORD = parse_type("address")


def refusal(catalog: Catalog, **overrides: Any) -> GrantRefused:
    with pytest.raises(GrantRefused) as info:
        compile_scope(catalog, **overrides)
    return info.value


def codes(refused: GrantRefused) -> list[ReasonCode]:
    return [v.code for v in refused.violations]


def only(refused: GrantRefused, code: ReasonCode) -> None:
    """Exactly one problem, with ``code``."""
    assert codes(refused) == [code], refused.violations
    assert refused.code is code


def explicit(target: str, function: str, *rules: dict[str, Any], value: int = 0) -> dict[str, Any]:
    return {"target": target, "function": function, "maxValuePerCall": value, "rules": list(rules)}


WETH_SAFE: dict[str, Any] = {
    "capabilities": ["weth.deposit"],
    "allowedDestinations": [WETH],
    "maxValueUsd": None,
    "valueLimit": {"limit": str(10**18)},
}


def test_the_shared_seed_and_this_folders_seed_agree(
    grant: Callable[..., Scope], catalog: Catalog
) -> None:
    assert grant() == compile_scope(catalog)


# --- time: tier TTLs, windows, credential ----------------------------------------------------


def test_a_guarded_session_may_live_exactly_one_hour(catalog: Catalog) -> None:
    scope = compile_scope(catalog, expiresAt=NOW + HOUR)
    assert scope.tier is Tier.GUARDED
    assert scope.expires_at == NOW + HOUR


def test_a_guarded_session_one_second_over_an_hour_is_refused(catalog: Catalog) -> None:
    refused = refusal(catalog, expiresAt=NOW + HOUR + 1)
    only(refused, ReasonCode.TTL_EXCEEDS_TIER)
    assert refused.violations[0].rule == "expiresAt"


def test_a_safe_session_may_live_exactly_one_day(catalog: Catalog) -> None:
    scope = compile_scope(catalog, expiresAt=NOW + DAY, **WETH_SAFE)
    assert scope.tier is Tier.SAFE and scope.expires_at == NOW + DAY


def test_a_safe_session_one_second_over_a_day_is_refused(catalog: Catalog) -> None:
    only(refusal(catalog, expiresAt=NOW + DAY + 1, **WETH_SAFE), ReasonCode.TTL_EXCEEDS_TIER)


def test_one_guarded_action_makes_the_whole_session_guarded(catalog: Catalog) -> None:
    doc = {**WETH_SAFE, "capabilities": ["weth.deposit", "erc20.transfer"]}
    only(refusal(catalog, expiresAt=NOW + 2 * HOUR, **doc), ReasonCode.TTL_EXCEEDS_TIER)


def test_the_ttl_counts_from_the_grant_not_from_valid_after(catalog: Catalog) -> None:
    # Authority exists from the moment it is signed: a later validAfter does not buy more TTL.
    only(
        refusal(catalog, validAfter=NOW + 1000, expiresAt=NOW + HOUR + 1),
        ReasonCode.TTL_EXCEEDS_TIER,
    )


def test_a_missing_expiry_is_refused(catalog: Catalog) -> None:
    only(refusal(catalog, expiresAt=None), ReasonCode.EXPIRY_MISSING)


def test_an_empty_window_is_refused(catalog: Catalog) -> None:
    only(refusal(catalog, validAfter=SEED_EXPIRY, expiresAt=SEED_EXPIRY), ReasonCode.WINDOW_INVALID)


def test_an_inverted_window_is_refused(catalog: Catalog) -> None:
    only(
        refusal(catalog, validAfter=SEED_EXPIRY + 10, expiresAt=SEED_EXPIRY),
        ReasonCode.WINDOW_INVALID,
    )


def test_a_one_second_window_is_the_smallest_accepted(catalog: Catalog) -> None:
    scope = compile_scope(catalog, validAfter=SEED_EXPIRY - 1)
    assert (scope.valid_after, scope.expires_at) == (SEED_EXPIRY - 1, SEED_EXPIRY)


@pytest.mark.parametrize("expiry", [NOW, NOW - 1])
def test_an_already_expired_session_is_refused(catalog: Catalog, expiry: int) -> None:
    only(refusal(catalog, expiresAt=expiry, validAfter=expiry - 10), ReasonCode.WINDOW_INVALID)


def test_without_valid_after_the_session_starts_at_the_grant(catalog: Catalog) -> None:
    scope = compile_scope(catalog)
    assert scope.valid_after == NOW
    assert scope.envelope.valid_after == NOW


def test_a_session_cannot_outlive_its_credential(catalog: Catalog) -> None:
    refused = refusal(catalog, credential_expires_at=SEED_EXPIRY - 1)
    only(refused, ReasonCode.EXPIRY_PAST_CREDENTIAL)


def test_a_session_may_end_with_its_credential(catalog: Catalog) -> None:
    assert compile_scope(catalog, credential_expires_at=SEED_EXPIRY).expires_at == SEED_EXPIRY


# --- capabilities and explicit permissions ---------------------------------------------------


def test_an_unknown_capability_is_refused(catalog: Catalog) -> None:
    refused = refusal(catalog, capabilities=["swap.execute", "swap.yolo"])
    only(refused, ReasonCode.UNKNOWN_CAPABILITY)
    assert refused.violations[0].rule == "capabilities[swap.yolo]"


@pytest.mark.parametrize(
    "name",
    ["account.ownership", "account.modules", "account.upgrade", "account.guards", "nft.approveAll"],
)
def test_a_forbidden_capability_class_is_non_delegable_not_unknown(
    catalog: Catalog, name: str
) -> None:
    refused = refusal(catalog, capabilities=["swap.execute", name])
    only(refused, ReasonCode.NON_DELEGABLE_ACTION)
    assert refused.violations[0].rule == f"capabilities[{name}]"


@pytest.mark.parametrize(
    "function",
    [
        "transferOwnership(address newOwner)",
        "transferOwnership(address who)",  # other names, same selector
        "setApprovalForAll(address operator,bool approved)",
        "installModule(uint256 moduleTypeId,address module,bytes initData)",
        "upgradeToAndCall(address newImplementation,bytes data)",
    ],
)
def test_explicit_permissions_for_forbidden_functions_are_refused(
    catalog: Catalog, function: str
) -> None:
    refused = refusal(
        catalog,
        allowedDestinations=[ROUTER_A, TOKEN_X],
        permissions=[explicit(TOKEN_X, function)],
    )
    only(refused, ReasonCode.NON_DELEGABLE_ACTION)
    assert refused.violations[0].rule == "permissions[0].function"


def test_guarded_actions_without_any_cap_are_refused(catalog: Catalog) -> None:
    only(refusal(catalog, maxValueUsd=None), ReasonCode.CAPS_REQUIRED)


def test_a_zero_value_limit_is_not_a_cap(catalog: Catalog) -> None:
    only(refusal(catalog, maxValueUsd=None, valueLimit={"limit": 0}), ReasonCode.CAPS_REQUIRED)


@pytest.mark.parametrize(
    "caps",
    [
        {"tokenLimits": [{"token": USDC, "limit": 1}]},
        {"valueLimit": {"limit": 1}},
        {"maxValueUsd": 0},
    ],
)
def test_any_value_cap_satisfies_a_guarded_session(catalog: Catalog, caps: dict[str, Any]) -> None:
    doc = {"maxValueUsd": None, **caps}
    assert compile_scope(catalog, **doc).tier is Tier.GUARDED


def test_safe_actions_need_no_cap(catalog: Catalog) -> None:
    doc = {**WETH_SAFE, "capabilities": ["weth.withdraw"], "valueLimit": None}
    assert compile_scope(catalog, **doc).tier is Tier.SAFE


def test_the_zero_address_as_destination_is_a_wildcard(catalog: Catalog) -> None:
    refused = refusal(catalog, allowedDestinations=[ROUTER_A, ZERO])
    only(refused, ReasonCode.WILDCARD_TARGET)
    assert refused.violations[0].rule == "allowedDestinations"


def test_the_zero_address_as_explicit_target_is_a_wildcard(catalog: Catalog) -> None:
    refused = refusal(catalog, permissions=[explicit(ZERO, "f()")])
    only(refused, ReasonCode.WILDCARD_TARGET)


def test_the_account_itself_as_destination_is_non_delegable(catalog: Catalog) -> None:
    refused = refusal(catalog, allowedDestinations=[ROUTER_A, ACCOUNT])
    only(refused, ReasonCode.NON_DELEGABLE_ACTION)


def test_the_account_itself_as_explicit_target_is_non_delegable(catalog: Catalog) -> None:
    refused = refusal(catalog, permissions=[explicit(ACCOUNT, "execute(bytes32 mode,bytes data)")])
    only(refused, ReasonCode.NON_DELEGABLE_ACTION)
    assert refused.violations[0].rule == "permissions[0].target"


def test_a_capability_without_a_fitting_destination_is_refused(catalog: Catalog) -> None:
    refused = refusal(catalog, allowedDestinations=[MERCHANT])
    only(refused, ReasonCode.CAPABILITY_WITHOUT_TARGET)
    assert refused.violations[0].rule == "capabilities[swap.execute]"


def test_an_unknown_token_without_a_limit_does_not_fit_erc20(catalog: Catalog) -> None:
    refused = refusal(
        catalog, capabilities=["erc20.transfer"], allowedDestinations=[TOKEN_Y, MERCHANT]
    )
    only(refused, ReasonCode.CAPABILITY_WITHOUT_TARGET)


def test_an_envelope_for_another_chain_is_refused(catalog: Catalog) -> None:
    refused = refusal(catalog, chainId=10)
    only(refused, ReasonCode.CHAIN_MISMATCH)
    assert refused.violations[0].rule == "chainId"


def test_an_explicit_target_outside_allowed_destinations_is_refused(catalog: Catalog) -> None:
    refused = refusal(catalog, permissions=[explicit(ROUTER_B, "multicall(bytes[] data)")])
    only(refused, ReasonCode.TARGET_NOT_ALLOWED)
    assert refused.violations[0].rule == "permissions[0].target"


def test_an_envelope_that_grants_nothing_is_malformed(catalog: Catalog) -> None:
    only(refusal(catalog, capabilities=[]), ReasonCode.ENVELOPE_MALFORMED)


def test_zero_uses_and_empty_rate_limits_are_malformed(catalog: Catalog) -> None:
    only(refusal(catalog, maxUses=0), ReasonCode.ENVELOPE_MALFORMED)
    only(refusal(catalog, rateLimit={"count": 0, "interval": 60}), ReasonCode.ENVELOPE_MALFORMED)
    only(refusal(catalog, rateLimit={"count": 1, "interval": 0}), ReasonCode.ENVELOPE_MALFORMED)


def test_the_session_key_is_the_vaults_not_the_callers(catalog: Catalog) -> None:
    vault_key = "0x" + "5e" * 20
    refused = refusal(catalog, session_key=vault_key)
    only(refused, ReasonCode.ENVELOPE_MALFORMED)
    assert refused.violations[0].rule == "sessionKey"
    scope = compile_scope(catalog, session_key=vault_key, sessionKey=None)
    assert scope.envelope.session_key == vault_key


# --- malformed rules -----------------------------------------------------------------------

_TRANSFER_TEXT = "transfer(address to,uint256 amount)"


@pytest.mark.parametrize(
    "function,rule",
    [
        (_TRANSFER_TEXT, {"arg": "recipient", "op": "eq", "value": MERCHANT}),
        (_TRANSFER_TEXT, {"arg": "amount.x", "op": "lte", "value": 1}),
        (_TRANSFER_TEXT, {"arg": "to[0]", "op": "eq", "value": MERCHANT}),
        (_TRANSFER_TEXT, {"arg": "2", "op": "eq", "value": 1}),
        (_TRANSFER_TEXT, {"arg": "to", "op": "lte", "value": 5}),
        (_TRANSFER_TEXT, {"arg": "to", "op": "eq", "value": 5}),
        (_TRANSFER_TEXT, {"arg": "to", "op": "in", "values": [MERCHANT, "$owner"]}),
        (_TRANSFER_TEXT, {"arg": "amount", "op": "lte", "value": "abc"}),
        (_TRANSFER_TEXT, {"arg": "amount", "op": "gte", "value": -1}),
        (_TRANSFER_TEXT, {"arg": "amount", "op": "eq", "value": True}),
        ("setFlag(bool on)", {"arg": "on", "op": "eq", "value": 1}),
        ("setSmall(uint8 n)", {"arg": "n", "op": "lte", "value": 256}),
        ("setTag(bytes4 tag)", {"arg": "tag", "op": "eq", "value": "0x0102"}),
        ("route(address[] path)", {"arg": "path", "op": "eq", "value": MERCHANT}),
        ("note(string text)", {"arg": "text", "op": "eq", "value": "hi"}),
    ],
    ids=[
        "unknown-arg",
        "field-of-uint",
        "index-of-address",
        "index-past-end",
        "lte-on-address",
        "int-for-address",
        "unknown-placeholder",
        "text-for-uint",
        "negative-for-uint",
        "bool-for-uint",
        "int-for-bool",
        "out-of-uint8",
        "short-bytes4",
        "dynamic-array",
        "string",
    ],
)
def test_malformed_rules_are_refused_naming_the_rule(
    catalog: Catalog, function: str, rule: dict[str, Any]
) -> None:
    refused = refusal(
        catalog,
        allowedDestinations=[ROUTER_A, MERCHANT, TOKEN_X],
        permissions=[explicit(TOKEN_X, function, rule)],
    )
    only(refused, ReasonCode.ENVELOPE_MALFORMED)
    assert refused.violations[0].rule == "permissions[0].rules[0]"


def test_a_bad_function_signature_is_malformed(catalog: Catalog) -> None:
    refused = refusal(
        catalog,
        allowedDestinations=[ROUTER_A, TOKEN_X],
        permissions=[explicit(TOKEN_X, "f(uint256")],
    )
    only(refused, ReasonCode.ENVELOPE_MALFORMED)
    assert refused.violations[0].rule == "permissions[0].function"


def test_rules_use_the_argument_names_of_the_permission_as_written(catalog: Catalog) -> None:
    # The owner reads (and signs) the function as written in the envelope; its rule paths must
    # resolve against those names even when the function is also a catalog function.
    scope = compile_scope(
        catalog,
        capabilities=[],
        allowedDestinations=[USDC, MERCHANT],
        tokenLimits=[{"token": USDC, "limit": 1000}],
        permissions=[
            explicit(
                USDC,
                "transfer(address recipient,uint256 value)",
                {"arg": "value", "op": "lte", "value": 100},
            )
        ],
    )
    rules = scope.permissions[(USDC, TRANSFER.selector)].rules
    assert [(r.arg, r.op, r.values) for r in rules if not r.implicit] == [
        ("value", RuleOp.LTE, (100,))
    ]


# --- everything at once --------------------------------------------------------------------


def test_every_problem_is_reported_at_once(catalog: Catalog) -> None:
    refused = refusal(
        catalog,
        chainId=10,
        capabilities=["swap.execute", "swap.yolo", "account.upgrade"],
        allowedDestinations=[ROUTER_A, ZERO, ACCOUNT],
        expiresAt=NOW + 2 * HOUR,
        credential_expires_at=NOW + HOUR,
        maxValueUsd=None,
        maxUses=0,
        permissions=[
            explicit(STRANGER, "f()"),
            explicit(ROUTER_A, "transferOwnership(address newOwner)"),
            explicit(ROUTER_A, _TRANSFER_TEXT, {"arg": "to", "op": "lte", "value": 1}),
        ],
    )
    assert sorted(codes(refused)) == sorted(
        [
            ReasonCode.CHAIN_MISMATCH,
            ReasonCode.EXPIRY_PAST_CREDENTIAL,
            ReasonCode.WILDCARD_TARGET,
            ReasonCode.NON_DELEGABLE_ACTION,  # the account as destination
            ReasonCode.UNKNOWN_CAPABILITY,
            ReasonCode.NON_DELEGABLE_ACTION,  # account.upgrade
            ReasonCode.TARGET_NOT_ALLOWED,
            ReasonCode.NON_DELEGABLE_ACTION,  # transferOwnership
            ReasonCode.ENVELOPE_MALFORMED,  # lte on an address
            ReasonCode.TTL_EXCEEDS_TIER,
            ReasonCode.CAPS_REQUIRED,
            ReasonCode.ENVELOPE_MALFORMED,  # maxUses 0
        ]
    )
    message = refused.message
    for violation in refused.violations:
        assert violation.code.value in message and violation.rule in message


# --- expansion -----------------------------------------------------------------------------


def test_swap_execute_on_a_router_yields_exactly_the_catalogs_swap_functions(
    catalog: Catalog,
) -> None:
    scope = compile_scope(catalog)
    swaps = catalog.actions["swap.execute"].functions
    assert set(scope.permissions) == {(ROUTER_A, fn.signature.selector) for fn in swaps}
    assert scope.targets == frozenset({ROUTER_A})
    assert scope.action_classes == ("swap.execute",)
    for fn in swaps:
        permission = scope.permissions[(ROUTER_A, fn.signature.selector)]
        assert permission.signature == fn.signature
        assert permission.action_class == "swap.execute" and permission.tier is Tier.GUARDED
        assert permission.max_value_per_call == 0
        assert permission.outflow is not None  # what it measures is specified in test_policy
        # What a swap buys goes to the account itself: never the router, never a destination.
        (rule,) = permission.rules
        assert rule.implicit and rule.op is RuleOp.EQ
        assert (rule.arg,) == fn.account_recipients and fn.recipients == ()
        assert rule.values == (ACCOUNT,)
        assert rule.words == (encode_word(ADDRESS_WORD, ACCOUNT),)
        assert rule.offset is not None  # a static word: the account checks it too


def test_recipient_rules_allow_the_account_and_every_destination(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        capabilities=["erc20.transfer"],
        allowedDestinations=[USDC, MERCHANT, DAI],
    )
    assert set(scope.permissions) == {(USDC, TRANSFER.selector), (DAI, TRANSFER.selector)}
    (rule,) = scope.permissions[(USDC, TRANSFER.selector)].rules
    assert rule.values == (ACCOUNT, USDC, MERCHANT, DAI)


def test_a_capability_lands_only_on_destinations_of_its_kind(catalog: Catalog) -> None:
    scope = compile_scope(catalog, allowedDestinations=[ROUTER_A, ROUTER_B, USDC, MERCHANT])
    assert scope.targets == frozenset({ROUTER_A, ROUTER_B})


def test_erc20_capabilities_apply_to_tokens_named_in_token_limits(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        capabilities=["erc20.transfer", "erc20.approve"],
        allowedDestinations=[TOKEN_Y, MERCHANT, STRANGER],
        tokenLimits=[{"token": TOKEN_Y, "limit": 100}],
        maxValueUsd=None,
    )
    assert scope.targets == frozenset({TOKEN_Y})
    assert {p.action_class for p in scope.permissions.values()} == {
        "erc20.transfer",
        "erc20.approve",
    }
    assert scope.token_limits[TOKEN_Y].limit == 100


def test_payable_functions_take_the_value_limit_as_per_call_cap(catalog: Catalog) -> None:
    scope = compile_scope(catalog, **WETH_SAFE)
    (permission,) = scope.permissions.values()
    assert permission.max_value_per_call == 10**18
    assert permission.tier is Tier.SAFE


def test_an_explicit_permission_replaces_the_expanded_one(catalog: Catalog) -> None:
    expanded = compile_scope(catalog)
    scope = compile_scope(
        catalog,
        permissions=[
            explicit(
                ROUTER_A,
                "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)",
                {"arg": "amountIn", "op": "lte", "value": 1000},
                {"arg": "amountOutMin", "op": "gte", "value": 990},
            )
        ],
    )
    assert scope.permissions.keys() == expanded.permissions.keys()
    permission = scope.permissions[(ROUTER_A, SWAP_V2.selector)]
    assert [(r.arg, r.op, r.values, r.implicit) for r in permission.rules] == [
        ("amountIn", RuleOp.LTE, (1000,), False),
        ("amountOutMin", RuleOp.GTE, (990,), False),
        ("to", RuleOp.EQ, (ACCOUNT,), True),  # the catalog's account-recipient rule stays
    ]
    assert permission.action_class == "swap.execute"
    assert permission.outflow == expanded.permissions[(ROUTER_A, SWAP_V2.selector)].outflow
    assert [r.offset for r in permission.rules] == [0, 1, 3]


def test_an_explicit_custom_function_is_guarded_and_moves_nothing(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        allowedDestinations=[ROUTER_A, TOKEN_X],
        permissions=[explicit(TOKEN_X, "claim(uint256 id)", value=5)],
    )
    permission = scope.permissions[(TOKEN_X, parse_signature("claim(uint256)").selector)]
    assert permission.action_class == CUSTOM_ACTION and permission.tier is Tier.GUARDED
    assert permission.outflow is None and permission.rules == ()
    assert permission.max_value_per_call == 5


def test_account_placeholder_is_substituted_in_rules(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        permissions=[
            explicit(
                ROUTER_A,
                "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)",
                {"arg": "to", "op": "eq", "value": "$account"},
            )
        ],
    )
    rule = scope.permissions[(ROUTER_A, SWAP_V2.selector)].rules[0]
    assert rule.values == (ACCOUNT,)
    assert rule.words == (encode_word(ADDRESS_WORD, ACCOUNT),)
    message = scope.grant_message(credential=b"\x01" * 32, nonce=1, epoch=0)
    swap = next(p for p in message["envelope"]["permissions"] if p["selector"] == SWAP_V2.selector)
    assert swap["rules"][0]["values"] == [encode_word(ADDRESS_WORD, ACCOUNT)]
    assert "$account" not in repr(message)


@pytest.mark.parametrize(
    ("function", "rule"),
    [
        # The contract compares words as unsigned integers: a signed range cannot be checked.
        ("shift(int256 delta)", {"arg": "delta", "op": "gte", "value": -5}),
        # path[0] sits behind an offset: the contract reads static head words only.
        (
            "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)",
            {"arg": "path[0]", "op": "eq", "value": USDC},
        ),
    ],
)
def test_an_explicit_rule_the_account_cannot_check_is_refused_not_dropped(
    catalog: Catalog, function: str, rule: dict[str, Any]
) -> None:
    target = TOKEN_X if function.startswith("shift") else ROUTER_A
    with pytest.raises(GrantRefused) as refused:
        compile_scope(
            catalog,
            allowedDestinations=[ROUTER_A, TOKEN_X],
            permissions=[explicit(target, function, rule)],
        )
    assert [(v.code, v.rule) for v in refused.value.violations] == [
        (ReasonCode.RULE_NOT_ON_CHAIN, "permissions[0].rules[0]")
    ]


def test_implicit_rules_on_dynamic_arguments_are_marked_off_chain_only(catalog: Catalog) -> None:
    # The catalog's own rule on a swap input behind an offset (path[0]) is checked off chain and
    # hashed into the grant as such (offset 0xffff); docs/protocol.md says so.
    scope = compile_scope(catalog, tokenLimits=[{"token": USDC, "limit": 100}])
    permission = scope.permissions[(ROUTER_A, SWAP_V2.selector)]
    token_rule = next(r for r in permission.rules if r.arg == "path[0]")
    assert token_rule.implicit and token_rule.offset is None and token_rule.values == (USDC,)
    message = scope.envelope_message()
    (entry,) = (p for p in message["permissions"] if p["selector"] == SWAP_V2.selector)
    assert [r["offset"] for r in entry["rules"]] == [3, OFFCHAIN_ONLY]


# --- the message the owner signs -----------------------------------------------------------


def test_grant_message_carries_the_whole_scope(catalog: Catalog) -> None:
    scope = compile_scope(catalog)
    message = scope.grant_message(credential=b"\xcc" * 32, nonce=7, epoch=2)
    assert message["account"] == ACCOUNT and message["sessionKey"] == SESSION_KEY
    assert (message["credential"], message["nonce"], message["epoch"]) == (b"\xcc" * 32, 7, 2)
    assert message["revoker"] == ZERO
    envelope = message["envelope"]
    assert envelope["chainId"] == CHAIN_ID
    assert (envelope["validAfter"], envelope["expiresAt"]) == (NOW, SEED_EXPIRY)
    assert envelope["capabilities"] == ["swap.execute"]
    assert envelope["allowedDestinations"] == [ROUTER_A]
    assert envelope["maxValueUsd"] == "500"
    assert (envelope["valueLimit"], envelope["valuePeriod"], envelope["tokenLimits"]) == (0, 0, [])
    assert (envelope["maxUses"], envelope["rateCount"], envelope["rateInterval"]) == (0, 0, 0)
    assert envelope["maxFeeWei"] == 0
    assert len(envelope["permissions"]) == len(catalog.actions["swap.execute"].functions)


def test_grant_message_is_deterministic_and_permissions_are_canonically_ordered(
    catalog: Catalog,
) -> None:
    doc: dict[str, Any] = {
        "capabilities": ["erc20.transfer", "swap.execute", "permit2.approve"],
        "allowedDestinations": [ROUTER_A, USDC, PERMIT2, WETH],
        "permissions": [
            explicit(WETH, "withdraw(uint256 wad)"),
            explicit(USDC, "approve(address spender,uint256 amount)"),
        ],
    }
    first = compile_scope(catalog, **doc).grant_message(credential=b"\x00" * 32, nonce=1, epoch=0)
    again = compile_scope(catalog, **doc).grant_message(credential=b"\x00" * 32, nonce=1, epoch=0)
    swapped = compile_scope(
        catalog, **{**doc, "permissions": list(reversed(doc["permissions"]))}
    ).grant_message(credential=b"\x00" * 32, nonce=1, epoch=0)
    assert first == again
    assert first["envelope"]["permissions"] == swapped["envelope"]["permissions"]
    keys = [(p["target"], p["selector"]) for p in first["envelope"]["permissions"]]
    assert keys == sorted(keys)


def test_grant_message_needs_the_session_key(catalog: Catalog) -> None:
    scope = compile_scope(catalog, sessionKey=None)
    with pytest.raises(ValueError):
        scope.grant_message(credential=b"\x00" * 32, nonce=1, epoch=0)


def test_validation_is_pure_and_leaves_the_envelope_alone(catalog: Catalog) -> None:
    envelope = Envelope.from_json(seed_doc())
    before = envelope.to_json()
    scope = validate_grant(envelope, catalog=catalog, account=ACCOUNT, chain_id=CHAIN_ID, now=NOW)
    assert envelope.to_json() == before
    assert scope == validate_grant(
        envelope, catalog=catalog, account=ACCOUNT, chain_id=CHAIN_ID, now=NOW
    )
