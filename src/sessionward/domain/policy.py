"""The policy engine: ``evaluate(request, session, usage, now) -> Decision``.

Pure and deny-by-default (docs/design.md section 4, docs/protocol.md section 4). It unwraps the request
into inner calls, checks every call against the session's :class:`~sessionward.domain.grant.Scope`,
then checks the execution's totals against the limits, taking ``usage`` (which includes
in-flight reservations) into account. It reports *every* violation, and returns the charges the
store must reserve atomically; the store re-checks them, so a race between two decisions can
never overspend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from sessionward.reasons import ReasonCode

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
from .grant import GrantedPermission, Scope
from .prices import DEFAULT_PRICES, NATIVE_ASSET, PriceSource
from .usage import FEE, NATIVE, RATE, USD, USES, Charge, Usage, token_bucket, window_index
from .values import UINT256_MAX


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

    The checks run as named steps, in this order, each returning its problems: the session's
    state, the request's unwrapping into calls (a refusal there ends the decision), each call
    against the scope, the frozen action classes, then the limits on the execution's totals.
    """
    if session is None:
        return Decision((Violation(ReasonCode.SESSION_UNKNOWN, "session", "no such session"),))
    catalog = catalog or default_catalog()
    scope = session.scope
    violations = _state_problems(session, request, now)
    calls = _unwrap(request, scope, catalog)
    if isinstance(calls, Violation):
        return Decision((*violations, calls))
    outflows = _Outflows()
    intents: list[CallIntent] = []
    for index, call in enumerate(calls):
        intent, problems = _call_problems(call, index, scope, catalog, outflows)
        intents.append(intent)
        violations += problems
    violations += _frozen_class_problems(session, intents)
    charges, problems = _limits(request, scope, usage, now, outflows, prices)
    violations += problems
    return Decision(tuple(violations), tuple(intents), tuple(charges))


@dataclass(slots=True)
class _Outflows:
    """What an execution moves out of the account, summed over its calls as they are checked."""

    native: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    argument_tokens: set[str] = field(default_factory=set)
    """Tokens an argument named (a swap's input, Permit2) rather than the called contract."""


def _unwrap(request: CallRequest, scope: Scope, catalog: Catalog) -> tuple[Call, ...] | Violation:
    """The request's inner calls, or why it cannot be run at all (malformed, too many calls,
    too large an execution)."""
    try:
        calls = unwrap_request(
            account=scope.account,
            to=request.to,
            value=request.value,
            data=request.data,
            multisend=catalog.multisend.get(scope.chain_id, frozenset()),
        )
    except CalldataError as exc:
        return Violation(exc.code, "calldata", exc.message)
    if len(calls) > bounds.MAX_BATCH:
        return Violation(
            ReasonCode.CALLDATA_MALFORMED,
            "batch",
            f"{len(calls)} calls; the account runs at most {bounds.MAX_BATCH}",
        )
    if execution_size(scope.account, request, calls) > bounds.MAX_EXECUTION_BYTES:
        return Violation(
            ReasonCode.CALLDATA_MALFORMED,
            "execution",
            f"the execution is over {bounds.MAX_EXECUTION_BYTES} bytes",
        )
    return calls


def execution_size(account: str, request: CallRequest, calls: tuple[Call, ...]) -> int:
    """Bytes of the ERC-7579 ``executionCalldata`` the account will run for this request."""
    if request.to == account:
        # execute(bytes32 mode, bytes executionCalldata): selector, 2 head words, length word, data.
        return max(len(request.data) - 4 - 96, 0)
    if len(calls) == 1:
        return 20 + 32 + len(calls[0].data)  # single: packed target, value, calldata
    # batch: abi.encode(Execution[]): offset, length, per call an offset and a 4-word head + data.
    return 64 + sum(32 + 128 + -(-len(c.data) // 32) * 32 for c in calls)


def _call_problems(
    call: Call, index: int, scope: Scope, catalog: Catalog, outflows: _Outflows
) -> tuple[CallIntent, list[Violation]]:
    """One inner call against the scope: what it is (its intent) and why it may not run.
    Its value and permitted outflow are added to ``outflows``."""
    outflows.native += call.value
    if call.to == scope.account:
        return CallIntent(index, call.to, call.value, "account.self", None), [
            Violation(
                ReasonCode.SELF_CALL_FORBIDDEN,
                "account",
                "calls to the account itself (or its sessions module) are never delegated",
                index,
            )
        ]
    selector = call.data[:4]
    problems: list[Violation] = []
    forbidden = catalog.forbidden.get(selector)
    if forbidden is not None:
        problems.append(
            Violation(
                ReasonCode.NON_DELEGABLE_ACTION,
                f"forbidden[{forbidden.signature.canonical}]",
                forbidden.why,
                index,
            )
        )
    permission = scope.permissions.get((call.to, selector))
    if permission is None:
        if forbidden is not None:
            action_class = forbidden.action_class
        else:
            action_class, unlimited = _unpermitted(catalog, call.data, index)
            problems += unlimited
            problems.append(_not_permitted(call, index, scope))
        return CallIntent(index, call.to, call.value, action_class, None), problems
    sig = permission.signature
    try:
        args = decode_arguments(sig, call.data[4:])
        for problem in _scope_problems(permission, args, call, index, scope.account, outflows):
            problems.append(problem)  # one by one: those found before a raise still count
    except (CalldataMalformed, ArgumentPathError) as exc:
        # ArgumentPathError: a path such as ``path[0]`` reads past a short dynamic array.
        detail = exc.message if isinstance(exc, CalldataMalformed) else str(exc)
        problems.append(Violation(ReasonCode.CALLDATA_MALFORMED, permission.label, detail, index))
        return CallIntent(
            index, call.to, call.value, permission.action_class, sig.canonical
        ), problems
    return CallIntent(
        index, call.to, call.value, permission.action_class, sig.canonical, args
    ), problems


def _not_permitted(call: Call, index: int, scope: Scope) -> Violation:
    """Why a call no permission covers is refused: its function, or its target."""
    if call.to in scope.targets:
        return Violation(
            ReasonCode.SELECTOR_NOT_ALLOWED,
            f"target[{call.to}]",
            f"function 0x{call.data[:4].hex()} is not permitted on this target",
            index,
        )
    return Violation(
        ReasonCode.TARGET_NOT_ALLOWED,
        "allowedDestinations",
        f"{call.to} is not a permitted target",
        index,
    )


def _scope_problems(
    permission: GrantedPermission,
    args: tuple[object, ...],
    call: Call,
    index: int,
    account: str,
    outflows: _Outflows,
) -> Iterator[Violation]:
    """Scope checks of one permitted call, yielded as found: unlimited approvals, rules,
    per-call value; then its outflow is added to ``outflows`` (a token read from an argument
    also to its ``argument_tokens``). Reading an argument may raise ``ArgumentPathError`` (a
    path past a short dynamic array); what was yielded before stands."""
    limit_path = permission.forbid_max
    if limit_path is not None and limit_path.read(args) == _max_of(limit_path.type):
        yield Violation(
            ReasonCode.NON_DELEGABLE_ACTION,
            f"{permission.label}.{limit_path.text}",
            "unlimited approvals are never delegable",
            index,
        )
    for rule in permission.rules:
        if not rule.holds(rule.reader.read(args)):
            yield Violation(
                ReasonCode.ARG_RULE_VIOLATED,
                f"{permission.label}.rules[{rule.label}]",
                f"argument {rule.arg} breaks the rule",
                index,
            )
    if call.value > permission.max_value_per_call:
        yield Violation(
            ReasonCode.VALUE_CAP_EXCEEDED,
            f"{permission.label}.maxValuePerCall",
            f"sends {call.value} wei, at most {permission.max_value_per_call} per call",
            index,
        )
    outflow = permission.outflow
    if outflow is not None and (outflow.owner is None or outflow.owner.read(args) == account):
        token = call.to if outflow.token is None else outflow.token.read(args)
        amount = outflow.amount.read(args)
        assert isinstance(token, str) and isinstance(amount, int)
        outflows.tokens[token] = outflows.tokens.get(token, 0) + amount
        if outflow.token is not None:
            outflows.argument_tokens.add(token)


def _frozen_class_problems(session: SessionView, intents: list[CallIntent]) -> list[Violation]:
    """Calls of an action class that ops froze."""
    return [
        Violation(
            ReasonCode.ACTION_CLASS_FROZEN,
            f"freeze[{intent.action_class}]",
            "this action class is frozen by ops",
            intent.index,
        )
        for intent in intents
        if intent.action_class in session.frozen_action_classes
    ]


def _state_problems(session: SessionView, request: CallRequest, now: int) -> list[Violation]:
    """Everything that stops the session whatever it asks: its status, its credential, the
    freezes, its time window, its chain and account."""
    return [
        *_status_problems(session.status),
        *_credential_problems(session, now),
        *_freeze_problems(session),
        *_binding_problems(session.scope, request, now),
    ]


_STATUS_PROBLEMS: Final = {
    SessionStatus.PENDING: Violation(
        ReasonCode.SESSION_PENDING_APPROVAL, "status", "the owner has not approved this session"
    ),
    SessionStatus.REVOKED: Violation(
        ReasonCode.SESSION_REVOKED, "status", "the session was revoked"
    ),
    SessionStatus.SUSPENDED: Violation(
        ReasonCode.SESSION_SUSPENDED, "status", "the session is suspended until the owner renews it"
    ),
}


def _status_problems(status: SessionStatus) -> list[Violation]:
    problem = _STATUS_PROBLEMS.get(status)
    return [] if problem is None else [problem]


def _credential_problems(session: SessionView, now: int) -> list[Violation]:
    problems = []
    if session.credential_revoked:
        problems.append(
            Violation(
                ReasonCode.CREDENTIAL_REVOKED, "credential", "the backend credential was revoked"
            )
        )
    if session.credential_expires_at is not None and now >= session.credential_expires_at:
        problems.append(
            Violation(
                ReasonCode.CREDENTIAL_EXPIRED,
                "credential.expiresAt",
                "the backend credential has expired",
            )
        )
    return problems


def _freeze_problems(session: SessionView) -> list[Violation]:
    problems = []
    if session.global_freeze:
        problems.append(
            Violation(
                ReasonCode.GLOBAL_FREEZE,
                "freeze[global]",
                "all delegated execution is frozen by ops",
            )
        )
    if session.wallet_frozen:
        problems.append(
            Violation(ReasonCode.WALLET_FROZEN, "freeze[wallet]", "this wallet is frozen")
        )
    return problems


def _binding_problems(scope: Scope, request: CallRequest, now: int) -> list[Violation]:
    problems = []
    if now < scope.valid_after:
        problems.append(
            Violation(
                ReasonCode.SESSION_NOT_YET_VALID, "validAfter", f"valid from {scope.valid_after}"
            )
        )
    if now >= scope.expires_at:
        problems.append(
            Violation(ReasonCode.SESSION_EXPIRED, "expiresAt", f"expired at {scope.expires_at}")
        )
    if request.chain_id != scope.chain_id:
        problems.append(
            Violation(
                ReasonCode.CHAIN_MISMATCH, "chainId", f"session is bound to chain {scope.chain_id}"
            )
        )
    if request.account != scope.account:
        problems.append(
            Violation(ReasonCode.ACCOUNT_MISMATCH, "account", "session is bound to another account")
        )
    return problems


_Limited = tuple[list[Charge], list[Violation]]
"""A limit step's result: the charges to reserve, and the limits they would cross."""


def _limits(
    request: CallRequest,
    scope: Scope,
    usage: Usage,
    now: int,
    outflows: _Outflows,
    prices: PriceSource,
) -> _Limited:
    """The execution's totals against the envelope's limits, as named steps in this order (the
    order of the charges and of the problems): native value, outflows no limit measures, the
    USD cap, the token limits, then uses, rate and fee."""
    charges: list[Charge] = []
    problems: list[Violation] = []
    for step_charges, step_problems in (
        _native_limit(scope, usage, now, outflows),
        ([], _unmeasured_outflows(scope, outflows)),
        _usd_cap(scope, usage, outflows, prices),
        _token_limits(scope, usage, now, outflows),
        _usage_limits(request, scope, usage, now),
    ):
        charges += step_charges
        problems += step_problems
    return charges, problems


def _charge(
    usage: Usage,
    bucket: str,
    window: int,
    amount: int,
    limit: int,
    code: ReasonCode,
    rule: str,
    what: str,
) -> _Limited:
    """One charge, and the problem if ``usage`` plus it is over ``limit``."""
    spent = usage.spent(bucket, window)
    problems = (
        [Violation(code, rule, f"{what}: {spent} already used + {amount} > {limit}")]
        if spent + amount > limit
        else []
    )
    return [Charge(bucket, window, amount, limit, code)], problems


def _native_limit(scope: Scope, usage: Usage, now: int, outflows: _Outflows) -> _Limited:
    """Native value sent, against ``valueLimit`` (none: no value may be sent)."""
    if not outflows.native:
        return [], []
    value_limit = scope.envelope.value_limit
    limit = value_limit.limit if value_limit else 0
    period = value_limit.period if value_limit else 0
    return _charge(
        usage,
        NATIVE,
        window_index(now, scope.valid_after, period),
        outflows.native,
        limit,
        ReasonCode.VALUE_LIMIT_EXCEEDED,
        "valueLimit",
        "native value",
    )


def _unmeasured_outflows(scope: Scope, outflows: _Outflows) -> list[Violation]:
    """Token outflows that neither a token limit nor the USD cap measures."""
    cap = scope.envelope.max_value_usd
    problems = []
    for token, amount in outflows.tokens.items():
        if amount == 0 or token in scope.token_limits:
            continue
        if cap is None or (token in outflows.argument_tokens and scope.token_limits):
            # Under token limits, a token an argument names without a limit of its own has
            # nothing to spend (as on chain: a swap cannot route around the limits).
            problems.append(Violation(ReasonCode.TOKEN_LIMIT_EXCEEDED, f"tokenLimits[{token}]", f"no token limit or USD cap measures outflow of {token}"))  # fmt: skip
    return problems


def _usd_cap(scope: Scope, usage: Usage, outflows: _Outflows, prices: PriceSource) -> _Limited:
    """The USD value of everything sent (native value and tokens) against ``maxValueUsd``."""
    cap = scope.envelope.max_value_usd
    if cap is None:
        return [], []
    assets: list[tuple[str | None, int]] = (
        [(NATIVE_ASSET, outflows.native)] if outflows.native else []
    )
    assets += [(token, amount) for token, amount in outflows.tokens.items() if amount != 0]
    usd_total = 0
    problems = []
    for asset, amount in assets:
        value = prices.usd_value(scope.chain_id, asset, amount)
        if value is None:
            # Any unpriced outflow makes the whole USD total unknowable: refuse rather than
            # undercount.
            problems.append(Violation(ReasonCode.USD_PRICE_UNKNOWN, "maxValueUsd", f"no USD price for {asset or 'the native coin'}: the USD cap cannot be checked"))  # fmt: skip
        else:
            usd_total += value
    if not usd_total:
        return [], problems
    charges, over = _charge(
        usage, USD, 0, usd_total, cap, ReasonCode.USD_LIMIT_EXCEEDED, "maxValueUsd", "micro-USD"
    )
    return charges, problems + over


def _token_limits(scope: Scope, usage: Usage, now: int, outflows: _Outflows) -> _Limited:
    """Each limited token's outflow against its ``tokenLimits`` entry. Checked after the USD
    cap: a cap converted into token limits at the grant's prices crosses both at once, and the
    owner's own word (the USD cap) is the first reason named."""
    charges: list[Charge] = []
    problems: list[Violation] = []
    for token, amount in outflows.tokens.items():
        token_limit = scope.token_limits.get(token)
        if amount == 0 or token_limit is None:
            continue
        token_charges, token_problems = _charge(
            usage, token_bucket(token), window_index(now, scope.valid_after, token_limit.period),
            amount, token_limit.limit, ReasonCode.TOKEN_LIMIT_EXCEEDED, f"tokenLimits[{token}]",
            f"outflow of {token}",
        )  # fmt: skip
        charges += token_charges
        problems += token_problems
    return charges, problems


def _usage_limits(request: CallRequest, scope: Scope, usage: Usage, now: int) -> _Limited:
    """One use against ``maxUses``, one execution against ``rateLimit``, the quoted fee against
    ``maxFeeWei``."""
    envelope = scope.envelope
    steps = [
        _charge(
            usage,
            USES,
            0,
            1,
            envelope.max_uses or UINT256_MAX,
            ReasonCode.USAGE_LIMIT_REACHED,
            "maxUses",
            "uses",
        )
    ]
    rate = envelope.rate_limit
    if rate is not None:
        steps.append(
            _charge(
                usage,
                RATE,
                window_index(now, scope.valid_after, rate.interval),
                1,
                rate.count,
                ReasonCode.RATE_LIMITED,
                "rateLimit",
                f"executions per {rate.interval} s",
            )
        )
    if envelope.max_fee_wei is not None:
        steps.append(
            _charge(
                usage,
                FEE,
                0,
                request.fee_wei,
                envelope.max_fee_wei,
                ReasonCode.FEE_LIMIT_EXCEEDED,
                "maxFeeWei",
                "fee budget (wei)",
            )
        )
    return [c for charges, _ in steps for c in charges], [p for _, ps in steps for p in ps]


def _unpermitted(catalog: Catalog, data: bytes, index: int) -> tuple[str, list[Violation]]:
    """Classify a call the session may not make, and flag it if it is an unlimited approval."""
    for fn in catalog.by_selector.get(data[:4], ()):
        if fn.forbid_max is None:
            return fn.action_class, []
        try:
            path = compile_argument_path(fn.signature, fn.forbid_max)
            unlimited = path.read(decode_arguments(fn.signature, data[4:])) == _max_of(path.type)
        except (CalldataMalformed, ArgumentPathError):
            return fn.action_class, []
        if not unlimited:
            return fn.action_class, []
        return fn.action_class, [
            Violation(
                ReasonCode.NON_DELEGABLE_ACTION,
                f"forbidden[unlimited {fn.signature.canonical}]",
                "unlimited approvals are never delegable",
                index,
            )
        ]
    return "unknown", []


def _max_of(abi_type: AbiType) -> int:
    """The largest value of an unsigned type: "unlimited" for approvals."""
    return 2**abi_type.bits - 1 if isinstance(abi_type, UintType) else -1
