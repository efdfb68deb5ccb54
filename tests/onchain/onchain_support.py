"""Helpers of the behavioural account tests that run through the ``Chain`` protocol (no
titanoboa): the same code drives ``EmbeddedChain`` and anvil.

A :class:`Stage` is the demo deployment (implementation, factory, USDX and WETHX, the router
with reserves), a funded relayer, and the test doubles (a payable recorder, an ERC-1271 owner
contract). An :class:`Account` is a factory account (or an EIP-7702 delegated EOA) with its
owner key, and builds, signs and relays grants and session calls. Every transaction is sent
with a fixed gas limit and never estimated, so refused calls are mined and their receipts
carry the revert reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Final

from evm_support import Key as Key  # re-exported: tests import it from here
from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    compile_vyper,
    deploy,
    transact,
)
from sessionward.chain.demo import DemoDeployment, demo_contract, deploy_demo
from sessionward.chain.interface import DevChain, Receipt
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_single_execution,
    mode_batch,
    mode_single,
)

HERE: Final = Path(__file__).resolve().parent
TESTS_CONTRACTS: Final = HERE.parent / "contracts"  # the boa tests' doubles (Signer1271.vy)
ZERO_ADDRESS: Final = "0x" + "00" * 20
USDX: Final = 10**6  # one demo dollar (6 decimals)
ONE_ETH: Final = 10**18
TX_GAS: Final = 2_000_000
OP: Final = {"eq": 0, "ne": 1, "lte": 2, "gte": 3, "in": 4, "not_in": 5}
TRANSFER: Final = "transfer(address,uint256)"
APPROVE: Final = "approve(address,uint256)"
RECORD: Final = "record(uint256,address,bytes32)"
SWAP_V2: Final = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
DELEGATECALL_MODE: Final = bytes([0xFF]) + bytes(31)
TRY_MODE: Final = bytes([0x00, 0x01]) + bytes(30)


def random_address() -> str:
    return "0x" + secrets.token_bytes(20).hex()


def calldata(signature: str, *args: Any) -> bytes:
    return encode_call(parse_signature(signature), args)


def word(value: int | str) -> bytes:
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value.removeprefix("0x"))
    return value.to_bytes(32, "big")


def rule(offset: int, op: str, *values: int | str) -> dict[str, Any]:
    return {"arg": str(offset), "op": OP[op], "offset": offset, "values": [word(v) for v in values]}


def permission(
    target: str, function: str, *, rules: Sequence[dict[str, Any]] = (), max_value: int = 0
) -> dict[str, Any]:
    canonical = parse_signature(function).canonical
    return {
        "target": target,
        "selector": keccak256(canonical.encode())[:4],
        "function": canonical,
        "actionClass": "custom",
        "maxValuePerCall": max_value,
        "rules": list(rules),
    }


def single(call: Call) -> tuple[bytes, bytes]:
    return mode_single(), encode_single_execution(call)


def batch(calls: Sequence[Call]) -> tuple[bytes, bytes]:
    return mode_batch(), encode_batch_execution(list(calls))


@dataclass
class Stage:
    """The demo world on one chain, shared by a test module."""

    chain: DevChain
    demo: DemoDeployment
    deployer: LocalTransactionSigner
    relayer: LocalTransactionSigner
    account_code: ContractArtifact
    recorder: DeployedContract
    salts: Any = field(default_factory=lambda: count(1))

    @property
    def usdx(self) -> DeployedContract:
        return self.demo.bind(self.chain, "DemoToken", self.demo.token("USDX"))

    @property
    def wethx(self) -> DeployedContract:
        return self.demo.bind(self.chain, "DemoToken", self.demo.token("WETHX"))

    @property
    def factory(self) -> DeployedContract:
        return self.demo.bind(self.chain, "SessionAccountFactory", self.demo.factory)

    def balance(self, token: DeployedContract, holder: str) -> int:
        value = token.call_one("balanceOf", holder)
        assert isinstance(value, int)
        return value

    def send(self, to: str, data: bytes, signer: LocalTransactionSigner | None = None) -> Receipt:
        """A mined transaction from ``signer`` (the relayer by default), never estimated."""
        return transact(
            self.chain, signer or self.relayer, to=to, data=data, gas=TX_GAS, check=False
        )

    def funded(self, wei: int = 10 * ONE_ETH) -> LocalTransactionSigner:
        signer = LocalTransactionSigner(secrets.token_bytes(32))
        self.chain.set_balance(signer.address, wei)
        return signer

    def new_account(self, owner: str | None = None, *, usdx: int = 1_000 * USDX) -> Account:
        """A fresh factory account (CREATE2, new salt) of ``owner`` (a new EOA key by default),
        holding ``usdx`` demo dollars and 10 ether."""
        key = Key()
        owner_address = owner or key.address
        salt = next(self.salts).to_bytes(32, "big")
        receipt = self.factory.transact(self.relayer, "create_account", owner_address, salt)
        assert receipt.succeeded
        address = self.factory.call_one("get_address", owner_address, salt)
        assert isinstance(address, str)
        return self.account_at(address, key, usdx=usdx)

    def account_at(self, address: str, owner: Key, *, usdx: int = 1_000 * USDX) -> Account:
        if usdx:
            self.usdx.transact(self.deployer, "mint", address, usdx)
        self.chain.set_balance(address, 10 * ONE_ETH)
        return Account(self, address.lower(), owner)


def make_stage(chain: DevChain) -> Stage:
    deployer = LocalTransactionSigner(secrets.token_bytes(32))
    relayer = LocalTransactionSigner(secrets.token_bytes(32))
    demo = deploy_demo(chain, deployer=deployer, relayer=relayer.address)
    recorder = deploy(chain, deployer, compile_vyper(HERE / "Recorder.vy"))
    return Stage(
        chain=chain,
        demo=demo,
        deployer=deployer,
        relayer=relayer,
        account_code=demo_contract("SessionAccount"),
        recorder=recorder,
    )


@dataclass
class Account:
    """A SessionAccount on a stage and its owner's key (for a contract owner, the key signs
    for the owner contract)."""

    stage: Stage
    address: str
    owner: Key
    grant_nonces: Any = field(default_factory=lambda: count(1))

    @property
    def chain_id(self) -> int:
        return self.stage.chain.chain_id

    @property
    def contract(self) -> DeployedContract:
        return DeployedContract(self.stage.chain, self.address, self.stage.account_code)

    def view(self, function: str, *args: Any) -> Any:
        return self.contract.call_one(function, *args)

    def grant(
        self,
        session: Key,
        permissions: Sequence[dict[str, Any]],
        *,
        token_limits: Sequence[tuple[str, int, int]] = (),
        value_limit: int = 0,
        value_period: int = 0,
        max_uses: int = 0,
        valid_after: int | None = None,
        expires_at: int | None = None,
        revoker: str = ZERO_ADDRESS,
        epoch: int | None = None,
    ) -> dict[str, Any]:
        """A ``SessionGrant`` message valid from (about) now for an hour, fresh grant nonce."""
        now = self.stage.chain.block_timestamp()
        start = now - 60 if valid_after is None else valid_after
        return {
            "account": self.address,
            "sessionKey": session.address,
            "credential": typed_data.credential_hash("cred-onchain"),
            "nonce": next(self.grant_nonces),
            "epoch": self.view("epoch") if epoch is None else epoch,
            "revoker": revoker,
            "envelope": {
                "chainId": self.chain_id,
                "validAfter": start,
                "expiresAt": now + 3600 if expires_at is None else expires_at,
                "capabilities": ["custom"],
                "permissions": list(permissions),
                "allowedDestinations": [],
                "valueLimit": value_limit,
                "valuePeriod": value_period,
                "tokenLimits": [
                    {"token": token, "limit": limit, "period": period}
                    for token, limit, period in token_limits
                ],
                "maxValueUsd": "",
                "maxUses": max_uses,
                "rateCount": 0,
                "rateInterval": 0,
                "maxFeeWei": 0,
            },
        }

    def enable(
        self, grant: dict[str, Any], signature: bytes | None = None, signer: Key | None = None
    ) -> Receipt:
        """Relay ``enable_session`` with the owner's (or ``signer``'s) EIP-712 signature."""
        if signature is None:
            digest = typed_data.grant_digest(self.chain_id, self.address, grant)
            signature = (signer or self.owner).sign(digest)
        data = self.stage.account_code.encode("enable_session", grant_struct(grant), signature)
        return self.stage.send(self.address, data)

    def signed_call(
        self,
        session: Key,
        execution: tuple[bytes, bytes],
        nonce: int,
        deadline: int | None = None,
    ) -> bytes:
        """The relayed ``execute_with_session`` calldata, signed by ``session``."""
        mode, ec = execution
        deadline = self.stage.chain.block_timestamp() + 600 if deadline is None else deadline
        digest = typed_data.session_call_digest(
            self.chain_id,
            self.address,
            session.address,
            typed_data.execution_hash(mode, ec),
            nonce,
            deadline,
        )
        return self.stage.account_code.encode(
            "execute_with_session", session.address, mode, ec, nonce, deadline, session.sign(digest)
        )

    def run(self, session: Key, execution: tuple[bytes, bytes], nonce: int) -> Receipt:
        return self.stage.send(self.address, self.signed_call(session, execution, nonce))

    def as_owner(self, function: str, *args: Any) -> Receipt:
        """A transaction from the owner EOA to the account (the owner pays its gas)."""
        self.stage.chain.set_balance(self.owner.address, ONE_ETH)
        signer = LocalTransactionSigner(self.owner.secret)
        return self.stage.send(
            self.address, self.stage.account_code.encode(function, *args), signer
        )
