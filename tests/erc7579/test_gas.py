"""Gas of an ERC-20 transfer as a user operation through the real EntryPoint v0.7 on anvil:
the session path through SessionWard's ERC-7579 module on the OpenZeppelin account, against
SessionAccount's session path and each account's owner path. Every figure is the ``gasUsed`` of
a mined ``handleOps`` transaction of one operation (intrinsic and calldata gas included), in
steady state (the same kind of operation ran once before, the recipient already holds tokens),
each account prepaid by an EntryPoint deposit (no prefund transfer). Run with ``-s`` for the
table.

Goal (issue 17): the module's session overhead over its account's owner path is at most
SessionAccount's session overhead over its owner path + 10,000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from erc4337_support import ONE_ETH, USDX, Key, Stage, Wallet, transfer_call
from module_support import deploy_module, new_module_wallet
from oz_account import handle_op, op_outcome

from sessionward.contracts.encoding import PackedUserOperation

pytestmark = pytest.mark.anvil


@dataclass
class RuleFreeWallet(Wallet):
    """A SessionAccount whose session grant has the same scope as the module's: USDX.transfer
    with no argument rule."""

    def grant(self) -> dict[str, Any]:
        grant = super().grant()
        grant["nonce"] = 2
        grant["envelope"]["permissions"][0]["rules"] = []
        return grant


def _measure(
    stage: Stage,
    build: Callable[[], PackedUserOperation],
    op_hash: Callable[[PackedUserOperation], bytes],
) -> int:
    """Mine the operation twice (the first brings storage to steady state); the second's gas."""
    gas = 0
    for _ in range(2):
        op = build()
        receipt = handle_op(stage, op, Key())
        assert op_outcome(receipt, op_hash(op))[0], "the operation failed"
        gas = receipt.gas_used
    return gas


@pytest.fixture(scope="module")
def gas(stage: Stage) -> dict[str, int]:
    usdx = stage.demo.token("USDX")
    module_wallet = new_module_wallet(stage, deploy_module(stage))
    plain = stage.new_wallet()
    base = stage.new_wallet()
    rule_free = RuleFreeWallet(**{f: getattr(base, f) for f in Wallet.__dataclass_fields__})
    rule_free.enable_session()
    for address in (module_wallet.address, plain.address, rule_free.address):
        stage.entry_point.transact(stage.deployer, "depositTo", address, value=ONE_ETH)

    oz = module_wallet.account
    results = {
        "OZ AccountERC7579, owner": _measure(
            stage,
            lambda: oz.owner_op(
                oz.execute_data(transfer_call(usdx, module_wallet.recipient, USDX))
            ),
            oz.op_hash,
        ),
        "OZ AccountERC7579, session via SessionWard module": _measure(
            stage,
            lambda: module_wallet.session_op(transfer_call(usdx, module_wallet.recipient, USDX)),
            oz.op_hash,
        ),
        "SessionAccount, owner": _measure(
            stage, lambda: plain.owner_op(transfer_call(usdx, plain.recipient, USDX)), plain.op_hash
        ),
        "SessionAccount, session (no rule)": _measure(
            stage,
            lambda: rule_free.session_op(transfer_call(usdx, rule_free.recipient, USDX)),
            rule_free.op_hash,
        ),
        "SessionAccount, session (recipient 'in' rule)": _measure(
            stage,
            lambda: plain.session_op(transfer_call(usdx, plain.recipient, USDX)),
            plain.op_hash,
        ),
    }
    print(f"\n{'handleOps of one USDX transfer operation':<52}{'gas used':>10}")
    for name, used in results.items():
        print(f"{name:<52}{used:>10,}")
    return results


def test_the_module_session_overhead_is_within_sessionaccounts_plus_10k(
    gas: dict[str, int],
) -> None:
    module_overhead = (
        gas["OZ AccountERC7579, session via SessionWard module"] - gas["OZ AccountERC7579, owner"]
    )
    account_overhead = gas["SessionAccount, session (no rule)"] - gas["SessionAccount, owner"]
    print(f"module session overhead {module_overhead:,}, SessionAccount's {account_overhead:,}")
    assert module_overhead <= account_overhead + 10_000
