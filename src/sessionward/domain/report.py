"""The delegation-health report's records and their one JSON codec.

The records hold the exact integers the store's telemetry queries count
(:mod:`sessionward.store.telemetry` computes them; its docstring defines every metric); rates
and means are derived from them here, never stored. Pure: no I/O.

The JSON document (``sessionward report --format json``, the ops overview) is written by one
codec, :func:`to_json`, and read back by :func:`from_json`, from each record's *layout*: an
ordered mapping of JSON key to attribute (a field, or a derived property, written but never
read), or to a nested layout (a JSON object grouping attributes). A record without a layout of
its own is written field by field with camelCase keys. Every float (a rate, a mean) is rounded
to :data:`RATE_DIGITS` places; the exact counts stand beside it. Reading converts each field to
its annotated type; a field absent from the document takes its default, or (``from_parent``
in the field's metadata) the value of the enclosing record's field of that name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, ClassVar, Final, Self, TypeVar, Union

CONTEXT_MISMATCH_REASONS: Final = ("CHAIN_MISMATCH", "ACCOUNT_MISMATCH")
"""Reason codes of a decision made in the wrong context (chain or account)."""
POST_REVOCATION_REASONS: Final = ("SESSION_REVOKED", "CREDENTIAL_REVOKED")
"""Reason codes of an attempt made after a revocation."""
RATE_DIGITS: Final = 6
"""Rates in JSON are rounded to this many decimal places (the exact counts are beside them)."""

Layout = Mapping[str, "str | Layout"]
"""JSON key -> attribute name, or -> a nested layout (a JSON object of its own)."""


# --- the codec ----------------------------------------------------------------------------

R = TypeVar("R", bound="JsonRecord")


class JsonRecord:
    """A report record: ``to_json()`` and ``from_json()`` through the module's codec."""

    __slots__ = ()
    JSON_LAYOUT: ClassVar[Layout | None] = None
    """The record's document layout; ``None``: its fields, camelCase keys."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document (camelCase keys, rates with their exact counts)."""
        return to_json(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None, **parent: Any) -> Self:
        """The record :meth:`to_json` wrote (derived values are recomputed, not read).
        ``parent``: the enclosing record's fields, for fields read ``from_parent``."""
        return from_json(cls, doc, parent)


def to_json(record: JsonRecord) -> dict[str, Any]:
    """``record`` as a JSON-ready document, by its layout."""
    return _write(record, layout_of(type(record)))


def from_json(
    cls: type[R], doc: Mapping[str, Any] | None, parent: Mapping[str, Any] | None = None
) -> R:
    """The ``cls`` record of ``doc`` (``None``: the record of defaults, for a document written
    before the record existed)."""
    if doc is None:
        return cls()
    flat: dict[str, Any] = {}
    _read_into(flat, doc, layout_of(cls))
    hints = _field_types(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in flat:
            values[f.name] = _decode(hints[f.name], flat[f.name], values)
        elif "from_parent" in f.metadata and parent is not None:
            values[f.name] = parent[f.metadata["from_parent"]]
    return cls(**values)


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type[JsonRecord]) -> dict[str, Any]:
    """The record type's resolved annotations (computed once per type)."""
    hints = _FIELD_TYPES.get(cls)
    if hints is None:
        hints = _FIELD_TYPES[cls] = typing.get_type_hints(cls)
    return hints


def layout_of(cls: type[JsonRecord]) -> Layout:
    """The record type's layout: its own, or its fields with camelCase keys."""
    if cls.JSON_LAYOUT is not None:
        return cls.JSON_LAYOUT
    return {_camel(f.name): f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _write(record: object, layout: Layout) -> dict[str, Any]:
    return {
        key: _write(record, target)
        if not isinstance(target, str)
        else _encode(getattr(record, target))
        for key, target in layout.items()
    }


def _encode(value: object) -> Any:
    if isinstance(value, JsonRecord):
        return to_json(value)
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if isinstance(value, float):
        return round(value, RATE_DIGITS)
    return value


def _read_into(flat: dict[str, Any], doc: Mapping[str, Any], layout: Layout) -> None:
    for key, target in layout.items():
        if key not in doc:
            continue
        if isinstance(target, str):
            flat[target] = doc[key]
        else:
            _read_into(flat, doc[key], target)


def _decode(hint: Any, value: Any, siblings: Mapping[str, Any]) -> Any:
    """``value`` as the annotated type: int, str, an optional one, a tuple of records, a record
    (read with the fields decoded before it as its parent)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(inner, value, siblings)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_decode(item, v, siblings) for v in value)
    if isinstance(hint, type) and issubclass(hint, JsonRecord):
        return hint.from_json(value, **siblings)
    return hint(value)


# --- records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate(JsonRecord):
    """``numerator / denominator``, kept as two exact integers; undefined (None) when the
    denominator is 0, never a division by zero."""

    JSON_LAYOUT: ClassVar[Layout] = {
        "numerator": "numerator",
        "denominator": "denominator",
        "value": "value",
    }

    numerator: int
    denominator: int

    @property
    def fraction(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True, slots=True)
class DenialsByClass(JsonRecord):
    """Delegated decisions of one action class and how many were denied."""

    JSON_LAYOUT: ClassVar[Layout] = {
        "actionClass": "action_class",
        "decisions": "decisions",
        "denied": "denied",
        "denialRate": "denial_rate",
    }

    action_class: str
    decisions: int
    denied: int

    @property
    def denial_rate(self) -> Rate:
        return Rate(self.denied, self.decisions)


@dataclass(frozen=True, slots=True)
class DenialsByReason(JsonRecord):
    """Denied decisions carrying one reason code, against all decisions and all denials (the
    totals are the enclosing :class:`WeeklyMetrics`' ``decisions`` and ``denied``)."""

    JSON_LAYOUT: ClassVar[Layout] = {
        "reason": "reason",
        "denied": "denied",
        "shareOfDecisions": "share_of_decisions",
        "shareOfDenials": "share_of_denials",
    }

    reason: str
    denied: int
    decisions_total: int = field(metadata={"from_parent": "decisions"})
    denied_total: int = field(metadata={"from_parent": "denied"})

    @property
    def share_of_decisions(self) -> Rate:
        return Rate(self.denied, self.decisions_total)

    @property
    def share_of_denials(self) -> Rate:
        return Rate(self.denied, self.denied_total)


@dataclass(frozen=True, slots=True)
class Hit(JsonRecord):
    """A name (reason code or rule) and how many denials it was hit by."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ConstraintsByClass(JsonRecord):
    """The constraints one action class hit most: top reason codes and top rules, most hit
    first (ties by name, byte order)."""

    action_class: str
    denied: int
    reasons: tuple[Hit, ...]
    rules: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class LifetimeByClass(JsonRecord):
    """Sessions that ended in the period and the sum of their lifetimes (seconds).
    ``action_class`` is ``None`` for the overall figure (each session once)."""

    JSON_LAYOUT: ClassVar[Layout] = {
        "actionClass": "action_class",
        "sessions": "sessions",
        "totalSeconds": "total_seconds",
        "meanSeconds": "mean_seconds",
    }

    action_class: str | None
    sessions: int
    total_seconds: int

    @property
    def mean(self) -> Fraction | None:
        return Fraction(self.total_seconds, self.sessions) if self.sessions else None

    @property
    def mean_seconds(self) -> float | None:
        return self.total_seconds / self.sessions if self.sessions else None


@dataclass(frozen=True, slots=True)
class DurationCount(JsonRecord):
    """How many alerts took exactly ``seconds`` to be acted on."""

    seconds: int
    count: int


@dataclass(frozen=True, slots=True)
class TimeToRevoke(JsonRecord):
    """Critical alerts of the period, how many were acted on by stopping the delegation, and
    the distribution of ``action_at - at`` over those (percentiles None when there are none)."""

    critical_alerts: int
    stopped: int
    p50_seconds: int | None
    p95_seconds: int | None
    max_seconds: int | None
    distribution: tuple[DurationCount, ...]


@dataclass(frozen=True, slots=True)
class CredentialAttempts(JsonRecord):
    """Post-revocation attempts made with one credential (``None``: no credential recorded)."""

    credential_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class DailyDecisions(JsonRecord):
    """Delegated decisions of one UTC day (``day_start`` in unix seconds)."""

    JSON_LAYOUT: ClassVar[Layout] = {
        "day": "day",
        "dayStart": "day_start",
        "allowed": "allowed",
        "denied": "denied",
    }

    day_start: int
    allowed: int
    denied: int

    @property
    def day(self) -> str:
        """The day as ``YYYY-MM-DD``."""
        return datetime.fromtimestamp(self.day_start, UTC).date().isoformat()


@dataclass(frozen=True, slots=True)
class TimeToAgreement(JsonRecord):
    """The reconciler's ``chain_disagreement`` alerts of the period (database and chain seen
    disagreeing), how many agree again, and ``action_at - at`` over those (the time to
    agreement; percentiles nearest-rank, None when none agreed). A document written before the
    reconciler existed reads as the record of zeros."""

    disagreements: int = 0
    agreed: int = 0
    p50_seconds: int | None = None
    p95_seconds: int | None = None
    max_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class WeeklyMetrics(JsonRecord):
    """Every delegation-health number of one period (definitions:
    :mod:`sessionward.store.telemetry`).

    Lists are ordered: classes by name, reasons and credentials most frequent first (ties by
    name), days in time order.
    """

    JSON_LAYOUT: ClassVar[Layout] = {
        "period": {"since": "since", "until": "until"},
        "decisions": {
            "total": "decisions",
            "allowed": "allowed",
            "denied": "denied",
            "denialRate": "denial_rate",
        },
        "denialsByClass": "denials_by_class",
        "denialsByReason": "denials_by_reason",
        "contextMismatch": {"decisions": "context_mismatches", "rate": "context_mismatch_rate"},
        "postRevocation": {
            "attempts": "post_revocation_attempts",
            "byCredential": "post_revocation_by_credential",
        },
        "topConstraints": "top_constraints",
        "sessionLifetime": {"overall": "lifetime", "byClass": "lifetime_by_class"},
        "timeToRevoke": "time_to_revoke",
        "daily": "daily",
        "timeToAgreement": "time_to_agreement",
    }

    since: int
    until: int
    decisions: int
    denied: int
    context_mismatches: int
    post_revocation_attempts: int
    denials_by_class: tuple[DenialsByClass, ...]
    denials_by_reason: tuple[DenialsByReason, ...]
    top_constraints: tuple[ConstraintsByClass, ...]
    post_revocation_by_credential: tuple[CredentialAttempts, ...]
    lifetime: LifetimeByClass
    lifetime_by_class: tuple[LifetimeByClass, ...]
    time_to_revoke: TimeToRevoke
    daily: tuple[DailyDecisions, ...]
    time_to_agreement: TimeToAgreement = TimeToAgreement()

    @property
    def allowed(self) -> int:
        return self.decisions - self.denied

    @property
    def denial_rate(self) -> Rate:
        return Rate(self.denied, self.decisions)

    @property
    def context_mismatch_rate(self) -> Rate:
        return Rate(self.context_mismatches, self.decisions)


__all__ = [
    "CONTEXT_MISMATCH_REASONS",
    "POST_REVOCATION_REASONS",
    "RATE_DIGITS",
    "ConstraintsByClass",
    "CredentialAttempts",
    "DailyDecisions",
    "DenialsByClass",
    "DenialsByReason",
    "DurationCount",
    "Hit",
    "JsonRecord",
    "LifetimeByClass",
    "Rate",
    "TimeToAgreement",
    "TimeToRevoke",
    "WeeklyMetrics",
    "from_json",
    "layout_of",
    "to_json",
]
