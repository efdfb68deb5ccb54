"""The policy engine: ``evaluate(request, session, usage, now) -> Decision``.

Pure and deny-by-default (DESIGN section 4, docs/protocol.md section 4). It unwraps the request
into inner calls, checks every call against the session's :class:`~sessionward.domain.grant.Scope`,
then checks the execution's totals against the limits, taking ``usage`` (which includes
in-flight reservations) into account. It reports *every* violation, and returns the charges the
store must reserve atomically; the store re-checks them, so a race between two decisions can
never overspend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from . import bounds
from .abi import (
    AbiType,
    ArgumentPathError,
    CalldataMalformed,
    UintType,
    compile_argument_path,
    decode_arguments,
)
from .calldata import Call, CalldataError, unwrap_request
from .catalog import Catalog, default_catalog
from .decision import CallIntent, Decision, Violation
from .envelope import TokenLimit
from .grant import GrantedPermission, Scope
from .prices import DEFAULT_PRICES, NATIVE_ASSET, PriceSource
from .reasons import ReasonCode
from .usage import FEE, NATIVE, RATE, USD, USES, Charge, Usage, token_bucket, window_index
from .values import UINT256_MAX

_Deny = Callable[[Violation], None]


class SessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class CallRequest:
    """What a backend asks a session to do: one transaction from the account's point of view.

    ``to == account`` with ``execute(mode, executionCalldata)`` is a single or batch execution;
    anything else is one call. ``fee_wei`` is the quoted gas cost (gas × max fee).
    """

    chain_id: int
    account: str
    to: str
    value: int
    data: bytes
    fee_wei: int = 0


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the engine needs to know about a session and everything that can stop it."""

    session_id: str
    scope: Scope
    status: SessionStatus
    credential_expires_at: int | None = None
    credential_revoked: bool = False
    wallet_frozen: bool = False
    global_freeze: bool = False
    frozen_action_classes: frozenset[str] = frozenset()


def evaluate(
    request: CallRequest,
    session: SessionView | None,
    usage: Usage,
    now: int,
    *,
    catalog: Catalog | None = None,
    prices: PriceSource = DEFAULT_PRICES,
) -> Decision:
    """Decide whether ``session`` may perform ``request`` at ``now`` given ``usage``.

    Invariant (tested by property): an allowing decision never lets the totals of ``usage``
    plus its charges exceed any limit of the envelope, and never allows a call outside the
    scope's permissions.
    """
    if session is None:
        return Decision((Violation(ReasonCode.SESSION_UNKNOWN, "session", "no such session"),))
    catalog = catalog or default_catalog()
    scope = session.scope
    violations: list[Violation] = []
    deny = violations.append

    _check_state(session, request, now, deny)

    try:
        calls = unwrap_request(
            account=scope.account,
            to=request.to,
            value=request.value,
            data=request.data,
            multisend=catalog.multisend.get(scope.chain_id, frozenset()),
        )
    except CalldataError as exc:
        deny(Violation(exc.code, "calldata", exc.message))
        return Decision(tuple(violations))
    if len(calls) > bounds.MAX_BATCH:
        deny(
            Violation(
                ReasonCode.CALLDATA_MALFORMED,
                "batch",
                f"{len(calls)} calls; the account runs at most {bounds.MAX_BATCH}",
            )
        )
        return Decision(tuple(violations))
    if execution_size(scope.account, request, calls) > bounds.MAX_EXECUTION_BYTES:
        deny(
            Violation(
                ReasonCode.CALLDATA_MALFORMED,
                "execution",
                f"the execution is over {bounds.MAX_EXECUTION_BYTES} bytes",
            )
        )
        return Decision(tuple(violations))

    native_total = 0
    token_out: dict[str, int] = {}
    argument_tokens: set[str] = set()  # tokens an argument named (a swap's input, Permit2)
    intents: list[CallIntent] = []
    for index, call in enumerate(calls):
        native_total += call.value
        if call.to == scope.account:
            deny(
                Violation(
                    ReasonCode.SELF_CALL_FORBIDDEN,
                    "account",
                    "calls to the account itself (or its sessions module) are never delegated",
                    index,
                )
            )
            intents.append(CallIntent(index, call.to, call.value, "account.self", None))
            continue
        selector = call.data[:4]
        forbidden = catalog.forbidden.get(selector)
        if forbidden is not None:
            deny(
                Violation(
                    ReasonCode.NON_DELEGABLE_ACTION,
                    f"forbidden[{forbidden.signature.canonical}]",
                    forbidden.why,
                    index,
                )
            )
        permission = scope.permissions.get((call.to, selector))
        if permission is None:
            action_class = (
                forbidden.action_class
                if forbidden
                else _unpermitted(catalog, call.data, index, deny)
            )
            if forbidden is None:
                if call.to in scope.targets:
                    deny(
                        Violation(
                            ReasonCode.SELECTOR_NOT_ALLOWED,
                            f"target[{call.to}]",
                            f"function 0x{selector.hex()} is not permitted on this target",
                            index,
                        )
                    )
                else:
                    deny(
                        Violation(
                            ReasonCode.TARGET_NOT_ALLOWED,
                            "allowedDestinations",
                            f"{call.to} is not a permitted target",
                            index,
                        )
                    )
            intents.append(CallIntent(index, call.to, call.value, action_class, None))
            continue

        sig = permission.signature
        try:
            args = decode_arguments(sig, call.data[4:])
            _check_call(
                permission, args, call.value, scope.account, index, token_out, call.to, deny,
                argument_tokens=argument_tokens,
            )  # fmt: skip
        except (CalldataMalformed, ArgumentPathError) as exc:
            # ArgumentPathError: a path such as ``path[0]`` reads past a short dynamic array.
            detail = exc.message if isinstance(exc, CalldataMalformed) else str(exc)
            deny(Violation(ReasonCode.CALLDATA_MALFORMED, permission.label, detail, index))
            intents.append(
                CallIntent(index, call.to, call.value, permission.action_class, sig.canonical)
            )
            continue
        intents.append(
            CallIntent(index, call.to, call.value, permission.action_class, sig.canonical, args)
        )

    if session.frozen_action_classes:
        for intent in intents:
            if intent.action_class in session.frozen_action_classes:
                deny(
                    Violation(
                        ReasonCode.ACTION_CLASS_FROZEN,
                        f"freeze[{intent.action_class}]",
                        "this action class is frozen by ops",
                        intent.index,
                    )
                )

    charges: list[Charge] = []
    _limits(
        request, scope, usage, now, native_total, token_out, argument_tokens, prices, charges, deny
    )
    return Decision(tuple(violations), tuple(intents), tuple(charges))


def execution_size(account: str, request: CallRequest, calls: tuple[Call, ...]) -> int:
    """Bytes of the ERC-7579 ``executionCalldata`` the account will run for this request."""
    if request.to == account:
        # execute(bytes32 mode, bytes executionCalldata): selector, 2 head words, length word, data.
        return max(len(request.data) - 4 - 96, 0)
    if len(calls) == 1:
        return 20 + 32 + len(calls[0].data)  # single: packed target, value, calldata
    # batch: abi.encode(Execution[]): offset, length, per call an offset and a 4-word head + data.
    return 64 + sum(32 + 128 + -(-len(c.data) // 32) * 32 for c in calls)


def _check_call(
    permission: GrantedPermission,
    args: tuple[object, ...],
    value: int,
    account: str,
    index: int,
    token_out: dict[str, int],
    target: str,
    deny: _Deny,
    *,
    argument_tokens: set[str],
) -> None:
    """Scope checks of one permitted call: unlimited approvals, rules, per-call value, outflow
    (added to ``token_out``; a token read from an argument is also added to ``argument_tokens``)."""
    limit_path = permission.forbid_max
    if limit_path is not None and limit_path.read(args) == _max_of(limit_path.type):
        deny(
            Violation(
                ReasonCode.NON_DELEGABLE_ACTION,
                f"{permission.label}.{limit_path.text}",
                "unlimited approvals are never delegable",
                index,
            )
        )
    for rule in permission.rules:
        if not rule.holds(rule.reader.read(args)):
            deny(
                Violation(
                    ReasonCode.ARG_RULE_VIOLATED,
                    f"{permission.label}.rules[{rule.label}]",
                    f"argument {rule.arg} breaks the rule",
                    index,
                )
            )
    if value > permission.max_value_per_call:
        deny(
            Violation(
                ReasonCode.VALUE_CAP_EXCEEDED,
                f"{permission.label}.maxValuePerCall",
                f"sends {value} wei, at most {permission.max_value_per_call} per call",
                index,
            )
        )
    outflow = permission.outflow
    if outflow is not None and (outflow.owner is None or outflow.owner.read(args) == account):
        token = target if outflow.token is None else outflow.token.read(args)
        amount = outflow.amount.read(args)
        assert isinstance(token, str) and isinstance(amount, int)
        token_out[token] = token_out.get(token, 0) + amount
        if outflow.token is not None:
            argument_tokens.add(token)


def _check_state(session: SessionView, request: CallRequest, now: int, deny: _Deny) -> None:
    scope = session.scope
    status = session.status
    if status is SessionStatus.PENDING:
        deny(
            Violation(
                ReasonCode.SESSION_PENDING_APPROVAL,
                "status",
                "the owner has not approved this session",
            )
        )
    elif status is SessionStatus.REVOKED:
        deny(Violation(ReasonCode.SESSION_REVOKED, "status", "the session was revoked"))
    elif status is SessionStatus.SUSPENDED:
        deny(
            Violation(
                ReasonCode.SESSION_SUSPENDED,
                "status",
                "the session is suspended until the owner renews it",
            )
        )
    if session.credential_revoked:
        deny(
            Violation(
                ReasonCode.CREDENTIAL_REVOKED, "credential", "the backend credential was revoked"
            )
        )
    if session.credential_expires_at is not None and now >= session.credential_expires_at:
        deny(
            Violation(
                ReasonCode.CREDENTIAL_EXPIRED,
                "credential.expiresAt",
                "the backend credential has expired",
            )
        )
    if session.global_freeze:
        deny(
            Violation(
                ReasonCode.GLOBAL_FREEZE,
                "freeze[global]",
                "all delegated execution is frozen by ops",
            )
        )
    if session.wallet_frozen:
        deny(Violation(ReasonCode.WALLET_FROZEN, "freeze[wallet]", "this wallet is frozen"))
    if now < scope.valid_after:
        deny(
            Violation(
                ReasonCode.SESSION_NOT_YET_VALID, "validAfter", f"valid from {scope.valid_after}"
            )
        )
    if now >= scope.expires_at:
        deny(Violation(ReasonCode.SESSION_EXPIRED, "expiresAt", f"expired at {scope.expires_at}"))
    if request.chain_id != scope.chain_id:
        deny(
            Violation(
                ReasonCode.CHAIN_MISMATCH, "chainId", f"session is bound to chain {scope.chain_id}"
            )
        )
    if request.account != scope.account:
        deny(
            Violation(ReasonCode.ACCOUNT_MISMATCH, "account", "session is bound to another account")
        )


def _limits(
    request: CallRequest,
    scope: Scope,
    usage: Usage,
    now: int,
    native_total: int,
    token_out: dict[str, int],
    argument_tokens: set[str],
    prices: PriceSource,
    charges: list[Charge],
    deny: _Deny,
) -> None:
    envelope = scope.envelope
    anchor = scope.valid_after

    def charge(
        bucket: str, window: int, amount: int, limit: int, code: ReasonCode, rule: str, what: str
    ) -> None:
        charges.append(Charge(bucket, window, amount, limit, code))
        spent = usage.spent(bucket, window)
        if spent + amount > limit:
            deny(Violation(code, rule, f"{what}: {spent} already used + {amount} > {limit}"))

    if native_total:
        limit = envelope.value_limit.limit if envelope.value_limit else 0
        period = envelope.value_limit.period if envelope.value_limit else 0
        charge(
            NATIVE,
            window_index(now, anchor, period),
            native_total,
            limit,
            ReasonCode.VALUE_LIMIT_EXCEEDED,
            "valueLimit",
            "native value",
        )

    cap = envelope.max_value_usd
    usd_total = 0
    unpriced: list[str] = []

    def price(asset: str | None, amount: int) -> None:
        nonlocal usd_total
        value = prices.usd_value(scope.chain_id, asset, amount)
        if value is None:
            unpriced.append(asset or "the native coin")
        else:
            usd_total += value

    if cap is not None and native_total:
        price(NATIVE_ASSET, native_total)
    token_charges: list[tuple[str, int, TokenLimit]] = []
    for token, amount in token_out.items():
        if amount == 0:
            continue
        token_limit = scope.token_limits.get(token)
        if token_limit is not None:
            token_charges.append((token, amount, token_limit))
        elif cap is None or (token in argument_tokens and scope.token_limits):
            # Under token limits, a token an argument names without a limit of its own has
            # nothing to spend (as on chain: a swap cannot route around the limits).
            deny(Violation(ReasonCode.TOKEN_LIMIT_EXCEEDED, f"tokenLimits[{token}]", f"no token limit or USD cap measures outflow of {token}"))  # fmt: skip
        if cap is not None:
            price(token, amount)
    if cap is not None:
        # Any unpriced outflow makes the whole USD total unknowable: refuse rather than undercount.
        for asset in unpriced:
            deny(Violation(ReasonCode.USD_PRICE_UNKNOWN, "maxValueUsd", f"no USD price for {asset}: the USD cap cannot be checked"))  # fmt: skip
        if usd_total:
            charge(
                USD, 0, usd_total, cap, ReasonCode.USD_LIMIT_EXCEEDED, "maxValueUsd", "micro-USD"
            )
    # After the USD cap: a cap converted into token limits at the grant's prices crosses both
    # at once, and the owner's own word (the USD cap) is the first reason named.
    for token, amount, token_limit in token_charges:
        charge(
            token_bucket(token), window_index(now, anchor, token_limit.period), amount, token_limit.limit,
            ReasonCode.TOKEN_LIMIT_EXCEEDED, f"tokenLimits[{token}]", f"outflow of {token}",
        )  # fmt: skip

    charge(
        USES,
        0,
        1,
        envelope.max_uses or UINT256_MAX,
        ReasonCode.USAGE_LIMIT_REACHED,
        "maxUses",
        "uses",
    )
    if envelope.rate_limit is not None:
        rate = envelope.rate_limit
        charge(
            RATE,
            window_index(now, anchor, rate.interval),
            1,
            rate.count,
            ReasonCode.RATE_LIMITED,
            "rateLimit",
            f"executions per {rate.interval} s",
        )
    if envelope.max_fee_wei is not None:
        charge(
            FEE,
            0,
            request.fee_wei,
            envelope.max_fee_wei,
            ReasonCode.FEE_LIMIT_EXCEEDED,
            "maxFeeWei",
            "fee budget (wei)",
        )


def _unpermitted(catalog: Catalog, data: bytes, index: int, deny: _Deny) -> str:
    """Classify a call the session may not make, and flag it if it is an unlimited approval."""
    for fn in catalog.by_selector.get(data[:4], ()):
        if fn.forbid_max is None:
            return fn.action_class
        try:
            path = compile_argument_path(fn.signature, fn.forbid_max)
            unlimited = path.read(decode_arguments(fn.signature, data[4:])) == _max_of(path.type)
        except (CalldataMalformed, ArgumentPathError):
            return fn.action_class
        if unlimited:
            deny(
                Violation(
                    ReasonCode.NON_DELEGABLE_ACTION,
                    f"forbidden[unlimited {fn.signature.canonical}]",
                    "unlimited approvals are never delegable",
                    index,
                )
            )
        return fn.action_class
    return "unknown"


def _max_of(abi_type: AbiType) -> int:
    """The largest value of an unsigned type: "unlimited" for approvals."""
    return 2**abi_type.bits - 1 if isinstance(abi_type, UintType) else -1
