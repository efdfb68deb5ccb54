"""SessionWard's ERC-7579 module (src/sessionward/contracts/erc7579_module) on anvil, for the
module tests: AssociatedStorage at its deterministic address, the module deployed once, and
:class:`ModuleWallet`, an OpenZeppelin ``AccountERC7579`` (``oz_account``) with the module
installed by its owner and one session enabled by the owner's grant.

A session operation's nonce key is the module's address (AccountERC7579's validator selection)
and its signature ``sessionKey (20) ‖ r ‖ s ‖ v``, signed over the EIP-191 hash of the
userOpHash. The grant is SessionAccount's ``SessionGrant`` (``typed_data.grant_digest`` with the
account as verifyingContract), signed by the owner key as a raw digest: the account's ERC-1271
accepts its owner's ECDSA signature of the hash (OwnedAccountERC7579.sol).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import count
from typing import Any, Final

from account7579_support import ACCOUNT7579, create_account7579
from erc4337_support import (
    DETERMINISTIC_DEPLOYER,
    ONE_ETH,
    TRANSFER,
    USDX,
    ZERO_ADDRESS,
    Key,
    Stage,
    execution,
)
from oz_account import (
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    OzAccount,
    deploy_oz_account,
    handle_op,
    op_outcome,
)

from sessionward.chain.artifacts import session_module
from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    deploy,
    transact,
)
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.interface import Receipt
from sessionward.contracts.encoding import PackedUserOperation, grant_struct
from sessionward.contracts.erc7579_module import associated_storage
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call

GRANT_NONCES: Final = count(1)
OZ_ACCOUNT: Final = "OwnedAccountERC7579"
ACCOUNT_KINDS: Final = (OZ_ACCOUNT, ACCOUNT7579)
"""The ERC-7579 accounts the module's behavioural tests run on."""
REFUSED_TX_GAS: Final = 1_000_000


@cache
def module_artifact() -> ContractArtifact:
    """The module, as the service compiles it (``chain.artifacts.session_module``: the
    compile cache's key covers the whole contracts package it imports from)."""
    return session_module()


def deploy_associated_storage(stage: Stage) -> str:
    """AssociatedStorage at its CREATE2 address under the deterministic deployment proxy
    (idempotent); asserts the code there is the assembled runtime."""
    address = associated_storage.ADDRESS
    if not stage.chain.get_code(address):
        transact(
            stage.chain,
            stage.deployer,
            to=DETERMINISTIC_DEPLOYER,
            data=associated_storage.SALT + associated_storage.INITCODE,
        )
    assert stage.chain.get_code(address) == associated_storage.RUNTIME
    return address


def deploy_module(stage: Stage) -> DeployedContract:
    """A fresh deployment of the module (AssociatedStorage deployed first)."""
    deploy_associated_storage(stage)
    return deploy(stage.chain, stage.deployer, module_artifact())


def revert_reason(stage: Stage, to: str | None, data: bytes, sender: str) -> str | None:
    """The ``Error(string)`` of an ``eth_call`` that must revert (``to=None``: a creation)."""
    try:
        stage.chain.call(to, data, sender=sender)
    except ExecutionReverted as exc:
        return exc.reason
    raise AssertionError("the call did not revert")


def session_signature(key: Key, op_hash: bytes) -> bytes:
    """``sessionKey ‖ r ‖ s ‖ v`` over the EIP-191 hash of ``op_hash``."""
    return bytes.fromhex(key.address[2:]) + key.sign(personal_message_hash(op_hash))


@dataclass
class ModuleWallet:
    """An OZ account with the module installed, its owner, and a session key."""

    stage: Stage
    account: OzAccount
    module: DeployedContract
    session: Key
    recipient: str

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def module_address(self) -> str:
        return self.module.address.lower()

    def owner_run(self, call_data: bytes) -> Receipt:
        """Mine an owner operation carrying ``call_data``; it must succeed."""
        op = self.account.owner_op(call_data)
        receipt = handle_op(self.stage, op, Key())
        assert op_outcome(receipt, self.account.op_hash(op))[0], "the owner operation failed"
        return receipt

    def install(self, module_type: int = MODULE_TYPE_VALIDATOR) -> None:
        """The owner installs the module as ``module_type`` (its first data byte says which)."""
        self.install_module(module_type, self.module_address, bytes([module_type]))

    def install_module(self, module_type: int, module: str, data: bytes) -> None:
        """The owner installs any ``module`` as ``module_type`` with ``data``."""
        self.owner_run(self.account.self_call_data("installModule", module_type, module, data))

    def uninstall(self, module_type: int = MODULE_TYPE_VALIDATOR) -> None:
        self.owner_run(
            self.account.self_call_data(
                "uninstallModule", module_type, self.module_address, bytes([module_type])
            )
        )

    def module_call(self, function: str, *args: object) -> bytes:
        """``execute`` of one call of the account to the module (revocations)."""
        return self.account.execute_data(
            Call(self.module_address, 0, self.module.compiled.encode(function, *args))
        )

    def epoch(self) -> int:
        value = self.module.call_one("epoch", self.address)
        assert isinstance(value, int)
        return value

    def fee_budget(self, key: Key | None = None) -> int:
        value = self.module.call_one("fee_budget", self.address, (key or self.session).address)
        assert isinstance(value, int)
        return value

    def grant(
        self,
        key: Key | None = None,
        *,
        permissions: list[dict[str, Any]] | None = None,
        valid_for: int = 3600,
        starts_in: int = -60,
        max_fee_wei: int = ONE_ETH,
        epoch: int | None = None,
        nonce: int | None = None,
        revoker: str = ZERO_ADDRESS,
    ) -> dict[str, Any]:
        """A ``SessionGrant`` for ``key`` (the wallet's session key by default): by default one
        permission, ``USDX.transfer`` with no on-chain rule; valid from ``starts_in`` seconds
        from now (a minute ago) for ``valid_for`` seconds from now; the account's current
        epoch; a fresh grant nonce; ``revoker`` (none by default)."""
        now = self.stage.chain.block_timestamp()
        if permissions is None:
            permissions = [self.permission(self.stage.demo.token("USDX"), TRANSFER)]
        return {
            "account": self.address,
            "sessionKey": (key or self.session).address,
            "credential": typed_data.credential_hash("cred-erc7579"),
            "nonce": next(GRANT_NONCES) if nonce is None else nonce,
            "epoch": self.epoch() if epoch is None else epoch,
            "revoker": revoker,
            "envelope": {
                "chainId": self.stage.chain.chain_id,
                "validAfter": now + starts_in,
                "expiresAt": now + valid_for,
                "capabilities": ["custom"],
                "permissions": permissions,
                "allowedDestinations": [],
                "valueLimit": 0,
                "valuePeriod": 0,
                "tokenLimits": [],
                "maxValueUsd": "",
                "maxUses": 0,
                "rateCount": 0,
                "rateInterval": 0,
                "maxFeeWei": max_fee_wei,
            },
        }

    @staticmethod
    def permission(
        target: str, function: str, rules: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return {
            "target": target,
            "selector": keccak256(function.encode())[:4],
            "function": function,
            "actionClass": "custom",
            "maxValuePerCall": 0,
            "rules": rules or [],
        }

    def grant_signature(self, grant: dict[str, Any], signer: Key | None = None) -> bytes:
        """The owner's (or ``signer``'s) approval of the grant's EIP-712 digest, in the form
        the account's ERC-1271 accepts (``erc1271_signature``)."""
        digest = typed_data.grant_digest(self.stage.chain.chain_id, self.address, grant)
        return self.account.erc1271_signature(digest, signer)

    def enable_data(self, grant: dict[str, Any], signature: bytes) -> bytes:
        return self.module.compiled.encode("enable_session", grant_struct(grant), signature)

    def enable(self, grant: dict[str, Any]) -> Receipt:
        """Relay the owner-signed grant (sent by the stage's deployer, not the account)."""
        return transact(
            self.stage.chain,
            self.stage.deployer,
            to=self.module_address,
            data=self.enable_data(grant, self.grant_signature(grant)),
        )

    def relayed_call_data(
        self,
        *calls: Call,
        nonce: int,
        deadline: int,
        key: Key | None = None,
        signer: Key | None = None,
    ) -> bytes:
        """``execute_with_session`` of ``calls`` naming ``key`` (the session key by default),
        signed by ``signer`` (``key`` by default) as SessionAccount's ``SessionCall``."""
        named = key or self.session
        mode, execution_calldata = execution(calls)
        digest = typed_data.session_call_digest(
            self.stage.chain.chain_id,
            self.address,
            named.address,
            typed_data.execution_hash(mode, execution_calldata),
            nonce,
            deadline,
        )
        signature = (signer or named).sign(digest)
        return self.module.compiled.encode(
            "execute_with_session",
            self.address,
            named.address,
            mode,
            execution_calldata,
            nonce,
            deadline,
            signature,
        )

    def session_op(
        self,
        *calls: Call,
        key: Key | None = None,
        signer: Key | None = None,
        claimed_time: int | None = None,
    ) -> PackedUserOperation:
        """A session operation ``execute(calls)`` naming ``key`` (the session key by default),
        signed by ``signer`` (``key`` by default), nonce key = the module. ``claimed_time``
        (6 bytes after the signature) is the time whose refill windows the module charges;
        without it, window 0."""
        named = key or self.session
        op = self.account.unsigned_op(self.account.execute_data(*calls), module=self.module_address)
        signature = session_signature(signer or named, self.account.op_hash(op))
        suffix = b"" if claimed_time is None else claimed_time.to_bytes(6, "big")
        return op._replace(signature=bytes.fromhex(named.address[2:]) + signature[20:] + suffix)


def new_module_wallet(
    stage: Stage,
    module: DeployedContract,
    *,
    enable: bool = True,
    types: tuple[int, ...] = (MODULE_TYPE_VALIDATOR,),
    account_kind: str = OZ_ACCOUNT,
) -> ModuleWallet:
    """A fresh account (1,000 USDX, 10 ether) with ``module`` installed as each of ``types``
    and, when ``enable``, one session enabled by the owner's grant (USDX.transfer, 1 ether fee
    budget). ``account_kind``: :data:`OZ_ACCOUNT`, OpenZeppelin's AccountERC7579 on which the
    owner installs the module; or ``account7579_support.ACCOUNT7579``, SessionWard's own
    account, created by its factory with the module installed as both types (the owner
    uninstalls a type not in ``types``)."""
    if account_kind == ACCOUNT7579:
        account: OzAccount = create_account7579(stage, module, usdx=1_000 * USDX)
        wallet = ModuleWallet(stage, account, module, Key(), Key().address)
        for module_type in (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR):
            if module_type not in types:
                wallet.uninstall(module_type)
    else:
        assert account_kind == OZ_ACCOUNT, account_kind
        account = deploy_oz_account(stage, usdx=1_000 * USDX)
        wallet = ModuleWallet(stage, account, module, Key(), Key().address)
        for module_type in types:
            wallet.install(module_type)
    if enable:
        wallet.enable(wallet.grant())
    return wallet
