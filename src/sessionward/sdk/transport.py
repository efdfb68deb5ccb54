"""Signed HTTP calls to ``POST /v1/Waas/<Method>`` (docs/protocol.md section 3).

Each request is signed over its exact body bytes, the raw path as sent, a fresh nonce and the
current time. Nonces come from :class:`NonceCounter`: seeded from the clock in nanoseconds and
strictly increasing, so a client never reuses one, even across restarts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from sessionward.crypto.http_names import (
    IDEMPOTENCY_HEADER,
    METHOD_PREFIX,
    RETRY_AFTER_HEADER,
    SIGNATURE_HEADER,
)
from sessionward.crypto.request_signature import RequestSigner, sign_request

from .errors import SessionWardApiError

METHOD_PATH: Final = METHOD_PREFIX
SELF: Final = "self"
RATE_LIMITED_REQUESTS: Final = "RATE_LIMITED_REQUESTS"
"""The reason code of a request refused for its signer's request rate (docs/protocol.md): the
server changed nothing, so the request may be sent again after its ``Retry-After``."""


class NonceCounter:
    """Thread-safe, strictly increasing nonces, never below the clock in nanoseconds (so a
    restarted client does not reuse the nonces of its previous run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = time.time_ns()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact JSON; floats and NaN are refused here, as the server would refuse them."""
    _refuse_floats(body)
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _refuse_floats(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("amounts are decimal strings or integers, never floats")
    if isinstance(value, Mapping):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


class Transport:
    """One API endpoint over one ``httpx.Client`` (made here unless given)."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        max_rate_limit_wait_s: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._retries = retries
        self._max_rate_limit_wait_s = max_rate_limit_wait_s
        self.nonces = NonceCounter()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def call(
        self,
        method: str,
        body: Mapping[str, Any],
        *,
        signer: RequestSigner | None = None,
        credential_id: str | None = None,
        idempotency_key: str | None = None,
        retry_safe: bool = False,
    ) -> dict[str, Any]:
        """POST ``body`` to ``method``, signed by ``signer`` as ``credential_id`` (unsigned when
        ``signer`` is None). Transport failures are retried (re-signed, fresh nonce) only when
        ``retry_safe`` or with an ``idempotency_key``. A request refused for its signer's request
        rate (429 ``RATE_LIMITED_REQUESTS``, which changes nothing on the server) is sent again,
        re-signed, after its ``Retry-After``, up to ``retries`` times and only while that wait is
        at most ``max_rate_limit_wait_s``; any other refusal is raised at once. Raises
        :class:`SessionWardApiError`."""
        url = httpx.URL(f"{self.base_url}{METHOD_PATH}{method}")
        raw = encode_body(body)
        attempts = 1 + (self._retries if retry_safe or idempotency_key is not None else 0)
        rate_limited_retries = self._retries
        attempt = 0
        while True:
            headers = {"Content-Type": "application/json"}
            if idempotency_key is not None:
                headers[IDEMPOTENCY_HEADER] = idempotency_key
            if signer is not None:
                if credential_id is None:
                    raise ValueError("this call needs a credential id (register first)")
                headers[SIGNATURE_HEADER] = sign_request(
                    signer,
                    credential_id,
                    "POST",
                    url.raw_path.decode("ascii"),
                    raw,
                    self.nonces.next(),
                    time.time_ns() // 1_000_000,
                )
            try:
                response = self._http.post(url, content=raw, headers=headers)
            except httpx.TransportError:
                attempt += 1
                if attempt == attempts:
                    raise
                time.sleep(0.1 * attempt)
                continue
            wait = self._rate_limit_wait(response)
            if wait is not None and rate_limited_retries > 0:
                rate_limited_retries -= 1
                time.sleep(wait)
                continue
            return _result(response)

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending a request the server refused for its request rate,
        or None when ``response`` is not such a refusal or asks for a longer wait than this
        transport accepts (the caller then gets the 429 as an error)."""
        if response.status_code != 429:
            return None
        try:
            code = response.json().get("code")
            wait = float(response.headers.get(RETRY_AFTER_HEADER, ""))
        except (ValueError, AttributeError):
            return None
        if code != RATE_LIMITED_REQUESTS or not 0 <= wait <= self._max_rate_limit_wait_s:
            return None
        return wait


def _result(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.is_success and isinstance(document, dict):
        return document
    if response.is_success:
        raise SessionWardApiError(response.status_code, "HTTP_ERROR", "answer is not JSON")
    raise SessionWardApiError.from_response(response.status_code, document, response.text)


def public_key_text(signer: RequestSigner) -> str:
    """The text a signer registers as its ``publicKey``: an address (secp256k1) or the 0x hex
    of the uncompressed P-256 key."""
    address = getattr(signer, "address", None)
    if isinstance(address, str):
        return address
    public_key = getattr(signer, "public_key", None)
    if isinstance(public_key, bytes):
        return "0x" + public_key.hex()
    raise TypeError("the signer exposes neither .address nor .public_key")


def hex_bytes(value: bytes | str) -> str:
    """``0x`` hex of bytes (a ``0x`` string is passed through, lower-cased)."""
    if isinstance(value, str):
        if not value.startswith("0x"):
            raise ValueError("hex strings start with 0x")
        return value.lower()
    return "0x" + bytes(value).hex()


def amount(value: int | str) -> str:
    """A decimal-string amount."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("amounts are integers or decimal strings")
    text = str(value)
    if not text.isdigit():
        raise ValueError("amounts are non-negative decimal integers")
    return str(int(text))


def json_args(value: Any) -> Any:
    """Contract-call arguments as the API expects them: integers as decimal strings, bytes as
    0x hex, tuples as lists (booleans and strings unchanged)."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [json_args(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_args(v) for k, v in value.items()}
    raise TypeError(f"cannot send a {type(value).__name__} as a contract argument")
