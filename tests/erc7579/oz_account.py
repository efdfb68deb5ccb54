"""The third-party ERC-7579 account of these tests: OpenZeppelin's ``AccountERC7579`` from npm
``@openzeppelin/contracts`` with an ECDSA owner (``OwnedAccountERC7579.sol`` next to this file),
compiled by npm ``solc`` (``solc_npm``), deployed on anvil against the canonical EntryPoint v0.7
of ``erc4337_support.Stage``.

- :func:`deploy_oz_account` deploys one for a fresh owner key, funded with USDX and ether.
- :class:`OzAccount` builds v0.7 ``PackedUserOperation`` for it: the owner's (nonce key 0,
  signature = the owner's ECDSA signature of the raw userOpHash, as SignerECDSA checks it) and a
  validator module's (nonce key ``module ‖ 0x00000000``, AccountERC7579's selection rule, the
  module's signature format left to the caller).
- :func:`handle_op` mines ``handleOps([op])`` sent by a funded bundler key;
  :func:`handle_op_refusal` returns what the EntryPoint answers to an operation it refuses
  (``FailedOp`` / ``FailedOpWithRevert``), from an ``eth_call``, nothing mined.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from erc4337_support import (
    CALL_GAS,
    ENTRY_POINT_V07,
    ONE_ETH,
    PRE_VERIFICATION_GAS,
    USDX,
    VERIFICATION_GAS,
    Key,
    Stage,
    execution,
)
from solc_npm import compile_solidity

from sessionward.chain.contracts import ContractArtifact, DeployedContract, deploy, transact
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.interface import Receipt
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import PackedUserOperation, pack_uint128_pair, user_op_hash
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import TupleType, decode_tuple, parse_type
from sessionward.domain.calldata import Call

ACCOUNT_SOURCE: Final = Path(__file__).resolve().parent / "OwnedAccountERC7579.sol"
MODULE_TYPE_VALIDATOR: Final = 1
MODULE_TYPE_EXECUTOR: Final = 2
HANDLE_OPS_GAS: Final = 3_000_000
FAILED_OP: Final = bytes.fromhex("220266b6")  # FailedOp(uint256,string)
FAILED_OP_WITH_REVERT: Final = bytes.fromhex("65c8fd4d")  # FailedOpWithRevert(uint256,string,bytes)
USER_OPERATION_EVENT: Final = keccak256(
    b"UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)"
)


def decode(types: str, data: bytes) -> tuple[object, ...]:
    """Strictly ABI-decode ``data`` as the tuple type ``types`` (``"(uint256,string)"``)."""
    parsed = parse_type(types)
    assert isinstance(parsed, TupleType)
    return decode_tuple(parsed, data)


@cache
def account_artifact() -> ContractArtifact:
    """``OwnedAccountERC7579`` compiled by npm solc (cached under build/solc)."""
    return compile_solidity(ACCOUNT_SOURCE, "OwnedAccountERC7579")


def nonce_key(module: str | None) -> int:
    """AccountERC7579's nonce key (192 bits) for ``module``: ``module ‖ 0x00000000``; 0 (the
    owner's path) for ``None``."""
    return 0 if module is None else int(module, 16) << 32


@dataclass
class OzAccount:
    """An ``OwnedAccountERC7579`` on the stage's chain and its owner key."""

    stage: Stage
    contract: DeployedContract
    owner: Key

    @property
    def address(self) -> str:
        return self.contract.address.lower()

    def nonce(self, module: str | None = None) -> int:
        value = self.stage.entry_point.call_one("getNonce", self.address, nonce_key(module))
        assert isinstance(value, int)
        return value

    def execute_data(self, *calls: Call) -> bytes:
        """``execute(mode, executionCalldata)``: single for one call, batch for more."""
        return self.contract.compiled.encode("execute", *execution(calls))

    def unsigned_op(
        self, call_data: bytes, *, module: str | None = None, nonce: int | None = None
    ) -> PackedUserOperation:
        fees = self.stage.chain.max_fee()
        return PackedUserOperation(
            sender=self.address,
            nonce=self.nonce(module) if nonce is None else nonce,
            init_code=b"",
            call_data=call_data,
            account_gas_limits=pack_uint128_pair(VERIFICATION_GAS, CALL_GAS),
            pre_verification_gas=PRE_VERIFICATION_GAS,
            gas_fees=pack_uint128_pair(fees.max_priority_fee_per_gas, fees.max_fee_per_gas),
            paymaster_and_data=b"",
            signature=b"",
        )

    def op_hash(self, op: PackedUserOperation) -> bytes:
        """The EntryPoint's ``getUserOpHash`` (asserted equal to the Python one)."""
        on_chain = self.stage.entry_point.call_one("getUserOpHash", tuple(op))
        assert isinstance(on_chain, bytes)
        assert on_chain == user_op_hash(op, ENTRY_POINT_V07, self.stage.chain.chain_id)
        return on_chain

    def owner_op(self, call_data: bytes) -> PackedUserOperation:
        """An owner operation carrying ``call_data`` (nonce key 0), signed by the owner."""
        op = self.unsigned_op(call_data)
        return op._replace(signature=self.owner.sign(self.op_hash(op)))

    def erc1271_signature(self, digest: bytes, signer: Key | None = None) -> bytes:
        """The owner's (or ``signer``'s) signature the account's ``isValidSignature`` accepts
        for ``digest``: OwnedAccountERC7579 checks an ECDSA signature of the raw hash."""
        return (signer or self.owner).sign(digest)

    def self_call_data(self, function: str, *args: object) -> bytes:
        """``execute`` of one call of the account to itself (``installModule``...)."""
        inner = self.contract.compiled.encode(function, *args)
        return self.execute_data(Call(self.address, 0, inner))

    def is_installed(self, module_type: int, module: str) -> bool:
        value = self.contract.call_one("isModuleInstalled", module_type, module, b"")
        assert isinstance(value, bool)
        return value


def deploy_oz_account(
    stage: Stage, *, usdx: int = 1_000 * USDX, ether: int = 10 * ONE_ETH
) -> OzAccount:
    """A fresh ``OwnedAccountERC7579`` of a new owner key, trusting the canonical EntryPoint
    v0.7, holding ``usdx`` and ``ether``."""
    owner = Key()
    contract = deploy(
        stage.chain, stage.deployer, account_artifact(), owner.address, ENTRY_POINT_V07
    )
    account = OzAccount(stage, contract, owner)
    stage.usdx.transact(stage.deployer, "mint", account.address, usdx)
    stage.chain.set_balance(account.address, ether)
    return account


def handle_op(stage: Stage, op: PackedUserOperation, bundler: Key) -> Receipt:
    """Mine ``handleOps([op], bundler)`` sent by ``bundler`` (funded here); the receipt must
    succeed (an operation whose *execution* reverted still does: see ``UserOperationEvent``)."""
    stage.chain.set_balance(bundler.address, 100 * ONE_ETH)
    data = stage.entry_point.compiled.encode("handleOps", [tuple(op)], bundler.address)
    return transact(
        stage.chain,
        LocalTransactionSigner(bundler.secret),
        to=ENTRY_POINT_V07,
        data=data,
        gas=HANDLE_OPS_GAS,
    )


def op_outcome(receipt: Receipt, op_hash: bytes) -> tuple[bool, int]:
    """``(success, actualGasUsed)`` of the ``UserOperationEvent`` of ``op_hash`` in ``receipt``."""
    for log in receipt.logs:
        if log.topics[:2] == (USER_OPERATION_EVENT, op_hash):
            success, _, gas_used = decode("(bool,uint256,uint256)", log.data[32:])
            assert isinstance(success, bool) and isinstance(gas_used, int)
            return success, gas_used
    raise AssertionError(f"no UserOperationEvent for 0x{op_hash.hex()}")


@dataclass(frozen=True)
class Refusal:
    """The EntryPoint's refusal of an operation: ``reason`` (``"AA24 signature error"``...) and,
    for ``FailedOpWithRevert``, the revert data of the account (or module) inside it."""

    reason: str
    inner: bytes = b""

    @property
    def inner_reason(self) -> str | None:
        """The ``Error(string)`` text of ``inner`` when it is one."""
        if self.inner[:4] != bytes.fromhex("08c379a0"):
            return None
        (text,) = decode("(string)", self.inner[4:])
        assert isinstance(text, str)
        return text


def handle_op_refusal(stage: Stage, op: PackedUserOperation) -> Refusal:
    """``eth_call`` of ``handleOps([op])``, which must revert with ``FailedOp`` or
    ``FailedOpWithRevert``: the refusal, nothing mined."""
    data = stage.entry_point.compiled.encode("handleOps", [tuple(op)], stage.deployer.address)
    try:
        stage.chain.call(ENTRY_POINT_V07, data, sender=stage.deployer.address)
    except ExecutionReverted as exc:
        revert = bytes(exc.data or b"")
    else:
        raise AssertionError("handleOps accepted the operation")
    if revert[:4] == FAILED_OP:
        _, reason = decode("(uint256,string)", revert[4:])
        assert isinstance(reason, str)
        return Refusal(reason)
    if revert[:4] == FAILED_OP_WITH_REVERT:
        _, reason, inner = decode("(uint256,string,bytes)", revert[4:])
        assert isinstance(reason, str) and isinstance(inner, bytes)
        return Refusal(reason, inner)
    raise AssertionError(f"handleOps reverted with {revert.hex()}")
