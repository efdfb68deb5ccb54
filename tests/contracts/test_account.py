"""The account itself: the owner's `execute`, ERC-1271 bound to the account, ether, the factory."""

from __future__ import annotations

import boa
import pytest
from contracts_support import (
    ACCOUNT_SALT,
    ETHER,
    UNIT,
    Wallet,
    World,
    addr,
    at,
    batch,
    calldata,
    double_deployer,
    factory_account,
    make_key,
    single,
)
from eth.exceptions import Revert

from sessionward.contracts.proxy import (
    PROXY_CODE_SIZE,
    account_address,
    owner_from_code,
    proxy_initcode,
    proxy_runtime,
)
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.typed_data import account_message_digest
from sessionward.domain.calldata import Call

MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")
# One home for the wrapper's digest (the SDK signs with it too); the tests keep their name.
_account_message_digest = account_message_digest


# ------------------------------------------------------------------------------ execute


def test_the_owner_executes_single_and_batch_calls(world: World, wallet: Wallet) -> None:
    recipient = make_key("recipient").address
    pay = Call(addr(world.token), 0, calldata("transfer(address,uint256)", recipient, UNIT))
    wallet.owner_execute(single(pay))
    wallet.owner_execute(batch([pay, pay, Call(recipient, ETHER, b"")]))
    assert world.token.balanceOf(recipient) == 3 * UNIT
    assert boa.env.get_balance(recipient) == ETHER  # the owner may send plain value


def test_only_the_owner_the_account_or_the_entry_point_may_execute(
    world: World, wallet: Wallet
) -> None:
    pay = single(
        Call(addr(world.token), 0, calldata("transfer(address,uint256)", world.relayer, UNIT))
    )
    for stranger in (world.relayer, make_key("session-1").address, addr(world.token)):
        with boa.reverts("NOT_AUTHORIZED"):
            wallet.owner_execute(pay, sender=stranger)
    wallet.owner_execute(pay, sender=addr(world.entry_point))
    assert world.token.balanceOf(world.relayer) == UNIT


def test_the_owner_can_call_the_account_through_execute(world: World, wallet: Wallet) -> None:
    wallet.owner_execute(single(Call(wallet.address, 0, calldata("revoke_all()"))))
    assert wallet.contract.epoch() == 1


def test_the_owner_gets_the_same_shape_checks(world: World, wallet: Wallet) -> None:
    with boa.reverts("EMPTY_BATCH"):
        wallet.owner_execute(batch([]))
    with boa.reverts("CALLDATA_MALFORMED"):
        wallet.owner_execute((single(Call(world.relayer, 0, b""))[0], b"\x01" * 51))


def test_the_account_receives_ether_and_refuses_unknown_functions(
    world: World, wallet: Wallet
) -> None:
    before = boa.env.get_balance(wallet.address)
    boa.env.set_balance(world.relayer, ETHER)
    boa.env.raw_call(wallet.address, sender=world.relayer, value=ETHER)
    assert boa.env.get_balance(wallet.address) == before + ETHER
    with pytest.raises(Revert) as refused:
        boa.env.raw_call(wallet.address, sender=world.relayer, data=bytes.fromhex("deadbeef"))
    assert b"CALLDATA_MALFORMED" in refused.value.args[0]


# ------------------------------------------------------------------------------ ERC-1271


def test_is_valid_signature_accepts_the_owners_signature_for_this_account_only(
    world: World, wallet: Wallet
) -> None:
    message = keccak256(b"sign in to example.org")
    signature = wallet.owner.sign(_account_message_digest(wallet.chain_id, wallet.address, message))
    assert wallet.contract.isValidSignature(message, signature) == MAGIC
    other = factory_account(world, wallet.owner.address, b"\x04" * 32)
    assert other.isValidSignature(message, signature) == INVALID
    boa.env.evm.patch.chain_id = 5
    assert wallet.contract.isValidSignature(message, signature) == INVALID


def test_is_valid_signature_refuses_raw_hash_session_and_malleable_signatures(
    world: World, wallet: Wallet
) -> None:
    message = keccak256(b"permit2 order")
    digest = _account_message_digest(wallet.chain_id, wallet.address, message)
    assert wallet.contract.isValidSignature(message, wallet.owner.sign(message)) == INVALID
    assert wallet.contract.isValidSignature(message, make_key("session-1").sign(digest)) == INVALID
    good = wallet.owner.sign(digest)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = (
        good[:32]
        + (n - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - good[64]])
    )
    assert wallet.contract.isValidSignature(message, twin) == INVALID
    assert wallet.contract.isValidSignature(message, b"") == INVALID


def test_is_valid_signature_defers_to_an_erc1271_owner(world: World) -> None:
    signer = make_key("smart-owner-signer")
    smart_owner = double_deployer("Signer1271").deploy(signer.address)
    account = factory_account(world, smart_owner)
    message = keccak256(b"hello")
    digest = _account_message_digest(int(boa.env.evm.patch.chain_id), addr(account), message)
    assert account.isValidSignature(message, signer.sign(digest)) == MAGIC
    assert account.isValidSignature(message, make_key("x").sign(digest)) == INVALID


def test_an_erc1271_owner_executes_through_its_own_contract(world: World) -> None:
    signer = make_key("smart-owner-signer")
    smart_owner = double_deployer("Signer1271").deploy(signer.address)
    account = factory_account(world, smart_owner)
    world.token.mint(addr(account), UNIT)
    mode, ec = single(
        Call(addr(world.token), 0, calldata("transfer(address,uint256)", world.relayer, UNIT))
    )
    smart_owner.forward(
        addr(account), account.execute.prepare_calldata(mode, ec), sender=signer.address
    )
    assert world.token.balanceOf(world.relayer) == UNIT


# ------------------------------------------------------------------------------ factory


def test_the_factory_deploys_the_owners_proxy_at_its_create2_address(world: World) -> None:
    owner = make_key("fresh-owner").address
    salt = b"\x09" * 32
    predicted = world.factory.get_address(owner, salt)
    assert addr(predicted) == account_address(
        addr(world.factory), addr(world.implementation), owner, salt
    )
    account = world.factory.create_account(owner, salt)
    (event,) = [e for e in world.factory.get_logs() if type(e).__name__ == "AccountCreated"]
    assert addr(account) == addr(predicted) == addr(event.account)
    code = boa.env.get_code(account)
    assert code == proxy_runtime(addr(world.implementation), owner) and len(code) == PROXY_CODE_SIZE
    assert owner_from_code(code, addr(account)) == owner
    assert addr(at("SessionAccount", account).owner()) == owner


def test_create_account_is_idempotent_and_the_address_depends_on_owner_and_salt(
    world: World, wallet: Wallet
) -> None:
    again = world.factory.create_account(wallet.owner.address, ACCOUNT_SALT)
    assert addr(again) == wallet.address
    assert wallet.contract.epoch() == 0
    addresses = {
        addr(world.factory.get_address(owner, salt))
        for owner in (wallet.owner.address, make_key("other-owner").address)
        for salt in (ACCOUNT_SALT, b"\x05" * 32)
    }
    assert len(addresses) == 4


def test_the_factory_refuses_the_zero_owner(world: World) -> None:
    with boa.reverts("INPUT_MALFORMED"):
        world.factory.create_account("0x" + "00" * 20, ACCOUNT_SALT)


def test_the_implementation_owns_itself_and_is_inert(world: World) -> None:
    implementation = world.implementation
    assert addr(implementation.owner()) == addr(implementation)
    with boa.reverts("NOT_AUTHORIZED"):
        implementation.execute(*single(Call(world.relayer, 0, b"")), sender=world.relayer)


def test_proxy_helpers_reject_bad_inputs() -> None:
    with pytest.raises(ValueError):
        proxy_runtime("0x1234", "0x" + "00" * 20)
    with pytest.raises(ValueError):
        account_address("0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, b"short")
    assert proxy_initcode("0x" + "11" * 20, "0x" + "22" * 20)[10:] == proxy_runtime(
        "0x" + "11" * 20, "0x" + "22" * 20
    )
    assert owner_from_code(b"\xef\x01\x00" + b"\x11" * 20, "0x" + "AB" * 20) == "0x" + "ab" * 20
