"""SessionAccount7579, SessionWard's own ERC-7579 account, on anvil with the real EntryPoint
v0.7: its ERC-7579 and ERC-165 views, its factory (counterfactual address, idempotent
creation, the session module installed in the account's constructor, deployment through an
operation's ``initCode``), its ERC-1271 answer, and who may manage its modules and execute on
it: the owner's authority only for ``execute``, ``installModule`` and ``uninstallModule``
(a stranger, a session key, an installed executor are refused and change nothing); installed
executors only for ``executeFromExecutor``, never on the account itself; no delegatecall mode
anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce

import pytest
from account7579_support import (
    ACCOUNT7579,
    Account7579,
    World7579,
    account7579_artifact,
    account_message_digest,
    create_account7579,
    world7579,
)
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, USDX, Key, Stage, transfer_call
from module_support import (
    ModuleWallet,
    deploy_module,
    new_module_wallet,
    revert_reason,
    session_signature,
)
from oz_account import (
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    decode,
    handle_op,
    handle_op_refusal,
    op_outcome,
)

from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    compile_vyper,
    deploy,
    transact,
)
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto.keccak import keccak256
from sessionward.domain.calldata import Call, encode_batch_execution, encode_single_execution

pytestmark = pytest.mark.anvil

EIP170_LIMIT = 24_576
FORWARDING_EXECUTOR = __file__.rsplit("/", 1)[0] + "/ForwardingExecutor.vy"
MODE_SINGLE = bytes(32)
MODE_BATCH = b"\x01" + bytes(31)
MODE_DELEGATECALL = b"\xff" + bytes(31)
MODE_STATIC = b"\xfe" + bytes(31)
MODE_TRY = b"\x00\x01" + bytes(30)
MODULE_INSTALLED = keccak256(b"ModuleInstalled(uint256,address)")
BOTH = (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR)


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def _interface_id(*signatures: str) -> bytes:
    """ERC-165: the XOR of the interface's selectors."""
    value = reduce(lambda a, b: a ^ b, (int.from_bytes(_selector(s), "big") for s in signatures))
    return value.to_bytes(4, "big")


USER_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
INTERFACES = {
    "ERC-165": _interface_id("supportsInterface(bytes4)"),
    "ERC-1271": _interface_id("isValidSignature(bytes32,bytes)"),
    "ERC-4337 IAccount": _interface_id(f"validateUserOp({USER_OP},bytes32,uint256)"),
    "IERC7579Execution": _interface_id(
        "execute(bytes32,bytes)", "executeFromExecutor(bytes32,bytes)"
    ),
    "IERC7579AccountConfig": _interface_id(
        "accountId()", "supportsExecutionMode(bytes32)", "supportsModule(uint256)"
    ),
    "IERC7579ModuleConfig": _interface_id(
        "installModule(uint256,address,bytes)",
        "uninstallModule(uint256,address,bytes)",
        "isModuleInstalled(uint256,address,bytes)",
    ),
}


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture(scope="module")
def world(stage: Stage, module: DeployedContract) -> World7579:
    return world7579(stage, module)


@pytest.fixture
def wallet(stage: Stage, module: DeployedContract) -> ModuleWallet:
    """A SessionAccount7579 from the factory with one session enabled by the owner's grant."""
    return new_module_wallet(stage, module, types=BOTH, account_kind=ACCOUNT7579)


@pytest.fixture(scope="module")
def executor_artifact() -> ContractArtifact:
    return compile_vyper(FORWARDING_EXECUTOR, use_cache=False)


@pytest.fixture
def executor(stage: Stage, executor_artifact: ContractArtifact) -> DeployedContract:
    return deploy(stage.chain, stage.deployer, executor_artifact)


def _account(wallet: ModuleWallet) -> Account7579:
    assert isinstance(wallet.account, Account7579)
    return wallet.account


def _encode(function: str, *args: object) -> bytes:
    return account7579_artifact().encode(function, *args)


def _installed(wallet: ModuleWallet, *modules: str) -> list[tuple[bool, bool]]:
    return [(wallet.account.is_installed(1, m), wallet.account.is_installed(2, m)) for m in modules]


@contextmanager
def _nothing_changes(wallet: ModuleWallet, *modules: str) -> Iterator[None]:
    """The installed types of ``modules`` (the session module's included), the account's
    balances and the module's account word are the same after."""
    stage = wallet.stage
    watched = (wallet.module_address, *modules)

    def state() -> tuple[object, ...]:
        return (
            _installed(wallet, *watched),
            stage.token_balance(wallet.address),
            stage.chain.get_balance(wallet.address),
            wallet.module.call_one("isInitialized", wallet.address),
            wallet.epoch(),
        )

    before = state()
    yield
    assert state() == before


def _install_executor(wallet: ModuleWallet, executor: DeployedContract) -> None:
    """The owner installs ``executor`` as an executor (an owner operation)."""
    wallet.install_module(MODULE_TYPE_EXECUTOR, executor.address, b"")


def _refused_in_validation(wallet: ModuleWallet, op: PackedUserOperation, reason: str) -> None:
    refusal = handle_op_refusal(wallet.stage, op)
    assert (refusal.reason, refusal.inner_reason) == ("AA23 reverted", reason)


def _session_op_of(wallet: ModuleWallet, call_data: bytes) -> PackedUserOperation:
    """A session operation (nonce key = the module) carrying any ``call_data``."""
    account = wallet.account
    op = account.unsigned_op(call_data, module=wallet.module_address)
    return op._replace(signature=session_signature(wallet.session, account.op_hash(op)))


# ------------------------------------------------------------------------------------- views


def test_the_account_and_its_factory_fit_eip170(world: World7579) -> None:
    runtime = world.implementation.compiled.runtime
    factory = world.factory.compiled.runtime
    print(f"\nSessionAccount7579 runtime {len(runtime):,} bytes, factory {len(factory):,} bytes")
    assert len(runtime) < EIP170_LIMIT and len(factory) < EIP170_LIMIT
    # The deployed code is the runtime followed by the two immutables (EntryPoint, module).
    deployed = world.implementation.chain.get_code(world.implementation.address)
    assert deployed[: len(runtime)] == runtime and len(deployed) == len(runtime) + 64


def test_the_account_answers_the_erc7579_views(wallet: ModuleWallet) -> None:
    account = wallet.account.contract
    assert account.call_one("accountId") == "sessionward.account7579.1.0.0"
    assert [account.call_one("supportsModule", t) for t in range(6)] == [
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    assert account.call_one("supportsExecutionMode", MODE_SINGLE) is True
    assert account.call_one("supportsExecutionMode", MODE_BATCH) is True
    refused_modes = (
        MODE_DELEGATECALL,
        MODE_STATIC,
        MODE_TRY,
        b"\x01\x01" + bytes(30),  # batch, try
        bytes(6) + b"\xaa\xbb\xcc\xdd" + bytes(22),  # single with a mode selector
        bytes(10) + b"\x01" + bytes(21),  # single with a mode payload
    )
    for mode in refused_modes:
        assert account.call_one("supportsExecutionMode", mode) is False, mode.hex()
    assert account.call_one("owner") == wallet.account.owner.address
    assert account.call_one("ENTRY_POINT") == ENTRY_POINT_V07
    assert account.call_one("SESSION_MODULE") == wallet.module_address
    assert account.call_one("isModuleInstalled", 3, wallet.module_address, b"") is False
    assert account.call_one("isModuleInstalled", 1, Key().address, b"") is False


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_the_account_declares_each_interface_it_implements(wallet: ModuleWallet, name: str) -> None:
    assert wallet.account.contract.call_one("supportsInterface", INTERFACES[name]) is True


def test_the_account_declares_no_other_interface(wallet: ModuleWallet) -> None:
    account = wallet.account.contract
    for interface in (
        b"\xff\xff\xff\xff",  # ERC-165: never
        b"\x00\x00\x00\x00",
        _interface_id("onERC721Received(address,address,uint256,bytes)"),
        _selector("isValidSignatureWithSender(address,bytes32,bytes)"),
        _interface_id("execute(bytes32,bytes)"),  # half of IERC7579Execution
    ):
        assert account.call_one("supportsInterface", interface) is False, interface.hex()


# ----------------------------------------------------------------------------------- factory


def test_the_factory_creates_the_counterfactual_account_once_with_the_module_installed(
    stage: Stage, world: World7579, module: DeployedContract
) -> None:
    owner, salt = Key(), keccak256(b"counterfactual")
    address = world.factory.call_one("get_address", owner.address, salt)
    assert isinstance(address, str) and not stage.chain.get_code(address)
    receipt = world.factory.transact(stage.deployer, "create_account", owner.address, salt)
    runtime = (
        bytes.fromhex("363d3d373d3d3d363d73")
        + bytes.fromhex(world.implementation.address[2:])
        + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
        + bytes.fromhex(owner.address[2:])
    )
    assert stage.chain.get_code(address) == runtime
    installed = [
        (int.from_bytes(log.data[:32], "big"), "0x" + log.data[44:64].hex())
        for log in receipt.logs
        if log.address.lower() == address and log.topics[0] == MODULE_INSTALLED
    ]
    assert installed == [(1, module.address.lower()), (2, module.address.lower())]
    account = DeployedContract(stage.chain, address, account7579_artifact())
    assert account.call_one("isModuleInstalled", 1, module.address, b"") is True
    assert account.call_one("isModuleInstalled", 2, module.address, b"") is True
    assert module.call_one("isInitialized", address) is True
    # Idempotent: the same address, nothing logged, nothing changed.
    again = world.factory.transact(stage.deployer, "create_account", owner.address, salt)
    assert again.logs == ()
    assert world.factory.call_one("create_account", owner.address, salt) == address
    # The owner is in the address: another owner with the same salt gets another account.
    assert world.factory.call_one("get_address", Key().address, salt) != address
    zero = world.factory.compiled.encode("create_account", "0x" + "00" * 20, salt)
    assert revert_reason(stage, world.factory.address, zero, Key().address) == "INPUT_MALFORMED"


def test_an_operation_with_init_code_deploys_the_account_and_runs_its_call(
    stage: Stage, world: World7579, module: DeployedContract
) -> None:
    """The ERC-4337 path: an owner operation of a counterfactual address carries ``initCode`` =
    factory ‖ create_account(owner, salt); the EntryPoint deploys the account (the module
    installed by its constructor) and runs the owner's call."""
    owner, salt, recipient = Key(), keccak256(b"init-code"), Key().address
    address = world.factory.call_one("get_address", owner.address, salt)
    assert isinstance(address, str)
    stage.usdx.transact(stage.deployer, "mint", address, 10 * USDX)
    stage.chain.set_balance(address, ONE_ETH)
    account = Account7579(
        stage, DeployedContract(stage.chain, address, account7579_artifact()), owner
    )
    init_code = bytes.fromhex(world.factory.address[2:]) + world.factory.compiled.encode(
        "create_account", owner.address, salt
    )
    op = account.unsigned_op(
        account.execute_data(transfer_call(stage.demo.token("USDX"), recipient, USDX)), nonce=0
    )._replace(init_code=init_code)
    op = account.signed(op)
    receipt = handle_op(stage, op, Key())
    assert op_outcome(receipt, account.op_hash(op))[0]
    assert stage.token_balance(recipient) == USDX
    assert account.is_installed(1, module.address) and account.is_installed(2, module.address)


def test_install_session_module_is_refused_to_anyone_but_the_account_itself(
    stage: Stage, wallet: ModuleWallet, world: World7579
) -> None:
    data = _encode("install_session_module")
    with _nothing_changes(wallet):
        for sender in (Key().address, wallet.account.owner.address, ENTRY_POINT_V07):
            assert revert_reason(stage, wallet.address, data, sender) == "NOT_AUTHORIZED"
    # The implementation itself neither: its code is there and it is not calling itself.
    assert (
        revert_reason(stage, world.implementation.address, data, Key().address) == "NOT_AUTHORIZED"
    )
    # The account itself may (idempotent: both types are installed, nothing is logged).
    stage.chain.call(wallet.address, data, sender=wallet.address)


# ---------------------------------------------------------------------------------- ERC-1271


def test_erc1271_accepts_the_owners_signature_of_the_account_message_only(
    stage: Stage, wallet: ModuleWallet, module: DeployedContract
) -> None:
    account = wallet.account.contract
    digest = keccak256(b"any application hash")
    owner = wallet.account.owner
    wrapped = account_message_digest(stage.chain.chain_id, wallet.address, digest)
    assert account.call_one("isValidSignature", digest, owner.sign(wrapped)) == bytes.fromhex(
        "1626ba7e"
    )
    other_account = create_account7579(stage, module, owner, usdx=0)
    for signature in (
        owner.sign(digest),  # a bare signature of the hash
        Key().sign(wrapped),  # a stranger's
        wallet.session.sign(wrapped),  # the session key's
        owner.sign(account_message_digest(stage.chain.chain_id, other_account.address, digest)),
        b"",
    ):
        assert account.call_one("isValidSignature", digest, signature) == b"\xff\xff\xff\xff"


# ------------------------------------------------------------------------- module management


def test_the_owner_installs_and_uninstalls_an_executor(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    account = _account(wallet)
    _install_executor(wallet, executor)
    assert account.is_installed(MODULE_TYPE_EXECUTOR, executor.address)
    assert not account.is_installed(MODULE_TYPE_VALIDATOR, executor.address)
    wallet.owner_run(
        account.self_call_data("uninstallModule", MODULE_TYPE_EXECUTOR, executor.address, b"")
    )
    assert not account.is_installed(MODULE_TYPE_EXECUTOR, executor.address)
    # The owner's own transaction is the owner's authority too (a factory account's owner).
    stage.chain.set_balance(account.owner.address, ONE_ETH)
    transact(
        stage.chain,
        LocalTransactionSigner(account.owner.secret),
        to=wallet.address,
        data=_encode("installModule", MODULE_TYPE_EXECUTOR, executor.address, b""),
    )
    assert account.is_installed(MODULE_TYPE_EXECUTOR, executor.address)


def test_module_management_is_refused_to_a_stranger_and_changes_nothing(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    module = wallet.module_address
    stranger = Key().address
    with _nothing_changes(wallet, executor.address):
        for data in (
            _encode("installModule", MODULE_TYPE_EXECUTOR, executor.address, b""),
            _encode("uninstallModule", MODULE_TYPE_VALIDATOR, module, b"\x01"),
            _encode("uninstallModule", MODULE_TYPE_EXECUTOR, module, b"\x02"),
            _encode("execute", *_single(Call(stranger, ONE_ETH, b""))),
        ):
            assert revert_reason(stage, wallet.address, data, stranger) == "NOT_AUTHORIZED"
            receipt = transact(
                stage.chain, stage.deployer, to=wallet.address, data=data, gas=300_000, check=False
            )
            assert not receipt.succeeded


def _single(call: Call) -> tuple[bytes, bytes]:
    return MODE_SINGLE, encode_single_execution(call)


def test_module_management_is_refused_to_a_session_key_and_changes_nothing(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    account = _account(wallet)
    install = _encode("installModule", MODULE_TYPE_EXECUTOR, executor.address, b"")
    uninstall = _encode("uninstallModule", MODULE_TYPE_VALIDATOR, wallet.module_address, b"\x01")
    with _nothing_changes(wallet, executor.address):
        for data in (install, uninstall):
            # Straight to the function, as a session operation: the module wants `execute`.
            _refused_in_validation(wallet, _session_op_of(wallet, data), "SELF_CALL_FORBIDDEN")
            # Through `execute`, a call of the account to itself: rule 1.
            call = Call(wallet.address, 0, data)
            _refused_in_validation(
                wallet, _session_op_of(wallet, account.execute_data(call)), "SELF_CALL_FORBIDDEN"
            )
            # Relayed through the module's executor path.
            relayed = wallet.relayed_call_data(
                call, nonce=7, deadline=stage.chain.block_timestamp() + 600
            )
            assert (
                revert_reason(stage, wallet.module_address, relayed, Key().address)
                == "SELF_CALL_FORBIDDEN"
            )
        # An owner operation signed by the session key is no owner operation.
        op = account.unsigned_op(account.execute_data(Call(wallet.address, 0, install)))
        forged = account.signed(op, wallet.session)
        assert handle_op_refusal(stage, forged).reason == "AA24 signature error"


def test_module_management_is_refused_to_an_installed_executor_and_changes_nothing(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    _install_executor(wallet, executor)
    intruder = Key().address
    with _nothing_changes(wallet, executor.address, intruder):
        for data in (
            _encode("installModule", MODULE_TYPE_VALIDATOR, wallet.module_address, b"\x01"),
            _encode("uninstallModule", MODULE_TYPE_VALIDATOR, wallet.module_address, b"\x01"),
            _encode("uninstallModule", MODULE_TYPE_EXECUTOR, executor.address, b""),
            _encode("execute", *_single(Call(intruder, ONE_ETH, b""))),
            _encode("install_session_module"),
        ):
            # Calling the account directly: not the owner's authority.
            direct = executor.compiled.encode("call_account", wallet.address, data)
            assert revert_reason(stage, executor.address, direct, Key().address) == (
                "NOT_AUTHORIZED"
            )
            # Making the account call itself: refused before anything runs.
            forward = executor.compiled.encode(
                "forward", wallet.address, *_single(Call(wallet.address, 0, data))
            )
            assert revert_reason(stage, executor.address, forward, Key().address) == (
                "SELF_CALL_FORBIDDEN"
            )
            # Hidden in a batch behind a harmless call: still refused.
            mode, calldata = _batch(Call(intruder, 0, b""), Call(wallet.address, 0, data))
            hidden = executor.compiled.encode("forward", wallet.address, mode, calldata)
            assert revert_reason(stage, executor.address, hidden, Key().address) == (
                "SELF_CALL_FORBIDDEN"
            )


def _batch(*calls: Call) -> tuple[bytes, bytes]:
    return MODE_BATCH, encode_batch_execution(list(calls))


def test_an_unsupported_or_repeated_installation_is_refused(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    """As the account itself (the owner's authority), each is INPUT_MALFORMED."""
    module = wallet.module_address
    with _nothing_changes(wallet, executor.address):
        for data in (
            _encode("installModule", 3, executor.address, b""),  # fallback: not supported
            _encode("installModule", 4, executor.address, b""),  # hook: not supported
            _encode("installModule", MODULE_TYPE_VALIDATOR, executor.address, b""),  # not its type
            _encode("installModule", MODULE_TYPE_VALIDATOR, module, b"\x01"),  # installed already
            _encode("uninstallModule", MODULE_TYPE_EXECUTOR, executor.address, b""),  # not there
            _encode("uninstallModule", 3, module, b""),
        ):
            assert revert_reason(stage, wallet.address, data, wallet.address) == "INPUT_MALFORMED"


# --------------------------------------------------------------------------------- execution


def test_execute_from_executor_is_refused_to_a_module_not_installed(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    pay = transfer_call(stage.demo.token("USDX"), Key().address, USDX)
    with _nothing_changes(wallet, executor.address):
        forward = executor.compiled.encode("forward", wallet.address, *_single(pay))
        assert revert_reason(stage, executor.address, forward, Key().address) == "NOT_AUTHORIZED"
        direct = _encode("executeFromExecutor", *_single(pay))
        for sender in (Key().address, wallet.account.owner.address, ENTRY_POINT_V07):
            assert revert_reason(stage, wallet.address, direct, sender) == "NOT_AUTHORIZED"


def test_the_session_modules_executor_is_refused_once_uninstalled(
    stage: Stage, wallet: ModuleWallet
) -> None:
    pay = transfer_call(stage.demo.token("USDX"), wallet.recipient, USDX)
    relayed = wallet.relayed_call_data(pay, nonce=1, deadline=stage.chain.block_timestamp() + 600)
    assert transact(stage.chain, stage.deployer, to=wallet.module_address, data=relayed).succeeded
    wallet.uninstall(MODULE_TYPE_EXECUTOR)
    assert not wallet.account.is_installed(MODULE_TYPE_EXECUTOR, wallet.module_address)
    assert wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    again = wallet.relayed_call_data(pay, nonce=2, deadline=stage.chain.block_timestamp() + 600)
    assert revert_reason(stage, wallet.module_address, again, Key().address) == "NOT_AUTHORIZED"


def test_the_session_modules_validator_is_refused_once_uninstalled(
    stage: Stage, wallet: ModuleWallet
) -> None:
    """Without the validator a nonce key naming the module is the owner's path: a session
    signature is no owner signature (AA24), and the owner's operations still work."""
    pay = transfer_call(stage.demo.token("USDX"), wallet.recipient, USDX)
    wallet.uninstall(MODULE_TYPE_VALIDATOR)
    assert not wallet.account.is_installed(MODULE_TYPE_VALIDATOR, wallet.module_address)
    assert handle_op_refusal(stage, wallet.session_op(pay)).reason == "AA24 signature error"
    wallet.owner_run(wallet.account.execute_data(pay))
    assert stage.token_balance(wallet.recipient) == USDX


def test_an_installed_executor_runs_calls_and_gets_their_return_data(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract
) -> None:
    _install_executor(wallet, executor)
    usdx = stage.demo.token("USDX")
    balance_of = stage.usdx.compiled.encode("balanceOf", wallet.address)
    mode, calldata = _batch(Call(usdx, 0, balance_of), transfer_call(usdx, wallet.recipient, USDX))
    data = executor.compiled.encode("forward", wallet.address, mode, calldata)
    (results,) = decode("(bytes[])", stage.chain.call(executor.address, data))
    assert isinstance(results, tuple)
    assert list(results) == [(1_000 * USDX).to_bytes(32, "big"), (1).to_bytes(32, "big")]
    transact(stage.chain, stage.deployer, to=executor.address, data=data)
    assert stage.token_balance(wallet.recipient) == USDX


@pytest.mark.parametrize(
    "mode", [MODE_DELEGATECALL, MODE_STATIC, MODE_TRY], ids=["delegatecall", "static", "try"]
)
def test_modes_other_than_single_and_batch_call_are_refused_everywhere(
    stage: Stage, wallet: ModuleWallet, executor: DeployedContract, mode: bytes
) -> None:
    account = _account(wallet)
    _install_executor(wallet, executor)
    pay = encode_single_execution(transfer_call(stage.demo.token("USDX"), wallet.recipient, USDX))
    with _nothing_changes(wallet, executor.address):
        # The owner's execute.
        owner_call = _encode("execute", mode, pay)
        assert revert_reason(stage, wallet.address, owner_call, account.owner.address) == (
            "CALL_TYPE_FORBIDDEN"
        )
        # An installed executor's.
        forward = executor.compiled.encode("forward", wallet.address, mode, pay)
        assert revert_reason(stage, executor.address, forward, Key().address) == (
            "CALL_TYPE_FORBIDDEN"
        )
        # A session operation: refused by the module in validation.
        _refused_in_validation(wallet, _session_op_of(wallet, owner_call), "CALL_TYPE_FORBIDDEN")
    # An owner operation with that mode is mined and its execution reverts: nothing moves.
    before = stage.token_balance(wallet.address)
    op = account.owner_op(owner_call)
    receipt = handle_op(stage, op, Key())
    assert op_outcome(receipt, account.op_hash(op))[0] is False
    assert stage.token_balance(wallet.address) == before


def test_validate_user_op_is_refused_to_anyone_but_the_entry_point(
    stage: Stage, wallet: ModuleWallet
) -> None:
    account = _account(wallet)
    op = account.owner_op(account.execute_data(Call(Key().address, 0, b"")))
    data = _encode("validateUserOp", tuple(op), account.op_hash(op), 0)
    assert revert_reason(stage, wallet.address, data, Key().address) == "NOT_AUTHORIZED"
    assert revert_reason(stage, wallet.address, data, wallet.address) == "NOT_AUTHORIZED"
