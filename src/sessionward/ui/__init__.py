"""The session review pages served at ``/ui`` (owner), ``/ui/approve`` (the owner approves a
pending session with their browser wallet) and ``/ui/ops`` (ops), mounted on the API
app by :mod:`sessionward.server` (this package uses the API's authentication and error shape; the
API does not know it).

Static HTML, CSS and vanilla JavaScript (no build step, no external asset; the approval page's
Keccak, EIP-712 and secp256k1 recovery are in ``static/ethsig.js``) plus two JSON reads: the ops
console's and the public list of known contracts. The owner page talks to the ordinary API (``ListAccess``,
``GetSessionUsage``, ``RevokeAccess``...) with requests it signs *in the browser* with this
browser's owner device key: a non-extractable WebCrypto P-256 key kept in IndexedDB and paired
by the owner's one-time code (typed into a form, never in a URL). The ops page reads
``GET /ui/api/ops/overview``, signed by an ops credential pasted into its form. No private key
or pairing code is ever put in a URL: see :mod:`.routes`.
"""

from .routes import OPS_OVERVIEW_PATH, UI_PREFIX, UiRoutes, is_ui_path

__all__ = ["OPS_OVERVIEW_PATH", "UI_PREFIX", "UiRoutes", "is_ui_path"]
