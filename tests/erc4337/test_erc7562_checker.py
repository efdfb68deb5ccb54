"""The rule gate's judge on hand-made tracer records: each rule fires on its pattern, only
inside the account's validation frame, and allowed patterns pass."""

from __future__ import annotations

from typing import Any

import pytest
from erc7562 import (
    TraceMalformed,
    Violation,
    check_account_validation,
    is_associated,
    parse_trace,
)

from sessionward.crypto.keccak import keccak256

EP = "0x0000000071727de22e5e9d8baf0edac6f37da032"
SENDER = "0x" + "aa" * 20
IMPL = "0x" + "bb" * 20
TOKEN = "0x" + "cc" * 20
EOA = "0x" + "dd" * 20
CODE = {EP, SENDER, IMPL, TOKEN}
VALIDATE = "0x19822f7c" + "00" * 32


def _step(op: int, *args: str, pc: int = 7, depth: int = 3) -> list[Any]:
    return [op, pc, depth, *args]


def _record(*inner: list[Any], before: tuple[list[Any], ...] = ()) -> dict[str, Any]:
    """EP (depth 1) → CALL validateUserOp into SENDER (2) → DELEGATECALL into IMPL (3)."""
    return {
        "events": [
            *before,
            _step(0xF1, "aa" * 20, depth=1),
            ["enter", "CALL", EP, SENDER, VALIDATE, "0"],
            _step(0xF4, "bb" * 20, depth=2),
            ["enter", "DELEGATECALL", SENDER, IMPL, VALIDATE, "0"],
            *inner,
            _step(0xF3),
            ["exit", ""],
            _step(0xF3, depth=2),
            ["exit", ""],
            _step(0x00, depth=1),
        ],
        "output": "0x",
        "error": "",
    }


def _check(record: dict[str, Any]) -> list[Violation]:
    trace = parse_trace(record, entry_point=EP, caller="0x" + "00" * 20)
    return check_account_validation(
        trace, sender=SENDER, entry_point=EP, has_code=lambda a: a in CODE
    )


def _rules(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.rule, v.opcode) for v in _check(record)]


@pytest.mark.parametrize(
    ("op", "name"),
    [(0x42, "TIMESTAMP"), (0x43, "NUMBER"), (0x32, "ORIGIN"), (0x3A, "GASPRICE"),
     (0x48, "BASEFEE"), (0x44, "PREVRANDAO"), (0x41, "COINBASE"), (0x45, "GASLIMIT"),
     (0x40, "BLOCKHASH"), (0x49, "BLOBHASH"), (0x4A, "BLOBBASEFEE"), (0xF0, "CREATE"),
     (0xFE, "INVALID"), (0xFF, "SELFDESTRUCT")],
)  # fmt: skip
def test_blocked_opcodes_in_the_account_frame_break_op_011(op: int, name: str) -> None:
    assert _rules(_record(_step(op))) == [("OP-011", name)]


def test_blocked_opcodes_of_the_entry_point_itself_are_not_the_accounts() -> None:
    assert _rules(_record(before=(_step(0x42, depth=1), _step(0x5A, depth=1)))) == []


def test_balance_reads_break_op_080_and_unassigned_opcodes_op_013() -> None:
    assert _rules(_record(_step(0x47), _step(0x31, "dd" * 20), _step(0x0C))) == [
        ("OP-080", "SELFBALANCE"),
        ("OP-080", "BALANCE"),
        ("OP-013", "UNASSIGNED(0x0c)"),
    ]


def test_gas_is_allowed_only_right_before_a_call() -> None:
    call = [_step(0x5A), _step(0xFA, "01"), ["enter", "STATICCALL", SENDER, "0x" + "00" * 19 + "01", "0x", "0"], ["exit", ""]]  # fmt: skip
    assert _rules(_record(*call)) == []
    assert _rules(_record(_step(0x5A), _step(0x5F))) == [("OP-012", "GAS")]
    assert "followed by PUSH0" in _check(_record(_step(0x5A), _step(0x5F)))[0].detail


def test_code_of_an_address_without_code_breaks_op_041_but_the_sender_is_exempt() -> None:
    assert _rules(_record(_step(0x3B, "dd" * 20))) == [("OP-041", "EXTCODESIZE")]
    assert _rules(_record(_step(0x3B, "aa" * 20), _step(0x3F, "cc" * 20))) == []
    call_eoa = [_step(0xF1, "dd" * 20), ["enter", "CALL", SENDER, EOA, "0x12345678", "0"], ["exit", ""]]  # fmt: skip
    assert _rules(_record(*call_eoa)) == [("OP-041", "CALL")]


def test_entry_point_access_is_limited_to_extcodesize_iszero_deposit_and_fallback() -> None:
    assert _rules(_record(_step(0x3B, EP[2:]), _step(0x15))) == []
    assert _rules(_record(_step(0x3B, EP[2:]), _step(0x5F))) == [("OP-054", "EXTCODESIZE")]
    assert _rules(_record(_step(0x3F, EP[2:]))) == [("OP-054", "EXTCODEHASH")]
    fallback = [["enter", "CALL", SENDER, EP, "0x", "5"], ["exit", ""]]
    deposit = [["enter", "CALL", SENDER, EP, "0xb760faf9" + "00" * 12 + "aa" * 20, "5"], ["exit", ""]]  # fmt: skip
    nonce = [["enter", "STATICCALL", SENDER, EP, "0x35567e1a" + "00" * 64, "0"], ["exit", ""]]
    assert _rules(_record(*fallback)) == []
    assert _rules(_record(*deposit)) == []
    assert _rules(_record(*nonce)) == [("OP-054", "STATICCALL")]


def test_value_to_anyone_but_the_entry_point_breaks_op_061() -> None:
    pay = [["enter", "CALL", SENDER, TOKEN, "0x", "1"], ["exit", ""]]
    assert _rules(_record(*pay)) == [("OP-061", "CALL")]


def test_only_the_core_precompiles_may_be_called() -> None:
    for address, expected in (("01", []), ("09", []), ("0a", [("OP-062", "STATICCALL")])):
        call = [["enter", "STATICCALL", SENDER, "0x" + "00" * 19 + address, "0x", "0"], ["exit", ""]]  # fmt: skip
        assert _rules(_record(*call)) == expected


def test_an_out_of_gas_frame_breaks_op_020() -> None:
    call = [["enter", "STATICCALL", SENDER, TOKEN, "0x", "0"], ["exit", "out of gas"]]
    assert _rules(_record(*call)) == [("OP-020", "STATICCALL")]


def test_storage_is_the_senders_or_associated_with_it() -> None:
    own = _step(0x54, "5", SENDER)
    assert _rules(_record(own)) == []
    preimage = "00" * 12 + "aa" * 20 + "00" * 31 + "03"
    base = int.from_bytes(keccak256(bytes.fromhex(preimage)), "big")
    token_frame = [["enter", "STATICCALL", SENDER, TOKEN, "0x70a08231", "0"]]
    associated = [
        _step(0x20, preimage),
        *token_frame,
        _step(0x54, f"{base + 1:x}", TOKEN, depth=4),
        _step(0x5C, "aa" * 20, TOKEN, depth=4),
        ["exit", ""],
    ]
    assert _rules(_record(*associated)) == []
    foreign = [*token_frame, _step(0x54, "2", TOKEN, depth=4), ["exit", ""]]
    assert _rules(_record(*foreign)) == [("STO-021", "SLOAD")]
    transient = [*token_frame, _step(0x5D, "2", TOKEN, depth=4), ["exit", ""]]
    assert _rules(_record(*transient)) == [("STO-021", "TSTORE")]


def test_association_holds_for_offsets_up_to_128_only() -> None:
    preimage = bytes(12) + bytes.fromhex("aa" * 20) + bytes(32)
    base = int.from_bytes(keccak256(preimage), "big")
    assert is_associated(base + 128, SENDER, [preimage])
    assert not is_associated(base + 129, SENDER, [preimage])
    assert not is_associated(base - 1, SENDER, [preimage])
    assert not is_associated(base, "0x" + "ab" * 20, [preimage])


def test_records_whose_depths_disagree_with_their_frames_are_refused() -> None:
    with pytest.raises(TraceMalformed):
        _check(_record(_step(0x01, depth=4)))
    broken = _record()
    broken["events"].pop(-2)  # an exit missing
    with pytest.raises(TraceMalformed):
        _check(broken)
