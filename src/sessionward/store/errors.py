"""Errors of the store that are not policy refusals (those are reason codes in outcomes)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class AlreadyExists(StoreError):
    """An identifier or a unique key is already taken (a programming or replay error)."""


class StateChurn(StoreError):
    """A row kept changing between a refused check and the read that explains it.

    Only possible on PostgreSQL, after several attempts; the caller may retry the whole request.
    """


class MarkingMissed(StoreError):
    """An Execute's marking (``quoted`` → ``pending``) found its transaction no longer quoted,
    although the execution transaction had locked it while quoted: an invariant broken. The
    execution transaction rolls back, so its signature is never committed."""
