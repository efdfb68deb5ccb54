"""Reading a relay batch's outcomes from its receipt (``chain/relay_batch.py``): only the batch
contract's own ``CallRelayed`` events count, and only when they account for every call once."""

from __future__ import annotations

import pytest

from sessionward.chain.interface import Log, Receipt
from sessionward.chain.relay_batch import (
    MAX_CALLS,
    BatchedCall,
    CallOutcome,
    batch_gas_limit,
    encode_relay,
    relayed_outcomes,
)
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import encode_arguments, parse_signature

BATCH = "0x" + "ba" * 20
TARGET = "0x" + "70" * 20
_TOPIC = keccak256(b"CallRelayed(uint256,bool,bytes)")
_DATA = parse_signature("CallRelayed(bool,bytes)")


def _relayed(index: int, success: bool, revert: bytes = b"", *, by: str = BATCH) -> Log:
    return Log(
        address=by,
        topics=(_TOPIC, index.to_bytes(32, "big")),
        data=encode_arguments(_DATA, (success, revert)),
        log_index=index,
    )


def _receipt(*logs: Log, succeeded: bool = True) -> Receipt:
    return Receipt(
        tx_hash="0x" + "11" * 32,
        succeeded=succeeded,
        gas_used=100_000,
        effective_gas_price=1,
        block_number=1,
        sender="0x" + "5e" * 20,
        to=BATCH,
        contract_address=None,
        logs=tuple(logs),
        revert_data=None if succeeded else b"\x01",
    )


def test_each_call_is_read_from_its_own_event_in_order() -> None:
    receipt = _receipt(_relayed(1, False, b"why"), _relayed(0, True))
    assert relayed_outcomes(receipt, batch=BATCH.upper().replace("0X", "0x"), calls=2) == [
        CallOutcome(True, b""),
        CallOutcome(False, b"why"),
    ]


def test_a_look_alike_event_of_a_called_contract_is_not_an_outcome() -> None:
    """A target can emit CallRelayed(0, true) itself: not from the batch's address, so it
    neither counts nor stands in for a missing event."""
    spoofed = _relayed(0, True, by=TARGET)
    assert relayed_outcomes(_receipt(spoofed), batch=BATCH, calls=1) is None
    assert relayed_outcomes(_receipt(spoofed, _relayed(0, False)), batch=BATCH, calls=1) == [
        CallOutcome(False, b"")
    ]


@pytest.mark.parametrize(
    "logs",
    [
        (),  # no event at all
        (_relayed(0, True),),  # one of two calls
        (_relayed(0, True), _relayed(0, True)),  # one call twice
        (_relayed(0, True), _relayed(2, True)),  # an index past the batch
    ],
    ids=["none", "missing", "twice", "past-the-end"],
)
def test_events_that_do_not_account_for_every_call_once_conclude_nothing(
    logs: tuple[Log, ...],
) -> None:
    assert relayed_outcomes(_receipt(*logs), batch=BATCH, calls=2) is None


def test_a_reverted_batch_ran_none_of_its_calls() -> None:
    outcomes = relayed_outcomes(_receipt(succeeded=False), batch=BATCH, calls=3)
    assert outcomes == [CallOutcome(False, b"\x01")] * 3


def test_a_batch_holds_one_to_eight_calls_and_gas_for_each() -> None:
    call = BatchedCall(TARGET, 300_000, b"\x12\x34")
    with pytest.raises(ValueError):
        encode_relay([])
    with pytest.raises(ValueError):
        encode_relay([call] * (MAX_CALLS + 1))
    assert encode_relay([call]).startswith(
        parse_signature("relay((address,uint256,bytes)[])").selector
    )
    assert batch_gas_limit([call] * 2) > 2 * (300_000 + 300_000 // 63)
