"""The real ERC-4337 v0.7 environment on anvil, for the ERC-4337 tests.

- :func:`deploy_entry_point` deploys the canonical EntryPoint v0.7 from the npm artifacts of
  ``@account-abstraction/contracts`` 0.7.0 through the deterministic CREATE2 deployer that anvil
  ships, with the canonical salt, and checks that it lands at the canonical address (the CREATE2
  address proves the init code is byte for byte the published one).
- :class:`Stage` is that EntryPoint plus SessionWard's demo world (``deploy_demo``: the
  SessionAccount implementation pointed at the EntryPoint, its factory, the demo tokens).
- :class:`Wallet` is a factory account with its owner key and one enabled session; it builds
  and signs v0.7 ``PackedUserOperation`` for the owner path (``execute``) and the session path
  (``execute_session_op``). Every userOpHash is the EntryPoint's own ``getUserOpHash``, checked
  against the Python one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from functools import cache
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
    wait_for_receipt,
)
from sessionward.chain.demo import DemoDeployment, demo_contract, deploy_demo
from sessionward.chain.ethereum_transactions import SetCodeTransaction, sign_authorization
from sessionward.chain.interface import DevChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.chain.user_operations import ENTRY_POINT_V07 as ENTRY_POINT_V07
from sessionward.chain.user_operations import UserOperation
from sessionward.contracts.encoding import (
    PackedUserOperation,
    grant_struct,
    owner_user_op_signature,
    pack_uint128_pair,
    session_user_op_signature,
    user_op_hash,
)
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_single_execution,
    mode_batch,
    mode_single,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
AA_ARTIFACTS: Final = (
    REPO_ROOT / "node_modules" / "@account-abstraction" / "contracts" / "artifacts"
)
DETERMINISTIC_DEPLOYER: Final = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
ENTRY_POINT_V07_SALT: Final = bytes.fromhex(
    "90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3"
)
ZERO_ADDRESS: Final = "0x" + "00" * 20
ONE_ETH: Final = 10**18
USDX: Final = 10**6
TRANSFER: Final = "transfer(address,uint256)"
RULE_IN: Final = 4  # the grant rule operator "in"
# Generous fixed gas fields: the tests are about validation rules, not gas estimation.
SIGNER_1271: Final = REPO_ROOT / "tests" / "contracts" / "Signer1271.vy"  # the boa tests' double
VERIFICATION_GAS: Final = 600_000
CALL_GAS: Final = 300_000
PRE_VERIFICATION_GAS: Final = 100_000
SESSION_FEE_BUDGET: Final = ONE_ETH


class EntryPointMismatch(AssertionError):
    """The npm EntryPoint init code does not reproduce the canonical address or code."""


def aa_artifact(name: str) -> ContractArtifact:
    """A contract of ``@account-abstraction/contracts`` 0.7.0 from its npm artifacts."""
    return _aa_artifact(name)


@cache
def _aa_artifact(name: str) -> ContractArtifact:
    path = AA_ARTIFACTS / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `npm install` in {REPO_ROOT}")
    data = json.loads(path.read_text())
    return ContractArtifact(
        name=name,
        abi=tuple(data["abi"]),
        initcode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        runtime=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
    )


def create2_address(deployer: str, salt: bytes, initcode: bytes) -> str:
    """``keccak256(0xff ‖ deployer ‖ salt ‖ keccak256(initcode))[12:]``, lower-case."""
    preimage = b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak256(initcode)
    return "0x" + keccak256(preimage)[12:].hex()


def deploy_entry_point(chain: DevChain, signer: LocalTransactionSigner) -> DeployedContract:
    """EntryPoint v0.7 at its canonical address, deployed by the deterministic deployer with
    the canonical salt (idempotent: an EntryPoint already there is reused).

    Raises :class:`EntryPointMismatch` if the npm init code does not CREATE2 to the canonical
    address, or if the code deployed there is not the artifact's runtime (same length; the
    runtime differs only in its immutable, the SenderCreator address)."""
    artifact = aa_artifact("EntryPoint")
    computed = create2_address(DETERMINISTIC_DEPLOYER, ENTRY_POINT_V07_SALT, artifact.initcode)
    if computed != ENTRY_POINT_V07:
        raise EntryPointMismatch(
            f"the npm EntryPoint init code CREATE2s to {computed}, not {ENTRY_POINT_V07}"
        )
    if not chain.get_code(DETERMINISTIC_DEPLOYER):
        raise EntryPointMismatch(f"no deterministic deployer at {DETERMINISTIC_DEPLOYER}")
    if not chain.get_code(ENTRY_POINT_V07):
        transact(
            chain, signer, to=DETERMINISTIC_DEPLOYER, data=ENTRY_POINT_V07_SALT + artifact.initcode
        )
    code = chain.get_code(ENTRY_POINT_V07)
    if len(code) != len(artifact.runtime):
        raise EntryPointMismatch(
            f"code at {ENTRY_POINT_V07} is {len(code)} bytes, the artifact's runtime "
            f"{len(artifact.runtime)}"
        )
    return DeployedContract(chain, ENTRY_POINT_V07, artifact)


def transfer_call(token: str, to: str, amount: int) -> Call:
    return Call(token, 0, encode_call(parse_signature(TRANSFER), (to, amount)))


def execution(calls: tuple[Call, ...]) -> tuple[bytes, bytes]:
    """ERC-7579 ``(mode, executionCalldata)``: single for one call, batch for more."""
    if len(calls) == 1:
        return mode_single(), encode_single_execution(calls[0])
    return mode_batch(), encode_batch_execution(list(calls))


@dataclass
class Stage:
    """EntryPoint v0.7 and the demo world on one anvil node."""

    chain: DevChain
    entry_point: DeployedContract
    demo: DemoDeployment
    deployer: LocalTransactionSigner
    salts: Any = field(default_factory=lambda: count(1))

    @property
    def usdx(self) -> DeployedContract:
        return self.demo.bind(self.chain, "DemoToken", self.demo.token("USDX"))

    def token_balance(self, holder: str) -> int:
        value = self.usdx.call_one("balanceOf", holder)
        assert isinstance(value, int)
        return value

    def new_wallet(
        self,
        *,
        usdx: int = 1_000 * USDX,
        ether: int = 10 * ONE_ETH,
        erc1271_owner: bool = False,
        eip7702: bool = False,
        fee_budget: int = SESSION_FEE_BUDGET,
    ) -> Wallet:
        """A fresh factory account (new owner key) holding ``usdx`` and ``ether``, with one
        session enabled by the owner's grant: ``USDX.transfer(recipient, any amount)`` to one
        recipient only, a fee budget (``maxFeeWei``) of ``fee_budget``. With ``erc1271_owner`` the
        owner is a contract (tests/contracts/Signer1271.vy) that accepts the owner key's
        signatures, and the key signs for it. With ``eip7702`` the account is the owner's EOA
        itself, delegated to the implementation by a real type-4 transaction."""
        owner, session, recipient = Key(), Key(), Key().address
        if eip7702:
            address = self._delegate(owner)
        else:
            owner_address = owner.address
            if erc1271_owner:
                signer_contract = compile_vyper(SIGNER_1271)
                owner_address = deploy(
                    self.chain, self.deployer, signer_contract, owner.address
                ).address
            address = self._factory_account(owner_address)
        self.usdx.transact(self.deployer, "mint", address, usdx)
        self.chain.set_balance(address, ether)
        wallet = Wallet(self, address.lower(), owner, session, recipient, fee_budget)
        wallet.enable_session()
        return wallet

    def _factory_account(self, owner: str) -> str:
        factory = self.demo.bind(self.chain, "SessionAccountFactory", self.demo.factory)
        salt = next(self.salts).to_bytes(32, "big")
        factory.transact(self.deployer, "create_account", owner, salt)
        address = factory.call_one("get_address", owner, salt)
        assert isinstance(address, str)
        return address

    def _delegate(self, eoa: Key) -> str:
        """Delegate ``eoa`` to the SessionAccount implementation; the EOA is its own owner."""
        self.delegate(eoa, self.demo.implementation)
        return eoa.address

    def delegate(self, eoa: Key, implementation: str) -> None:
        """Delegate ``eoa`` to ``implementation`` (EIP-7702 type-4 transaction, sent and paid
        by the deployer); asserts the delegation designator is the EOA's code afterwards."""
        authorization = sign_authorization(
            eoa.secret,
            chain_id=self.chain.chain_id,
            address=implementation,
            nonce=self.chain.get_transaction_count(eoa.address),
        )
        fees = self.chain.max_fee()
        delegate = SetCodeTransaction(
            chain_id=self.chain.chain_id,
            nonce=self.chain.get_transaction_count(self.deployer.address),
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            max_fee_per_gas=fees.max_fee_per_gas,
            gas=200_000,
            to=eoa.address,
            value=0,
            data=b"",
            authorization_list=(authorization,),
        )
        tx_hash = self.chain.send_raw_transaction(self.deployer.sign_transaction(delegate))
        assert wait_for_receipt(self.chain, tx_hash).succeeded
        designator = b"\xef\x01\x00" + bytes.fromhex(implementation[2:])
        assert self.chain.get_code(eoa.address) == designator


def make_stage(chain: DevChain) -> Stage:
    """Deploy EntryPoint v0.7 and the demo world whose SessionAccount trusts it."""
    deployer = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(deployer.address, 1_000 * ONE_ETH)
    entry_point = deploy_entry_point(chain, deployer)
    demo = deploy_demo(chain, deployer=deployer, entry_point=entry_point.address)
    return Stage(chain=chain, entry_point=entry_point, demo=demo, deployer=deployer)


@dataclass
class Wallet:
    """A SessionAccount, its owner key and one session key allowed to pay ``recipient``."""

    stage: Stage
    address: str
    owner: Key
    session: Key
    recipient: str
    fee_budget: int = SESSION_FEE_BUDGET

    @property
    def account_code(self) -> ContractArtifact:
        return demo_contract("SessionAccount")

    def grant(self) -> dict[str, Any]:
        """The session's ``SessionGrant``: one permission, USDX ``transfer`` whose first
        argument must be ``recipient``; valid from a minute ago for an hour."""
        now = self.stage.chain.block_timestamp()
        selector = keccak256(TRANSFER.encode())[:4]
        epoch = self.view("epoch")
        return {
            "account": self.address,
            "sessionKey": self.session.address,
            "credential": typed_data.credential_hash("cred-erc4337"),
            "nonce": 1,
            "epoch": epoch,
            "revoker": ZERO_ADDRESS,
            "envelope": {
                "chainId": self.stage.chain.chain_id,
                "validAfter": now - 60,
                "expiresAt": now + 3600,
                "capabilities": ["custom"],
                "permissions": [
                    {
                        "target": self.stage.demo.token("USDX"),
                        "selector": selector,
                        "function": TRANSFER,
                        "actionClass": "custom",
                        "maxValuePerCall": 0,
                        "rules": [
                            {
                                "arg": "0",
                                "op": RULE_IN,
                                "offset": 0,
                                "values": [bytes(12) + bytes.fromhex(self.recipient[2:])],
                            }
                        ],
                    }
                ],
                "allowedDestinations": [],
                "valueLimit": 0,
                "valuePeriod": 0,
                "tokenLimits": [],
                "maxValueUsd": "",
                "maxUses": 0,
                "rateCount": 0,
                "rateInterval": 0,
                "maxFeeWei": self.fee_budget,
            },
        }

    def enable_session(self) -> None:
        grant = self.grant()
        digest = typed_data.grant_digest(self.stage.chain.chain_id, self.address, grant)
        data = self.account_code.encode(
            "enable_session", grant_struct(grant), self.owner.sign(digest)
        )
        transact(self.stage.chain, self.stage.deployer, to=self.address, data=data)

    def view(self, function: str, *args: object) -> int:
        """An integer view of the account (``fee_budget``, ``epoch``...)."""
        value = DeployedContract(self.stage.chain, self.address, self.account_code).call_one(
            function, *args
        )
        assert isinstance(value, int)
        return value

    def nonce(self) -> int:
        value = self.stage.entry_point.call_one("getNonce", self.address, 0)
        assert isinstance(value, int)
        return value

    def _op(
        self,
        call_data: bytes,
        *,
        max_fee: int | None,
        priority_fee: int | None,
        paymaster: VerifyingPaymaster | None = None,
    ) -> PackedUserOperation:
        fees = self.stage.chain.max_fee()
        op = PackedUserOperation(
            sender=self.address,
            nonce=self.nonce(),
            init_code=b"",
            call_data=call_data,
            account_gas_limits=pack_uint128_pair(VERIFICATION_GAS, CALL_GAS),
            pre_verification_gas=PRE_VERIFICATION_GAS,
            gas_fees=pack_uint128_pair(
                fees.max_priority_fee_per_gas if priority_fee is None else priority_fee,
                fees.max_fee_per_gas if max_fee is None else max_fee,
            ),
            paymaster_and_data=b"",
            signature=b"",
        )
        return op if paymaster is None else paymaster.sponsor(op)

    def op_hash(self, op: PackedUserOperation) -> bytes:
        """The EntryPoint's ``getUserOpHash`` (asserted equal to the Python one)."""
        on_chain = self.stage.entry_point.call_one("getUserOpHash", tuple(op))
        assert isinstance(on_chain, bytes)
        assert on_chain == user_op_hash(op, ENTRY_POINT_V07, self.stage.chain.chain_id)
        return on_chain

    def owner_op(
        self, *calls: Call, max_fee: int | None = None, priority_fee: int | None = None
    ) -> PackedUserOperation:
        """An owner operation ``execute(mode, calls)``, signed by the owner."""
        op = self._op(
            self.account_code.encode("execute", *execution(calls)),
            max_fee=max_fee,
            priority_fee=priority_fee,
        )
        signature = self.owner.sign(personal_message_hash(self.op_hash(op)))
        return op._replace(signature=owner_user_op_signature(signature))

    def session_op(
        self,
        *calls: Call,
        max_fee: int | None = None,
        priority_fee: int | None = None,
        paymaster: VerifyingPaymaster | None = None,
    ) -> PackedUserOperation:
        """A session operation ``execute_session_op(session, mode, calls)``, signed by the
        session key (sponsored by ``paymaster`` when given)."""
        op = self._op(
            self.account_code.encode("execute_session_op", self.session.address, *execution(calls)),
            max_fee=max_fee,
            priority_fee=priority_fee,
            paymaster=paymaster,
        )
        signature = self.session.sign(personal_message_hash(self.op_hash(op)))
        return op._replace(signature=session_user_op_signature(self.session.address, signature))


def max_cost(op: PackedUserOperation) -> int:
    """EntryPoint v0.7's required prefund of ``op`` (no paymaster): every gas limit times
    ``maxFeePerGas``, the most the operation can cost its account."""
    limits = int.from_bytes(op.account_gas_limits[:16], "big") + int.from_bytes(
        op.account_gas_limits[16:], "big"
    )
    return (limits + op.pre_verification_gas) * int.from_bytes(op.gas_fees[16:], "big")


def user_op_json(op: PackedUserOperation) -> dict[str, Any]:
    """``op`` in the v0.7 RPC form of ``eth_sendUserOperation`` (unpacked gas fields)."""
    return dict(UserOperation.from_packed(op).to_rpc())


@dataclass
class SimpleAccount:
    """The reference ``SimpleAccount`` of ``@account-abstraction/contracts`` 0.7.0 (from its
    ``SimpleAccountFactory``), the yardstick for the bundler's own behaviour."""

    stage: Stage
    address: str
    owner: Key

    def op(self, call: Call) -> PackedUserOperation:
        """``execute(dest, value, func)`` signed by the owner (EIP-191 of the userOpHash)."""
        account = aa_artifact("SimpleAccount")
        nonce = self.stage.entry_point.call_one("getNonce", self.address, 0)
        assert isinstance(nonce, int)
        fees = self.stage.chain.max_fee()
        op = PackedUserOperation(
            sender=self.address,
            nonce=nonce,
            init_code=b"",
            call_data=account.encode("execute", call.to, call.value, call.data),
            account_gas_limits=pack_uint128_pair(VERIFICATION_GAS, CALL_GAS),
            pre_verification_gas=PRE_VERIFICATION_GAS,
            gas_fees=pack_uint128_pair(fees.max_priority_fee_per_gas, fees.max_fee_per_gas),
            paymaster_and_data=b"",
            signature=b"",
        )
        digest = self.stage.entry_point.call_one("getUserOpHash", tuple(op))
        assert isinstance(digest, bytes)
        return op._replace(signature=self.owner.sign(personal_message_hash(digest)))


def new_simple_account(stage: Stage, *, usdx: int = 1_000 * USDX) -> SimpleAccount:
    """A reference SimpleAccount of a fresh owner, holding ``usdx`` and 10 ether."""
    factory_code = aa_artifact("SimpleAccountFactory")
    factory = deploy(stage.chain, stage.deployer, factory_code, stage.entry_point.address)
    owner = Key()
    factory.transact(stage.deployer, "createAccount", owner.address, 0)
    address = factory.call_one("getAddress", owner.address, 0)
    assert isinstance(address, str)
    stage.usdx.transact(stage.deployer, "mint", address, usdx)
    stage.chain.set_balance(address, 10 * ONE_ETH)
    return SimpleAccount(stage, address.lower(), owner)


PAYMASTER_VERIFICATION_GAS: Final = 150_000


@dataclass
class VerifyingPaymaster:
    """The reference ``VerifyingPaymaster`` of ``@account-abstraction/contracts`` 0.7.0,
    deployed with an EntryPoint deposit; its signer sponsors any operation it is shown."""

    contract: DeployedContract
    signer: Key

    def sponsor(self, op: PackedUserOperation) -> PackedUserOperation:
        """``op`` with ``paymasterAndData = paymaster ‖ verificationGas ‖ postOpGas(0) ‖
        abi.encode(validUntil 0, validAfter 0) ‖ signature over the paymaster's getHash``."""
        head = bytes.fromhex(self.contract.address[2:]) + pack_uint128_pair(
            PAYMASTER_VERIFICATION_GAS, 0
        )
        window = bytes(64)  # validUntil = validAfter = 0: no time bound
        digest = self.contract.call_one(
            "getHash", tuple(op._replace(paymaster_and_data=head)), 0, 0
        )
        assert isinstance(digest, bytes)
        signature = self.signer.sign(personal_message_hash(digest))
        return op._replace(paymaster_and_data=head + window + signature)


def deploy_verifying_paymaster(stage: Stage, *, deposit: int = ONE_ETH) -> VerifyingPaymaster:
    signer = Key()
    contract = deploy(
        stage.chain,
        stage.deployer,
        aa_artifact("VerifyingPaymaster"),
        stage.entry_point.address,
        signer.address,
    )
    stage.entry_point.transact(stage.deployer, "depositTo", contract.address, value=deposit)
    return VerifyingPaymaster(contract, signer)
