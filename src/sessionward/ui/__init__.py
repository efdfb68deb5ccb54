"""The session review pages served at ``/ui`` (owner) and ``/ui/ops`` (ops).

Static HTML, CSS and vanilla JavaScript (no build step, no external asset) plus one JSON read
for the ops console. The owner page talks to the ordinary API (``ListAccess``,
``GetSessionUsage``, ``RevokeAccess``...) with requests it signs *in the browser* with an owner
device key (P-256, WebCrypto); the ops page reads ``GET /ui/api/ops/overview``, signed the same
way by an ops credential. Private keys are handed to the page in the URL fragment (or pasted
into its connect form) and never sent to the server: see docs in :mod:`.routes`.
"""

from .routes import OPS_OVERVIEW_PATH, UI_PREFIX, UiRoutes, is_ui_path

__all__ = ["OPS_OVERVIEW_PATH", "UI_PREFIX", "UiRoutes", "is_ui_path"]
