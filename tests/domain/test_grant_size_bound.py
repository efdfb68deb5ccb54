"""Every grant the service accepts can be enabled in one transaction (issue 12.7).

The storage words ``enable_session`` would write are counted here from the signed message (the
shape the contract stores, independently of the domain's own count) and held to
``bounds.MAX_ENABLE_STORAGE_WORDS``; above it the grant is refused ``GRANT_TOO_LARGE``.
tests/contracts/test_enable_bounds.py measures the costliest grant at the bound on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from domain_support import compile_scope
from hypothesis import event, given, settings
from hypothesis import strategies as st

from scenario import TOKEN_X
from sessionward.domain import bounds
from sessionward.domain.catalog import Catalog
from sessionward.domain.decision import GrantRefused
from sessionward.domain.grant import OFFCHAIN_ONLY, Scope
from sessionward.reasons import ReasonCode

CUSTOM = "0x5555555555555555555555555555555555555555"  # a contract unknown to the catalog
ARGS = ("a", "b", "c", "d")
FUNCTION = "f{}(uint256 a,uint256 b,uint256 c,uint256 d)"
OP_IN, OP_NOT_IN = 4, 5


def onchain_words(scope: Scope) -> int:
    """The words the contract writes, read off the signed envelope as sessions.vy reads it."""
    message = scope.envelope_message()
    words = sum(3 if t["period"] else 1 for t in message["tokenLimits"])
    for permission in message["permissions"]:
        words += 2  # the permission word and its target's target_known flag
        for rule in permission["rules"]:
            if rule["offset"] == OFFCHAIN_ONLY:
                continue
            words += len(rule["values"]) if rule["op"] in (OP_IN, OP_NOT_IN) else 1
    return words


def document_words(doc: dict[str, Any]) -> int:
    """The same count from an envelope document of custom permissions on static arguments
    (no implicit rules): for a grant refused before it has a scope."""
    words = sum(3 if t.get("period") else 1 for t in doc["tokenLimits"])
    for permission in doc["permissions"]:
        words += 2 + sum(len(r["values"]) if "values" in r else 1 for r in permission["rules"])
    return words


def permissions_storing(words: int) -> list[dict[str, Any]]:
    """16 custom permissions whose ``in`` rules bring the grant to ``words`` storage words."""
    budget = words - 2 * bounds.MAX_PERMISSIONS
    assert 0 <= budget <= bounds.MAX_PERMISSIONS * bounds.MAX_RULES * bounds.MAX_RULE_VALUES
    permissions = []
    for i in range(bounds.MAX_PERMISSIONS):
        rules = []
        for arg in ARGS:
            take = min(budget, bounds.MAX_RULE_VALUES)
            if take:
                values = [str(i * 1000 + ARGS.index(arg) * 100 + v) for v in range(take)]
                rules.append({"arg": arg, "op": "in", "values": values})
            budget -= take
        permissions.append(
            {"target": CUSTOM, "function": FUNCTION.format(i), "maxValuePerCall": 0, "rules": rules}
        )
    return permissions


def large(words: int) -> dict[str, Any]:
    return {
        "capabilities": [],
        "allowedDestinations": [CUSTOM],
        "permissions": permissions_storing(words),
        "tokenLimits": [{"token": TOKEN_X, "limit": "1000"}],  # 1 word, no period
        "maxValueUsd": None,
    }


def test_a_grant_at_the_storage_bound_is_accepted(grant: Callable[..., Scope]) -> None:
    scope = grant(**large(bounds.MAX_ENABLE_STORAGE_WORDS - 1))
    assert onchain_words(scope) == bounds.MAX_ENABLE_STORAGE_WORDS


def test_a_grant_one_word_over_the_bound_is_refused_grant_too_large(
    grant: Callable[..., Scope],
) -> None:
    with pytest.raises(GrantRefused) as refused:
        grant(**large(bounds.MAX_ENABLE_STORAGE_WORDS))
    assert refused.value.code is ReasonCode.GRANT_TOO_LARGE
    assert [v.code for v in refused.value.violations] == [ReasonCode.GRANT_TOO_LARGE]
    assert str(bounds.MAX_ENABLE_STORAGE_WORDS) in refused.value.violations[0].detail


def test_a_token_limit_with_a_period_counts_three_words(grant: Callable[..., Scope]) -> None:
    doc = large(bounds.MAX_ENABLE_STORAGE_WORDS - 1)
    doc["tokenLimits"] = [{"token": TOKEN_X, "limit": "1000", "period": 3600}]
    with pytest.raises(GrantRefused) as refused:
        grant(**doc)
    assert refused.value.code is ReasonCode.GRANT_TOO_LARGE


_rule = st.tuples(st.sampled_from(["in", "not_in", "eq", "lte"]), st.integers(1, 16))
_big_rule = st.tuples(st.sampled_from(["in", "in", "not_in", "eq"]), st.integers(8, 16))
# Small grants anywhere, and large ones around the bound (both sides of it).
_shapes = st.one_of(
    st.lists(st.lists(_rule, max_size=bounds.MAX_RULES), min_size=1, max_size=16),
    st.lists(st.lists(_big_rule, min_size=3, max_size=bounds.MAX_RULES), min_size=12, max_size=16),
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    shapes=_shapes,
    periods=st.lists(st.sampled_from([0, 3600]), max_size=bounds.MAX_TOKEN_LIMITS),
)
def test_every_grant_accepted_stores_at_most_the_bound(
    catalog: Catalog, shapes: list[list[tuple[str, int]]], periods: list[int]
) -> None:
    permissions = []
    for i, rules in enumerate(shapes):
        compiled = []
        for arg, (op, count) in zip(ARGS, rules, strict=False):
            listed = op in ("in", "not_in")
            values = [str(i * 1000 + v) for v in range(count if listed else 1)]
            compiled.append(
                {"arg": arg, "op": op, "values": values}
                if listed
                else {"arg": arg, "op": op, "value": values[0]}
            )
        permissions.append(
            {"target": CUSTOM, "function": FUNCTION.format(i), "maxValuePerCall": 0,
             "rules": compiled}
        )  # fmt: skip
    tokens = [f"0x{0x6000 + i:040x}" for i in range(len(periods))]
    doc = {
        "capabilities": [],
        "allowedDestinations": [CUSTOM],
        "permissions": permissions,
        "tokenLimits": [
            {"token": t, "limit": "1000", "period": p} for t, p in zip(tokens, periods, strict=True)
        ]
        or [{"token": TOKEN_X, "limit": "1000"}],
        "maxValueUsd": None,
    }
    try:
        scope = compile_scope(catalog, **doc)
    except GrantRefused as refused:
        # Refused only for its size: the generator writes nothing else wrong.
        assert {v.code for v in refused.violations} == {ReasonCode.GRANT_TOO_LARGE}
        assert document_words(doc) > bounds.MAX_ENABLE_STORAGE_WORDS
        event("refused as too large")
        return
    event("accepted")
    assert onchain_words(scope) == document_words(doc) <= bounds.MAX_ENABLE_STORAGE_WORDS
