"""AssociatedStorage, the 54 bytes of hand-written EVM through which SessionWard's ERC-7579
module keeps its per-account words at ERC-7562 associated slots ``keccak256(A ‖ x) + n``:
deployed at its deterministic CREATE2 address, it stores and loads exactly that slot (in the
storage of whoever runs its code: here its own, called directly), refuses an offset above 127 (alto's reading of ERC-7562's "0..128")
and any other calldata shape, and the module refuses to deploy where its code is not there.
"""

from __future__ import annotations

import pytest
from erc4337_support import DETERMINISTIC_DEPLOYER, Key, Stage
from module_support import deploy_associated_storage, module_artifact, revert_reason

from sessionward.chain.contracts import deploy, transact
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.erc7579_module import associated_storage as helper
from sessionward.crypto.keccak import keccak256

pytestmark = pytest.mark.anvil

ACCOUNT = bytes(12) + bytes.fromhex("ab" * 20)
KEY = keccak256(b"some key")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _slot(account: bytes, key: bytes, n: int) -> int:
    return int.from_bytes(keccak256(account + key), "big") + n


def _storage(rpc: JsonRpcClient, address: str, slot: int) -> int:
    return int(rpc.request("eth_getStorageAt", [address, hex(slot), "latest"]), 16)


@pytest.fixture(scope="module")
def address(stage: Stage) -> str:
    return deploy_associated_storage(stage)


def test_the_helper_is_the_assembled_code_at_its_create2_address(
    stage: Stage, address: str
) -> None:
    assert len(helper.RUNTIME) == 54
    assert (
        helper.create2_address(DETERMINISTIC_DEPLOYER, bytes(32), helper.INITCODE) == helper.ADDRESS
    )
    assert stage.chain.get_code(address) == helper.RUNTIME
    assert keccak256(stage.chain.get_code(address)) == helper.CODEHASH
    # The module's constants name the same address and code hash.
    source = module_artifact()
    assert bytes.fromhex(helper.ADDRESS[2:]) in source.runtime
    assert helper.CODEHASH in source.initcode  # checked by the constructor


@pytest.mark.parametrize("n", [0, 1, 126, 127])
def test_a_store_writes_keccak_of_account_and_key_plus_n_and_a_load_reads_it(
    stage: Stage, rpc: JsonRpcClient, address: str, n: int
) -> None:
    value = int.from_bytes(keccak256(_word(n)), "big")
    transact(stage.chain, stage.deployer, to=address, data=ACCOUNT + KEY + _word(n) + _word(value))
    assert _storage(rpc, address, _slot(ACCOUNT, KEY, n)) == value
    loaded = stage.chain.call(address, ACCOUNT + KEY + _word(n))
    assert loaded == _word(value)
    # Another account, same key: another slot, still empty.
    other = bytes(12) + bytes.fromhex("cd" * 20)
    assert stage.chain.call(address, other + KEY + _word(n)) == _word(0)


def test_an_offset_above_127_is_refused_and_writes_nothing(
    stage: Stage, rpc: JsonRpcClient, address: str
) -> None:
    data = ACCOUNT + KEY + _word(128) + _word(7)
    receipt = transact(stage.chain, stage.deployer, to=address, data=data, gas=100_000, check=False)
    assert not receipt.succeeded
    assert _storage(rpc, address, _slot(ACCOUNT, KEY, 128)) == 0
    with pytest.raises(ExecutionReverted) as refused:
        stage.chain.call(address, ACCOUNT + KEY + _word(128))
    assert refused.value.data in (b"", None)


@pytest.mark.parametrize("length", [0, 32, 64, 95, 97, 127, 129, 160, 192])
def test_calldata_that_is_neither_a_load_nor_a_store_is_refused(
    stage: Stage, address: str, length: int
) -> None:
    data = (ACCOUNT + KEY + _word(0) + _word(1) + _word(2) + _word(3))[:length]
    with pytest.raises(ExecutionReverted):
        stage.chain.call(address, data, sender=Key().address)


def test_the_module_refuses_to_deploy_where_the_helper_code_differs(
    stage: Stage, address: str
) -> None:
    stage.chain.set_code(address, helper.RUNTIME[:-1] + b"\x00")
    try:
        constructor = module_artifact().deployment_code()
        assert revert_reason(stage, None, constructor, stage.deployer.address) == "NOT_AUTHORIZED"
    finally:
        stage.chain.set_code(address, helper.RUNTIME)
    assert deploy(stage.chain, stage.deployer, module_artifact()).address
