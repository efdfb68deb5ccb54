"""The capability envelope (docs/design.md section 3): what a session may do, where, how long, how much.

:meth:`Envelope.from_json` is the only way in from JSON: unknown fields, wrong types, floats,
duplicate entries and out-of-range integers are refused with :class:`EnvelopeMalformed` naming
the field. Parsing checks shape only; whether an envelope may be *granted* (tiers, TTLs, caps,
catalog) is decided by :func:`sessionward.domain.grant.validate_grant`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sessionward.reasons import ReasonCode, SessionWardError

from .values import (
    InvalidValue,
    format_usd,
    parse_address,
    parse_amount,
    parse_count,
    parse_timestamp,
    parse_usd,
)

ACCOUNT_PLACEHOLDER = "$account"
MAX_LIST = 64  # entries per list field: bounds grant size and on-chain storage


class EnvelopeMalformed(SessionWardError):
    """The envelope document is not a well-formed envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.ENVELOPE_MALFORMED, message)


class RuleOp(StrEnum):
    """Argument comparisons; the integer codes are the on-chain ``Rule.op`` values."""

    EQ = "eq"
    NE = "ne"
    LTE = "lte"
    GTE = "gte"
    IN = "in"
    NOT_IN = "not_in"

    @property
    def code(self) -> int:
        return _OP_CODES[self]


_OP_CODES = {
    RuleOp.EQ: 0,
    RuleOp.NE: 1,
    RuleOp.LTE: 2,
    RuleOp.GTE: 3,
    RuleOp.IN: 4,
    RuleOp.NOT_IN: 5,
}
_LIST_OPS = frozenset({RuleOp.IN, RuleOp.NOT_IN})

RuleValue = int | bool | str
"""A rule operand as written: an integer, a boolean, or a string (address, decimal, hex, ``$account``).
It is typed against the argument's ABI type when the grant is compiled."""


@dataclass(frozen=True, slots=True)
class ArgRule:
    """``arg <op> values``: a condition on one ABI-decoded argument of a permitted function."""

    arg: str
    op: RuleOp
    values: tuple[RuleValue, ...]

    def to_json(self) -> dict[str, Any]:
        if self.op in _LIST_OPS:
            return {"arg": self.arg, "op": self.op.value, "values": list(self.values)}
        return {"arg": self.arg, "op": self.op.value, "value": self.values[0]}


@dataclass(frozen=True, slots=True)
class Permission:
    """An explicit call permission: ``function`` (human-readable signature) on ``target``."""

    target: str
    function: str
    max_value_per_call: int = 0
    rules: tuple[ArgRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "function": self.function,
            "maxValuePerCall": str(self.max_value_per_call),
            "rules": [rule.to_json() for rule in self.rules],
        }


@dataclass(frozen=True, slots=True)
class ValueLimit:
    """Cumulative native value (wei); refills every ``period`` seconds when ``period > 0``."""

    limit: int
    period: int = 0


@dataclass(frozen=True, slots=True)
class TokenLimit:
    """Cumulative outflow of one ERC-20 in its base units; refills every ``period`` seconds if > 0."""

    token: str
    limit: int
    period: int = 0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` executions per ``interval`` seconds (fixed windows from ``validAfter``)."""

    count: int
    interval: int


@dataclass(frozen=True, slots=True)
class Envelope:
    """A capability envelope as the owner (or the backend asking for access) wrote it.

    Absent optional limits mean: no native value (``value_limit is None``), no token-specific
    limit, no USD cap, no use count, no rate limit, no fee budget. ``valid_after is None`` means
    "from the grant time" and ``expires_at is None`` is refused at grant time.
    """

    chain_id: int
    expires_at: int | None
    capabilities: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()
    allowed_destinations: tuple[str, ...] = ()
    session_key: str | None = None
    valid_after: int | None = None
    value_limit: ValueLimit | None = None
    token_limits: tuple[TokenLimit, ...] = ()
    max_value_usd: int | None = None
    """Micro-USD (``500`` in JSON is ``500_000_000`` here)."""
    max_uses: int | None = None
    rate_limit: RateLimit | None = None
    max_fee_wei: int | None = None

    @classmethod
    def from_json(cls, document: object) -> Envelope:
        """Parse a decoded JSON document (use :mod:`sessionward.domain.strict_json` for bytes)."""
        try:
            return _parse_envelope(document)
        except InvalidValue as exc:
            raise EnvelopeMalformed(exc.message) from None

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form: camelCase, amounts as decimal strings, absent fields omitted."""
        doc: dict[str, Any] = {}
        if self.session_key is not None:
            doc["sessionKey"] = self.session_key
        doc["capabilities"] = list(self.capabilities)
        if self.permissions:
            doc["permissions"] = [p.to_json() for p in self.permissions]
        doc["allowedDestinations"] = list(self.allowed_destinations)
        doc["chainId"] = self.chain_id
        if self.valid_after is not None:
            doc["validAfter"] = self.valid_after
        if self.expires_at is not None:
            doc["expiresAt"] = self.expires_at
        if self.value_limit is not None:
            doc["valueLimit"] = {
                "limit": str(self.value_limit.limit),
                "period": self.value_limit.period,
            }
        if self.token_limits:
            doc["tokenLimits"] = [
                {"token": t.token, "limit": str(t.limit), "period": t.period}
                for t in self.token_limits
            ]
        if self.max_value_usd is not None:
            doc["maxValueUsd"] = format_usd(self.max_value_usd)
        if self.max_uses is not None:
            doc["maxUses"] = self.max_uses
        if self.rate_limit is not None:
            doc["rateLimit"] = {
                "count": self.rate_limit.count,
                "interval": self.rate_limit.interval,
            }
        if self.max_fee_wei is not None:
            doc["maxFeeWei"] = str(self.max_fee_wei)
        return doc


# --- parsing -------------------------------------------------------------------------------

_T = TypeVar("_T")

_ENVELOPE_FIELDS = frozenset(
    {
        "sessionKey", "capabilities", "permissions", "allowedDestinations", "chainId", "validAfter",
        "expiresAt", "valueLimit", "tokenLimits", "maxValueUsd", "maxUses", "rateLimit", "maxFeeWei",
    }
)  # fmt: skip


def _object(
    value: object, path: str, allowed: frozenset[str], required: frozenset[str] = frozenset()
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidValue(path, "expected an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidValue(path, f"unknown field {unknown[0]!r}")
    missing = sorted(required - set(value))
    if missing:
        raise InvalidValue(path, f"missing field {missing[0]!r}")
    return value


def _list(
    value: object, path: str, item: Callable[[object, str], _T], *, unique: bool = True
) -> tuple[_T, ...]:
    if not isinstance(value, list):
        raise InvalidValue(path, "expected a list")
    if len(value) > MAX_LIST:
        raise InvalidValue(path, f"at most {MAX_LIST} entries")
    items = tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))
    if unique and len(set(items)) != len(items):
        raise InvalidValue(path, "duplicate entries")
    return items


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 256 or not value.isprintable():
        raise InvalidValue(path, "expected a non-empty printable string (max 256 characters)")
    return value


def _rule_value(value: object, path: str) -> RuleValue:
    if isinstance(value, bool | int):
        if not isinstance(value, bool) and not -(2**255) <= value < 2**256:
            raise InvalidValue(path, "integer out of the 256-bit range")
        return value
    if isinstance(value, str) and 0 < len(value) <= 80:
        return value
    raise InvalidValue(path, "expected an integer, a boolean or a string")


def _rule(value: object, path: str) -> ArgRule:
    doc = _object(
        value, path, frozenset({"arg", "op", "value", "values"}), frozenset({"arg", "op"})
    )
    arg = _name(doc["arg"], f"{path}.arg")
    try:
        op = RuleOp(doc["op"])
    except ValueError:
        raise InvalidValue(
            f"{path}.op", f"unknown operator; expected one of {[o.value for o in RuleOp]}"
        ) from None
    if op in _LIST_OPS:
        if "value" in doc or "values" not in doc:
            raise InvalidValue(path, f"operator {op.value!r} takes 'values' (a list)")
        values = _list(doc["values"], f"{path}.values", _rule_value)
        if not values:
            raise InvalidValue(f"{path}.values", "must not be empty")
    else:
        if "values" in doc or "value" not in doc:
            raise InvalidValue(path, f"operator {op.value!r} takes 'value'")
        values = (_rule_value(doc["value"], f"{path}.value"),)
    return ArgRule(arg, op, values)


def _permission(value: object, path: str) -> Permission:
    doc = _object(
        value,
        path,
        frozenset({"target", "function", "maxValuePerCall", "rules"}),
        frozenset({"target", "function"}),
    )
    return Permission(
        target=parse_address(doc["target"], f"{path}.target"),
        function=_name(doc["function"], f"{path}.function"),
        max_value_per_call=parse_amount(doc.get("maxValuePerCall", 0), f"{path}.maxValuePerCall"),
        rules=_list(doc.get("rules", []), f"{path}.rules", _rule, unique=False),
    )


def _token_limit(value: object, path: str) -> TokenLimit:
    doc = _object(
        value, path, frozenset({"token", "limit", "period"}), frozenset({"token", "limit"})
    )
    return TokenLimit(
        token=parse_address(doc["token"], f"{path}.token"),
        limit=parse_amount(doc["limit"], f"{path}.limit"),
        period=parse_timestamp(doc.get("period", 0), f"{path}.period"),
    )


def _parse_envelope(document: object) -> Envelope:
    doc = _object(document, "envelope", _ENVELOPE_FIELDS, frozenset({"chainId"}))
    value_limit = None
    if "valueLimit" in doc:
        v = _object(
            doc["valueLimit"], "valueLimit", frozenset({"limit", "period"}), frozenset({"limit"})
        )
        value_limit = ValueLimit(
            parse_amount(v["limit"], "valueLimit.limit"),
            parse_timestamp(v.get("period", 0), "valueLimit.period"),
        )
    rate_limit = None
    if "rateLimit" in doc:
        r = _object(
            doc["rateLimit"],
            "rateLimit",
            frozenset({"count", "interval"}),
            frozenset({"count", "interval"}),
        )
        rate_limit = RateLimit(
            parse_count(r["count"], "rateLimit.count"),
            parse_count(r["interval"], "rateLimit.interval"),
        )
    token_limits = _list(doc.get("tokenLimits", []), "tokenLimits", _token_limit)
    if len({t.token for t in token_limits}) != len(token_limits):
        raise InvalidValue("tokenLimits", "a token appears twice")
    return Envelope(
        chain_id=parse_count(doc["chainId"], "chainId", maximum=2**64 - 1),
        expires_at=parse_timestamp(doc["expiresAt"], "expiresAt") if "expiresAt" in doc else None,
        capabilities=_list(doc.get("capabilities", []), "capabilities", _name),
        permissions=_list(doc.get("permissions", []), "permissions", _permission),
        allowed_destinations=_list(
            doc.get("allowedDestinations", []), "allowedDestinations", parse_address
        ),
        session_key=parse_address(doc["sessionKey"], "sessionKey") if "sessionKey" in doc else None,
        valid_after=parse_timestamp(doc["validAfter"], "validAfter")
        if "validAfter" in doc
        else None,
        value_limit=value_limit,
        token_limits=token_limits,
        max_value_usd=parse_usd(doc["maxValueUsd"], "maxValueUsd")
        if "maxValueUsd" in doc
        else None,
        max_uses=parse_count(doc["maxUses"], "maxUses") if "maxUses" in doc else None,
        rate_limit=rate_limit,
        max_fee_wei=parse_amount(doc["maxFeeWei"], "maxFeeWei") if "maxFeeWei" in doc else None,
    )
