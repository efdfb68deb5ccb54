"""Paths the API app hands to another component, mounted by whoever composes the HTTP service.

:mod:`sessionward.server` mounts the review pages of :mod:`sessionward.ui` at ``/ui``; the API
itself knows no mounted component (the layers: ``ui`` may import ``api``, never the reverse).

Contracts:

- The app asks its mounts, in order, whether they own a path (after ``/v1/Waas/``, before its own
  endpoints); the first that does answers it.
- A mounted request gets what every request of the app gets: its ``X-Request-Id``, the error
  shape of :mod:`.errors` for an :class:`~.errors.ApiError` it raises, 503 for a database outage,
  a logged 500 for anything else, CORS, and a metrics label (the mount's ``label``, one value for
  all its paths, so a client cannot create label values at will).
- Its routes are built once per app with the app's :class:`~.auth.Authenticator`, so a signed
  mounted read shares the replay store and the rate limits of every other request; they answer
  in a worker thread (they may query the database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sessionward.service.waas import Waas

from .answers import Outcome
from .auth import Authenticator


class MountedRoutes(Protocol):
    """What a mount answers with. Synchronous; raises :class:`~.errors.ApiError` to refuse."""

    def answer(
        self, verb: str, path: str, path_with_query: str, headers: Mapping[str, str]
    ) -> Outcome:
        """The response to ``verb path``; ``path_with_query`` is the raw request target (what a
        request signature covers)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """A component served under the app: which paths it owns and how its routes are built."""

    label: str
    """The metrics label of every path it owns."""
    owns: Callable[[str], bool]
    """True for the paths (without query) it answers."""
    routes: Callable[[Waas, Authenticator], MountedRoutes]
    """Builds its routes over the app's service and authenticator (once per app)."""
