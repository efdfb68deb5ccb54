"""Routing of the review pages: ``GET /ui``, ``GET /ui/ops``, ``GET /ui/approve``,
``GET /ui/static/<file>``, the ops console's signed read ``GET /ui/api/ops/overview``, the
public list of known contracts ``GET /ui/api/contracts`` and the public wallet options of the
approval page ``GET /ui/api/wallets``.

Contracts:

- Only ``GET``; any other verb is 405 with ``Allow: GET``. Anything else under ``/ui`` is 404
  ``METHOD_UNKNOWN`` (the API's error shape). Static files are a fixed table read once from the
  package's ``static`` folder: a name is looked up, never joined to a path, so no request can
  reach another file.
- Pages are served with a strict Content-Security-Policy (scripts, styles and requests from the
  same origin only, no inline script, no framing), ``nosniff`` and ``no-referrer``.
- ``/ui/api/wallets`` is public and the same for everyone: ``{"walletConnect": null}``, or the
  WalletConnect project id and relay the approval page offers where WalletConnect is configured
  (:mod:`.walletconnect`; its browser bundle is then ``/ui/static/walletconnect.js``, and the
  pages' ``connect-src`` also allows the relay's origin).
- ``/ui/api/contracts`` is public and the same for everyone: the catalog's known contracts
  (``chainId``, ``address``, ``name``, ``symbol``, ``decimals``, ``kinds``), which the approval
  page uses to name targets and to write token amounts in token units. It is configuration,
  never a wallet's data.
- ``/ui/api/ops/overview`` is authenticated exactly like an API call (docs/protocol.md section
  3) with ``METHOD`` ``GET``, the raw path with query as sent, and the SHA-256 of an empty body;
  the credential must be a live **ops** credential (otherwise 401/403 with the exact code, and
  no alert, freeze or metric in the answer). Its nonces go to the same replay store as every
  other request.

How the pages authenticate (nothing secret ever reaches a URL):

- The owner page signs ``POST /v1/Waas/<Method>`` requests in the browser with an owner
  *device* key that the page itself generates with WebCrypto as a **non-extractable** P-256 key
  and keeps in IndexedDB (the ``CryptoKey`` object: script signs with it, nobody can export it).
  The page is paired by an act of the wallet's owner: the owner's root credential issues a
  one-time pairing code (``CreatePairingCode``, ``OwnerClient.create_pairing_code``: short-lived,
  single use, stored hashed); the owner types or pastes the code into the page's pairing form,
  and the page sends ``PairDevice`` signed ``cred="self"`` by the new key (proof of possession)
  with the code in the JSON body. The form is posted by script only (the CSP's
  ``form-action 'none'`` stops any navigation that could carry it in a query). After a reload
  the page signs with the key from IndexedDB. A device expires (``device_ttl_s``), is listed
  (``ListDevices``) and revoked (``RevokeDevice``) by the owner; a revoked or expired device's
  requests are refused (``CREDENTIAL_REVOKED``/``CREDENTIAL_EXPIRED``) and the page offers to
  pair again; a device cannot pair devices (``DEVICE_CANNOT_PAIR``). The page reads nothing
  from its URL: a fragment is ignored and removed from the address bar.
- The approval page (``/ui/approve?session=<id>``, the link an owner's app opens; the session
  id is the only thing it reads from its URL and is not a secret) reads the pending session with
  the same paired device key (``GetSession`` shows the grant document, its digest and the owner
  while pending), recomputes the EIP-712 digest and checks it, has the owner's wallet sign the
  typed data through ``window.ethereum`` (``eth_signTypedData_v4``), recovers the signer in the
  page and sends ``ApproveSession`` only when it is the wallet's owner. The wallet's key never
  reaches the page: only its signature does.
- The ops page takes an ops credential's private JWK pasted into its connect form (never from
  the URL), imports it non-extractable and keeps it in the tab's memory only; the ops
  credential must be configured with ``alg = "ecdsa-p256-sha256"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Final

from sessionward.api.answers import Outcome
from sessionward.api.app import dump_json as _dump
from sessionward.api.auth import Authenticator
from sessionward.api.errors import ApiError, from_service_error, method_unknown
from sessionward.crypto.request_signature import SIGNATURE_HEADER
from sessionward.service.errors import ServiceError
from sessionward.service.waas import Waas

from .walletconnect import WalletConnect, walletconnect_from_environ

UI_PREFIX: Final = "/ui"
STATIC_PREFIX: Final = "/ui/static/"
OPS_OVERVIEW_PATH: Final = "/ui/api/ops/overview"
CONTRACTS_PATH: Final = "/ui/api/contracts"
WALLETS_PATH: Final = "/ui/api/wallets"
WALLETCONNECT_BUNDLE: Final = "walletconnect.js"

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_PAGES: Final = {"/ui": "owner.html", "/ui/ops": "ops.html", "/ui/approve": "approve.html"}
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def content_security_policy(walletconnect: WalletConnect | None) -> str:
    """The pages' policy: :data:`CONTENT_SECURITY_POLICY`, with the WalletConnect relay's origin
    added to ``connect-src`` where WalletConnect is configured."""
    if walletconnect is None:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", f"connect-src 'self' {walletconnect.relay_origin}"
    )


_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def is_ui_path(path: str) -> bool:
    """True for ``/ui`` and everything under ``/ui/`` (the paths :class:`UiRoutes` answers)."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def _load_static() -> dict[str, tuple[bytes, str]]:
    """Every servable file of the ``static`` folder: name -> (bytes, content type)."""
    folder = resources.files(__package__ or "sessionward.ui") / "static"
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def _not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "METHOD_UNKNOWN",
        "use GET",
        reason="http method",
        headers={"Allow": "GET"},
    )


class UiRoutes:
    """Answers the ``/ui`` paths. Synchronous (the ops read queries the database): call
    :meth:`answer` from a worker thread. Raises :class:`ApiError` for every refusal."""

    def __init__(
        self,
        waas: Waas,
        authenticator: Authenticator,
        walletconnect: WalletConnect | str | None = "from the environment",
    ) -> None:
        """``walletconnect``: what the approval page offers beside ``window.ethereum`` (by
        default read from the environment, :func:`.walletconnect.walletconnect_from_environ`;
        ``None``: only the browser wallet)."""
        self._waas = waas
        self._auth = authenticator
        self._static = _load_static()
        self._contracts: bytes | None = None
        self._walletconnect = (
            walletconnect_from_environ(os.environ)
            if isinstance(walletconnect, str)
            else walletconnect
        )
        if self._walletconnect is not None:
            self._static[WALLETCONNECT_BUNDLE] = (self._walletconnect.bundle, _TYPES[".js"])
        wallets = None if self._walletconnect is None else self._walletconnect.page_config()
        self._wallets = _dump({"walletConnect": wallets})
        self._page_headers = {
            **_PAGE_HEADERS,
            "Content-Security-Policy": content_security_policy(self._walletconnect),
        }

    def answer(
        self, verb: str, path: str, path_with_query: str, headers: Mapping[str, str]
    ) -> Outcome:
        """The response to ``verb path``; ``path_with_query`` is the raw request target (what a
        signature covers) and ``headers`` the request's headers."""
        handler = self._handler(path)
        if handler is None:
            raise method_unknown(path)
        if verb != "GET":
            raise _not_allowed()
        return handler(path_with_query, headers)

    def _handler(self, path: str) -> Callable[[str, Mapping[str, str]], Outcome] | None:
        if path == OPS_OVERVIEW_PATH:
            return self._ops_overview
        if path == CONTRACTS_PATH:
            return self._known_contracts
        if path == WALLETS_PATH:
            return self._wallet_options
        name = _PAGES.get(path)
        if name is None and path.startswith(STATIC_PREFIX):
            name = path[len(STATIC_PREFIX) :]
        if name is None or name not in self._static:
            return None
        body, content_type = self._static[name]
        return lambda _target, _headers: (
            200,
            body,
            {"content-type": content_type, **self._page_headers},
        )

    def _wallet_options(self, _target: str, _headers: Mapping[str, str]) -> Outcome:
        return (
            200,
            self._wallets,
            {
                "content-type": "application/json",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _known_contracts(self, _target: str, _headers: Mapping[str, str]) -> Outcome:
        if self._contracts is None:  # the catalog is immutable once loaded: built once
            contracts = [
                {
                    "chainId": known.chain_id,
                    "address": known.address,
                    "name": known.name,
                    "symbol": known.symbol,
                    "decimals": known.decimals,
                    "kinds": sorted(known.kinds),
                }
                for known in self._waas.runtime.catalog.contracts.values()
            ]
            contracts.sort(key=lambda c: (c["chainId"], c["address"]))
            self._contracts = _dump({"contracts": contracts})
        return (
            200,
            self._contracts,
            {
                "content-type": "application/json",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _ops_overview(self, path_with_query: str, headers: Mapping[str, str]) -> Outcome:
        principal = self._auth.authenticate(
            "credential",
            headers.get(SIGNATURE_HEADER),
            method="GET",
            path_with_query=path_with_query,
            body=b"",
            document=dict,
        )
        caller = principal.registered()
        try:
            document = self._waas.ops_overview.read(caller)
        except ServiceError as exc:
            raise from_service_error(exc) from None
        return (
            200,
            _dump(document),
            {
                "content-type": "application/json",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
