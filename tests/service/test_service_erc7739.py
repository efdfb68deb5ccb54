"""A wallet the service creates validates its owner's ERC-7739 nested typed-data signatures:
the service's own deployment puts the verifier the accounts call at its fixed address, on the
in-process chain (which has no deterministic deployment proxy) and on anvil (which has one).

The signature is built from the ERC text (``TypedDataSign`` over the wallet's ``SessionWard``
domain, implicit description mode), as tests/contracts/test_erc7739.py checks against viem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from service_support import ManualClock, Wallet, World, make_ops_keys

import anvil_node
from sessionward.chain import artifacts
from sessionward.chain.artifacts import ERC7739_VERIFIER, nested_typed_data_verifier
from sessionward.chain.demo import demo_contract
from sessionward.chain.rpc import RpcChain
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.service.config import Settings
from sessionward.service.runtime import DEPLOYMENT_FILE, build_runtime
from sessionward.service.waas import Waas

MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")
MAIL_TYPE = b"Mail(string contents)"
TYPED_DATA_SIGN = (
    b"TypedDataSign(Mail contents,string name,string version,uint256 chainId,"
    b"address verifyingContract,bytes32 salt)" + MAIL_TYPE
)


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    yield from anvil_node.session_node(31337)


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp(f"erc7739-{request.param}")
    if request.param == "embedded":
        built = World.build(data_dir)
    else:
        ops = make_ops_keys()
        settings = Settings(
            data_dir=data_dir,
            rpc_url=request.getfixturevalue("anvil"),
            ops_credentials=tuple(o.credential for o in ops),
        )
        clock = ManualClock()
        built = World(Waas(build_runtime(settings, clock=clock)), clock, ops)
    yield built
    built.close()


def app_domain(chain_id: int) -> bytes:
    """A dapp's EIP-712 domain separator (``name``, ``version``, ``chainId``)."""
    typehash = keccak256(b"EIP712Domain(string name,string version,uint256 chainId)")
    return keccak256(
        typehash + keccak256(b"Ether Mail") + keccak256(b"1") + chain_id.to_bytes(32, "big")
    )


def mail(text: bytes) -> bytes:
    """``hashStruct(Mail{contents: text})``."""
    return keccak256(keccak256(MAIL_TYPE) + keccak256(text))


def nested_signature(wallet: Wallet, chain_id: int, domain: bytes, contents: bytes) -> bytes:
    """The owner's ERC-7739 ``TypedDataSign`` signature of the dapp's ``Mail`` for ``wallet``:
    ``ownerSignature ‖ appDomainSeparator ‖ contents ‖ contentsType ‖ uint16 length``."""
    struct = keccak256(
        keccak256(TYPED_DATA_SIGN)
        + contents
        + keccak256(b"SessionWard")
        + keccak256(b"1")
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(wallet.account[2:])
        + bytes(32)
    )
    owner_signature = sign_digest(wallet.owner_secret, keccak256(b"\x19\x01" + domain + struct))
    return owner_signature + domain + contents + MAIL_TYPE + len(MAIL_TYPE).to_bytes(2, "big")


def is_valid_signature(world: World, account: str, digest: bytes, signature: bytes) -> bytes:
    account_code = demo_contract("SessionAccount")
    data = account_code.encode("isValidSignature", digest, signature)
    (answer,) = account_code.decode_output("isValidSignature", world.chain.call(account, data))
    assert isinstance(answer, bytes)
    return answer


def test_the_service_deploys_the_verifier_the_accounts_call_and_records_it(world: World) -> None:
    assert world.rt.deployment.erc7739_verifier == ERC7739_VERIFIER
    assert world.chain.get_code(ERC7739_VERIFIER) == nested_typed_data_verifier().runtime
    if world.rt.settings.rpc_url is not None:  # a node's deployment is kept for other processes
        record = Path(world.rt.settings.data_dir) / DEPLOYMENT_FILE
        assert json.loads(record.read_text())["erc7739_verifier"] == ERC7739_VERIFIER


def test_a_wallet_created_through_the_service_validates_its_owners_nested_typed_data_signature(
    world: World,
) -> None:
    wallet = world.wallet(usdx=0, approve_router=False)
    chain_id = world.rt.chain_id
    domain, contents = app_domain(chain_id), mail(b"Hello, Bob!")
    app_hash = keccak256(b"\x19\x01" + domain + contents)
    signature = nested_signature(wallet, chain_id, domain, contents)
    assert is_valid_signature(world, wallet.account, app_hash, signature) == MAGIC


def test_the_nested_signature_does_not_validate_on_another_wallet_of_the_service(
    world: World,
) -> None:
    wallet = world.wallet(usdx=0, approve_router=False)
    other = world.wallet(usdx=0, approve_router=False)
    chain_id = world.rt.chain_id
    domain, contents = app_domain(chain_id), mail(b"Hello, Bob!")
    app_hash = keccak256(b"\x19\x01" + domain + contents)
    signature = nested_signature(wallet, chain_id, domain, contents)
    assert is_valid_signature(world, other.account, app_hash, signature) == INVALID


@pytest.mark.anvil
def test_a_node_restarted_over_a_record_older_than_the_verifier_deploys_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with anvil_node.running(31337) as url:
        settings = Settings(data_dir=tmp_path, rpc_url=url, run_relayer=False)
        with monkeypatch.context() as before_the_verifier:
            before_the_verifier.setattr(artifacts, "ensure_erc7739_verifier", lambda *_: "")
            build_runtime(settings).close()
        record = tmp_path / DEPLOYMENT_FILE
        doc = json.loads(record.read_text())
        del doc["erc7739_verifier"]
        record.write_text(json.dumps(doc))
        with RpcChain(url) as chain:
            assert chain.get_code(ERC7739_VERIFIER) == b""
        runtime = build_runtime(settings)
        try:
            assert runtime.deployment.erc7739_verifier == ERC7739_VERIFIER
            assert runtime.chain.get_code(ERC7739_VERIFIER) == nested_typed_data_verifier().runtime
        finally:
            runtime.close()


class _ProductionNode:
    """A node that is not a development chain (no set_balance, set_code, mine, time_travel):
    everything else is the in-process chain's."""

    _DEV_ONLY = frozenset({"set_balance", "set_code", "mine", "time_travel"})

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name in self._DEV_ONLY:
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_node_on_a_real_network_without_the_verifier_warns_and_deploys_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionward.chain.embedded import EmbeddedChain
    from sessionward.chain.interface import DevChain
    from sessionward.chain.signer import LocalTransactionSigner
    from sessionward.service import runtime

    deployer = LocalTransactionSigner(keccak256(b"erc7739 warning deployer"))
    inner = EmbeddedChain(chain_id=1)
    inner.set_balance(deployer.address, 10**21)
    with pytest.MonkeyPatch.context() as before_the_verifier:
        before_the_verifier.setattr(artifacts, "ensure_erc7739_verifier", lambda *_: "")
        deployment = runtime.deploy_demo(inner, deployer=deployer, relayer=deployer.address)
    doc = {k: v for k, v in asdict(deployment).items() if k != "erc7739_verifier"}
    (tmp_path / DEPLOYMENT_FILE).write_text(json.dumps(doc))
    node = _ProductionNode(inner)
    assert not isinstance(node, DevChain)
    with caplog.at_level("WARNING", logger="sessionward.runtime"):
        runtime._deployment(
            node,  # type: ignore[arg-type]
            tmp_path,
            deployer.address,
            deployer,
            embedded=False,
        )
    assert inner.get_code(ERC7739_VERIFIER) == b""
    assert any("no ERC-7739 verifier" in r.getMessage() for r in caplog.records)
