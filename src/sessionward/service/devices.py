"""Owner devices: keys that sign an owner's requests from a browser (the review page at
``/ui``) or another device, added only by an act of the wallet's owner.

Contracts:

- **Who pairs.** Only the wallet's own owner credential (the *root*: made by CreateWallet or
  RegisterWallet) issues pairing codes or registers a device key by signing it. A device
  credential that tries either is refused ``DEVICE_CANNOT_PAIR`` (403) and nothing is written.
- **Pairing by code.** :meth:`Devices.create_pairing_code` returns a random one-time code
  (120 bits, shown once) and stores only its SHA-256; it expires after ``pairing_code_ttl_s``.
  :meth:`Devices.pair` is signed ``cred="self"`` by the *new* device key (proof of possession)
  and carries the code in the body: a code this service never issued is
  ``PAIRING_CODE_INVALID``, an expired one ``PAIRING_CODE_EXPIRED``, a used one
  ``PAIRING_CODE_USED`` (all 401). The claim and the new device commit in one transaction, so
  a code pairs at most one device and a refused pairing leaves the code unused.
- **Pairing by signature.** :meth:`Devices.register_signed`: the root owner credential signs
  a request whose body is the device's public key (``RegisterCredential``).
- **Expiry.** Every device expires: ``device_ttl_s`` after pairing by default (30 days),
  shorter if the owner asks, never longer than the configured value nor
  :data:`~sessionward.service.config.MAX_DEVICE_TTL_S`. An expired device's requests are refused
  ``CREDENTIAL_EXPIRED`` (401) everywhere, a revoked one's ``CREDENTIAL_REVOKED``.
- **Revocation.** :meth:`Devices.revoke` by the root owner credential (or a device revoking
  itself) revokes the device's credential through the revocation gate: once it returns, no
  request of that device is accepted, on any node.
- **Frozen.** During a global freeze no device is paired: ``CreatePairingCode``, ``PairDevice``
  and the owner-signed registration are refused ``GLOBAL_FREEZE`` (409) and write nothing (no
  code issued, no code claimed, no credential, no audit record). Listing and revoking devices
  keep working.
- **Bounded.** At most :data:`MAX_LIVE_DEVICES` live devices per wallet
  (``DEVICE_LIMIT_REACHED``, 409); :meth:`Devices.list` pages by cursor.

No private key ever reaches the service: a device sends its public key only; the pairing code
is secret until used and is never stored, logged or put in an audit record.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final, TypedDict

from sessionward.crypto.request_signature import ALG_P256
from sessionward.domain.wire_types import DeviceStatus
from sessionward.reasons import ReasonCode
from sessionward.store.devices import DeviceRecord, OwnerDevices, PairedVia, code_hash
from sessionward.store.errors import AlreadyExists

from .callers import Caller, SelfSigned
from .config import MAX_DEVICE_TTL_S, MAX_PAIRING_CODE_TTL_S
from .credentials import CredentialView, credential_view, normalize_public_key
from .errors import ServiceError, conflict, forbidden, invalid, not_found
from .ids import new_id
from .pages import MAX_PAGE, Page
from .runtime import Runtime

MAX_LIVE_DEVICES: Final = 20
MIN_DEVICE_TTL_S: Final = 10
"""The shortest device lifetime an owner may ask for (a borrowed computer, a test)."""
CODE_BYTES: Final = 15  # 120 bits: 24 base32 characters
_CODE_TEXT: Final = re.compile(r"^[A-Z2-7]{24}$")
_CURSOR: Final = re.compile(r"^[A-Za-z0-9_=-]{1,256}$")


class DeviceView(TypedDict):
    credentialId: str
    walletId: str
    alg: str
    publicKey: str
    label: str | None
    pairedVia: str
    createdAt: int
    expiresAt: int | None
    revokedAt: int | None
    status: str


class PairingCodeView(TypedDict):
    pairingCode: str
    """The one-time code, shown to the owner once (the service keeps only its hash)."""
    walletId: str
    expiresAt: int
    deviceExpiresIn: int


def normalize_code(text: str) -> str | None:
    """The code as stored (upper-case base32, no separators), or None if it cannot be one."""
    compact = re.sub(r"[\s-]", "", text).upper()
    return compact if _CODE_TEXT.match(compact) else None


def format_code(compact: str) -> str:
    """``ABCD-EFGH-...``: groups of four, easier to read out and type."""
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _status(device: DeviceRecord, now: int) -> DeviceStatus:
    if device.revoked_at is not None:
        return "revoked"
    if device.expires_at is not None and device.expires_at <= now:
        return "expired"
    return "active"


def device_view(device: DeviceRecord, now: int) -> DeviceView:
    return {
        "credentialId": device.credential_id,
        "walletId": device.wallet_id,
        "alg": device.alg,
        "publicKey": device.public_key,
        "label": device.label,
        "pairedVia": device.paired_via,
        "createdAt": device.created_at,
        "expiresAt": device.expires_at,
        "revokedAt": device.revoked_at,
        "status": _status(device, now),
    }


def _refuse_during_global_freeze(rt: Runtime) -> None:
    """No new owner authority while a global freeze is in force (``GLOBAL_FREEZE``, 409): read
    now, and again inside the unit of work that would write (after the revocation gate), so a
    freeze that starts between the two is seen."""
    if any(f.scope == "global" for f in rt.store.freezes.active()):
        raise conflict(
            ReasonCode.GLOBAL_FREEZE,
            "a global freeze is in force: no device can be paired until it is lifted",
        )


def _pairing_refused(code: ReasonCode, message: str) -> ServiceError:
    return ServiceError("unauthorized", code, message)


class Devices:
    """CreatePairingCode, PairDevice, ListDevices, RevokeDevice, and the owner-signed device
    registration (``RegisterCredential`` signed by the root owner credential)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._store = OwnerDevices(rt.store.db, rt.store.credentials)

    # --- who may ------------------------------------------------------------------------

    def _require_root(self, caller: Caller, wallet_id: str | None = None) -> str:
        """The caller's wallet, if the caller is that wallet's live root owner credential."""
        if wallet_id is None:
            caller.require("owner")
        else:
            caller.require_owner_of(wallet_id)
        if self._store.is_device(caller.credential_id):
            raise forbidden(
                "a device cannot register or pair devices: the wallet's owner key does",
                ReasonCode.DEVICE_CANNOT_PAIR,
            )
        assert caller.wallet_id is not None  # an owner credential is bound to its wallet
        return caller.wallet_id

    def _gate(self) -> None:
        """Inside a unit: pass the revocation gate (ordered with any freeze on PostgreSQL) and
        refuse if a global freeze is now in force."""
        db = self._rt.store.db
        with db.reading() as conn:
            db.pass_gate(conn)
        _refuse_during_global_freeze(self._rt)

    @property
    def _ttl(self) -> int:
        # Bounded here too: environment overrides of the settings are not range-checked.
        return max(MIN_DEVICE_TTL_S, min(self._rt.settings.device_ttl_s, MAX_DEVICE_TTL_S))

    def _device_ttl(self, requested: int | None) -> int:
        if requested is None:
            return self._ttl
        if not MIN_DEVICE_TTL_S <= requested <= self._ttl:
            raise invalid(
                ReasonCode.WINDOW_INVALID,
                f"a device lives between {MIN_DEVICE_TTL_S} s and {self._ttl} s",
            )
        return requested

    # --- pairing ------------------------------------------------------------------------

    def create_pairing_code(
        self, caller: Caller, *, wallet_id: str, device_ttl_s: int | None = None
    ) -> PairingCodeView:
        """A one-time code for pairing one device with ``wallet_id`` (root owner only)."""
        wallet = self._require_root(caller, wallet_id)
        ttl = self._device_ttl(device_ttl_s)
        _refuse_during_global_freeze(self._rt)
        now = self._rt.now()
        compact = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")
        expires_at = now + max(1, min(self._rt.settings.pairing_code_ttl_s, MAX_PAIRING_CODE_TTL_S))
        with self._rt.store.db.unit():
            self._gate()
            self._store.add_code(
                code_id=new_id("pair"),
                hashed=code_hash(compact),
                wallet_id=wallet,
                created_by=caller.credential_id,
                now=now,
                expires_at=expires_at,
                device_ttl_s=ttl,
            )
            self._rt.store.audit.append(
                wallet,
                "device.pairing_code_issued",
                {"by": caller.credential_id, "expiresAt": expires_at},
                at=now,
            )
        return {
            "pairingCode": format_code(compact),
            "walletId": wallet,
            "expiresAt": expires_at,
            "deviceExpiresIn": ttl,
        }

    def pair(self, signer: SelfSigned, *, code: str, label: str | None) -> DeviceView:
        """Pair the key that signed this request (``cred="self"``: proof of possession) with
        the wallet whose owner issued ``code``."""
        if signer.alg != ALG_P256:
            raise invalid(ReasonCode.INPUT_MALFORMED, f"alg: a device key is {ALG_P256}")
        compact = normalize_code(code)
        if compact is None:
            raise _pairing_refused(ReasonCode.PAIRING_CODE_INVALID, "not a pairing code")
        public_key = normalize_public_key(signer.alg, signer.public_key)
        _refuse_during_global_freeze(self._rt)
        now = self._rt.now()
        device_id = new_id("cred")
        with self._rt.store.db.unit():
            self._gate()
            claimed = self._store.claim_code(code_hash(compact), now=now, device_id=device_id)
            if claimed == "invalid":
                raise _pairing_refused(ReasonCode.PAIRING_CODE_INVALID, "unknown pairing code")
            if claimed == "expired":
                raise _pairing_refused(ReasonCode.PAIRING_CODE_EXPIRED, "the code has expired")
            if claimed == "used":
                raise _pairing_refused(ReasonCode.PAIRING_CODE_USED, "the code was used already")
            self._add(
                device_id=device_id,
                wallet_id=claimed.wallet_id,
                public_key=public_key,
                alg=signer.alg,
                label=label,
                paired_via="code",
                paired_by=claimed.created_by,
                now=now,
                expires_at=now + claimed.device_ttl_s,
            )
        device = self._store.get(device_id)
        assert device is not None
        return device_view(device, now)

    def register_signed(
        self, caller: Caller, signer: SelfSigned, *, expires_at: int | None
    ) -> CredentialView:
        """The root owner credential registers the device key it signed (in its request's
        body); the device expires at ``expires_at`` or after the default lifetime."""
        wallet = self._require_root(caller)
        now = self._rt.now()
        ttl = self._device_ttl(None if expires_at is None else expires_at - now)
        _refuse_during_global_freeze(self._rt)
        device_id = new_id("cred")
        with self._rt.store.db.unit():
            self._gate()
            record = self._add(
                device_id=device_id,
                wallet_id=wallet,
                public_key=normalize_public_key(signer.alg, signer.public_key),
                alg=signer.alg,
                label=None,
                paired_via="signature",
                paired_by=caller.credential_id,
                now=now,
                expires_at=now + ttl,
            )
        return record

    def _add(
        self,
        *,
        device_id: str,
        wallet_id: str,
        public_key: str,
        alg: str,
        label: str | None,
        paired_via: PairedVia,
        paired_by: str,
        now: int,
        expires_at: int,
    ) -> CredentialView:
        """Inside a unit: the wallet's device changes serialised, the limit checked, the
        device and its audit record written."""
        self._store.lock_wallet(wallet_id)
        if self._store.live_count(wallet_id, now) >= MAX_LIVE_DEVICES:
            raise conflict(
                ReasonCode.DEVICE_LIMIT_REACHED,
                f"the wallet has {MAX_LIVE_DEVICES} live devices: revoke one first",
            )
        try:
            record = self._store.add(
                credential_id=device_id,
                wallet_id=wallet_id,
                alg=alg,
                public_key=public_key,
                label=label,
                paired_via=paired_via,
                paired_by=paired_by,
                now=now,
                expires_at=expires_at,
            )
        except AlreadyExists:
            raise conflict(ReasonCode.INPUT_MALFORMED, "credential id collision; retry") from None
        self._rt.store.audit.append(
            wallet_id,
            "device.paired",
            {"credential": device_id, "via": paired_via, "by": paired_by, "expiresAt": expires_at},
            at=now,
        )
        return credential_view(record)

    # --- review and revoke --------------------------------------------------------------

    def list(
        self, caller: Caller, *, wallet_id: str, cursor: str | None, limit: int
    ) -> Page[DeviceView]:
        """The wallet's devices (revoked and expired ones too), oldest first, by cursor. Any
        live owner credential of the wallet may read them."""
        caller.require_owner_of(wallet_id)
        if not 1 <= limit <= MAX_PAGE:
            raise invalid(ReasonCode.INPUT_MALFORMED, f"limit must be between 1 and {MAX_PAGE}")
        after = None if cursor is None else _cursor_id(cursor)
        found = self._store.page(wallet_id, after=after, limit=limit + 1)
        now = self._rt.now()
        items = [device_view(d, now) for d in found[:limit]]
        more = len(found) > limit
        next_cursor = (
            base64.urlsafe_b64encode(items[-1]["credentialId"].encode()).decode("ascii")
            if more
            else None
        )
        return {"items": items, "nextCursor": next_cursor}

    def revoke(
        self, caller: Caller, *, wallet_id: str, device_id: str, reason: str | None
    ) -> DeviceView:
        """Revoke a device of ``wallet_id``: by the wallet's root owner credential, or by the
        device itself (signing out). Idempotent for an already revoked device."""
        caller.require_owner_of(wallet_id)
        device = self._store.get(device_id)
        if device is None or device.wallet_id != wallet_id:
            raise not_found("device", ReasonCode.DEVICE_UNKNOWN)
        if caller.credential_id != device_id and self._store.is_device(caller.credential_id):
            raise forbidden("only the wallet's owner key revokes another device")
        now = self._rt.now()
        with self._rt.store.db.unit(durable=True):  # answered revoked = revoked, power cut or not
            revoked = self._rt.store.credentials.revoke(
                device_id, reason=reason or "revoked by the owner", now=now
            )
            if revoked:
                self._rt.store.audit.append(
                    wallet_id,
                    "device.revoked",
                    {"credential": device_id, "by": caller.credential_id},
                    at=now,
                )
        fresh = self._store.get(device_id)
        assert fresh is not None
        return device_view(fresh, now)


def _cursor_id(cursor: str) -> str:
    try:
        if not _CURSOR.match(cursor):
            raise ValueError
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise invalid(ReasonCode.INPUT_MALFORMED, "cursor is not one this service issued") from None
