"""SessionWard's own contracts as the service uses them on any chain: the compiled
``SessionAccount``, ``SessionAccountFactory`` and ``NestedTypedDataVerifier``, and their
deployment.

The verifier (ERC-7739 nested typed-data signatures) is the one contract with a fixed address:
``SessionAccount`` calls it at the constant ``ERC7739_VERIFIER``, the CREATE2 address of its
exact initcode under the deterministic deployment proxy (:data:`CREATE2_PROXY`, salt zero). So it
is deployed through that proxy, once per chain: :func:`ensure_erc7739_verifier`.

The artifacts (ABI, initcode, runtime) come from the Vyper sources of
:mod:`sessionward.contracts` through :func:`~sessionward.chain.contracts.compile_vyper`, which
caches them on disk, so encodings cannot drift from the contracts. Nothing here is a demo:
:mod:`sessionward.chain.demo` deploys the demo tokens and router beside these contracts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sessionward.chain.contracts import (
    ContractArtifact,
    TransactionFailed,
    compile_vyper,
    deploy,
    transact,
    wait_for_receipt,
)
from sessionward.chain.errors import ChainError, ExecutionReverted
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.signer import TransactionSigner
from sessionward.contracts import CONTRACTS_DIR, source_path
from sessionward.contracts.erc7579_module import associated_storage
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import normalize_address

__all__ = [
    "CREATE2_PROXY",
    "CREATE2_PROXY_DEPLOYER",
    "CREATE2_PROXY_DEPLOYMENT",
    "CREATE2_PROXY_RUNTIME",
    "ERC7739_VERIFIER",
    "ERC7739_VERIFIER_SALT",
    "NESTED_TYPED_DATA_VERIFIER",
    "NO_ENTRY_POINT",
    "SESSION_ACCOUNT",
    "SESSION_ACCOUNT_FACTORY",
    "AccountDeployment",
    "ModuleDeployment",
    "VerifierMismatch",
    "contract_artifact",
    "create2_address",
    "deploy_account_contracts",
    "deploy_create2_proxy",
    "deploy_module_contracts",
    "ensure_associated_storage",
    "ensure_create2_proxy",
    "ensure_erc7739_verifier",
    "nested_typed_data_verifier",
    "session_account",
    "session_account7579",
    "session_account7579_factory",
    "session_account_factory",
    "session_module",
]

SESSION_ACCOUNT: Final = "SessionAccount"
SESSION_ACCOUNT_FACTORY: Final = "SessionAccountFactory"
NESTED_TYPED_DATA_VERIFIER: Final = "NestedTypedDataVerifier"
NO_ENTRY_POINT: Final = "0x" + "00" * 20
"""The implementation's EntryPoint when there is none (ERC-4337 off)."""

CREATE2_PROXY: Final = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
"""The deterministic deployment proxy (Arachnid's): called with ``salt ‖ initcode`` it
CREATE2-deploys ``initcode`` and returns the 20-byte address. Present on anvil by default and
on most public chains."""
CREATE2_PROXY_RUNTIME: Final = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe036016000816020823780358282"
    "34f58015156039578182fd5b8082525050506014600cf3"
)
"""The proxy's runtime code (what its deployment leaves at :data:`CREATE2_PROXY`)."""
CREATE2_PROXY_DEPLOYER: Final = "0x3fab184622dc19b6109349b94811493bf2a45362"
"""The one-time sender of :data:`CREATE2_PROXY_DEPLOYMENT` (its nonce 0 makes the address)."""
CREATE2_PROXY_DEPLOYMENT: Final = bytes.fromhex(
    "f8a58085174876e800830186a08080b853604580600e600039806000f350fe7fffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b808252"
    "5050506014600cf31ba02222222222222222222222222222222222222222222222222222222222222222a0222222"
    "2222222222222222222222222222222222222222222222222222222222"
)
"""The proxy's canonical deployment: a legacy transaction without a chain id (pre-EIP-155),
nonce 0, gas 100,000 at 100 gwei, signed with ``r = s = 0x2222…`` so that nobody knows the key
of :data:`CREATE2_PROXY_DEPLOYER` and the same bytes deploy the proxy on every chain."""
_CREATE2_PROXY_DEPLOYMENT_COST: Final = 100_000 * 100 * 10**9
"""Wei :data:`CREATE2_PROXY_DEPLOYER` needs for :data:`CREATE2_PROXY_DEPLOYMENT`."""

ERC7739_VERIFIER_SALT: Final = bytes(32)
ERC7739_VERIFIER: Final = "0x2423aec8ddc924e22d6d452f6e4e3ba0ac6b2d1d"
"""``SessionAccount``'s ``ERC7739_VERIFIER`` constant: :func:`create2_address` of
``NestedTypedDataVerifier``'s initcode under :data:`CREATE2_PROXY` with
:data:`ERC7739_VERIFIER_SALT` (tests keep the three in step)."""


class VerifierMismatch(ChainError):
    """The verifier's code would not land, or did not land, at ``ERC7739_VERIFIER``: the
    compiled verifier and the account's constant disagree (or the proxy is not the canonical
    one). Wallets could not validate ERC-7739 signatures, so the deployment stops."""


def contract_artifact(name: str) -> ContractArtifact:
    """The compiled contract ``name`` of :mod:`sessionward.contracts` (``"SessionAccount"``,
    ``"SessionAccountFactory"``, the demo's ``"DemoToken"``, ``"DemoRouter"``), from the disk
    cache when its sources are unchanged. ``ValueError`` for an unknown name."""
    return compile_vyper(source_path(name))


def create2_address(deployer: str, salt: bytes, initcode: bytes) -> str:
    """The EIP-1014 address: ``keccak256(0xff ‖ deployer ‖ salt ‖ keccak256(initcode))[12:]``."""
    if len(salt) != 32:
        raise ValueError("a CREATE2 salt is 32 bytes")
    sender = bytes.fromhex(normalize_address(deployer)[2:])
    return "0x" + keccak256(b"\xff" + sender + salt + keccak256(initcode))[12:].hex()


def session_account() -> ContractArtifact:
    """The account implementation: its ABI encodes every call the service makes to a wallet."""
    return contract_artifact(SESSION_ACCOUNT)


def session_account_factory() -> ContractArtifact:
    """The CREATE2 factory of accounts over one implementation (see
    :mod:`sessionward.contracts.proxy`)."""
    return contract_artifact(SESSION_ACCOUNT_FACTORY)


def nested_typed_data_verifier() -> ContractArtifact:
    """The stateless ERC-7739 ``TypedDataSign`` verifier the accounts call at
    :data:`ERC7739_VERIFIER` (no constructor arguments)."""
    return contract_artifact(NESTED_TYPED_DATA_VERIFIER)


def deploy_create2_proxy(chain: Chain, signer: TransactionSigner) -> None:
    """Deploy :data:`CREATE2_PROXY` the canonical way: ``signer`` pays
    :data:`CREATE2_PROXY_DEPLOYER` the deployment's gas money (what it lacks of it), then the
    pre-signed :data:`CREATE2_PROXY_DEPLOYMENT` is sent as is. Needs a node that accepts
    transactions without a chain id (anvil does; geth only with ``--rpc.allow-unprotected-txs``)
    and a base fee at most 100 gwei. Raises :class:`ChainError` when the proxy is not there
    afterwards (e.g. the deployer's nonce 0 was spent on another chain history)."""
    if chain.get_transaction_count(CREATE2_PROXY_DEPLOYER, "latest") != 0:
        raise ChainError(
            f"the proxy's deployer {CREATE2_PROXY_DEPLOYER} has spent its nonce 0 on this chain "
            f"but {CREATE2_PROXY} has no code: the proxy cannot be deployed here"
        )
    missing = _CREATE2_PROXY_DEPLOYMENT_COST - chain.get_balance(CREATE2_PROXY_DEPLOYER)
    if missing > 0:
        transact(chain, signer, to=CREATE2_PROXY_DEPLOYER, value=missing)
    receipt = wait_for_receipt(chain, chain.send_raw_transaction(CREATE2_PROXY_DEPLOYMENT))
    if not receipt.succeeded or chain.get_code(CREATE2_PROXY) != CREATE2_PROXY_RUNTIME:
        raise ChainError(f"the proxy's deployment {receipt.tx_hash} left no proxy code")


def ensure_create2_proxy(chain: Chain, signer: TransactionSigner) -> None:
    """Make :data:`CREATE2_PROXY` callable on ``chain``: nothing if it has code; on a
    :class:`DevChain`, its runtime code set in place (the in-process chain takes no
    pre-EIP-155 transactions, and it is what anvil ships with); else
    :func:`deploy_create2_proxy`."""
    if chain.get_code(CREATE2_PROXY):
        return
    if isinstance(chain, DevChain):
        chain.set_code(CREATE2_PROXY, CREATE2_PROXY_RUNTIME)
        return
    deploy_create2_proxy(chain, signer)


def ensure_erc7739_verifier(chain: Chain, signer: TransactionSigner) -> str:
    """Make sure the verifier's code sits at :data:`ERC7739_VERIFIER`; returns the address.

    Idempotent: nothing is sent when code is already there. Else the proxy is made available
    (:func:`ensure_create2_proxy`) and ``signer`` calls it with ``salt ‖ initcode`` (a
    deployment that fails because the verifier appeared meanwhile counts as done). Raises
    :class:`VerifierMismatch` before sending anything when the compiled verifier's CREATE2
    address is not the account's constant, and after when the expected code is not at it."""
    if chain.get_code(ERC7739_VERIFIER):
        return ERC7739_VERIFIER
    verifier = nested_typed_data_verifier()
    expected = create2_address(CREATE2_PROXY, ERC7739_VERIFIER_SALT, verifier.initcode)
    if expected != ERC7739_VERIFIER:
        raise VerifierMismatch(
            f"NestedTypedDataVerifier would deploy at {expected}, but SessionAccount calls "
            f"{ERC7739_VERIFIER}: the verifier and the account's constant disagree"
        )
    ensure_create2_proxy(chain, signer)
    try:
        transact(chain, signer, to=CREATE2_PROXY, data=ERC7739_VERIFIER_SALT + verifier.initcode)
    except (ExecutionReverted, TransactionFailed):
        # The proxy reverts when the address is taken: another process sharing the node may
        # have deployed the verifier since the check above.
        if chain.get_code(ERC7739_VERIFIER) != verifier.runtime:
            raise
        return ERC7739_VERIFIER
    landed = chain.get_code(ERC7739_VERIFIER)
    if landed != verifier.runtime:
        raise VerifierMismatch(
            f"after the deployment through {CREATE2_PROXY}, {ERC7739_VERIFIER} holds "
            f"{len(landed)} bytes of code, not the verifier's {len(verifier.runtime)}"
        )
    return ERC7739_VERIFIER


def session_module() -> ContractArtifact:
    """SessionWard's ERC-7579 module (``erc7579_module/SessionWardModule.vy``)."""
    return compile_vyper(CONTRACTS_DIR / "erc7579_module" / "SessionWardModule.vy")


def session_account7579() -> ContractArtifact:
    """SessionAccount7579 (constructor: the EntryPoint and the module it installs)."""
    return compile_vyper(source_path("SessionAccount7579"))


def session_account7579_factory() -> ContractArtifact:
    """SessionAccount7579Factory (constructor: the implementation)."""
    return compile_vyper(source_path("SessionAccount7579Factory"))


def ensure_associated_storage(chain: Chain, signer: TransactionSigner) -> str:
    """Make sure AssociatedStorage (the module's storage helper, 54 bytes of hand-written EVM)
    sits at its CREATE2 address under :data:`CREATE2_PROXY`; returns the address. Idempotent,
    as :func:`ensure_erc7739_verifier`; the module refuses to deploy over any other code."""
    address = associated_storage.ADDRESS
    if chain.get_code(address) == associated_storage.RUNTIME:
        return address
    ensure_create2_proxy(chain, signer)
    data = associated_storage.SALT + associated_storage.INITCODE
    try:
        transact(chain, signer, to=CREATE2_PROXY, data=data)
    except (ExecutionReverted, TransactionFailed):
        if chain.get_code(address) != associated_storage.RUNTIME:
            raise  # not taken by another deployment of the same code: a real failure
    if chain.get_code(address) != associated_storage.RUNTIME:
        raise ChainError(f"{address} does not hold AssociatedStorage after its deployment")
    return address


@dataclass(frozen=True)
class ModuleDeployment:
    """SessionWard's ERC-7579 contracts on one chain: the module, and SessionAccount7579's
    implementation and factory (accounts made with the module installed)."""

    session_module: str
    implementation: str
    factory: str


def deploy_module_contracts(
    chain: Chain, signer: TransactionSigner, *, entry_point: str = NO_ENTRY_POINT
) -> ModuleDeployment:
    """AssociatedStorage (:func:`ensure_associated_storage`), the module, SessionAccount7579's
    implementation (with ``entry_point`` and the module) and its factory, from ``signer``."""
    ensure_associated_storage(chain, signer)
    module = deploy(chain, signer, session_module())
    implementation = deploy(chain, signer, session_account7579(), entry_point, module.address)
    factory = deploy(chain, signer, session_account7579_factory(), implementation.address)
    return ModuleDeployment(module.address, implementation.address, factory.address)


@dataclass(frozen=True)
class AccountDeployment:
    """Where SessionWard's contracts live on one chain (lower-case ``0x`` addresses).

    ``erc7739_verifier`` defaults to :data:`ERC7739_VERIFIER` (keyword-only) so that records
    written before it existed still load; so do ``session_module`` and
    ``account7579_factory`` (SessionWard's ERC-7579 module and SessionAccount7579's factory,
    :func:`deploy_module_contracts`), ``None`` in a record from before them."""

    chain_id: int
    entry_point: str
    implementation: str
    factory: str
    erc7739_verifier: str = field(default=ERC7739_VERIFIER, kw_only=True)
    session_module: str | None = field(default=None, kw_only=True)
    account7579_factory: str | None = field(default=None, kw_only=True)


def deploy_account_contracts(
    chain: Chain, signer: TransactionSigner, *, entry_point: str = NO_ENTRY_POINT
) -> AccountDeployment:
    """Deploy the implementation (constructor: the ERC-4337 ``entry_point``) and the factory
    over it, one signed transaction each from ``signer`` (which must hold the gas money), and
    make sure the ERC-7739 verifier is at its fixed address (:func:`ensure_erc7739_verifier`:
    nothing to do when an earlier deployment put it there)."""
    verifier = ensure_erc7739_verifier(chain, signer)
    implementation = deploy(chain, signer, session_account(), entry_point)
    factory = deploy(chain, signer, session_account_factory(), implementation.address)
    return AccountDeployment(
        chain_id=chain.chain_id,
        entry_point=entry_point.lower(),
        implementation=implementation.address,
        factory=factory.address,
        erc7739_verifier=verifier,
    )
