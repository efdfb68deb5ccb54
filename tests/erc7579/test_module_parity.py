"""Rule parity, differentially: the same grant and the same calls on SessionAccount and through
SessionWard's ERC-7579 module on the OpenZeppelin account give the same verdict, ALLOW or the
same reason code, on the relayer path (``execute_with_session`` on both: simulated, then mined,
an allowed call moving the same tokens, a refused one changing nothing on either) and as a
session user operation through the EntryPoint. Grants the account refuses the module refuses
with the same code.

Covered here: static argument rules (eq, ne, lte, gte, in, not_in, off-chain-only, a word past
the call), rule 2 (maximum approvals, permitted or not), the per-call value cap and the order
of the per-call checks.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from erc4337_support import USDX, Key, Stage
from module_support import deploy_module
from parity_support import ALLOW, Pair, new_pair, permission, simulate, word

from sessionward.chain.contracts import DeployedContract
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.anvil

TRANSFER = "transfer(address,uint256)"
APPROVE = "approve(address,uint256)"
INCREASE_ALLOWANCE = "increaseAllowance(address,uint256)"
PING = "ping()"
EQ, NE, LTE, GTE, IN, NOT_IN = range(6)
OFFCHAIN_ONLY = 0xFFFF
MAX = 2**256 - 1


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture(scope="module")
def pair(stage: Stage, module: DeployedContract, rpc: JsonRpcClient, account_kind: str) -> Pair:
    return new_pair(stage, module, rpc, account_kind)


def _call(target: str, function: str, *args: object, value: int = 0) -> Call:
    return Call(target, value, encode_call(parse_signature(function), args))


FRIEND = Key().address
STRANGER = Key().address


def _cases(pair: Pair) -> dict[str, tuple[list[dict[str, object]], list[tuple[list[Call], str]]]]:
    """Per case: the permissions granted, then calls and the verdict both must give."""
    usdx, weth = pair.stage.demo.token("USDX"), pair.stage.demo.token("WETHX")
    to = pair.recipient

    def pay(recipient: str = to, amount: int = USDX, token: str = usdx) -> Call:
        return _call(token, TRANSFER, recipient, amount)

    return {
        "eq": (
            [permission(usdx, TRANSFER, (EQ, 0, [word(to)]))],
            [([pay()], ALLOW), ([pay(FRIEND)], "ARG_RULE_VIOLATED")],
        ),
        "ne": (
            [permission(usdx, TRANSFER, (NE, 0, [word(STRANGER)]))],
            [([pay()], ALLOW), ([pay(STRANGER)], "ARG_RULE_VIOLATED")],
        ),
        "lte": (
            [permission(usdx, TRANSFER, (LTE, 1, [word(5 * USDX)]))],
            [([pay(amount=5 * USDX)], ALLOW), ([pay(amount=5 * USDX + 1)], "ARG_RULE_VIOLATED")],
        ),
        "gte": (
            [permission(usdx, TRANSFER, (GTE, 1, [word(2 * USDX)]))],
            [([pay(amount=2 * USDX)], ALLOW), ([pay(amount=2 * USDX - 1)], "ARG_RULE_VIOLATED")],
        ),
        "in": (
            [permission(usdx, TRANSFER, (IN, 0, [word(to), word(FRIEND)]))],
            [([pay()], ALLOW), ([pay(FRIEND)], ALLOW), ([pay(STRANGER)], "ARG_RULE_VIOLATED")],
        ),
        "not_in": (
            [permission(usdx, TRANSFER, (NOT_IN, 0, [word(STRANGER), word(FRIEND)]))],
            [([pay()], ALLOW), ([pay(FRIEND)], "ARG_RULE_VIOLATED")],
        ),
        "four rules, one broken": (
            [
                permission(
                    usdx,
                    TRANSFER,
                    (IN, 0, [word(to)]),
                    (LTE, 1, [word(9 * USDX)]),
                    (GTE, 1, [word(1)]),
                    (NE, 1, [word(7 * USDX)]),
                )
            ],
            [
                ([pay(amount=8 * USDX)], ALLOW),
                ([pay(amount=7 * USDX)], "ARG_RULE_VIOLATED"),
                ([pay(amount=0)], "ARG_RULE_VIOLATED"),
            ],
        ),
        "off-chain-only rule": (
            [permission(usdx, TRANSFER, (EQ, OFFCHAIN_ONLY, [word(FRIEND)]))],
            [([pay()], ALLOW)],
        ),
        "rule on a word past the call": (
            [permission(usdx, TRANSFER, (EQ, 2, [word(0)]))],
            [([pay()], "CALLDATA_MALFORMED")],
        ),
        "batch: the second call breaks a rule": (
            [permission(usdx, TRANSFER, (IN, 0, [word(to)]), (LTE, 1, [word(3 * USDX)]))],
            [
                ([pay(), pay(), pay(amount=3 * USDX)], ALLOW),
                ([pay(), pay(FRIEND)], "ARG_RULE_VIOLATED"),
                ([pay(), pay(amount=4 * USDX)], "ARG_RULE_VIOLATED"),
            ],
        ),
        "rules of two permissions": (
            [
                permission(usdx, TRANSFER, (EQ, 0, [word(to)])),
                permission(weth, TRANSFER, (EQ, 0, [word(FRIEND)])),
            ],
            [
                ([pay(), pay(FRIEND, 0, weth)], ALLOW),
                ([pay(FRIEND, 0, weth), pay(FRIEND)], "ARG_RULE_VIOLATED"),
            ],
        ),
        "maximum approval, permitted": (
            [permission(usdx, APPROVE, (IN, 0, [word(FRIEND)]))],
            [
                ([_call(usdx, APPROVE, FRIEND, 10 * USDX)], ALLOW),
                ([_call(usdx, APPROVE, FRIEND, MAX)], "NON_DELEGABLE_ACTION"),
                ([_call(usdx, APPROVE, STRANGER, MAX)], "NON_DELEGABLE_ACTION"),
                ([_call(usdx, APPROVE, STRANGER, 1)], "ARG_RULE_VIOLATED"),
            ],
        ),
        "maximum approval, not permitted": (
            [permission(usdx, TRANSFER)],
            [
                ([_call(usdx, APPROVE, FRIEND, MAX)], "NON_DELEGABLE_ACTION"),
                ([_call(weth, INCREASE_ALLOWANCE, FRIEND, MAX)], "NON_DELEGABLE_ACTION"),
                ([_call(usdx, APPROVE, FRIEND, 1)], "SELECTOR_NOT_ALLOWED"),
                ([_call(weth, APPROVE, FRIEND, 1)], "TARGET_NOT_ALLOWED"),
            ],
        ),
        "increaseAllowance": (
            [permission(usdx, INCREASE_ALLOWANCE)],
            [
                ([_call(usdx, INCREASE_ALLOWANCE, FRIEND, 5)], ALLOW),
                ([_call(usdx, INCREASE_ALLOWANCE, FRIEND, MAX)], "NON_DELEGABLE_ACTION"),
            ],
        ),
        "value cap 0 and the order of checks": (
            [permission(usdx, TRANSFER, (EQ, 0, [word(to)]))],
            [
                ([_call(usdx, TRANSFER, to, 1, value=1)], "VALUE_CAP_EXCEEDED"),
                ([_call(usdx, TRANSFER, FRIEND, 1, value=1)], "ARG_RULE_VIOLATED"),
                ([_call(weth, TRANSFER, to, 1, value=1)], "TARGET_NOT_ALLOWED"),
                ([_call(pair.account.address, TRANSFER, to, 1)], "SELF_CALL_FORBIDDEN"),
            ],
        ),
    }


CASES = [
    "eq",
    "ne",
    "lte",
    "gte",
    "in",
    "not_in",
    "four rules, one broken",
    "off-chain-only rule",
    "rule on a word past the call",
    "batch: the second call breaks a rule",
    "rules of two permissions",
    "maximum approval, permitted",
    "maximum approval, not permitted",
    "increaseAllowance",
    "value cap 0 and the order of checks",
]


def _self_call_fix(pair: Pair, calls: list[Call], side: str) -> list[Call]:
    """A call to "the account" means each side's own account."""
    own = pair.account.address if side == "account" else pair.module.address
    return [Call(own, c.value, c.data) if c.to == pair.account.address else c for c in calls]


@pytest.mark.parametrize("case", CASES)
def test_the_same_calls_get_the_same_verdict_relayed(pair: Pair, case: str) -> None:
    permissions, runs = _cases(pair)[case]
    assert pair.enable(permissions) == (ALLOW, ALLOW)
    for calls, expected in runs:
        if any(c.to == pair.account.address for c in calls):
            account_calls = _self_call_fix(pair, calls, "account")
            module_calls = _self_call_fix(pair, calls, "module")
            verdicts = (
                pair.simulate_relayed(*account_calls)[0],
                pair.simulate_relayed(*module_calls)[1],
            )
            assert verdicts == (expected, expected)
            continue
        assert pair.relayed(*calls) == expected, calls


@pytest.mark.parametrize("case", CASES)
def test_the_same_calls_get_the_same_verdict_as_user_operations(pair: Pair, case: str) -> None:
    permissions, runs = _cases(pair)[case]
    assert pair.enable(permissions) == (ALLOW, ALLOW)
    for calls, expected in runs:
        if any(c.to == pair.account.address for c in calls):
            continue  # covered on the relayer path (each side's own address)
        assert pair.user_op(*calls) == (expected, expected), calls


GRANT_REFUSALS: dict[str, tuple[Callable[[str], list[dict[str, object]]], str]] = {
    "unknown operator": (
        lambda t: [permission(t, TRANSFER, (6, 0, [word(0)]))],
        "ENVELOPE_MALFORMED",
    ),
    "in without values": (lambda t: [permission(t, TRANSFER, (IN, 0, []))], "ENVELOPE_MALFORMED"),
    "eq with two operands": (
        lambda t: [permission(t, TRANSFER, (EQ, 0, [word(0), word(1)]))],
        "ENVELOPE_MALFORMED",
    ),
    "the same function twice": (
        lambda t: [permission(t, TRANSFER), permission(t, TRANSFER, (EQ, 0, [word(0)]))],
        "ENVELOPE_MALFORMED",
    ),
    "selector not the function's": (
        lambda t: [{**permission(t, TRANSFER), "selector": bytes(4)}],
        "ENVELOPE_MALFORMED",
    ),
}


@pytest.mark.parametrize("case", list(GRANT_REFUSALS))
def test_a_grant_sessionaccount_refuses_the_module_refuses_alike(pair: Pair, case: str) -> None:
    build, reason = GRANT_REFUSALS[case]
    assert pair.enable(build(pair.stage.demo.token("USDX"))) == (reason, reason)


def test_an_approval_within_the_rules_approves_on_both(pair: Pair) -> None:
    usdx = pair.stage.demo.token("USDX")
    assert pair.enable([permission(usdx, APPROVE, (LTE, 1, [word(50 * USDX)]))]) == (ALLOW, ALLOW)
    assert pair.relayed(_call(usdx, APPROVE, FRIEND, 50 * USDX)) == ALLOW
    for owner in (pair.account.address, pair.module.address):
        assert pair.stage.usdx.call_one("allowance", owner, FRIEND) == 50 * USDX


def _shifted(data: bytes, junk: bytes) -> bytes:
    """``execute_with_session`` calldata re-encoded non-canonically: ``junk`` (32 bytes)
    inserted before the tail, both offsets (execution, signature) moved past it."""
    selector, head, tail = data[:4], bytearray(data[4 : 4 + 7 * 32]), data[4 + 7 * 32 :]
    for index in (3, 6):
        offset = int.from_bytes(head[32 * index : 32 * index + 32], "big") + 32
        head[32 * index : 32 * index + 32] = offset.to_bytes(32, "big")
    return selector + bytes(head) + junk + tail


def test_a_non_canonical_encoding_changes_no_verdict_of_the_module(pair: Pair) -> None:
    """The module reads rule arguments from the calldata at the offsets the ABI decoder
    followed, so moving the execution (with a decoy word where it used to start) is read as
    the decoder read it: the same verdicts as the canonical encoding."""
    usdx = pair.stage.demo.token("USDX")
    assert pair.enable([permission(usdx, TRANSFER, (EQ, 0, [word(pair.recipient)]))]) == (
        ALLOW,
        ALLOW,
    )
    deadline = pair.stage.chain.block_timestamp() + 600
    decoy = (52 + 68).to_bytes(32, "big")
    for recipient, expected in ((FRIEND, "ARG_RULE_VIOLATED"), (pair.recipient, ALLOW)):
        call = _call(usdx, TRANSFER, recipient, USDX)
        data = pair.module.relayed_call_data(call, nonce=77, deadline=deadline)
        shifted = _shifted(data, decoy)
        assert simulate(pair.stage, pair.module.module_address, data) == expected
        assert simulate(pair.stage, pair.module.module_address, shifted) == expected
