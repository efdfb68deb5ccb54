"""The ERC-7562 rule gate: SessionAccount's validation phase, traced on anvil against the
canonical EntryPoint v0.7, breaks no validation scope rule, for owner and session operations.

The validation phase is ``EntryPointSimulations.simulateValidation`` run at the EntryPoint's
address through a state override (see ``erc7562``); its result is decoded too, so a trace of a
validation that failed or was refused cannot pass as clean.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
from erc4337_support import (
    DETERMINISTIC_DEPLOYER,
    ENTRY_POINT_V07,
    ENTRY_POINT_V07_SALT,
    USDX,
    Stage,
    Wallet,
    aa_artifact,
    create2_address,
    transfer_call,
)
from erc7562 import Trace, check_account_validation, trace_validation

from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.encoding import PackedUserOperation

pytestmark = pytest.mark.anvil


def _has_code(stage: Stage) -> Callable[[str], bool]:
    @cache
    def has_code(address: str) -> bool:
        return bool(stage.chain.get_code(address))

    return has_code


def _names(stage: Stage, wallet: Wallet) -> dict[str, str]:
    return {
        ENTRY_POINT_V07: "EntryPoint",
        stage.demo.implementation: "SessionAccount implementation",
        wallet.address: "the account (proxy)",
        wallet.owner.address.lower(): "the owner EOA",
    }


def _validate(rpc: JsonRpcClient, wallet: Wallet, op: PackedUserOperation) -> Trace:
    """Trace the validation and assert that it succeeded (no FailedOp, no revert)."""
    simulations = aa_artifact("EntryPointSimulations")
    trace = trace_validation(rpc, entry_point=ENTRY_POINT_V07, simulations=simulations, op=op)
    assert not trace.error, f"simulateValidation reverted: {trace.error} {trace.output.hex()}"
    (result,) = simulations.decode_output("simulateValidation", trace.output)
    assert isinstance(result, tuple)
    return_info = result[0]
    assert isinstance(return_info, tuple)
    validation_data = return_info[2]
    assert isinstance(validation_data, int)
    assert validation_data & (2**160 - 1) == 0, "the signature was refused (SIG_VALIDATION_FAILED)"
    return trace


def test_the_entry_point_is_the_canonical_v07_deployed_by_the_deterministic_deployer(
    stage: Stage,
) -> None:
    initcode = aa_artifact("EntryPoint").initcode
    assert create2_address(DETERMINISTIC_DEPLOYER, ENTRY_POINT_V07_SALT, initcode) == (
        ENTRY_POINT_V07
    )
    assert stage.entry_point.address == ENTRY_POINT_V07
    assert len(stage.chain.get_code(ENTRY_POINT_V07)) == len(aa_artifact("EntryPoint").runtime)
    implementation = stage.demo.bind(stage.chain, "SessionAccount", stage.demo.implementation)
    assert implementation.call_one("ENTRY_POINT") == ENTRY_POINT_V07


@pytest.mark.parametrize("kind", ["owner", "session"])
def test_validation_breaks_no_erc7562_rule(
    stage: Stage, wallet: Wallet, rpc: JsonRpcClient, kind: str
) -> None:
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 5 * USDX)
    op = wallet.owner_op(call) if kind == "owner" else wallet.session_op(call)
    trace = _validate(rpc, wallet, op)
    violations = check_account_validation(
        trace, sender=wallet.address, entry_point=ENTRY_POINT_V07, has_code=_has_code(stage)
    )
    names = _names(stage, wallet)
    assert violations == [], "\n".join(v.describe(names) for v in violations)
