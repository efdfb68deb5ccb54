"""The relayer path of SessionWard's ERC-7579 module on the OpenZeppelin account: installed as
an executor (module type 2, install data 0x02), it runs a session key's signed ``SessionCall``
(SessionAccount's typed data, the account's domain) relayed by anyone, through the account's
``executeFromExecutor``. Every refusal is the module's exact reason code, with nothing changed:
balances and the nonce's state. Uninstalling the executor refuses the relayer path; a reinstall
starts with no session, and a call signed before it stays spent.
"""

from __future__ import annotations

import pytest
from erc4337_support import ONE_ETH, TRANSFER, USDX, Key, Stage, transfer_call
from module_support import ModuleWallet, deploy_module, new_module_wallet, revert_reason
from oz_account import MODULE_TYPE_EXECUTOR, MODULE_TYPE_VALIDATOR

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

BOTH = (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR)


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture
def wallet(stage: Stage, module: DeployedContract) -> ModuleWallet:
    return new_module_wallet(stage, module, types=BOTH)


@pytest.fixture
def relayer(stage: Stage) -> LocalTransactionSigner:
    key = Key()
    stage.chain.set_balance(key.address, ONE_ETH)
    return LocalTransactionSigner(key.secret)


def _pay(wallet: ModuleWallet, amount: int = 5 * USDX) -> Call:
    return transfer_call(wallet.stage.demo.token("USDX"), wallet.recipient, amount)


def _deadline(wallet: ModuleWallet) -> int:
    return wallet.stage.chain.block_timestamp() + 600


def _refused(wallet: ModuleWallet, data: bytes, reason: str, *, nonce: int = 0) -> None:
    """The relayed call reverts with ``reason`` (as a mined transaction too) and changes
    nothing: balances, and ``nonce`` stays unused."""
    stage = wallet.stage
    before = (stage.token_balance(wallet.address), stage.token_balance(wallet.recipient))
    relayer = Key().address
    assert revert_reason(stage, wallet.module_address, data, relayer) == reason
    receipt = transact(
        stage.chain, stage.deployer, to=wallet.module_address, data=data, gas=500_000, check=False
    )
    assert not receipt.succeeded
    assert (stage.token_balance(wallet.address), stage.token_balance(wallet.recipient)) == before
    used = wallet.module.call_one(
        "session_nonce_used", wallet.address, wallet.session.address, nonce
    )
    assert used is False


def test_the_module_is_installed_as_validator_and_executor(wallet: ModuleWallet) -> None:
    assert wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    assert wallet.account.is_installed(MODULE_TYPE_EXECUTOR, wallet.module_address)


def test_a_relayed_session_call_runs_through_execute_from_executor(
    stage: Stage, wallet: ModuleWallet, relayer: LocalTransactionSigner
) -> None:
    data = wallet.relayed_call_data(_pay(wallet), nonce=7, deadline=_deadline(wallet))
    receipt = transact(stage.chain, relayer, to=wallet.module_address, data=data)
    assert receipt.succeeded
    assert stage.token_balance(wallet.recipient) == 5 * USDX
    assert stage.token_balance(wallet.address) == 995 * USDX
    assert wallet.module.call_one("session_nonce_used", wallet.address, wallet.session.address, 7)
    # The same signed call again: its nonce is spent.
    _refused(wallet, data, "NONCE_REPLAYED", nonce=8)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another signer", "SIGNATURE_INVALID"),
        ("unknown key", "SESSION_UNKNOWN"),
        ("deadline passed", "SESSION_EXPIRED"),
        ("other token", "TARGET_NOT_ALLOWED"),
        ("call the account", "SELF_CALL_FORBIDDEN"),
    ],
)
def test_a_relayed_call_outside_its_authority_is_refused(
    stage: Stage, wallet: ModuleWallet, case: str, reason: str
) -> None:
    deadline = _deadline(wallet)
    call = _pay(wallet)
    kwargs: dict[str, object] = {}
    if case == "another signer":
        kwargs = {"signer": Key()}
    elif case == "unknown key":
        kwargs = {"key": Key()}
    elif case == "deadline passed":
        deadline = stage.chain.block_timestamp() - 1
    elif case == "other token":
        call = transfer_call(stage.demo.token("WETHX"), wallet.recipient, 1)
    elif case == "call the account":
        call = Call(wallet.address, 0, wallet.account.contract.compiled.encode("getNonce()"))
    data = wallet.relayed_call_data(call, nonce=0, deadline=deadline, **kwargs)  # type: ignore[arg-type]
    _refused(wallet, data, reason)


def test_an_expired_session_is_refused(stage: Stage, wallet: ModuleWallet) -> None:
    short = Key()
    wallet.enable(wallet.grant(short, valid_for=30))
    stage.chain.time_travel(120)
    data = wallet.relayed_call_data(_pay(wallet), nonce=0, deadline=_deadline(wallet), key=short)
    _refused(wallet, data, "SESSION_EXPIRED")


def test_a_session_not_yet_valid_is_refused(wallet: ModuleWallet) -> None:
    later = Key()
    wallet.enable(wallet.grant(later, starts_in=600))
    data = wallet.relayed_call_data(_pay(wallet), nonce=0, deadline=_deadline(wallet), key=later)
    _refused(wallet, data, "SESSION_NOT_YET_VALID")


def test_a_revoked_session_is_refused(wallet: ModuleWallet) -> None:
    wallet.owner_run(wallet.module_call("revoke_session", wallet.session.address))
    data = wallet.relayed_call_data(_pay(wallet), nonce=0, deadline=_deadline(wallet))
    _refused(wallet, data, "SESSION_REVOKED")


def test_without_the_executor_installed_the_relayer_path_is_refused(
    stage: Stage, module: DeployedContract
) -> None:
    wallet = new_module_wallet(stage, module)  # validator only
    data = wallet.relayed_call_data(_pay(wallet), nonce=0, deadline=_deadline(wallet))
    _refused(wallet, data, "NOT_AUTHORIZED")


def test_uninstalling_the_executor_refuses_relayed_calls_and_a_reinstall_starts_clean(
    stage: Stage, wallet: ModuleWallet, relayer: LocalTransactionSigner
) -> None:
    signed_before = wallet.relayed_call_data(_pay(wallet), nonce=1, deadline=_deadline(wallet))
    spent = wallet.relayed_call_data(_pay(wallet), nonce=2, deadline=_deadline(wallet))
    assert transact(stage.chain, relayer, to=wallet.module_address, data=spent).succeeded
    wallet.uninstall(MODULE_TYPE_EXECUTOR)
    assert not wallet.account.is_installed(MODULE_TYPE_EXECUTOR, wallet.module_address)
    assert wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    _refused(wallet, signed_before, "NOT_AUTHORIZED", nonce=1)

    wallet.install(MODULE_TYPE_EXECUTOR)
    assert wallet.epoch() == 1
    _refused(wallet, signed_before, "SESSION_UNKNOWN", nonce=1)
    # The owner grants the same key again: a call signed before the reinstall and never run
    # still runs (its nonce is unused), but the spent one stays spent.
    wallet.enable(wallet.grant())
    _refused(wallet, spent, "NONCE_REPLAYED", nonce=1)
    assert transact(stage.chain, relayer, to=wallet.module_address, data=signed_before).succeeded
    assert stage.token_balance(wallet.recipient) == 10 * USDX


def test_install_data_naming_another_type_is_refused(wallet: ModuleWallet) -> None:
    data = wallet.module.compiled.encode("onInstall", b"\x03")
    assert revert_reason(wallet.stage, wallet.module_address, data, wallet.address) == (
        "INPUT_MALFORMED"
    )


def test_a_relayed_batch_runs_only_when_every_call_is_granted(
    stage: Stage, wallet: ModuleWallet, relayer: LocalTransactionSigner
) -> None:
    """A batch of two granted calls runs; a batch with one call outside the grant runs none."""
    usdx = stage.demo.token("USDX")
    weth = stage.demo.token("WETHX")
    wallet.enable(
        wallet.grant(
            permissions=[wallet.permission(usdx, TRANSFER), wallet.permission(weth, TRANSFER)]
        )
    )
    outside = wallet.relayed_call_data(
        _pay(wallet, USDX),
        Call(usdx, 0, wallet.account.contract.compiled.encode("getNonce()")),
        nonce=3,
        deadline=_deadline(wallet),
    )
    _refused(wallet, outside, "SELECTOR_NOT_ALLOWED", nonce=3)
    both = wallet.relayed_call_data(
        _pay(wallet, USDX), _pay(wallet, 2 * USDX), nonce=4, deadline=_deadline(wallet)
    )
    assert transact(stage.chain, relayer, to=wallet.module_address, data=both).succeeded
    assert stage.token_balance(wallet.recipient) == 3 * USDX
