"""The HTTP names of the SessionWard protocol, in one place for the API, the owner page's
server side and the SDK (docs/protocol.md sections 3 and 8.1).

Every method is ``POST {METHOD_PREFIX}<Method>``; a request is signed in ``SIGNATURE_HEADER``
(:mod:`sessionward.crypto.request_signature`), a mutation may carry ``IDEMPOTENCY_HEADER``,
every answer carries ``REQUEST_ID_HEADER``, and a 429 or 503 may carry ``RETRY_AFTER_HEADER``
(whole seconds). Header names are compared case-insensitively on the wire; these are the
spellings the service sends and documents.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "IDEMPOTENCY_HEADER",
    "METHOD_PREFIX",
    "REQUEST_ID_HEADER",
    "RETRY_AFTER_HEADER",
    "SIGNATURE_HEADER",
]

METHOD_PREFIX: Final = "/v1/Waas/"
SIGNATURE_HEADER: Final = "Oms-Wallet-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REQUEST_ID_HEADER: Final = "X-Request-Id"
RETRY_AFTER_HEADER: Final = "Retry-After"
