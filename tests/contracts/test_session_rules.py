"""A session call is checked call by call (docs/protocol.md section 4, rules 1-5) and its shape
first; every refusal reverts with the exact reason code and leaves nothing changed."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    MAX_UINT256,
    OFFCHAIN_ONLY,
    RECORD,
    TRANSFER,
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    batch,
    calldata,
    make_key,
    permission,
    record,
    refused,
    rule,
    single,
    token_limit,
    transfer,
    word,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sessionward.contracts import MAX_BATCH
from sessionward.domain.calldata import (
    Call,
    CalldataError,
    encode_batch_execution,
    encode_execute,
    mode_batch,
    mode_single,
    unwrap_execution,
)


@pytest.fixture
def enabled(world: World, wallet: Wallet, session: Key) -> Key:
    """A session allowed to call Target.record (any arguments, up to 1 ether per call) and to
    transfer DUSD to the relayer, with a 1 ether value limit."""
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.target, RECORD, max_value=ETHER_CAP),
                permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer, arg="to")]),
            ],
            value_limit=10**18,
        )
    )
    return session


ETHER_CAP = 10**18


# ------------------------------------------------------------------------------ shape


def test_a_permitted_call_runs_and_moves_real_state(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    wallet.run(enabled, single(record(world, 7, value=5)))
    assert (world.target.last_a(), world.target.last_value(), addr(world.target.last_caller())) == (
        7,
        5,
        wallet.address,
    )
    assert wallet.contract.session_nonce_used(enabled.address, 0)


def test_an_empty_batch_is_refused(world: World, enabled: Key) -> None:
    refused(world, enabled, (mode_batch(), encode_batch_execution([])), "EMPTY_BATCH")


@pytest.mark.parametrize(
    "mode",
    [
        b"\xff" + bytes(31),  # delegatecall
        b"\xfe" + bytes(31),  # static call
        b"\x00\x01" + bytes(30),  # single, try mode
        b"\x01\x01" + bytes(30),  # batch, try mode
        b"\x02" + bytes(31),  # unknown call type
        bytes(6) + b"\x01\x02\x03\x04" + bytes(22),  # a mode selector
        bytes(31) + b"\x01",  # a mode payload
    ],
    ids=[
        "delegatecall",
        "static",
        "try-single",
        "try-batch",
        "unknown-type",
        "selector",
        "payload",
    ],
)
def test_every_mode_but_plain_single_and_batch_is_refused(
    world: World, enabled: Key, mode: bytes
) -> None:
    _, ec = single(record(world))
    refused(world, enabled, (mode, ec), "CALL_TYPE_FORBIDDEN")


def test_the_owner_gets_no_delegatecall_either(world: World, wallet: Wallet) -> None:
    _, ec = single(record(world))
    with boa.reverts("CALL_TYPE_FORBIDDEN"):
        wallet.owner_execute((b"\xff" + bytes(31), ec))


@pytest.mark.parametrize("size", [0, 1, 3])
def test_a_call_with_fewer_than_four_bytes_of_data_is_not_delegable(
    world: World, enabled: Key, size: int
) -> None:
    short = Call(addr(world.target), 0, b"\x01" * size)
    refused(world, enabled, single(short), "CALLDATA_MALFORMED")
    refused(world, enabled, batch([record(world), short]), "CALLDATA_MALFORMED")


def test_a_truncated_single_execution_is_malformed(world: World, enabled: Key) -> None:
    refused(
        world,
        enabled,
        (mode_single(), bytes.fromhex(addr(world.target)[2:]) + bytes(31)),
        "CALLDATA_MALFORMED",
    )


def _batch_variants(world: World) -> dict[str, bytes]:
    good = encode_batch_execution([record(world), record(world, 2)])
    element = 64 + 64  # first element: after the head word, the length and two offsets
    dirty_target = bytearray(good)
    dirty_target[element] = 1  # high bytes of the first target word
    odd = encode_batch_execution(
        [Call(addr(world.target), 0, calldata(RECORD, 1, world.relayer, bytes(32)) + b"\x01")]
    )
    dirty_padding = bytearray(odd)
    dirty_padding[-1] = 7
    return {
        "trailing-byte": good + b"\x00",
        "truncated": good[:-32],
        "head-offset": (64).to_bytes(32, "big") + good[32:],
        "element-offset": good[:96]
        + (int.from_bytes(good[96:128], "big") + 32).to_bytes(32, "big")
        + good[128:],
        "dirty-target": bytes(dirty_target),
        "dirty-padding": bytes(dirty_padding),
        "nine-calls": encode_batch_execution([record(world)] * 9),
    }


@pytest.mark.parametrize(
    "variant",
    [
        "trailing-byte",
        "truncated",
        "head-offset",
        "element-offset",
        "dirty-target",
        "dirty-padding",
        "nine-calls",
    ],
)
def test_a_non_canonical_or_oversized_batch_is_malformed(
    world: World, enabled: Key, variant: str
) -> None:
    refused(world, enabled, (mode_batch(), _batch_variants(world)[variant]), "CALLDATA_MALFORMED")


# ------------------------------------------------------------------------------ rule 1


def test_a_call_to_the_account_itself_is_refused(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    revoke_all = Call(wallet.address, 0, calldata("revoke_all()"))
    refused(world, enabled, single(revoke_all), "SELF_CALL_FORBIDDEN")
    refused(world, enabled, batch([record(world), revoke_all]), "SELF_CALL_FORBIDDEN")


def test_a_nested_execute_is_a_self_call(world: World, wallet: Wallet, enabled: Key) -> None:
    inner = encode_execute(*single(transfer(world, make_key("thief").address, UNIT)))
    refused(world, enabled, single(Call(wallet.address, 0, inner)), "SELF_CALL_FORBIDDEN")
    refused(
        world,
        enabled,
        batch([record(world), Call(wallet.address, 0, inner)]),
        "SELF_CALL_FORBIDDEN",
    )


def test_the_sessions_module_is_the_account_so_enabling_through_a_session_is_a_self_call(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    escalate = Call(wallet.address, 0, calldata("revoke_session(address)", enabled.address))
    refused(world, enabled, single(escalate), "SELF_CALL_FORBIDDEN")


# ------------------------------------------------------------------------------ rule 2


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("approve(address,uint256)", lambda w: (w.relayer, MAX_UINT256)),
        ("increaseAllowance(address,uint256)", lambda w: (w.relayer, MAX_UINT256)),
        (
            "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
            lambda w: (
                w.wallet.address,
                w.relayer,
                MAX_UINT256,
                2**40,
                27,
                b"\x01" * 32,
                b"\x02" * 32,
            ),
        ),
        (
            "approve(address,address,uint160,uint48)",
            lambda w: (addr(w.token), w.relayer, 2**160 - 1, 2**40),
        ),
    ],
    ids=["approve", "increaseAllowance", "permit", "permit2-approve"],
)
def test_an_unlimited_approval_is_never_delegable(
    world: World, wallet: Wallet, session: Key, function: str, args: Any
) -> None:
    wallet.enable(wallet.grant(session, permissions=[permission(world.token, function)]))
    call = Call(addr(world.token), 0, calldata(function, *args(world)))
    refused(world, session, single(call), "NON_DELEGABLE_ACTION")


def test_an_unlimited_approval_is_refused_before_the_permission_lookup(
    world: World, enabled: Key
) -> None:
    call = Call(
        addr(world.token2), 0, calldata("approve(address,uint256)", world.relayer, MAX_UINT256)
    )
    refused(world, enabled, single(call), "NON_DELEGABLE_ACTION")


# ------------------------------------------------------------------------------ rule 3


def test_a_target_without_permissions_is_refused(world: World, enabled: Key) -> None:
    refused(
        world,
        enabled,
        single(Call(addr(world.token2), 0, calldata(TRANSFER, world.relayer, 1))),
        "TARGET_NOT_ALLOWED",
    )


def test_an_unpermitted_selector_on_a_permitted_target_is_refused(
    world: World, enabled: Key
) -> None:
    call = Call(addr(world.token), 0, calldata("approve(address,uint256)", world.relayer, 1))
    refused(world, enabled, single(call), "SELECTOR_NOT_ALLOWED")
    refused(
        world,
        enabled,
        single(Call(addr(world.target), 0, calldata("boom()"))),
        "SELECTOR_NOT_ALLOWED",
    )


def test_the_first_violating_call_of_a_batch_gives_the_reason(world: World, enabled: Key) -> None:
    stranger = make_key("stranger").address
    bad_rule = transfer(world, stranger, 1)
    bad_target = Call(addr(world.token2), 0, calldata(TRANSFER, world.relayer, 1))
    refused(world, enabled, batch([record(world), bad_rule, bad_target]), "ARG_RULE_VIOLATED")
    refused(world, enabled, batch([record(world), bad_target, bad_rule]), "TARGET_NOT_ALLOWED")


# ------------------------------------------------------------------------------ rule 4

OPERATOR_CASES = [
    ("eq", (5,), 5, 6),
    ("ne", (5,), 6, 5),
    ("lte", (5,), 5, 6),
    ("gte", (5,), 5, 4),
    ("in", (1, 5, 9), 9, 2),
    ("not_in", (1, 5, 9), 2, 9),
]


@pytest.mark.parametrize(
    ("op", "values", "allowed", "denied"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES]
)
def test_each_rule_operator_allows_and_denies_on_its_word(
    world: World,
    wallet: Wallet,
    session: Key,
    op: str,
    values: tuple[int, ...],
    allowed: int,
    denied: int,
) -> None:
    wallet.enable(
        wallet.grant(
            session, permissions=[permission(world.target, RECORD, rules=[rule(0, op, *values)])]
        )
    )
    refused(world, session, single(record(world, denied)), "ARG_RULE_VIOLATED")
    wallet.run(session, single(record(world, allowed)))
    assert world.target.last_a() == allowed


def test_lte_and_gte_compare_words_as_unsigned_integers(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session, permissions=[permission(world.target, RECORD, rules=[rule(2, "lte", 2**255)])]
        )
    )
    refused(world, session, single(record(world, c=word(2**255 + 1))), "ARG_RULE_VIOLATED")
    wallet.run(session, single(record(world, c=word(2**255))))


def test_eq_compares_raw_words_so_an_address_rule_binds_the_recipient(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD, rules=[rule(1, "eq", world.relayer)])],
        )
    )
    refused(world, session, single(record(world, b=make_key("x").address)), "ARG_RULE_VIOLATED")
    wallet.run(session, single(record(world, b=world.relayer)))


def test_all_rules_of_a_permission_must_hold(world: World, wallet: Wallet, session: Key) -> None:
    rules = [rule(0, "gte", 10), rule(0, "lte", 20), rule(1, "in", world.relayer), rule(2, "ne", 0)]
    wallet.enable(
        wallet.grant(session, permissions=[permission(world.target, RECORD, rules=rules)])
    )
    for call in (
        record(world, 9, c=word(1)),
        record(world, 21, c=word(1)),
        record(world, 15, b=make_key("y").address, c=word(1)),
        record(world, 15),
    ):
        refused(world, session, single(call), "ARG_RULE_VIOLATED")
    wallet.run(session, single(record(world, 15, c=word(1))))


def test_a_rule_on_a_missing_argument_word_is_malformed(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session, permissions=[permission(world.target, RECORD, rules=[rule(2, "eq", 0)])]
        )
    )
    short = Call(addr(world.target), 0, calldata(RECORD, 1, world.relayer, bytes(32))[:-1])
    refused(world, session, single(short), "CALLDATA_MALFORMED")


def test_an_off_chain_only_rule_is_not_enforced_on_chain(
    world: World, wallet: Wallet, session: Key
) -> None:
    offchain = rule(OFFCHAIN_ONLY, "eq", 1, arg="data")
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, "record_bytes(bytes,uint256)", rules=[offchain])],
        )
    )
    wallet.run(
        session,
        single(
            Call(addr(world.target), 0, calldata("record_bytes(bytes,uint256)", b"anything", 3))
        ),
    )
    assert world.target.last_data() == b"anything"


# ------------------------------------------------------------------------------ rule 5


def test_value_above_the_per_call_cap_is_refused(world: World, enabled: Key) -> None:
    refused(world, enabled, single(record(world, value=ETHER_CAP + 1)), "VALUE_CAP_EXCEEDED")


def test_value_on_a_token_only_permission_is_refused(world: World, enabled: Key) -> None:
    call = Call(addr(world.token), 1, calldata(TRANSFER, world.relayer, 1))
    refused(world, enabled, single(call), "VALUE_CAP_EXCEEDED")


def test_a_failing_inner_call_reverts_the_whole_execution_with_its_reason(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD), permission(world.target, "boom()")],
        )
    )
    refused(
        world,
        session,
        batch([record(world), Call(addr(world.target), 0, calldata("boom()"))]),
        "BOOM",
    )


def test_a_token_limited_swap_session_moves_real_balances_through_the_router(
    world: World, wallet: Wallet, session: Key
) -> None:
    swap = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(
                    world.token,
                    "approve(address,uint256)",
                    rules=[rule(0, "eq", addr(world.router))],
                ),
                permission(
                    world.router,
                    swap,
                    rules=[rule(3, "in", wallet.address, arg="to")],
                    action_class="swap.execute",
                ),
            ],
            token_limits=[token_limit(world.token, 1_000 * UNIT)],
        )
    )
    path = [addr(world.token), addr(world.token2)]
    deadline = boa.env.timestamp + 60
    approve = Call(
        addr(world.token), 0, calldata("approve(address,uint256)", addr(world.router), 500 * UNIT)
    )
    swap_call = Call(
        addr(world.router), 0, calldata(swap, 500 * UNIT, 1, path, wallet.address, deadline)
    )
    (_, expected_out) = world.router.getAmountsOut(500 * UNIT, path)
    before = world.token2.balanceOf(wallet.address)
    wallet.run(session, batch([approve, swap_call]))
    assert world.token2.balanceOf(wallet.address) == before + expected_out
    # The approval and the swap's input both count (as off chain): 1,000 of 1,000 used.
    assert wallet.contract.token_usage(session.address, addr(world.token)) == (0, 0)
    elsewhere = Call(
        addr(world.router), 0, calldata(swap, UNIT, 1, path, make_key("thief").address, deadline)
    )
    refused(world, session, batch([approve, elsewhere]), "ARG_RULE_VIOLATED")


# ------------------------------------------------------------------------------ decoding


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 2**256 - 1), st.binary(min_size=0, max_size=70)),
        min_size=0,
        max_size=9,
    ),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=2),
    cut=st.integers(-3, 3),
)
@example(calls=[(0, b"abcd")] * 9, flips=[], cut=0)  # one call over the contract's bound
@example(calls=[], flips=[], cut=0)  # empty batch
@example(calls=[(1, b"abc")], flips=[], cut=0)  # no selector
def test_the_contract_decodes_exactly_the_batches_the_python_decoder_accepts(
    harness: Any, calls: list[tuple[int, bytes]], flips: list[tuple[int, int]], cut: int
) -> None:
    target = "0x" + "ab" * 20
    data = bytearray(
        encode_batch_execution([Call(target, value, payload) for value, payload in calls])
    )
    for position, xor in flips:
        data[position % len(data)] ^= xor
    if cut > 0:
        data += bytes(cut)
    elif cut < 0:
        del data[cut:]
    try:
        expected: Any = [
            (c.to, c.value, c.data) for c in unwrap_execution(mode_batch(), bytes(data))
        ]
    except CalldataError as exc:
        expected = exc.code.value
    if isinstance(expected, list) and len(expected) > MAX_BATCH:
        expected = "CALLDATA_MALFORMED"  # the contract's size bound (the only intended difference)
    if isinstance(expected, str):
        with boa.reverts(expected):
            harness.decode(mode_batch(), bytes(data), 4)
        return
    refs = harness.decode(mode_batch(), bytes(data), 4)
    got = [(addr(r.target), r.value, bytes(data[r.start : r.start + r.length])) for r in refs]
    assert got == expected
