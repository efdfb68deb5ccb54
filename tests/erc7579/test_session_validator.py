"""SessionWard's ERC-7579 module as a validator on a third-party account (OpenZeppelin
AccountERC7579 from npm) against the real EntryPoint v0.7 on anvil: the owner installs the
module, relays a signed grant, and the session key's user operation runs the granted call;
every refusal is the exact EntryPoint answer (and, inside AA23, the module's reason code) with
nothing changed: balances, the account's nonce for the module's key, the session's fee budget.
Uninstalling bumps the account's epoch, so a reinstall starts clean: the old session is
unknown, the old grant cannot be enabled again, a new grant works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from erc4337_support import ONE_ETH, TRANSFER, USDX, ZERO_ADDRESS, Key, Stage, transfer_call
from module_support import (
    ModuleWallet,
    deploy_module,
    new_module_wallet,
    revert_reason,
    session_signature,
)
from oz_account import MODULE_TYPE_VALIDATOR, handle_op, handle_op_refusal, op_outcome

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_single_execution

pytestmark = pytest.mark.anvil

APPROVE = "approve(address,uint256)"


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture
def wallet(stage: Stage, module: DeployedContract) -> ModuleWallet:
    return new_module_wallet(stage, module)


def _pay(wallet: ModuleWallet, amount: int = 5 * USDX) -> Call:
    return transfer_call(wallet.stage.demo.token("USDX"), wallet.recipient, amount)


@contextmanager
def _nothing_changes(wallet: ModuleWallet) -> Iterator[None]:
    """Balances, the module-key nonce and the session's fee budget are the same after."""
    stage = wallet.stage
    before = (
        stage.token_balance(wallet.address),
        stage.token_balance(wallet.recipient),
        stage.chain.get_balance(wallet.address),
        wallet.account.nonce(wallet.module_address),
        wallet.fee_budget(),
    )
    yield
    assert (
        stage.token_balance(wallet.address),
        stage.token_balance(wallet.recipient),
        stage.chain.get_balance(wallet.address),
        wallet.account.nonce(wallet.module_address),
        wallet.fee_budget(),
    ) == before


def _refused_in_validation(wallet: ModuleWallet, op: PackedUserOperation, reason: str) -> None:
    """The EntryPoint refuses ``op`` because the module reverted with ``reason`` (AA23)."""
    with _nothing_changes(wallet):
        refusal = handle_op_refusal(wallet.stage, op)
    assert refusal.reason == "AA23 reverted"
    assert refusal.inner_reason == reason


def test_the_module_is_a_validator_installed_on_the_account(
    wallet: ModuleWallet, module: DeployedContract
) -> None:
    assert module.call_one("isModuleType", MODULE_TYPE_VALIDATOR) is True
    assert module.call_one("isModuleType", 2) is True  # also an executor (test_session_executor)
    assert module.call_one("isModuleType", 3) is False
    assert wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    assert module.call_one("isInitialized", wallet.address) is True
    assert module.call_one("isInitialized", Key().address) is False
    assert wallet.epoch() == 0
    status, valid_after, expires_at = module.call("session", wallet.address, wallet.session.address)
    assert status == 1 and isinstance(valid_after, int) and isinstance(expires_at, int)
    assert expires_at - valid_after == 3660


def test_the_owner_approves_sessionaccounts_grant_digest_for_the_same_account(
    stage: Stage, wallet: ModuleWallet, module: DeployedContract
) -> None:
    """The module asks the account's ERC-1271 about exactly ``typed_data.grant_digest`` (the
    digest SessionAccount's ``grant_digest`` returns for its own address): the owner's
    signature of it enables; the owner's signature of the same grant for another account
    does not. (The module has no ``grant_digest`` view: EIP-170 leaves no room for a second
    SessionGrant decoder.)"""
    grant = wallet.grant()
    other = typed_data.grant_digest(stage.chain.chain_id, Key().address, grant)
    data = wallet.enable_data(grant, wallet.account.owner.sign(other))
    assert revert_reason(stage, wallet.module_address, data, Key().address) == "SIGNATURE_INVALID"
    expected = typed_data.grant_digest(stage.chain.chain_id, wallet.address, grant)
    assert wallet.enable_data(grant, wallet.account.owner.sign(expected)) == wallet.enable_data(
        grant, wallet.grant_signature(grant)
    )
    assert wallet.enable(grant).succeeded


def test_a_session_operation_runs_the_granted_call_and_charges_the_fee_budget(
    stage: Stage, wallet: ModuleWallet
) -> None:
    op = wallet.session_op(_pay(wallet))
    receipt = handle_op(stage, op, Key())
    success, _ = op_outcome(receipt, wallet.account.op_hash(op))
    assert success
    assert stage.token_balance(wallet.recipient) == 5 * USDX
    assert stage.token_balance(wallet.address) == 995 * USDX
    assert wallet.account.nonce(wallet.module_address) == op.nonce + 1
    limits = int.from_bytes(op.account_gas_limits[:16], "big") + int.from_bytes(
        op.account_gas_limits[16:], "big"
    )
    max_cost = (limits + op.pre_verification_gas) * int.from_bytes(op.gas_fees[16:], "big")
    assert wallet.fee_budget() == ONE_ETH - max_cost


def test_the_module_keeps_its_words_in_its_own_storage_at_associated_slots(
    wallet: ModuleWallet, rpc: JsonRpcClient
) -> None:
    account_word = bytes(12) + bytes.fromhex(wallet.address[2:])
    slot = int.from_bytes(
        keccak256(account_word + keccak256(b"sessionward.erc7579.account.v1")), "big"
    )
    word = int(rpc.request("eth_getStorageAt", [wallet.module_address, hex(slot), "latest"]), 16)
    assert word & 1 == 1  # installed
    assert (word >> 8) & 0xFFFFFFFF == 0  # epoch
    assert (word >> 40) & 0xFFFFFFFF == 1  # one grant enabled


def test_an_expired_session_is_refused_by_the_entry_point(
    stage: Stage, wallet: ModuleWallet
) -> None:
    short = Key()
    wallet.enable(wallet.grant(short, valid_for=30))
    stage.chain.time_travel(120)
    op = wallet.session_op(_pay(wallet), key=short)
    with _nothing_changes(wallet):
        assert handle_op_refusal(stage, op).reason == "AA22 expired or not due"


def test_a_session_not_yet_valid_is_refused_by_the_entry_point(
    stage: Stage, wallet: ModuleWallet
) -> None:
    later = Key()
    wallet.enable(wallet.grant(later, starts_in=600, valid_for=3600))
    op = wallet.session_op(_pay(wallet), key=later)
    with _nothing_changes(wallet):
        assert handle_op_refusal(stage, op).reason == "AA22 expired or not due"


def test_re_enabling_a_key_replaces_its_permissions(stage: Stage, wallet: ModuleWallet) -> None:
    weth = stage.demo.token("WETHX")
    wallet.enable(wallet.grant(permissions=[wallet.permission(weth, TRANSFER)]))
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "TARGET_NOT_ALLOWED")


def test_an_operation_signed_by_another_key_is_refused(stage: Stage, wallet: ModuleWallet) -> None:
    op = wallet.session_op(_pay(wallet), signer=Key())
    with _nothing_changes(wallet):
        assert handle_op_refusal(stage, op).reason == "AA24 signature error"


def test_a_key_without_a_session_is_refused(wallet: ModuleWallet) -> None:
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet), key=Key()), "SESSION_UNKNOWN")


def test_a_replayed_operation_is_refused_by_its_nonce(stage: Stage, wallet: ModuleWallet) -> None:
    op = wallet.session_op(_pay(wallet))
    assert op_outcome(handle_op(stage, op, Key()), wallet.account.op_hash(op))[0]
    with _nothing_changes(wallet):
        assert handle_op_refusal(stage, op).reason == "AA25 invalid account nonce"
    assert stage.token_balance(wallet.recipient) == 5 * USDX


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("other token", "TARGET_NOT_ALLOWED"),
        ("other function", "SELECTOR_NOT_ALLOWED"),
        ("with value", "VALUE_CAP_EXCEEDED"),
        ("install a module", "SELF_CALL_FORBIDDEN"),
        ("call the module", "SELF_CALL_FORBIDDEN"),
    ],
)
def test_a_call_outside_the_grant_is_refused_in_validation(
    stage: Stage, wallet: ModuleWallet, case: str, reason: str
) -> None:
    usdx, other = stage.demo.token("USDX"), stage.demo.token("WETHX")
    amount = (wallet.recipient, USDX)
    calls = {
        "other token": Call(other, 0, encode_call(parse_signature(TRANSFER), amount)),
        "other function": Call(usdx, 0, encode_call(parse_signature(APPROVE), amount)),
        "with value": Call(usdx, 1, encode_call(parse_signature(TRANSFER), amount)),
        "install a module": Call(
            wallet.address,
            0,
            wallet.account.contract.compiled.encode(
                "installModule", MODULE_TYPE_VALIDATOR, Key().address, b""
            ),
        ),
        "call the module": Call(
            wallet.module_address, 0, wallet.module.compiled.encode("revoke_all")
        ),
    }
    _refused_in_validation(wallet, wallet.session_op(calls[case]), reason)


def test_a_session_cannot_call_anything_but_execute_nor_delegatecall(
    stage: Stage, wallet: ModuleWallet
) -> None:
    account = wallet.account
    install = account.contract.compiled.encode(
        "installModule", MODULE_TYPE_VALIDATOR, Key().address, b""
    )
    op = account.unsigned_op(install, module=wallet.module_address)
    signed = op._replace(signature=session_signature(wallet.session, account.op_hash(op)))
    _refused_in_validation(wallet, signed, "SELF_CALL_FORBIDDEN")
    delegate_mode = bytes([0xFF]) + bytes(31)
    call_data = account.contract.compiled.encode(
        "execute", delegate_mode, encode_single_execution(_pay(wallet))
    )
    op = account.unsigned_op(call_data, module=wallet.module_address)
    _refused_in_validation(
        wallet,
        op._replace(signature=session_signature(wallet.session, account.op_hash(op))),
        "CALL_TYPE_FORBIDDEN",
    )


def test_an_operation_costing_more_than_the_fee_budget_is_refused(
    stage: Stage, wallet: ModuleWallet
) -> None:
    poor = Key()
    wallet.enable(wallet.grant(poor, max_fee_wei=999_999))  # under 1 wei x 1,000,000 gas
    op = wallet.session_op(_pay(wallet), key=poor)
    assert int.from_bytes(op.gas_fees[16:], "big") >= 1
    _refused_in_validation(wallet, op, "FEE_LIMIT_EXCEEDED")
    assert wallet.fee_budget(poor) == 999_999


def test_a_revoked_session_is_refused(stage: Stage, wallet: ModuleWallet) -> None:
    wallet.owner_run(wallet.module_call("revoke_session", wallet.session.address))
    assert wallet.module.call("session", wallet.address, wallet.session.address) == (2, 0, 0)
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "SESSION_REVOKED")
    again = wallet.module.compiled.encode("revoke_session", wallet.session.address)
    assert revert_reason(stage, wallet.module_address, again, wallet.address) == "SESSION_REVOKED"
    unknown = wallet.module.compiled.encode("revoke_session", Key().address)
    assert revert_reason(stage, wallet.module_address, unknown, wallet.address) == "SESSION_UNKNOWN"


def test_the_grants_revoker_may_revoke_its_session_and_no_one_else(
    stage: Stage, wallet: ModuleWallet
) -> None:
    revoker, key = Key(), Key()
    stage.chain.set_balance(revoker.address, ONE_ETH)
    wallet.enable(wallet.grant(key, revoker=revoker.address))
    data = wallet.module.compiled.encode("revoke_session_as_revoker", wallet.address, key.address)
    for stranger in (Key().address, wallet.address):
        assert revert_reason(stage, wallet.module_address, data, stranger) == "NOT_AUTHORIZED"
    # A revoker of one session cannot revoke another (the wallet's own session has none).
    other = wallet.module.compiled.encode(
        "revoke_session_as_revoker", wallet.address, wallet.session.address
    )
    assert revert_reason(stage, wallet.module_address, other, revoker.address) == "NOT_AUTHORIZED"
    transact(
        stage.chain, LocalTransactionSigner(revoker.secret), to=wallet.module_address, data=data
    )
    assert wallet.module.call("session", wallet.address, key.address)[0] == 2
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet), key=key), "SESSION_REVOKED")
    assert wallet.module.call("session", wallet.address, wallet.session.address)[0] == 1


def _signed_revocation(wallet: ModuleWallet, key: str, signer: Key | None = None) -> bytes:
    epoch = wallet.epoch()
    nonce = wallet.module.call_one("owner_nonce", wallet.address)
    assert isinstance(nonce, int)
    digest = typed_data.revocation_digest(
        wallet.stage.chain.chain_id, wallet.address, key, epoch, nonce
    )
    signature = (signer or wallet.account.owner).sign(digest)
    return wallet.module.compiled.encode(
        "revoke_session_signed", wallet.address, key, epoch, nonce, signature
    )


def test_an_owner_signed_revocation_is_relayed_once(stage: Stage, wallet: ModuleWallet) -> None:
    forged = _signed_revocation(wallet, wallet.session.address, signer=Key())
    relayer = Key().address
    assert revert_reason(stage, wallet.module_address, forged, relayer) == "SIGNATURE_INVALID"
    data = _signed_revocation(wallet, wallet.session.address)
    transact(stage.chain, stage.deployer, to=wallet.module_address, data=data)
    assert wallet.module.call_one("owner_nonce", wallet.address) == 1
    assert wallet.module.call("session", wallet.address, wallet.session.address)[0] == 2
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "SESSION_REVOKED")
    assert revert_reason(stage, wallet.module_address, data, relayer) == "NONCE_REPLAYED"


def test_an_owner_signed_revocation_of_the_zero_key_revokes_all(
    stage: Stage, wallet: ModuleWallet
) -> None:
    data = _signed_revocation(wallet, ZERO_ADDRESS)
    transact(stage.chain, stage.deployer, to=wallet.module_address, data=data)
    assert wallet.epoch() == 1
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "SESSION_UNKNOWN")
    # Signed for the old epoch: stale.
    assert revert_reason(stage, wallet.module_address, data, Key().address) == "NONCE_REPLAYED"


def test_revoke_all_refuses_every_session_of_the_account_only(
    stage: Stage, module: DeployedContract, wallet: ModuleWallet
) -> None:
    other = new_module_wallet(stage, module)
    wallet.owner_run(wallet.module_call("revoke_all"))
    assert wallet.epoch() == 1 and other.epoch() == 0
    assert module.call_one("isInitialized", wallet.address) is True
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "SESSION_UNKNOWN")
    op = other.session_op(_pay(other))
    assert op_outcome(handle_op(stage, op, Key()), other.account.op_hash(op))[0]


@pytest.mark.parametrize("function", ["onUninstall", "revoke_all", "revoke_session", "onInstall"])
def test_a_stranger_calling_the_module_changes_nothing_of_the_account(
    stage: Stage, wallet: ModuleWallet, function: str
) -> None:
    """Every state-changing entry point acts on ``msg.sender``'s own words only."""
    module = wallet.module.compiled
    data = {
        "onUninstall": module.encode("onUninstall", b""),
        "revoke_all": module.encode("revoke_all"),
        "revoke_session": module.encode("revoke_session", wallet.session.address),
        "onInstall": module.encode("onInstall", b""),
    }[function]
    stranger = Key()
    stage.chain.set_balance(stranger.address, ONE_ETH)
    transact(stage.chain, LocalTransactionSigner(stranger.secret), to=wallet.module_address,
             data=data, gas=300_000, check=False)  # fmt: skip
    assert wallet.epoch() == 0
    assert wallet.module.call_one("isInitialized", wallet.address) is True
    op = wallet.session_op(_pay(wallet))
    assert op_outcome(handle_op(stage, op, Key()), wallet.account.op_hash(op))[0]
    assert stage.token_balance(wallet.recipient) == 5 * USDX


def test_after_uninstall_the_session_is_refused_and_a_reinstall_starts_clean(
    stage: Stage, wallet: ModuleWallet
) -> None:
    old_grant = wallet.grant(nonce=10_000_000)
    wallet.enable(old_grant)
    wallet.uninstall()
    assert not wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    assert wallet.module.call_one("isInitialized", wallet.address) is False
    # The nonce key names a module the account no longer has: its owner signer judges the
    # session signature, and refuses it.
    with _nothing_changes(wallet):
        assert handle_op_refusal(stage, wallet.session_op(_pay(wallet))).reason == (
            "AA24 signature error"
        )

    wallet.install()
    assert wallet.epoch() == 1
    assert wallet.module.call("session", wallet.address, wallet.session.address) == (0, 0, 0)
    assert wallet.fee_budget() == 0
    _refused_in_validation(wallet, wallet.session_op(_pay(wallet)), "SESSION_UNKNOWN")
    # The grant signed before the uninstall names epoch 0: refused.
    data = wallet.enable_data(old_grant, wallet.grant_signature(old_grant))
    assert revert_reason(stage, wallet.module_address, data, Key().address) == "SESSION_REVOKED"
    # The same grant nonce in the new epoch is fresh.
    wallet.enable(wallet.grant(nonce=10_000_000))
    op = wallet.session_op(_pay(wallet))
    assert op_outcome(handle_op(stage, op, Key()), wallet.account.op_hash(op))[0]
    assert stage.token_balance(wallet.recipient) == 5 * USDX


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("signed by a stranger", "SIGNATURE_INVALID"),
        ("nonce replayed", "NONCE_REPLAYED"),
        ("wrong epoch", "SESSION_REVOKED"),
        ("other chain", "CHAIN_MISMATCH"),
        ("empty window", "WINDOW_INVALID"),
        ("unknown rule operator", "ENVELOPE_MALFORMED"),
        ("scalar rule with two operands", "ENVELOPE_MALFORMED"),
        ("same function twice", "ENVELOPE_MALFORMED"),
        ("a token limited twice", "ENVELOPE_MALFORMED"),
        ("an unmeasured function on a limited token", "TOKEN_FUNCTION_UNDEFINED"),
        ("account target", "SELF_CALL_FORBIDDEN"),
        ("not installed", "NOT_AUTHORIZED"),
    ],
)
def test_an_unacceptable_grant_is_refused_and_enables_nothing(
    stage: Stage, module: DeployedContract, wallet: ModuleWallet, case: str, reason: str
) -> None:
    key = Key()
    if case == "not installed":
        wallet = new_module_wallet(stage, module, enable=False)
        wallet.uninstall()
    grant = wallet.grant(key)
    envelope = grant["envelope"]
    signer = None
    if case == "signed by a stranger":
        signer = Key()
    elif case == "nonce replayed":
        wallet.enable(wallet.grant(Key(), nonce=grant["nonce"]))
    elif case == "wrong epoch":
        grant["epoch"] = 1
    elif case == "other chain":
        envelope["chainId"] = 1
    elif case == "empty window":
        envelope["validAfter"] = envelope["expiresAt"]
    elif case == "unknown rule operator":
        envelope["permissions"][0]["rules"] = [{"arg": "0", "op": 6, "offset": 0, "values": []}]
    elif case == "scalar rule with two operands":
        envelope["permissions"][0]["rules"] = [
            {"arg": "1", "op": 2, "offset": 1, "values": [bytes(32), bytes(32)]}
        ]
    elif case == "same function twice":
        envelope["permissions"] = envelope["permissions"] * 2
    elif case == "a token limited twice":
        limit = {"token": stage.demo.token("USDX"), "limit": USDX, "period": 0}
        envelope["tokenLimits"] = [limit, {**limit, "limit": 2 * USDX}]
    elif case == "an unmeasured function on a limited token":
        envelope["tokenLimits"] = [{"token": stage.demo.token("USDX"), "limit": USDX, "period": 0}]
        envelope["permissions"] = [wallet.permission(stage.demo.token("USDX"), "burn(uint256)")]
    elif case == "account target":
        envelope["permissions"] = [wallet.permission(wallet.address, TRANSFER)]
    data = wallet.enable_data(grant, wallet.grant_signature(grant, signer))
    assert revert_reason(stage, wallet.module_address, data, Key().address) == reason
    assert wallet.module.call("session", wallet.address, key.address)[0] == 0


def test_a_session_of_one_account_authorizes_nothing_on_another(
    stage: Stage, module: DeployedContract, wallet: ModuleWallet
) -> None:
    other = new_module_wallet(stage, module, enable=False)
    # The key's operation on the other account: no session there.
    op = other.session_op(_pay(other), key=wallet.session)
    _refused_in_validation(other, op, "SESSION_UNKNOWN")
    # The owner's grant for the first account, re-addressed to the other: its digest changes,
    # and the other account's ERC-1271 does not accept the first owner's signature of it.
    grant = wallet.grant()
    signature = wallet.grant_signature(grant)
    grant["account"] = other.address
    data = other.enable_data(grant, signature)
    assert revert_reason(stage, other.module_address, data, Key().address) == "SIGNATURE_INVALID"
    assert module.call("session", other.address, wallet.session.address)[0] == 0


def test_the_account_itself_may_enable_a_session_without_a_signature(
    stage: Stage, wallet: ModuleWallet
) -> None:
    key = Key()
    grant = wallet.grant(key)
    wallet.owner_run(
        wallet.account.execute_data(Call(wallet.module_address, 0, wallet.enable_data(grant, b"")))
    )
    assert wallet.module.call("session", wallet.address, key.address)[0] == 1


def test_the_module_validates_no_erc1271_signature(
    wallet: ModuleWallet, module: DeployedContract
) -> None:
    digest = keccak256(b"anything")
    own = wallet.session.sign(digest)
    assert module.call_one("isValidSignatureWithSender", wallet.address, digest, own) == (
        b"\xff\xff\xff\xff"
    )
    prefixed = bytes.fromhex(wallet.module_address[2:]) + own
    assert wallet.account.contract.call_one("isValidSignature", digest, prefixed) == (
        b"\xff\xff\xff\xff"
    )


def test_an_operation_of_another_sender_is_not_validated_for_the_caller(
    wallet: ModuleWallet, module: DeployedContract
) -> None:
    op = wallet.session_op(_pay(wallet))
    stranger = Key().address
    data = module.compiled.encode("validateUserOp", tuple(op), wallet.account.op_hash(op))
    answer = wallet.stage.chain.call(wallet.module_address, data, sender=stranger)
    assert int.from_bytes(answer, "big") == 1  # SIG_VALIDATION_FAILED
