"""The ERC-7562 rule gate: SessionAccount's validation phase, traced on anvil against the
canonical EntryPoint v0.7, breaks no validation scope rule, for owner and session operations.

The validation phase is ``EntryPointSimulations.simulateValidation`` run at the EntryPoint's
address through a state override (see ``erc7562``); its result is decoded too, so a trace of a
validation that failed or was refused cannot pass as clean.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from erc4337_support import (
    CALL_GAS,
    DETERMINISTIC_DEPLOYER,
    ENTRY_POINT_V07,
    ENTRY_POINT_V07_SALT,
    ONE_ETH,
    PRE_VERIFICATION_GAS,
    USDX,
    VERIFICATION_GAS,
    Key,
    Stage,
    Wallet,
    aa_artifact,
    create2_address,
    deploy_verifying_paymaster,
    transfer_call,
)
from erc7562 import Trace, check_account_validation, trace_validation

from sessionward.chain.contracts import compile_vyper, deploy
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.encoding import PackedUserOperation, pack_uint128_pair

pytestmark = pytest.mark.anvil

RULE_BREAKER = Path(__file__).resolve().parent / "RuleBreaker.vy"


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


def _validate(rpc: JsonRpcClient, op: PackedUserOperation) -> Trace:
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


@pytest.mark.parametrize(
    "kind",
    [
        "owner",
        "session",
        "owner-batch",
        "session-batch",
        "owner-deposit",
        "session-deposit",
        "session-sponsored",
        "owner-7702",
        "session-7702",
    ],
)
def test_validation_breaks_no_erc7562_rule(stage: Stage, rpc: JsonRpcClient, kind: str) -> None:
    """``-deposit``: the account's EntryPoint deposit covers the prefund, so validation is
    asked for nothing (``missingAccountFunds == 0``) and pays nothing; ``-sponsored``: the
    reference VerifyingPaymaster pays (its own validation is the paymaster's phase); ``-7702``:
    the account is an EOA delegated to the implementation (EIP-7702), its own owner."""
    wallet = stage.new_wallet(eip7702=kind.endswith("7702"))
    if kind.endswith("deposit"):
        stage.entry_point.transact(stage.deployer, "depositTo", wallet.address, value=ONE_ETH)
    calls = [transfer_call(stage.demo.token("USDX"), wallet.recipient, 5 * USDX)]
    if kind.endswith("batch"):
        calls.append(transfer_call(stage.demo.token("USDX"), wallet.recipient, 6 * USDX))
    if kind.startswith("owner"):
        op = wallet.owner_op(*calls)
    elif kind.endswith("sponsored"):
        op = wallet.session_op(*calls, paymaster=deploy_verifying_paymaster(stage))
    else:
        op = wallet.session_op(*calls)
    trace = _validate(rpc, op)
    violations = check_account_validation(
        trace, sender=wallet.address, entry_point=ENTRY_POINT_V07, has_code=_has_code(stage)
    )
    names = _names(stage, wallet)
    assert violations == [], "\n".join(v.describe(names) for v in violations)
    prefund_paid = [
        f for f in trace.frames if f.caller == wallet.address and f.code == ENTRY_POINT_V07
    ]
    assert bool(prefund_paid) is not kind.endswith(("deposit", "sponsored"))


def test_the_gate_sees_real_violations_in_a_real_trace(stage: Stage, rpc: JsonRpcClient) -> None:
    """A deliberately rule-breaking account (RuleBreaker.vy) through the same pipeline."""
    nobody = Key().address
    breaker = deploy(
        stage.chain,
        stage.deployer,
        compile_vyper(RULE_BREAKER),
        ENTRY_POINT_V07,
        stage.demo.token("USDX"),
        nobody,
    )
    stage.chain.set_balance(breaker.address, ONE_ETH)
    fees = stage.chain.max_fee()
    op = PackedUserOperation(
        sender=breaker.address,
        nonce=0,
        init_code=b"",
        call_data=b"",
        account_gas_limits=pack_uint128_pair(VERIFICATION_GAS, CALL_GAS),
        pre_verification_gas=PRE_VERIFICATION_GAS,
        gas_fees=pack_uint128_pair(fees.max_priority_fee_per_gas, fees.max_fee_per_gas),
        paymaster_and_data=b"",
        signature=b"",
    )
    violations = check_account_validation(
        _validate(rpc, op),
        sender=breaker.address,
        entry_point=ENTRY_POINT_V07,
        has_code=_has_code(stage),
    )
    found = {(v.rule, v.opcode) for v in violations}
    assert {
        ("OP-011", "TIMESTAMP"),
        ("OP-012", "GAS"),
        ("OP-080", "SELFBALANCE"),
        ("OP-041", "EXTCODESIZE"),
        ("STO-021", "SLOAD"),
    } <= found, found
    assert all(v.contract in (breaker.address, stage.demo.token("USDX")) for v in violations)


def test_with_an_erc1271_owner_only_the_owner_contracts_storage_read_breaks_a_rule(
    stage: Stage, rpc: JsonRpcClient
) -> None:
    """A contract owner's ``isValidSignature`` runs inside the account's validation: when it
    reads its own storage (Signer1271.vy keeps its signer in slot 0), that read is outside the
    account's associated storage (STO-021), acceptable only for a staked account (STO-033).
    The account adds no violation of its own, and its session operations stay clean."""
    wallet = stage.new_wallet(erc1271_owner=True)
    owner_contract = stage.chain.get_code(wallet.address)[-20:]
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 5 * USDX)
    violations = check_account_validation(
        _validate(rpc, wallet.owner_op(call)),
        sender=wallet.address,
        entry_point=ENTRY_POINT_V07,
        has_code=_has_code(stage),
    )
    assert [(v.rule, v.opcode, v.contract) for v in violations] == [
        ("STO-021", "SLOAD", "0x" + owner_contract.hex())
    ]
    session = check_account_validation(
        _validate(rpc, wallet.session_op(call)),
        sender=wallet.address,
        entry_point=ENTRY_POINT_V07,
        has_code=_has_code(stage),
    )
    assert session == []
