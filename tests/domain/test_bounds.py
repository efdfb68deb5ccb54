"""The domain refuses what the on-chain module cannot hold (off-chain ALLOW ⇒ on-chain success)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scenario import ACCOUNT, CHAIN_ID, MERCHANT, NOW, USDC
from sessionward.domain import bounds
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_batch_execution, encode_execute, mode_batch
from sessionward.domain.decision import GrantRefused
from sessionward.domain.grant import Scope
from sessionward.domain.policy import CallRequest, SessionView, evaluate
from sessionward.domain.usage import EMPTY_USAGE
from sessionward.reasons import ReasonCode

TRANSFER = parse_signature("transfer(address to,uint256 amount)")


def test_a_grant_with_more_destinations_than_the_account_holds_is_refused(
    grant: Callable[..., Scope],
) -> None:
    many = [f"0x{i:040x}" for i in range(1, bounds.MAX_DESTINATIONS + 2)]
    with pytest.raises(GrantRefused) as refused:
        grant(
            capabilities=["erc20.transfer"],
            allowedDestinations=[USDC, *many[:-1]],
            tokenLimits=[{"token": USDC, "limit": "1"}],
        )
    assert refused.value.code is ReasonCode.ENVELOPE_MALFORMED
    assert any(v.rule == "allowedDestinations" for v in refused.value.violations)


def test_a_batch_longer_than_the_account_runs_is_refused(
    grant: Callable[..., Scope], active: Callable[..., SessionView]
) -> None:
    scope = grant(
        capabilities=["erc20.transfer"],
        allowedDestinations=[USDC, MERCHANT],
        tokenLimits=[{"token": USDC, "limit": "1000000"}],
        maxValueUsd=None,
    )
    transfer = encode_call(TRANSFER, (MERCHANT, 1))
    calls = [Call(USDC, 0, transfer)] * (bounds.MAX_BATCH + 1)
    data = encode_execute(mode_batch(), encode_batch_execution(calls))
    decision = evaluate(
        CallRequest(CHAIN_ID, ACCOUNT, ACCOUNT, 0, data), active(scope), EMPTY_USAGE, NOW
    )
    assert not decision.allowed
    assert decision.reasons == (ReasonCode.CALLDATA_MALFORMED,)
    allowed = evaluate(
        CallRequest(
            CHAIN_ID,
            ACCOUNT,
            ACCOUNT,
            0,
            encode_execute(mode_batch(), encode_batch_execution(calls[:-1])),
        ),
        active(scope),
        EMPTY_USAGE,
        NOW,
    )
    assert allowed.allowed, allowed.violations
