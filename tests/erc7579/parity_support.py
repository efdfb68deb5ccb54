"""The differential harness of the module's rule parity: one grant and one call, run on
SessionAccount (a factory account of ``erc4337_support``) and through SessionWard's ERC-7579
module on an ERC-7579 account (``module_support``: the OpenZeppelin ``AccountERC7579``, or
SessionWard's own ``SessionAccount7579``; the parity tests run on each), both on the same anvil node,
holding the same tokens and ether, paying the same recipient.

- :meth:`Pair.enable` gives both the same envelope (each grant names its own account, session
  key, epoch and nonce, signed by its own owner) and returns both verdicts of enabling it.
- :meth:`Pair.relayed` relays the same calls on both (``execute_with_session``, signed by each
  session key as SessionAccount's ``SessionCall``): simulated first (``eth_call``), then mined;
  asserts both verdicts are the same, that an allowed call moved the same tokens on both and
  that a refused one changed nothing on either (balances, and every cumulative word: the
  session's uses and native window, each token's window).
- :meth:`Pair.user_op` sends the same calls as a session user operation on both: a refusal in
  validation (the EntryPoint's ``FailedOpWithRevert``, nothing mined) or in execution
  (SessionAccount checks rules 6-8 there: ``UserOperationRevertReason``) is the reason code;
  an operation that ran is ``ALLOW``.

A verdict is ``"ALLOW"`` or the reason code the contract reverted with.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any, Final

from erc4337_support import ENTRY_POINT_V07, Key, Stage, Wallet, execution
from module_support import GRANT_NONCES, OZ_ACCOUNT, ModuleWallet, new_module_wallet
from oz_account import (
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    USER_OPERATION_EVENT,
    decode,
    handle_op,
)

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.encoding import PackedUserOperation, grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.calldata import Call

ALLOW: Final = "ALLOW"
DAY: Final = 86_400  # the pair's grants are valid for a day (tests travel hours ahead)
# SessionAccount's grant nonces 1 and 2 are its set-up's; the pair's start far above.
SESSION_ACCOUNT_NONCE_BASE: Final = 1_000_000
USER_OPERATION_REVERT_REASON: Final = keccak256(
    b"UserOperationRevertReason(bytes32,address,uint256,bytes)"
)
FAILED_OP: Final = bytes.fromhex("220266b6")
FAILED_OP_WITH_REVERT: Final = bytes.fromhex("65c8fd4d")
ERROR_STRING: Final = bytes.fromhex("08c379a0")
# The module's associated storage (SessionWardModule.vy): tags and session word offsets.
SESSION_TAG: Final = keccak256(b"sessionward.erc7579.session")
TOKEN_TAG: Final = keccak256(b"sessionward.erc7579.token-limit")
ACCOUNT_KEY: Final = keccak256(b"sessionward.erc7579.account.v1")


def _word(value: int | str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value.rjust(32, b"\0")
    if isinstance(value, str):
        return bytes.fromhex(value[2:]).rjust(32, b"\0")
    return value.to_bytes(32, "big")


def associated_slot(account: str, key: bytes, n: int) -> int:
    """``keccak256(account ‖ key) + n``: where the module keeps word ``n`` of ``key``."""
    return int.from_bytes(keccak256(_word(account) + key), "big") + n


def _reason(revert: bytes) -> str:
    """The reason code in revert data: ``Error(string)``, or the inner ``Error(string)`` of
    the EntryPoint's ``FailedOpWithRevert``, or the ``FailedOp`` text."""
    if revert[:4] == ERROR_STRING:
        (text,) = decode("(string)", revert[4:])
        assert isinstance(text, str)
        return text
    if revert[:4] == FAILED_OP_WITH_REVERT:
        _, _, inner = decode("(uint256,string,bytes)", revert[4:])
        assert isinstance(inner, bytes)
        return _reason(inner)
    if revert[:4] == FAILED_OP:
        _, text = decode("(uint256,string)", revert[4:])
        assert isinstance(text, str)
        return text
    raise AssertionError(f"unexpected revert data {revert.hex()}")


def simulate(stage: Stage, to: str, data: bytes) -> str:
    """The verdict of an ``eth_call`` from a stranger."""
    try:
        stage.chain.call(to, data, sender=stage.deployer.address)
    except ExecutionReverted as exc:
        return exc.reason if exc.reason is not None else _reason(bytes(exc.data or b""))
    return ALLOW


@dataclass
class Pair:
    """SessionAccount ``account`` and the module's OZ account ``module``, same holdings."""

    stage: Stage
    account: Wallet
    module: ModuleWallet
    recipient: str
    rpc: JsonRpcClient

    @property
    def session_account(self) -> DeployedContract:
        return DeployedContract(self.stage.chain, self.account.address, self.account.account_code)

    # ----------------------------------------------------------------------------- grants

    def grants(
        self, permissions: list[dict[str, Any]], **envelope: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The same envelope (``permissions``, the module's default window and fee budget,
        then ``envelope``'s fields) as a grant for SessionAccount and one for the module."""
        module_grant = self.module.grant(permissions=copy.deepcopy(permissions), valid_for=DAY)
        module_grant["envelope"].update(copy.deepcopy(envelope))
        account_grant = copy.deepcopy(module_grant)
        account_grant.update(
            account=self.account.address,
            sessionKey=self.account.session.address,
            epoch=self.account.view("epoch"),
            nonce=SESSION_ACCOUNT_NONCE_BASE + next(GRANT_NONCES),
        )
        return account_grant, module_grant

    def _account_enable_data(self, grant: dict[str, Any]) -> bytes:
        digest = typed_data.grant_digest(self.stage.chain.chain_id, self.account.address, grant)
        return self.account.account_code.encode(
            "enable_session", grant_struct(grant), self.account.owner.sign(digest)
        )

    def enable(self, permissions: list[dict[str, Any]], **envelope: Any) -> tuple[str, str]:
        """Enable the same envelope on both; both verdicts (mined only when both allow)."""
        account_grant, module_grant = self.grants(permissions, **envelope)
        account_data = self._account_enable_data(account_grant)
        module_data = self.module.enable_data(
            module_grant, self.module.grant_signature(module_grant)
        )
        verdicts = (
            simulate(self.stage, self.account.address, account_data),
            simulate(self.stage, self.module.module_address, module_data),
        )
        if verdicts == (ALLOW, ALLOW):
            transact(
                self.stage.chain, self.stage.deployer, to=self.account.address, data=account_data
            )
            transact(
                self.stage.chain,
                self.stage.deployer,
                to=self.module.module_address,
                data=module_data,
            )
        return verdicts

    # ----------------------------------------------------------------------- relayed calls

    def _relayed_data(
        self, calls: tuple[Call, ...], nonce: int, module_calls: tuple[Call, ...] | None = None
    ) -> tuple[bytes, bytes]:
        deadline = self.stage.chain.block_timestamp() + 600
        mode, calldata = execution(calls)
        digest = typed_data.session_call_digest(
            self.stage.chain.chain_id,
            self.account.address,
            self.account.session.address,
            typed_data.execution_hash(mode, calldata),
            nonce,
            deadline,
        )
        account_data = self.account.account_code.encode(
            "execute_with_session",
            self.account.session.address,
            mode,
            calldata,
            nonce,
            deadline,
            self.account.session.sign(digest),
        )
        module_data = self.module.relayed_call_data(
            *(calls if module_calls is None else module_calls), nonce=nonce, deadline=deadline
        )
        return account_data, module_data

    def simulate_relayed(self, *calls: Call) -> tuple[str, str]:
        """Both verdicts of relaying ``calls`` (``eth_call``, nothing mined)."""
        account_data, module_data = self._relayed_data(calls, secrets.randbits(64))
        return (
            simulate(self.stage, self.account.address, account_data),
            simulate(self.stage, self.module.module_address, module_data),
        )

    def relayed(
        self,
        *calls: Call,
        tokens: tuple[str, ...] = (),
        module_calls: tuple[Call, ...] | None = None,
    ) -> str:
        """Relay ``calls`` on both (``module_calls`` on the module's account when a call must
        name each side's own account), simulated then mined; the common verdict (asserted
        equal). An allowed call moves the same tokens (USDX, WETHX) and ether on both; a
        refused one changes nothing: holdings, the session's words and those of ``tokens``."""
        nonce = secrets.randbits(64)
        account_data, module_data = self._relayed_data(calls, nonce, module_calls)
        verdicts = (
            simulate(self.stage, self.account.address, account_data),
            simulate(self.stage, self.module.module_address, module_data),
        )
        assert verdicts[0] == verdicts[1], f"SessionAccount {verdicts[0]}, module {verdicts[1]}"
        before = self._holdings()
        state_before = self._cumulative(tokens)
        account_receipt = transact(
            self.stage.chain,
            self.stage.deployer,
            to=self.account.address,
            data=account_data,
            gas=2_000_000,
            check=False,
        )
        module_receipt = transact(
            self.stage.chain,
            self.stage.deployer,
            to=self.module.module_address,
            data=module_data,
            gas=2_000_000,
            check=False,
        )
        assert account_receipt.succeeded == module_receipt.succeeded == (verdicts[0] == ALLOW)
        after = self._holdings()
        if verdicts[0] == ALLOW:
            assert [a - b for a, b in zip(after[0], before[0], strict=True)] == [
                a - b for a, b in zip(after[1], before[1], strict=True)
            ], "the same call moved different amounts"
        else:
            assert after == before
            assert self._cumulative(tokens) == state_before
        return verdicts[0]

    def _holdings(self) -> tuple[list[int], list[int]]:
        def of(address: str) -> list[int]:
            return [
                self.stage.token_balance(address),
                self._weth_balance(address),
                self.stage.chain.get_balance(address),
            ]

        return (
            of(self.account.address) + of(self.recipient),
            of(self.module.address) + of(self.recipient),
        )

    def _weth_balance(self, holder: str) -> int:
        weth = self.stage.demo.bind(self.stage.chain, "DemoToken", self.stage.demo.token("WETHX"))
        value = weth.call_one("balanceOf", holder)
        assert isinstance(value, int)
        return value

    def _cumulative(self, tokens: tuple[str, ...]) -> tuple[object, ...]:
        """SessionAccount's session view and token usage; the module's session words 0-4 and
        each token's state word (its current epoch and generation)."""
        account = self.session_account
        key = self.account.session.address
        views: list[object] = [account.call("session", key)]
        views += [account.call("token_usage", key, token) for token in tokens]
        epoch = self.module.epoch()
        session = keccak256(SESSION_TAG + _word(epoch) + _word(self.module.session.address))
        state = self._module_word(session, 0)
        generation = (state >> 104) & (2**32 - 1)
        words = [self._module_word(session, n) for n in range(5)]
        words += [
            self._module_word(keccak256(TOKEN_TAG + _word(generation) + _word(token)), 0)
            for token in tokens
        ]
        return tuple(views), tuple(words)

    def _module_word(self, key: bytes, n: int) -> int:
        slot = associated_slot(self.module.address, key, n)
        value = self.rpc.request(
            "eth_getStorageAt", [self.module.module_address, hex(slot), "latest"]
        )
        assert isinstance(value, str)
        return int(value, 16)

    # ----------------------------------------------------------------------- user operations

    def user_op(self, *calls: Call, claimed_time: int | None = None) -> tuple[str, str]:
        """Both verdicts of ``calls`` as a session user operation (mined when validation
        accepts it)."""
        account_op = self.account.session_op(*calls)
        module_op = self.module.session_op(*calls, claimed_time=claimed_time)
        return (
            self._op_verdict(account_op, self.account.op_hash(account_op)),
            self._op_verdict(module_op, self.module.account.op_hash(module_op)),
        )

    def _op_verdict(self, op: PackedUserOperation, op_hash: bytes) -> str:
        data = self.stage.entry_point.compiled.encode(
            "handleOps", [tuple(op)], self.stage.deployer.address
        )
        try:
            self.stage.chain.call(ENTRY_POINT_V07, data, sender=self.stage.deployer.address)
        except ExecutionReverted as exc:
            return _reason(bytes(exc.data or b""))
        receipt = handle_op(self.stage, op, Key())
        for log in receipt.logs:
            if log.topics[:2] == (USER_OPERATION_REVERT_REASON, op_hash):
                _, revert = decode("(uint256,bytes)", log.data)
                assert isinstance(revert, bytes)
                return _reason(revert)
        for log in receipt.logs:
            if log.topics[:2] == (USER_OPERATION_EVENT, op_hash):
                return ALLOW
        raise AssertionError("no UserOperationEvent")


def new_pair(
    stage: Stage, module: DeployedContract, rpc: JsonRpcClient, account_kind: str = OZ_ACCOUNT
) -> Pair:
    """A fresh SessionAccount and a fresh ERC-7579 account of ``account_kind`` (the OZ account
    or SessionAccount7579, ``module_support.ACCOUNT_KINDS``) with ``module`` installed as
    validator and executor (each 1,000 USDX and 10 ether), and a new common recipient."""
    account = stage.new_wallet()
    module_wallet = new_module_wallet(
        stage,
        module,
        enable=False,
        types=(MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR),
        account_kind=account_kind,
    )
    return Pair(stage, account, module_wallet, Key().address, rpc)


def permission(
    target: str, function: str, *rules: tuple[int, int, list[bytes]], max_value: int = 0
) -> dict[str, Any]:
    """A grant permission on ``target.function`` with ``rules`` given as ``(op, word offset,
    values)`` (offset 0xffff: off-chain only)."""
    return {
        "target": target,
        "selector": keccak256(function.encode())[:4],
        "function": function,
        "actionClass": "custom",
        "maxValuePerCall": max_value,
        "rules": [
            {"arg": str(offset), "op": op, "offset": offset, "values": list(values)}
            for op, offset, values in rules
        ],
    }


def word(value: int | str) -> bytes:
    """A rule operand: an address or an unsigned integer as a 32-byte word."""
    return _word(value)
