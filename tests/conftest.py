"""Fixtures shared by every room's tests: well-known addresses, the catalog, the seed envelope."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from scenario import ACCOUNT, CHAIN_ID, NOW, TOKEN_X, seed_document
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


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog().with_contracts(
        [KnownContract(CHAIN_ID, TOKEN_X, frozenset({"erc20"}), "Token X", "TKX", 18)]
    )


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
