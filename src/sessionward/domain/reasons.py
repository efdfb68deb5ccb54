"""The reason codes, re-exported: their home is :mod:`sessionward.reasons` (the bottom layer,
importable by ``crypto`` too); this module keeps today's ``sessionward.domain.reasons`` imports
working."""

from sessionward.reasons import ReasonCode, SessionWardError

__all__ = ["ReasonCode", "SessionWardError"]
