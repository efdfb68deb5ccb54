"""The examples of the OpenAPI document: one request and one answer per method, and one error
per status a method answers, built by the code's own functions so that none can drift.

- Requests (:data:`REQUEST_EXAMPLES`): plain documents; the tests check each against its
  request model.
- Answers (:func:`response_examples`): each is what the service's own view functions answer
  for example records (``credential_view``, ``device_view``, ``wallet_view``,
  ``transaction_view``, ``session_detail``), or a view ``TypedDict`` whose every field comes from
  the domain's functions: the grant is validated by ``validate_grant`` from the
  AuthorizeRemoteAccess example's envelope (and from the ImportPermissionRequest example's
  ERC-7715 request), its EIP-712 document and digest come from ``typed_data_document`` and
  ``grant_digest``, its summary from ``summarize``, its ERC-7715 export from
  ``permission_response``. A renamed or added field fails ``mypy --strict`` (the views are
  ``TypedDict`` s) or the tests (each example validates against its schema).
- Errors (:func:`error_example`): the body :class:`~.errors.ApiError` writes for the first code
  of a status, through the same translation as a real refusal (:func:`~.errors.from_service_error`).

Everything is deterministic: fixed times, ids and keys (no clock, no randomness).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from typing import Any, Final

from sessionward.crypto.typed_data import credential_hash, grant_digest, typed_data_document
from sessionward.domain.catalog import default_catalog
from sessionward.domain.decision import Violation
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import Scope, validate_grant
from sessionward.domain.permission_request import (
    envelope_from_permission_request,
    permission_response,
)
from sessionward.domain.summary import summarize
from sessionward.domain.usage import USD, USES
from sessionward.domain.wire_types import TransactionStatus
from sessionward.reasons import ReasonCode
from sessionward.service.credentials import CredentialView, credential_view
from sessionward.service.devices import DeviceView, PairingCodeView, device_view
from sessionward.service.errors import ServiceError
from sessionward.service.pages import Page
from sessionward.service.permission_requests import (
    ImportedPermissionView,
    PermissionExportView,
    permission_context,
)
from sessionward.service.revocation import LiftView, RevocationView
from sessionward.service.sessions import (
    PendingSessionView,
    SessionDetail,
    UsageView,
    session_detail,
)
from sessionward.service.transactions import TransactionView, transaction_view
from sessionward.service.wallets import RegistrationChallengeView, wallet_view
from sessionward.store.credentials import CredentialRecord
from sessionward.store.devices import DeviceRecord
from sessionward.store.sessions import SessionRecord, Status
from sessionward.store.transaction_records import TransactionRecord
from sessionward.store.wallets import WalletRecord

from .errors import Stage, from_service_error

NOW: Final = 1767225600
"""2026-01-01T00:00:00Z: the examples' "now"."""
CHAIN_ID: Final = 1
ACCOUNT: Final = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
ROUTER: Final = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
KEY: Final = "0x71c7656ec7ab88b098defb751b7401b5f6d8976f"
OWNER: Final = "0x90f79bf6eb2c4f870365e785982e1f101e93b906"
SESSION_KEY: Final = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"
RELAYER: Final = "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc"
SIG: Final = "0x" + "11" * 64 + "1b"
WALLET_ID: Final = "wal_0001"
SESSION_ID: Final = "ses_0001"
BACKEND_ID: Final = "cred_test_0001"
OWNER_CREDENTIAL_ID: Final = "cred_own_0001"
DEVICE_ID: Final = "cred_dev_0001"
TXN_ID: Final = "txn_0001"
APP_NAME: Final = "Acme Trading Agent"
APP_URL: Final = "https://agent.example"
SEED_ENVELOPE: Final = {
    "capabilities": ["swap.execute"],
    "maxValueUsd": 500,
    "allowedDestinations": [ROUTER],
    "chainId": CHAIN_ID,
    "expiresAt": NOW + 900,
}
_SWAP_SIGNATURE: Final = (
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,"
    "address to,uint256 deadline)"
)
_SWAP_DATA: Final = "0x38ed1739" + "00" * 32 * 3
_PERMISSION_REQUEST: Final = [
    {
        "chainId": "0x1",
        "address": ACCOUNT,
        "expiry": NOW + 1800,
        "signer": {"type": "wallet", "data": {}},
        "permission": {
            "type": "erc20-token-periodic",
            "data": {
                "tokenAddress": KEY,
                "periodAmount": "0x989680",
                "periodDuration": 86400,
                "justification": "Pay one payee up to 10 USDX a day",
            },
        },
        "policies": [{"type": "payee", "data": {"addresses": [ROUTER]}}],
    }
]

REQUEST_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "RegisterCredential": {
        "alg": "ecdsa-p256k-eip191",
        "publicKey": KEY,
        "appName": APP_NAME,
        "appUrl": APP_URL,
        "expiresAt": NOW + 86400,
    },
    "CreatePairingCode": {"walletId": WALLET_ID, "deviceTtlSeconds": 2592000},
    "PairDevice": {
        "alg": "ecdsa-p256-sha256",
        "publicKey": "0x04" + "ab" * 64,
        "pairingCode": "K7QM-2XPD-9RTA",
        "label": "Ada's phone",
    },
    "ListDevices": {"walletId": WALLET_ID, "limit": 50},
    "RevokeDevice": {"walletId": WALLET_ID, "credentialId": DEVICE_ID, "reason": "lost"},
    "InspectCredential": {"credentialId": BACKEND_ID},
    "CreateWallet": {"alg": "ecdsa-p256k-eip191", "publicKey": OWNER},
    "GetRegistrationChallenge": {
        "alg": "ecdsa-p256k-eip191",
        "publicKey": OWNER,
        "account": ACCOUNT,
    },
    "RegisterWallet": {
        "alg": "ecdsa-p256k-eip191",
        "publicKey": OWNER,
        "account": ACCOUNT,
        "registration": {"nonce": "1", "deadline": NOW + 600, "signature": SIG},
    },
    "AuthorizeRemoteAccess": {
        "credentialId": BACKEND_ID,
        "walletId": WALLET_ID,
        "envelope": SEED_ENVELOPE,
    },
    "ApproveSession": {"sessionId": SESSION_ID, "signature": SIG},
    "ImportPermissionRequest": {
        "credentialId": BACKEND_ID,
        "walletId": WALLET_ID,
        "request": _PERMISSION_REQUEST,
    },
    "ExportPermission": {"sessionId": "ses_0002"},
    "ListAccess": {"walletId": WALLET_ID, "limit": 50},
    "RevokeAccess": {"walletId": WALLET_ID, "credentialId": BACKEND_ID, "sessionId": SESSION_ID},
    "PrepareEthereumTransaction": {
        "walletId": WALLET_ID,
        "sessionId": SESSION_ID,
        "to": ROUTER,
        "value": "0",
        "data": _SWAP_DATA,
    },
    "PrepareEthereumContractCall": {
        "walletId": WALLET_ID,
        "sessionId": SESSION_ID,
        "contract": ROUTER,
        "method": _SWAP_SIGNATURE,
        "args": ["100000000", "0", [KEY, ACCOUNT], ACCOUNT, str(NOW + 300)],
        "value": "0",
    },
    "Execute": {"txnId": TXN_ID},
    "TransactionStatus": {"txnId": TXN_ID},
    "GetSession": {"sessionId": SESSION_ID},
    "ListSessions": {"limit": 50},
    "GetSessionUsage": {"sessionId": SESSION_ID},
    "RevokeCredential": {"credentialId": BACKEND_ID, "reason": "retired"},
    "EmergencyRevoke": {"scope": "wallet", "target": WALLET_ID, "reason": "incident 42"},
    "LiftFreeze": {"scope": "wallet", "target": WALLET_ID},
}


# --- the records the answers are views of -----------------------------------------------------


def _wallet() -> WalletRecord:
    return WalletRecord(
        id=WALLET_ID,
        chain_id=CHAIN_ID,
        account=ACCOUNT,
        owner=OWNER,
        owner_kind="eoa",
        created_at=NOW - 86400,
        frozen_at=None,
        frozen_reason=None,
    )


def _backend() -> CredentialRecord:
    return CredentialRecord(
        id=BACKEND_ID,
        role="backend",
        alg="ecdsa-p256k-eip191",
        public_key=KEY,
        app_name=APP_NAME,
        app_url=APP_URL,
        wallet_id=None,
        created_at=NOW,
        expires_at=NOW + 86400,
        revoked_at=None,
        revoked_reason=None,
    )


def _device() -> DeviceRecord:
    return DeviceRecord(
        credential_id=DEVICE_ID,
        wallet_id=WALLET_ID,
        alg="ecdsa-p256-sha256",
        public_key="0x04" + "ab" * 64,
        label="Ada's phone",
        paired_via="code",
        paired_by=OWNER_CREDENTIAL_ID,
        created_at=NOW,
        expires_at=NOW + 2592000,
        revoked_at=None,
    )


def _scope(envelope: dict[str, Any]) -> Scope:
    """The grant's scope, as AuthorizeRemoteAccess validates it (the default catalog)."""
    return validate_grant(
        Envelope.from_json(envelope),
        catalog=default_catalog(),
        account=ACCOUNT,
        chain_id=CHAIN_ID,
        now=NOW,
        credential_expires_at=NOW + 86400,
        session_key=SESSION_KEY,
    )


def _pending(session_id: str, envelope: dict[str, Any]) -> tuple[PendingSessionView, str, str]:
    """AuthorizeRemoteAccess's answer for ``envelope``, and the stored envelope and grant."""
    scope = _scope(envelope)
    message = scope.grant_message(
        credential=credential_hash(BACKEND_ID), nonce=1, epoch=0, revoker=RELAYER
    )
    document = typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, message)
    digest = "0x" + grant_digest(CHAIN_ID, ACCOUNT, message).hex()
    view: PendingSessionView = {
        "sessionId": session_id,
        "status": "pending",
        "sessionKey": SESSION_KEY,
        "summary": summarize(scope, app_name=APP_NAME, app_url=APP_URL, catalog=default_catalog()),
        "grant": document,
        "grantDigest": digest,
        "expiresAt": scope.expires_at,
    }
    stored_grant = json.dumps(
        {"typedData": document, "digest": digest, "revoker": RELAYER}, sort_keys=True
    )
    return view, json.dumps(scope.envelope.to_json(), sort_keys=True), stored_grant


def _session(status: Status) -> SessionDetail:
    """``session_detail`` of the AuthorizeRemoteAccess example's session in ``status``."""
    pending, envelope, grant = _pending(SESSION_ID, SEED_ENVELOPE)
    approved = status != "pending_approval"
    record = SessionRecord(
        id=SESSION_ID,
        wallet_id=WALLET_ID,
        credential_id=BACKEND_ID,
        session_key_id="key_0001",
        session_key_address=SESSION_KEY,
        envelope=envelope,
        grant=grant,
        grant_nonce=1,
        epoch=0,
        action_classes=tuple(_scope(SEED_ENVELOPE).action_classes),
        status=status,
        created_at=NOW,
        approved_at=NOW + 30 if approved else None,
        valid_after=NOW,
        expires_at=pending["expiresAt"],
        revoked_at=None,
        revoked_by=None,
        revoke_reason=None,
        onchain_revoked_at=None,
        last_used_at=None,
        onchain_enabled_at=NOW + 42 if status == "active" else None,
    )
    return session_detail(record, _wallet(), pending["summary"])


def _transaction(status: TransactionStatus) -> TransactionView:
    intent = [
        {
            "call": 0,
            "to": ROUTER,
            "value": "0",
            "actionClass": "swap.execute",
            "function": _SWAP_SIGNATURE,
            "arguments": ["100000000", "0", [KEY, ACCOUNT], ACCOUNT, str(NOW + 300)],
        }
    ]
    executed = status == "executed"
    record = TransactionRecord(
        id=TXN_ID,
        session_id=SESSION_ID,
        wallet_id=WALLET_ID,
        credential_id=BACKEND_ID,
        status=status,
        to_address=ROUTER,
        value=0,
        data=bytes.fromhex(_SWAP_DATA[2:]),
        fee_wei=21000 * 2 * 10**9,
        action_class="swap.execute",
        intent=json.dumps(intent),
        reasons="",
        created_at=NOW + 60,
        quote_expires_at=NOW + 120,
        executed_at=NOW + 61 if status != "quoted" else None,
        finished_at=NOW + 73 if executed else None,
        reservation_id=None,
        call_nonce=None,
        deadline=None,
        mode=None,
        execution=None,
        signature=None,
        tx_hash="0x" + "5e" * 32 if executed else None,
        failure=None,
    )
    return transaction_view(record)


@cache
def response_examples() -> dict[str, Any]:
    """Each method's example answer (see the module docstring)."""
    wallet = wallet_view(_wallet(), OWNER_CREDENTIAL_ID)
    credential: CredentialView = credential_view(_backend())
    device: DeviceView = device_view(_device(), NOW)
    revoked_device: DeviceView = device_view(replace(_device(), revoked_at=NOW + 3600), NOW + 3600)
    pairing: PairingCodeView = {
        "pairingCode": "K7QM-2XPD-9RTA-WB4C-N6ZE-F3HY",
        "walletId": WALLET_ID,
        "expiresAt": NOW + 600,
        "deviceExpiresIn": 2592000,
    }
    challenge: RegistrationChallengeView = {
        "serviceId": "sessionward",
        "chainId": CHAIN_ID,
        "account": ACCOUNT,
        "owner": OWNER,
        "nonce": "1",
        "deadline": NOW + 600,
        "digest": "0x" + "ab" * 32,
    }
    pending, _, _ = _pending(SESSION_ID, SEED_ENVELOPE)
    imported = envelope_from_permission_request(
        _PERMISSION_REQUEST, chain_id=CHAIN_ID, account=ACCOUNT, backend_address=KEY
    )
    imported_pending, _, _ = _pending("ses_0002", imported.envelope)
    imported_view: ImportedPermissionView = {
        **imported_pending,
        "envelope": imported.envelope,
        "adjustments": list(imported.adjustments),
        "leftOut": list(imported.left_out),
        "justifications": list(imported.justifications),
    }
    export: PermissionExportView = {
        "sessionId": "ses_0002",
        "permissions": permission_response(
            Envelope.from_json(imported.envelope),
            account=ACCOUNT,
            context=permission_context("ses_0002"),
        ),
    }
    active = _session("active")
    usd_cap = str(_scope(SEED_ENVELOPE).envelope.max_value_usd)
    sessions: Page[SessionDetail] = {"items": [active], "nextCursor": None}
    devices: Page[DeviceView] = {"items": [device], "nextCursor": None}
    usage: UsageView = {
        "sessionId": SESSION_ID,
        "limits": [
            {"limit": "maxUses", "bucket": USES, "spent": "1", "max": "0", "window": 0},
            {
                "limit": "maxValueUsd",
                "bucket": USD,
                "spent": "12400000",
                "max": usd_cap,
                "window": 0,
            },
        ],
    }
    revocation: RevocationView = {
        "revokedSessions": [SESSION_ID],
        "revokedCredential": None,
        "freezeId": None,
        "revokedAt": NOW + 3600,
    }
    retired: RevocationView = {**revocation, "revokedCredential": BACKEND_ID}
    frozen: RevocationView = {**revocation, "freezeId": "frz_0001"}
    lifted: LiftView = {"lifted": 1, "approvals": [OWNER_CREDENTIAL_ID]}
    return {
        "RegisterCredential": credential,
        "CreatePairingCode": pairing,
        "PairDevice": device,
        "ListDevices": devices,
        "RevokeDevice": revoked_device,
        "InspectCredential": credential,
        "CreateWallet": wallet,
        "GetRegistrationChallenge": challenge,
        "RegisterWallet": wallet,
        "AuthorizeRemoteAccess": pending,
        "ImportPermissionRequest": imported_view,
        "ExportPermission": export,
        "ApproveSession": _session("installing"),
        "ListAccess": sessions,
        "RevokeAccess": revocation,
        "PrepareEthereumTransaction": _transaction("quoted"),
        "PrepareEthereumContractCall": _transaction("quoted"),
        "Execute": _transaction("pending"),
        "TransactionStatus": _transaction("executed"),
        "GetSession": active,
        "ListSessions": sessions,
        "GetSessionUsage": usage,
        "RevokeCredential": retired,
        "EmergencyRevoke": frozen,
        "LiftFreeze": lifted,
    }


def error_example(code: ReasonCode, stage: Stage) -> dict[str, Any]:
    """The error body a refusal with ``code`` at ``stage`` answers, written by the same
    translation as a real one (a fixed request id)."""
    violation = Violation(code, "allowedDestinations", f"{ROUTER[:10]}…: {code.value}")
    if stage is Stage.POLICY_DECISION:
        error = ServiceError(
            "denied", code, "denied by policy", violations=(violation,), decision_id="dec_0001"
        )
    elif stage is Stage.GRANT_CHECKS:
        error = ServiceError("invalid", code, "the grant is refused", violations=(violation,))
    elif stage is Stage.AUTHENTICATION:
        error = ServiceError("unauthorized", code, "the request is not authenticated")
    else:
        error = ServiceError("invalid", code, code.value.lower().replace("_", " "))
    return from_service_error(error).body("req_0123456789abcdef01234567")
