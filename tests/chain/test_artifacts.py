"""SessionWard's contracts on a chain: the ERC-7739 verifier is deployed with the accounts, at
the fixed address ``SessionAccount`` calls, through the deterministic deployment proxy, once.

Each behavioural test runs on the in-process chain (which has no proxy: it is set in place) and
on anvil (which ships with it). The canonical pre-signed deployment of the proxy runs on an
anvil started without it (``--disable-default-create2-deployer``), seen as a chain that is not a
development chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]

import anvil_node
from sessionward.chain import artifacts
from sessionward.chain.artifacts import (
    CREATE2_PROXY,
    CREATE2_PROXY_DEPLOYER,
    CREATE2_PROXY_DEPLOYMENT,
    CREATE2_PROXY_RUNTIME,
    ERC7739_VERIFIER,
    ERC7739_VERIFIER_SALT,
    AccountDeployment,
    VerifierMismatch,
    create2_address,
    deploy_account_contracts,
    ensure_erc7739_verifier,
    nested_typed_data_verifier,
)
from sessionward.chain.contracts import transact
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts import source_path
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import recover_signer

# --- the constants agree with each other and with the contracts -------------------------------


def test_the_verifier_address_is_the_accounts_constant_and_the_create2_address_of_its_code() -> (
    None
):
    text = source_path("SessionAccount").read_text()
    constant = text.split("ERC7739_VERIFIER: constant(address) = ")[1].split()[0]
    initcode = nested_typed_data_verifier().initcode
    assert constant.lower() == ERC7739_VERIFIER
    assert create2_address(CREATE2_PROXY, ERC7739_VERIFIER_SALT, initcode) == ERC7739_VERIFIER


def test_the_canonical_proxy_deployment_is_signed_by_its_deployer_and_creates_the_proxy() -> None:
    nonce, gas_price, gas, to, value, data, v, r, s = rlp.decode(CREATE2_PROXY_DEPLOYMENT)
    assert (nonce, to, value, v) == (b"", b"", b"", b"\x1b")  # nonce 0, a creation, no chain id
    assert int.from_bytes(gas_price, "big") * int.from_bytes(gas, "big") == 10**16
    signing_hash = keccak256(rlp.encode([nonce, gas_price, gas, to, value, data]))
    assert recover_signer(signing_hash, r + s + b"\x1b") == CREATE2_PROXY_DEPLOYER
    created = keccak256(rlp.encode([bytes.fromhex(CREATE2_PROXY_DEPLOYER[2:]), 0]))[12:]
    assert "0x" + created.hex() == CREATE2_PROXY
    assert data.endswith(CREATE2_PROXY_RUNTIME)


def test_an_account_deployment_recorded_before_the_verifier_still_loads() -> None:
    old = {
        "chain_id": 1,
        "entry_point": "0x" + "00" * 20,
        "implementation": "0x1",
        "factory": "0x2",
    }
    assert AccountDeployment(**old).erc7739_verifier == ERC7739_VERIFIER  # type: ignore[arg-type]


# --- deployment on the dev chains ---------------------------------------------------------------


def test_deploying_the_account_contracts_puts_the_verifier_at_its_address(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    deployment = deploy_account_contracts(chain, funded)
    assert deployment.erc7739_verifier == ERC7739_VERIFIER
    assert chain.get_code(ERC7739_VERIFIER) == nested_typed_data_verifier().runtime
    assert chain.get_code(CREATE2_PROXY) == CREATE2_PROXY_RUNTIME


def test_a_second_deployment_leaves_the_verifier_alone(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    deploy_account_contracts(chain, funded)
    before = chain.get_transaction_count(funded.address, "latest")
    again = deploy_account_contracts(chain, funded)
    assert chain.get_transaction_count(funded.address, "latest") == before + 2  # the two accounts
    assert again.erc7739_verifier == ERC7739_VERIFIER
    assert ensure_erc7739_verifier(chain, funded) == ERC7739_VERIFIER
    assert chain.get_transaction_count(funded.address, "latest") == before + 2


def test_the_in_process_chain_gets_the_proxy_set_in_place(funded: LocalTransactionSigner) -> None:
    chain = EmbeddedChain(chain_id=1)
    chain.set_balance(funded.address, 10**20)
    assert chain.get_code(CREATE2_PROXY) == b""
    ensure_erc7739_verifier(chain, funded)
    assert chain.get_code(CREATE2_PROXY) == CREATE2_PROXY_RUNTIME
    assert chain.get_transaction_count(funded.address, "latest") == 1  # the verifier's deployment


def test_a_verifier_that_disagrees_with_the_accounts_constant_is_refused_before_any_transaction(
    funded: LocalTransactionSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = EmbeddedChain(chain_id=1)
    chain.set_balance(funded.address, 10**20)
    monkeypatch.setattr(artifacts, "ERC7739_VERIFIER", "0x" + "77" * 20)
    with pytest.raises(VerifierMismatch, match="disagree"):
        deploy_account_contracts(chain, funded)
    assert chain.get_transaction_count(funded.address, "latest") == 0


def test_a_verifier_deployed_meanwhile_by_another_process_counts_as_deployed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = EmbeddedChain(chain_id=1)
    mine, other = LocalTransactionSigner(b"\x01" * 32), LocalTransactionSigner(b"\x02" * 32)
    for signer in (mine, other):
        chain.set_balance(signer.address, 10**20)
    make_proxy = artifacts.ensure_create2_proxy

    def proxy_then_another_process_deploys(chain_: Chain, signer: Any) -> None:
        make_proxy(chain_, signer)
        initcode = nested_typed_data_verifier().initcode
        transact(chain_, other, to=CREATE2_PROXY, data=ERC7739_VERIFIER_SALT + initcode)

    monkeypatch.setattr(artifacts, "ensure_create2_proxy", proxy_then_another_process_deploys)
    assert ensure_erc7739_verifier(chain, mine) == ERC7739_VERIFIER
    assert chain.get_transaction_count(mine.address, "latest") == 0


def test_a_proxy_that_creates_elsewhere_is_refused(
    funded: LocalTransactionSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another contract at the proxy's address (here: one that creates nothing) leaves no
    verifier at the constant: refused loudly, not recorded."""
    chain = EmbeddedChain(chain_id=1)
    chain.set_balance(funded.address, 10**20)
    chain.set_code(CREATE2_PROXY, bytes.fromhex("00"))  # STOP
    with pytest.raises(VerifierMismatch, match="0 bytes"):
        ensure_erc7739_verifier(chain, funded)


# --- a chain without the proxy that is not a development chain ----------------------------------


class NotADevChain:
    """A :class:`Chain` view of a node without its development methods (what the service sees
    of a production node)."""

    _DEV_ONLY = frozenset({"set_balance", "set_code", "mine", "time_travel"})

    def __init__(self, inner: Chain) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in self._DEV_ONLY:
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.fixture
def anvil_without_proxy() -> Iterator[RpcChain]:
    try:
        process, url = anvil_node.start(31337, options=("--disable-default-create2-deployer",))
    except anvil_node.AnvilUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        with RpcChain(url) as chain:
            yield chain
    finally:
        anvil_node.stop(process)


@pytest.mark.anvil
def test_a_node_without_the_proxy_gets_it_by_its_canonical_deployment(
    anvil_without_proxy: RpcChain,
) -> None:
    signer = LocalTransactionSigner(b"\x42" * 32)
    anvil_without_proxy.set_balance(signer.address, 10**20)
    assert anvil_without_proxy.get_code(CREATE2_PROXY) == b""
    production = NotADevChain(anvil_without_proxy)
    assert isinstance(production, Chain) and not isinstance(production, DevChain)
    deployment = deploy_account_contracts(production, signer)  # type: ignore[arg-type]
    assert anvil_without_proxy.get_code(CREATE2_PROXY) == CREATE2_PROXY_RUNTIME
    assert anvil_without_proxy.get_transaction_count(CREATE2_PROXY_DEPLOYER, "latest") == 1
    assert deployment.erc7739_verifier == ERC7739_VERIFIER
    assert anvil_without_proxy.get_code(ERC7739_VERIFIER) == nested_typed_data_verifier().runtime
