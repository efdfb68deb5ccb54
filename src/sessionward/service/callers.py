"""Who is calling: an authenticated credential and what it is bound to."""

from __future__ import annotations

from dataclasses import dataclass

from sessionward.domain.wire_types import Role
from sessionward.reasons import ReasonCode

from .errors import ServiceError


@dataclass(frozen=True, slots=True)
class CredentialState:
    """A credential's revocation and expiry times (``None``: not revoked / never expires)."""

    revoked_at: int | None
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's credential. ``wallet_id`` binds owner credentials.

    ``revoked``/``expired`` describe the credential: its signature still authenticates the
    request, so that use after revocation can be refused *and recorded* by the policy path
    (``Prepare``/``Execute`` pass ``allow_dead=True``); every other method refuses it.
    ``state`` is the credential's revocation and expiry as read when the request was
    authenticated (``None``: not read with the request; whoever needs it reads it).
    """

    credential_id: str
    role: Role
    wallet_id: str | None = None
    revoked: bool = False
    expired: bool = False
    state: CredentialState | None = None

    def require(self, role: Role, *, allow_dead: bool = False) -> None:
        """Refuse unless the caller has ``role`` (403 ``ROLE_FORBIDDEN``) and, unless
        ``allow_dead``, a live credential (401 ``CREDENTIAL_REVOKED``/``CREDENTIAL_EXPIRED``)."""
        if not allow_dead and self.revoked:
            raise ServiceError(
                "unauthorized", ReasonCode.CREDENTIAL_REVOKED, "the credential was revoked"
            )
        if not allow_dead and self.expired:
            raise ServiceError(
                "unauthorized", ReasonCode.CREDENTIAL_EXPIRED, "the credential has expired"
            )
        if self.role != role:
            raise ServiceError(
                "forbidden", ReasonCode.ROLE_FORBIDDEN, f"this method needs a {role} credential"
            )

    def require_owner_of(self, wallet_id: str) -> None:
        self.require("owner")
        if self.wallet_id != wallet_id:
            raise ServiceError(
                "forbidden",
                ReasonCode.ROLE_FORBIDDEN,
                "this owner credential is bound to another wallet",
            )


@dataclass(frozen=True, slots=True)
class SelfSigned:
    """A request signed by a key that is not registered yet (``cred="self"``): the owner
    creating a wallet, or a backend registering its credential. ``public_key`` is the address
    (secp256k1) or the hex P-256 key the signature was verified against."""

    alg: str
    public_key: str
