"""The PKCS#11 vault: session keys generated and kept inside a token (an HSM, or SoftHSM2).

Each session key is a secp256k1 key pair generated *by the token* (``CKM_EC_KEY_PAIR_GEN`` with
``CKA_EC_PARAMS`` naming the curve's OID ``1.3.132.0.10``), stored on it as a private object
that is ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE`` and usable only for signing, with ``CKA_ID``
and ``CKA_LABEL`` set to the key id. The private value never exists outside the token: no call
here reads, wraps or copies it.

Signing is ``CKM_ECDSA`` over the 32-byte digest (the token hashes nothing). The token returns
``r ‖ s`` only; ``s`` is brought into the lower half of the order here and the recovery id is
the one (of two) whose recovered key has the record's address. A signature that recovers to
neither means the record's address does not belong to the token's key (the record was altered):
a security event, as for the local vault's tampered records, and a refusal.

Key state (expiry, disable, destroy) lives in the same :class:`KeyRecordStore` as the local
vault's, so the execution transaction reads and checks it the same way. An HSM-held record has
no ciphertext: its ``ciphertext`` field holds the reference ``pkcs11:<key id>`` (no secret), and
``wrapped_data_key`` and ``nonces`` are empty. Records of one backend are refused by the other.

On revocation (:meth:`Pkcs11Vault.disable`) the key pair is destroyed in the token at once (the
key can never sign again, so nothing is lost), and the record is marked destroyed.

:class:`TokenKeyEncryptionKey` is the other use of a token: the local vault's key-encryption key
kept in it as a non-extractable AES key (the local vault then needs no key file or variable).

The token connection (one logged-in session per module and token, shared by the vaults of a
process, its operations serialised by a lock) is reopened once if the token drops the session.
Errors name the failing PKCS#11 call's error class, never the PIN.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import pkcs11
from coincurve import PublicKey
from cryptography.exceptions import InvalidTag
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from sessionward.crypto.secp256k1 import SECP256K1_N, address_of
from sessionward.reasons import ReasonCode

from .interface import KeyHandle, KeyRecord, KeyRecordStore, VaultRefusal, usable_record
from .key_files import read_private_key_file

SECP256K1_OID: Final = "1.3.132.0.10"
DEFAULT_MODULE: Final = Path("/usr/lib/softhsm/libsofthsm2.so")
"""Debian's SoftHSM2 module (package ``libsofthsm2``)."""
ENV_PIN: Final = "SESSIONWARD_PKCS11_PIN"
ENV_PIN_FILE: Final = "SESSIONWARD_PKCS11_PIN_FILE"
REFERENCE_PREFIX: Final = b"pkcs11:"
_HALF_N: Final = SECP256K1_N // 2
_security_log = logging.getLogger("sessionward.security")
_T = TypeVar("_T")

# The token dropped the session (or the login): reopen and try once more.
_SESSION_LOST: Final = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.UserNotLoggedIn,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
)
# The key's object is not (or no longer) in the token.
_NO_OBJECT: Final = (p11.NoSuchKey, p11.ObjectHandleInvalid, p11.KeyHandleInvalid)


class Pkcs11VaultError(Exception):
    """The token cannot be used: module, token, PIN or a failing call (never the PIN's value)."""


@dataclass(frozen=True, slots=True)
class TokenOptions:
    """Which token to use. ``token_label`` wins over ``slot`` (a slot id); with neither, the
    module must have exactly one initialised token."""

    module: Path = DEFAULT_MODULE
    token_label: str | None = None
    slot: int | None = None


def load_pin(environ: Mapping[str, str] | None = None, *, pin_file: Path | None = None) -> str:
    """The token's user PIN: ``$SESSIONWARD_PKCS11_PIN``, else the file ``pin_file`` (or
    ``$SESSIONWARD_PKCS11_PIN_FILE``), which must be a regular file only its owner can read
    (:mod:`sessionward.vault.key_files`). Raises :class:`Pkcs11VaultError` without either."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_PIN)
    if value:
        return value
    named = pin_file or (Path(env[ENV_PIN_FILE]) if env.get(ENV_PIN_FILE) else None)
    if named is None:
        raise Pkcs11VaultError(f"no PKCS#11 PIN: set {ENV_PIN} or a PIN file ({ENV_PIN_FILE})")
    pin = read_private_key_file(named, error=Pkcs11VaultError).strip()
    if not pin:
        raise Pkcs11VaultError(f"the PIN file {named} is empty")
    return pin


# ------------------------------------------------------------------------------------ token


class TokenConnection:
    """One logged-in read-write session on a token, shared by every vault of the process that
    uses the same module and token (PKCS#11 login state is per application: a second login
    fails and a logout would log every session out). Operations run one at a time."""

    def __init__(self, lib: Any, token: Any, pin: str) -> None:
        self._lib = lib
        self._token = token
        self._pin_digest = hashlib.sha256(pin.encode()).digest()
        self._pin = pin
        self._lock = threading.RLock()
        self._keys: dict[str, Any] = {}
        self._users = 0
        self._session: Any = None
        self.label: str = token.label

    def __repr__(self) -> str:
        return f"TokenConnection(token={self.label!r})"

    def same_pin(self, pin: str) -> bool:
        return hmac.compare_digest(self._pin_digest, hashlib.sha256(pin.encode()).digest())

    def _open(self) -> Any:
        try:
            return self._token.open(rw=True, user_pin=self._pin)
        except p11.UserAlreadyLoggedIn:
            return self._token.open(rw=True)  # logged in by another session of this process
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise Pkcs11VaultError(f"the PIN of token {self.label!r} was refused") from None
        except p11.PinLocked:
            raise Pkcs11VaultError(f"the user PIN of token {self.label!r} is locked") from None
        except p11.PKCS11Error as exc:
            raise Pkcs11VaultError(
                f"cannot open a session on token {self.label!r}: {type(exc).__name__}"
            ) from None

    @property
    def idle(self) -> bool:
        """No vault uses it (its session is closed)."""
        return self._users <= 0

    def acquire(self) -> None:
        with self._lock:
            if self._session is None:
                self._session = self._open()
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._session is not None:
                session, self._session = self._session, None
                self._keys.clear()
                with contextlib.suppress(p11.PKCS11Error):  # a token gone has nothing to close
                    session.close()

    def run(self, operation: Callable[[Any], _T]) -> _T:
        """``operation(session)`` under the lock; a lost session is reopened once."""
        with self._lock:
            for attempt in (1, 2):
                if self._session is None:
                    self._session = self._open()
                try:
                    return operation(self._session)
                except _SESSION_LOST as exc:
                    self._session, self._keys = None, {}
                    if attempt == 2:
                        raise Pkcs11VaultError(
                            f"token {self.label!r} keeps dropping the session: {type(exc).__name__}"
                        ) from None
            raise AssertionError("unreachable")

    def private_key(self, session: Any, key_id: str) -> Any:
        """The signing key object of ``key_id`` (cached; raises ``NoSuchKey``)."""
        return self.cached(
            key_id,
            lambda: session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id.encode()),
        )

    def cached(self, name: str, find: Callable[[], Any]) -> Any:
        """The object cached under ``name`` for the current session, else ``find()``'s."""
        found = self._keys.get(name)
        if found is None:
            found = find()
            if len(self._keys) >= 4096:
                self._keys.clear()
            self._keys[name] = found
        return found

    def forget(self, key_id: str) -> None:
        self._keys.pop(key_id, None)


_connections: dict[tuple[str, int], TokenConnection] = {}
_connections_lock = threading.Lock()


def connect(options: TokenOptions, pin: str) -> TokenConnection:
    """The process's connection to the token ``options`` names (made on first use)."""
    module = str(options.module)
    if not Path(module).is_file():
        raise Pkcs11VaultError(f"no PKCS#11 module at {module}")
    try:
        lib = pkcs11.lib(module)
        token = _find_token(lib, options)
    except p11.PKCS11Error as exc:
        raise Pkcs11VaultError(f"cannot use the PKCS#11 module {module}: {exc!r}") from None
    key = (module, int(token.slot.slot_id))
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None or connection.idle:
            connection = TokenConnection(lib, token, pin)
            connection.acquire()  # logs in: a refused PIN leaves nothing registered
            _connections[key] = connection
            return connection
        if not connection.same_pin(pin):
            raise Pkcs11VaultError(
                f"token {connection.label!r} is already open in this process with another PIN"
            )
        connection.acquire()
        return connection


def _find_token(lib: Any, options: TokenOptions) -> Any:
    if options.token_label is not None:
        try:
            return lib.get_token(token_label=options.token_label)
        except p11.NoSuchToken:
            raise Pkcs11VaultError(f"no token labelled {options.token_label!r}") from None
    slots = lib.get_slots(token_present=True)
    if options.slot is not None:
        for slot in slots:
            if int(slot.slot_id) == options.slot:
                return slot.get_token()
        raise Pkcs11VaultError(f"no token in slot {options.slot}")
    tokens = [
        t for t in (s.get_token() for s in slots) if t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED
    ]
    if len(tokens) != 1:
        raise Pkcs11VaultError(f"{len(tokens)} initialised tokens: name one by label or slot")
    return tokens[0]


# ------------------------------------------------------------------------------------ vault


def reference(key_id: str) -> bytes:
    """What an HSM-held record keeps in ``ciphertext``: which token object is the key."""
    return REFERENCE_PREFIX + key_id.encode()


class Pkcs11Vault:
    """A :class:`sessionward.vault.interface.Vault` whose keys live in a PKCS#11 token."""

    def __init__(
        self,
        records: KeyRecordStore,
        connection: TokenConnection,
        *,
        clock: Callable[[], int] | None = None,
        on_tamper: Callable[[str], object] | None = None,
    ) -> None:
        """Use :meth:`open`; ``on_tamper`` as for :class:`~.local.LocalVault`."""
        self._records = records
        self._token = connection
        self._clock = clock or (lambda: int(time.time()))
        self._on_tamper = on_tamper
        self._closed = False

    @classmethod
    def open(
        cls,
        records: KeyRecordStore,
        *,
        options: TokenOptions | None = None,
        pin: str,
        clock: Callable[[], int] | None = None,
        on_tamper: Callable[[str], object] | None = None,
    ) -> Pkcs11Vault:
        """Log in to the token (shared within the process). Raises :class:`Pkcs11VaultError`."""
        connection = connect(options or TokenOptions(), pin)
        return cls(records, connection, clock=clock, on_tamper=on_tamper)

    def close(self) -> None:
        """Stop using the token (the session closes when its last vault closes)."""
        if not self._closed:
            self._closed = True
            self._token.release()

    def __repr__(self) -> str:
        return f"Pkcs11Vault(token={self._token.label!r})"

    # ---------------------------------------------------------------------------- create

    def create_key(self, *, not_after: int | None = None) -> KeyHandle:
        """Generate a secp256k1 key pair in the token and record its id and address."""
        key_id = f"vk_{uuid.uuid4().hex}"
        point = self._token.run(lambda session: _generate(session, key_id))
        address = address_of(_uncompressed_point(point))
        try:
            self._records.add(
                KeyRecord(
                    key_id=key_id,
                    address=address,
                    wrapped_data_key=b"",
                    ciphertext=reference(key_id),
                    nonces=b"",
                    created_at=self._clock(),
                    not_after=not_after,
                )
            )
        except BaseException:
            self._destroy_objects(key_id)  # no record, no key: nothing may sign for it
            raise
        return KeyHandle(key_id, address)

    # ------------------------------------------------------------------------------ sign

    def sign(
        self, key_id: str, digest: bytes, *, now: int, record: KeyRecord | None = None
    ) -> bytes:
        """Sign ``digest`` (32 bytes) in the token: 65 bytes ``r ‖ s ‖ v``, low ``s``.

        Refusals exactly as :meth:`LocalVault.sign <sessionward.vault.local.LocalVault.sign>`
        (``record`` likewise: the caller's fresh read of this key's record), plus
        ``SIGNING_REFUSED`` when the token no longer holds the key, or the record is not an
        HSM record of this key or names an address that is not the token key's.
        """
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        if record is not None and record.key_id != key_id:
            raise ValueError("the record is not the record of this key")
        record = usable_record(self._records, key_id, now, record)
        if record.ciphertext != reference(key_id) or record.wrapped_data_key or record.nonces:
            self._tampered(key_id, "is not the token record of this key")
            raise VaultRefusal(
                ReasonCode.SIGNING_REFUSED, f"key {key_id} is not held by this token"
            )

        def token_sign(session: Any) -> bytes | None:
            try:
                signed: bytes = self._token.private_key(session, key_id).sign(
                    digest, mechanism=Mechanism.ECDSA
                )
            except _NO_OBJECT:
                self._token.forget(key_id)
                return None
            return signed

        try:
            raw = self._token.run(token_sign)
        except p11.PKCS11Error as exc:
            raise Pkcs11VaultError(f"the token failed to sign: {type(exc).__name__}") from None
        if raw is None:
            _security_log.warning(
                "vault key %s has a live record but no key in token %r; signing refused",
                key_id,
                self._token.label,
            )
            raise VaultRefusal(ReasonCode.SIGNING_REFUSED, f"key {key_id} is not in the token")
        signature = recoverable_signature(raw, digest, record.address)
        if signature is None:
            self._tampered(key_id, "names an address that is not the token key's")
            raise VaultRefusal(
                ReasonCode.SIGNING_REFUSED, f"key {key_id} record does not match the token key"
            )
        return signature

    def _tampered(self, key_id: str, what: str) -> None:
        _security_log.error(
            "SECURITY EVENT: vault record %s %s (altered at rest); signing refused", key_id, what
        )
        if self._on_tamper is not None:
            try:
                self._on_tamper(key_id)
            except Exception:  # the refusal stands whatever the alert path does
                _security_log.exception("could not raise the alert for vault record %s", key_id)

    # ------------------------------------------------------------------ disable, destroy

    def disable(self, key_id: str, *, now: int) -> None:
        """Never sign with the key again (idempotent; the first disable time is kept), and
        destroy it in the token. Raises ``KEY_UNKNOWN``.

        The disable is recorded first and stands on its own: if the token cannot destroy the
        key now, that is logged and the record stays disabled but not destroyed (a later
        :meth:`destroy` or disable finishes it); revocation never fails for it."""
        if not self._records.disable(key_id, now=now) and self._records.get(key_id) is None:
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")
        try:
            self._destroy_objects(key_id)
        except Pkcs11VaultError as failure:
            _security_log.error(
                "vault key %s is disabled but could not be destroyed in the token: %s",
                key_id,
                failure,
            )
            return
        self._records.destroy(key_id, now=now)

    def destroy(self, key_id: str) -> None:
        """Destroy the key pair in the token and mark the record destroyed (idempotent).
        Raises ``KEY_UNKNOWN``."""
        if self._records.get(key_id) is None:
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")
        self._destroy_objects(key_id)
        self._records.destroy(key_id, now=self._clock())

    def _destroy_objects(self, key_id: str) -> None:
        def destroy(session: Any) -> None:
            self._token.forget(key_id)
            for obj in list(session.get_objects({Attribute.ID: key_id.encode()})):
                with contextlib.suppress(*_NO_OBJECT):  # destroyed meanwhile: the goal is met
                    obj.destroy()

        try:
            self._token.run(destroy)
        except p11.PKCS11Error as exc:
            raise Pkcs11VaultError(
                f"the token failed to destroy key {key_id}: {type(exc).__name__}"
            ) from None

    def address_of(self, key_id: str) -> str:
        record = self._records.get(key_id)
        if record is None:
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")
        return record.address


# ------------------------------------------------------------------ key-encryption key


DEFAULT_KEK_LABEL: Final = "sessionward-kek"
# What a token answers to a wrapped data key that fails authentication (SoftHSM2 says
# GeneralError): the local vault treats these as a record altered at rest.
_UNWRAP_REFUSED: Final = (
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.DataInvalid,
    p11.DataLenRange,
)


class TokenKeyEncryptionKey:
    """The local vault's key-encryption key as an AES-256 key in the token (``CKA_SENSITIVE``,
    not extractable, encrypt/decrypt only): the token wraps and unwraps every data key with
    ``CKM_AES_GCM`` (the same nonce, associated data and 16-byte tag as the file KEK, so the
    records look alike). The KEK itself never leaves the token; a data key is in process memory
    only while the local vault signs, as with the file KEK."""

    def __init__(self, connection: TokenConnection, label: str) -> None:
        """Use :meth:`open`."""
        self._token = connection
        self._label = label
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        options: TokenOptions | None = None,
        pin: str,
        label: str = DEFAULT_KEK_LABEL,
        create: bool = True,
    ) -> TokenKeyEncryptionKey:
        """The AES key labelled ``label`` in the token, generated there first if it is missing
        and ``create`` (make it once, before several nodes start). Raises
        :class:`Pkcs11VaultError`."""
        kek = cls(connect(options or TokenOptions(), pin), label)
        try:
            kek._token.run(lambda session: kek._key(session, create=create))
        except BaseException:
            kek.close()
            raise
        return kek

    @property
    def label(self) -> str:
        """The AES key's ``CKA_LABEL`` in the token."""
        return self._label

    def __repr__(self) -> str:
        return f"TokenKeyEncryptionKey(token={self._token.label!r}, label={self._label!r})"

    __str__ = __repr__

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._token.release()

    def _key(self, session: Any, *, create: bool = False) -> Any:
        def find() -> Any:
            try:
                return session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self._label
                )
            except p11.NoSuchKey:
                if not create:
                    raise Pkcs11VaultError(
                        f"no key-encryption key labelled {self._label!r} in the token"
                    ) from None
            except p11.MultipleObjectsReturned:
                raise Pkcs11VaultError(
                    f"several keys labelled {self._label!r} in the token"
                ) from None
            return session.generate_key(
                KeyType.AES,
                256,
                label=self._label,
                store=True,
                capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                },
            )

        return self._token.cached(f"kek:{self._label}", find)

    def wrap(self, nonce: bytes, data_key: bytes, associated_data: bytes) -> bytes:
        """Encrypt a data key in the token (AES-256-GCM) bound to ``associated_data``."""
        params = GCMParams(nonce, associated_data)

        def encrypt(session: Any) -> bytes:
            wrapped: bytes = self._key(session).encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
            return wrapped

        try:
            return self._token.run(encrypt)
        except p11.PKCS11Error as exc:
            raise Pkcs11VaultError(f"the token failed to wrap: {type(exc).__name__}") from None

    def unwrap_into(
        self, nonce: bytes, wrapped: bytes, associated_data: bytes, buffer: bytearray
    ) -> None:
        """Decrypt a wrapped data key in the token into ``buffer``.

        Raises ``cryptography.exceptions.InvalidTag`` if the token refuses it (altered)."""
        params = GCMParams(nonce, associated_data)

        def decrypt(session: Any) -> bytes | None:
            try:
                plain: bytes = self._key(session).decrypt(
                    wrapped, mechanism=Mechanism.AES_GCM, mechanism_param=params
                )
            except _UNWRAP_REFUSED:
                return None
            return plain

        try:
            plain = self._token.run(decrypt)
        except p11.PKCS11Error as exc:
            raise Pkcs11VaultError(f"the token failed to unwrap: {type(exc).__name__}") from None
        if plain is None or len(plain) != len(buffer):
            raise InvalidTag()
        buffer[:] = plain


def _generate(session: Any, key_id: str) -> bytes:
    """Generate the key pair in the token; returns the public key's ``CKA_EC_POINT``."""
    params = encode_named_curve_parameters(SECP256K1_OID)
    try:
        public, _private = session.generate_keypair(
            KeyType.EC,
            id=key_id.encode(),
            label=key_id,
            store=True,
            capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
            public_template={Attribute.EC_PARAMS: params, Attribute.VERIFY: True},
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DERIVE: False,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
            },
        )
    except _SESSION_LOST:
        raise
    except p11.PKCS11Error as exc:
        raise Pkcs11VaultError(
            f"the token failed to generate a key: {type(exc).__name__}"
        ) from None
    point: bytes = public[Attribute.EC_POINT]
    return point


def _uncompressed_point(ec_point: bytes) -> bytes:
    """``04 ‖ x ‖ y`` from ``CKA_EC_POINT`` (a DER OCTET STRING, or raw as some tokens give)."""
    if len(ec_point) == 67 and ec_point[:2] == b"\x04\x41":
        ec_point = ec_point[2:]
    if len(ec_point) != 65 or ec_point[0] != 4:
        raise Pkcs11VaultError("the token returned a public key that is not an EC point")
    return ec_point


def recoverable_signature(raw: bytes, digest: bytes, address: str) -> bytes | None:
    """``r ‖ s ‖ v`` from the token's ``r ‖ s``: ``s`` made low, ``v`` (27/28) the recovery id
    whose recovered key has ``address``; None if neither does (or ``raw`` is malformed)."""
    if len(raw) != 64:
        return None
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        return None
    if s > _HALF_N:
        s = SECP256K1_N - s
    body = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for recovery_id in (0, 1):
        try:
            public = PublicKey.from_signature_and_message(
                body + bytes([recovery_id]), digest, hasher=None
            )
        except Exception:  # no point for this recovery id
            continue
        if address_of(public.format(compressed=False)) == address:
            return body + bytes([27 + recovery_id])
    return None
