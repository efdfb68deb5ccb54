"""Property: every sentence of the consent text is a rule that is enforced (issue 12.4).

Hypothesis writes envelopes (catalog capabilities, explicit catalog and custom permissions,
approval look-alikes with a named spender and a bound, token limits, USD caps converted at the
grant's prices, native value, uses, rates, fee budgets) and an app name of any text. For each
grant it accepts, every sentence of :func:`sessionward.domain.summary.consent` is checked by its
kind against what is enforced: the policy engine's decisions on calls built for it, and the
grant message the account receives (what the contract enforces is what it is given). A sentence
of an unknown kind fails the test: nothing is said that is not checked here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain_support import (
    ACCOUNT,
    APPROVE,
    CHAIN_ID,
    DAI,
    INCREASE_ALLOWANCE,
    MAX_UINT256,
    MERCHANT,
    NOW,
    ROUTER_A,
    SEED_EXPIRY,
    STRANGER,
    SWAP_V2,
    TOKEN_X,
    TRANSFER,
    USDC,
    WETH,
    call_request,
    exact_input_single,
    swap_v2,
    transfer,
)
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.catalog import Catalog, KnownContract, default_catalog
from sessionward.domain.decision import Decision, GrantRefused
from sessionward.domain.envelope import Envelope, EnvelopeMalformed, RuleOp
from sessionward.domain.grant import OFFCHAIN_ONLY, Scope, is_approval_like, validate_grant
from sessionward.domain.policy import CallRequest, SessionStatus, SessionView, evaluate
from sessionward.domain.prices import DEFAULT_PRICES
from sessionward.domain.summary import (
    ACTIONS,
    APPROVAL_CLASSES,
    APPROVALS,
    NO_NATIVE,
    NO_SELF_CALLS,
    OFFCHAIN_LIMITS,
    ONCHAIN_LIMITS,
    SWAP_OUTPUT,
    Sentence,
    consent,
    format_units,
)
from sessionward.domain.usage import USD, Counter, Usage
from sessionward.domain.values import format_usd, short_address
from sessionward.reasons import ReasonCode

CATALOG: Catalog = default_catalog().with_contracts(
    [KnownContract(CHAIN_ID, TOKEN_X, frozenset({"erc20"}), "Token X", "TKX", 18)]
)
INCREASE_APPROVAL = parse_signature("increaseApproval(address spender,uint256 addedValue)")
CLAIM = parse_signature("claim(uint256 id)")
PERMIT_SIG = parse_signature(
    "permit(address owner,address spender,uint256 value,uint256 deadline,uint8 v,bytes32 r,bytes32 s)"
)
INSTALL = parse_signature("installModule(uint256 moduleTypeId,address module,bytes initData)")
TRANSFER_OWNERSHIP = parse_signature("transferOwnership(address newOwner)")

CAPABILITIES = (
    "swap.execute",
    "erc20.transfer",
    "erc20.approve",
    "erc20.increaseAllowance",
    "erc20.permit",
)
DESTINATIONS = (ROUTER_A, USDC, WETH, DAI, TOKEN_X, MERCHANT)
PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"target": TOKEN_X, "function": "claim(uint256 id)", "maxValuePerCall": 5},
    {
        "target": TOKEN_X,
        "function": "increaseApproval(address spender,uint256 addedValue)",
        "rules": [
            {"arg": "spender", "op": "eq", "value": MERCHANT},
            {"arg": "addedValue", "op": "lte", "value": 1000},
        ],
    },
    {
        "target": USDC,
        "function": "transfer(address to,uint256 amount)",
        "rules": [{"arg": "amount", "op": "lte", "value": 10**6}],
    },
)


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    doc: dict[str, Any] = {
        "chainId": CHAIN_ID,
        "expiresAt": draw(st.sampled_from((NOW + 600, SEED_EXPIRY))),
        "capabilities": draw(st.lists(st.sampled_from(CAPABILITIES), max_size=3, unique=True)),
        "allowedDestinations": draw(
            st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=4, unique=True)
        ),
        "permissions": draw(st.lists(st.sampled_from(PERMISSIONS), max_size=2, unique_by=id)),
    }
    for permission in doc["permissions"]:
        if permission["target"] not in doc["allowedDestinations"]:
            doc["allowedDestinations"].append(permission["target"])
    tokens = draw(st.lists(st.sampled_from((USDC, WETH, TOKEN_X)), max_size=2, unique=True))
    if tokens:
        doc["tokenLimits"] = [
            {
                "token": t,
                "limit": str(draw(st.sampled_from((0, 1, 10**6, 10**18)))),
                "period": draw(st.sampled_from((0, 3600, 86400))),
            }
            for t in tokens
        ]
    if draw(st.booleans()):
        doc["maxValueUsd"] = draw(st.sampled_from((1, 500, "12.5")))
    if draw(st.booleans()):
        doc["valueLimit"] = {
            "limit": str(draw(st.sampled_from((0, 5, 10**18)))),
            "period": draw(st.sampled_from((0, 604800))),
        }
    if draw(st.booleans()):
        doc["maxUses"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        doc["rateLimit"] = {"count": 2, "interval": 3600}
    if draw(st.booleans()):
        doc["maxFeeWei"] = str(draw(st.sampled_from((0, 10**15))))
    return doc, draw(st.booleans())


def compile_doc(doc: dict[str, Any], with_prices: bool) -> Scope | None:
    try:
        return validate_grant(
            Envelope.from_json(doc),
            catalog=CATALOG,
            account=ACCOUNT,
            chain_id=CHAIN_ID,
            now=NOW,
            prices=DEFAULT_PRICES if with_prices else None,
        )
    except (GrantRefused, EnvelopeMalformed):
        return None


def decide(scope: Scope, request: CallRequest, usage: Usage | None = None) -> Decision:
    view = SessionView("s-prop", scope, SessionStatus.ACTIVE)
    return evaluate(request, view, usage or Usage(), NOW, catalog=CATALOG, prices=DEFAULT_PRICES)


# --- one check per kind of sentence --------------------------------------------------------


def verb_of(scope: Scope, key: tuple[str, bytes]) -> str:
    permission = scope.permissions[key]
    action = CATALOG.actions.get(permission.action_class)
    return action.verb if action is not None else permission.signature.name


def check_actions(scope: Scope, sentence: Sentence) -> None:
    text = sentence.text
    until = datetime.fromtimestamp(scope.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert text.endswith(f"on Ethereum (chain {CHAIN_ID}) until {until}.")
    listed = text.removeprefix("This session lets the app call ").split(" on Ethereum (")[0]
    for key, permission in scope.permissions.items():
        assert verb_of(scope, key) in listed and short_address(permission.target) in listed
    # Every target named is one the grant permits; any other target is refused.
    named = {a for a in (*DESTINATIONS, STRANGER) if short_address(a) in listed}
    assert named == set(scope.targets)
    outsider = decide(scope, call_request(STRANGER, transfer(MERCHANT, 1)))
    assert ReasonCode.TARGET_NOT_ALLOWED in outsider.reasons


def check_swap_output(scope: Scope, sentence: Sentence) -> None:
    swaps = [p for p in scope.permissions.values() if p.action_class == "swap.execute"]
    assert swaps
    message = {p["selector"]: p for p in scope.envelope_message()["permissions"]}
    for permission in swaps:
        (rule,) = [r for r in permission.rules if r.implicit and r.op is RuleOp.EQ]
        assert rule.values == (ACCOUNT,) and rule.offset is not None
        signed = message[permission.signature.selector]["rules"]
        assert {"arg": rule.arg, "op": 0, "offset": rule.offset, "values": list(rule.words)} in (
            signed
        )
    for data in (swap_v2(1, to=STRANGER), exact_input_single(1, recipient=ROUTER_A)):
        decision = decide(scope, call_request(ROUTER_A, data))
        assert ReasonCode.ARG_RULE_VIOLATED in decision.reasons


def check_onchain_limits(scope: Scope, sentence: Sentence) -> None:
    message = scope.envelope_message()
    expected = []
    for entry in message["tokenLimits"]:
        known = CATALOG.contract(CHAIN_ID, entry["token"])
        assert known is not None
        amount = format_units(entry["limit"], known.decimals)
        per = {0: "in total", 3600: "per hour", 86400: "per day"}[entry["period"]]
        expected.append(f"at most {amount} {known.symbol} out {per}")
        # The policy engine refuses one base unit beyond the limit (here: a transfer or a swap).
        over = entry["limit"] + 1
        if (entry["token"], TRANSFER.selector) in scope.permissions:
            rules_ok = all(
                r.implicit for r in scope.permissions[(entry["token"], TRANSFER.selector)].rules
            )
            if rules_ok:
                decision = decide(scope, call_request(entry["token"], transfer(MERCHANT, over)))
                assert ReasonCode.TOKEN_LIMIT_EXCEEDED in decision.reasons
        if (ROUTER_A, SWAP_V2.selector) in scope.permissions:
            data = swap_v2(over, path=(entry["token"], DAI))
            assert (
                ReasonCode.TOKEN_LIMIT_EXCEEDED
                in decide(scope, call_request(ROUTER_A, data)).reasons
            )
    if message["valueLimit"]:
        per = "in total" if message["valuePeriod"] == 0 else "per week"
        expected.append(f"at most {format_units(message['valueLimit'], 18)} native coin out {per}")
    if message["maxUses"]:
        expected.append(f"at most {message['maxUses']} executions")
    if scope.envelope.max_fee_wei is not None:
        expected.append(f"at most {format_units(message['maxFeeWei'], 18)} native coin in fees")
    assert expected
    assert all(part in sentence.text for part in expected)
    assert sentence.text.count("at most") == len(expected)


def check_no_native(scope: Scope, sentence: Sentence) -> None:
    assert scope.envelope_message()["valueLimit"] == 0  # on chain: no native value at all
    for target, selector in scope.permissions:
        data = selector + bytes(64)
        decision = decide(scope, call_request(target, data, value=1))
        assert ReasonCode.VALUE_LIMIT_EXCEEDED in decision.reasons


def check_offchain_limits(scope: Scope, sentence: Sentence) -> None:
    env = scope.envelope
    text = sentence.text
    assert ("USD in total at live prices" in text) == (env.max_value_usd is not None)
    assert ("executions per" in text) == (env.rate_limit is not None)
    assert ("wei of fees" in text) == (env.max_fee_wei is not None)
    if env.max_value_usd is not None:
        assert f"more than {format_usd(env.max_value_usd)} USD" in text
        # A spent cap refuses any priced outflow.
        spent = Usage({USD: Counter(0, env.max_value_usd)})
        for target, selector in scope.permissions:
            if selector == SWAP_V2.selector:
                decision = decide(scope, call_request(target, swap_v2(1)), spent)
                assert ReasonCode.USD_LIMIT_EXCEEDED in decision.reasons


def check_no_self_calls(scope: Scope, sentence: Sentence) -> None:
    assert ACCOUNT not in scope.targets
    for data in (
        encode_call(TRANSFER_OWNERSHIP, (STRANGER,)),
        encode_call(INSTALL, (1, STRANGER, b"")),
    ):
        assert ReasonCode.SELF_CALL_FORBIDDEN in decide(scope, call_request(ACCOUNT, data)).reasons


def approval_calls(spender: str, amount: int) -> list[bytes]:
    return [
        encode_call(APPROVE, (spender, amount)),
        encode_call(INCREASE_ALLOWANCE, (spender, amount)),
        encode_call(INCREASE_APPROVAL, (spender, amount)),
        encode_call(
            PERMIT_SIG, (ACCOUNT, spender, amount, SEED_EXPIRY, 27, b"\1" * 32, b"\2" * 32)
        ),
    ]


def check_approvals(scope: Scope, sentence: Sentence) -> None:
    approving = [
        p
        for p in scope.permissions.values()
        if p.action_class in APPROVAL_CLASSES or is_approval_like(p.signature)
    ]
    if sentence.text == "It cannot approve spending.":
        assert approving == []
        for target in scope.targets:
            for data in approval_calls(MERCHANT, 1):
                assert not decide(scope, call_request(target, data)).allowed
        return
    assert sentence.text == "It cannot approve unlimited spending."
    assert approving
    for permission in approving:
        # Either the catalog's unlimited-approval ban (on chain too, by selector) or the owner's
        # own bound below the maximum (an lte rule the account checks).
        bounded = any(
            r.op is RuleOp.LTE and not r.implicit and r.offset is not None for r in permission.rules
        )
        assert permission.forbid_max is not None or bounded
    for target in scope.targets:
        for data in approval_calls(MERCHANT, MAX_UINT256):
            assert not decide(scope, call_request(target, data)).allowed


CHECKS = {
    ACTIONS: check_actions,
    SWAP_OUTPUT: check_swap_output,
    ONCHAIN_LIMITS: check_onchain_limits,
    NO_NATIVE: check_no_native,
    OFFCHAIN_LIMITS: check_offchain_limits,
    NO_SELF_CALLS: check_no_self_calls,
    APPROVALS: check_approvals,
}


@settings(max_examples=300, deadline=None)
@given(drawn=envelopes(), app_name=st.text(max_size=80))
def test_every_sentence_of_the_summary_is_enforced(
    drawn: tuple[dict[str, Any], bool], app_name: str
) -> None:
    doc, with_prices = drawn
    scope = compile_doc(doc, with_prices)
    assume(scope is not None)
    assert scope is not None
    shown = consent(scope, app_name=app_name, catalog=CATALOG)
    kinds = [s.kind for s in shown.sentences]
    assert kinds[0] == ACTIONS and kinds[-2:] == [NO_SELF_CALLS, APPROVALS]
    assert len(set(kinds)) == len(kinds)
    for sentence in shown.sentences:
        event(
            f"sentence: {sentence.kind}"
            + (f" ({sentence.text})" if sentence.kind == APPROVALS else "")
        )
        CHECKS[sentence.kind](scope, sentence)
    # The label is one line and the only place the app's words appear.
    rendered = shown.render()
    assert rendered.count("\n") == 1 and rendered.split("\n")[0] == shown.app_label
    # Offsets the contract receives: every signed explicit rule is checked on chain.
    for permission in scope.envelope_message()["permissions"]:
        for rule in permission["rules"]:
            if rule["offset"] == OFFCHAIN_ONLY:
                assert rule["arg"] == "path[0]"  # the catalog's own swap-input rule only
