"""Gas of the account's main paths, measured as fresh transactions (steady state: every slot the
call writes already holds a non-zero value, as after the first use). Each measurement resets the
access lists and the storage original values and applies the refund, so the totals are what a
receipt reports (``bench/gas.py`` measures the same paths as mined transactions).

Goals (total transaction gas, intrinsic calldata included): a session call costs at most the
owner's equivalent call + 25,000; an ERC-20 transfer under a cumulative token limit at most the
owner's transfer + 30,000; revoking a session at most 30,000. Run with ``-s`` to see the table.
"""

from __future__ import annotations

from typing import Any

import pytest
from contracts_support import (
    DAY,
    UNIT,
    Key,
    Wallet,
    World,
    batch,
    make_key,
    permission,
    rule,
    single,
    token_limit,
    transaction_gas,
    transfer,
)

from sessionward.contracts.encoding import grant_struct

pytestmark = pytest.mark.ignore_isolation  # measuring resets boa's access journal


def _owner_execute(wallet: Wallet, execution: tuple[bytes, bytes]) -> tuple[int, int]:
    mode, ec = execution
    data = wallet.contract.execute.prepare_calldata(mode, ec)
    return transaction_gas(
        wallet.owner.address, wallet.contract, data, lambda: wallet.owner_execute(execution)
    )


def _session_execute(wallet: Wallet, key: Key, execution: tuple[bytes, bytes]) -> tuple[int, int]:
    import boa

    mode, ec = execution
    nonce = wallet.contract.session_nonce(key.address)
    deadline = boa.env.timestamp + 600
    sig = wallet.session_signature(key, mode, ec, nonce=nonce, deadline=deadline)
    data = wallet.contract.execute_with_session.prepare_calldata(
        key.address, mode, ec, nonce, deadline, sig
    )
    return transaction_gas(
        wallet.relayer,
        wallet.contract,
        data,
        lambda: wallet.run(key, execution, nonce=nonce, deadline=deadline, signature=sig),
    )


def _permissions(world: World) -> list[dict[str, Any]]:
    recipient = rule(0, "in", world.relayer, world.wallet.address, arg="to")
    return [
        permission(world.token, "transfer(address,uint256)", rules=[recipient]),
        permission(world.token, "approve(address,uint256)", rules=[recipient]),
        permission(world.target, "record(uint256,address,bytes32)"),
    ]


@pytest.fixture(scope="module")
def gas(world: World) -> dict[str, tuple[int, int]]:
    wallet = world.wallet
    results: dict[str, tuple[int, int]] = {}
    plain, limited = make_key("gas-plain"), make_key("gas-limited")

    one = single(transfer(world, world.relayer, UNIT))
    three = batch([transfer(world, world.relayer, UNIT)] * 3)
    wallet.owner_execute(one)  # the recipient's balance slot is non-zero from here on
    results["owner single call"] = _owner_execute(wallet, one)
    results["owner batch of 3"] = _owner_execute(wallet, three)

    grant = wallet.grant(plain, permissions=_permissions(world))
    sig = wallet.sign_grant(grant)
    data = wallet.contract.enable_session.prepare_calldata(grant_struct(grant), sig)
    results["enable 3-permission session"] = transaction_gas(
        world.relayer, wallet.contract, data, lambda: wallet.enable(grant, sig)
    )
    wallet.run(plain, one)  # nonce and uses are non-zero from here on
    results["session single call"] = _session_execute(wallet, plain, one)
    results["session batch of 3"] = _session_execute(wallet, plain, three)

    wallet.enable(
        wallet.grant(
            limited,
            permissions=_permissions(world)[:1],
            token_limits=[token_limit(world.token, 1_000 * UNIT, DAY)],
            revoker=world.relayer,
        )
    )
    wallet.run(limited, one)
    results["session ERC-20 transfer, token limit"] = _session_execute(wallet, limited, one)

    revoke = wallet.contract.revoke_session
    results["revoke (owner)"] = transaction_gas(
        wallet.owner.address,
        wallet.contract,
        revoke.prepare_calldata(plain.address),
        lambda: revoke(plain.address, sender=wallet.owner.address),
    )
    results["revoke (grant's revoker)"] = transaction_gas(
        world.relayer,
        wallet.contract,
        revoke.prepare_calldata(limited.address),
        lambda: revoke(limited.address, sender=world.relayer),
    )
    print("\n{:<40}{:>12}{:>12}".format("path", "execution", "total"))
    for name, (execution, total) in results.items():
        print(f"{name:<40}{execution:>12,}{total:>12,}")
    return results


def test_a_session_call_costs_at_most_25k_more_than_the_owners(
    gas: dict[str, tuple[int, int]],
) -> None:
    assert gas["session single call"][1] <= gas["owner single call"][1] + 25_000
    assert gas["session batch of 3"][1] <= gas["owner batch of 3"][1] + 25_000


def test_a_token_limited_transfer_costs_at_most_30k_more_than_the_owners(
    gas: dict[str, tuple[int, int]],
) -> None:
    assert gas["session ERC-20 transfer, token limit"][1] <= gas["owner single call"][1] + 30_000


def test_revoking_a_session_costs_at_most_30k(gas: dict[str, tuple[int, int]]) -> None:
    assert gas["revoke (owner)"][1] <= 30_000
    assert gas["revoke (grant's revoker)"][1] <= 30_000
