"""Properties of the policy engine: limits hold over any sequence, and nothing crashes it.

The central invariant of docs/design.md section 4: feeding every allowed decision's charges into the
session's usage, no sequence of requests ever takes the running totals (measured independently
from the calls themselves, not from the engine's charges) past any limit of the envelope, and
every allowed call is a permitted (target, function) whose rules hold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from domain_support import (
    ACCOUNT,
    APPROVE,
    CHAIN_ID,
    DAI,
    DEPOSIT,
    EXACT_INPUT_SINGLE,
    MAX_UINT256,
    MERCHANT,
    MULTISEND,
    NOW,
    PERMIT,
    ROUTER_A,
    SEED_EXPIRY,
    STRANGER,
    SWAP_V2,
    TOKEN_X,
    TRANSFER,
    TRANSFER_FROM,
    TRANSFER_OWNERSHIP,
    USDC,
    WETH,
    apply_charges,
    approve,
    batch_request,
    call_request,
    deposit,
    transfer,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sessionward.domain.abi import decode_arguments, encode_arguments, resolve_argument
from sessionward.domain.calldata import EXECUTE, Call
from sessionward.domain.catalog import Catalog, KnownContract, default_catalog
from sessionward.domain.decision import Decision, GrantRefused
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import Scope, validate_grant
from sessionward.domain.policy import CallRequest, SessionStatus, SessionView, evaluate
from sessionward.domain.prices import DEFAULT_PRICES, NATIVE_ASSET
from sessionward.domain.usage import FEE, NATIVE, RATE, TOKEN_PREFIX, USD, USES, Usage, window_index

# Hypothesis does not mix with function-scoped fixtures; this is the root `catalog` fixture's value.
CATALOG: Catalog = default_catalog().with_contracts(
    [KnownContract(CHAIN_ID, TOKEN_X, frozenset({"erc20"}), "Token X", "TKX", 18)]
)
TOKENS = (USDC, DAI, WETH, TOKEN_X)
RECIPIENTS = (MERCHANT, STRANGER, ACCOUNT, ROUTER_A)
DAI_RULE_CAP = 5 * 10**17  # explicit rule on DAI transfers: amount <= 0.5 DAI

# --- envelopes -----------------------------------------------------------------------------

_periods = st.sampled_from([0, 0, 60, 600])
_limits = st.sampled_from([0, 10**6, 10**8, 5 * 10**8, 10**9, 10**20]) | st.integers(0, 10**9)
_value_limits = st.sampled_from([0, 10**12, 10**15, 10**18])


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    limited = draw(st.lists(st.sampled_from(TOKENS), unique=True, max_size=4))
    doc: dict[str, Any] = {
        "capabilities": ["erc20.transfer", "erc20.approve", "weth.deposit"],
        "allowedDestinations": [*TOKENS, MERCHANT, ROUTER_A],
        "chainId": CHAIN_ID,
        "expiresAt": SEED_EXPIRY,
        "tokenLimits": [
            {
                "token": token,
                "limit": draw(_limits),
                "period": draw(_periods),
            }
            for token in limited
        ],
    }
    if draw(st.booleans()):
        doc["valueLimit"] = {"limit": draw(_value_limits), "period": draw(_periods)}
    if draw(st.booleans()):
        doc["maxValueUsd"] = draw(st.sampled_from([0, 1, 100, 500, 2000]))
    if draw(st.booleans()):
        doc["maxUses"] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        doc["rateLimit"] = {
            "count": draw(st.integers(1, 3)),
            "interval": draw(st.sampled_from([30, 300])),
        }
    if draw(st.booleans()):
        doc["maxFeeWei"] = draw(st.sampled_from([0, 10**5, 10**6]))
    if draw(st.booleans()):
        doc["permissions"] = [
            {
                "target": DAI,
                "function": "transfer(address to,uint256 amount)",
                "rules": [{"arg": "amount", "op": "lte", "value": DAI_RULE_CAP}],
            }
        ]
    return doc


def grant_of(doc: dict[str, Any]) -> Scope | None:
    try:
        return validate_grant(
            Envelope.from_json(doc), catalog=CATALOG, account=ACCOUNT, chain_id=CHAIN_ID, now=NOW
        )
    except GrantRefused:
        return None


# --- requests ------------------------------------------------------------------------------

_amounts = st.one_of(
    st.sampled_from([0, 1, 10**6, 5 * 10**7, 10**8, 3 * 10**8, 10**18]),
    st.integers(0, 10**9),
    st.sampled_from([MAX_UINT256, 2**255, 10**20]),
)
_deposits = st.sampled_from([0, 1, 10**12, 10**14, 10**15, 10**18, MAX_UINT256])
_stray_values = st.sampled_from([0, 0, 0, 0, 0, 0, 1])  # value sent along with a token call
_KINDS = ("transfer", "transfer", "approve", "deposit")
_RECIPIENT_MIX = (MERCHANT, MERCHANT, ACCOUNT, ROUTER_A, STRANGER)

# Flat tuples keep generation cheap: (kind, token, recipient, amount, deposit, stray value).
_call_specs = st.tuples(
    st.sampled_from(_KINDS),
    st.sampled_from(TOKENS),
    st.sampled_from(_RECIPIENT_MIX),
    _amounts,
    _deposits,
    _stray_values,
)


def call_of(spec: tuple[str, str, str, int, int, int]) -> Call:
    kind, token, recipient, amount, deposited, stray = spec
    if kind == "deposit":
        return Call(WETH, deposited, deposit())
    data = transfer(recipient, amount) if kind == "transfer" else approve(recipient, amount)
    return Call(token, stray, data)


@dataclass
class Step:
    advance: int
    calls: list[Call]
    batched: bool
    fee: int


_steps = st.builds(
    lambda advance, specs, batched, fee: Step(advance, [call_of(s) for s in specs], batched, fee),
    st.integers(0, 400),
    st.lists(_call_specs, min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from([0, 0, 1, 10**5, 4 * 10**5]),
)


def request_of(step: Step) -> CallRequest:
    if step.batched or len(step.calls) > 1:
        request = batch_request(step.calls)
    else:
        (call,) = step.calls
        request = call_request(call.to, call.data, call.value)
    return CallRequest(
        request.chain_id, request.account, request.to, request.value, request.data, step.fee
    )


# --- an independent ledger -----------------------------------------------------------------


@dataclass
class Ledger:
    """Totals recomputed from the allowed calls themselves, with the window rule of usage.py."""

    spent: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, bucket: str, window: int, amount: int) -> None:
        self.spent[(bucket, window)] += amount


def outflows(call: Call) -> tuple[str | None, int]:
    """(token, amount) that leaves the account through ``call`` (token None: nothing)."""
    selector = call.data[:4]
    if selector in (TRANSFER.selector, APPROVE.selector):
        _, amount = decode_arguments(TRANSFER, call.data[4:])
        assert isinstance(amount, int)
        return call.to, amount
    return None, 0


def book(ledger: Ledger, scope: Scope, step: Step, now: int) -> None:
    env = scope.envelope
    anchor = scope.valid_after
    native = sum(c.value for c in step.calls)
    period = env.value_limit.period if env.value_limit else 0
    ledger.add(NATIVE, window_index(now, anchor, period), native)
    usd_total = DEFAULT_PRICES.usd_value(CHAIN_ID, NATIVE_ASSET, native) or 0
    for call in step.calls:
        token, amount = outflows(call)
        if token is None or amount == 0:
            continue
        limit = scope.token_limits.get(token)
        ledger.add(
            TOKEN_PREFIX + token, window_index(now, anchor, limit.period if limit else 0), amount
        )
        if limit is None:
            # Allowed only because a USD cap measures it: then its price must be known.
            assert env.max_value_usd is not None, f"unmeasured outflow of {token}"
        price = DEFAULT_PRICES.usd_value(CHAIN_ID, token, amount)
        if env.max_value_usd is not None:
            assert price is not None, f"outflow of unpriced {token} under a USD cap"
        usd_total += price or 0
    ledger.add(USD, 0, usd_total)
    ledger.add(USES, 0, 1)
    if env.rate_limit is not None:
        ledger.add(RATE, window_index(now, anchor, env.rate_limit.interval), 1)
    ledger.add(FEE, 0, step.fee)


def limit_of(scope: Scope, bucket: str) -> int | None:
    env = scope.envelope
    if bucket == NATIVE:
        return env.value_limit.limit if env.value_limit else 0
    if bucket.startswith(TOKEN_PREFIX):
        limit = scope.token_limits.get(bucket[len(TOKEN_PREFIX) :])
        return limit.limit if limit else None
    return {
        USD: env.max_value_usd,
        USES: env.max_uses,
        RATE: env.rate_limit.count if env.rate_limit else None,
        FEE: env.max_fee_wei,
    }[bucket]


def assert_in_scope(scope: Scope, call: Call) -> None:
    """An allowed inner call is a permitted (target, function) and every rule of it holds."""
    permission = scope.permissions.get((call.to, call.data[:4]))
    assert permission is not None, (call.to, call.data[:4].hex())
    assert call.value <= permission.max_value_per_call
    args = decode_arguments(permission.signature, call.data[4:])
    for rule in permission.rules:
        assert rule.holds(resolve_argument(permission.signature, args, rule.arg)), rule.label
    if call.data[:4] in (TRANSFER.selector, APPROVE.selector):
        recipient, amount = args
        assert recipient in (ACCOUNT, *scope.envelope.allowed_destinations)
        assert amount != MAX_UINT256 or call.data[:4] == TRANSFER.selector
        if call.to == DAI and scope.envelope.permissions and call.data[:4] == TRANSFER.selector:
            assert isinstance(amount, int) and amount <= DAI_RULE_CAP


@settings(max_examples=300)
@given(envelopes(), st.lists(_steps, min_size=1, max_size=8))
def test_running_totals_never_exceed_any_limit(doc: dict[str, Any], steps: list[Step]) -> None:
    scope = grant_of(doc)
    assume(scope is not None)
    assert scope is not None
    session = SessionView("s-prop", scope, SessionStatus.ACTIVE)
    usage = Usage()
    ledger = Ledger()
    now = NOW
    for step in steps:
        now = min(now + step.advance, SEED_EXPIRY - 1)
        decision = evaluate(request_of(step), session, usage, now, catalog=CATALOG)
        assert decision.allowed == (not decision.violations)
        if not decision.allowed:
            continue
        for call in step.calls:
            assert_in_scope(scope, call)
        usage = apply_charges(usage, decision.charges)
        book(ledger, scope, step, now)
        for (bucket, _window), total in ledger.spent.items():
            limit = limit_of(scope, bucket)
            if limit is not None:
                assert total <= limit, (bucket, total, limit)
        for bucket, counter in usage.counters.items():
            limit = limit_of(scope, bucket)
            if limit is not None:
                assert counter.amount <= limit, (bucket, counter, limit)


# --- robustness ----------------------------------------------------------------------------

_SEED_SCOPE = validate_grant(
    Envelope.from_json(
        {
            "capabilities": [
                "swap.execute",
                "erc20.transfer",
                "erc20.permit",
                "erc20.transferFrom",
            ],
            "allowedDestinations": [ROUTER_A, USDC, MERCHANT],
            "chainId": CHAIN_ID,
            "expiresAt": SEED_EXPIRY,
            "maxValueUsd": 500,
            "tokenLimits": [{"token": USDC, "limit": 10**9}],
        }
    ),
    catalog=CATALOG,
    account=ACCOUNT,
    chain_id=CHAIN_ID,
    now=NOW,
)
_SESSION = SessionView("s-fuzz", _SEED_SCOPE, SessionStatus.ACTIVE)
_SELECTORS = [
    sig.selector
    for sig in (
        SWAP_V2,
        EXACT_INPUT_SINGLE,
        TRANSFER,
        TRANSFER_FROM,
        PERMIT,
        APPROVE,
        DEPOSIT,
        TRANSFER_OWNERSHIP,
        EXECUTE,
    )
]
_payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda s, b: s + b, st.sampled_from(_SELECTORS), st.binary(max_size=400)),
    st.builds(
        lambda s, words: s + b"".join(w.to_bytes(32, "big") for w in words),
        st.sampled_from(_SELECTORS),
        st.lists(
            st.sampled_from([0, 1, 2, 0x20, 0x40, 0xA0, 0xC0, 2**160 - 1, MAX_UINT256]), max_size=12
        ),
    ),
)


@settings(max_examples=300)
@given(
    st.sampled_from([ROUTER_A, USDC, ACCOUNT, MULTISEND, STRANGER]),
    _payloads,
    st.one_of(st.just(0), st.integers(0, MAX_UINT256)),
)
def test_evaluate_never_raises_on_random_calldata(to: str, data: bytes, value: int) -> None:
    decision = evaluate(call_request(to, data, value), _SESSION, Usage(), NOW, catalog=CATALOG)
    assert isinstance(decision, Decision)
    if decision.allowed:
        assert len(data) >= 4
        assert to != ACCOUNT or data[:4] == EXECUTE.selector


@settings(max_examples=200)
@given(
    st.lists(st.sampled_from([USDC, DAI, TOKEN_X, WETH]), max_size=3),
    st.integers(0, MAX_UINT256),
    st.sampled_from(RECIPIENTS),
)
def test_evaluate_never_raises_on_well_formed_swaps(path: list[str], amount: int, to: str) -> None:
    data = SWAP_V2.selector + encode_arguments(SWAP_V2, (amount, 1, path, to, NOW + 60))
    decision = evaluate(call_request(ROUTER_A, data), _SESSION, Usage(), NOW, catalog=CATALOG)
    assert isinstance(decision, Decision)
    if decision.allowed:
        assert path and to in (ACCOUNT, ROUTER_A, USDC, MERCHANT)
