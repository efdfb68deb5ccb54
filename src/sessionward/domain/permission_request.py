"""ERC-7715 permission requests (``wallet_grantPermissions``) in the envelope's words.

:func:`envelope_from_permission_request` reads the ``params`` of a ``wallet_grantPermissions``
call (a list of ``PermissionRequest`` objects, or one of them) and writes the capability
envelope that enforces it, or refuses. :func:`permission_response` writes a granted envelope
back as ERC-7715 ``PermissionResponse`` objects. Pure: no I/O.

What maps onto the envelope (everything else is refused, never silently dropped):

* ``erc20-token-transfer`` / ``erc20-token-allowance`` (a total allowance),
  ``erc20-token-periodic`` (an allowance that refills every ``periodDuration`` seconds from
  ``startTime``) and ``erc20-token-stream`` (see :func:`stream_as_periodic`): the
  ``erc20.transfer`` capability on the token with a ``tokenLimits`` entry. The recipients must
  be named by a ``payee`` policy (or rule): SessionWard never delegates a transfer to anyone.
* ``expiry`` (and an ``expiry`` rule: the earlier one applies) becomes ``expiresAt``, exactly:
  a request that outlives its tier is refused at grant time (``TTL_EXCEEDS_TIER``), never
  shortened.
* ``call-limit`` becomes ``maxUses``, ``rate-limit`` becomes ``rateLimit``; when several entries
  carry one, the narrowest applies.
* ``signer``: ``wallet`` (SessionWard holds the session key, the backend uses it through its
  credential) or ``account`` naming the backend credential's own address. A ``key``/``keys``
  signer asks for a key SessionWard does not generate: refused.

Refusals (:class:`PermissionRequestRefused`): ``PERMISSION_TYPE_UNSUPPORTED`` for a permission,
policy, rule or signer type this module does not know (an entry marked ``required: false`` is
left out instead, and listed in :attr:`ImportedRequest.left_out`); ``PERMISSION_UNENFORCEABLE``
for a known type whose terms SessionWard cannot enforce exactly (native-token transfers, which
the account never delegates; a transfer to any recipient; a gas-unit limit; an attenuation the
request forbids with ``isAdjustmentAllowed: false``; a token asked twice); ``CHAIN_MISMATCH`` /
``ACCOUNT_MISMATCH`` / ``SIGNER_MISMATCH`` / ``EXPIRY_MISSING`` / ``INPUT_MALFORMED`` for what
their names say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from sessionward.reasons import ReasonCode, SessionWardError

from .envelope import Envelope
from .values import (
    InvalidValue,
    parse_address,
    parse_amount,
    parse_count,
    parse_timestamp,
)

_HEX_QUANTITY: Final = re.compile(r"0x[0-9a-fA-F]{1,64}")

MAX_ENTRIES: Final = 16
"""``PermissionRequest`` objects per import (each grants one token): bounds the work."""

ERC20_TRANSFER: Final = "erc20.transfer"
_ERC20_TYPES: Final = frozenset(
    {"erc20-token-transfer", "erc20-token-allowance", "erc20-token-periodic", "erc20-token-stream"}
)
_NATIVE_TYPES: Final = frozenset(
    {
        "native-token-transfer",
        "native-token-allowance",
        "native-token-limit",
        "native-token-periodic",
        "native-token-stream",
    }
)
_UNENFORCEABLE_POLICIES: Final = {
    "gas-limit": "a limit in gas units: SessionWard bounds fees in wei (maxFeeWei), not gas",
    "spent-limit": "a native-token spend limit: plain native transfers are never delegated",
}


class PermissionRequestRefused(SessionWardError):
    """The request cannot become an envelope. ``path`` names the field (``[0].permission``)."""

    def __init__(self, code: ReasonCode, path: str, message: str) -> None:
        super().__init__(code, f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True, slots=True)
class ImportedRequest:
    """The envelope a request becomes, and what was changed or left out on the way."""

    envelope: dict[str, Any]
    """The envelope document (``Envelope.from_json`` reads it), ready for AuthorizeRemoteAccess."""
    adjustments: tuple[str, ...] = ()
    """Plain-language notes on every term granted narrower than asked (a stream as a periodic
    allowance, the narrowest of several call limits)."""
    left_out: tuple[str, ...] = ()
    """Paths of optional (``required: false``) entries of types SessionWard does not know."""
    justifications: tuple[str, ...] = field(default=())
    """The dapp's ``justification`` texts, for the owner's consent screen (never enforced)."""


@dataclass(frozen=True, slots=True)
class _Allowance:
    token: str
    limit: int
    period: int
    start: int | None
    path: str
    stream_max: int | None = None
    """A stream's ``maxAmount``: bounds the windows that open before the session's expiry."""


# --- reading a request ----------------------------------------------------------------------


@dataclass(slots=True)
class _Terms:
    """What the entries of one request add up to, as they are read."""

    allowances: list[_Allowance] = field(default_factory=list)
    payees: list[str] = field(default_factory=list)
    expiries: list[int] = field(default_factory=list)
    uses: list[int] = field(default_factory=list)
    rates: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def envelope_from_permission_request(
    request: object,
    *,
    chain_id: int,
    account: str,
    backend_address: str | None,
) -> ImportedRequest:
    """The envelope that enforces ``request`` on ``account`` (chain ``chain_id``) for the backend
    whose credential address is ``backend_address`` (``None``: a key that is not an address).

    Raises :class:`PermissionRequestRefused` (see the module docstring); whether the envelope
    may be granted (tiers, TTL, caps, catalog) is then for :func:`~.grant.validate_grant`."""
    terms = _Terms()
    for i, entry in enumerate(_entries(request)):
        where = f"[{i}]"
        _check_chain(entry, where, chain_id)
        _check_account(entry, where, account)
        _check_signer(entry, where, backend_address)
        if "expiry" in entry:
            terms.expiries.append(_timestamp(entry["expiry"], f"{where}.expiry"))
        for j, perm in enumerate(_permissions(entry, where)):
            path = f"{where}.permissions[{j}]" if "permissions" in entry else f"{where}.permission"
            _read_permission(perm, path, terms)
        for key in ("policies", "rules"):
            for j, policy in enumerate(_list(entry.get(key, []), f"{where}.{key}")):
                _read_policy(policy, f"{where}.{key}[{j}]", terms)
    if not terms.allowances:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "permission",
            "the request grants no ERC-20 allowance SessionWard can enforce",
        )
    if not terms.payees:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "policies",
            "a transfer to any recipient is never delegated: name the recipients with a "
            "'payee' policy",
        )
    if not terms.expiries:
        raise PermissionRequestRefused(ReasonCode.EXPIRY_MISSING, "expiry", "required")
    expires_at = min(terms.expiries)
    notes = terms.notes
    allowances = [_within_max(a, expires_at, notes) for a in terms.allowances]
    envelope = _envelope(
        chain_id, allowances, terms.payees, expires_at, terms.uses, terms.rates, notes
    )
    return ImportedRequest(envelope, tuple(notes), tuple(terms.left_out), tuple(terms.texts))


def _read_permission(perm: object, path: str, terms: _Terms) -> None:
    kind = _type_of(perm, path)
    assert isinstance(perm, Mapping)  # _type_of checked it
    if kind in _ERC20_TYPES:
        data = _data(perm, path)
        allowance, note = _erc20(kind, data, path, _adjustable(perm, path))
        terms.allowances.append(allowance)
        if note:
            terms.notes.append(note)
        justification = data.get("justification")
        if isinstance(justification, str) and justification:
            terms.texts.append(justification[:500])
    elif kind in _NATIVE_TYPES:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            path,
            f"{kind}: plain native-token transfers are never delegated (every delegated "
            "call names a function of a known contract)",
        )
    elif perm.get("required") is False:
        terms.left_out.append(path)
    else:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            f"{path}.type",
            f"{kind!r} is not a permission type SessionWard enforces",
        )


def _read_policy(policy: object, path: str, terms: _Terms) -> None:
    kind = _type_of(policy, path)
    assert isinstance(policy, Mapping)  # _type_of checked it
    data = _data(policy, path)
    if kind == "payee":
        for k, a in enumerate(_list(data.get("addresses"), f"{path}.data.addresses")):
            terms.payees.append(_address(a, f"{path}.data.addresses[{k}]"))
    elif kind == "expiry":
        terms.expiries.append(_timestamp(data.get("timestamp"), f"{path}.data.timestamp"))
    elif kind == "call-limit":
        terms.uses.append(_count(data.get("count"), f"{path}.data.count"))
    elif kind == "rate-limit":
        count = _count(data.get("count"), f"{path}.data.count")
        terms.rates.append((count, _count(data.get("interval"), f"{path}.data.interval")))
    elif kind in _UNENFORCEABLE_POLICIES:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE, path, _UNENFORCEABLE_POLICIES[kind]
        )
    elif policy.get("required") is False:
        terms.left_out.append(path)
    else:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            f"{path}.type",
            f"{kind!r} is not a policy or rule type SessionWard enforces",
        )


def _within_max(allowance: _Allowance, expires_at: int, notes: list[str]) -> _Allowance:
    """A stream's allowance with its period lengthened, if need be, so that the windows opening
    before ``expires_at`` add up to at most its ``maxAmount``."""
    if allowance.stream_max is None or allowance.start is None:
        return allowance
    period = cap_windows(
        allowance.limit, allowance.period, allowance.stream_max, allowance.start, expires_at
    )
    if period == allowance.period:
        return allowance
    notes.append(
        f"{allowance.path}: the period is {period} s so that the total until expiry stays "
        f"within maxAmount {allowance.stream_max}"
    )
    return replace(allowance, period=period)


def _envelope(
    chain_id: int,
    allowances: list[_Allowance],
    payees: list[str],
    expires_at: int,
    uses: list[int],
    rates: list[tuple[int, int]],
    notes: list[str],
) -> dict[str, Any]:
    tokens = [a.token for a in allowances]
    seen: set[str] = set()
    for a in allowances:
        if a.token in seen:
            raise PermissionRequestRefused(
                ReasonCode.PERMISSION_UNENFORCEABLE,
                a.path,
                "a second allowance on the same token: one limit per token is enforced",
            )
        seen.add(a.token)
    starts = {a.start for a in allowances if a.start is not None}
    if len(starts) > 1:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "startTime",
            "allowances starting at different times: a session has one start",
        )
    destinations = list(dict.fromkeys([*tokens, *payees]))
    doc: dict[str, Any] = {
        "chainId": chain_id,
        "capabilities": [ERC20_TRANSFER],
        "allowedDestinations": destinations,
        "expiresAt": expires_at,
        "tokenLimits": [
            {"token": a.token, "limit": str(a.limit), "period": a.period} for a in allowances
        ],
    }
    if starts:
        doc["validAfter"] = starts.pop()
    if uses:
        if len(set(uses)) > 1:
            notes.append(f"call-limit: the narrowest of {sorted(set(uses))} applies")
        doc["maxUses"] = min(uses)
    if rates:
        rate = min(rates, key=lambda r: (r[0] / max(r[1], 1), r[0]))
        if len(set(rates)) > 1:
            notes.append(f"rate-limit: the narrowest, {rate[0]} per {rate[1]} s, applies")
        doc["rateLimit"] = {"count": rate[0], "interval": rate[1]}
    return doc


def _erc20(
    kind: str, data: Mapping[str, Any], path: str, adjustable: bool
) -> tuple[_Allowance, str | None]:
    token_field = "address" if "address" in data and "tokenAddress" not in data else "tokenAddress"
    token = _address(data.get(token_field), f"{path}.data.{token_field}")
    start = _timestamp(data["startTime"], f"{path}.data.startTime") if "startTime" in data else None
    if kind == "erc20-token-transfer":
        amount = _amount(data.get("allowance"), f"{path}.data.allowance")
        return _Allowance(token, amount, 0, start, path), None
    if kind == "erc20-token-allowance":
        amount = _amount(data.get("allowanceAmount"), f"{path}.data.allowanceAmount")
        return _Allowance(token, amount, 0, start, path), None
    if kind == "erc20-token-periodic":
        amount = _amount(data.get("periodAmount"), f"{path}.data.periodAmount")
        period = _positive(data.get("periodDuration"), f"{path}.data.periodDuration")
        return _Allowance(token, amount, period, start, path), None
    initial = _amount(data.get("initialAmount", 0), f"{path}.data.initialAmount")
    per_second = _amount(data.get("amountPerSecond"), f"{path}.data.amountPerSecond")
    maximum = _amount(data["maxAmount"], f"{path}.data.maxAmount") if "maxAmount" in data else None
    if start is None:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            f"{path}.data.startTime",
            "a stream needs its start time",
        )
    return _stream(token, initial, per_second, maximum, start, path, adjustable)


def _stream(
    token: str,
    initial: int,
    per_second: int,
    maximum: int | None,
    start: int,
    path: str,
    adjustable: bool,
) -> tuple[_Allowance, str | None]:
    limit, period, exact = stream_as_periodic(initial, per_second, maximum)
    if limit == 0:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            f"{path}.data.initialAmount",
            "a stream with no initial amount has no periodic allowance that never runs ahead of it",
        )
    if not exact and not adjustable:
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            path,
            "a stream is enforced as a periodic allowance that never runs ahead of it, and "
            "the request forbids any adjustment (isAdjustmentAllowed: false)",
        )
    note = None
    if not exact:
        note = (
            f"{path}: the stream of {token} is granted as {limit} every {period} s from "
            f"{start} (never ahead of the stream)"
        )
    return _Allowance(token, limit, period, start, path, stream_max=maximum), note


def stream_as_periodic(initial: int, per_second: int, maximum: int | None) -> tuple[int, int, bool]:
    """A periodic allowance ``(limit, period, exact)`` that never allows more than the stream
    ``min(maximum, initial + per_second * t)`` at any time ``t`` since its start.

    With ``per_second == 0`` the stream is a fixed allowance of ``min(initial, maximum)``:
    ``period`` is 0 and ``exact`` is True. Otherwise ``limit = min(initial, maximum)`` every
    ``period = ceil(limit / per_second)`` seconds: when window ``k`` opens (at ``k * period``)
    the periodic total is ``limit * (k + 1) <= initial + per_second * k * period``, the
    stream's. ``maximum`` is not a periodic term: it holds for the windows up to the session's
    expiry only if the caller checks them (:func:`cap_windows`)."""
    cap = initial if maximum is None else min(initial, maximum)
    if per_second == 0:
        return cap, 0, True
    if cap == 0:
        return 0, 0, False
    return cap, -(-cap // per_second), False


def cap_windows(limit: int, period: int, maximum: int, start: int, expires_at: int) -> int:
    """The period to use so that the windows opening in ``[start, expires_at)`` add up to at most
    ``maximum``: ``period`` itself, or longer."""
    if period == 0 or limit == 0:
        return period
    windows_allowed = maximum // limit
    duration = max(expires_at - start, 1)
    if windows_allowed == 0:
        return period
    return max(period, -(-duration // windows_allowed))


# --- writing a response ---------------------------------------------------------------------


def permission_response(
    envelope: Envelope,
    *,
    account: str,
    context: str,
    signer: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The ERC-7715 ``PermissionResponse`` objects of a granted envelope: one per token limit,
    each with the session's expiry, signer, payee and limits as granted (which may be narrower
    than asked), and ``context`` (the session's opaque identifier).

    Raises :class:`PermissionRequestRefused` (``PERMISSION_TYPE_UNSUPPORTED``) for an envelope
    whose scope has no ERC-7715 form (any capability but ``erc20.transfer``, explicit
    permissions, a native-value limit)."""
    if (
        set(envelope.capabilities) - {ERC20_TRANSFER}
        or envelope.permissions
        or envelope.value_limit is not None
        or not envelope.token_limits
    ):
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            "envelope",
            "only ERC-20 transfer allowances to named payees have an ERC-7715 form",
        )
    tokens = {t.token for t in envelope.token_limits}
    payees = [d for d in envelope.allowed_destinations if d not in tokens]
    policies: list[dict[str, Any]] = [{"type": "payee", "data": {"addresses": payees}}]
    if envelope.max_uses is not None:
        policies.append({"type": "call-limit", "data": {"count": envelope.max_uses}})
    if envelope.rate_limit is not None:
        policies.append(
            {
                "type": "rate-limit",
                "data": {
                    "count": envelope.rate_limit.count,
                    "interval": envelope.rate_limit.interval,
                },
            }
        )
    responses = []
    for limit in envelope.token_limits:
        data: dict[str, Any] = {"tokenAddress": limit.token}
        if limit.period:
            data |= {"periodAmount": hex(limit.limit), "periodDuration": limit.period}
            kind = "erc20-token-periodic"
        else:
            data["allowanceAmount"] = hex(limit.limit)
            kind = "erc20-token-allowance"
        if envelope.valid_after is not None:
            data["startTime"] = envelope.valid_after
        responses.append(
            {
                "chainId": hex(envelope.chain_id),
                "address": account,
                "expiry": envelope.expires_at,
                "signer": dict(signer) if signer is not None else {"type": "wallet", "data": {}},
                "permission": {"type": kind, "data": data},
                "policies": policies,
                "context": context,
            }
        )
    return responses


# --- parsing helpers ------------------------------------------------------------------------


def _fail(path: str, message: str) -> PermissionRequestRefused:
    return PermissionRequestRefused(ReasonCode.INPUT_MALFORMED, path, message)


def _entries(request: object) -> list[Mapping[str, Any]]:
    items = request if isinstance(request, list) else [request]
    if not items:
        raise _fail("request", "no PermissionRequest")
    if len(items) > MAX_ENTRIES:
        raise _fail("request", f"at most {MAX_ENTRIES} PermissionRequest objects")
    entries: list[Mapping[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _fail(f"[{i}]", "expected a PermissionRequest object")
        entries.append(item)
    for i, entry in enumerate(entries[1:], start=1):
        for key in ("chainId", "address", "signer", "to"):
            if entry.get(key) != entries[0].get(key):
                raise _fail(f"[{i}].{key}", "every PermissionRequest of one import must agree")
    return entries


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "expected a list")
    if len(value) > MAX_ENTRIES:
        raise _fail(path, f"at most {MAX_ENTRIES} entries")
    return value


def _type_of(item: object, path: str) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        raise _fail(path, "expected an object with a string 'type'")
    kind: str = item["type"]
    if not 0 < len(kind) <= 64 or not kind.isprintable():
        raise _fail(f"{path}.type", "expected a short printable type name")
    return kind


def _data(item: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    data = item.get("data", {})
    if not isinstance(data, Mapping):
        raise _fail(f"{path}.data", "expected an object")
    return data


def _permissions(entry: Mapping[str, Any], where: str) -> Sequence[Any]:
    if "permission" in entry and "permissions" in entry:
        raise _fail(where, "either 'permission' or 'permissions', not both")
    if "permissions" in entry:
        return _list(entry["permissions"], f"{where}.permissions")
    if "permission" not in entry:
        raise _fail(f"{where}.permission", "required")
    return [entry["permission"]]


def _adjustable(perm: Mapping[str, Any], path: str) -> bool:
    value = perm.get("isAdjustmentAllowed", True)
    if not isinstance(value, bool):
        raise _fail(f"{path}.isAdjustmentAllowed", "expected a boolean")
    return value


def _check_chain(entry: Mapping[str, Any], where: str, chain_id: int) -> None:
    value = entry.get("chainId")
    if isinstance(value, str):
        chain = _hex_int(value, f"{where}.chainId")
    else:
        chain = _count(value, f"{where}.chainId", maximum=2**64 - 1)
    if chain != chain_id:
        raise PermissionRequestRefused(
            ReasonCode.CHAIN_MISMATCH,
            f"{where}.chainId",
            f"the wallet is on chain {chain_id}, the request names chain {chain}",
        )


def _check_account(entry: Mapping[str, Any], where: str, account: str) -> None:
    for key in ("address", "from"):
        if key in entry and _address(entry[key], f"{where}.{key}") != account:
            raise PermissionRequestRefused(
                ReasonCode.ACCOUNT_MISMATCH, f"{where}.{key}", "not this wallet's account"
            )


def _check_signer(entry: Mapping[str, Any], where: str, backend_address: str | None) -> None:
    path = f"{where}.signer"
    if "signer" not in entry:
        if "to" in entry:  # the later drafts name the session account as "to"
            _same_backend(_address(entry["to"], f"{where}.to"), f"{where}.to", backend_address)
            return
        raise _fail(path, "required")
    signer = entry["signer"]
    kind = _type_of(signer, path)
    data = _data(signer, path)
    if kind == "wallet":
        return
    if kind == "account":
        key = "address" if "address" in data else "id"
        _same_backend(_address(data.get(key), f"{path}.data.{key}"), path, backend_address)
        return
    if kind in ("key", "keys"):
        raise PermissionRequestRefused(
            ReasonCode.PERMISSION_UNENFORCEABLE,
            f"{path}.type",
            "session keys are generated in SessionWard's vault: ask for a 'wallet' signer",
        )
    raise PermissionRequestRefused(
        ReasonCode.PERMISSION_TYPE_UNSUPPORTED, f"{path}.type", f"{kind!r} is not a signer type"
    )


def _same_backend(address: str, path: str, backend_address: str | None) -> None:
    if address != backend_address:
        raise PermissionRequestRefused(
            ReasonCode.SIGNER_MISMATCH,
            path,
            "the signer account is not the address of the backend credential being authorized",
        )


def _hex_int(value: str, path: str) -> int:
    """A ``0x`` hex quantity of 1 to 64 hex digits (no sign, underscore or space)."""
    if _HEX_QUANTITY.fullmatch(value) is None:
        raise _fail(path, "expected a 0x hex quantity (at most 64 hex digits)")
    return int(value[2:], 16)


def _amount(value: object, path: str) -> int:
    """A uint256 from a ``0x`` hex quantity (the ERC's form), a decimal string or an integer."""
    if isinstance(value, str) and value.startswith("0x"):
        return _hex_int(value, path)
    return _wrap(lambda: parse_amount(value, path))


def _address(value: object, path: str) -> str:
    return _wrap(lambda: parse_address(value, path))


def _timestamp(value: object, path: str) -> int:
    return _wrap(lambda: parse_timestamp(value, path))


def _count(value: object, path: str, *, maximum: int = 2**32 - 1) -> int:
    return _wrap(lambda: parse_count(value, path, maximum=maximum))


def _positive(value: object, path: str) -> int:
    number = _timestamp(value, path)
    if number == 0:
        raise _fail(path, "must be positive")
    return number


_T = TypeVar("_T")


def _wrap(parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except InvalidValue as exc:
        raise PermissionRequestRefused(exc.code, "", exc.message) from None
