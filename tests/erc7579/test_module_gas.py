"""Gas of an ERC-20 transfer on anvil: as a user operation through the real EntryPoint v0.7,
the session path through SessionWard's ERC-7579 module on the OpenZeppelin account and on
SessionWard's own SessionAccount7579, against
SessionAccount's session path and each account's owner path; as a relayed session call, the
module's ``execute_with_session`` (executor) against SessionAccount's. Every figure is the
``gasUsed`` of a mined transaction (intrinsic and calldata gas included): ``handleOps`` of one
operation, or the relayer's call; in steady state (the same kind of call ran once before, the
recipient already holds tokens), each account prepaid by an EntryPoint deposit (no prefund
transfer). Run with ``-s`` for the table.

Goal (issue 17): the module's session overhead over its account's owner path is at most
SessionAccount's session overhead over its owner path + 10,000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from account7579_support import ACCOUNT7579
from erc4337_support import ONE_ETH, USDX, Key, Stage, Wallet, execution, transfer_call
from module_support import deploy_module, new_module_wallet
from oz_account import MODULE_TYPE_EXECUTOR, MODULE_TYPE_VALIDATOR, handle_op, op_outcome

from sessionward.chain.contracts import transact
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto import typed_data
from sessionward.domain.calldata import Call

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


def _measure_relayed(stage: Stage, to: str, build: Callable[[int], bytes]) -> int:
    """Relay the call twice, with nonces 100 and 101; the second's gas."""
    relayer = Key()
    stage.chain.set_balance(relayer.address, ONE_ETH)
    gas = 0
    for nonce in (100, 101):
        receipt = transact(
            stage.chain, LocalTransactionSigner(relayer.secret), to=to, data=build(nonce)
        )
        gas = receipt.gas_used
    return gas


def _session_account_relayed(wallet: Wallet, call: Call, nonce: int) -> bytes:
    """SessionAccount's ``execute_with_session`` of ``call``, signed by the session key."""
    mode, calldata = execution((call,))
    deadline = wallet.stage.chain.block_timestamp() + 600
    digest = typed_data.session_call_digest(
        wallet.stage.chain.chain_id,
        wallet.address,
        wallet.session.address,
        typed_data.execution_hash(mode, calldata),
        nonce,
        deadline,
    )
    return wallet.account_code.encode(
        "execute_with_session",
        wallet.session.address,
        mode,
        calldata,
        nonce,
        deadline,
        wallet.session.sign(digest),
    )


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
    module_wallet = new_module_wallet(
        stage, deploy_module(stage), types=(MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR)
    )
    ruled_wallet = new_module_wallet(stage, deploy_module(stage), enable=False)
    recipient_word = bytes(12) + bytes.fromhex(ruled_wallet.recipient[2:])
    ruled_wallet.enable(
        ruled_wallet.grant(
            permissions=[
                ruled_wallet.permission(
                    usdx,
                    "transfer(address,uint256)",
                    [{"arg": "to", "op": 4, "offset": 0, "values": [recipient_word]}],
                )
            ]
        )
    )
    own_wallet = new_module_wallet(
        stage,
        deploy_module(stage),
        types=(MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR),
        account_kind=ACCOUNT7579,
    )
    plain = stage.new_wallet()
    base = stage.new_wallet()
    rule_free = RuleFreeWallet(**{f: getattr(base, f) for f in Wallet.__dataclass_fields__})
    rule_free.enable_session()
    for address in (
        module_wallet.address,
        ruled_wallet.address,
        own_wallet.address,
        plain.address,
        rule_free.address,
    ):
        stage.entry_point.transact(stage.deployer, "depositTo", address, value=ONE_ETH)

    oz = module_wallet.account
    own = own_wallet.account
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
        "OZ AccountERC7579, session via module (recipient 'in' rule)": _measure(
            stage,
            lambda: ruled_wallet.session_op(transfer_call(usdx, ruled_wallet.recipient, USDX)),
            ruled_wallet.account.op_hash,
        ),
        "SessionAccount7579, owner": _measure(
            stage,
            lambda: own.owner_op(own.execute_data(transfer_call(usdx, own_wallet.recipient, USDX))),
            own.op_hash,
        ),
        "SessionAccount7579, session via SessionWard module": _measure(
            stage,
            lambda: own_wallet.session_op(transfer_call(usdx, own_wallet.recipient, USDX)),
            own.op_hash,
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
        "relayed: OZ AccountERC7579 via SessionWard module (executor)": _measure_relayed(
            stage,
            module_wallet.module_address,
            lambda nonce: module_wallet.relayed_call_data(
                transfer_call(usdx, module_wallet.recipient, USDX),
                nonce=nonce,
                deadline=stage.chain.block_timestamp() + 600,
            ),
        ),
        "relayed: SessionAccount7579 via SessionWard module (executor)": _measure_relayed(
            stage,
            own_wallet.module_address,
            lambda nonce: own_wallet.relayed_call_data(
                transfer_call(usdx, own_wallet.recipient, USDX),
                nonce=nonce,
                deadline=stage.chain.block_timestamp() + 600,
            ),
        ),
        "relayed: SessionAccount execute_with_session (no rule)": _measure_relayed(
            stage,
            rule_free.address,
            lambda nonce: _session_account_relayed(
                rule_free, transfer_call(usdx, rule_free.recipient, USDX), nonce
            ),
        ),
    }
    print(f"\n{'one USDX transfer (user operation, or relayed)':<62}{'gas used':>10}")
    for name, used in results.items():
        print(f"{name:<62}{used:>10,}")
    return results


def test_the_module_session_overhead_is_within_sessionaccounts_plus_10k(
    gas: dict[str, int],
) -> None:
    module_overhead = (
        gas["OZ AccountERC7579, session via SessionWard module"] - gas["OZ AccountERC7579, owner"]
    )
    account_overhead = gas["SessionAccount, session (no rule)"] - gas["SessionAccount, owner"]
    own_overhead = (
        gas["SessionAccount7579, session via SessionWard module"] - gas["SessionAccount7579, owner"]
    )
    print(
        f"module session overhead {module_overhead:,} (OZ account), {own_overhead:,}"
        f" (SessionAccount7579), SessionAccount's {account_overhead:,}"
    )
    assert module_overhead <= account_overhead + 10_000


def test_a_relayed_session_call_through_the_module_stays_within_sessionaccounts_plus_12k(
    gas: dict[str, int],
) -> None:
    """A regression guard, not the issue's goal (which is about user operations): the module's
    relayed call measured 10,140 above SessionAccount's, mostly one more cold account (the
    account called by the module, besides the module's helper; SessionAccount's proxy has only
    its implementation) and AccountERC7579's executor check in ``executeFromExecutor``."""
    assert (
        gas["relayed: OZ AccountERC7579 via SessionWard module (executor)"]
        <= gas["relayed: SessionAccount execute_with_session (no rule)"] + 12_000
    )
