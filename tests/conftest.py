"""Fixtures shared by every room's tests: well-known addresses, the catalog, the seed envelope."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from sessionward.domain.catalog import Catalog, KnownContract, default_catalog
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import Scope, validate_grant
from sessionward.domain.policy import SessionStatus, SessionView

# Reproducible property tests: CI runs the "ci" profile (derandomized, so every run is the same).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.register_profile(
    "deep", deadline=None, max_examples=50_000, derandomize=True, database=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CHAIN_ID = 1
ACCOUNT = "0x1111111111111111111111111111111111111111"
OTHER_ACCOUNT = "0x2222222222222222222222222222222222222222"
SESSION_KEY = "0x5e5510e0000000000000000000000000000000a1"
ROUTER_A = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"  # Uniswap V2 Router 02 (catalog)
ROUTER_B = "0xe592427a0aece92de3edee1f18e0157c05861564"  # Uniswap V3 SwapRouter (catalog)
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
TOKEN_X = "0x7070707070707070707070707070707070707070"  # an ERC-20 known only through tokenLimits
MERCHANT = "0x3333333333333333333333333333333333333333"
STRANGER = "0x4444444444444444444444444444444444444444"
NOW = 1_771_700_000  # 2026-02-21 18:53:20 UTC
SEED_EXPIRY = 1_771_703_600  # the seed envelope's expiresAt: 2026-02-21 19:53:20 UTC


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog().with_contracts(
        [KnownContract(CHAIN_ID, TOKEN_X, frozenset({"erc20"}), "Token X", "TKX", 18)]
    )


def seed_document(**overrides: Any) -> dict[str, Any]:
    """The seed envelope of DESIGN section 3, with real addresses; ``overrides`` replace fields."""
    doc: dict[str, Any] = {
        "sessionKey": SESSION_KEY,
        "capabilities": ["swap.execute"],
        "maxValueUsd": 500,
        "allowedDestinations": [ROUTER_A],
        "chainId": CHAIN_ID,
        "expiresAt": SEED_EXPIRY,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.fixture
def grant(catalog: Catalog) -> Callable[..., Scope]:
    """``grant(**overrides)``: validate a seed-based envelope for ACCOUNT at NOW."""

    def make(
        *, now: int = NOW, credential_expires_at: int | None = None, **overrides: Any
    ) -> Scope:
        return validate_grant(
            Envelope.from_json(seed_document(**overrides)),
            catalog=catalog,
            account=ACCOUNT,
            chain_id=CHAIN_ID,
            now=now,
            credential_expires_at=credential_expires_at,
        )

    return make


@pytest.fixture
def active() -> Callable[..., SessionView]:
    """``active(scope, **state)``: an approved session view over ``scope``."""

    def make(scope: Scope, **state: Any) -> SessionView:
        return SessionView(
            session_id="s-1", scope=scope, status=state.pop("status", SessionStatus.ACTIVE), **state
        )

    return make
