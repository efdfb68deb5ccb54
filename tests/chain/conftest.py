"""Fixtures of the chain room: an anvil node per test session, a ``chain`` fixture that runs
every behavioural test on both backends, funded signers and the test contracts.

The anvil binary comes from npm (``@foundry-rs/anvil`` in package.json). If it is missing the
tests that need it FAIL (they do not skip): run ``npm install`` in the repository root.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chain_support import CHAIN_ID, ONE_ETH

import anvil_node
from sessionward.chain.contracts import ContractArtifact, DeployedContract, compile_vyper, deploy
from sessionward.chain.interface import DevChain
from sessionward.chain.signer import LocalTransactionSigner

TEST_CONTRACTS = Path(__file__).resolve().parent / "contracts"


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """``anvil`` (Prague, chain id ``CHAIN_ID``) on a free local port, for the whole session."""
    yield from anvil_node.session_node(CHAIN_ID)


@pytest.fixture(params=anvil_node.BACKENDS)
def chain(request: pytest.FixtureRequest) -> Iterator[DevChain]:
    """The same behavioural test on the in-process chain and on anvil (a fresh chain per test)."""
    yield from anvil_node.dev_chain(request, CHAIN_ID)


@pytest.fixture
def make_funded(chain: DevChain) -> Callable[..., LocalTransactionSigner]:
    """``make_funded(wei=100 ETH)``: a fresh random key with a balance on ``chain``."""

    def make(wei: int = 100 * ONE_ETH) -> LocalTransactionSigner:
        signer = LocalTransactionSigner(secrets.token_bytes(32))
        chain.set_balance(signer.address, wei)
        return signer

    return make


@pytest.fixture
def funded(make_funded: Callable[..., LocalTransactionSigner]) -> LocalTransactionSigner:
    return make_funded()


@pytest.fixture(scope="session")
def probe_code() -> ContractArtifact:
    return compile_vyper(TEST_CONTRACTS / "Probe.vy")


@pytest.fixture(scope="session")
def erc1271_code() -> ContractArtifact:
    return compile_vyper(TEST_CONTRACTS / "Erc1271Wallet.vy")


@pytest.fixture
def probe(
    chain: DevChain, funded: LocalTransactionSigner, probe_code: ContractArtifact
) -> DeployedContract:
    """A Probe deployed with ``value() == 7``."""
    return deploy(chain, funded, probe_code, 7)
