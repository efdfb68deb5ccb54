"""Sessions: AuthorizeRemoteAccess, ApproveSession, and the reads (GetSession, ListSessions,
ListAccess, GetSessionUsage).

The lifecycle is :mod:`sessionward.store.sessions`'s. ApproveSession is one durable unit of
work: ``pending_approval → installing``, its audit record and the install job for the relayer
commit together or not at all; the chain is asked (the account's epoch, an ERC-1271 owner, the
install's gas estimate) before, and an outage answers ``unavailable`` (503) with nothing
written. The session becomes ``active`` only when the reconciler sees it installed on chain.
During a global freeze no new authority is granted: AuthorizeRemoteAccess, ApproveSession (and
renewal) are refused with ``GLOBAL_FREEZE`` and no install is queued (the reconciler holds
queued installs too).

Wire status: ``status`` keeps the vocabulary clients know (``pending`` = pending approval or
installing, ``active``, ``suspended``, ``revoked`` = revoking or revoked, plus ``expired``);
``lifecycle`` gives the exact state. A suspended session carries ``renewal``: the
``SessionRenewal`` typed data the owner signs to re-activate it (a fresh act with its own nonce).

A session's scope is compiled from its stored envelope with the catalog at grant time
(:func:`sessionward.domain.grant.validate_grant` with ``now = created_at``) and checked against
the grant digest the owner signed, so what is enforced is exactly what was signed; compiled
scopes are cached per process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, NotRequired, TypedDict

from sessionward.chain.erc1271 import ChainErc1271Checker
from sessionward.chain.errors import ChainError, ExecutionReverted
from sessionward.crypto.owner_signature import verify_owner_signature
from sessionward.crypto.secp256k1 import SignatureError
from sessionward.crypto.typed_data import (
    credential_hash,
    grant_digest,
    renewal_digest,
    renewal_message,
    typed_data_document,
)
from sessionward.domain.decision import GrantRefused
from sessionward.domain.envelope import Envelope, EnvelopeMalformed
from sessionward.domain.grant import Scope, enable_storage_words, validate_grant
from sessionward.domain.policy import SessionStatus, SessionView
from sessionward.domain.summary import summarize
from sessionward.domain.usage import FEE, NATIVE, RATE, USD, USES, token_bucket, window_index
from sessionward.domain.wire_types import WIRE_STATUS
from sessionward.reasons import ReasonCode
from sessionward.store.credentials import CredentialRecord
from sessionward.store.sessions import SessionRecord
from sessionward.store.wallets import WalletRecord

from .callers import Caller, CredentialState
from .errors import ServiceError, conflict, invalid, not_found, unavailable
from .ids import new_id
from .onchain import EnableTooCostly, enable_gas_limit, queue_relay_job, revert_code
from .pages import Page, keyset_page
from .runtime import Runtime

# The policy engine's view of each lifecycle state. ``installing`` is not usable yet (the chain
# has not shown it installed); ``expired`` is left to the engine's window check, which refuses
# it with SESSION_EXPIRED (the reservation refuses any status but ``active`` in any case).
_DOMAIN_STATUS: Final[dict[str, SessionStatus]] = {
    "pending_approval": SessionStatus.PENDING,
    "installing": SessionStatus.PENDING,
    "active": SessionStatus.ACTIVE,
    "suspended": SessionStatus.SUSPENDED,
    "revoking": SessionStatus.REVOKED,
    "revoked": SessionStatus.REVOKED,
    "expired": SessionStatus.ACTIVE,
}


class RenewalView(TypedDict):
    """What the owner signs to renew a suspended session."""

    typedData: dict[str, Any]
    digest: str


class PendingSessionView(TypedDict):
    sessionId: str
    status: str
    sessionKey: str
    summary: str
    grant: dict[str, Any]
    grantDigest: str
    expiresAt: int


class SessionDetail(TypedDict):
    sessionId: str
    walletId: str
    credentialId: str
    account: str
    chainId: int
    sessionKey: str
    status: str
    summary: str
    envelope: dict[str, Any]
    actionClasses: list[str]
    createdAt: int
    approvedAt: int | None
    validAfter: int
    expiresAt: int
    revokedAt: int | None
    revokedBy: str | None
    revokeReason: str | None
    onchainEnabledAt: int | None
    onchainRevokedAt: int | None
    lifecycle: str
    renewal: NotRequired[RenewalView]
    grant: NotRequired[dict[str, Any]]
    """While pending approval: the EIP-712 grant document to sign (as AuthorizeRemoteAccess
    answered it), so that an approval page opened later can show and have it signed."""
    grantDigest: NotRequired[str]
    owner: NotRequired[str]
    """While pending approval: the wallet's owner address, the only signer ApproveSession
    accepts (with ``ownerKind``: ``eoa`` or ``erc1271``)."""
    ownerKind: NotRequired[str]


class LimitUsage(TypedDict):
    limit: str
    bucket: str
    spent: str
    max: str
    window: int


class UsageView(TypedDict):
    sessionId: str
    limits: list[LimitUsage]


class SessionDirectory:
    """Loading sessions with everything that can stop them, as the policy engine sees them."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._scopes: dict[str, Scope] = {}
        self._lock = threading.Lock()
        self._pinned = threading.local()
        self._identities: dict[str, WalletRecord] = {}

    def record(self, session_id: str) -> SessionRecord:
        """The session as stored now; inside :meth:`pinned` the record this thread pinned."""
        pinned: SessionRecord | None = getattr(self._pinned, "record", None)
        if pinned is not None and pinned.id == session_id:
            self._pinned.record = None  # once: a later read (e.g. after a suspend) is fresh
            return pinned
        record = self._rt.store.sessions.get(session_id)
        if record is None:
            raise ServiceError("not_found", ReasonCode.SESSION_UNKNOWN, "session not found")
        return record

    @contextmanager
    def pinned(self, record: SessionRecord) -> Iterator[None]:
        """Within the block, the next :meth:`record` of its id on this thread returns ``record``.

        For listeners run right after a use case that has just loaded the session (the anomaly
        monitor reads the session's scope, which never changes for a session id): they then do
        not read the same row again. Anything that needs the session's *current* state reads it
        from the store directly or inside its own transaction.
        """
        previous = getattr(self._pinned, "record", None)
        self._pinned.record = record
        try:
            yield
        finally:
            self._pinned.record = previous

    def wallet(self, wallet_id: str) -> WalletRecord:
        """The wallet as stored now (including its ``frozen_at``)."""
        wallet = self._rt.store.wallets.get(wallet_id)
        if wallet is None:
            raise not_found("wallet", ReasonCode.WALLET_UNKNOWN)
        with self._lock:
            if len(self._identities) > 10_000:
                self._identities.clear()
            self._identities[wallet.id] = wallet
        return wallet

    def wallet_identity(self, wallet_id: str) -> WalletRecord:
        """The wallet as read at some point by this process: use ONLY its immutable fields
        (``id``, ``chain_id``, ``account``, ``owner``, ``owner_kind``). Its ``frozen_at`` may be
        stale; freezes are read fresh by :meth:`view` and re-checked inside the execution
        transaction (:meth:`sessionward.store.budget.Budget.reserve_in`)."""
        cached = self._identities.get(wallet_id)
        return cached if cached is not None else self.wallet(wallet_id)

    def scope(self, record: SessionRecord) -> Scope:
        """The compiled scope of a session (cached; verified against the signed digest)."""
        cached = self._scopes.get(record.id)
        if cached is not None:
            return cached
        wallet = self.wallet_identity(record.wallet_id)
        grant = json.loads(record.grant)
        envelope = Envelope.from_json(json.loads(record.envelope))
        scope = validate_grant(
            envelope,
            catalog=self._rt.catalog,
            account=wallet.account,
            chain_id=wallet.chain_id,
            now=record.created_at,
            session_key=record.session_key_address,
        )
        message = grant_message(scope, record, grant["revoker"])
        if "0x" + grant_digest(wallet.chain_id, wallet.account, message).hex() != grant["digest"]:
            raise ServiceError(
                "conflict",
                ReasonCode.SESSION_REVOKED,
                "the catalog changed since this grant: ask the owner again",
            )
        with self._lock:
            if len(self._scopes) > 10_000:
                self._scopes.clear()
            self._scopes[record.id] = scope
        return scope

    def view(
        self,
        record: SessionRecord,
        *,
        now: int,
        caller: Caller | None = None,
        wallet_read: WalletRecord | None = None,
    ) -> SessionView:
        """The session with its credential, wallet and freeze state, read now.

        ``caller``, when it is the session's own credential and carries the credential's state
        as read with its request, saves reading that credential again (inside one unit of work
        it is the same read; outside, a revocation committed in between is still refused by the
        reservation, which checks the credential in the execution transaction).
        ``wallet_read``: a wallet the caller read in the same unit of work; used only when it
        is the session's own (a request may name another), else the session's is read."""
        credential: CredentialState | CredentialRecord | None
        if (
            caller is not None
            and caller.credential_id == record.credential_id
            and caller.state is not None
        ):
            credential = caller.state
        else:
            credential = self._rt.store.credentials.get(record.credential_id)
        if wallet_read is not None and wallet_read.id == record.wallet_id:
            wallet = wallet_read
        else:
            wallet = self.wallet(record.wallet_id)
        frozen_classes: set[str] = set()
        global_freeze = False
        wallet_frozen = wallet.frozen_at is not None
        credential_frozen = False
        session_frozen = False
        for freeze in self._rt.store.freezes.active():
            if freeze.scope == "global":
                global_freeze = True
            elif freeze.scope == "wallet" and freeze.target == wallet.id:
                wallet_frozen = True
            elif freeze.scope == "credential" and freeze.target == record.credential_id:
                credential_frozen = True
            elif freeze.scope == "session" and freeze.target == record.id:
                session_frozen = True
            elif freeze.scope == "action_class" and freeze.target:
                frozen_classes.add(freeze.target)
        status = _DOMAIN_STATUS[record.status]
        if session_frozen and status is SessionStatus.ACTIVE:
            status = SessionStatus.SUSPENDED
        return SessionView(
            session_id=record.id,
            scope=self.scope(record),
            status=status,
            credential_expires_at=credential.expires_at if credential else None,
            credential_revoked=credential is None
            or credential.revoked_at is not None
            or credential_frozen,
            wallet_frozen=wallet_frozen,
            global_freeze=global_freeze,
            frozen_action_classes=frozenset(frozen_classes),
        )


def _session_id(record: SessionRecord) -> str:
    return record.id


def install_job_id(session_id: str, attempt: int = 1) -> str:
    """The relay job id of a session's install: ``enable:<session>`` (``#<n>`` after the first
    attempt, e.g. when a global freeze held the first one)."""
    return f"enable:{session_id}" if attempt == 1 else f"enable:{session_id}#{attempt}"


def _not_pending_code(record: SessionRecord) -> ReasonCode:
    if record.status in ("revoking", "revoked"):
        return ReasonCode.SESSION_REVOKED
    if record.status == "expired":
        return ReasonCode.SESSION_EXPIRED
    return ReasonCode.SESSION_NOT_PENDING


def _not_pending(record: SessionRecord) -> str:
    return (
        f"the session is {record.status}: only a session pending approval, or a suspended "
        "one with its renewal, can be approved"
    )


def grant_message(scope: Scope, record: SessionRecord, revoker: str) -> dict[str, Any]:
    return scope.grant_message(
        credential=credential_hash(record.credential_id),
        nonce=record.grant_nonce,
        epoch=record.epoch,
        revoker=revoker,
    )


def renewal_view(record: SessionRecord, wallet: WalletRecord) -> RenewalView | None:
    """The ``SessionRenewal`` the owner must sign, while a renewal is open (suspended)."""
    if record.status != "suspended" or record.renewal_nonce is None:
        return None
    message = _renewal(record, wallet)
    return {
        "typedData": typed_data_document(
            "SessionRenewal", wallet.chain_id, wallet.account, message
        ),
        "digest": "0x" + renewal_digest(wallet.chain_id, wallet.account, message).hex(),
    }


def _renewal(record: SessionRecord, wallet: WalletRecord) -> dict[str, Any]:
    assert record.renewal_nonce is not None
    digest = bytes.fromhex(json.loads(record.grant)["digest"][2:])
    return renewal_message(wallet.account, record.session_key_address, digest, record.renewal_nonce)


def global_freeze_in_force(rt: Runtime) -> bool:
    """Whether a global freeze is in force (read now; inside a unit of work, in its view)."""
    return any(f.scope == "global" for f in rt.store.freezes.active())


def refuse_during_global_freeze(rt: Runtime) -> None:
    """No new authority while a global freeze is in force (``GLOBAL_FREEZE``)."""
    if global_freeze_in_force(rt):
        raise conflict(
            ReasonCode.GLOBAL_FREEZE,
            "a global freeze is in force: no session can be authorized, approved or renewed",
        )


def session_detail(record: SessionRecord, wallet: WalletRecord, summary: str) -> SessionDetail:
    detail: SessionDetail = {
        "sessionId": record.id,
        "walletId": record.wallet_id,
        "credentialId": record.credential_id,
        "account": wallet.account,
        "chainId": wallet.chain_id,
        "sessionKey": record.session_key_address,
        "status": WIRE_STATUS[record.status],
        "summary": summary,
        "envelope": json.loads(record.envelope),
        "actionClasses": list(record.action_classes),
        "createdAt": record.created_at,
        "approvedAt": record.approved_at,
        "validAfter": record.valid_after,
        "expiresAt": record.expires_at,
        "revokedAt": record.revoked_at,
        "revokedBy": record.revoked_by,
        "revokeReason": record.revoke_reason,
        "onchainEnabledAt": record.onchain_enabled_at,
        "onchainRevokedAt": record.onchain_revoked_at,
        "lifecycle": record.status,
    }
    renewal = renewal_view(record, wallet)
    if renewal is not None:
        detail["renewal"] = renewal
    if record.status == "pending_approval":
        grant = json.loads(record.grant)
        detail["grant"] = grant["typedData"]
        detail["grantDigest"] = grant["digest"]
        detail["owner"] = wallet.owner
        detail["ownerKind"] = wallet.owner_kind
    return detail


class Sessions:
    """The session use cases."""

    def __init__(self, rt: Runtime, directory: SessionDirectory) -> None:
        self._rt = rt
        self._dir = directory
        self._erc1271: dict[int, ChainErc1271Checker] = {}  # per chain id
        # (session id, app name) -> plain-language summary: a function of the session's
        # immutable scope, the app's name and the catalog, so a list page re-reads none.
        self._summaries: dict[tuple[str, str, str | None], str] = {}

    # --- AuthorizeRemoteAccess ------------------------------------------------------------

    def authorize(
        self,
        caller: Caller,
        *,
        credential_id: str,
        wallet_id: str,
        envelope: Mapping[str, Any],
        network: str | int | None = None,
    ) -> PendingSessionView:
        """Validate the envelope, make the session key in the vault, and return the grant the
        owner must sign. Nothing is active until :meth:`approve`. ``network`` (name or chain
        id), when given, must be the wallet's (``CHAIN_MISMATCH``, ``NETWORK_UNKNOWN``;
        nothing is written): the grant's EIP-712 domain and its revoker are that network's."""
        caller.require_owner_of(wallet_id)
        rt = self._rt
        refuse_during_global_freeze(rt)
        now = rt.now()
        wallet = self._dir.wallet(wallet_id)
        net = rt.for_wallet(wallet.chain_id, network)
        credential = self._backend(credential_id, now)
        try:
            parsed = Envelope.from_json(envelope)
        except EnvelopeMalformed as exc:
            raise invalid(exc.code, exc.message) from None
        # With the price source, the USD cap is also written as token and native limits at
        # today's prices: the owner reads them in the summary and signs them (issue 12.3).
        check = dict(
            catalog=rt.catalog,
            account=wallet.account,
            chain_id=wallet.chain_id,
            now=now,
            prices=rt.prices,
        )
        try:
            validate_grant(parsed, credential_expires_at=credential.expires_at, **check)  # type: ignore[arg-type]
        except GrantRefused as refused:
            raise ServiceError(
                "invalid", refused.code, refused.message, violations=refused.violations
            ) from None
        epoch = self._epoch(net, wallet)  # before the key: a chain error leaves nothing
        key = rt.vault.create_key(not_after=parsed.expires_at)
        scope = validate_grant(
            parsed,
            credential_expires_at=credential.expires_at,
            session_key=key.address,
            **check,  # type: ignore[arg-type]
        )
        session_id = new_id("ses")
        nonce = self._grant_nonce(wallet.account)
        revoker = net.relayer.address  # the relayer of the wallet's network removes it
        message = scope.grant_message(
            credential=credential_hash(credential_id), nonce=nonce, epoch=epoch, revoker=revoker
        )
        document = typed_data_document("SessionGrant", wallet.chain_id, wallet.account, message)
        digest = "0x" + grant_digest(wallet.chain_id, wallet.account, message).hex()
        summary = summarize(
            scope,
            app_name=credential.app_name or credential.id,
            app_url=credential.app_url,
            catalog=rt.catalog,
        )
        rt.store.sessions.add(
            session_id=session_id,
            wallet_id=wallet_id,
            credential_id=credential_id,
            session_key_id=key.key_id,
            session_key_address=key.address,
            envelope=json.dumps(scope.envelope.to_json(), sort_keys=True),
            grant=json.dumps(
                {"typedData": document, "digest": digest, "revoker": revoker}, sort_keys=True
            ),
            grant_nonce=nonce,
            epoch=epoch,
            action_classes=scope.action_classes,
            valid_after=scope.valid_after,
            expires_at=scope.expires_at,
            now=now,
        )
        rt.store.audit.append(
            wallet_id,
            "session.authorized",
            {
                "session": session_id,
                "credential": credential_id,
                "sessionKey": key.address,
                "grantDigest": digest,
            },
            at=now,
        )
        return {
            "sessionId": session_id,
            "status": "pending",
            "sessionKey": key.address,
            "summary": summary,
            "grant": document,
            "grantDigest": digest,
            "expiresAt": scope.expires_at,
        }

    def _backend(self, credential_id: str, now: int) -> CredentialRecord:
        credential = self._rt.store.credentials.get(credential_id)
        if credential is None or credential.role != "backend":
            raise not_found("credential", ReasonCode.CREDENTIAL_UNKNOWN)
        if credential.revoked_at is not None:
            raise ServiceError(
                "conflict", ReasonCode.CREDENTIAL_REVOKED, "the credential was revoked"
            )
        if credential.expires_at is not None and credential.expires_at <= now:
            raise ServiceError(
                "conflict", ReasonCode.CREDENTIAL_EXPIRED, "the credential has expired"
            )
        return credential

    def _grant_nonce(self, account: str) -> int:
        """A fresh grant nonce for the account: microseconds, bumped until unused, never reused."""
        nonce = time.time_ns() // 1000
        while not self._rt.store.nonces.use_once("grant", account, nonce, None):
            nonce += 1
        return nonce

    def _epoch(self, net: Runtime, wallet: WalletRecord) -> int:
        """The wallet's session epoch on the chain of ``net`` (the wallet's network), as the
        contract holding its sessions says (0 while a SessionAccount is not deployed)."""
        try:
            return net.calls.sessions_of(wallet).epoch(net.chain)
        except ChainError:
            raise unavailable(ReasonCode.CHAIN_UNAVAILABLE, "chain unavailable") from None

    # --- ApproveSession -------------------------------------------------------------------

    def approve(self, caller: Caller, *, session_id: str, signature: bytes) -> SessionDetail:
        """Check the owner's signature over the grant and, in one durable unit of work, move
        the session to ``installing`` with its audit record and its install job. On a session
        an anomaly rule suspended, ``signature`` must be a fresh one over its
        ``SessionRenewal`` (see :meth:`renew`).

        Refusals: ``GLOBAL_FREEZE`` during a global freeze; ``SESSION_REVOKED`` /
        ``SESSION_EXPIRED`` / ``SESSION_NOT_PENDING`` for a session in another state; the
        signature's code for a bad signature; the account's reason code when the enable call's
        gas estimate reverts, ``GRANT_TOO_LARGE`` when it is above the transaction gas cap
        (:meth:`_enable_gas`: the install job carries that estimate); ``CHAIN_UNAVAILABLE``
        (503) when the chain cannot be asked. Nothing is written on any refusal."""
        rt = self._rt
        record = self._dir.record(session_id)
        caller.require_owner_of(record.wallet_id)
        wallet = self._dir.wallet(record.wallet_id)
        refuse_during_global_freeze(rt)
        if record.status == "suspended":
            return self.renew(record, wallet, signature)
        if record.status != "pending_approval":
            raise conflict(_not_pending_code(record), _not_pending(record))
        grant = json.loads(record.grant)
        self._verify_owner(wallet, bytes.fromhex(grant["digest"][2:]), signature)
        net = rt.on(wallet.chain_id)  # installed by the relayer of the wallet's network
        if self._epoch(net, wallet) != record.epoch:
            # The owner revoked every session (epoch bump) since this grant: the chain would
            # refuse the install.
            raise conflict(ReasonCode.SESSION_REVOKED, "the account revoked all sessions since")
        scope = self._dir.scope(record)
        holder = rt.calls.sessions_of(wallet)  # the account, or the module it installed
        data = holder.enable_session(grant_message(scope, record, grant["revoker"]), signature)
        gas_limit = self._enable_gas(net, wallet, scope, data)
        now = rt.now()
        db = rt.store.db
        with db.unit(durable=True):
            with db.reading() as conn:
                db.pass_gate(conn)  # ordered with any freeze (PostgreSQL)
            refuse_during_global_freeze(rt)  # a freeze that began since the check above
            if not rt.store.sessions.approve(session_id, now=now, owner_signature=signature.hex()):
                current = self._dir.record(session_id)
                if current.status == "pending_approval":  # its window closed
                    raise conflict(ReasonCode.SESSION_EXPIRED, "the session has expired")
                raise conflict(_not_pending_code(current), _not_pending(current))
            job = queue_relay_job(
                db,
                sender=net.relayer.address,
                job_id=install_job_id(session_id),
                to=holder.address,
                data=data,
                gas_limit=gas_limit,
            )
            rt.store.audit.append(
                record.wallet_id,
                "session.approved",
                {"session": session_id, "installJob": job.job_id},
                at=now,
            )
        return self.detail(self._dir.record(session_id))

    def _enable_gas(self, rt: Runtime, wallet: WalletRecord, scope: Scope, data: bytes) -> int:
        """The install job's gas limit, estimated now (:func:`enable_gas_limit`), so that no
        grant is queued to fail on chain for want of gas. Refusals, nothing written: the
        account's own reason code (409) when the estimate reverts (``CALL_FAILED_ON_CHAIN``
        for a revert without one), ``GRANT_TOO_LARGE`` (400) above the transaction gas cap,
        ``CHAIN_UNAVAILABLE`` (503) when the node cannot answer. ``rt``: on the wallet's
        network."""
        try:
            return enable_gas_limit(
                rt.chain,
                sender=rt.relayer.address,
                to=rt.calls.sessions_of(wallet).address,
                data=data,
                words=enable_storage_words(scope.token_limits.values(), scope.permissions.values()),
                contract_owner=wallet.owner_kind == "erc1271",
            )
        except ExecutionReverted as exc:
            code = revert_code(exc.reason) or ReasonCode.CALL_FAILED_ON_CHAIN
            raise conflict(code, f"the account would refuse this grant ({code.value})") from None
        except EnableTooCostly as exc:
            raise invalid(exc.code, exc.message) from None
        except ChainError:
            raise unavailable(ReasonCode.CHAIN_UNAVAILABLE, "chain unavailable") from None

    def renew(self, record: SessionRecord, wallet: WalletRecord, signature: bytes) -> SessionDetail:
        """Re-activate a suspended session: ``signature`` must be the owner's over the
        session's ``SessionRenewal`` with the renewal nonce its suspension opened (a fresh act:
        the nonce closes with this renewal). The original grant signature, which anyone can
        read from the chain, is refused with ``NONCE_REPLAYED``; nothing changes then."""
        rt = self._rt
        if record.renewal_nonce is None:
            raise conflict(ReasonCode.SESSION_NOT_PENDING, "no renewal is open for this session")
        grant_digest_bytes = bytes.fromhex(json.loads(record.grant)["digest"][2:])
        if self._is_grant_signature(record, wallet, grant_digest_bytes, signature):
            raise ServiceError(
                "forbidden",
                ReasonCode.NONCE_REPLAYED,
                "the grant signature cannot renew a session: sign its SessionRenewal",
            )
        message = _renewal(record, wallet)
        digest = renewal_digest(wallet.chain_id, wallet.account, message)
        self._verify_owner(wallet, digest, signature)
        now = rt.now()
        db = rt.store.db
        with db.unit(durable=True):
            with db.reading() as conn:
                db.pass_gate(conn)
            refuse_during_global_freeze(rt)
            nonce = record.renewal_nonce
            if not rt.store.nonces.use_once("renewal", wallet.account, nonce, None):
                raise ServiceError(
                    "forbidden", ReasonCode.NONCE_REPLAYED, "this renewal was already used"
                )
            if not rt.store.sessions.renew(record.id, renewal_nonce=nonce):
                raise conflict(ReasonCode.SESSION_NOT_PENDING, "the session is no longer suspended")
            rt.store.audit.append(
                record.wallet_id,
                "session.renewed",
                {"session": record.id, "renewalNonce": str(nonce)},
                at=now,
            )
        return self.detail(self._dir.record(record.id))

    def _is_grant_signature(
        self, record: SessionRecord, wallet: WalletRecord, digest: bytes, signature: bytes
    ) -> bool:
        if record.owner_signature is not None and signature.hex() == record.owner_signature:
            return True
        try:
            self._verify_owner(wallet, digest, signature)
        except ServiceError:
            return False
        return True

    def _erc1271_on(self, chain_id: int) -> ChainErc1271Checker:
        """ERC-1271 checks on the chain of ``chain_id`` (a contract owner answers there)."""
        checker = self._erc1271.get(chain_id)
        if checker is None:
            checker = self._erc1271[chain_id] = ChainErc1271Checker(self._rt.on(chain_id).chain)
        return checker

    def _verify_owner(self, wallet: WalletRecord, digest: bytes, signature: bytes) -> None:
        try:
            verify_owner_signature(
                owner=wallet.owner,
                owner_kind=wallet.owner_kind,
                chain_id=wallet.chain_id,
                digest=digest,
                signature=signature,
                erc1271=self._erc1271_on(wallet.chain_id),
            )
        except SignatureError as exc:
            raise ServiceError("forbidden", exc.code, exc.message) from None
        except ChainError:
            raise unavailable(
                ReasonCode.CHAIN_UNAVAILABLE, "chain unavailable for ERC-1271"
            ) from None

    # --- reads ----------------------------------------------------------------------------

    def detail(self, record: SessionRecord) -> SessionDetail:
        return self._details([record])[0]

    def get(self, caller: Caller, session_id: str) -> SessionDetail:
        record = self._dir.record(session_id)
        self._may_read(caller, record)
        return self.detail(record)

    def list_for_backend(
        self, caller: Caller, *, cursor: str | None, limit: int
    ) -> Page[SessionDetail]:
        """The sessions bound to the calling backend, in id order, one keyset page."""
        caller.require("backend")
        credential_id = caller.credential_id
        sessions = self._rt.store.sessions
        return self._page(
            lambda after, n: sessions.page_of_credential(credential_id, after=after, limit=n),
            belongs=lambda record: record.credential_id == credential_id,
            cursor=cursor,
            limit=limit,
        )

    def list_for_owner(
        self, caller: Caller, *, wallet_id: str, cursor: str | None, limit: int
    ) -> Page[SessionDetail]:
        """The sessions of the caller's wallet, in id order, one keyset page: its cost is that
        of the page, whatever the number of sessions the wallet holds."""
        caller.require_owner_of(wallet_id)
        sessions = self._rt.store.sessions
        return self._page(
            lambda after, n: sessions.page_of_wallet(wallet_id, after=after, limit=n),
            belongs=lambda record: record.wallet_id == wallet_id,
            cursor=cursor,
            limit=limit,
        )

    def _page(
        self,
        fetch: Callable[[str | None, int], Sequence[SessionRecord]],
        *,
        belongs: Callable[[SessionRecord], bool],
        cursor: str | None,
        limit: int,
    ) -> Page[SessionDetail]:
        """One keyset page of ``fetch``; a cursor is honoured only if it names a session that
        ``belongs`` to the list being read (so a cursor cannot probe other lists)."""
        sessions = self._rt.store.sessions

        def cursor_belongs(session_id: str) -> bool:
            record = sessions.get(session_id)
            return record is not None and belongs(record)

        return keyset_page(
            fetch,
            cursor=cursor,
            limit=limit,
            belongs=cursor_belongs,
            key=_session_id,
            render=self._details,
        )

    def _details(self, records: Sequence[SessionRecord]) -> list[SessionDetail]:
        """:meth:`detail` of each record, reading each distinct wallet and credential once per
        page (no chain call: everything shown is what the database records)."""
        wallets: dict[str, WalletRecord] = {}
        apps: dict[str, tuple[str, str | None]] = {}
        details: list[SessionDetail] = []
        for record in records:
            wallet = wallets.get(record.wallet_id)
            if wallet is None:
                wallet = wallets[record.wallet_id] = self._dir.wallet(record.wallet_id)
            app = apps.get(record.credential_id)
            if app is None:
                # The app's name and URL, as AuthorizeRemoteAccess showed them in the summary.
                credential = self._rt.store.credentials.get(record.credential_id)
                app = (
                    (credential.app_name if credential else None) or record.credential_id,
                    credential.app_url if credential else None,
                )
                apps[record.credential_id] = app
            summary = self._summaries.get((record.id, *app))
            if summary is None:
                scope = self._dir.scope(record)
                summary = summarize(
                    scope, app_name=app[0], app_url=app[1], catalog=self._rt.catalog
                )
                if len(self._summaries) > 10_000:
                    self._summaries.clear()
                self._summaries[(record.id, *app)] = summary
            details.append(session_detail(record, wallet, summary))
        return details

    def usage(
        self, caller: Caller, session_id: str, *, network: str | int | None = None
    ) -> UsageView:
        """Spent vs every limit of the session, in the current windows. ``network``, when
        given, must be the session's wallet's (``CHAIN_MISMATCH``, ``NETWORK_UNKNOWN``)."""
        record = self._dir.record(session_id)
        self._may_read(caller, record)
        if network is not None:
            self._rt.for_wallet(self._dir.wallet(record.wallet_id).chain_id, network)
        scope = self._dir.scope(record)
        env = scope.envelope
        spent = self._rt.store.budget.usage_of(session_id)
        now = self._rt.now()
        anchor = scope.valid_after
        limits: list[LimitUsage] = []

        def add(name: str, bucket: str, window: int, maximum: int) -> None:
            limits.append(
                {
                    "limit": name,
                    "bucket": bucket,
                    "spent": str(spent.spent(bucket, window)),
                    "max": str(maximum),
                    "window": window,
                }
            )

        add("maxUses", USES, 0, env.max_uses or 0)
        if env.value_limit is not None:
            add(
                "valueLimit",
                NATIVE,
                window_index(now, anchor, env.value_limit.period),
                env.value_limit.limit,
            )
        for token_limit in env.token_limits:
            bucket = token_bucket(token_limit.token)
            add(
                f"tokenLimits[{token_limit.token}]",
                bucket,
                window_index(now, anchor, token_limit.period),
                token_limit.limit,
            )
        if env.max_value_usd is not None:
            add("maxValueUsd", USD, 0, env.max_value_usd)
        if env.rate_limit is not None:
            add(
                "rateLimit",
                RATE,
                window_index(now, anchor, env.rate_limit.interval),
                env.rate_limit.count,
            )
        if env.max_fee_wei is not None:
            add("maxFeeWei", FEE, 0, env.max_fee_wei)
        return {"sessionId": session_id, "limits": limits}

    def _may_read(self, caller: Caller, record: SessionRecord) -> None:
        """Backends read their own sessions, owners the sessions of their wallet, ops any."""
        caller.require(caller.role)  # a live credential
        if caller.role == "backend" and caller.credential_id == record.credential_id:
            return
        if caller.role == "owner" and caller.wallet_id == record.wallet_id:
            return
        if caller.role == "ops":
            return
        raise ServiceError(
            "forbidden", ReasonCode.ROLE_FORBIDDEN, "this session is bound to another credential"
        )
