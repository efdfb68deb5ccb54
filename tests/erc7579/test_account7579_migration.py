"""Moving from SessionAccount to SessionAccount7579, on anvil with the real EntryPoint v0.7 (the
path docs/contracts.md describes), and the new account's storage layout, which an EIP-7702
EOA carries over from SessionAccount.

(a) A factory SessionAccount's owner gets a SessionAccount7579 from its factory (same owner
key), revokes every session of the old account and moves its USDX and ether with one owner
operation; a session enabled on the new account works as a user operation and relayed; the old
session key is refused on both accounts.

(b) An EIP-7702 EOA delegated to SessionAccount re-delegates to SessionAccount7579 (a type-4
transaction), installs the module with ``install_session_module`` sent to itself; its old
SessionAccount words stay in its storage but no answer of the new account reads them (planted
words at every SessionAccount slot a module address could key change nothing); the old session
key is refused, the old grant's SessionAccount-style signature cannot enable it in the module,
an ``AccountMessage`` ERC-1271 signature means the same before and after; a new session works.
The EOA revokes its SessionAccount sessions first (``revoke_all``), so delegating back finds
them revoked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from account7579_support import (
    MODULES_SLOT,
    Account7579,
    account_message_digest,
    create_account7579,
    delegate,
    eoa_account7579,
    installed_word_slot,
    world7579,
)
from erc4337_support import ONE_ETH, USDX, Key, Stage, Wallet, transfer_call
from module_support import ModuleWallet, deploy_module, revert_reason
from oz_account import (
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    handle_op,
    handle_op_refusal,
    op_outcome,
)

from sessionward.chain.contracts import (
    DeployedContract,
    storage_layout_path,
    transact,
)
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts import source_path
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
SESSION_ACCOUNT_SLOTS = range(14)  # SessionAccount's storage: HashMaps at slots 0..13


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


def _storage(rpc: JsonRpcClient, address: str, slot: int) -> int:
    value = rpc.request("eth_getStorageAt", [address, hex(slot), "latest"])
    assert isinstance(value, str)
    return int(value, 16)


def _layout(name: str) -> dict[str, object]:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle, JSONInput

    path = source_path(name)
    bundle = FilesystemInputBundle([path.parent, *(Path(p) for p in sys.path if p)])
    override = None
    layout_file = storage_layout_path(path)
    if layout_file.is_file():
        text = layout_file.read_text()
        override = JSONInput(
            contents=text,
            data=json.loads(text),
            source_id=-1,
            path=layout_file,
            resolved_path=layout_file,
        )
    output = compile_from_file_input(
        bundle.load_file(path),
        input_bundle=bundle,
        output_formats=["layout"],
        storage_layout_override=override,
    )
    layout = output["layout"]["storage_layout"]
    assert isinstance(layout, dict)
    return layout


def _slots(layout: dict[str, object]) -> list[int]:
    """Every variable's base slot, modules' variables included."""
    slots: list[int] = []
    for entry in layout.values():
        assert isinstance(entry, dict)
        if "slot" in entry:
            slots.append(int(entry["slot"]))
        else:
            slots += _slots(entry)
    return slots


def test_the_new_accounts_storage_is_one_namespaced_map_away_from_sessionaccounts() -> None:
    """SessionAccount's words are at its HashMaps' slots 0..13 (``keccak256(s ‖ key)``, nested
    maps hash again); SessionAccount7579 has one HashMap, at the override's slot
    ``keccak256("sessionward.account7579.modules")``, so its words are ``keccak256(S ‖ module)``
    with S none of 0..13: no preimage in common, no slot in common."""
    old = _slots(_layout("SessionAccount"))
    assert sorted(old) == list(SESSION_ACCOUNT_SLOTS)
    new = _layout("SessionAccount7579")
    assert new == {
        "_installed": {"type": "HashMap[address, uint256]", "n_slots": 1, "slot": MODULES_SLOT}
    }
    assert MODULES_SLOT not in SESSION_ACCOUNT_SLOTS


def _map_slot(slot: int, key: str) -> bytes:
    """Where a Vyper ``HashMap`` at ``slot`` keeps ``key``: ``keccak256(slot ‖ key)``."""
    return keccak256(slot.to_bytes(32, "big") + bytes.fromhex(key[2:]).rjust(32, b"\0"))


def _session_op_refusal(wallet: Wallet) -> str | None:
    op = wallet.session_op(transfer_call(wallet.stage.demo.token("USDX"), wallet.recipient, USDX))
    refusal = handle_op_refusal(wallet.stage, op)
    assert refusal.reason == "AA23 reverted"
    return refusal.inner_reason


def _old_key_on_new_account(new: ModuleWallet, old: Wallet) -> None:
    """The old session key is SESSION_UNKNOWN to the module on the new account, as a user
    operation and relayed."""
    pay = transfer_call(new.stage.demo.token("USDX"), old.recipient, USDX)
    refusal = handle_op_refusal(new.stage, new.session_op(pay, key=old.session))
    assert (refusal.reason, refusal.inner_reason) == ("AA23 reverted", "SESSION_UNKNOWN")
    relayed = new.relayed_call_data(
        pay, nonce=1, deadline=new.stage.chain.block_timestamp() + 600, key=old.session
    )
    assert revert_reason(new.stage, new.module_address, relayed, Key().address) == (
        "SESSION_UNKNOWN"
    )


def _new_session_works(new: ModuleWallet) -> None:
    """A session enabled by the owner's grant runs as a user operation and relayed."""
    stage = new.stage
    new.enable(new.grant())
    before = stage.token_balance(new.recipient)
    op = new.session_op(transfer_call(stage.demo.token("USDX"), new.recipient, 2 * USDX))
    assert op_outcome(handle_op(stage, op, Key()), new.account.op_hash(op))[0]
    relayed = new.relayed_call_data(
        transfer_call(stage.demo.token("USDX"), new.recipient, 3 * USDX),
        nonce=9,
        deadline=stage.chain.block_timestamp() + 600,
    )
    assert transact(stage.chain, stage.deployer, to=new.module_address, data=relayed).succeeded
    assert stage.token_balance(new.recipient) == before + 5 * USDX


def test_a_factory_sessionaccounts_owner_moves_to_a_sessionaccount7579(
    stage: Stage, module: DeployedContract
) -> None:
    old = stage.new_wallet()  # SessionAccount from its factory, one session enabled
    usdx = stage.demo.token("USDX")
    op = old.session_op(transfer_call(usdx, old.recipient, USDX))
    assert op_outcome(handle_op(stage, op, Key()), old.op_hash(op))[0]  # the old session works
    account = create_account7579(stage, module, old.owner, usdx=0, ether=0)
    assert account.contract.call_one("owner") == old.owner.address
    new = ModuleWallet(stage, account, module, Key(), Key().address)

    # One owner operation on the old account: revoke every session, move the tokens and ether.
    holdings = stage.token_balance(old.address)
    revoke_all = old.account_code.encode("revoke_all")
    move = old.owner_op(
        Call(old.address, 0, revoke_all),
        transfer_call(usdx, account.address, holdings),
        Call(account.address, 5 * ONE_ETH, b""),
    )
    assert op_outcome(handle_op(stage, move, Key()), old.op_hash(move))[0]
    assert stage.token_balance(account.address) == holdings
    assert stage.token_balance(old.address) == 0
    assert stage.chain.get_balance(account.address) == 5 * ONE_ETH

    assert _session_op_refusal(old) == "SESSION_REVOKED"  # the old key, on the old account
    _old_key_on_new_account(new, old)  # and on the new one
    _new_session_works(new)
    _old_key_on_new_account(new, old)


def test_an_eip7702_eoa_moves_from_sessionaccount_to_sessionaccount7579(
    stage: Stage, module: DeployedContract, rpc: JsonRpcClient
) -> None:
    old = stage.new_wallet(eip7702=True)  # the EOA delegated to SessionAccount, one session
    eoa, address, usdx = old.owner, old.address, stage.demo.token("USDX")
    op = old.session_op(transfer_call(usdx, old.recipient, USDX))
    assert op_outcome(handle_op(stage, op, Key()), old.op_hash(op))[0]
    old_session_slot = int.from_bytes(_map_slot(1, old.session.address), "big")
    old_word = _storage(rpc, address, old_session_slot)
    assert old_word != 0  # SessionAccount's `_session_state[key]`, in the EOA's storage
    message = keccak256(b"an application's hash")
    message_signature = eoa.sign(account_message_digest(stage.chain.chain_id, address, message))
    old_contract = DeployedContract(stage.chain, address, old.account_code)
    assert old_contract.call_one("isValidSignature", message, message_signature) == ERC1271_MAGIC

    # The documented path: revoke every SessionAccount session first (the EOA's transaction to
    # itself), so they stay dead should the EOA ever delegate back.
    transact(
        stage.chain,
        LocalTransactionSigner(eoa.secret),
        to=address,
        data=old.account_code.encode("revoke_all"),
    )
    revoked_word = _storage(rpc, address, old_session_slot)
    world = world7579(stage, module)
    delegate(stage, eoa, world.implementation.address)
    account: Account7579 = eoa_account7579(stage, eoa)
    contract = account.contract
    assert contract.call_one("owner") == address
    # Planted words at every SessionAccount slot a module address could key (and the
    # SessionAccount words already there): the new account's answers do not move.
    for key in (module.address, Key().address):
        for slot in SESSION_ACCOUNT_SLOTS:
            planted = _map_slot(slot, key)
            rpc.request("anvil_setStorageAt", [address, "0x" + planted.hex(), "0x" + "ff" * 32])
    assert not account.is_installed(MODULE_TYPE_VALIDATOR, module.address)
    assert not account.is_installed(MODULE_TYPE_EXECUTOR, module.address)
    assert module.call_one("isInitialized", address) is False
    # The old session's functions are gone: SessionAccount's entry points are unknown calls.
    for gone in (old.account_code.encode("epoch"), old.account_code.encode("revoke_all")):
        assert revert_reason(stage, address, gone, Key().address) == "CALLDATA_MALFORMED"

    # The initialiser: refused to strangers, sent by the EOA to itself.
    install = contract.compiled.encode("install_session_module")
    assert revert_reason(stage, address, install, Key().address) == "NOT_AUTHORIZED"
    transact(stage.chain, LocalTransactionSigner(eoa.secret), to=address, data=install)
    assert account.is_installed(MODULE_TYPE_VALIDATOR, module.address)
    assert account.is_installed(MODULE_TYPE_EXECUTOR, module.address)
    assert _storage(rpc, address, installed_word_slot(module.address)) == 3
    assert _storage(rpc, address, old_session_slot) == revoked_word  # still there, never read

    new = ModuleWallet(stage, account, module, Key(), Key().address)
    _old_key_on_new_account(new, old)
    # The old grant, signed as SessionAccount wants it (the owner's bare signature of the grant
    # digest), cannot enable the old key in the module: the new ERC-1271 wants AccountMessage.
    grant = new.grant(old.session)
    digest = typed_data.grant_digest(stage.chain.chain_id, address, grant)
    replay = new.module.compiled.encode("enable_session", grant_struct(grant), eoa.sign(digest))
    assert revert_reason(stage, new.module_address, replay, Key().address) == ("SIGNATURE_INVALID")
    # An application's AccountMessage signature means the same as before.
    assert contract.call_one("isValidSignature", message, message_signature) == ERC1271_MAGIC
    _new_session_works(new)
    _old_key_on_new_account(new, old)


def test_an_eoa_that_delegates_back_to_sessionaccount_finds_its_old_sessions_revoked(
    stage: Stage, module: DeployedContract
) -> None:
    """The migration's first step matters: SessionAccount's words stay in the EOA's storage,
    so an EOA that delegates back finds the sessions it revoked revoked, and the
    SessionAccount7579 word it leaves behind means nothing to SessionAccount."""
    old = stage.new_wallet(eip7702=True)
    eoa = old.owner
    transact(
        stage.chain,
        LocalTransactionSigner(eoa.secret),
        to=old.address,
        data=old.account_code.encode("revoke_all"),
    )
    delegate(stage, eoa, world7579(stage, module).implementation.address)
    account = eoa_account7579(stage, eoa)
    install = account.contract.compiled.encode("install_session_module")
    transact(stage.chain, LocalTransactionSigner(eoa.secret), to=old.address, data=install)
    assert account.is_installed(MODULE_TYPE_VALIDATOR, module.address)
    delegate(stage, eoa, stage.demo.implementation)
    assert _session_op_refusal(old) == "SESSION_REVOKED"
    assert old.view("epoch") == 1
