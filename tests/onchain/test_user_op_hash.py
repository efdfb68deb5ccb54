"""The ERC-4337 v0.7 userOpHash in Python (``sessionward.contracts.encoding.user_op_hash``):
the public reference vector, and agreement with an EntryPoint-style hash computed on chain."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.contracts.encoding import PackedUserOperation, pack_uint128_pair, user_op_hash

# The public v0.7 vector: every address is 0x1234...7890, gas fields 6942069, fees 69420 / 69.
VECTOR_ADDRESS = "0x1234567890123456789012345678901234567890"
VECTOR_GAS = 6942069
VECTOR_HASH = "1903d62bb5dc75af6fed866aa46d8e80063d9e288aa7f2caad0ff1fcae22e40d"
ENTRY_POINT_DOUBLE = Path(__file__).resolve().parents[1] / "contracts" / "MockEntryPoint.vy"


def _vector_op(signature: bytes = b"") -> PackedUserOperation:
    return PackedUserOperation(
        sender=VECTOR_ADDRESS,
        nonce=0,
        init_code=b"",
        call_data=b"",
        account_gas_limits=pack_uint128_pair(VECTOR_GAS, VECTOR_GAS),
        pre_verification_gas=VECTOR_GAS,
        gas_fees=pack_uint128_pair(69, 69420),
        paymaster_and_data=b"",
        signature=signature,
    )


def test_the_reference_vector_hashes_to_the_published_user_op_hash() -> None:
    assert user_op_hash(_vector_op(), VECTOR_ADDRESS, 1).hex() == VECTOR_HASH


def test_the_signature_is_not_covered_but_every_other_field_is() -> None:
    base = user_op_hash(_vector_op(), VECTOR_ADDRESS, 1)
    assert user_op_hash(_vector_op(b"\x01" * 65), VECTOR_ADDRESS, 1) == base
    changed = [
        _vector_op()._replace(nonce=1),
        _vector_op()._replace(init_code=b"\x00"),
        _vector_op()._replace(call_data=b"\x00"),
        # verificationGasLimit ‖ callGasLimit, and maxPriorityFeePerGas ‖ maxFeePerGas: order matters
        _vector_op()._replace(account_gas_limits=pack_uint128_pair(VECTOR_GAS, VECTOR_GAS + 1)),
        _vector_op()._replace(gas_fees=pack_uint128_pair(69420, 69)),
        _vector_op()._replace(pre_verification_gas=VECTOR_GAS + 1),
        _vector_op()._replace(paymaster_and_data=b"\x00"),
    ]
    hashes = {user_op_hash(op, VECTOR_ADDRESS, 1) for op in changed}
    assert base not in hashes and len(hashes) == len(changed)
    assert user_op_hash(_vector_op(), VECTOR_ADDRESS, 2) != base
    assert user_op_hash(_vector_op(), "0x" + "00" * 20, 1) != base


@pytest.mark.parametrize(
    ("high", "low"), [(-1, 0), (0, -1), (2**128, 0), (0, 2**128), (True, 0)], ids=str
)
def test_gas_pairs_out_of_uint128_are_refused(high: int, low: int) -> None:
    with pytest.raises(ValueError, match="uint128"):
        pack_uint128_pair(high, low)


@pytest.mark.parametrize(
    "op",
    [
        _vector_op()._replace(nonce=-1),
        _vector_op()._replace(nonce=2**256),
        _vector_op()._replace(sender="0x1234"),
        _vector_op()._replace(account_gas_limits=b"\x00" * 31),
        _vector_op()._replace(gas_fees=b"\x00" * 33),
    ],
    ids=["negative-nonce", "nonce-over-uint256", "short-sender", "short-limits", "long-fees"],
)
def test_fields_outside_their_abi_type_are_refused(op: PackedUserOperation) -> None:
    with pytest.raises(ValueError):
        user_op_hash(op, VECTOR_ADDRESS, 1)


@pytest.fixture(scope="module")
def entry_point() -> object:
    return boa.load_partial(str(ENTRY_POINT_DOUBLE)).deploy()


_bytes = st.binary(max_size=200)
_u128 = st.integers(0, 2**128 - 1)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    sender=st.binary(min_size=20, max_size=20),
    nonce=st.integers(0, 2**256 - 1),
    init_code=_bytes,
    call_data=_bytes,
    gas=st.tuples(_u128, _u128, st.integers(0, 2**256 - 1), _u128, _u128),
    paymaster=_bytes,
)
def test_the_python_hash_is_the_one_an_entry_point_computes_on_chain(
    entry_point: object,
    sender: bytes,
    nonce: int,
    init_code: bytes,
    call_data: bytes,
    gas: tuple[int, int, int, int, int],
    paymaster: bytes,
) -> None:
    verification, call, pre_verification, priority, max_fee = gas
    op = PackedUserOperation(
        sender="0x" + sender.hex(),
        nonce=nonce,
        init_code=init_code,
        call_data=call_data,
        account_gas_limits=pack_uint128_pair(verification, call),
        pre_verification_gas=pre_verification,
        gas_fees=pack_uint128_pair(priority, max_fee),
        paymaster_and_data=paymaster,
        signature=b"\x00" * 65,
    )
    on_chain = entry_point.get_user_op_hash(tuple(op))  # type: ignore[attr-defined]
    address = str(entry_point.address)  # type: ignore[attr-defined]
    assert user_op_hash(op, address, int(boa.env.evm.patch.chain_id)) == on_chain
