"""A client of an ERC-4337 bundler's JSON-RPC API (ERC-7769), for EntryPoint v0.7.

Methods: ``eth_supportedEntryPoints``, ``eth_estimateUserOperationGas``,
``eth_sendUserOperation``, ``eth_getUserOperationReceipt``. Failures are typed:

- :class:`BundlerRefused`: the bundler answered with an error (ERC-7769 codes, e.g. -32500
  "rejected by the EntryPoint's validation"); ``reason`` is SessionWard's reason code when
  the account's revert carried one (``AA23 reverted TARGET_NOT_ALLOWED``), so a refusal
  reads the same whether it came back from the relayer path or from a bundler;
- :class:`sessionward.chain.errors.ChainUnavailable`: the bundler cannot be reached;
- :class:`sessionward.chain.errors.RpcProtocolError`: an answer that is not one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sessionward.chain.errors import ChainError, RpcError, RpcProtocolError
from sessionward.chain.jsonrpc import JsonRpcClient, parse_address, parse_hash, parse_quantity
from sessionward.chain.revert import decode_revert_reason
from sessionward.chain.user_operations import GasEstimate, UserOperation
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.reasons import ReasonCode

__all__ = ["BundlerClient", "BundlerRefused", "UserOperationReceipt", "reason_code_in"]

# "AA23 reverted TARGET_NOT_ALLOWED", "AA23 reverted (or OOG)": the EntryPoint's FailedOp
# text, as bundlers quote it in their error message.
_ENTRY_POINT_REVERT: Final = re.compile(r"\bAA\d\d reverted:? ([A-Z][A-Z0-9_]*)\b")
_KNOWN_REASONS: Final = frozenset(code.value for code in ReasonCode)


def reason_code_in(message: str, data: bytes | None) -> ReasonCode | None:
    """SessionWard's reason code inside a bundler's error, if it carries one."""
    candidates = [decode_revert_reason(data)] if data else []
    candidates += _ENTRY_POINT_REVERT.findall(message)
    for text in candidates:
        if text in _KNOWN_REASONS:
            return ReasonCode(text)
    return None


class BundlerRefused(ChainError):
    """The bundler refused a request. ``code`` and ``message`` are its own (the message cut
    to 500 characters); ``reason`` is the account's reason code when it gave one."""

    def __init__(self, method: str, code: int, message: str, reason: ReasonCode | None) -> None:
        super().__init__(f"{method}: bundler error {code}: {message[:500]}")
        self.code = code
        self.message = message[:500]
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UserOperationReceipt:
    """What ``eth_getUserOperationReceipt`` reports of a mined operation.

    ``success`` is whether the operation's *execution* succeeded (its validation did, or it
    would not have been mined); ``reason`` is the reason code of a failed execution when
    the bundler reported it.
    """

    user_op_hash: str
    sender: str
    nonce: int
    success: bool
    actual_gas_cost: int
    actual_gas_used: int
    transaction_hash: str
    block_number: int
    paymaster: str | None
    reason: ReasonCode | None = None

    @classmethod
    def from_rpc(cls, answer: object) -> UserOperationReceipt:
        """Parse a receipt strictly (raises :class:`RpcProtocolError`)."""
        if not isinstance(answer, Mapping):
            raise RpcProtocolError("eth_getUserOperationReceipt: the answer is not an object")
        receipt = answer.get("receipt")
        if not isinstance(receipt, Mapping):
            raise RpcProtocolError("eth_getUserOperationReceipt: no transaction receipt")
        success = answer.get("success")
        if not isinstance(success, bool):
            raise RpcProtocolError("eth_getUserOperationReceipt: success is not a boolean")
        paymaster = answer.get("paymaster")
        paymaster_address = None
        if paymaster is not None:
            paymaster_address = parse_address(paymaster, "paymaster")
            if paymaster_address == "0x" + "00" * 20:
                paymaster_address = None
        reason_text = answer.get("reason")
        reason = None
        if isinstance(reason_text, str) and reason_text.startswith("0x"):
            try:
                decoded = decode_revert_reason(bytes.fromhex(reason_text[2:]))
            except ValueError:
                decoded = None
            reason = (
                ReasonCode(decoded) if decoded is not None and decoded in _KNOWN_REASONS else None
            )
        return cls(
            user_op_hash=parse_hash(answer.get("userOpHash"), "userOpHash"),
            sender=parse_address(answer.get("sender"), "sender"),
            nonce=parse_quantity(answer.get("nonce"), "nonce"),
            success=success,
            actual_gas_cost=parse_quantity(answer.get("actualGasCost"), "actualGasCost"),
            actual_gas_used=parse_quantity(answer.get("actualGasUsed"), "actualGasUsed"),
            transaction_hash=parse_hash(receipt.get("transactionHash"), "transactionHash"),
            block_number=parse_quantity(receipt.get("blockNumber"), "blockNumber"),
            paymaster=paymaster_address,
            reason=reason,
        )


class BundlerClient:
    """One bundler, for one EntryPoint. Each method is one JSON-RPC round trip."""

    def __init__(self, url: str, *, entry_point: str, timeout: float = 30.0) -> None:
        self._rpc = JsonRpcClient(url, timeout=timeout)
        self._entry_point = normalize_address(entry_point)

    @property
    def entry_point(self) -> str:
        return self._entry_point

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> BundlerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, params: list[object]) -> object:
        try:
            return self._rpc.request(method, params)
        except RpcError as error:
            reason = reason_code_in(error.message, error.data)
            raise BundlerRefused(method, error.code, error.message, reason) from None

    def supports_entry_point(self) -> bool:
        """Whether the bundler serves this client's EntryPoint."""
        answer = self._request("eth_supportedEntryPoints", [])
        if not isinstance(answer, list):
            raise RpcProtocolError("eth_supportedEntryPoints: the answer is not a list")
        return self._entry_point in {parse_address(item, "entry point") for item in answer}

    def estimate(self, op: UserOperation) -> GasEstimate:
        """The bundler's gas limits for ``op`` (its signature may be a stub: the account
        answers SIG_VALIDATION_FAILED only after paying, so simulation sees real costs)."""
        answer = self._request("eth_estimateUserOperationGas", [op.to_rpc(), self._entry_point])
        return GasEstimate.from_rpc(answer)

    def send(self, op: UserOperation) -> str:
        """Hand ``op`` to the bundler; returns its ``userOpHash`` as the bundler computed it."""
        answer = self._request("eth_sendUserOperation", [op.to_rpc(), self._entry_point])
        return parse_hash(answer, "userOpHash")

    def receipt(self, user_op_hash: str) -> UserOperationReceipt | None:
        """The receipt of a mined operation, or ``None`` while it is not mined (or unknown)."""
        answer = self._request("eth_getUserOperationReceipt", [user_op_hash])
        return None if answer is None else UserOperationReceipt.from_rpc(answer)
