"""Request authentication (docs/protocol.md section 3): who is calling, proven by the
``Oms-Wallet-Signature`` header over the raw request.

Two kinds of signer:

- a registered credential (``cred="<credentialId>"``): its key comes from the store. A revoked
  or expired credential still authenticates (the :class:`Caller` says so), so that the policy
  path can refuse *and record* its attempts; the service refuses it everywhere else.
- a key not registered yet (``cred="self"``): its key is the body's ``alg``/``publicKey``, so a
  valid signature is proof of possession (a backend registering, an owner creating a wallet).
  Its nonces are remembered under ``self:<address>`` (secp256k1) or ``self:p256:<sha256 of the
  key>`` (P-256, whose hex key would not fit the nonce table's key column).

The header must appear once (:func:`single_header`); its syntax errors answer 400, every
other refusal 401. Verification is :func:`sessionward.crypto.request_signature.verify_request` (the header
is parsed once, to route on its ``cred``) over the raw body bytes and the raw path with query,
with the configured window; nonces go to the service's replay store (shared SQL), so a nonce is
accepted once per credential across every node.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from starlette.datastructures import Headers

from sessionward.crypto.request_signature import (
    ALG_SECP256K1,
    CredentialKey,
    ReplayStore,
    RequestAuthError,
    SignatureHeader,
    parse_signature_header,
    verify_request,
)
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.credentials import RegisteredSigner, credential_key, normalize_public_key
from sessionward.service.errors import ServiceError
from sessionward.service.idempotency import IdempotentRequests
from sessionward.service.waas import Waas

from .errors import ApiError, invalid, unauthorized
from .rate_limit import RateLimiter, RateLimits

SELF: Final = "self"

AuthMode = Literal["public", "self", "self_or_credential", "credential"]
"""``public``: no signature; ``self``: only ``cred="self"``; ``self_or_credential``: either;
``credential``: a registered credential."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated request's signer. ``subject`` scopes nonces and idempotency keys.
    ``key_claimed``: the request's ``Idempotency-Key`` was claimed for it with its nonce
    (:class:`KeyToClaim`)."""

    subject: str
    caller: Caller | None = None
    self_signed: SelfSigned | None = None
    key_claimed: bool = False

    def registered(self) -> Caller:
        if self.caller is None:  # the method table guarantees it; fail closed regardless
            raise unauthorized(ReasonCode.CREDENTIAL_UNKNOWN, "a registered credential is needed")
        return self.caller

    def self_key(self) -> SelfSigned:
        if self.self_signed is None:
            raise unauthorized(ReasonCode.SIGNATURE_INVALID, 'this method is signed cred="self"')
        return self.self_signed


PUBLIC: Final = Principal(subject="public")


@dataclass(frozen=True, slots=True)
class KeyToClaim:
    """A request's well-formed ``Idempotency-Key``, to be claimed for it in the statement that
    records its nonce (one round trip less on PostgreSQL): the claim is made only once the
    signature has verified and the request has been admitted (as the nonce is), and only if
    the nonce is fresh, so a forged, replayed or rate-limited request claims nothing. Only
    for a registered credential on a method it may call (no refusal comes between its nonce
    and its claim); otherwise the key is claimed after authentication, as before."""

    key: str
    method: str
    body: bytes


class _NonceWithClaim:
    """A replay store view that records the nonce and claims :class:`KeyToClaim` with it
    (:meth:`sessionward.service.idempotency.IdempotentRequests.remember_nonce_and_claim`);
    ``claimed_by`` is the subject the key was claimed for, if it was."""

    def __init__(self, requests: IdempotentRequests, to_claim: KeyToClaim) -> None:
        self._requests = requests
        self._to_claim = to_claim
        self.claimed_by: str | None = None

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        fresh, claimed = self._requests.remember_nonce_and_claim(
            subject=credential_id,
            nonce=nonce,
            expires_at_ms=expires_at_ms,
            key=self._to_claim.key,
            method=self._to_claim.method,
            body=self._to_claim.body,
        )
        if claimed:
            self.claimed_by = credential_id
        return fresh


class _ReplayUnder:
    """A replay store view that files every nonce under one fixed subject."""

    def __init__(self, inner: ReplayStore, subject: str) -> None:
        self._inner = inner
        self._subject = subject

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        return self._inner.remember(self._subject, nonce, expires_at_ms)


class _Admitted:
    """A replay store view that first admits the request under the rate limits: it is asked
    only once the signature has verified, and before the nonce is recorded, so a request over
    the limit (429) leaves no trace (see :mod:`sessionward.api.rate_limit`)."""

    def __init__(self, inner: ReplayStore, admit: Callable[[], None]) -> None:
        self._inner = inner
        self._admit = admit

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        self._admit()
        return self._inner.remember(credential_id, nonce, expires_at_ms)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Authenticator:
    """Turns a request's signature header into a :class:`Principal` (or a 401/400)."""

    def __init__(self, waas: Waas, *, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._credentials = waas.credentials
        self._replay = waas.request_nonces
        self._idempotency = waas.idempotency
        settings = waas.runtime.settings
        self._window_ms = settings.request_window_s * 1000
        self._replay_ttl_ms = settings.replay_ttl_s * 1000
        self._clock_ms = clock_ms
        self._limiter = (
            RateLimiter(
                RateLimits(
                    per_credential_rps=settings.rate_limit_per_credential_rps,
                    per_owner_rps=settings.rate_limit_per_owner_rps,
                    burst=settings.rate_limit_burst,
                )
            )
            if settings.rate_limit_enabled
            else None
        )

    def refuse_early(self, claimed_credential: str | None) -> None:
        """``429 RATE_LIMITED_REQUESTS`` at once if the registered credential a request names
        (unverified, e.g. :func:`sessionward.api.fairness.claimed_credential`) has no token
        left; takes nothing (:meth:`RateLimiter.refuse_early`). For the event loop: the
        refusal then costs no worker thread, no credential read and no signature check."""
        if self._limiter is not None and claimed_credential is not None:
            self._limiter.refuse_early(signer=claimed_credential)

    def _limited(self, replay: ReplayStore, admit: Callable[[], None]) -> ReplayStore:
        return replay if self._limiter is None else _Admitted(replay, admit)

    def authenticate(
        self,
        mode: AuthMode,
        header: str | None,
        *,
        method: str,
        path_with_query: str,
        body: bytes,
        document: Callable[[], Mapping[str, Any]],
        claim: KeyToClaim | None = None,
    ) -> Principal:
        """Authenticate per ``mode``; ``document`` parses the body (only needed for
        ``cred="self"``, whose key is in the body). ``claim``: the request's Idempotency-Key,
        claimed with its nonce where that is safe (:class:`KeyToClaim`; then
        :attr:`Principal.key_claimed`)."""
        if mode == "public":
            return PUBLIC
        if header is None:
            raise unauthorized(ReasonCode.SIGNATURE_INVALID, "missing Oms-Wallet-Signature header")
        try:
            parsed = parse_signature_header(header)
        except RequestAuthError as exc:
            if exc.code is ReasonCode.INPUT_MALFORMED:  # syntax: the client's bug, not a forgery
                raise invalid(exc.message, reason="request signature") from None
            raise unauthorized(exc.code, exc.message) from None
        if parsed.cred == SELF and mode in ("self", "self_or_credential"):
            return self._self_signed(parsed, method, path_with_query, body, document())
        if parsed.cred == SELF:
            raise unauthorized(
                ReasonCode.CREDENTIAL_UNKNOWN, "this method needs a registered credential"
            )
        return self._registered(parsed, method, path_with_query, body, mode, claim)

    def _verify(
        self,
        header: SignatureHeader,
        method: str,
        path_with_query: str,
        body: bytes,
        lookup: Callable[[str], CredentialKey | None],
        replay: ReplayStore,
    ) -> None:
        try:
            verify_request(
                header,
                method=method,
                path_with_query=path_with_query,
                body=body,
                now_ms=self._clock_ms(),
                lookup=lookup,
                replay=replay,
                window_ms=self._window_ms,
                replay_ttl_ms=self._replay_ttl_ms,
            )
        except RequestAuthError as exc:
            raise unauthorized(exc.code, exc.message) from None

    def _self_signed(
        self,
        header: SignatureHeader,
        method: str,
        path_with_query: str,
        body: bytes,
        doc: Mapping[str, Any],
    ) -> Principal:
        alg, public_key = doc.get("alg"), doc.get("publicKey")
        if not isinstance(alg, str):
            raise invalid('alg: a cred="self" request names its key\'s alg', reason="alg")
        if not isinstance(public_key, str):
            raise invalid(
                'publicKey: a cred="self" request carries its public key', reason="publicKey"
            )
        try:
            normalized = normalize_public_key(alg, public_key)
            key = credential_key(alg, normalized)
        except ServiceError as exc:
            field = "alg" if exc.message.startswith("alg") else "publicKey"
            raise invalid(exc.message, reason=field) from None
        except ValueError as exc:
            raise invalid(f"publicKey: {exc}", reason="publicKey") from None
        subject = _self_subject(alg, normalized)
        self._verify(
            header,
            method,
            path_with_query,
            body,
            lambda _cred: key,
            self._limited(_ReplayUnder(self._replay, subject), lambda: self._admit(subject, None)),
        )
        return Principal(subject=subject, self_signed=SelfSigned(alg, normalized))

    def _registered(
        self,
        header: SignatureHeader,
        method: str,
        path_with_query: str,
        body: bytes,
        mode: AuthMode,
        claim: KeyToClaim | None,
    ) -> Principal:
        if self._limiter is not None:  # a signer already over its rate: refused cheaply
            self._limiter.refuse_early(signer=header.cred)
        # Not for a self-only method: its refusal (403 below) would come after the claim.
        claiming = (
            None if claim is None or mode == "self" else _NonceWithClaim(self._idempotency, claim)
        )
        replay: ReplayStore = self._replay if claiming is None else claiming
        found: list[RegisteredSigner] = []
        missing: list[str] = []

        def lookup(cred: str) -> CredentialKey | None:
            signer = self._credentials.signer(cred)
            if signer is None:
                missing.append(cred)
                return None
            found.append(signer)
            return signer.key  # None if the stored key is unusable: it authenticates nothing

        def admit() -> None:  # the signature verified: ``found`` holds the signer
            caller = found[-1].caller
            owner_wallet = caller.wallet_id if caller.role == "owner" else None
            self._admit(caller.credential_id, owner_wallet)

        try:
            self._verify(
                header, method, path_with_query, body, lookup, self._limited(replay, admit)
            )
        except ApiError:
            # verify_request says SIGNATURE_INVALID for an unknown credential; be exact.
            if missing:
                raise unauthorized(ReasonCode.CREDENTIAL_UNKNOWN, "no such credential") from None
            raise
        caller = found[-1].caller
        if mode == "self":
            raise ApiError(
                403,
                "Forbidden",
                ReasonCode.ROLE_FORBIDDEN,
                'this method is signed by the owner key itself (cred="self")',
            )
        claimed_by = None if claiming is None else claiming.claimed_by
        if claimed_by is not None and claimed_by != caller.credential_id:
            # verify_request files the nonce under the credential it looked up: never another.
            raise RuntimeError("an Idempotency-Key was claimed for another subject")
        return Principal(
            subject=caller.credential_id, caller=caller, key_claimed=claimed_by is not None
        )

    def _admit(self, signer: str, wallet_id: str | None) -> None:
        if self._limiter is not None:
            self._limiter.admit(signer=signer, wallet_id=wallet_id)


def single_header(headers: Headers, name: str) -> str | None:
    """The one value of a header that must appear at most once (400 ``HEADER_REPEATED``
    otherwise): with two ``Oms-Wallet-Signature`` headers a proxy that checks one and a server
    that checks the other would disagree, so neither is trusted."""
    values = headers.getlist(name)
    if len(values) > 1:
        raise ApiError(
            400,
            "InvalidRequest",
            ReasonCode.HEADER_REPEATED,
            f"the {name} header must appear once",
            reason=name,
        )
    return values[0] if values else None


def _self_subject(alg: str, public_key: str) -> str:
    if alg == ALG_SECP256K1:
        return f"{SELF}:{public_key}"
    digest = hashlib.sha256(bytes.fromhex(public_key.removeprefix("0x"))).hexdigest()
    return f"{SELF}:p256:{digest}"
