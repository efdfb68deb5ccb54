"""What the HTTP layer passes around for an answered request: the one definition, used by the
API app, idempotent replays and mounted components (the review pages)."""

from __future__ import annotations

Outcome = tuple[int, bytes, dict[str, str]]
"""Status, body and headers of an answered request (``content-type`` among the headers when
the body is not JSON)."""
