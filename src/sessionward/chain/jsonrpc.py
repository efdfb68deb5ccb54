"""JSON-RPC 2.0 over HTTP, strictly: one request per call, every answer checked.

:class:`JsonRpcClient` keeps one ``httpx.Client`` (keep-alive) and sends exactly one HTTP request
per :meth:`JsonRpcClient.request`; it never retries (a retried ``eth_sendRawTransaction`` is the
relayer's decision, not the transport's). A response is accepted only if it is a JSON object
with ``"jsonrpc": "2.0"``, the ``id`` we sent, and exactly one of ``result`` / ``error``; an
error object needs an integer ``code`` and a string ``message``.

The hex helpers follow the Ethereum JSON-RPC encoding rules: a *quantity* is ``0x`` followed by
hex digits without leading zeros (``0x0`` for zero), *data* is ``0x`` followed by an even
number of hex digits. Anything else is a :class:`RpcProtocolError`.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any, Final

import httpx

from sessionward.chain.errors import ChainUnavailable, RpcError, RpcProtocolError

__all__ = [
    "JsonRpcClient",
    "parse_address",
    "parse_data",
    "parse_hash",
    "parse_quantity",
    "to_data",
    "to_quantity",
]

_HEX: Final = frozenset("0123456789abcdefABCDEF")
_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024


def to_quantity(value: int) -> str:
    """``0x``-prefixed hex of a non-negative int, no leading zeros."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a quantity is a non-negative int")
    return hex(value)


def to_data(value: bytes) -> str:
    """``0x``-prefixed hex of bytes."""
    return "0x" + bytes(value).hex()


def parse_quantity(value: object, what: str = "quantity") -> int:
    """Strictly parse a hex quantity (``0x0``, ``0x1a``; not ``0x``, ``0x01``, ``1a``, ints)."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        raise RpcProtocolError(f"{what}: expected a hex quantity, got {value!r:.80}")
    digits = value[2:]
    if not _HEX.issuperset(digits) or (len(digits) > 1 and digits[0] == "0"):
        raise RpcProtocolError(f"{what}: malformed hex quantity {value!r:.80}")
    return int(digits, 16)


def parse_data(value: object, what: str = "data", *, length: int | None = None) -> bytes:
    """Strictly parse hex data (even number of digits), optionally of an exact byte length."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise RpcProtocolError(f"{what}: expected hex data, got {value!r:.80}")
    if not _HEX.issuperset(value[2:]):
        raise RpcProtocolError(f"{what}: malformed hex data")
    raw = bytes.fromhex(value[2:])
    if length is not None and len(raw) != length:
        raise RpcProtocolError(f"{what}: expected {length} bytes, got {len(raw)}")
    return raw


def parse_address(value: object, what: str = "address") -> str:
    """A 20-byte address as lower-case ``0x`` hex."""
    return "0x" + parse_data(value, what, length=20).hex()


def parse_hash(value: object, what: str = "hash") -> str:
    """A 32-byte hash as lower-case ``0x`` hex."""
    return "0x" + parse_data(value, what, length=32).hex()


class JsonRpcClient:
    """A synchronous JSON-RPC 2.0 client over one keep-alive HTTP connection pool.

    ``round_trips`` counts HTTP requests sent (for measurements and tests). Thread-safe: ids
    come from a locked counter and httpx's client is thread-safe.
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self._url = url
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=timeout,
            headers={"content-type": "application/json", "accept": "application/json"},
            transport=httpx.HTTPTransport(retries=0),
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.round_trips = 0

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def request(self, method: str, params: list[Any]) -> Any:
        """Send one request; return ``result`` or raise.

        Raises :class:`ChainUnavailable` (transport, HTTP status, timeout),
        :class:`RpcProtocolError` (not a valid response to this request) or
        :class:`RpcError` (the node's error object; ``data`` kept when it is hex).
        """
        with self._lock:
            request_id = next(self._ids)
            self.round_trips += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
            separators=(",", ":"),
        ).encode()
        try:
            response = self._client.post(self._url, content=body)
        except httpx.HTTPError as exc:
            raise ChainUnavailable(f"{method}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            # Some nodes put JSON-RPC errors in 4xx/5xx bodies; still an unusable answer.
            raise ChainUnavailable(f"{method}: HTTP {response.status_code}")
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise RpcProtocolError(f"{method}: response too large")
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise RpcProtocolError(f"{method}: response is not JSON") from None
        return self._unwrap(method, request_id, payload)

    @staticmethod
    def _unwrap(method: str, request_id: int, payload: object) -> Any:
        if not isinstance(payload, dict):
            raise RpcProtocolError(f"{method}: response is not a JSON object")
        if payload.get("jsonrpc") != "2.0":
            raise RpcProtocolError(f"{method}: not a JSON-RPC 2.0 response")
        response_id = payload.get("id")
        if isinstance(response_id, bool) or response_id != request_id:
            raise RpcProtocolError(
                f"{method}: response id {response_id!r:.40} does not match request {request_id}"
            )
        has_result, has_error = "result" in payload, "error" in payload
        if has_result == has_error:
            raise RpcProtocolError(f"{method}: response needs exactly one of result/error")
        if has_result:
            return payload["result"]
        error = payload["error"]
        if not isinstance(error, dict):
            raise RpcProtocolError(f"{method}: error is not an object")
        code, message = error.get("code"), error.get("message")
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
            raise RpcProtocolError(f"{method}: error needs an integer code and a message")
        data = error.get("data")
        raw: bytes | None = None
        if isinstance(data, str):
            try:
                raw = parse_data(data, "error.data")
            except RpcProtocolError:
                raw = None
        raise RpcError(code, message[:2000], raw)
