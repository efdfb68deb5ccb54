"""SessionWard's own ERC-7579 account, ``SessionAccount7579``, on anvil for the
``test_account7579_*`` tests (and, through ``module_support.new_module_wallet(...,
account_kind=ACCOUNT7579)``, for the module's parity tests).

- :func:`world7579` deploys, once per module deployment, the implementation (trusting the
  canonical EntryPoint v0.7 and naming the module) and its factory.
- :func:`create_account7579` creates an account of a fresh or given owner key through the
  factory: the module is installed as validator and executor at creation.
- :class:`Account7579` drives one: it is ``oz_account.OzAccount`` (same nonce keys, same
  ``execute``), with the account's own owner signatures: the EIP-191 hash of the userOpHash
  for operations, the ``AccountMessage`` wrapper of the hash for ERC-1271.
- :func:`delegate` delegates an EOA to an implementation with a real type-4 transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import count
from typing import Final

from erc4337_support import ENTRY_POINT_V07, ONE_ETH, USDX, Key, Stage
from oz_account import OzAccount

from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    compile_vyper,
    deploy,
)
from sessionward.contracts import source_path
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.crypto.typed_data import account_message_digest

ACCOUNT7579: Final = "SessionAccount7579"
FACTORY7579: Final = "SessionAccount7579Factory"
MODULES_SLOT: Final = int.from_bytes(keccak256(b"sessionward.account7579.modules"), "big")
SALTS: Final = count(1)


@cache
def account7579_artifact() -> ContractArtifact:
    """SessionAccount7579, compiled with its storage-layout override (``compile_vyper``)."""
    return compile_vyper(source_path(ACCOUNT7579))


@cache
def factory7579_artifact() -> ContractArtifact:
    return compile_vyper(source_path(FACTORY7579))


def installed_word_slot(module: str) -> int:
    """The storage slot of ``_installed[module]`` (the override's slot, then the key)."""
    key = bytes.fromhex(module[2:]).rjust(32, b"\0")
    return int.from_bytes(keccak256(MODULES_SLOT.to_bytes(32, "big") + key), "big")


@dataclass
class Account7579(OzAccount):
    """A SessionAccount7579 and its owner key (an EIP-7702 EOA is its own owner)."""

    def owner_op(self, call_data: bytes) -> PackedUserOperation:
        """An owner operation (nonce key 0): the owner signs the EIP-191 hash of the
        userOpHash."""
        return self.signed(self.unsigned_op(call_data))

    def signed(self, op: PackedUserOperation, signer: Key | None = None) -> PackedUserOperation:
        """``op`` signed as an owner operation by the owner (or by ``signer``)."""
        digest = personal_message_hash(self.op_hash(op))
        return op._replace(signature=(signer or self.owner).sign(digest))

    def erc1271_signature(self, digest: bytes, signer: Key | None = None) -> bytes:
        """The owner's (or ``signer``'s) signature the account's ``isValidSignature`` accepts
        for ``digest``."""
        wrapped = account_message_digest(self.stage.chain.chain_id, self.address, digest)
        return (signer or self.owner).sign(wrapped)


@dataclass(frozen=True)
class World7579:
    """The implementation of SessionAccount7579 for one module, and its factory."""

    implementation: DeployedContract
    factory: DeployedContract
    module: DeployedContract


_WORLDS: dict[tuple[int, str], World7579] = {}


def world7579(stage: Stage, module: DeployedContract) -> World7579:
    """The implementation and factory for ``module`` on the stage's chain (deployed once)."""
    key = (id(stage), module.address.lower())
    world = _WORLDS.get(key)
    if world is None:
        implementation = deploy(
            stage.chain, stage.deployer, account7579_artifact(), ENTRY_POINT_V07, module.address
        )
        factory = deploy(
            stage.chain, stage.deployer, factory7579_artifact(), implementation.address
        )
        world = World7579(implementation, factory, module)
        _WORLDS[key] = world
    return world


def create_account7579(
    stage: Stage,
    module: DeployedContract,
    owner: Key | None = None,
    *,
    usdx: int = 1_000 * USDX,
    ether: int = 10 * ONE_ETH,
    salt: bytes | None = None,
) -> Account7579:
    """A SessionAccount7579 of ``owner`` (a fresh key by default) from the factory, holding
    ``usdx`` and ``ether``; created by the stage's deployer (not the owner)."""
    owner = owner or Key()
    factory = world7579(stage, module).factory
    salt = next(SALTS).to_bytes(32, "big") if salt is None else salt
    factory.transact(stage.deployer, "create_account", owner.address, salt)
    address = factory.call_one("get_address", owner.address, salt)
    assert isinstance(address, str)
    if usdx:
        stage.usdx.transact(stage.deployer, "mint", address, usdx)
    stage.chain.set_balance(address, ether)
    return Account7579(
        stage, DeployedContract(stage.chain, address.lower(), account7579_artifact()), owner
    )


def delegate(stage: Stage, eoa: Key, implementation: str) -> None:
    """Delegate ``eoa`` to ``implementation`` (EIP-7702, sent and paid by the deployer)."""
    stage.delegate(eoa, implementation)


def eoa_account7579(stage: Stage, eoa: Key) -> Account7579:
    """The driver of ``eoa`` once delegated to a SessionAccount7579 (its own owner)."""
    return Account7579(
        stage, DeployedContract(stage.chain, eoa.address, account7579_artifact()), eoa
    )
