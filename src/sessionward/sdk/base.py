"""What every client shares: a transport, a request signer and the credential it signs as."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from sessionward.crypto.request_signature import RequestSigner

from .transport import SELF, Transport, public_key_text


class SignedClient:
    """A client that signs every call with ``signer`` as ``credential_id``."""

    def __init__(
        self,
        base_url: str,
        signer: RequestSigner,
        credential_id: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._transport = Transport(base_url, http=http, timeout=timeout)
        self._signer = signer
        self.credential_id = credential_id

    @property
    def signer(self) -> RequestSigner:
        return self._signer

    @property
    def public_key(self) -> str:
        """The signer's public key as registered: an address, or 0x hex of a P-256 key."""
        return public_key_text(self._signer)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        read: bool = False,
    ) -> dict[str, Any]:
        """A call signed as this client's credential."""
        if self.credential_id is None:
            raise ValueError("no credential id yet: register first")
        return self._transport.call(
            method,
            body,
            signer=self._signer,
            credential_id=self.credential_id,
            idempotency_key=idempotency_key,
            retry_safe=read,
        )

    def _self_signed(
        self, method: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A call signed ``cred="self"``: the body names this signer's key (proof of possession)."""
        document = {"alg": self._signer.alg, "publicKey": self.public_key, **body}
        return self._transport.call(
            method,
            document,
            signer=self._signer,
            credential_id=SELF,
            idempotency_key=idempotency_key,
        )

    def _public(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._transport.call(method, body, retry_safe=True)

    def _read(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(method, body, read=True)


def page_body(cursor: str | None, limit: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**fields, "limit": limit}
    if cursor is not None:
        body["cursor"] = cursor
    return body
