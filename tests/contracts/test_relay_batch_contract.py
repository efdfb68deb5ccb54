"""RelayBatch.vy: several calls in one transaction, each on its own and each reported."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import double_deployer, events

from sessionward.chain.revert import decode_revert_reason
from sessionward.contracts import load_deployer

GAS = 200_000


@pytest.fixture(scope="module")
def batch() -> Any:
    return load_deployer("RelayBatch").deploy()


@pytest.fixture(scope="module")
def target() -> Any:
    return double_deployer("Target").deploy()


def _record(target: Any, a: int, gas: int = GAS) -> tuple[str, int, bytes]:
    return (target.address, gas, target.record.prepare_calldata(a, target.address, b"\x00" * 32))


def _boom(target: Any) -> tuple[str, int, bytes]:
    return (target.address, GAS, target.boom.prepare_calldata())


def test_a_call_that_reverts_undoes_nothing_of_the_others(batch: Any, target: Any) -> None:
    batch.relay([_record(target, 1), _boom(target), _record(target, 3)])
    assert target.calls() == 2 and target.last_a() == 3
    assert target.last_caller() == batch.address
    relayed = events(batch, "CallRelayed")
    assert [(e.index, e.success) for e in relayed] == [(0, True), (1, False), (2, True)]
    assert decode_revert_reason(relayed[1].revert_data) == "BOOM"
    assert relayed[0].revert_data == b"" and relayed[2].revert_data == b""


def test_a_call_runs_with_its_own_gas_limit_and_fails_alone_without_enough(
    batch: Any, target: Any
) -> None:
    batch.relay([_record(target, 1, gas=2_000), _record(target, 2)])
    assert target.calls() == 1 and target.last_a() == 2
    assert [(e.index, e.success) for e in events(batch, "CallRelayed")] == [(0, False), (1, True)]


def test_a_batch_without_the_gas_a_call_asks_for_runs_nothing(batch: Any, target: Any) -> None:
    """Too little gas left for a call's own limit stops the whole batch (under EIP-150 the call
    would otherwise run short and fail where it would succeed alone)."""
    big = _record(target, 2, gas=5_000_000)
    with boa.reverts("RELAY_BATCH_OUT_OF_GAS"):
        batch.relay([_record(target, 1), big], gas=1_000_000)
    assert target.calls() == 0


def test_the_batch_takes_no_ether(batch: Any, target: Any) -> None:
    boa.env.set_balance(boa.env.eoa, 10**18)
    with boa.reverts():
        batch.relay([_record(target, 1)], value=1)
    assert target.calls() == 0
