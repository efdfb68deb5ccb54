"""Differential property: the off-chain policy engine and the on-chain sessions module agree.

Hypothesis writes envelopes (ERC-20 transfer/approve/increaseAllowance/transferFrom on two demo
tokens, swap.execute on the demo router, explicit permissions with static-argument rules
eq/ne/lte/gte/in/not_in, custom functions (the recorder's ``record``, a token's ``burn``),
overlapping explicit permissions, value limits and token limits with periods, USD caps
converted into token and native limits, maxUses, validity windows that start later) and call
sequences (single and batch executions, Safe MultiSend requests, session user operations with
their gas fields under fee budgets, refused modes and MultiSend delegatecall records, empty
batches, in-scope and out-of-scope targets, selectors, recipients, swaps to the account or
elsewhere, amounts and values, time jumps across period and window boundaries). Every request is decided off chain and what is signed for it is run on chain;
``differential_support`` states and checks the three properties:

- off-chain ALLOW ⇒ on-chain success;
- an on-chain reason code is an off-chain verdict;
- an off-chain verdict of a shared check ⇒ an on-chain revert.

Hypothesis settings profiles (registered here, chosen by ``SESSIONWARD_DIFF_PROFILE``):

- ``differential-ci`` (default): 2,000 examples in total over two shards with fixed seeds and
  no example database, so CI runs the same cases every time;
- ``differential-deep``: 50,000 examples with random seeds, for runs outside CI
  (``SESSIONWARD_DIFF_PROFILE=differential-deep pytest -p no:boa_test
  tests/onchain/test_differential.py``; ``HYPOTHESIS_PROFILE=deep`` selects it too).

``SESSIONWARD_DIFF_EXAMPLES`` overrides the example count of either profile.
"""

from __future__ import annotations

import os
from typing import Any

import boa
import pytest
from differential_support import (
    APPROVE,
    BURN,
    INCREASE,
    MAX_UINT256,
    RECORD,
    SWAP_V2,
    SWAP_V3,
    T0,
    TRANSFER,
    TRANSFER_FROM,
    CallSpec,
    Case,
    DiffWorld,
    EnvelopeSpec,
    Mismatch,
    Model,
    PermissionSpec,
    RuleSpec,
    Step,
    deploy_diff_world,
    execute_step,
    grant_and_enable,
    run_case,
)
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st

from sessionward.domain.decision import Decision, GrantRefused
from sessionward.domain.envelope import RuleOp

pytestmark = pytest.mark.slow


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "differential-ci",
    max_examples=2_000,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "differential-deep",
    max_examples=50_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)


def _profile() -> settings:
    default = "differential-deep" if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else None
    name = os.environ.get("SESSIONWARD_DIFF_PROFILE", default or "differential-ci")
    return settings.get_profile(name)


def _example_count() -> int:
    return int(os.environ.get("SESSIONWARD_DIFF_EXAMPLES", _profile().max_examples))


TOKENS = ("tokenA", "tokenB")
RECIPIENTS = ("merchant", "friend", "stranger", "account", "router", "tokenA")
# Spenders exclude the router and the account: the set-up's unlimited approvals to them are
# what keeps every swap and transferFrom(account, ...) executable.
SPENDERS = ("merchant", "friend", "stranger")
DESTINATIONS = ("tokenA", "tokenB", "router", "recorder", "merchant", "friend")
AMOUNTS = (0, 1, 7, 100, 250, 999, 1000, 1001, 5000, 10**24)
LIMITS = (0, 100, 1000, 5000)
PERIODS = (0, 60, 600)
VALUES = (0, 1, 40, 50, 51, 1000, 1001)
JUMPS = (1, 29, 30, 59, 60, 61, 599, 600, 601, 3600)
TAGS = ("0x" + "00" * 32, "0x" + "ab" * 32, "0x" + "01" * 32)

# Static arguments a rule may name, per function text: (path, kind).
RULE_ARGS: dict[str, tuple[tuple[str, str], ...]] = {
    TRANSFER: (("to", "address"), ("amount", "uint")),
    APPROVE: (("spender", "address"), ("amount", "uint")),
    INCREASE: (("spender", "address"), ("addedValue", "uint")),
    TRANSFER_FROM: (("from", "address"), ("to", "address"), ("amount", "uint")),
    SWAP_V2: (("amountIn", "uint"), ("to", "address"), ("amountOutMin", "uint")),
    SWAP_V3: (
        ("params.tokenIn", "token"),
        ("params.recipient", "address"),
        ("params.amountIn", "uint"),
    ),
    RECORD: (("a", "uint"), ("b", "address"), ("c", "bytes32")),
}
ADDRESS_OPERANDS = ("merchant", "friend", "stranger", "router", "$account")
OPS_BY_KIND = {
    "uint": tuple(RuleOp),
    "address": (RuleOp.EQ, RuleOp.NE, RuleOp.IN, RuleOp.NOT_IN),
    "token": (RuleOp.EQ, RuleOp.NE, RuleOp.IN, RuleOp.NOT_IN),
    "bytes32": (RuleOp.EQ, RuleOp.NE, RuleOp.IN, RuleOp.NOT_IN),
}
OPERANDS_BY_KIND: dict[str, tuple[Any, ...]] = {
    "uint": AMOUNTS[:-1],
    "address": ADDRESS_OPERANDS,
    "token": TOKENS,
    "bytes32": TAGS,
}


# ------------------------------------------------------------------------------ strategies


@st.composite
def rules(draw: st.DrawFn, function: str) -> RuleSpec:
    arg, kind = draw(st.sampled_from(RULE_ARGS[function]))
    op = draw(st.sampled_from(OPS_BY_KIND[kind]))
    operand = st.sampled_from(OPERANDS_BY_KIND[kind])
    if op in (RuleOp.IN, RuleOp.NOT_IN):
        values = tuple(draw(st.lists(operand, min_size=1, max_size=3, unique=True)))
    else:
        values = (draw(operand),)
    return RuleSpec(arg, op, values)


@st.composite
def permissions(draw: st.DrawFn) -> PermissionSpec:
    target = draw(st.sampled_from((*TOKENS, "router", "recorder", "recorder")))
    if target == "recorder":
        function = RECORD
    elif target in TOKENS and draw(st.integers(0, 9)) == 0:
        # A function the catalog does not know: refused on a limited token, custom elsewhere.
        return PermissionSpec(target, BURN, 0, ())
    elif target == "router":
        function = draw(st.sampled_from((SWAP_V2, SWAP_V3)))
    else:
        function = draw(st.sampled_from((TRANSFER, APPROVE, INCREASE, TRANSFER_FROM)))
    # Only the recorder accepts value: a token or router permission with a value cap would let
    # the policy allow calls the (non-payable) target then refuses.
    max_value = draw(st.sampled_from((0, 50, 1000))) if target == "recorder" else 0
    drawn = draw(st.lists(rules(function), max_size=2))
    return PermissionSpec(target, function, max_value, tuple(drawn))


@st.composite
def envelopes(draw: st.DrawFn) -> EnvelopeSpec:
    capabilities = tuple(
        draw(
            st.lists(
                st.sampled_from(
                    (
                        "erc20.transfer",
                        "erc20.approve",
                        "erc20.increaseAllowance",
                        "erc20.transferFrom",
                        "swap.execute",
                    )
                ),
                max_size=2,
                unique=True,
            )
        )
    )
    # Sizes stay small: enabling costs ~25 ms of py-evm per permission, the bulk of a case.
    destinations = set(draw(st.lists(st.sampled_from(DESTINATIONS), max_size=3, unique=True)))
    if any(c.startswith("erc20.") for c in capabilities) and not destinations & set(TOKENS):
        destinations.add(draw(st.sampled_from(TOKENS)))
    if "swap.execute" in capabilities:
        destinations.add("router")
    # One permission per (target, function): a second one is the overlap case below.
    explicit = tuple(
        draw(st.lists(permissions(), max_size=2, unique_by=lambda p: (p.target, p.function)))
    )
    if not capabilities and not explicit:
        explicit = (draw(permissions()),)
    if explicit and draw(st.integers(0, 9)) == 0:
        # Overlap: the same target and function again, with other rules (refused by both).
        twin = draw(permissions())
        first = explicit[0]
        explicit = (
            *explicit,
            PermissionSpec(
                first.target,
                first.function,
                first.max_value,
                twin.rules if twin.function == first.function else (),
            ),
        )
    value_limit = draw(st.none() | st.tuples(st.sampled_from(LIMITS[1:]), st.sampled_from(PERIODS)))
    token_limits = tuple(
        (token, draw(st.sampled_from(LIMITS)), draw(st.sampled_from(PERIODS)))
        for token in draw(st.lists(st.sampled_from(TOKENS), max_size=2, unique=True))
    )
    if value_limit is None and not token_limits:
        token_limits = (("tokenA", draw(st.sampled_from(LIMITS[1:])), 0),)
    start = draw(st.sampled_from((0, 0, 0, 0, 0, 0, 10, 60)))
    ttl = draw(st.sampled_from((1, 30, 90, 600, 3600)))
    # A USD cap (micro-USD) around the amounts: 1 DA = 0.001 USD, 1 DB = 0.002 USD.
    usd_cap = draw(st.sampled_from((None, None, None, 1_000_000, 5_000_000)))
    # A fee budget for session user operations (none: the account pays no session gas).
    max_fee_wei = draw(st.sampled_from((None, 10**15, 10**17, 10**17)))
    return EnvelopeSpec(
        capabilities=capabilities,
        destinations=tuple(sorted(destinations)),
        permissions=explicit,
        value_limit=value_limit,
        token_limits=token_limits,
        max_uses=draw(st.sampled_from((None, None, 1, 2, 4))),
        start=start,
        ttl=max(ttl, start + 1),
        usd_cap=usd_cap,
        max_fee_wei=max_fee_wei,
    )


def _value() -> st.SearchStrategy[int]:
    return st.sampled_from((0, 0, 0, 0, 1))


@st.composite
def calls(draw: st.DrawFn) -> CallSpec:
    kind = draw(
        st.sampled_from(
            (
                "transfer",
                "transfer",
                "approve",
                "increaseAllowance",
                "transferFrom",
                "swapV2",
                "swapV3",
                "record",
                "record",
                "forbidden",
                "burn",
                "unknown",
                "self",
                "truncated",
                "short",
            )
        )
    )
    token = st.sampled_from((*TOKENS, *TOKENS, "stranger"))
    amount = st.sampled_from(AMOUNTS)
    if kind == "transfer":
        return CallSpec(
            kind, (draw(token), draw(st.sampled_from(RECIPIENTS)), draw(amount)), draw(_value())
        )
    if kind in ("approve", "increaseAllowance"):
        spend = draw(st.sampled_from((*AMOUNTS, MAX_UINT256)))
        return CallSpec(kind, (draw(token), draw(st.sampled_from(SPENDERS)), spend), draw(_value()))
    if kind == "transferFrom":
        args = (
            draw(token),
            draw(st.sampled_from(("account", "friend"))),
            draw(st.sampled_from(RECIPIENTS)),
            draw(amount),
        )
        return CallSpec(kind, args, draw(_value()))
    if kind in ("swapV2", "swapV3"):
        token_in = draw(st.sampled_from(TOKENS))
        token_out = "tokenB" if token_in == "tokenA" else "tokenA"
        args = (token_in, token_out, draw(st.sampled_from(RECIPIENTS)), draw(amount))
        return CallSpec(kind, args, draw(_value()))
    if kind == "record":
        number = draw(st.sampled_from(AMOUNTS[:-1]))
        who = draw(st.sampled_from(ADDRESS_OPERANDS[:-1]))
        tag = draw(st.sampled_from(TAGS))
        return CallSpec(kind, (number, who, tag), draw(st.sampled_from(VALUES)))
    if kind == "forbidden":
        return CallSpec(kind, (draw(st.sampled_from(TOKENS)),))
    if kind == "burn":
        return CallSpec(kind, (draw(st.sampled_from(TOKENS)), draw(amount)))
    if kind == "unknown":
        return CallSpec(kind, (draw(st.sampled_from((*TOKENS, "router", "recorder"))),))
    if kind == "truncated":
        cut = draw(st.sampled_from((1, 31, 32, 33, 60)))
        target = draw(st.sampled_from(TOKENS))
        return CallSpec(kind, (target, draw(st.sampled_from(RECIPIENTS)), draw(amount), cut))
    if kind == "short":
        return CallSpec(kind, (draw(st.sampled_from(TOKENS)),))
    return CallSpec(kind, ())


def _scoped_recipients(env: EnvelopeSpec) -> tuple[str, ...]:
    """Recipients the implicit rule allows: the account and the envelope's destinations that
    can receive (for spenders, only those whose allowance changes nothing executable)."""
    return ("account", *(d for d in env.destinations if d in RECIPIENTS))


@st.composite
def scoped_calls(draw: st.DrawFn, env: EnvelopeSpec) -> CallSpec:
    """A call aimed inside ``env``: a granted target and function, an allowed recipient, an
    amount around the limits. Rules, limits and time still refuse many of them."""
    options: list[tuple[str, str]] = []
    tokens = [d for d in env.destinations if d in TOKENS]
    for capability in env.capabilities:
        if capability == "swap.execute":
            options += [("swapV2", "router"), ("swapV3", "router")]
        else:
            kind = capability.removeprefix("erc20.")
            options += [(kind, token) for token in tokens]
    for permission in env.permissions:
        kind = {
            TRANSFER: "transfer",
            APPROVE: "approve",
            INCREASE: "increaseAllowance",
            TRANSFER_FROM: "transferFrom",
            SWAP_V2: "swapV2",
            SWAP_V3: "swapV3",
            RECORD: "record",
            BURN: "burn",
        }[permission.function]
        options.append((kind, permission.target))
    if not options:
        return draw(calls())
    kind, target = draw(st.sampled_from(options))
    limits = [limit for _token, limit, _period in env.token_limits]
    if env.value_limit is not None:
        limits.append(env.value_limit[0])
    limit = draw(st.sampled_from(limits or [100]))
    amount = draw(st.sampled_from((0, 1, 7, 100, limit // 2, limit, limit + 1)))
    recipient = draw(st.sampled_from(_scoped_recipients(env)))
    if kind == "transfer":
        return CallSpec(kind, (target, recipient, amount))
    if kind in ("approve", "increaseAllowance"):
        spender = draw(st.sampled_from(("merchant", "friend")))
        unlimited = draw(st.sampled_from((False, False, False, True)))
        return CallSpec(kind, (target, spender, MAX_UINT256 if unlimited else amount))
    if kind == "transferFrom":
        source = draw(st.sampled_from(("account", "friend")))
        return CallSpec(kind, (target, source, recipient, amount))
    if kind in ("swapV2", "swapV3"):
        token_in = draw(st.sampled_from(TOKENS))
        token_out = "tokenB" if token_in == "tokenA" else "tokenA"
        # What a swap buys must come back to the account: mostly aim there.
        to = draw(st.sampled_from(("account", "account", "account", recipient)))
        return CallSpec(kind, (token_in, token_out, to, amount))
    if kind == "burn":
        return CallSpec(kind, (target, amount))
    tag = draw(st.sampled_from(TAGS))
    who = draw(st.sampled_from(ADDRESS_OPERANDS[:-1]))
    return CallSpec("record", (amount, who, tag), draw(st.sampled_from((0, amount, 50, 51))))


def _call_for(env: EnvelopeSpec) -> st.SearchStrategy[CallSpec]:
    return st.one_of(scoped_calls(env), scoped_calls(env), scoped_calls(env), calls())


@st.composite
def steps(draw: st.DrawFn, env: EnvelopeSpec) -> Step:
    shape = draw(
        st.sampled_from(
            ("single",) * 6
            + ("batch",) * 3
            + ("multisend",) * 2
            + ("userop",) * 2
            + ("time",) * 3
            + ("empty", "delegatecall", "try", "multisend_delegate")
        )
    )
    if shape == "time":
        return Step("time", seconds=draw(st.sampled_from(JUMPS)))
    if shape == "empty":
        return Step("empty")
    if shape in ("batch", "multisend", "multisend_delegate"):
        return Step(shape, tuple(draw(st.lists(_call_for(env), min_size=1, max_size=3))))
    if shape == "userop":
        gas = (
            draw(st.sampled_from((100_000, 500_000))),
            draw(st.sampled_from((100_000, 1_000_000))),
            draw(st.sampled_from((21_000, 50_000))),
            draw(st.sampled_from((10**9, 50 * 10**9))),
        )
        drawn = tuple(draw(st.lists(_call_for(env), min_size=1, max_size=2)))
        return Step(shape, drawn, gas=gas)
    return Step(shape, (draw(_call_for(env)),))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    env = draw(envelopes())
    return Case(env, tuple(draw(st.lists(steps(env), min_size=1, max_size=5))))


# ----------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def world() -> DiffWorld:
    return deploy_diff_world()


def _agree(world: DiffWorld, case: Case) -> None:
    note(f"case: {case}")
    with boa.env.anchor():
        try:
            model = run_case(world, case)
        except GrantRefused as refused:
            # The generator aims at grantable envelopes; what the policy refuses is not enabled
            # anywhere, so there is nothing to compare.
            event(f"grant refused: {refused.code.value}")
            return
    for outcome in model.outcomes:
        event(outcome)


# Two shards with fixed seeds (reproducible: the same cases on every run), half of the
# examples each: with `pytest -n 2` they run on both workers.
_SHARD = settings(_profile(), max_examples=max(1, _example_count() // 2))


@_SHARD
@seed(0x5E55_10A1)
@given(case=cases())
def test_off_chain_verdicts_and_on_chain_outcomes_agree(world: DiffWorld, case: Case) -> None:
    _agree(world, case)


@_SHARD
@seed(0x5E55_10A2)
@given(case=cases())
def test_off_chain_verdicts_and_on_chain_outcomes_agree_second_shard(
    world: DiffWorld, case: Case
) -> None:
    _agree(world, case)


# A few fixed cases pin the harness itself: each must exercise what it claims, or the
# property above could pass by comparing nothing.


def _run(
    world: DiffWorld, envelope: EnvelopeSpec, *shape_calls: Step
) -> list[tuple[bool, str | None]]:
    outcomes = []
    with boa.env.anchor():
        boa.env.timestamp = T0
        model = Model(grant_and_enable(world, envelope))
        for step in shape_calls:
            if step.shape == "time":
                boa.env.time_travel(seconds=step.seconds)
                continue
            _decision, ok, reason = execute_step(world, model, step)
            outcomes.append((ok, reason))
    return outcomes


TRANSFER_ENVELOPE = EnvelopeSpec(
    capabilities=("erc20.transfer",),
    destinations=("merchant", "tokenA"),
    permissions=(),
    value_limit=None,
    token_limits=(("tokenA", 1000, 60),),
    max_uses=None,
    start=0,
    ttl=600,
)


def test_the_harness_sees_allowed_calls_succeed_and_limits_refill(world: DiffWorld) -> None:
    pay = Step("single", (CallSpec("transfer", ("tokenA", "merchant", 700)),))
    assert _run(world, TRANSFER_ENVELOPE, pay, pay, Step("time", seconds=60), pay) == [
        (True, None),
        (False, "TOKEN_LIMIT_EXCEEDED"),
        (True, None),
    ]


def test_the_harness_sees_the_chain_refuse_what_the_policy_refuses(world: DiffWorld) -> None:
    stranger = Step("single", (CallSpec("transfer", ("tokenA", "stranger", 1)),))
    other_token = Step("single", (CallSpec("transfer", ("tokenB", "merchant", 1)),))
    assert _run(world, TRANSFER_ENVELOPE, stranger, other_token) == [
        (False, "ARG_RULE_VIOLATED"),
        (False, "TARGET_NOT_ALLOWED"),
    ]


def test_the_harness_reports_a_chain_that_runs_what_the_policy_refuses(
    world: DiffWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = DiffWorld.submit

    def lenient(self: DiffWorld, function: str, *args: Any) -> tuple[bool, str | None]:
        # A chain that ignored the recipient rule would execute the call.
        if function == "execute_with_session":
            return True, None
        return honest(self, function, *args)

    monkeypatch.setattr(DiffWorld, "submit", lenient)
    stranger = Step("single", (CallSpec("transfer", ("tokenA", "stranger", 1)),))
    with pytest.raises(Mismatch, match="shared check"):
        _run(world, TRANSFER_ENVELOPE, stranger)


def _decide_and_run(
    world: DiffWorld, envelope: EnvelopeSpec, step: Step
) -> tuple[Decision, str | None]:
    with boa.env.anchor():
        boa.env.timestamp = T0
        model = Model(grant_and_enable(world, envelope))
        decision, ok, reason = execute_step(world, model, step)
    assert not ok
    return decision, reason


def test_undecodable_arguments_are_refused_by_both_with_different_first_reasons(
    world: DiffWorld,
) -> None:
    # The amount word is cut short and the recipient is not allowed: the policy stops at the
    # decoding, the contract reads the recipient word and refuses the rule.
    cut = Step("single", (CallSpec("truncated", ("tokenA", "stranger", 5, 1)),))
    decision, reason = _decide_and_run(world, TRANSFER_ENVELOPE, cut)
    assert [v.code.value for v in decision.violations] == ["CALLDATA_MALFORMED"]
    assert reason == "ARG_RULE_VIOLATED"


def test_a_forbidden_selector_is_refused_by_both_with_different_reasons(world: DiffWorld) -> None:
    forbidden = Step("single", (CallSpec("forbidden", ("tokenA",)),))
    decision, reason = _decide_and_run(world, TRANSFER_ENVELOPE, forbidden)
    assert [v.code.value for v in decision.violations] == ["NON_DELEGABLE_ACTION"]
    assert reason == "SELECTOR_NOT_ALLOWED"


def test_a_multisend_of_allowed_transfers_executes_as_decided(world: DiffWorld) -> None:
    # Prepare decides the records; Execute signs exactly them as the account's batch.
    pay = CallSpec("transfer", ("tokenA", "merchant", 300))
    twice = Step("multisend", (pay, pay))
    assert _run(world, TRANSFER_ENVELOPE, twice, twice) == [
        (True, None),
        (False, "TOKEN_LIMIT_EXCEEDED"),  # 600 + 600 > 1000: counted on chain as well
    ]


def test_a_multisend_with_a_delegatecall_record_is_never_signed(world: DiffWorld) -> None:
    pay = CallSpec("transfer", ("tokenA", "merchant", 1))
    assert _run(world, TRANSFER_ENVELOPE, Step("multisend_delegate", (pay, pay))) == [(False, None)]


SWAP_ENVELOPE = EnvelopeSpec(
    capabilities=("swap.execute",),
    destinations=("router",),
    permissions=(),
    value_limit=None,
    token_limits=(("tokenA", 1000, 0),),
    max_uses=None,
    start=0,
    ttl=600,
)


def test_a_swap_pays_out_to_the_account_only_on_both_sides(world: DiffWorld) -> None:
    steps = [
        Step("single", (CallSpec(kind, ("tokenA", "tokenB", to, 100)),))
        for kind in ("swapV2", "swapV3")
        for to in ("account", "router", "stranger")
    ]
    assert (
        _run(world, SWAP_ENVELOPE, *steps)
        == [
            (True, None),
            (False, "ARG_RULE_VIOLATED"),
            (False, "ARG_RULE_VIOLATED"),
        ]
        * 2
    )


def test_overlapping_permissions_are_refused_by_the_policy_and_by_the_chain(
    world: DiffWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered: list[tuple[bool, str | None]] = []
    honest = DiffWorld.submit

    def recording(self: DiffWorld, function: str, *args: Any) -> tuple[bool, str | None]:
        outcome = honest(self, function, *args)
        if function == "enable_session":
            offered.append(outcome)
        return outcome

    monkeypatch.setattr(DiffWorld, "submit", recording)
    one = PermissionSpec("recorder", RECORD, 0, (RuleSpec("a", RuleOp.LTE, (100,)),))
    other = PermissionSpec("recorder", RECORD, 0, (RuleSpec("a", RuleOp.GTE, (5000,)),))
    envelope = EnvelopeSpec(
        capabilities=(),
        destinations=("recorder",),
        permissions=(one, other),
        value_limit=(100, 0),
        token_limits=(),
        max_uses=None,
        start=0,
        ttl=600,
    )
    with boa.env.anchor(), pytest.raises(GrantRefused) as refused:
        boa.env.timestamp = T0
        # grant_and_enable also offers the doubled grant to the chain and raises Mismatch
        # unless the chain refuses it too.
        grant_and_enable(world, envelope)
    assert refused.value.code.value == "PERMISSION_OVERLAP"
    assert offered == [(False, "ENVELOPE_MALFORMED")]  # the doubled grant, refused on chain


def test_a_usd_cap_holds_on_chain_as_token_limits(world: DiffWorld) -> None:
    # 1 USD at 0.001 USD per DA: the grant signs a limit of 1,000 DA on tokenA.
    capped = EnvelopeSpec(
        capabilities=("erc20.transfer",),
        destinations=("tokenA", "merchant"),
        permissions=(),
        value_limit=None,
        token_limits=(),
        max_uses=None,
        start=0,
        ttl=600,
        usd_cap=1_000_000,
    )
    pay = Step("single", (CallSpec("transfer", ("tokenA", "merchant", 1000)),))
    one_more = Step("single", (CallSpec("transfer", ("tokenA", "merchant", 1)),))
    assert _run(world, capped, pay, one_more) == [(True, None), (False, "TOKEN_LIMIT_EXCEEDED")]


def test_a_session_user_operation_is_validated_charged_and_executed_as_decided(
    world: DiffWorld,
) -> None:
    budgeted = EnvelopeSpec(
        capabilities=("erc20.transfer",),
        destinations=("tokenA", "merchant"),
        permissions=(),
        value_limit=None,
        token_limits=(("tokenA", 1000, 0),),
        max_uses=None,
        start=0,
        ttl=600,
        max_fee_wei=10**15,
    )
    gas = (100_000, 100_000, 21_000, 10**9)  # 2.21e14 wei at most per operation
    pay = CallSpec("transfer", ("tokenA", "merchant", 100))
    stranger = CallSpec("transfer", ("tokenA", "stranger", 100))
    steps = [
        Step("userop", (pay,), gas=gas),
        Step("userop", (stranger,), gas=gas),  # refused in validation: nothing charged
        Step("userop", (pay,), gas=gas),
        Step("userop", (pay,), gas=gas),
        Step("userop", (pay,), gas=gas),
        Step("userop", (pay,), gas=gas),  # the fifth charge would pass 1e15
    ]
    assert _run(world, budgeted, *steps) == [
        (True, None),
        (False, "ARG_RULE_VIOLATED"),
        (True, None),
        (True, None),
        (True, None),
        (False, "FEE_LIMIT_EXCEEDED"),
    ]
    # No fee budget: the account pays no session gas at all.
    assert _run(world, TRANSFER_ENVELOPE, Step("userop", (pay,), gas=gas)) == [
        (False, "FEE_LIMIT_EXCEEDED")
    ]
