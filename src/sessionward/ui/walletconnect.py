"""WalletConnect on the approval page, where configured (off by default).

With ``SESSIONWARD_WALLETCONNECT_PROJECT_ID`` set, the approval page offers WalletConnect v2
beside the browser's own wallet (``window.ethereum``): it loads WalletConnect's
``EthereumProvider`` (npm ``@walletconnect/ethereum-provider``, bundled for the browser by
``npm run build:walletconnect``), which pairs with a phone wallet through WalletConnect's relay
and is then used exactly like ``window.ethereum`` (same account, chain and signature checks).

Settings (environment variables, read when the review pages are mounted):

``SESSIONWARD_WALLETCONNECT_PROJECT_ID``  the WalletConnect Cloud project id (32 hex digits); unset:
                                          WalletConnect is not offered
``SESSIONWARD_WALLETCONNECT_RELAY_URL``   the relay (default ``wss://relay.walletconnect.org``):
                                          ``wss://``, or ``ws://`` on a loopback host only
``SESSIONWARD_WALLETCONNECT_BUNDLE``      the browser bundle of the provider (default
                                          ``build/walletconnect.js``, what the npm script writes)

Contracts: a project id is public configuration (every dapp's page carries its own), never a
secret; an invalid setting refuses to start (:class:`WalletConnectConfigError`) rather than
serving a page that cannot work; the pages' Content-Security-Policy lets scripts connect to the
relay's origin only when WalletConnect is configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

ENV_PROJECT_ID: Final = "SESSIONWARD_WALLETCONNECT_PROJECT_ID"
ENV_RELAY_URL: Final = "SESSIONWARD_WALLETCONNECT_RELAY_URL"
ENV_BUNDLE: Final = "SESSIONWARD_WALLETCONNECT_BUNDLE"
DEFAULT_RELAY_URL: Final = "wss://relay.walletconnect.org"
DEFAULT_BUNDLE: Final = Path("build") / "walletconnect.js"
MAX_BUNDLE_BYTES: Final = 8 * 1024 * 1024
_PROJECT_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class WalletConnectConfigError(ValueError):
    """A WalletConnect setting that cannot work; the message names the variable."""


@dataclass(frozen=True, slots=True)
class WalletConnect:
    """WalletConnect as the approval page offers it."""

    project_id: str
    relay_url: str
    bundle: bytes
    """The provider's browser bundle (an ES module exporting ``EthereumProvider``)."""

    @property
    def relay_origin(self) -> str:
        """What the Content-Security-Policy's ``connect-src`` must allow (scheme, host, port)."""
        parts = urlsplit(self.relay_url)
        return f"{parts.scheme}://{parts.netloc}"

    def page_config(self) -> dict[str, str]:
        """What the page reads from ``/ui/api/wallets`` (public: no secret in it)."""
        return {"projectId": self.project_id, "relayUrl": self.relay_url}


def check_relay_url(url: str) -> str:
    """``url`` if it is a relay URL the page may use: ``wss://host[:port][/path]``, or ``ws://``
    on a loopback host (development and tests); no credentials, query or fragment."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    local = parts.scheme == "ws" and parts.hostname in _LOOPBACK
    if not (secure or local) or not parts.hostname:
        raise WalletConnectConfigError(
            f"{ENV_RELAY_URL} must be a wss:// URL (ws:// only on a loopback host): {url!r}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise WalletConnectConfigError(
            f"{ENV_RELAY_URL} takes no credentials, query or fragment: {url!r}"
        )
    return url


def walletconnect_from_environ(environ: Mapping[str, str]) -> WalletConnect | None:
    """The configured WalletConnect, or ``None`` when ``SESSIONWARD_WALLETCONNECT_PROJECT_ID``
    is unset or empty. Raises :class:`WalletConnectConfigError` for a setting that cannot work
    (a malformed project id or relay URL, a missing or oversized bundle)."""
    project_id = environ.get(ENV_PROJECT_ID, "").strip()
    if not project_id:
        return None
    if not _PROJECT_ID.match(project_id):
        raise WalletConnectConfigError(f"{ENV_PROJECT_ID} must be 32 lower-case hex digits")
    relay_url = check_relay_url(environ.get(ENV_RELAY_URL, "").strip() or DEFAULT_RELAY_URL)
    bundle_path = Path(environ.get(ENV_BUNDLE, "").strip() or DEFAULT_BUNDLE)
    try:
        size = bundle_path.stat().st_size
    except OSError:
        raise WalletConnectConfigError(
            f"{ENV_BUNDLE}: no WalletConnect bundle at {bundle_path} "
            "(build it with `npm run build:walletconnect`)"
        ) from None
    if not 0 < size <= MAX_BUNDLE_BYTES:
        raise WalletConnectConfigError(f"{ENV_BUNDLE}: {bundle_path} is empty or too large")
    return WalletConnect(project_id, relay_url, bundle_path.read_bytes())
