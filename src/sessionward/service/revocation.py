"""Revocation, four paths (docs/design.md section 8): the owner (RevokeAccess), the backend
(RevokeCredential), ops (EmergencyRevoke, LiftFreeze) and the anomaly rules (see
:mod:`sessionward.service.anomaly`).

Every path is effective off-chain when it returns: the store's revoke updates the session row
(or closes the revocation gate for freezes and credentials), which orders it with every
in-flight execution (:mod:`sessionward.store.execution`). The session keys are then disabled
in the vault, and the on-chain removal is queued by the dispatcher, which records
``onchainRevokedAt`` when it is mined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Literal, TypedDict

from sessionward.reasons import ReasonCode
from sessionward.store.alerts import AlertRecord, AlertSink
from sessionward.store.freezes import FreezeLiftRefused

from .callers import Caller
from .errors import ServiceError, invalid
from .ids import new_id
from .reconciler import carry_revocation
from .runtime import Runtime
from .sessions import SessionDirectory

EmergencyScope = Literal["session", "wallet", "credential", "action_class", "global"]
EMERGENCY_SCOPES: tuple[EmergencyScope, ...] = (
    "session",
    "wallet",
    "credential",
    "action_class",
    "global",
)


class RevocationView(TypedDict):
    revokedSessions: list[str]
    revokedCredential: str | None
    freezeId: str | None
    revokedAt: int


class LiftView(TypedDict):
    lifted: int
    approvals: list[str]


class Revocations:
    """All revocation paths share :meth:`revoke_sessions`."""

    def __init__(
        self, rt: Runtime, directory: SessionDirectory, sink: AlertSink | None = None
    ) -> None:
        self._rt = rt
        self._dir = directory
        self._sink = sink

    # --- shared ---------------------------------------------------------------------------

    def revoke_sessions(
        self, session_ids: Sequence[str], *, by: str, reason: str, now: int | None = None
    ) -> list[str]:
        """Revoke sessions (those already revoked are skipped) and disable their keys. Each
        session's revocation, its audit record and what carries it to the chain commit in one
        durable unit of work (the caller's, if one is open)."""
        now = self._rt.now() if now is None else now
        revoked = []
        for session_id in session_ids:
            with self._rt.store.db.unit(durable=True):
                if self._rt.store.sessions.revoke_session(
                    session_id, by=by, reason=reason, now=now
                ):
                    revoked.append(session_id)
                    self._after_revoke(session_id, by=by, reason=reason, now=now)
        return revoked

    def _after_revoke(self, session_id: str, *, by: str, reason: str, now: int) -> None:
        """In the revocation's transaction: disable the key, write the audit record, and write
        what carries the revocation to the chain (:func:`carry_revocation`: the queued install
        cancelled, or the removal queued). Never asks the chain: a revocation works while the
        chain node is down; the reconciler records ``revoked`` once the chain agrees."""
        record = self._rt.store.sessions.get(session_id)
        assert record is not None
        self._rt.vault.disable(record.session_key_id, now=now)
        onchain = carry_revocation(self._rt, record)
        self._rt.store.audit.append(
            record.wallet_id,
            "session.revoked",
            {"session": session_id, "by": by, "reason": reason, "onchain": onchain},
            at=now,
        )

    def retire_credential(
        self, credential_id: str, *, by: str, reason: str, now: int | None = None
    ) -> list[str]:
        """Revoke a credential and every session bound to it; the sessions this revoked."""
        now = self._rt.now() if now is None else now
        with self._rt.store.db.unit(durable=True):
            self._rt.store.credentials.revoke(credential_id, reason=reason, now=now)
            ids = self._rt.store.sessions.revoke_sessions_of_credential(
                credential_id, by=by, reason=reason, now=now
            )
            for session_id in ids:
                self._after_revoke(session_id, by=by, reason=reason, now=now)
            self._rt.store.audit.append(
                "global",
                "credential.revoked",
                {"credential": credential_id, "by": by, "reason": reason},
                at=now,
            )
        return ids

    # --- owner ----------------------------------------------------------------------------

    def revoke_access(
        self, caller: Caller, *, wallet_id: str, credential_id: str, session_id: str | None
    ) -> RevocationView:
        """The owner revokes one session, or every session of ``credential_id`` on the wallet."""
        caller.require_owner_of(wallet_id)
        records = [
            r
            for r in self._rt.store.sessions.of_wallet(wallet_id)
            if r.credential_id == credential_id
        ]
        if session_id is not None:
            records = [r for r in records if r.id == session_id]
            if not records:
                raise ServiceError(
                    "not_found",
                    ReasonCode.SESSION_UNKNOWN,
                    "no such session of this credential on this wallet",
                )
        now = self._rt.now()
        revoked = self.revoke_sessions(
            [r.id for r in records],
            by=f"owner:{caller.credential_id}",
            reason="owner revoked access",
            now=now,
        )
        return {
            "revokedSessions": revoked,
            "revokedCredential": None,
            "freezeId": None,
            "revokedAt": now,
        }

    # --- backend --------------------------------------------------------------------------

    def revoke_credential(
        self, caller: Caller, *, credential_id: str, reason: str | None
    ) -> RevocationView:
        """A backend retires its own credential and every session bound to it."""
        caller.require("backend")
        if credential_id != caller.credential_id:
            raise ServiceError(
                "forbidden",
                ReasonCode.ROLE_FORBIDDEN,
                "a backend may only revoke its own credential",
            )
        now = self._rt.now()
        revoked = self.retire_credential(
            credential_id,
            by=f"backend:{credential_id}",
            reason=reason or "retired by its backend",
            now=now,
        )
        return {
            "revokedSessions": revoked,
            "revokedCredential": credential_id,
            "freezeId": None,
            "revokedAt": now,
        }

    # --- ops ------------------------------------------------------------------------------

    def emergency_revoke(
        self, caller: Caller, *, scope: EmergencyScope, target: str | None, reason: str
    ) -> RevocationView:
        """The kill switch: by session, wallet, credential, action class, or global freeze.
        A written reason is mandatory; every use raises a critical alert. Each scope has its
        handler (:data:`_EMERGENCY_HANDLERS`): sessions, credentials and wallets are revoked
        (a wallet is also frozen), action classes and everything (``global``) are frozen."""
        caller.require("ops")
        if not reason or not reason.strip():
            raise invalid(ReasonCode.REASON_REQUIRED, "an emergency action needs a written reason")
        if scope not in EMERGENCY_SCOPES:
            raise invalid(
                ReasonCode.INPUT_MALFORMED, f"scope must be one of {list(EMERGENCY_SCOPES)}"
            )
        if (scope == "global") != (target is None):
            raise invalid(
                ReasonCode.INPUT_MALFORMED,
                "a global freeze has no target; every other scope needs one",
            )
        now = self._rt.now()
        handler, action = _EMERGENCY_HANDLERS[scope]
        stopped = handler(
            self,
            _Emergency(scope, target, by=f"ops:{caller.credential_id}", reason=reason, now=now),
        )
        alert = AlertRecord(
            id=new_id("alr"),
            at=now,
            rule="emergency_revoke",
            severity="critical",
            detail={
                "scope": scope,
                "target": target,
                "reason": reason,
                "by": caller.credential_id,
            },
            session_id=target if scope == "session" else None,
            wallet_id=target if scope == "wallet" else None,
            credential_id=target if scope == "credential" else None,
            action_taken=f"{scope} {action}",
            action_at=now,
        )
        self._rt.store.alerts.record(alert)
        if self._sink is not None:  # webhooks: only once the alert's record has committed
            self._rt.store.db.after_commit(partial(self._sink, alert))
        self._rt.store.audit.append(
            "global",
            "emergency.revoke",
            {"scope": scope, "target": target, "reason": reason, "by": caller.credential_id},
            at=now,
        )
        return {
            "revokedSessions": stopped.revoked,
            "revokedCredential": stopped.credential,
            "freezeId": stopped.freeze_id,
            "revokedAt": now,
        }

    # the emergency handlers, one per scope (_EMERGENCY_HANDLERS)

    def _stop_session(self, emergency: _Emergency) -> _Stopped:
        target = emergency.require_target()
        self._dir.record(target)
        return _Stopped(self.revoke_sessions([target], by=emergency.by, reason=emergency.reason))

    def _stop_credential(self, emergency: _Emergency) -> _Stopped:
        target = emergency.require_target()
        if self._rt.store.credentials.get(target) is None:
            raise ServiceError("not_found", ReasonCode.CREDENTIAL_UNKNOWN, "credential not found")
        revoked = self.retire_credential(target, by=emergency.by, reason=emergency.reason)
        return _Stopped(revoked, credential=target)

    def _stop_wallet(self, emergency: _Emergency) -> _Stopped:
        target = emergency.require_target()
        by, reason, now = emergency.by, emergency.reason, emergency.now
        self._dir.wallet(target)
        freeze_id = self._rt.store.freezes.freeze(
            "wallet", target, reason=reason, by=by, now=now
        ).id
        ids = self._rt.store.sessions.revoke_sessions_of_wallet(
            target, by=by, reason=reason, now=now
        )
        for session_id in ids:
            self._after_revoke(session_id, by=by, reason=reason, now=now)
        return _Stopped(ids, freeze_id=freeze_id)

    def _freeze(self, emergency: _Emergency) -> _Stopped:
        """An action class (one the catalog knows) or everything (``global``), frozen."""
        scope, target = emergency.scope, emergency.target
        if scope == "action_class" and target not in self._known_action_classes():
            raise invalid(
                ReasonCode.ACTION_CLASS_UNKNOWN, f"no action class {target!r} in the catalog"
            )
        freeze = self._rt.store.freezes.freeze(
            scope, target, reason=emergency.reason, by=emergency.by, now=emergency.now
        )
        return _Stopped(freeze_id=freeze.id)

    def _known_action_classes(self) -> frozenset[str]:
        catalog = self._rt.catalog
        return frozenset(catalog.actions) | catalog.forbidden_classes() | {"custom"}

    def lift_freeze(self, caller: Caller, *, scope: EmergencyScope, target: str | None) -> LiftView:
        """Lift a freeze. Each global freeze needs two distinct ops credentials approving that
        very freeze (its id, after its start): an approval lifts every active global freeze
        (``target``: only that freeze id) that then has two; if it lifted none it is answered
        ``FREEZE_LIFT_NEEDS_SECOND_OPS`` (409). An approval given before a freeze started never
        counts for it, so a new freeze needs new approvals."""
        caller.require("ops")
        now = self._rt.now()
        if scope == "global":
            if not any(f.scope == "global" for f in self._rt.store.freezes.active()):
                return {"lifted": 0, "approvals": []}
            try:
                outcome = self._rt.store.freezes.approve_and_lift_global(
                    caller.credential_id, now=now, freeze_id=target
                )
            except FreezeLiftRefused as exc:
                raise ServiceError("not_found", exc.code, exc.message) from None
            if not outcome.lifted:
                raise ServiceError(
                    "conflict",
                    ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS,
                    "approval recorded; a second ops credential must approve this freeze",
                )
            approvers = set().union(*outcome.lifted.values())
            lifted = len(outcome.lifted)
            result: LiftView = {"lifted": lifted, "approvals": sorted(approvers)}
        else:
            if target is None or scope not in ("wallet", "credential", "session", "action_class"):
                raise invalid(ReasonCode.INPUT_MALFORMED, "this scope needs a target")
            lifted = self._rt.store.freezes.lift(
                scope, target, by=f"ops:{caller.credential_id}", now=now
            )
            result = {"lifted": lifted, "approvals": [caller.credential_id]}
        self._rt.store.audit.append(
            "global",
            "emergency.lift",
            {"scope": scope, "target": target, "by": caller.credential_id, "lifted": lifted},
            at=now,
        )
        return result


@dataclass(frozen=True, slots=True)
class _Emergency:
    """One emergency action as its handler gets it (validated: a target unless ``global``)."""

    scope: EmergencyScope
    target: str | None
    by: str
    reason: str
    now: int

    def require_target(self) -> str:
        assert self.target is not None
        return self.target


@dataclass(frozen=True, slots=True)
class _Stopped:
    """What an emergency handler stopped: sessions revoked, the credential retired, the freeze
    put in place."""

    revoked: list[str] = field(default_factory=list)
    credential: str | None = None
    freeze_id: str | None = None


_EMERGENCY_HANDLERS: Final[
    Mapping[EmergencyScope, tuple[Callable[[Revocations, _Emergency], _Stopped], str]]
] = {
    "session": (Revocations._stop_session, "revoked"),
    "credential": (Revocations._stop_credential, "revoked"),
    "wallet": (Revocations._stop_wallet, "revoked"),
    "action_class": (Revocations._freeze, "frozen"),
    "global": (Revocations._freeze, "frozen"),
}
"""Per emergency scope: its handler, and the word of the alert's ``action_taken``
(``<scope> revoked`` / ``<scope> frozen``, which the time-to-revoke metric matches)."""
