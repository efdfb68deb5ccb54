"""A :class:`~sessionward.chain.interface.Chain` over a JSON-RPC node (anvil, geth, a provider).

Every method is exactly one JSON-RPC round trip, with two documented exceptions:
:meth:`RpcChain.get_receipt` of a *failed* transaction spends one more
(``debug_traceTransaction``, top call only) to read the revert reason, and only while the node
supports it; :meth:`RpcChain.time_travel` is ``evm_increaseTime`` + ``evm_mine``. The chain id
is fetched once and cached (or given at construction); nothing is estimated unless asked.

Node refusals of a raw transaction are mapped to typed errors from their message (the wording
geth, reth and anvil use): ``nonce too low``, ``already known``/``already imported``,
``replacement transaction underpriced``, base-fee refusals, ``insufficient funds``,
``intrinsic gas too low``, block gas limit refusals; other ``-32000``/``-32003``/``-32602``
refusals become :class:`InvalidTransaction`; any other error code stays a plain
:class:`RpcError` (e.g. a rate limit: the transaction may be retried as is). A failed
``eth_call``/``eth_estimateGas`` execution (code 3, "execution reverted", or a halt such as
anvil's "EVM error InvalidFEOpcode") is :class:`ExecutionReverted` with the decoded reason.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import httpx

from sessionward.chain.errors import (
    AlreadyKnown,
    ExecutionReverted,
    FeeTooLow,
    GasLimitExceeded,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidTransaction,
    NonceTooLow,
    ReplacementUnderpriced,
    RpcError,
    RpcProtocolError,
    TransactionRejected,
)
from sessionward.chain.interface import (
    BlockTag,
    CallRequest,
    FeeSuggestion,
    Log,
    Receipt,
    TransactionView,
)
from sessionward.chain.jsonrpc import (
    JsonRpcClient,
    parse_address,
    parse_data,
    parse_hash,
    parse_quantity,
    to_data,
    to_quantity,
)
from sessionward.chain.revert import decode_revert_reason
from sessionward.crypto.secp256k1 import normalize_address

__all__ = ["RpcChain"]

_REJECTIONS: Final[tuple[tuple[str, type[TransactionRejected]], ...]] = (
    ("nonce too low", NonceTooLow),
    ("already known", AlreadyKnown),
    ("already imported", AlreadyKnown),
    ("known transaction", AlreadyKnown),
    ("replacement transaction underpriced", ReplacementUnderpriced),
    ("less than block base fee", FeeTooLow),
    ("fee cap less than block base fee", FeeTooLow),
    ("transaction underpriced", FeeTooLow),
    ("insufficient funds", InsufficientFunds),
    ("intrinsic gas too low", IntrinsicGasTooLow),
    ("intrinsic gas too high", GasLimitExceeded),
    ("exceeds block gas limit", GasLimitExceeded),
)
_REJECTION_CODES: Final = frozenset({-32000, -32003, -32602})
_METHOD_NOT_FOUND: Final = -32601
# How nodes word a failed eth_call/eth_estimateGas execution (revert or exceptional halt).
_EXECUTION_FAILURES: Final = (
    "execution reverted",
    "evm error",  # anvil/revm halts: InvalidFEOpcode, OutOfGas, ...
    "invalid opcode",
    "out of gas",
    "stack underflow",
    "stack overflow",
    "invalid jump",
    "gas required exceeds allowance",
)


def _rejection(error: RpcError) -> RpcError:
    message = error.message.lower()
    for needle, kind in _REJECTIONS:
        if needle in message:
            return kind(error.code, error.message, error.data)
    if error.code in _REJECTION_CODES:
        return InvalidTransaction(error.code, error.message, error.data)
    return error


def _reverted(error: RpcError) -> RpcError:
    message = error.message.lower()
    if error.code == 3 or any(message.startswith(p) for p in _EXECUTION_FAILURES):
        data = error.data or b""
        return ExecutionReverted(
            decode_revert_reason(data), data, code=error.code, message=error.message
        )
    return error


def _call_object(request: CallRequest) -> dict[str, Any]:
    obj: dict[str, Any] = {"data": to_data(request.data), "value": to_quantity(request.value)}
    if request.sender is not None:
        obj["from"] = request.sender
    if request.to is not None:
        obj["to"] = request.to
    if request.authorization_list:
        obj["authorizationList"] = [
            {
                "chainId": to_quantity(a.chain_id),
                "address": a.address,
                "nonce": to_quantity(a.nonce),
                "yParity": to_quantity(a.y_parity),
                "r": to_quantity(a.r),
                "s": to_quantity(a.s),
            }
            for a in request.authorization_list
        ]
    return obj


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RpcProtocolError(f"{what}: expected an object")
    return value


def _optional_address(value: object, what: str) -> str | None:
    return None if value is None else parse_address(value, what)


def _parse_log(value: object) -> Log:
    entry = _object(value, "log")
    topics = entry.get("topics")
    if not isinstance(topics, list):
        raise RpcProtocolError("log.topics: expected a list")
    return Log(
        address=parse_address(entry.get("address"), "log.address"),
        topics=tuple(parse_data(t, "log.topic", length=32) for t in topics),
        data=parse_data(entry.get("data"), "log.data"),
        log_index=parse_quantity(entry.get("logIndex"), "log.logIndex"),
    )


class RpcChain:
    """:class:`~sessionward.chain.interface.Chain` and
    :class:`~sessionward.chain.interface.DevChain` over JSON-RPC at ``url``.

    ``priority_fee_floor_wei`` is the least tip :meth:`max_fee` suggests when the last block's
    median tip is lower. The dev helpers only work on a development node (anvil, hardhat).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        chain_id: int | None = None,
        priority_fee_floor_wei: int = 0,
        fetch_revert_reasons: bool = True,
        client: httpx.Client | None = None,
    ) -> None:
        self._rpc = JsonRpcClient(url, timeout=timeout, client=client)
        self._chain_id = chain_id
        self._chain_id_lock = threading.Lock()
        self._priority_floor = priority_fee_floor_wei
        self._trace_revert_reasons = fetch_revert_reasons

    @property
    def round_trips(self) -> int:
        """JSON-RPC requests sent so far (measurements and tests)."""
        return self._rpc.round_trips

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> RpcChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    @property
    def chain_id(self) -> int:
        with self._chain_id_lock:
            if self._chain_id is None:
                self._chain_id = parse_quantity(self._rpc.request("eth_chainId", []), "chainId")
            return self._chain_id

    def block_number(self) -> int:
        return parse_quantity(self._rpc.request("eth_blockNumber", []), "blockNumber")

    def block_timestamp(self) -> int:
        block = _object(self._rpc.request("eth_getBlockByNumber", ["latest", False]), "block")
        return parse_quantity(block.get("timestamp"), "block.timestamp")

    def get_balance(self, address: str) -> int:
        result = self._rpc.request("eth_getBalance", [normalize_address(address), "latest"])
        return parse_quantity(result, "balance")

    def get_code(self, address: str) -> bytes:
        result = self._rpc.request("eth_getCode", [normalize_address(address), "latest"])
        return parse_data(result, "code")

    def get_transaction_count(self, address: str, block: BlockTag = "pending") -> int:
        if block not in ("latest", "pending"):
            raise ValueError("block must be 'latest' or 'pending'")
        result = self._rpc.request("eth_getTransactionCount", [normalize_address(address), block])
        return parse_quantity(result, "transactionCount")

    def gas_price(self) -> int:
        return parse_quantity(self._rpc.request("eth_gasPrice", []), "gasPrice")

    def max_fee(self) -> FeeSuggestion:
        """One ``eth_feeHistory(1, latest, [50])``: the next block's base fee and the last
        block's median tip (at least the configured floor)."""
        history = _object(self._rpc.request("eth_feeHistory", ["0x1", "latest", [50]]), "fees")
        base_fees = history.get("baseFeePerGas")
        if not isinstance(base_fees, list) or not base_fees:
            raise RpcProtocolError("feeHistory.baseFeePerGas: expected a non-empty list")
        base_fee = parse_quantity(base_fees[-1], "baseFeePerGas")
        tip = 0
        rewards = history.get("reward")
        if isinstance(rewards, list) and rewards and isinstance(rewards[-1], list) and rewards[-1]:
            tip = parse_quantity(rewards[-1][0], "reward")
        return FeeSuggestion.from_base_fee(base_fee, max(tip, self._priority_floor))

    # ------------------------------------------------------------------ execution

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> bytes:
        return self.simulate(CallRequest(to=to, data=data, value=value, sender=sender))

    def simulate(self, request: CallRequest) -> bytes:
        try:
            result = self._rpc.request("eth_call", [_call_object(request), "latest"])
        except RpcError as exc:
            raise _reverted(exc) from None
        return parse_data(result, "call result")

    def estimate_gas(self, request: CallRequest) -> int:
        try:
            result = self._rpc.request("eth_estimateGas", [_call_object(request)])
        except RpcError as exc:
            raise _reverted(exc) from None
        return parse_quantity(result, "gas estimate")

    def send_raw_transaction(self, raw: bytes) -> str:
        try:
            result = self._rpc.request("eth_sendRawTransaction", [to_data(raw)])
        except RpcError as exc:
            raise _rejection(exc) from None
        return parse_hash(result, "transaction hash")

    def get_receipt(self, tx_hash: str) -> Receipt | None:
        wanted = parse_hash(tx_hash, "tx_hash")
        result = self._rpc.request("eth_getTransactionReceipt", [wanted])
        if result is None:
            return None
        receipt = _object(result, "receipt")
        if parse_hash(receipt.get("transactionHash"), "receipt.transactionHash") != wanted:
            raise RpcProtocolError("receipt is for another transaction")
        status = parse_quantity(receipt.get("status"), "receipt.status")
        if status not in (0, 1):
            raise RpcProtocolError("receipt.status must be 0x0 or 0x1")
        logs = receipt.get("logs")
        if not isinstance(logs, list):
            raise RpcProtocolError("receipt.logs: expected a list")
        revert_data = None if status == 1 else self._revert_data(wanted)
        return Receipt(
            tx_hash=wanted,
            succeeded=status == 1,
            gas_used=parse_quantity(receipt.get("gasUsed"), "receipt.gasUsed"),
            effective_gas_price=parse_quantity(
                receipt.get("effectiveGasPrice"), "receipt.effectiveGasPrice"
            ),
            block_number=parse_quantity(receipt.get("blockNumber"), "receipt.blockNumber"),
            sender=parse_address(receipt.get("from"), "receipt.from"),
            to=_optional_address(receipt.get("to"), "receipt.to"),
            contract_address=_optional_address(
                receipt.get("contractAddress"), "receipt.contractAddress"
            ),
            logs=tuple(_parse_log(entry) for entry in logs),
            revert_reason=decode_revert_reason(revert_data),
            revert_data=revert_data,
        )

    def _revert_data(self, tx_hash: str) -> bytes | None:
        """The failed top call's output via ``debug_traceTransaction``, if the node has it."""
        if not self._trace_revert_reasons:
            return None
        tracer = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}
        try:
            trace = _object(self._rpc.request("debug_traceTransaction", [tx_hash, tracer]), "trace")
        except RpcError as exc:
            if exc.code == _METHOD_NOT_FOUND:
                self._trace_revert_reasons = False  # never ask this node again
            return None
        output = trace.get("output")
        return b"" if output is None else parse_data(output, "trace.output")

    def get_transaction(self, tx_hash: str) -> TransactionView | None:
        wanted = parse_hash(tx_hash, "tx_hash")
        result = self._rpc.request("eth_getTransactionByHash", [wanted])
        if result is None:
            return None
        tx = _object(result, "transaction")
        if parse_hash(tx.get("hash"), "transaction.hash") != wanted:
            raise RpcProtocolError("transaction is not the one asked for")
        block = tx.get("blockNumber")
        return TransactionView(
            tx_hash=wanted,
            sender=parse_address(tx.get("from"), "transaction.from"),
            nonce=parse_quantity(tx.get("nonce"), "transaction.nonce"),
            block_number=None if block is None else parse_quantity(block, "blockNumber"),
        )

    # ------------------------------------------------------------------ dev helpers

    def set_balance(self, address: str, wei: int) -> None:
        self._rpc.request("anvil_setBalance", [normalize_address(address), to_quantity(wei)])

    def set_code(self, address: str, code: bytes) -> None:
        self._rpc.request("anvil_setCode", [normalize_address(address), to_data(code)])

    def mine(self) -> None:
        self._rpc.request("evm_mine", [])

    def time_travel(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._rpc.request("evm_increaseTime", [seconds])
        self._rpc.request("evm_mine", [])
