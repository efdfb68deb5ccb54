"""Gas of an ERC-20 transfer as a user operation through the real EntryPoint v0.7: a session's
operation (whose validation also checks the scope and charges the fee budget) costs at most the
owner's + 30,000. Measured like test_gas.py (a fresh ``handleOps`` transaction of one operation
from the bundler, refunds applied), in steady state (each kind ran once before), with the
account's EntryPoint deposit covering the prefund. ``bench/gas.py`` reports the same paths as
mined receipts. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

from typing import Any

import pytest
from contracts_support import (
    ETHER,
    UNIT,
    Key,
    World,
    addr,
    calldata,
    deploy_entry_point_v07,
    deploy_world,
    entry_point_v07_artifact,
    make_key,
    permission,
    rule,
    single,
    transaction_gas,
    user_op,
    with_signature,
)

from sessionward.contracts.encoding import owner_user_op_signature, session_user_op_signature
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call

pytestmark = [
    pytest.mark.ignore_isolation,  # measuring resets boa's access journal
    pytest.mark.skipif(
        entry_point_v07_artifact() is None,
        reason="npm @account-abstraction/contracts not installed",
    ),
]

TRANSFER = "transfer(address,uint256)"


@pytest.fixture(scope="module")
def world() -> World:
    return deploy_world(deploy_entry_point_v07())


def _handle_op(world: World, bundler: str, call_data: bytes, signer: Key, session: bool) -> Any:
    """Measure ``handleOps`` of one operation of the account carrying ``call_data``."""
    wallet = world.wallet
    entry_point = world.entry_point
    op = user_op(
        wallet.address,
        call_data,
        nonce=entry_point.getNonce(wallet.address, 0),
        verification_gas=300_000,
        call_gas=200_000,
        pre_verification_gas=60_000,
    )
    signature = signer.sign(personal_message_hash(entry_point.getUserOpHash(op)))
    envelope = (
        session_user_op_signature(signer.address, signature)
        if session
        else owner_user_op_signature(signature)
    )
    op = with_signature(op, envelope)
    data = entry_point.handleOps.prepare_calldata([op], bundler)
    before = world.token.balanceOf(world.relayer)
    gas = transaction_gas(
        bundler, entry_point, data, lambda: entry_point.handleOps([op], bundler, sender=bundler)
    )
    assert world.token.balanceOf(world.relayer) == before + UNIT, "the operation did not run"
    return gas


@pytest.fixture(scope="module")
def gas(world: World) -> dict[str, tuple[int, int]]:
    wallet = world.wallet
    bundler = make_key("bundler").address
    world.entry_point.depositTo(wallet.address, value=ETHER, sender=wallet.address)
    pay = single(Call(addr(world.token), 0, calldata(TRANSFER, world.relayer, UNIT)))
    owner_call = wallet.contract.execute.prepare_calldata(*pay)
    key = make_key("user-op-gas")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[
                permission(
                    world.token, TRANSFER, rules=[rule(0, "in", world.relayer, wallet.address)]
                )
            ],
            max_fee_wei=ETHER,
        )
    )
    session_call = wallet.contract.execute_session_op.prepare_calldata(key.address, *pay)
    results: dict[str, tuple[int, int]] = {}
    for name, call_data, signer, session in (
        ("owner user operation", owner_call, wallet.owner, False),
        ("session user operation", session_call, key, True),
    ):
        _handle_op(world, bundler, call_data, signer, session)  # steady state from here on
        results[name] = _handle_op(world, bundler, call_data, signer, session)
    print("\n{:<40}{:>12}{:>12}".format("path", "execution", "total"))
    for name, (execution, total) in results.items():
        print(f"{name:<40}{execution:>12,}{total:>12,}")
    return results


def test_a_session_user_operation_costs_at_most_30k_more_than_the_owners(
    gas: dict[str, tuple[int, int]],
) -> None:
    assert gas["session user operation"][1] <= gas["owner user operation"][1] + 30_000
