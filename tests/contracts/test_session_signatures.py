"""A session call is the session key's EIP-712 `SessionCall`: one nonce, one account, one chain,
one execution, one deadline; replays and forged twins are refused. Nonces are unordered: any
nonce the key has not used on this account is accepted once (NONCE_REPLAYED afterwards)."""

from __future__ import annotations

import boa
import pytest
from contracts_support import (
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    events,
    factory_account,
    make_key,
    permission,
    rule,
    single,
)
from test_session_rules import RECORD, TRANSFER, record, refused, transfer

from sessionward.crypto.secp256k1 import SECP256K1_N


@pytest.fixture
def enabled(world: World, wallet: Wallet, session: Key) -> Key:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.target, RECORD),
                permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)]),
            ],
        )
    )
    return session


def _signed(
    wallet: Wallet,
    key: Key,
    execution: tuple[bytes, bytes],
    nonce: int = 0,
    deadline: int | None = None,
) -> tuple[int, bytes]:
    dl = boa.env.timestamp + 600 if deadline is None else deadline
    return dl, wallet.session_signature(key, *execution, nonce=nonce, deadline=dl)


def test_an_executed_call_emits_its_key_and_nonce(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    wallet.run(enabled, single(record(world)), nonce=9)
    (event,) = events(wallet.contract, "SessionExecuted")
    assert (addr(event.session_key), event.nonce) == (enabled.address, 9)


def test_replaying_an_executed_call_is_refused(world: World, wallet: Wallet, enabled: Key) -> None:
    execution = single(transfer(world, world.relayer, UNIT))
    deadline, signature = _signed(wallet, enabled, execution)
    wallet.run(enabled, execution, nonce=0, deadline=deadline, signature=signature)
    with boa.reverts("NONCE_REPLAYED"):
        wallet.run(enabled, execution, nonce=0, deadline=deadline, signature=signature)
    with boa.reverts("SIGNATURE_INVALID"):  # the same signature does not cover another nonce
        wallet.run(enabled, execution, nonce=1, deadline=deadline, signature=signature)
    assert world.token.balanceOf(world.relayer) == UNIT
    assert wallet.contract.session_nonce_used(enabled.address, 0)
    assert not wallet.contract.session_nonce_used(enabled.address, 1)


def test_a_call_submitted_with_another_nonce_than_it_was_signed_for_is_refused(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    execution = single(record(world))
    deadline, signature = _signed(wallet, enabled, execution, nonce=1)
    with boa.reverts("SIGNATURE_INVALID"):
        wallet.run(enabled, execution, nonce=0, deadline=deadline, signature=signature)
    assert not wallet.contract.session_nonce_used(enabled.address, 0)


def test_nonces_out_of_order_both_succeed_and_neither_replays(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    for nonce in (5, 2):
        wallet.run(enabled, single(record(world, nonce)), nonce=nonce)
        assert world.target.last_a() == nonce
    for nonce in (5, 2):
        with boa.reverts("NONCE_REPLAYED"):
            wallet.run(enabled, single(record(world, nonce)), nonce=nonce)
    used = [n for n in range(8) if wallet.contract.session_nonce_used(enabled.address, n)]
    assert used == [2, 5]
    assert wallet.contract.session_nonce(enabled.address) == 0  # the lowest unused nonce


def test_a_reverted_call_does_not_spend_its_nonce_nor_block_later_calls(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    too_much = single(transfer(world, world.relayer, 10**30))  # more than the account holds
    deadline, signature = _signed(wallet, enabled, too_much, nonce=0)
    with boa.reverts():
        wallet.run(enabled, too_much, nonce=0, deadline=deadline, signature=signature)
    wallet.run(enabled, single(transfer(world, world.relayer, UNIT)), nonce=1)
    assert not wallet.contract.session_nonce_used(enabled.address, 0)
    wallet.run(enabled, single(transfer(world, world.relayer, UNIT)), nonce=0)
    assert world.token.balanceOf(world.relayer) == 2 * UNIT
    assert wallet.contract.session_nonce(enabled.address) == 2


@pytest.mark.parametrize("nonce", [255, 256, 2**64, 2**256 - 1])
def test_any_nonce_in_any_bitmap_word_is_usable_once(
    world: World, wallet: Wallet, enabled: Key, nonce: int
) -> None:
    wallet.run(enabled, single(record(world, 7)), nonce=nonce)
    assert wallet.contract.session_nonce_used(enabled.address, nonce)
    assert not wallet.contract.session_nonce_used(enabled.address, nonce ^ 1)
    with boa.reverts("NONCE_REPLAYED"):
        wallet.run(enabled, single(record(world, 7)), nonce=nonce)
    assert wallet.contract.session_nonce(enabled.address) == 0


def test_session_nonce_is_the_lowest_unused_nonce_across_bitmap_words(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    for nonce in range(257):
        if nonce != 200:
            wallet.run(enabled, single(record(world)), nonce=nonce)
    assert wallet.contract.session_nonce(enabled.address) == 200
    wallet.run(enabled, single(record(world)), nonce=200)
    assert wallet.contract.session_nonce(enabled.address) == 257


def test_a_call_signed_for_account_a_is_refused_on_account_b_of_the_same_owner(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    other = Wallet(
        factory_account(world, wallet.owner.address, b"\x03" * 32), wallet.owner, world.relayer
    )
    world.token.mint(other.address, 10 * UNIT)
    other.enable(other.grant(enabled, permissions=[permission(world.token, TRANSFER)]))
    execution = single(transfer(world, world.relayer, UNIT))
    deadline, signature = _signed(wallet, enabled, execution)
    with boa.reverts("SIGNATURE_INVALID"):
        other.run(enabled, execution, deadline=deadline, signature=signature)
    assert world.token.balanceOf(other.address) == 10 * UNIT


def test_a_call_signed_on_one_chain_is_refused_on_another(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    execution = single(record(world))
    deadline, signature = _signed(wallet, enabled, execution)
    boa.env.evm.patch.chain_id = 2
    with boa.reverts("SIGNATURE_INVALID"):
        wallet.run(enabled, execution, deadline=deadline, signature=signature)


def test_the_signature_binds_the_execution_and_the_deadline(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    deadline, signature = _signed(wallet, enabled, single(transfer(world, world.relayer, UNIT)))
    with boa.reverts("SIGNATURE_INVALID"):
        wallet.run(
            enabled,
            single(transfer(world, world.relayer, 2 * UNIT)),
            deadline=deadline,
            signature=signature,
        )
    with boa.reverts("SIGNATURE_INVALID"):
        wallet.run(
            enabled,
            single(transfer(world, world.relayer, UNIT)),
            deadline=deadline + 1,
            signature=signature,
        )


def test_the_high_s_twin_of_a_session_signature_is_malleable(world: World, enabled: Key) -> None:
    wallet = world.wallet
    execution = single(record(world))
    deadline, good = _signed(wallet, enabled, execution)
    s = int.from_bytes(good[32:64], "big")
    twin = good[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - good[64]])
    with boa.reverts("SIGNATURE_MALLEABLE"):
        wallet.run(enabled, execution, deadline=deadline, signature=twin)
    wallet.run(enabled, execution, deadline=deadline, signature=good)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (bytes(64) + b"\x1c", "SIGNER_ZERO_ADDRESS"),
        (b"\x01" * 64, "SIGNATURE_INVALID"),
        (b"\x01" * 64 + b"\x00", "SIGNATURE_INVALID"),
    ],
    ids=["zero", "64-bytes", "v-0"],
)
def test_a_malformed_session_signature_is_refused(
    world: World, wallet: Wallet, enabled: Key, signature: bytes, reason: str
) -> None:
    with boa.reverts(reason):
        wallet.run(enabled, single(record(world)), signature=signature)
    assert not wallet.contract.session_nonce_used(enabled.address, 0)


def test_only_the_session_key_signs_for_its_session(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    for signer in (make_key("mallory"), wallet.owner):
        with boa.reverts("SIGNATURE_INVALID"):
            wallet.run(enabled, single(record(world)), signer=signer)


def test_an_unknown_session_key_is_refused(world: World) -> None:
    refused(world, make_key("never-granted"), single(record(world)), "SESSION_UNKNOWN")


def test_anyone_may_relay_a_signed_call(world: World, wallet: Wallet, enabled: Key) -> None:
    wallet.run(enabled, single(record(world, 3)), sender=make_key("any-relayer").address)
    assert world.target.last_a() == 3
