"""Fixtures of the domain tests (their plain helpers live in ``domain_support``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from domain_support import NOW, compile_scope, snapshot

from sessionward.domain.catalog import Catalog
from sessionward.domain.decision import Decision
from sessionward.domain.grant import Scope
from sessionward.domain.policy import CallRequest, SessionView, evaluate
from sessionward.domain.prices import DEFAULT_PRICES, PriceSource
from sessionward.domain.usage import Usage


@pytest.fixture
def scope_of(catalog: Catalog) -> Callable[..., Scope]:
    """``scope_of(**overrides)``: :func:`compile_scope` against the shared test catalog."""

    def make(**kwargs: Any) -> Scope:
        return compile_scope(catalog, **kwargs)

    return make


@pytest.fixture
def decide(catalog: Catalog, active: Callable[..., SessionView]) -> Callable[..., Decision]:
    """``decide(request, scope_or_view, usage=Usage(), now=NOW, prices=DEFAULT_PRICES)``.

    Evaluates against the shared test catalog and checks, for every decision, that the usage
    passed in is exactly what it was before (the engine is pure: it never records anything).
    """

    def run(
        request: CallRequest,
        session: Scope | SessionView,
        usage: Usage | None = None,
        now: int = NOW,
        prices: PriceSource = DEFAULT_PRICES,
    ) -> Decision:
        view = active(session) if isinstance(session, Scope) else session
        usage = usage if usage is not None else Usage()
        before = snapshot(usage)
        decision = evaluate(request, view, usage, now, catalog=catalog, prices=prices)
        assert snapshot(usage) == before, "evaluate changed the usage it was given"
        return decision

    return run
