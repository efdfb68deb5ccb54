"""The JSON-RPC client is strict and frugal: one request per call, answers validated, errors
typed. A scripted fake node (httpx.MockTransport) plays the other side."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sessionward.chain.errors import (
    AlreadyKnown,
    ChainUnavailable,
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
)
from sessionward.chain.jsonrpc import parse_data, parse_quantity
from sessionward.chain.rpc import RpcChain

Answer = Callable[[dict[str, Any]], Any]
TX_HASH = "0x" + "ab" * 32
ERROR_UNLUCKY = (
    "0x08c379a0" + "20".rjust(64, "0") + "07".rjust(64, "0") + b"UNLUCKY".hex().ljust(64, "0")
)


class FakeNode:
    """Answers each request with ``answer(request)``: a dict merged into the envelope (so a
    test can break the envelope) or a plain result."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        answer = self.answer(body)
        if isinstance(answer, httpx.Response):
            return answer
        envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": body["id"]}
        if isinstance(answer, dict) and ("error" in answer or "raw" in answer):
            envelope = answer.get("raw", {**envelope, **answer})
        else:
            envelope["result"] = answer
        return httpx.Response(200, json=envelope)


def chain_for(answer: Answer, **options: Any) -> tuple[RpcChain, FakeNode]:
    node = FakeNode(answer)
    client = httpx.Client(transport=httpx.MockTransport(node))
    return RpcChain("http://node.invalid", client=client, **options), node


def error(code: int, message: str, data: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"error": body}


# ---------------------------------------------------------------------------- frugality


def test_chain_id_is_fetched_once_and_cached() -> None:
    chain, node = chain_for(lambda r: "0x7a69")
    assert chain.chain_id == 31337
    assert chain.chain_id == 31337
    assert [r["method"] for r in node.requests] == ["eth_chainId"]


def test_chain_id_given_at_construction_costs_no_request() -> None:
    chain, node = chain_for(lambda r: "0x1", chain_id=5)
    assert chain.chain_id == 5 and node.requests == []


def test_sending_a_raw_transaction_is_exactly_one_request() -> None:
    chain, node = chain_for(lambda r: TX_HASH)
    assert chain.send_raw_transaction(b"\x02\xc0") == TX_HASH
    assert [(r["method"], r["params"]) for r in node.requests] == [
        ("eth_sendRawTransaction", ["0x02c0"])
    ]
    assert chain.round_trips == 1


def test_fee_suggestion_is_one_fee_history_request() -> None:
    history = {"baseFeePerGas": ["0x64", "0xc8"], "reward": [["0x5"]], "gasUsedRatio": [0.5]}
    chain, node = chain_for(lambda r: history, priority_fee_floor_wei=3)
    fees = chain.max_fee()
    assert (fees.base_fee, fees.max_priority_fee_per_gas, fees.max_fee_per_gas) == (200, 5, 405)
    assert [r["method"] for r in node.requests] == ["eth_feeHistory"]


def test_fee_suggestion_tip_has_a_floor() -> None:
    history = {"baseFeePerGas": ["0x64", "0x64"], "reward": [["0x0"]]}
    chain, _ = chain_for(lambda r: history, priority_fee_floor_wei=7)
    assert chain.max_fee().max_priority_fee_per_gas == 7


# ---------------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param({"raw": {"jsonrpc": "2.0", "id": 999, "result": "0x1"}}, id="wrong-id"),
        pytest.param({"raw": {"jsonrpc": "1.0", "id": 1, "result": "0x1"}}, id="wrong-version"),
        pytest.param({"raw": {"jsonrpc": "2.0", "id": 1}}, id="no-result"),
        pytest.param({"raw": {"jsonrpc": "2.0", "id": 1, "result": "0x1", "error": {}}}, id="both"),
        pytest.param({"raw": {"jsonrpc": "2.0", "id": True, "result": "0x1"}}, id="bool-id"),
        pytest.param({"raw": [{"jsonrpc": "2.0", "id": 1, "result": "0x1"}]}, id="batch"),
        pytest.param(error("x", "m"), id="error-code-not-int"),  # type: ignore[arg-type]
    ],
)
def test_malformed_envelopes_are_protocol_errors(envelope: dict[str, Any]) -> None:
    chain, _ = chain_for(lambda r: envelope)
    with pytest.raises(RpcProtocolError):
        chain.block_number()


@pytest.mark.parametrize("bad", ["0x", "0x01", "1", "0xg", 1, None, "0X1", " 0x1"])
def test_quantities_are_parsed_strictly(bad: object) -> None:
    with pytest.raises(RpcProtocolError):
        parse_quantity(bad)
    chain, _ = chain_for(lambda r: bad)
    with pytest.raises(RpcProtocolError):
        chain.get_balance("0x" + "11" * 20)


def test_canonical_quantities_and_data_parse() -> None:
    assert parse_quantity("0x0") == 0 and parse_quantity("0x1a") == 26
    assert parse_quantity("0xAbC") == 0xABC
    assert parse_data("0x") == b"" and parse_data("0x00ff") == b"\x00\xff"
    for bad in ("0x0", "00", "0xzz"):
        with pytest.raises(RpcProtocolError):
            parse_data(bad)


def test_receipt_for_another_hash_is_refused() -> None:
    receipt = {"transactionHash": "0x" + "cd" * 32, "status": "0x1"}
    chain, _ = chain_for(lambda r: receipt)
    with pytest.raises(RpcProtocolError):
        chain.get_receipt(TX_HASH)


def test_pending_transaction_has_no_receipt() -> None:
    chain, _ = chain_for(lambda r: None)
    assert chain.get_receipt(TX_HASH) is None


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (-32003, "nonce too low", NonceTooLow),
        (-32000, "nonce too low: next nonce 5, tx nonce 4", NonceTooLow),
        (-32000, "already known", AlreadyKnown),
        (-32003, "transaction already imported", AlreadyKnown),
        (-32000, "replacement transaction underpriced", ReplacementUnderpriced),
        (-32003, "max fee per gas less than block base fee", FeeTooLow),
        (-32003, "Insufficient funds for gas * price + value", InsufficientFunds),
        (-32000, "intrinsic gas too low", IntrinsicGasTooLow),
        (-32000, "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", GasLimitExceeded),
        (-32000, "exceeds block gas limit", GasLimitExceeded),
        (-32003, "invalid chain id for signer", InvalidTransaction),
    ],
)
def test_send_refusals_are_typed(code: int, message: str, kind: type[RpcError]) -> None:
    chain, _ = chain_for(lambda r: error(code, message))
    with pytest.raises(kind) as refused:
        chain.send_raw_transaction(b"\x02")
    assert refused.value.code == code and refused.value.message == message


def test_unknown_error_codes_stay_plain_rpc_errors() -> None:
    chain, _ = chain_for(lambda r: error(-32005, "rate limited"))
    with pytest.raises(RpcError) as failed:
        chain.send_raw_transaction(b"\x02")
    assert type(failed.value) is RpcError


def test_call_revert_decodes_the_reason_from_error_data() -> None:
    chain, _ = chain_for(lambda r: error(3, "execution reverted: UNLUCKY", ERROR_UNLUCKY))
    with pytest.raises(ExecutionReverted) as reverted:
        chain.call("0x" + "11" * 20, b"")
    assert reverted.value.reason == "UNLUCKY"
    assert reverted.value.data == bytes.fromhex(ERROR_UNLUCKY[2:])


def test_http_failure_and_unreachable_node_are_unavailability() -> None:
    chain, _ = chain_for(lambda r: httpx.Response(503, text="busy"))
    with pytest.raises(ChainUnavailable):
        chain.block_number()
    chain, _ = chain_for(lambda r: httpx.Response(200, text="not json"))
    with pytest.raises(RpcProtocolError):
        chain.block_number()
    with RpcChain("http://127.0.0.1:9", timeout=0.5) as closed, pytest.raises(ChainUnavailable):
        closed.block_number()


def test_revert_reason_lookup_is_skipped_once_the_node_lacks_tracing() -> None:
    receipt: dict[str, Any] = {
        "transactionHash": TX_HASH,
        "status": "0x0",
        "gasUsed": "0x5208",
        "effectiveGasPrice": "0x1",
        "blockNumber": "0x2",
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "contractAddress": None,
        "logs": [],
    }

    def answer(request: dict[str, Any]) -> Any:
        if request["method"] == "debug_traceTransaction":
            return error(-32601, "Method not found")
        return receipt

    chain, node = chain_for(answer)
    first = chain.get_receipt(TX_HASH)
    second = chain.get_receipt(TX_HASH)
    assert first is not None and not first.succeeded and first.revert_reason is None
    assert second == first
    assert [r["method"] for r in node.requests] == [
        "eth_getTransactionReceipt",
        "debug_traceTransaction",
        "eth_getTransactionReceipt",
    ]
