"""The third-party account itself, before any SessionWard module: OpenZeppelin's
``AccountERC7579`` (npm @openzeppelin/contracts, compiled by npm solc) on anvil against the real
EntryPoint v0.7. Its owner executes through a user operation; a stranger's signature is refused
with nothing changed; a trivial validator module is installed, validates an operation, and is
uninstalled, after which its operations are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from erc4337_support import ENTRY_POINT_V07, USDX, Key, Stage, transfer_call
from oz_account import (
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    OzAccount,
    account_artifact,
    deploy_oz_account,
    handle_op,
    handle_op_refusal,
    op_outcome,
)
from solc_npm import NODE_MODULES, solc_version

from sessionward.chain.contracts import compile_vyper, deploy

pytestmark = pytest.mark.anvil

TRIVIAL_VALIDATOR = Path(__file__).resolve().parent / "TrivialValidator.vy"


@pytest.fixture
def account(stage: Stage) -> OzAccount:
    return deploy_oz_account(stage)


def test_the_account_is_openzeppelins_account_erc7579_from_npm(
    stage: Stage, account: OzAccount
) -> None:
    package = json.loads(
        (NODE_MODULES / "@openzeppelin" / "contracts" / "package.json").read_text()
    )
    assert package["version"] == "5.7.0"
    assert solc_version() == "0.8.30"
    assert account.contract.call_one("accountId") == "@openzeppelin/contracts.AccountERC7579.v1.0.0"
    assert account.contract.call_one("entryPoint") == ENTRY_POINT_V07
    assert str(account.contract.call_one("signer")).lower() == account.owner.address
    assert len(stage.chain.get_code(account.address)) == len(account_artifact().runtime)


def test_the_owner_executes_a_transfer_through_the_entry_point(
    stage: Stage, account: OzAccount
) -> None:
    recipient = Key().address
    op = account.owner_op(
        account.execute_data(transfer_call(stage.demo.token("USDX"), recipient, 7 * USDX))
    )
    receipt = handle_op(stage, op, Key())
    assert op_outcome(receipt, account.op_hash(op))[0]
    assert stage.token_balance(recipient) == 7 * USDX
    assert stage.token_balance(account.address) == 993 * USDX
    assert account.nonce() == 1


def test_an_operation_signed_by_another_key_is_refused_and_changes_nothing(
    stage: Stage, account: OzAccount
) -> None:
    recipient = Key().address
    op = account.unsigned_op(
        account.execute_data(transfer_call(stage.demo.token("USDX"), recipient, USDX))
    )
    op = op._replace(signature=Key().sign(account.op_hash(op)))
    assert handle_op_refusal(stage, op).reason == "AA24 signature error"
    assert stage.token_balance(account.address) == 1_000 * USDX
    assert account.nonce() == 0


def test_a_validator_module_is_installed_used_and_uninstalled(
    stage: Stage, account: OzAccount
) -> None:
    validator = deploy(
        stage.chain, stage.deployer, compile_vyper(TRIVIAL_VALIDATOR, use_cache=False)
    )
    module = validator.address.lower()
    install = account.self_call_data("installModule", MODULE_TYPE_VALIDATOR, module, b"")
    handle_op(stage, account.owner_op(install), Key())
    assert account.is_installed(MODULE_TYPE_VALIDATOR, module)
    assert not account.is_installed(MODULE_TYPE_EXECUTOR, module)
    assert validator.call_one("installs", account.address) == 1

    recipient = Key().address
    pay = account.execute_data(transfer_call(stage.demo.token("USDX"), recipient, 2 * USDX))
    op = account.unsigned_op(pay, module=module)._replace(signature=b"trivial")
    assert op.nonce == int(module, 16) << 96  # key = module ‖ 0x00000000, sequence 0
    receipt = handle_op(stage, op, Key())
    assert op_outcome(receipt, account.op_hash(op))[0]
    assert stage.token_balance(recipient) == 2 * USDX
    refused = account.unsigned_op(pay, module=module)._replace(signature=b"something else")
    assert handle_op_refusal(stage, refused).reason == "AA24 signature error"

    uninstall = account.self_call_data("uninstallModule", MODULE_TYPE_VALIDATOR, module, b"")
    handle_op(stage, account.owner_op(uninstall), Key())
    assert not account.is_installed(MODULE_TYPE_VALIDATOR, module)
    assert validator.call_one("uninstalls", account.address) == 1
    # The nonce key still names the module, which is no longer installed: the owner's signer
    # judges the operation, and b"trivial" is not the owner's signature.
    after = account.unsigned_op(pay, module=module)._replace(signature=b"trivial")
    assert handle_op_refusal(stage, after).reason == "AA24 signature error"
    assert stage.token_balance(recipient) == 2 * USDX
