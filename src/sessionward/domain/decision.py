"""What the policy engine answers: a verdict, every violation with its rule, and the charges."""

from __future__ import annotations

from dataclasses import dataclass

from sessionward.reasons import ReasonCode, SessionWardError

from .usage import Charge


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: a stable ``code``, the ``rule`` that fired (``permissions[0x…].rules[to in …]``,
    ``tokenLimits[0x…]``, ``expiresAt`` …), the inner call it concerns (``None`` for the whole
    request) and a plain-language ``detail``."""

    code: ReasonCode
    rule: str
    detail: str
    call_index: int | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"code": self.code.value, "rule": self.rule, "detail": self.detail}
        if self.call_index is not None:
            doc["call"] = self.call_index
        return doc


@dataclass(frozen=True, slots=True)
class CallIntent:
    """One decoded inner call, for the quote shown to the caller and for telemetry."""

    index: int
    to: str
    value: int
    action_class: str
    function: str | None
    arguments: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict of :func:`sessionward.domain.policy.evaluate`.

    ``allowed`` is true exactly when ``violations`` is empty. ``charges`` are what the store must
    reserve atomically before signing (they are computed for denied decisions too, so that
    telemetry can show what was attempted).
    """

    violations: tuple[Violation, ...]
    intents: tuple[CallIntent, ...] = ()
    charges: tuple[Charge, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.violations

    @property
    def reasons(self) -> tuple[ReasonCode, ...]:
        """Distinct reason codes in the order they were found."""
        return tuple(dict.fromkeys(v.code for v in self.violations))

    @property
    def action_class(self) -> str:
        """The action class for telemetry: the only class in the request, ``batch`` if several."""
        classes = {i.action_class for i in self.intents}
        if not classes:
            return "unknown"
        return classes.pop() if len(classes) == 1 else "batch"


class GrantRefused(SessionWardError):
    """Grant-time validation failed; ``violations`` lists every problem found."""

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        first = violations[0]
        super().__init__(
            first.code, "; ".join(f"{v.code.value} ({v.rule}): {v.detail}" for v in violations)
        )
        self.violations = violations
