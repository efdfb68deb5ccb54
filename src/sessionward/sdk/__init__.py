"""Python clients for the SessionWard API: :class:`OwnerClient`, :class:`BackendClient` and
:class:`OpsClient`. They sign every request (docs/protocol.md section 3) and depend only on
:mod:`sessionward.crypto` and httpx. Answers are plain dicts with the API's camelCase keys;
refusals raise :class:`SessionWardApiError`.
"""

from sessionward.crypto.request_signature import (
    P256RequestSigner,
    RequestSigner,
    Secp256k1RequestSigner,
)

from .backend import BackendClient
from .errors import GrantVerificationError, SessionWardApiError
from .grants import grant_document_digest, verify_grant
from .ops import OpsClient
from .owner import OwnerClient
from .transport import NonceCounter
from .webhooks import ReplayCache, WebhookVerificationError, verify_webhook

__all__ = [
    "BackendClient",
    "GrantVerificationError",
    "NonceCounter",
    "OpsClient",
    "OwnerClient",
    "P256RequestSigner",
    "ReplayCache",
    "RequestSigner",
    "Secp256k1RequestSigner",
    "SessionWardApiError",
    "WebhookVerificationError",
    "grant_document_digest",
    "verify_grant",
    "verify_webhook",
]
