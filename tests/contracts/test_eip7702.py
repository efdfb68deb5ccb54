"""EIP-7702: an EOA delegating to the SessionAccount code is its own owner, needs no
initialisation, and keeps its session state safe across re-delegation.

titanoboa (py-evm Prague) resolves delegation designators for calls made inside the EVM but
does not process type-4 transactions; the tests install the designator directly (what an
applied authorization leaves in state) and run top-level calls with the delegate's code in the
EOA's context. The same flow with a real type-4 transaction runs on the anvil chain
(tests/chain)."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    calldata,
    delegate_7702,
    double_deployer,
    make_key,
    permission,
    rule,
    single,
    user_op,
    with_signature,
)
from test_account import MAGIC, _account_message_digest
from test_session_rules import TRANSFER, transfer

from sessionward.contracts import load_deployer
from sessionward.contracts.encoding import owner_user_op_signature
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call


@pytest.fixture
def eoa() -> Key:
    return make_key("eoa-7702")


@pytest.fixture
def delegated(world: World, eoa: Key) -> Wallet:
    world.token.mint(eoa.address, 100 * UNIT)
    boa.env.set_balance(eoa.address, 10**18)
    return Wallet(delegate_7702(eoa.address, world.implementation), eoa, world.relayer)


def _account_word_slot() -> int:
    layout = load_deployer("SessionAccount").compiler_data.storage_layout["storage_layout"]
    base = layout["sessions"]["_account"]["slot"]
    return int.from_bytes(
        keccak256(base.to_bytes(32, "big") + keccak256(b"sessionward.account.v1")), "big"
    )


def test_a_delegated_eoa_is_its_own_owner_without_initialisation(
    world: World, delegated: Wallet, eoa: Key
) -> None:
    assert boa.env.get_code(eoa.address) == b"\xef\x01\x00" + bytes.fromhex(
        addr(world.implementation)[2:]
    )
    assert addr(delegated.contract.owner()) == eoa.address
    assert delegated.contract.epoch() == 0


def test_the_eoa_executes_by_calling_itself_and_nobody_else_can(
    world: World, delegated: Wallet, eoa: Key
) -> None:
    pay = single(Call(addr(world.token), 0, calldata(TRANSFER, world.relayer, UNIT)))
    with boa.reverts("NOT_AUTHORIZED"):
        delegated.owner_execute(pay, sender=world.relayer)
    delegated.owner_execute(pay, sender=eoa.address)
    assert world.token.balanceOf(world.relayer) == UNIT


def test_the_eoa_key_grants_a_session_that_spends_from_the_eoa(
    world: World, delegated: Wallet, eoa: Key, session: Key
) -> None:
    grant = delegated.grant(
        session,
        permissions=[permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)])],
    )
    with boa.reverts("SIGNATURE_INVALID"):
        delegated.enable(grant, delegated.sign_grant(grant, make_key("mallory")))
    delegated.enable(grant)
    delegated.run(session, single(transfer(world, world.relayer, 2 * UNIT)))
    assert world.token.balanceOf(eoa.address) == 98 * UNIT
    with boa.reverts("SELF_CALL_FORBIDDEN"):
        delegated.run(session, single(Call(eoa.address, 0, calldata("revoke_all()"))))


def test_erc1271_on_the_delegated_eoa_checks_the_eoa_key(
    world: World, delegated: Wallet, eoa: Key
) -> None:
    message = keccak256(b"7702 login")
    signature = eoa.sign(_account_message_digest(delegated.chain_id, eoa.address, message))
    assert delegated.contract.isValidSignature(message, signature) == MAGIC


def test_calls_from_other_contracts_follow_the_delegation(
    world: World, delegated: Wallet, eoa: Key
) -> None:
    pay = single(Call(addr(world.token), 0, calldata(TRANSFER, world.relayer, UNIT)))
    op = user_op(eoa.address, delegated.contract.execute.prepare_calldata(*pay))
    op = with_signature(
        op,
        owner_user_op_signature(
            eoa.sign(personal_message_hash(world.entry_point.get_user_op_hash(op)))
        ),
    )
    world.entry_point.handle_op(op)  # EntryPoint -> EOA: py-evm loads the delegate's code
    assert world.token.balanceOf(world.relayer) == UNIT


def test_the_account_word_lives_at_its_namespaced_slot(
    world: World, delegated: Wallet, eoa: Key, session: Key
) -> None:
    delegated.enable(delegated.grant(session, permissions=[permission(world.token, TRANSFER)]))
    word = boa.env.get_storage(eoa.address, _account_word_slot())
    assert (word >> 248, (word >> 64) & (2**32 - 1)) == (2, 1)  # layout tag, one grant so far
    assert all(boa.env.get_storage(eoa.address, slot) == 0 for slot in range(16))


def test_re_delegating_to_foreign_code_and_back_keeps_the_sessions_intact(
    world: World, delegated: Wallet, eoa: Key, session: Key
) -> None:
    delegated.enable(delegated.grant(session, permissions=[permission(world.token, TRANSFER)]))
    before = delegated.state(session)
    clobber_code = double_deployer("Clobber").deploy()
    foreign: Any = delegate_7702(eoa.address, clobber_code, double_deployer("Clobber"))
    foreign.scribble(sender=eoa.address)
    assert boa.env.get_storage(eoa.address, 0) == 2**256 - 1
    back = Wallet(delegate_7702(eoa.address, world.implementation), eoa, world.relayer)
    assert back.state(session) == before
    assert addr(back.contract.owner()) == eoa.address
    back.run(session, single(transfer(world, world.relayer, UNIT)))
    assert world.token.balanceOf(world.relayer) == UNIT


@pytest.mark.parametrize("tag", [1, 3], ids=["sequential-nonce-layout", "future-layout"])
def test_a_foreign_layout_tag_stops_the_account(
    world: World, delegated: Wallet, eoa: Key, session: Key, tag: int
) -> None:
    grant = delegated.grant(session, permissions=[permission(world.token, TRANSFER)])
    boa.env.set_storage(eoa.address, _account_word_slot(), tag << 248)
    with boa.reverts("STORAGE_LAYOUT_MISMATCH"):
        delegated.enable(grant)
    with boa.reverts("STORAGE_LAYOUT_MISMATCH"):
        delegated.contract.epoch()
