"""ERC-7715: ImportPermissionRequest and ExportPermission.

ImportPermissionRequest is AuthorizeRemoteAccess with the envelope written from a dapp's
``wallet_grantPermissions`` request (:func:`sessionward.domain.permission_request.
envelope_from_permission_request`): the same owner-only call, the same grant-time checks, the
same pending session awaiting the owner's ApproveSession. A request that cannot be enforced is
refused with its reason code and nothing is written (no session, no vault key, no audit record):
the translation runs before :meth:`Sessions.authorize`, which itself writes nothing on a refusal.

ExportPermission answers a granted (``active``) session as ERC-7715 ``PermissionResponse``
objects, read by the session's backend or the wallet's owner; their ``context`` is the session
id, hex-encoded (opaque to the dapp, and what SessionWard's own calls take).
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.domain.decision import Violation
from sessionward.domain.envelope import Envelope
from sessionward.domain.permission_request import (
    PermissionRequestRefused,
    envelope_from_permission_request,
    permission_response,
)
from sessionward.reasons import ReasonCode

from .callers import Caller
from .errors import ServiceError, conflict, not_found
from .runtime import Runtime
from .sessions import PendingSessionView, SessionDirectory, Sessions

_NOT_GRANTED: Final[dict[str, ReasonCode]] = {
    "pending_approval": ReasonCode.SESSION_PENDING_APPROVAL,
    "installing": ReasonCode.SESSION_PENDING_APPROVAL,
    "suspended": ReasonCode.SESSION_SUSPENDED,
    "revoking": ReasonCode.SESSION_REVOKED,
    "revoked": ReasonCode.SESSION_REVOKED,
    "expired": ReasonCode.SESSION_EXPIRED,
}


class ImportedPermissionView(PendingSessionView):
    """AuthorizeRemoteAccess's answer, plus what the import changed or left out."""

    envelope: dict[str, Any]
    adjustments: list[str]
    leftOut: list[str]
    justifications: list[str]


class PermissionExportView(TypedDict):
    sessionId: str
    permissions: list[dict[str, Any]]
    """The ERC-7715 ``PermissionResponse`` objects (the ``result`` of ``wallet_grantPermissions``)."""


def permission_context(session_id: str) -> str:
    """The ``context`` of a session's ERC-7715 response: its id, as ``0x`` hex of its bytes."""
    return "0x" + session_id.encode().hex()


class PermissionRequests:
    """The ERC-7715 use cases, on top of :class:`Sessions`."""

    def __init__(self, rt: Runtime, sessions: Sessions, directory: SessionDirectory) -> None:
        self._rt = rt
        self._sessions = sessions
        self._dir = directory

    def import_request(
        self, caller: Caller, *, credential_id: str, wallet_id: str, request: object
    ) -> ImportedPermissionView:
        """Owner: the envelope ``request`` asks for, pending the owner's approval (as
        AuthorizeRemoteAccess). Refusals, nothing written: the translation's code (400), then
        every refusal of AuthorizeRemoteAccess."""
        caller.require_owner_of(wallet_id)
        wallet = self._dir.wallet(wallet_id)
        credential = self._rt.store.credentials.get(credential_id)
        if credential is None or credential.role != "backend":
            raise not_found("credential", ReasonCode.CREDENTIAL_UNKNOWN)
        backend_address = credential.public_key if credential.alg == ALG_SECP256K1 else None
        try:
            imported = envelope_from_permission_request(
                request,
                chain_id=wallet.chain_id,
                account=wallet.account,
                backend_address=backend_address,
            )
        except PermissionRequestRefused as refused:
            raise ServiceError(
                "invalid",
                refused.code,
                refused.message,
                violations=(Violation(refused.code, refused.path, refused.message),),
            ) from None
        pending = self._sessions.authorize(
            caller, credential_id=credential_id, wallet_id=wallet_id, envelope=imported.envelope
        )
        return {
            **pending,
            "envelope": imported.envelope,
            "adjustments": list(imported.adjustments),
            "leftOut": list(imported.left_out),
            "justifications": list(imported.justifications),
        }

    def export(self, caller: Caller, *, session_id: str) -> PermissionExportView:
        """The session's backend, or the wallet's owner: a granted session as ERC-7715
        ``PermissionResponse`` objects. Refusals: the session's state code for a session that
        is not active (``SESSION_PENDING_APPROVAL``, ``SESSION_SUSPENDED``, ``SESSION_REVOKED``,
        ``SESSION_EXPIRED``); ``PERMISSION_TYPE_UNSUPPORTED`` for a scope with no ERC-7715
        form."""
        detail = self._sessions.get(caller, session_id)
        lifecycle = detail["lifecycle"]
        if lifecycle != "active":
            raise conflict(
                _NOT_GRANTED.get(lifecycle, ReasonCode.SESSION_NOT_PENDING),
                f"the session is {lifecycle}: only a granted (active) session is exported",
            )
        if detail["expiresAt"] <= self._rt.now():
            raise conflict(ReasonCode.SESSION_EXPIRED, "the session has expired")
        envelope = Envelope.from_json(detail["envelope"])
        try:
            permissions = permission_response(
                envelope, account=detail["account"], context=permission_context(session_id)
            )
        except PermissionRequestRefused as refused:
            raise ServiceError("invalid", refused.code, refused.message) from None
        return {"sessionId": session_id, "permissions": permissions}
