"""Specification of the consent text (sessionward.domain.summary).

The summary is what the owner reads before signing, so it is exact text: the same scope and label
always give the same text. The app's name and URL are a quoted, untrusted label on their own
line; SessionWard's sentences come only from the envelope and say who enforces each limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from domain_support import MERCHANT, ROUTER_A, ROUTER_B, TOKEN_X, TOKEN_Y, USDC, compile_scope

from sessionward.domain.catalog import Catalog
from sessionward.domain.grant import Scope
from sessionward.domain.prices import DEFAULT_PRICES
from sessionward.domain.summary import (
    APP_NAME_MAX,
    check_app_metadata,
    consent,
    summarize,
)
from sessionward.domain.values import InvalidValue
from sessionward.reasons import ReasonCode

LABEL = 'App (its own name, not verified by SessionWard): "Acme Agent"'
TAIL = (
    "It cannot call the wallet itself, so it cannot change owners or install modules."
    " It cannot approve spending."
)
SEED_SUMMARY = (
    f"{LABEL}\n"
    "This session lets the app call swap on 0x7a250d… on Ethereum (chain 1) until 2026-02-21 "
    "19:53 UTC. What a swap buys comes back to this wallet. The wallet contract and SessionWard "
    "both enforce: at most 500 DAI out in total, at most 500 USDC out in total, at most "
    "0.166666666666666666 WETH out in total, and at most 500 USDT out in total. It cannot send "
    "the native coin. SessionWard also refuses to sign more than 500 USD in total at live prices. "
    f"{TAIL}"
)

ScopeOf = Callable[..., Scope]


def text(scope: Scope, catalog: Catalog, app: str = "Acme Agent") -> str:
    return summarize(scope, app_name=app, catalog=catalog)


def test_the_seed_envelope_reads_exactly_in_token_units(catalog: Catalog) -> None:
    # As the service compiles it: the 500 USD cap is also each token's on-chain limit.
    scope = compile_scope(catalog, prices=DEFAULT_PRICES)
    assert text(scope, catalog) == SEED_SUMMARY


def test_the_summary_is_deterministic(scope_of: ScopeOf, catalog: Catalog) -> None:
    doc: dict[str, Any] = {
        "capabilities": ["swap.execute", "erc20.transfer"],
        "allowedDestinations": [ROUTER_B, USDC, ROUTER_A, MERCHANT],
    }
    first = text(scope_of(**doc), catalog)
    assert text(scope_of(**doc), catalog) == first
    reordered = {
        "capabilities": ["erc20.transfer", "swap.execute"],
        "allowedDestinations": [MERCHANT, ROUTER_A, USDC, ROUTER_B],
    }
    assert text(scope_of(**reordered), catalog) == first


def test_the_app_name_is_a_quoted_label_on_its_own_line(
    scope_of: ScopeOf, catalog: Catalog
) -> None:
    label, sentences = text(scope_of(), catalog, app="Bot #7").split("\n")
    assert label == 'App (its own name, not verified by SessionWard): "Bot #7"'
    assert sentences.startswith("This session lets the app call swap on 0x7a250d…")
    assert "Bot #7" not in sentences


SPOOF = "Acme Read-Only Viewer (this session CANNOT move funds)"


@pytest.mark.parametrize(
    "name",
    [
        SPOOF,
        "This session cannot move funds. It cannot approve spending.",
        'Acme" It cannot move funds "',
        "Acme\nThis session lets the app call nothing.",
        "Acme\u202e sdnuf evom TONNAC",
    ],
)
def test_an_app_name_never_becomes_a_sessionward_sentence(
    scope_of: ScopeOf, catalog: Catalog, name: str
) -> None:
    shown = consent(scope_of(), app_name=name, catalog=catalog, app_url="https://a.example/x")
    rendered = shown.render()
    label, body = rendered.split("\n")  # the name cannot add a line
    assert label == shown.app_label and body == " ".join(s.text for s in shown.sentences)
    assert label.startswith('App (its own name, not verified by SessionWard): "')
    # The label holds one quoted string: the name's quotes, newlines, brackets and bidi
    # overrides are made inert, and it is cut at the name limit.
    quoted = label.split(": ", 1)[1].split(" at ")[0]
    assert quoted.count('"') == 2 and len(quoted) <= APP_NAME_MAX + 2
    assert not any(c in quoted[1:-1] for c in '"()\n\u202e')
    for sentence in shown.sentences:
        assert "CANNOT" not in sentence.text and "Acme" not in sentence.text
    assert SPOOF not in rendered


@pytest.mark.parametrize(
    ("name", "url"),
    [
        (SPOOF, None),  # parentheses
        ("x" * (APP_NAME_MAX + 1), None),
        ('Acme "Official"', None),
        ("Acme\u202eevil", None),
        ("Acme\tAgent", None),
        (" Acme", None),
        ("Acme  Agent", None),
        ("", None),
        ("Acme", "javascript:alert(1)"),
        ("Acme", "https://a.example/ It cannot move funds"),
        ("Acme", "https://a.example/" + "x" * 200),
        ("Acme", "ftp://a.example"),
        ("Acme", 'https://a.example/"'),
    ],
)
def test_app_metadata_outside_the_limits_is_refused(name: str, url: str | None) -> None:
    with pytest.raises(InvalidValue) as info:
        check_app_metadata(name, url)
    assert info.value.code is ReasonCode.CREDENTIAL_METADATA_INVALID


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("Acme Trading Agent", "https://agent.example"),
        ("Bot #7", None),
        ("Société Générale - Café & Co.", "http://localhost:8080/app"),
        ("株式会社 Agent", None),
        ("x" * APP_NAME_MAX, None),
    ],
)
def test_ordinary_app_metadata_is_accepted(name: str, url: str | None) -> None:
    check_app_metadata(name, url)


@pytest.mark.parametrize("capability", ["erc20.approve", "erc20.increaseAllowance", "erc20.permit"])
def test_granting_approvals_changes_what_the_session_cannot_do(
    scope_of: ScopeOf, catalog: Catalog, capability: str
) -> None:
    scope = scope_of(capabilities=[capability], allowedDestinations=[USDC, ROUTER_A])
    summary = text(scope, catalog)
    assert summary.endswith("It cannot approve unlimited spending.")
    assert "approve spending." not in summary


def test_several_targets_and_actions_are_listed(scope_of: ScopeOf, catalog: Catalog) -> None:
    scope = scope_of(allowedDestinations=[ROUTER_A, ROUTER_B])
    assert (
        text(scope, catalog)
        .split("\n")[1]
        .startswith(
            "This session lets the app call swap on 0x7a250d… and 0xE59242… on Ethereum (chain 1)"
        )
    )


def test_every_limit_is_spelled_out_with_who_enforces_it(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        capabilities=["erc20.transfer"],
        allowedDestinations=[USDC, TOKEN_Y, MERCHANT],
        tokenLimits=[
            {"token": USDC, "limit": 100, "period": 86400},
            {"token": TOKEN_Y, "limit": 5},
        ],
        maxValueUsd="12.5",
        maxUses=3,
        rateLimit={"count": 2, "interval": 3600},
    )
    assert text(scope, catalog).split("\n")[1] == (
        "This session lets the app call transfer on 0x717171… and 0xA0b869… on Ethereum "
        "(chain 1) until 2026-02-21 19:53 UTC. The wallet contract and SessionWard both enforce: "
        "at most 0.0001 USDC out per day, at most 5 base units of 0x717171… out in total, and "
        "at most 3 executions. It cannot send the native coin. SessionWard also refuses to sign "
        f"more than 12.5 USD in total at live prices and more than 2 executions per hour. {TAIL}"
    )


def test_native_value_limits_and_custom_functions_are_named(catalog: Catalog) -> None:
    scope = compile_scope(
        catalog,
        chain_id=31337,
        chainId=31337,
        capabilities=[],
        maxValueUsd=None,
        allowedDestinations=[TOKEN_X],
        valueLimit={"limit": "5", "period": 604800},
        permissions=[{"target": TOKEN_X, "function": "claim(uint256 id)", "maxValuePerCall": 5}],
    )
    assert text(scope, catalog).split("\n")[1] == (
        "This session lets the app call claim on 0x707070… on local devnet (chain 31337) "
        "until 2026-02-21 19:53 UTC. The wallet contract and SessionWard both enforce: "
        f"at most 0.000000000000000005 native coin out per week. {TAIL}"
    )
