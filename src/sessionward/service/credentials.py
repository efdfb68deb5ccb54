"""Credentials: registering a backend, showing it for consent (devices: :mod:`.devices`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from cryptography.hazmat.primitives.asymmetric import ec

from sessionward.crypto.request_signature import ALG_P256, ALG_SECP256K1, CredentialKey
from sessionward.domain.summary import check_app_metadata
from sessionward.domain.values import InvalidValue, parse_address
from sessionward.reasons import ReasonCode
from sessionward.store.credentials import CredentialRecord
from sessionward.store.errors import AlreadyExists

from .callers import Caller, CredentialState, SelfSigned
from .config import OpsCredential
from .errors import ServiceError, conflict, invalid, not_found
from .ids import new_id
from .runtime import Runtime

MAX_CREDENTIAL_TTL_S = 365 * 86400


class CredentialView(TypedDict):
    credentialId: str
    role: str
    alg: str
    publicKey: str
    appName: str | None
    appUrl: str | None
    walletId: str | None
    createdAt: int
    expiresAt: int | None
    revokedAt: int | None


def credential_view(record: CredentialRecord) -> CredentialView:
    return {
        "credentialId": record.id,
        "role": record.role,
        "alg": record.alg,
        "publicKey": record.public_key,
        "appName": record.app_name,
        "appUrl": record.app_url,
        "walletId": record.wallet_id,
        "createdAt": record.created_at,
        "expiresAt": record.expires_at,
        "revokedAt": record.revoked_at,
    }


def credential_key(alg: str, public_key: str) -> CredentialKey:
    """The verification key of a credential, from its stored (public) form."""
    if alg == ALG_SECP256K1:
        return CredentialKey.secp256k1(public_key)
    if alg == ALG_P256:
        return CredentialKey.p256(bytes.fromhex(public_key.removeprefix("0x")))
    raise invalid(ReasonCode.INPUT_MALFORMED, f"unknown alg {alg!r}")


def normalize_public_key(alg: str, public_key: str) -> str:
    """An address for secp256k1, lower-case hex of the 65-byte SEC1 key for P-256."""
    if alg == ALG_SECP256K1:
        try:
            return parse_address(public_key, "publicKey")
        except InvalidValue as exc:
            raise invalid(ReasonCode.INPUT_MALFORMED, exc.message) from None
    if alg == ALG_P256:
        text = public_key.lower().removeprefix("0x")
        if len(text) != 130 or not text.startswith("04"):
            raise invalid(
                ReasonCode.INPUT_MALFORMED, "publicKey: expected a 65-byte uncompressed P-256 key"
            )
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(text))
        except ValueError:
            raise invalid(ReasonCode.INPUT_MALFORMED, "publicKey: not a P-256 point") from None
        return "0x" + text
    raise invalid(ReasonCode.INPUT_MALFORMED, f"alg must be {ALG_SECP256K1} or {ALG_P256}")


@dataclass(frozen=True, slots=True)
class RegisteredSigner:
    """A registered credential as request authentication needs it: the key its requests are
    verified with (``None`` if the stored key is unusable: it then authenticates nothing) and
    the :class:`Caller` a verified request acts as."""

    key: CredentialKey | None
    caller: Caller


class Credentials:
    """RegisterCredential and InspectCredential; the registered signers of requests."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def register_backend(
        self, signer: SelfSigned, *, app_name: str, app_url: str | None, expires_at: int
    ) -> CredentialView:
        """Register the key that signed this request as a backend credential (proof of
        possession is the request signature the API layer verified)."""
        now = self._rt.now()
        try:
            # The name and URL are shown to owners as a quoted label: bounded and inert.
            check_app_metadata(app_name, app_url)
        except InvalidValue as exc:
            raise invalid(exc.code, exc.message) from None
        if not now < expires_at <= now + MAX_CREDENTIAL_TTL_S:
            raise invalid(
                ReasonCode.WINDOW_INVALID, "expiresAt must be in the future and within a year"
            )
        record = self._add(
            role="backend", signer=signer, app_name=app_name, app_url=app_url, expires_at=expires_at
        )
        self._rt.store.audit.append(
            "global", "credential.registered", {"credential": record.id, "role": "backend"}, at=now
        )
        return credential_view(record)

    def add_owner(self, *, wallet_id: str, alg: str, public_key: str) -> CredentialRecord:
        """The owner credential made when a wallet is created or registered."""
        return self._add(
            role="owner",
            signer=SelfSigned(alg, public_key),
            app_name=None,
            app_url=None,
            expires_at=None,
            wallet_id=wallet_id,
        )

    def _add(
        self,
        *,
        role: str,
        signer: SelfSigned,
        app_name: str | None,
        app_url: str | None,
        expires_at: int | None,
        wallet_id: str | None = None,
    ) -> CredentialRecord:
        public_key = normalize_public_key(signer.alg, signer.public_key)
        try:
            return self._rt.store.credentials.add(
                credential_id=new_id("cred"),
                role=role,  # type: ignore[arg-type]
                alg=signer.alg,
                public_key=public_key,
                now=self._rt.now(),
                expires_at=expires_at,
                app_name=app_name,
                app_url=app_url,
                wallet_id=wallet_id,
            )
        except AlreadyExists:
            raise conflict(ReasonCode.INPUT_MALFORMED, "credential id collision; retry") from None

    def signer(self, credential_id: str) -> RegisteredSigner | None:
        """The registered credential ``credential_id`` as it is now (``None`` if unknown).

        A revoked or expired credential is returned too, marked so in its caller: its requests
        still authenticate, so that the policy path can refuse and record them."""
        record = self._rt.store.credentials.get(credential_id)
        if record is None:
            return None
        try:
            key: CredentialKey | None = credential_key(record.alg, record.public_key)
        except (ServiceError, ValueError):
            key = None
        now = self._rt.now()
        caller = Caller(
            credential_id=record.id,
            role=record.role,
            wallet_id=record.wallet_id,
            revoked=record.revoked_at is not None,
            expired=record.expires_at is not None and record.expires_at <= now,
            state=CredentialState(record.revoked_at, record.expires_at),
        )
        return RegisteredSigner(key, caller)

    def inspect(self, credential_id: str) -> CredentialView:
        """Public metadata for a consent screen (no secret exists to leak: keys are public)."""
        record = self._rt.store.credentials.get(credential_id)
        if record is None or record.role != "backend":
            raise not_found("credential", ReasonCode.CREDENTIAL_UNKNOWN)
        return credential_view(record)

    def ensure_ops(self, ops: tuple[OpsCredential, ...]) -> None:
        """Register the configured ops credentials (idempotent; configuration is the source)."""
        now = self._rt.now()
        for entry in ops:
            existing = self._rt.store.credentials.get(entry.id)
            if existing is not None:
                if existing.role != "ops" or existing.public_key != normalize_public_key(
                    entry.alg, entry.public_key
                ):
                    raise ServiceError(
                        "conflict",
                        ReasonCode.SIGNER_MISMATCH,
                        f"ops credential {entry.id} differs from its record",
                    )
                continue
            self._rt.store.credentials.add(
                credential_id=entry.id,
                role="ops",
                alg=entry.alg,
                public_key=normalize_public_key(entry.alg, entry.public_key),
                now=now,
            )
