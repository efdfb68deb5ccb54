"""Specification of the consent summary (sessionward.domain.summary).

The summary is what the owner reads before signing, so it is exact text: the same scope and app
name always give the same paragraph, and what it says the session cannot do changes when
approvals are granted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from domain_support import MERCHANT, ROUTER_A, ROUTER_B, TOKEN_X, TOKEN_Y, USDC, compile_scope

from sessionward.domain.catalog import Catalog
from sessionward.domain.grant import Scope
from sessionward.domain.summary import summarize

SEED_SUMMARY = (
    "Lets Acme Agent call swap on 0x7a250d… on Ethereum (chain 1), at most 500 USD in total, "
    "until 2026-02-21 19:53 UTC. It cannot change owners, install modules, or approve spending."
)

ScopeOf = Callable[..., Scope]


def text(scope: Scope, catalog: Catalog, app: str = "Acme Agent") -> str:
    return summarize(scope, app_name=app, catalog=catalog)


def test_the_seed_envelope_reads_exactly(scope_of: ScopeOf, catalog: Catalog) -> None:
    assert text(scope_of(), catalog) == SEED_SUMMARY


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


def test_the_app_name_is_shown_as_given(scope_of: ScopeOf, catalog: Catalog) -> None:
    assert text(scope_of(), catalog, app="Bot #7").startswith("Lets Bot #7 call swap on 0x7a250d…")


@pytest.mark.parametrize("capability", ["erc20.approve", "erc20.increaseAllowance", "erc20.permit"])
def test_granting_approvals_changes_what_the_session_cannot_do(
    scope_of: ScopeOf, catalog: Catalog, capability: str
) -> None:
    scope = scope_of(capabilities=[capability], allowedDestinations=[USDC, ROUTER_A])
    summary = text(scope, catalog)
    assert summary.endswith(
        "It cannot change owners, install modules, or approve unlimited spending."
    )
    assert "or approve spending." not in summary


def test_several_targets_and_actions_are_listed(scope_of: ScopeOf, catalog: Catalog) -> None:
    scope = scope_of(allowedDestinations=[ROUTER_A, ROUTER_B])
    assert text(scope, catalog).startswith(
        "Lets Acme Agent call swap on 0x7a250d… and 0xE59242… on Ethereum (chain 1),"
    )


def test_every_limit_is_spelled_out(scope_of: ScopeOf, catalog: Catalog) -> None:
    scope = scope_of(
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
    assert text(scope, catalog) == (
        "Lets Acme Agent call transfer on 0x717171… and 0xA0b869… on Ethereum (chain 1), "
        "at most 12.5 USD in total, at most 100 base units of USDC per day, "
        "at most 5 base units of 0x717171… in total, at most 3 times, and at most 2 times per hour, "
        "until 2026-02-21 19:53 UTC. It cannot change owners, install modules, or approve spending."
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
    assert text(scope, catalog) == (
        "Lets Acme Agent call claim on 0x707070… on local devnet (chain 31337), "
        "at most 5 wei of native value per week, until 2026-02-21 19:53 UTC. "
        "It cannot change owners, install modules, or approve spending."
    )
