"""The API's method table: for each ``POST /v1/Waas/<Method>``, its request model, response
type, how it is authenticated, whether it is a mutation (``Idempotency-Key`` applies), and the
one service call it translates to.

Handlers only convert wire values (hex to bytes, decimal strings to ints) and call the service;
roles, bindings and every decision stay in :mod:`sessionward.service`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sessionward.service.callers import SelfSigned
from sessionward.service.credentials import CredentialView
from sessionward.service.devices import DeviceView, PairingCodeView
from sessionward.service.pages import Page
from sessionward.service.permission_requests import (
    ImportedPermissionView,
    PermissionExportView,
    PermissionRequests,
)
from sessionward.service.revocation import LiftView, RevocationView
from sessionward.service.sessions import PendingSessionView, SessionDetail, UsageView
from sessionward.service.transactions import TransactionView
from sessionward.service.waas import Waas
from sessionward.service.wallets import RegistrationChallengeView, RegistrationProof, WalletView

from . import models as m
from .auth import AuthMode, Principal
from .errors import invalid

Handler = Callable[[Waas, Principal, Any], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Method:
    """One API method. ``revocation_path`` labels the revocation metric; ``decision`` marks
    methods whose answer is a policy decision (metrics). ``one_transaction``: the request's
    replay nonce, idempotency key and service call commit together, in one database
    transaction (a unit of work), or not at all; ``durable``: that unit commits durably (a
    revocation, a freeze or its lifting survives a power cut once answered), and alone (never
    grouped with others). ``calls_out(body)``: this request of a ``one_transaction`` method
    calls a network service before its writes (an Execute sent as a UserOperation asks the
    bundler), so it runs outside a unit (the use case opens its own after those calls): a
    unit holds the database's write lock (SQLite) or the one writer thread (both databases)
    for as long as it runs. ``expects(waas, body)``: tells the service, before the request is
    authenticated, which records its answer will read (from the parsed body, unvalidated), so
    that they are read with its replay nonce once the signature has verified."""

    name: str
    request: type[m.Body]
    response: Any
    auth: AuthMode
    mutation: bool
    handler: Handler
    summary: str
    decision: bool = False
    revocation_path: str | None = None
    one_transaction: bool = False
    durable: bool = False
    calls_out: Callable[[bytes], bool] | None = None
    expects: Callable[[Waas, Mapping[str, Any]], None] | None = None


def _hex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


# --- credentials ---------------------------------------------------------------------------


def _register_credential(w: Waas, p: Principal, b: m.RegisterCredentialRequest) -> CredentialView:
    if p.self_signed is not None:
        if b.app_name is None:
            raise invalid("appName: required to register a backend", reason="appName")
        if b.expires_at is None:
            raise invalid("expiresAt: required to register a backend", reason="expiresAt")
        return w.credentials.register_backend(
            p.self_signed, app_name=b.app_name, app_url=b.app_url, expires_at=b.expires_at
        )
    if b.app_name is not None or b.app_url is not None:
        raise invalid("appName/appUrl describe a backend, not an owner device", reason="appName")
    return w.devices.register_signed(
        p.registered(), SelfSigned(b.alg, b.public_key), expires_at=b.expires_at
    )


def _inspect_credential(w: Waas, _p: Principal, b: m.InspectCredentialRequest) -> CredentialView:
    return w.credentials.inspect(b.credential_id)


def _revoke_credential(w: Waas, p: Principal, b: m.RevokeCredentialRequest) -> RevocationView:
    return w.revocations.revoke_credential(
        p.registered(), credential_id=b.credential_id, reason=b.reason
    )


# --- owner devices -------------------------------------------------------------------------


def _create_pairing_code(w: Waas, p: Principal, b: m.CreatePairingCodeRequest) -> PairingCodeView:
    return w.devices.create_pairing_code(
        p.registered(), wallet_id=b.wallet_id, device_ttl_s=b.device_ttl_seconds
    )


def _pair_device(w: Waas, p: Principal, b: m.PairDeviceRequest) -> DeviceView:
    return w.devices.pair(p.self_key(), code=b.pairing_code, label=b.label)


def _list_devices(w: Waas, p: Principal, b: m.ListDevicesRequest) -> Page[DeviceView]:
    return w.devices.list(p.registered(), wallet_id=b.wallet_id, cursor=b.cursor, limit=b.limit)


def _revoke_device(w: Waas, p: Principal, b: m.RevokeDeviceRequest) -> DeviceView:
    return w.devices.revoke(
        p.registered(), wallet_id=b.wallet_id, device_id=b.credential_id, reason=b.reason
    )


# --- wallets -------------------------------------------------------------------------------


def _proof(body: m.RegistrationProofBody | None) -> RegistrationProof | None:
    if body is None:
        return None
    return RegistrationProof(
        nonce=int(body.nonce), deadline=body.deadline, signature=_hex(body.signature)
    )


def _create_wallet(w: Waas, p: Principal, b: m.CreateWalletRequest) -> WalletView:
    return w.wallets.create(
        p.self_key(),
        owner=b.owner,
        owner_kind=b.owner_kind,
        salt=None if b.salt is None else _hex(b.salt),
        proof=_proof(b.registration),
        network=b.network,
    )


def _registration_challenge(
    w: Waas, p: Principal, b: m.GetRegistrationChallengeRequest
) -> RegistrationChallengeView:
    return w.wallets.registration_challenge(
        p.self_key(),
        account=b.account,
        salt=None if b.salt is None else _hex(b.salt),
        owner=b.owner,
        owner_kind=b.owner_kind,
        network=b.network,
        account_kind=b.account_kind,
    )


def _register_wallet(w: Waas, p: Principal, b: m.RegisterWalletRequest) -> WalletView:
    proof = _proof(b.registration)
    assert proof is not None  # required by the model
    return w.wallets.register(
        p.self_key(),
        account=b.account,
        proof=proof,
        owner=b.owner,
        owner_kind=b.owner_kind,
        network=b.network,
        account_kind=b.account_kind,
    )


# --- sessions ------------------------------------------------------------------------------


def _authorize(w: Waas, p: Principal, b: m.AuthorizeRemoteAccessRequest) -> PendingSessionView:
    return w.sessions.authorize(
        p.registered(),
        credential_id=b.credential_id,
        wallet_id=b.wallet_id,
        envelope=b.envelope,
        network=b.network,
    )


def _approve(w: Waas, p: Principal, b: m.ApproveSessionRequest) -> SessionDetail:
    return w.sessions.approve(p.registered(), session_id=b.session_id, signature=_hex(b.signature))


def _list_access(w: Waas, p: Principal, b: m.ListAccessRequest) -> Page[SessionDetail]:
    return w.sessions.list_for_owner(
        p.registered(), wallet_id=b.wallet_id, cursor=b.cursor, limit=b.limit
    )


def _revoke_access(w: Waas, p: Principal, b: m.RevokeAccessRequest) -> RevocationView:
    return w.revocations.revoke_access(
        p.registered(),
        wallet_id=b.wallet_id,
        credential_id=b.credential_id,
        session_id=b.session_id,
    )


def _get_session(w: Waas, p: Principal, b: m.GetSessionRequest) -> SessionDetail:
    return w.sessions.get(p.registered(), b.session_id)


def _list_sessions(w: Waas, p: Principal, b: m.ListSessionsRequest) -> Page[SessionDetail]:
    return w.sessions.list_for_backend(p.registered(), cursor=b.cursor, limit=b.limit)


def _usage(w: Waas, p: Principal, b: m.GetSessionUsageRequest) -> UsageView:
    return w.sessions.usage(p.registered(), b.session_id, network=b.network)


def _permission_requests(w: Waas) -> PermissionRequests:
    return PermissionRequests(w.runtime, w.sessions, w.directory)


def _import_permission_request(
    w: Waas, p: Principal, b: m.ImportPermissionRequestRequest
) -> ImportedPermissionView:
    return _permission_requests(w).import_request(
        p.registered(), credential_id=b.credential_id, wallet_id=b.wallet_id, request=b.request
    )


def _export_permission(w: Waas, p: Principal, b: m.ExportPermissionRequest) -> PermissionExportView:
    return _permission_requests(w).export(p.registered(), session_id=b.session_id)


# --- transactions --------------------------------------------------------------------------


def _prepare(w: Waas, p: Principal, b: m.PrepareEthereumTransactionRequest) -> TransactionView:
    return w.transactions.prepare(
        p.registered(),
        wallet_id=b.wallet_id,
        session_id=b.session_id,
        to=b.to,
        value=int(b.value),
        data=_hex(b.data),
        chain_id=b.chain_id,
        network=b.network,
    )


def _prepare_call(
    w: Waas, p: Principal, b: m.PrepareEthereumContractCallRequest
) -> TransactionView:
    return w.transactions.prepare_contract_call(
        p.registered(),
        wallet_id=b.wallet_id,
        session_id=b.session_id,
        contract=b.contract,
        method=b.method,
        args=b.args,
        value=int(b.value),
        chain_id=b.chain_id,
        network=b.network,
    )


def _expect_prepare(w: Waas, body: Mapping[str, Any]) -> None:
    w.transactions.expect_prepare(wallet_id=body.get("walletId"), session_id=body.get("sessionId"))


def _expect_execute(w: Waas, body: Mapping[str, Any]) -> None:
    w.transactions.expect_execute(txn_id=body.get("txnId"))


def _execute(w: Waas, p: Principal, b: m.ExecuteRequest) -> TransactionView:
    return w.transactions.execute(p.registered(), b.txn_id, submission=b.submission)


def _asks_for_a_user_operation(body: bytes) -> bool:
    """Whether an Execute body asks for ``submission: "userop"``, whose planning asks the
    bundler (estimate) and the chain (fees) before the unit of work that signs. Read leniently:
    a body that is not such a JSON object says no, and is refused in its unit as before."""
    if b"userop" not in body:
        return False  # the common case, without parsing
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("submission") == "userop"


def _status(w: Waas, p: Principal, b: m.TransactionStatusRequest) -> TransactionView:
    return w.transactions.status(p.registered(), b.txn_id)


# --- ops -----------------------------------------------------------------------------------


def _emergency_revoke(w: Waas, p: Principal, b: m.EmergencyRevokeRequest) -> RevocationView:
    return w.revocations.emergency_revoke(
        p.registered(), scope=b.scope, target=b.target, reason=b.reason or ""
    )


def _lift_freeze(w: Waas, p: Principal, b: m.LiftFreezeRequest) -> LiftView:
    return w.revocations.lift_freeze(p.registered(), scope=b.scope, target=b.target)


METHODS: Final[dict[str, Method]] = {
    method.name: method
    for method in (
        Method(
            "RegisterCredential",
            m.RegisterCredentialRequest,
            CredentialView,
            "self_or_credential",
            True,
            _register_credential,
            'A backend registers its key (signed cred="self": proof of possession), or the '
            "wallet's owner credential registers a device key it signs (expiring; a device "
            "cannot register devices: DEVICE_CANNOT_PAIR).",
        ),
        Method(
            "CreatePairingCode",
            m.CreatePairingCodeRequest,
            PairingCodeView,
            "credential",
            # Not a mutation for Idempotency-Key purposes: a stored answer would keep the
            # one-time code in the database in plaintext. A retry simply issues another code.
            False,
            _create_pairing_code,
            "Owner (the wallet's owner credential, not a device): a one-time, short-lived code "
            "that pairs one device (PairDevice). Only its hash is stored.",
        ),
        Method(
            "PairDevice",
            m.PairDeviceRequest,
            DeviceView,
            "self",
            True,
            _pair_device,
            'The new device key, signed cred="self" (proof of possession), with the owner\'s '
            "one-time pairing code in the body: an expiring owner device of that wallet.",
        ),
        Method(
            "ListDevices",
            m.ListDevicesRequest,
            Page[DeviceView],
            "credential",
            False,
            _list_devices,
            "Owner: the wallet's devices (active, expired, revoked), by cursor.",
        ),
        Method(
            "RevokeDevice",
            m.RevokeDeviceRequest,
            DeviceView,
            "credential",
            True,
            _revoke_device,
            "Owner: revoke a device (or a device itself); its requests are refused at once "
            "(CREDENTIAL_REVOKED).",
            one_transaction=True,
            durable=True,
        ),
        Method(
            "InspectCredential",
            m.InspectCredentialRequest,
            CredentialView,
            "public",
            False,
            _inspect_credential,
            "Public metadata of a backend credential, for the owner's consent screen.",
        ),
        Method(
            "CreateWallet",
            m.CreateWalletRequest,
            WalletView,
            "self",
            True,
            _create_wallet,
            'A new SessionAccount for the owner key that signs (cred="self"); the answer\'s '
            "ownerCredentialId is the owner's credential from then on.",
        ),
        Method(
            "GetRegistrationChallenge",
            m.GetRegistrationChallengeRequest,
            RegistrationChallengeView,
            "self",
            False,
            _registration_challenge,
            "The challenge an account's owner signs to register it (service, chain, account, "
            "the signing key, a fresh nonce, a deadline): its EIP-712 digest. Stores nothing.",
        ),
        Method(
            "RegisterWallet",
            m.RegisterWalletRequest,
            WalletView,
            "self",
            True,
            _register_wallet,
            "An existing SessionAccount (or EIP-7702-delegated EOA), with its on-chain owner's "
            "signature over GetRegistrationChallenge's digest (EOA key, or ERC-1271 "
            "isValidSignature); or, with accountKind erc7579, any ERC-7579 account with the "
            "network's SessionWard module installed, proven by its own ERC-1271 answer: no "
            "owner credential without proof of control.",
        ),
        Method(
            "AuthorizeRemoteAccess",
            m.AuthorizeRemoteAccessRequest,
            PendingSessionView,
            "credential",
            True,
            _authorize,
            "Owner: validate an envelope for a backend; returns the EIP-712 grant to sign.",
        ),
        Method(
            "ImportPermissionRequest",
            m.ImportPermissionRequestRequest,
            ImportedPermissionView,
            "credential",
            True,
            _import_permission_request,
            "Owner: an ERC-7715 wallet_grantPermissions request as an envelope for a backend, "
            "pending approval like AuthorizeRemoteAccess; what cannot be enforced is refused "
            "(PERMISSION_UNENFORCEABLE, PERMISSION_TYPE_UNSUPPORTED) and nothing is stored.",
        ),
        Method(
            "ExportPermission",
            m.ExportPermissionRequest,
            PermissionExportView,
            "credential",
            False,
            _export_permission,
            "Backend of the session, or the wallet's owner: a granted session as ERC-7715 "
            "PermissionResponse objects (context: the session id).",
        ),
        Method(
            "ApproveSession",
            m.ApproveSessionRequest,
            SessionDetail,
            "credential",
            True,
            _approve,
            "Owner: the signature over the grant digest; activates the session.",
        ),
        Method(
            "ListAccess",
            m.ListAccessRequest,
            Page[SessionDetail],
            "credential",
            False,
            _list_access,
            "Owner: the sessions of the wallet, newest pages by cursor.",
        ),
        Method(
            "RevokeAccess",
            m.RevokeAccessRequest,
            RevocationView,
            "credential",
            True,
            _revoke_access,
            "Owner: revoke one session, or every session of a credential on the wallet.",
            revocation_path="owner",
            one_transaction=True,
            durable=True,
        ),
        Method(
            "PrepareEthereumTransaction",
            m.PrepareEthereumTransactionRequest,
            TransactionView,
            "credential",
            True,
            _prepare,
            "Backend: decode and decide a call; returns a quote or the denial's reasons.",
            decision=True,
            # One unit of work with its replay nonce (on SQLite on the writer thread, with
            # the Executes); its fee comes from a cache refreshed off the unit (issue 16).
            one_transaction=True,
            expects=_expect_prepare,
        ),
        Method(
            "PrepareEthereumContractCall",
            m.PrepareEthereumContractCallRequest,
            TransactionView,
            "credential",
            True,
            _prepare_call,
            "Backend: like PrepareEthereumTransaction, from a method signature and JSON args.",
            decision=True,
            # One unit of work with its replay nonce (on SQLite on the writer thread, with
            # the Executes); its fee comes from a cache refreshed off the unit (issue 16).
            one_transaction=True,
            expects=_expect_prepare,
        ),
        Method(
            "Execute",
            m.ExecuteRequest,
            TransactionView,
            "credential",
            True,
            _execute,
            "Backend: re-decide, reserve, sign with the session key and queue a quote.",
            decision=True,
            # No chain call on the relayer path, so the unit never holds the write lock while it
            # waits for the chain (the dispatcher holds the chain while it writes); the
            # UserOperation path plans with the bundler first, outside any unit.
            one_transaction=True,
            calls_out=_asks_for_a_user_operation,
            expects=_expect_execute,
        ),
        Method(
            "TransactionStatus",
            m.TransactionStatusRequest,
            TransactionView,
            "credential",
            False,
            _status,
            "Backend (or the wallet's owner): quoted, pending, executed, failed or denied.",
        ),
        Method(
            "GetSession",
            m.GetSessionRequest,
            SessionDetail,
            "credential",
            False,
            _get_session,
            "Backend of the session, or the wallet's owner: one session.",
        ),
        Method(
            "ListSessions",
            m.ListSessionsRequest,
            Page[SessionDetail],
            "credential",
            False,
            _list_sessions,
            "Backend: its sessions, by cursor.",
        ),
        Method(
            "GetSessionUsage",
            m.GetSessionUsageRequest,
            UsageView,
            "credential",
            False,
            _usage,
            "Backend of the session, or the wallet's owner: spent versus every limit.",
        ),
        Method(
            "RevokeCredential",
            m.RevokeCredentialRequest,
            RevocationView,
            "credential",
            True,
            _revoke_credential,
            "Backend: retire its own credential and every session bound to it.",
            revocation_path="backend",
            one_transaction=True,
            durable=True,
        ),
        Method(
            "EmergencyRevoke",
            m.EmergencyRevokeRequest,
            RevocationView,
            "credential",
            True,
            _emergency_revoke,
            "Ops: kill switch by session, wallet, credential, action class or global freeze.",
            revocation_path="ops",
            one_transaction=True,
            durable=True,
        ),
        Method(
            "LiftFreeze",
            m.LiftFreezeRequest,
            LiftView,
            "credential",
            True,
            _lift_freeze,
            "Ops: lift a freeze; a global freeze needs two distinct ops credentials.",
            one_transaction=True,
            durable=True,
        ),
    )
}
