"""The ERC-7562 rule gate for the module: the validation of a session user operation of the
OpenZeppelin account, and of SessionWard's own SessionAccount7579 (``account_kind``), through
SessionWard's validator, traced on anvil (``simulateValidation``
of the real EntryPoint v0.7, see tests/erc4337/erc7562.py), breaks no validation scope rule: its
storage reads and writes in the module are at slots associated with the account (through
AssociatedStorage's KECCAK256 of ``account ‖ x``). The negative control is the naive design: a
validator whose validation reads a Vyper ``HashMap`` keyed by the account
(``keccak256(slot ‖ account)``) is flagged STO-021. The owner's own operation is clean too.

The same three operations are also judged by alto's own rule code (tracer and parser of npm
@pimlico/alto 0.0.20, ``alto_rules``): it accepts the module's and the owner's and refuses the
naive validator's (an unstaked account reading another contract's unassociated slot).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from alto_rules import alto_verdict
from erc4337_support import ENTRY_POINT_V07, USDX, Key, Stage, aa_artifact, transfer_call
from erc7562 import Trace, Violation, check_account_validation, trace_validation
from module_support import ModuleWallet, deploy_module, new_module_wallet
from oz_account import MODULE_TYPE_VALIDATOR, OzAccount, deploy_oz_account, handle_op

from sessionward.chain.contracts import DeployedContract, compile_vyper, deploy
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.contracts.erc7579_module import associated_storage
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

TRIVIAL_VALIDATOR = Path(__file__).resolve().parent / "TrivialValidator.vy"


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


def _has_code(stage: Stage) -> Callable[[str], bool]:
    @cache
    def has_code(address: str) -> bool:
        return bool(stage.chain.get_code(address))

    return has_code


def _validate(rpc: JsonRpcClient, op: PackedUserOperation) -> Trace:
    """Trace the validation and assert it succeeded (no revert, signature accepted)."""
    simulations = aa_artifact("EntryPointSimulations")
    trace = trace_validation(rpc, entry_point=ENTRY_POINT_V07, simulations=simulations, op=op)
    assert not trace.error, f"simulateValidation reverted: {trace.error} {trace.output.hex()}"
    (result,) = simulations.decode_output("simulateValidation", trace.output)
    assert isinstance(result, tuple) and isinstance(result[0], tuple)
    validation_data = result[0][2]
    assert isinstance(validation_data, int)
    assert validation_data & (2**160 - 1) == 0, "the signature was refused"
    return trace


def _violations(stage: Stage, trace: Trace, sender: str) -> list[Violation]:
    return check_account_validation(
        trace, sender=sender, entry_point=ENTRY_POINT_V07, has_code=_has_code(stage)
    )


def test_a_session_operation_through_the_module_breaks_no_validation_rule(
    stage: Stage, rpc: JsonRpcClient, anvil: str, module: DeployedContract, account_kind: str
) -> None:
    wallet: ModuleWallet = new_module_wallet(stage, module, account_kind=account_kind)
    op = wallet.session_op(transfer_call(stage.demo.token("USDX"), wallet.recipient, USDX))
    trace = _validate(rpc, op)
    assert _violations(stage, trace, wallet.address) == []
    # The module's storage was used, by AssociatedStorage's code, in the module's context.
    helper_frames = [
        f for f in trace.frames if f.kind == "DELEGATECALL" and f.code == associated_storage.ADDRESS
    ]
    assert helper_frames and {f.storage for f in helper_frames} == {wallet.module_address}
    used = {s.args[1] for s in trace.steps if s.op in (0x54, 0x55)}
    assert any(wallet.module_address[2:] in context for context in used)
    verdict = alto_verdict(anvil, op)
    assert verdict.error is None
    assert wallet.module_address in verdict.storage_read  # alto saw the module's words, accepted


def test_a_session_operation_checking_every_kind_of_rule_breaks_no_validation_rule(
    stage: Stage, rpc: JsonRpcClient, anvil: str, module: DeployedContract, account_kind: str
) -> None:
    """Argument rules of every storage shape (a set member, a scalar operand) and an approval
    check: every word validation reads is still associated with the account (n <= 4 here;
    AssociatedStorage refuses n > 127), and alto accepts the operation."""
    wallet: ModuleWallet = new_module_wallet(stage, module, enable=False, account_kind=account_kind)
    usdx = stage.demo.token("USDX")
    recipient = bytes(12) + bytes.fromhex(wallet.recipient[2:])
    rules = [
        {"arg": "to", "op": 4, "offset": 0, "values": [recipient]},
        {"arg": "amount", "op": 2, "offset": 1, "values": [(5 * USDX).to_bytes(32, "big")]},
        {"arg": "to", "op": 5, "offset": 0, "values": [bytes(32)]},
    ]
    wallet.enable(
        wallet.grant(
            permissions=[
                wallet.permission(usdx, "transfer(address,uint256)", rules),
                wallet.permission(usdx, "approve(address,uint256)"),
            ]
        )
    )
    approve = Call(
        usdx, 0, encode_call(parse_signature("approve(address,uint256)"), (wallet.recipient, 1))
    )
    op = wallet.session_op(transfer_call(usdx, wallet.recipient, USDX), approve)
    assert _violations(stage, _validate(rpc, op), wallet.address) == []
    assert alto_verdict(anvil, op).error is None


def test_a_session_operation_charging_every_cumulative_limit_breaks_no_validation_rule(
    stage: Stage, rpc: JsonRpcClient, anvil: str, module: DeployedContract, account_kind: str
) -> None:
    """A token limit with a refill period, native value within a per-window limit, a use
    count: validation reads and writes their words (the session's n = 0..4, the token's
    n = 0..2), all associated with the account, without TIMESTAMP (the claimed time)."""
    wallet: ModuleWallet = new_module_wallet(stage, module, enable=False, account_kind=account_kind)
    usdx, payee = stage.demo.token("USDX"), Key().address
    grant = wallet.grant(
        permissions=[
            wallet.permission(usdx, "transfer(address,uint256)"),
            {**wallet.permission(payee, "ping()"), "maxValuePerCall": 10},
        ]
    )
    grant["envelope"].update(
        tokenLimits=[{"token": usdx, "limit": 10 * USDX, "period": 3600}],
        valueLimit=100,
        valuePeriod=3600,
        maxUses=5,
    )
    wallet.enable(grant)
    ping = Call(payee, 10, encode_call(parse_signature("ping()"), ()))
    op = wallet.session_op(
        transfer_call(usdx, wallet.recipient, USDX),
        ping,
        claimed_time=stage.chain.block_timestamp() + 1,
    )
    assert _violations(stage, _validate(rpc, op), wallet.address) == []
    assert alto_verdict(anvil, op).error is None


def test_the_owners_operation_on_the_openzeppelin_account_breaks_no_validation_rule(
    stage: Stage, rpc: JsonRpcClient, anvil: str
) -> None:
    account: OzAccount = deploy_oz_account(stage)
    op = account.owner_op(
        account.execute_data(transfer_call(stage.demo.token("USDX"), Key().address, USDX))
    )
    assert _violations(stage, _validate(rpc, op), account.address) == []
    assert alto_verdict(anvil, op).error is None


def test_a_validator_reading_a_vyper_hashmap_keyed_by_the_account_is_flagged(
    stage: Stage, rpc: JsonRpcClient, anvil: str
) -> None:
    validator = deploy(
        stage.chain, stage.deployer, compile_vyper(TRIVIAL_VALIDATOR, use_cache=False)
    )
    account = deploy_oz_account(stage)
    module = validator.address.lower()
    install = account.self_call_data("installModule", MODULE_TYPE_VALIDATOR, module, b"")
    handle_op(stage, account.owner_op(install), Key())
    pay = account.execute_data(transfer_call(stage.demo.token("USDX"), Key().address, USDX))
    op = account.unsigned_op(pay, module=module)._replace(signature=b"trivial")
    violations = _violations(stage, _validate(rpc, op), account.address)
    assert {(v.rule, v.opcode, v.contract) for v in violations} == {("STO-021", "SLOAD", module)}
    error = alto_verdict(anvil, op).error
    assert error is not None and error.startswith(f"unstaked account accessed {module} slot")
