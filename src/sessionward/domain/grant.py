"""Grant-time validation: from an envelope to the exact scope a session is allowed.

:func:`validate_grant` checks an envelope against the catalog and tier rules and *expands* it:
every capability becomes concrete permissions (target, function, value cap, rules) on the
allowed destinations that fit its target kind; explicit permissions are added (and replace an
expanded permission for the same target and function: the function is then allowed only within
the explicit rules plus the catalog's implicit ones). The result, a :class:`Scope`, is what
the owner signs (:meth:`Scope.grant_message`) and what the policy engine enforces, so the two
cannot disagree.

The signed grant is exactly what the owner saw (docs/protocol.md section 4, "Grant time"):
nothing is dropped on the way to the chain. Refused instead of represented loosely: two explicit
permissions on one target and selector (``PERMISSION_OVERLAP``); an explicit rule the account
cannot check (``RULE_NOT_ON_CHAIN``); a function on a limited token whose outflow the catalog does
not define (``TOKEN_FUNCTION_UNDEFINED``); an approval-like function outside the catalog without
an ``eq`` spender and an ``lte`` amount (``APPROVAL_UNBOUNDED``).

A USD cap becomes on-chain limits (:func:`with_usd_cap_limits`, applied when a price source is
given): every token the session can move gets a ``tokenLimits`` entry, and the native
``valueLimit`` is tightened, to what the cap buys at the prices of the grant's compilation, which
is when the owner is shown (and then signs) the summary.

Time bounds are exact: a session is valid for ``valid_after <= now < expires_at``; the TTL
checked against the tier is ``expires_at - now`` at grant time (authority exists from the moment
it is granted, whatever ``validAfter`` says).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sessionward.reasons import ReasonCode

from . import bounds
from .abi import (
    AbiJsonError,
    AbiType,
    AddressType,
    ArgumentPath,
    ArgumentPathError,
    BoolType,
    FixedBytesType,
    FunctionSignature,
    IntType,
    UintType,
    compile_argument_path,
    encode_word,
    parse_signature,
    value_from_json,
)
from .catalog import TARGET, Catalog, CatalogFunction, Outflow, Tier
from .decision import GrantRefused, Violation
from .envelope import (
    ACCOUNT_PLACEHOLDER,
    ArgRule,
    Envelope,
    RuleOp,
    RuleValue,
    TokenLimit,
    ValueLimit,
)
from .prices import NATIVE_ASSET, PriceSource, max_amount_within
from .values import ZERO_ADDRESS, InvalidValue, format_usd

CUSTOM_ACTION = "custom"
OFFCHAIN_ONLY = 0xFFFF
# The largest amounts the account's packed storage holds (sessions.vy MAX_VALUE_CAP,
# MAX_NATIVE_LIMIT, MAX_TOKEN_REMAINING; a test keeps them equal). The contract would clamp a
# larger value, so an explicit one is refused and one converted from a USD cap is capped here:
# the grant signs exactly what the chain enforces.
MAX_VALUE_PER_CALL: Final = 2**88 - 1
MAX_VALUE_LIMIT: Final = 2**96 - 1
MAX_TOKEN_LIMIT: Final = 2**208 - 1
_TIER_ORDER = {Tier.SAFE: 0, Tier.GUARDED: 1, Tier.FORBIDDEN: 2}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """An argument rule typed against its ABI type.

    ``values`` are Python values comparable with decoded arguments; ``words`` their ABI words
    (the on-chain ``Rule.values``); ``offset`` the static word index or ``None`` when the rule is
    enforced off-chain only. ``implicit`` marks recipient rules added from the catalog.
    """

    arg: str
    op: RuleOp
    values: tuple[object, ...]
    words: tuple[bytes, ...]
    offset: int | None
    implicit: bool
    reader: ArgumentPath

    def holds(self, actual: object) -> bool:
        op = self.op
        if op is RuleOp.EQ:
            return actual == self.values[0]
        if op is RuleOp.NE:
            return actual != self.values[0]
        if op is RuleOp.IN:
            return actual in self.values
        if op is RuleOp.NOT_IN:
            return actual not in self.values
        if not isinstance(actual, int):  # lte/gte are only compiled for integer arguments
            return False
        bound = self.values[0]
        assert isinstance(bound, int)
        return actual <= bound if op is RuleOp.LTE else actual >= bound

    @property
    def label(self) -> str:
        shown = ", ".join(str(v) for v in self.values)
        return (
            f"{self.arg} {self.op.value} [{shown}]"
            if self.op in (RuleOp.IN, RuleOp.NOT_IN)
            else f"{self.arg} {self.op.value} {shown}"
        )


@dataclass(frozen=True, slots=True)
class CompiledOutflow:
    """A catalog :class:`Outflow` with its argument paths compiled for the function."""

    token: ArgumentPath | None
    """Where the token address is; ``None`` when the called contract is the token."""
    amount: ArgumentPath
    owner: ArgumentPath | None

    @classmethod
    def of(cls, sig: FunctionSignature, outflow: Outflow) -> CompiledOutflow:
        return cls(
            token=None if outflow.token == TARGET else compile_argument_path(sig, outflow.token),
            amount=compile_argument_path(sig, outflow.amount),
            owner=compile_argument_path(sig, outflow.owner) if outflow.owner else None,
        )


@dataclass(frozen=True, slots=True)
class GrantedPermission:
    """One concrete thing the session may call."""

    target: str
    signature: FunctionSignature
    action_class: str
    tier: Tier
    max_value_per_call: int
    rules: tuple[CompiledRule, ...]
    outflow: CompiledOutflow | None = None
    forbid_max: ArgumentPath | None = None
    """The approval amount whose maximum value ("unlimited") is never delegable."""

    @property
    def label(self) -> str:
        return f"permissions[{self.target}.{self.signature.canonical}]"


@dataclass(frozen=True, slots=True)
class Scope:
    """A validated, expanded envelope bound to one account: exactly what a session may do."""

    account: str
    envelope: Envelope
    valid_after: int
    expires_at: int
    permissions: Mapping[tuple[str, bytes], GrantedPermission]
    targets: frozenset[str]
    token_limits: Mapping[str, TokenLimit]
    tier: Tier

    @property
    def chain_id(self) -> int:
        return self.envelope.chain_id

    @property
    def action_classes(self) -> tuple[str, ...]:
        return tuple(sorted({p.action_class for p in self.permissions.values()}))

    def ordered_permissions(self) -> tuple[GrantedPermission, ...]:
        """Permissions in their canonical order: by target, then selector."""
        return tuple(self.permissions[k] for k in sorted(self.permissions))

    def envelope_message(self) -> dict[str, Any]:
        """The ``Envelope`` struct of docs/protocol.md as a message for EIP-712 hashing."""
        env = self.envelope
        rate = env.rate_limit
        return {
            "chainId": env.chain_id,
            "validAfter": self.valid_after,
            "expiresAt": self.expires_at,
            "capabilities": list(env.capabilities),
            "permissions": [
                {
                    "target": p.target,
                    "selector": p.signature.selector,
                    "function": p.signature.canonical,
                    "actionClass": p.action_class,
                    "maxValuePerCall": p.max_value_per_call,
                    "rules": [
                        {
                            "arg": r.arg,
                            "op": r.op.code,
                            "offset": OFFCHAIN_ONLY if r.offset is None else r.offset,
                            "values": list(r.words),
                        }
                        for r in p.rules
                    ],
                }
                for p in self.ordered_permissions()
            ],
            "allowedDestinations": list(env.allowed_destinations),
            "valueLimit": env.value_limit.limit if env.value_limit else 0,
            "valuePeriod": env.value_limit.period if env.value_limit else 0,
            "tokenLimits": [
                {"token": t.token, "limit": t.limit, "period": t.period} for t in env.token_limits
            ],
            "maxValueUsd": format_usd(env.max_value_usd) if env.max_value_usd is not None else "",
            "maxUses": env.max_uses or 0,
            "rateCount": rate.count if rate else 0,
            "rateInterval": rate.interval if rate else 0,
            "maxFeeWei": env.max_fee_wei or 0,
        }

    def grant_message(
        self, *, credential: bytes, nonce: int, epoch: int, revoker: str = ZERO_ADDRESS
    ) -> dict[str, Any]:
        """The ``SessionGrant`` message the owner signs (docs/protocol.md section 2)."""
        if self.envelope.session_key is None:
            raise ValueError("a grant needs the session key: compile the scope with session_key=")
        return {
            "account": self.account,
            "sessionKey": self.envelope.session_key,
            "credential": credential,
            "nonce": nonce,
            "epoch": epoch,
            "revoker": revoker,
            "envelope": self.envelope_message(),
        }


def validate_grant(
    envelope: Envelope,
    *,
    catalog: Catalog,
    account: str,
    chain_id: int,
    now: int,
    credential_expires_at: int | None = None,
    session_key: str | None = None,
    prices: PriceSource | None = None,
) -> Scope:
    """Validate ``envelope`` for a grant on ``account`` at ``now`` and expand it into a :class:`Scope`.

    Raises :class:`GrantRefused` listing every problem (unknown or forbidden capabilities,
    missing or over-long expiry, empty or inverted windows, expiry past the credential's,
    wildcard or self targets, guarded actions without caps, malformed rules, overlapping
    permissions, rules or functions the account cannot enforce). Pure: no I/O.

    With ``prices``, a USD cap is first converted into on-chain limits
    (:func:`with_usd_cap_limits`); the scope's envelope then carries them, so storing
    ``scope.envelope`` and compiling it again later (without prices) gives the same grant.

    The checks run as named steps, in this order, each returning its problems: the USD cap's
    conversion, the session key, the chain, the time window, the destinations, the capabilities'
    expansion, the explicit permissions, then the whole grant (something granted, the tier's
    TTL and caps, uses and rate) and what the account can hold (:func:`_bound_problems`).
    """
    problems: list[Violation] = []
    if prices is not None:
        envelope, unpriced = with_usd_cap_limits(envelope, prices=prices, catalog=catalog)
        problems += _unpriced_problems(unpriced)
    if session_key is not None:
        problems += _session_key_problems(envelope, session_key)
        envelope = replace(envelope, session_key=session_key)
    problems += _chain_problems(envelope, chain_id)
    valid_after = envelope.valid_after if envelope.valid_after is not None else now
    expires_at = envelope.expires_at
    problems += _window_problems(
        valid_after, expires_at, now=now, credential_expires_at=credential_expires_at
    )
    envelope = replace(envelope, valid_after=valid_after)
    problems += _destination_problems(envelope, account)

    expansion = _Expansion.of(envelope, catalog=catalog, account=account, chain_id=chain_id)
    granted, expanded_problems = _expand_capabilities(envelope, expansion)
    problems += expanded_problems
    explicit, explicit_problems = _explicit_permissions(envelope, expansion)
    problems += explicit_problems
    granted.update(explicit)

    if not granted and not problems:
        problems.append(
            Violation(ReasonCode.ENVELOPE_MALFORMED, "capabilities", "the envelope grants nothing")
        )
    tier = max((p.tier for p in granted.values()), key=_TIER_ORDER.__getitem__, default=Tier.SAFE)
    problems += _tier_problems(envelope, tier, catalog=catalog, now=now)
    problems += _usage_problems(envelope)
    problems += _bound_problems(envelope, granted)
    if problems:
        raise GrantRefused(tuple(problems))
    assert expires_at is not None
    return Scope(
        account=account,
        envelope=envelope,
        valid_after=valid_after,
        expires_at=expires_at,
        permissions=granted,
        targets=frozenset(target for target, _ in granted),
        token_limits=expansion.token_limits,
        tier=tier,
    )


@dataclass(frozen=True, slots=True)
class _Expansion:
    """What expanding capabilities and compiling explicit permissions needs of the grant."""

    catalog: Catalog
    account: str
    chain_id: int
    destinations: frozenset[str]
    token_limits: dict[str, TokenLimit]
    recipients_allowed: tuple[str, ...]

    @classmethod
    def of(cls, envelope: Envelope, *, catalog: Catalog, account: str, chain_id: int) -> _Expansion:
        return cls(
            catalog=catalog,
            account=account,
            chain_id=chain_id,
            destinations=frozenset(envelope.allowed_destinations),
            token_limits={t.token: t for t in envelope.token_limits},
            recipients_allowed=(account, *envelope.allowed_destinations),
        )


_Granted = dict[tuple[str, bytes], GrantedPermission]


def _unpriced_problems(unpriced: Iterable[str]) -> list[Violation]:
    """Tokens the USD cap could not be turned into a limit on (no price)."""
    return [
        Violation(
            ReasonCode.USD_PRICE_UNKNOWN,
            f"tokenLimits[{token}]",
            "the USD cap cannot be turned into a limit on this token (no price): "
            "give it a tokenLimits entry",
        )
        for token in unpriced
    ]


def _session_key_problems(envelope: Envelope, session_key: str) -> list[Violation]:
    """The vault chooses the session key: an envelope naming another one is refused."""
    if envelope.session_key is not None and envelope.session_key != session_key:
        return [
            Violation(
                ReasonCode.ENVELOPE_MALFORMED,
                "sessionKey",
                "the session key is generated by the vault, not chosen by the caller",
            )
        ]
    return []


def _chain_problems(envelope: Envelope, chain_id: int) -> list[Violation]:
    """The envelope must name the wallet's chain."""
    if envelope.chain_id == chain_id:
        return []
    return [
        Violation(
            ReasonCode.CHAIN_MISMATCH,
            "chainId",
            f"the wallet is on chain {chain_id}, the envelope names chain {envelope.chain_id}",
        )
    ]


def _window_problems(
    valid_after: int, expires_at: int | None, *, now: int, credential_expires_at: int | None
) -> list[Violation]:
    """An expiry, a non-empty window not already over, within the credential's life."""
    if expires_at is None:
        return [Violation(ReasonCode.EXPIRY_MISSING, "expiresAt", "every session needs an expiry")]
    problems = []
    if valid_after >= expires_at:
        problems.append(
            Violation(
                ReasonCode.WINDOW_INVALID,
                "validAfter/expiresAt",
                "the validity window is empty or inverted",
            )
        )
    elif expires_at <= now:
        problems.append(
            Violation(
                ReasonCode.WINDOW_INVALID, "expiresAt", "the session would already be expired"
            )
        )
    if credential_expires_at is not None and expires_at > credential_expires_at:
        problems.append(
            Violation(
                ReasonCode.EXPIRY_PAST_CREDENTIAL,
                "expiresAt",
                "a session cannot outlive its credential",
            )
        )
    return problems


def _destination_problems(envelope: Envelope, account: str) -> list[Violation]:
    """Neither the zero address nor the account itself is a destination."""
    problems = []
    for dest in envelope.allowed_destinations:
        if dest == ZERO_ADDRESS:
            problems.append(
                Violation(
                    ReasonCode.WILDCARD_TARGET,
                    "allowedDestinations",
                    "the zero address is not a destination",
                )
            )
        elif dest == account:
            problems.append(
                Violation(
                    ReasonCode.NON_DELEGABLE_ACTION,
                    "allowedDestinations",
                    "calls to the account itself are never delegable",
                )
            )
    return problems


def _expand_capabilities(
    envelope: Envelope, expansion: _Expansion
) -> tuple[_Granted, list[Violation]]:
    """Every capability as the catalog's functions on each allowed destination of its kind."""
    granted: _Granted = {}
    problems: list[Violation] = []
    catalog = expansion.catalog
    forbidden_classes = catalog.forbidden_classes()
    for name in envelope.capabilities:
        action = catalog.actions.get(name)
        if action is None:
            problems.append(
                Violation(
                    ReasonCode.NON_DELEGABLE_ACTION,
                    f"capabilities[{name}]",
                    "this action class is never delegable",
                )
                if name in forbidden_classes
                else Violation(
                    ReasonCode.UNKNOWN_CAPABILITY,
                    f"capabilities[{name}]",
                    "not in the action catalog",
                )
            )
            continue
        fitting = [
            d
            for d in envelope.allowed_destinations
            if _fits(catalog, expansion.chain_id, d, action.target_kind, expansion.token_limits)
        ]
        if not fitting:
            problems.append(
                Violation(
                    ReasonCode.CAPABILITY_WITHOUT_TARGET,
                    f"capabilities[{name}]",
                    f"no allowed destination is a known {action.target_kind} contract",
                )
            )
            continue
        for dest in fitting:
            for fn in action.functions:
                value_cap = (
                    min(envelope.value_limit.limit, MAX_VALUE_PER_CALL)
                    if fn.payable and envelope.value_limit
                    else 0
                )
                granted[(dest, fn.signature.selector)] = _permission(
                    fn, dest, value_cap, (), expansion.recipients_allowed, expansion.account,
                    problems, limited_tokens=tuple(expansion.token_limits),
                )  # fmt: skip
    return granted, problems


def _explicit_permissions(
    envelope: Envelope, expansion: _Expansion
) -> tuple[_Granted, list[Violation]]:
    """The envelope's explicit permissions compiled; each replaces an expanded permission on
    the same target and function."""
    granted: _Granted = {}
    problems: list[Violation] = []
    explicit_keys: dict[tuple[str, bytes], int] = {}
    for i, explicit in enumerate(envelope.permissions):
        where = f"permissions[{i}]"
        try:
            sig = parse_signature(explicit.function)
        except ValueError as exc:
            problems.append(Violation(ReasonCode.ENVELOPE_MALFORMED, f"{where}.function", str(exc)))
            continue
        refused = _explicit_target_problem(explicit.target, sig, expansion, where)
        if refused is None and (explicit.target, sig.selector) in explicit_keys:
            # Only one permission per (target, selector) exists on chain: two with different
            # rules cannot both be what the owner signed, so neither is guessed at.
            refused = Violation(
                ReasonCode.PERMISSION_OVERLAP,
                f"{where}.function",
                f"permissions[{explicit_keys[(explicit.target, sig.selector)]}] already names "
                f"this target and function (selector 0x{sig.selector.hex()}); write one permission",
            )
        if refused is not None:
            problems.append(refused)
            continue
        key = (explicit.target, sig.selector)
        explicit_keys[key] = i
        known = _catalog_function(expansion.catalog, sig)
        fn = known or CatalogFunction(action_class=CUSTOM_ACTION, signature=sig, tier=Tier.GUARDED)
        rule_problems: list[Violation] = []
        permission = _permission(
            fn,
            explicit.target,
            explicit.max_value_per_call,
            explicit.rules,
            expansion.recipients_allowed,
            expansion.account,
            rule_problems,
            where,
            rules_signature=sig,
            limited_tokens=tuple(expansion.token_limits),
        )
        problems += rule_problems or _unrepresentable(
            permission, known, expansion.token_limits, where
        )
        granted[key] = permission
    return granted, problems


def _explicit_target_problem(
    target: str, sig: FunctionSignature, expansion: _Expansion, where: str
) -> Violation | None:
    """Why an explicit permission's target or function is never delegable, if it is not."""
    if target == ZERO_ADDRESS:
        return Violation(
            ReasonCode.WILDCARD_TARGET, f"{where}.target", "the zero address is not a target"
        )
    if target == expansion.account:
        return Violation(
            ReasonCode.NON_DELEGABLE_ACTION,
            f"{where}.target",
            "calls to the account itself are never delegable",
        )
    if target not in expansion.destinations:
        return Violation(
            ReasonCode.TARGET_NOT_ALLOWED,
            f"{where}.target",
            "the target must be one of allowedDestinations",
        )
    forbidden = expansion.catalog.forbidden.get(sig.selector)
    if forbidden is not None:
        return Violation(ReasonCode.NON_DELEGABLE_ACTION, f"{where}.function", forbidden.why)
    return None


def _tier_problems(
    envelope: Envelope, tier: Tier, *, catalog: Catalog, now: int
) -> list[Violation]:
    """The grant's tier (its most guarded permission's) bounds its TTL and may require caps."""
    problems = []
    expires_at = envelope.expires_at
    if (
        expires_at is not None
        and tier in catalog.max_ttl
        and expires_at - now > catalog.max_ttl[tier]
    ):
        problems.append(
            Violation(
                ReasonCode.TTL_EXCEEDS_TIER,
                "expiresAt",
                f"{tier.value} sessions live at most {catalog.max_ttl[tier]} s; "
                f"this one asks {expires_at - now} s",
            )
        )
    if tier is Tier.GUARDED and not _has_caps(envelope):
        problems.append(
            Violation(
                ReasonCode.CAPS_REQUIRED,
                "maxValueUsd/tokenLimits/valueLimit",
                "guarded actions need a value cap",
            )
        )
    return problems


def _usage_problems(envelope: Envelope) -> list[Violation]:
    """A use limit and a rate limit, when given, must allow something."""
    problems = []
    if envelope.max_uses == 0:
        problems.append(
            Violation(
                ReasonCode.ENVELOPE_MALFORMED, "maxUses", "a session with zero uses grants nothing"
            )
        )
    rate = envelope.rate_limit
    if rate is not None and (rate.count == 0 or rate.interval == 0):
        problems.append(
            Violation(
                ReasonCode.ENVELOPE_MALFORMED, "rateLimit", "count and interval must be positive"
            )
        )
    return problems


def _bound_problems(
    envelope: Envelope, granted: Mapping[tuple[str, bytes], GrantedPermission]
) -> list[Violation]:
    """What the on-chain module could not hold (:mod:`sessionward.domain.bounds`)."""
    problems = []

    def too_many(rule: str, count: int, bound: int) -> None:
        if count > bound:
            problems.append(
                Violation(
                    ReasonCode.ENVELOPE_MALFORMED,
                    rule,
                    f"{count} entries; the account holds at most {bound}",
                )
            )

    def too_long(rule: str, text: str, kind: str) -> None:
        if len(text.encode("utf-8")) > bounds.STRING_BOUNDS[kind]:
            problems.append(
                Violation(
                    ReasonCode.ENVELOPE_MALFORMED,
                    rule,
                    f"longer than {bounds.STRING_BOUNDS[kind]} bytes",
                )
            )

    def too_large(rule: str, amount: int, bound: int) -> None:
        if amount > bound:
            problems.append(
                Violation(
                    ReasonCode.ENVELOPE_MALFORMED,
                    rule,
                    f"{amount} is more than the account holds ({bound}); it would be clamped",
                )
            )

    if envelope.value_limit is not None:
        too_large("valueLimit.limit", envelope.value_limit.limit, MAX_VALUE_LIMIT)
    for token_limit in envelope.token_limits:
        too_large(f"tokenLimits[{token_limit.token}]", token_limit.limit, MAX_TOKEN_LIMIT)
    for permission in granted.values():
        too_large(
            f"{permission.label}.maxValuePerCall", permission.max_value_per_call, MAX_VALUE_PER_CALL
        )
    too_many("permissions", len(granted), bounds.MAX_PERMISSIONS)
    too_many("capabilities", len(envelope.capabilities), bounds.MAX_CAPABILITIES)
    too_many("allowedDestinations", len(envelope.allowed_destinations), bounds.MAX_DESTINATIONS)
    too_many("tokenLimits", len(envelope.token_limits), bounds.MAX_TOKEN_LIMITS)
    for name in envelope.capabilities:
        too_long(f"capabilities[{name}]", name, "capability")
    for permission in granted.values():
        too_many(f"{permission.label}.rules", len(permission.rules), bounds.MAX_RULES)
        too_long(f"{permission.label}.function", permission.signature.canonical, "function")
        too_long(f"{permission.label}.actionClass", permission.action_class, "actionClass")
        for rule in permission.rules:
            too_many(
                f"{permission.label}.rules[{rule.arg}]", len(rule.values), bounds.MAX_RULE_VALUES
            )
            too_long(f"{permission.label}.rules[{rule.arg}].arg", rule.arg, "arg")
    if envelope.max_value_usd is not None:
        too_long("maxValueUsd", format_usd(envelope.max_value_usd), "maxValueUsd")
    words = enable_storage_words(envelope.token_limits, granted.values())
    if words > bounds.MAX_ENABLE_STORAGE_WORDS:
        # Within every count bound yet too costly to enable in one transaction: refused here,
        # or the install would fail on chain after the owner signed.
        problems.append(
            Violation(
                ReasonCode.GRANT_TOO_LARGE,
                "permissions/tokenLimits",
                f"enabling this grant writes {words} storage words on chain; one transaction "
                f"holds at most {bounds.MAX_ENABLE_STORAGE_WORDS}: fewer permissions or rule values",
            )
        )
    return problems


def enable_storage_words(
    token_limits: Iterable[TokenLimit], permissions: Iterable[GrantedPermission]
) -> int:
    """The storage words the account's ``enable_session`` writes for a grant (session_enable.vy):
    per token limit its state word, plus its limit and period words when it refills; per
    permission its packed word and its target's ``target_known`` flag; per rule checked on
    chain one word (``eq``, ``ne``, ``lte``, ``gte``) or one set member per value (``in``,
    ``not_in``). Off-chain-only rules store nothing. The fixed per-session words are not
    counted (every grant writes them). An upper bound: repeated targets or values count again
    though the chain writes the same slot."""
    words = sum(3 if limit.period else 1 for limit in token_limits)
    for permission in permissions:
        words += 2
        for rule in permission.rules:
            if rule.offset is None:
                continue
            words += len(rule.words) if rule.op in (RuleOp.IN, RuleOp.NOT_IN) else 1
    return words


_APPROVAL_WORDS = ("approv", "allowance", "permit")


def is_approval_like(sig: FunctionSignature) -> bool:
    """Whether a function's name says it lets someone else spend (``approve``, ``increaseApproval``,
    ``approveAndCall``, ``decreaseAllowance``, ``permit``...): by name, since a custom token's
    semantics cannot be read from its ABI."""
    name = sig.name.lower()
    return any(word in name for word in _APPROVAL_WORDS)


def _unrepresentable(
    permission: GrantedPermission,
    known: CatalogFunction | None,
    token_limits: Mapping[str, TokenLimit],
    where: str,
) -> list[Violation]:
    """What an explicit permission would let through beyond what the owner reads and the account
    enforces: off-chain-only rules, undefined outflows of a limited token, open-ended approvals."""
    problems = []
    for j, rule in enumerate(r for r in permission.rules if not r.implicit):
        if rule.offset is None:
            problems.append(
                Violation(
                    ReasonCode.RULE_NOT_ON_CHAIN,
                    f"{where}.rules[{j}]",
                    f"the account cannot check {rule.label} (only static one-word arguments, "
                    "and lte/gte on unsigned integers, are checked on chain)",
                )
            )
    sig = permission.signature
    if known is None and permission.target in token_limits:
        problems.append(
            Violation(
                ReasonCode.TOKEN_FUNCTION_UNDEFINED,
                f"{where}.function",
                f"{sig.canonical} on a token under a limit: the catalog does not say what it "
                "moves out of the account, so the limit could not count it",
            )
        )
    elif known is None and is_approval_like(sig):
        spender = any(
            r.op is RuleOp.EQ and isinstance(r.reader.type, AddressType) for r in permission.rules
        )
        bounded = any(
            r.op is RuleOp.LTE
            and isinstance(r.reader.type, UintType)
            and r.values[0] != 2**r.reader.type.bits - 1
            for r in permission.rules
        )
        if not (spender and bounded):
            problems.append(
                Violation(
                    ReasonCode.APPROVAL_UNBOUNDED,
                    f"{where}.rules",
                    f"{sig.canonical} looks like an approval: name the spender (an eq rule on "
                    "an address argument) and bound the amount (an lte rule below the maximum)",
                )
            )
    return problems


def with_usd_cap_limits(
    envelope: Envelope, *, prices: PriceSource, catalog: Catalog
) -> tuple[Envelope, tuple[str, ...]]:
    """``envelope`` with its USD cap also written as on-chain limits, and the tokens it could
    not price.

    Every token the session can move gets a ``tokenLimits`` entry: the largest amount whose USD
    value (as ``prices`` computes it, rounded up) is within ``maxValueUsd``; an existing entry
    is kept if it is tighter (its period is kept). A ``valueLimit`` is tightened the same way
    with the native coin's price; without one the session sends no native value, as before.
    The tokens it can move: its destinations that are ERC-20 tokens (known to the catalog, priced,
    or already limited), and every priced token of the chain when a granted function takes its
    token from an argument (a swap's input, Permit2). Tolerance, exactly: on chain each token
    (and the native coin) is bounded by the cap separately, at the prices of this call; off
    chain the USD total of all of them is also bounded at live prices. Pure.
    """
    cap = envelope.max_value_usd
    if cap is None:
        return envelope, ()
    chain_id = envelope.chain_id
    existing = {t.token: t for t in envelope.token_limits}
    tokens = dict.fromkeys(existing)
    for dest in envelope.allowed_destinations:
        if (
            "erc20" in catalog.kinds_of(chain_id, dest)
            or prices.usd_value(chain_id, dest, 0) is not None
        ):
            tokens[dest] = None
    if _moves_argument_tokens(envelope, catalog):
        tokens.update(dict.fromkeys(prices.priced_tokens(chain_id)))
    limits: list[TokenLimit] = []
    unpriced: list[str] = []
    for token in tokens:
        bound = max_amount_within(prices, chain_id, token, cap)
        current = existing.get(token)
        if bound is not None:
            bound = min(bound, MAX_TOKEN_LIMIT)
        if bound is None:
            if current is None:
                unpriced.append(token)
            else:
                limits.append(current)
        elif current is None:
            limits.append(TokenLimit(token, bound))
        else:
            limits.append(TokenLimit(token, min(current.limit, bound), current.period))
    value_limit = envelope.value_limit
    if value_limit is not None:
        native = max_amount_within(prices, chain_id, NATIVE_ASSET, cap)
        if native is not None:
            native = min(native, MAX_VALUE_LIMIT)
            value_limit = ValueLimit(min(value_limit.limit, native), value_limit.period)
    converted = replace(envelope, token_limits=tuple(limits), value_limit=value_limit)
    return converted, tuple(unpriced)


def _moves_argument_tokens(envelope: Envelope, catalog: Catalog) -> bool:
    """Whether a granted function takes the token it moves from an argument (swaps, Permit2)."""
    functions = [
        fn
        for name in envelope.capabilities
        if (action := catalog.actions.get(name)) is not None
        for fn in action.functions
    ]
    for explicit in envelope.permissions:
        try:
            known = _catalog_function(catalog, parse_signature(explicit.function))
        except ValueError:
            continue
        if known is not None:
            functions.append(known)
    return any(fn.outflow is not None and fn.outflow.token != TARGET for fn in functions)


def _fits(
    catalog: Catalog, chain_id: int, address: str, kind: str, token_limits: Mapping[str, TokenLimit]
) -> bool:
    if kind in catalog.kinds_of(chain_id, address):
        return True
    # A token the owner put a limit on is, by the owner's word, an ERC-20.
    return kind == "erc20" and address in token_limits


def _catalog_function(catalog: Catalog, sig: FunctionSignature) -> CatalogFunction | None:
    for fn in catalog.by_selector.get(sig.selector, ()):
        if fn.signature.canonical == sig.canonical:
            return fn
    return None


def _has_caps(envelope: Envelope) -> bool:
    return (
        envelope.max_value_usd is not None
        or bool(envelope.token_limits)
        or (envelope.value_limit is not None and envelope.value_limit.limit > 0)
    )


def _permission(
    fn: CatalogFunction,
    target: str,
    max_value_per_call: int,
    rules: tuple[ArgRule, ...],
    recipients_allowed: tuple[str, ...],
    account: str,
    problems: list[Violation],
    where: str | None = None,
    *,
    rules_signature: FunctionSignature | None = None,
    limited_tokens: tuple[str, ...] = (),
) -> GrantedPermission:
    """Compile one permission. Explicit rules name arguments as the envelope's ``function``
    text does (``rules_signature``); catalog semantics use the catalog's names. Both describe
    the same canonical function, so their compiled paths read the same decoded values.

    Implicit rules from the catalog: recipients ``in [account, destinations...]``, account
    recipients (a swap's output) ``eq account``, and, when the envelope limits tokens, a token
    taken from an argument (a swap's input) ``in [limited tokens]``, so no outflow escapes every
    limit (on chain where the argument is a static word: ``exactInputSingle``'s ``tokenIn``)."""
    sig = fn.signature
    where = where or f"permissions[{target}.{sig.canonical}]"
    compiled: list[CompiledRule] = []
    for j, rule in enumerate(rules):
        try:
            compiled.append(compile_rule(rules_signature or sig, rule, account))
        except (InvalidValue, ArgumentPathError) as exc:
            message = exc.message if isinstance(exc, InvalidValue) else str(exc)
            problems.append(
                Violation(ReasonCode.ENVELOPE_MALFORMED, f"{where}.rules[{j}]", message)
            )
    for path in fn.recipients:
        compiled.append(
            compile_rule(sig, ArgRule(path, RuleOp.IN, recipients_allowed), account, implicit=True)
        )
    for path in fn.account_recipients:
        compiled.append(
            compile_rule(
                sig, ArgRule(path, RuleOp.EQ, (ACCOUNT_PLACEHOLDER,)), account, implicit=True
            )
        )
    if limited_tokens and fn.outflow is not None and fn.outflow.token != TARGET:
        compiled.append(
            compile_rule(
                sig, ArgRule(fn.outflow.token, RuleOp.IN, limited_tokens), account, implicit=True
            )
        )
    tier = fn.tier
    return GrantedPermission(
        target=target,
        signature=sig,
        action_class=fn.action_class,
        tier=tier,
        max_value_per_call=max_value_per_call,
        rules=tuple(compiled),
        outflow=CompiledOutflow.of(sig, fn.outflow) if fn.outflow else None,
        forbid_max=compile_argument_path(sig, fn.forbid_max) if fn.forbid_max else None,
    )


_RULE_TYPES = (AddressType, UintType, IntType, BoolType, FixedBytesType)


def compile_rule(
    sig: FunctionSignature, rule: ArgRule, account: str, *, implicit: bool = False
) -> CompiledRule:
    """Type ``rule``'s operands against the argument's ABI type; raise on mismatch."""
    reader = compile_argument_path(sig, rule.arg)
    abi_type = reader.type
    if not isinstance(abi_type, _RULE_TYPES):
        raise InvalidValue(
            rule.arg, f"rules apply to elementary static arguments, not {abi_type.canonical}"
        )
    if rule.op in (RuleOp.LTE, RuleOp.GTE) and not isinstance(abi_type, UintType | IntType):
        raise InvalidValue(
            rule.arg, f"{rule.op.value} compares integers; {rule.arg} is {abi_type.canonical}"
        )
    values = tuple(_operand(abi_type, v, account, rule.arg) for v in rule.values)
    words = tuple(encode_word(abi_type, v) for v in values)
    offset = reader.word_offset
    if isinstance(abi_type, IntType) and rule.op in (RuleOp.LTE, RuleOp.GTE):
        offset = None  # the contract compares words as unsigned integers
    return CompiledRule(rule.arg, rule.op, values, words, offset, implicit, reader)


def _operand(abi_type: AbiType, value: RuleValue, account: str, path: str) -> object:
    """A rule operand in the one JSON form of typed values (:func:`.abi.value_from_json`);
    for an address, ``ACCOUNT_PLACEHOLDER`` (``$account``) stands for the granting account."""
    if isinstance(abi_type, AddressType) and value == ACCOUNT_PLACEHOLDER:
        return account
    try:
        return value_from_json(abi_type, value, path)
    except AbiJsonError as exc:
        raise InvalidValue(path, exc.reason) from None
