"""Transaction encoding and signing, cross-checked byte for byte against eth_account."""

from __future__ import annotations

from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from rlp.sedes import big_endian_int  # type: ignore[import-untyped]

from sessionward.chain.ethereum_transactions import (
    AccessListEntry,
    Authorization,
    Eip1559Transaction,
    SetCodeTransaction,
    TransactionDecodingError,
    authorization_digest,
    decode_signed_transaction,
    sign_authorization,
    sign_transaction,
)
from sessionward.crypto.secp256k1 import (
    SECP256K1_N,
    address_from_secret,
    sign_digest,
    to_checksum_address,
)

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
SENDER = address_from_secret(SECRET)
AUTHORITY_SECRET = bytes.fromhex("11" * 32)
TARGET = "0x5ce9454909639d2d17a3f753ce7d93fa0b9ab12e"
TO = "0x3535353535353535353535353535353535353535"


def _reference_dict(tx: Eip1559Transaction | SetCodeTransaction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": tx.TYPE,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "gas": tx.gas,
        "value": tx.value,
        "data": tx.data,
        "accessList": [
            {
                "address": to_checksum_address(e.address),
                "storageKeys": ["0x" + k.hex() for k in e.storage_keys],
            }
            for e in tx.access_list
        ],
    }
    if tx.to is not None:
        doc["to"] = to_checksum_address(tx.to)
    if isinstance(tx, SetCodeTransaction):
        doc["authorizationList"] = [
            Account.sign_authorization(
                {"chainId": a.chain_id, "address": a.address, "nonce": a.nonce}, AUTHORITY_SECRET
            )
            for a in tx.authorization_list
        ]
    return doc


def _type2(**overrides: Any) -> Eip1559Transaction:
    fields: dict[str, Any] = {
        "chain_id": 1,
        "nonce": 7,
        "max_priority_fee_per_gas": 2 * 10**9,
        "max_fee_per_gas": 50 * 10**9,
        "gas": 100_000,
        "to": TO,
        "value": 10**18,
        "data": bytes.fromhex("a9059cbb") + bytes(64),
    }
    fields.update(overrides)
    return Eip1559Transaction(**fields)


def _type4(**overrides: Any) -> SetCodeTransaction:
    auth = sign_authorization(AUTHORITY_SECRET, chain_id=1, address=TARGET, nonce=3)
    fields: dict[str, Any] = {
        "chain_id": 1,
        "nonce": 0,
        "max_priority_fee_per_gas": 10**9,
        "max_fee_per_gas": 3 * 10**9,
        "gas": 200_000,
        "to": address_from_secret(AUTHORITY_SECRET),
        "value": 0,
        "data": b"\x01\x02",
        "authorization_list": (auth,),
    }
    fields.update(overrides)
    return SetCodeTransaction(**fields)


# ---------------------------------------------------------------------- against eth_account


def test_type2_transaction_matches_eth_account_byte_for_byte() -> None:
    tx = _type2(access_list=(AccessListEntry(TARGET, (bytes(31) + b"\x01",)),))
    ours = sign_transaction(tx, SECRET)
    theirs = Account.sign_transaction(_reference_dict(tx), SECRET)
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.hash == "0x" + bytes(theirs.hash).hex()
    assert ours.sender == SENDER


def test_contract_creation_has_an_empty_destination_like_eth_account() -> None:
    tx = _type2(to=None, data=b"\x60\x00\x60\x00\xf3", value=0)
    theirs = Account.sign_transaction(_reference_dict(tx), SECRET)
    assert sign_transaction(tx, SECRET).raw == bytes(theirs.raw_transaction)


def test_type4_transaction_matches_eth_account_byte_for_byte() -> None:
    tx = _type4()
    ours = sign_transaction(tx, SECRET)
    theirs = Account.sign_transaction(_reference_dict(tx), SECRET)
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.raw[0] == 4


def test_authorization_matches_eth_account() -> None:
    ours = sign_authorization(AUTHORITY_SECRET, chain_id=1337, address=TARGET, nonce=1)
    theirs = Account.sign_authorization(
        {"chainId": 1337, "address": TARGET, "nonce": 1}, AUTHORITY_SECRET
    )
    assert (ours.chain_id, ours.nonce, ours.y_parity, ours.r, ours.s) == (
        theirs.chain_id,
        theirs.nonce,
        theirs.y_parity,
        theirs.r,
        theirs.s,
    )
    assert authorization_digest(1337, TARGET, 1) == bytes(theirs.authorization_hash)
    assert ours.authority() == address_from_secret(AUTHORITY_SECRET)


_uint = st.integers(min_value=0, max_value=2**256 - 1)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    chain_id=st.integers(min_value=1, max_value=2**64),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    fees=st.tuples(_uint, _uint).map(sorted),
    gas=st.integers(min_value=0, max_value=2**64 - 1),
    value=_uint,
    data=st.binary(max_size=100),
    create=st.booleans(),
)
def test_any_type2_transaction_matches_eth_account(
    chain_id: int, nonce: int, fees: list[int], gas: int, value: int, data: bytes, create: bool
) -> None:
    tx = Eip1559Transaction(
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=fees[0],
        max_fee_per_gas=fees[1],
        gas=gas,
        to=None if create else TO,
        value=value,
        data=data,
    )
    ours = sign_transaction(tx, SECRET)
    assert ours.raw == bytes(Account.sign_transaction(_reference_dict(tx), SECRET).raw_transaction)
    decoded = decode_signed_transaction(ours.raw)
    assert decoded.unsigned == tx and decoded.sender == SENDER and decoded.hash == ours.hash


# ---------------------------------------------------------------------------- decoding


def test_decoding_recovers_sender_and_fields_of_a_type4_transaction() -> None:
    tx = _type4()
    decoded = decode_signed_transaction(sign_transaction(tx, SECRET).raw)
    assert decoded.unsigned == tx
    assert decoded.sender == SENDER
    assert isinstance(decoded.unsigned, SetCodeTransaction)
    assert decoded.unsigned.authorization_list[0].authority() == address_from_secret(
        AUTHORITY_SECRET
    )


def _fields(raw: bytes) -> list[Any]:
    item = rlp.decode(raw[1:])
    assert isinstance(item, list)
    return item


def _rebuild(raw: bytes, fields: list[Any]) -> bytes:
    encoded: bytes = rlp.encode(fields)
    return raw[:1] + encoded


def test_high_s_twin_of_a_valid_signature_is_refused() -> None:
    raw = sign_transaction(_type2(), SECRET).raw
    fields = _fields(raw)
    s = big_endian_int.deserialize(fields[-1])
    fields[-1] = big_endian_int.serialize(SECP256K1_N - s)
    fields[-3] = big_endian_int.serialize(1 - big_endian_int.deserialize(fields[-3]))
    with pytest.raises(TransactionDecodingError):
        decode_signed_transaction(_rebuild(raw, fields))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda f: f.__setitem__(-3, b"\x02"), id="y-parity-2"),
        pytest.param(lambda f: f.__setitem__(-2, b""), id="zero-r"),
        pytest.param(lambda f: f.__setitem__(1, b"\x00\x07"), id="nonce-leading-zero"),
        pytest.param(lambda f: f.__setitem__(5, b"\x35" * 19), id="short-address"),
        pytest.param(lambda f: f.append(b""), id="extra-field"),
        pytest.param(lambda f: f.pop(), id="missing-field"),
        pytest.param(lambda f: f.__setitem__(7, [b"x"]), id="data-is-a-list"),
    ],
)
def test_malformed_type2_envelopes_are_refused(mutate: Any) -> None:
    raw = sign_transaction(_type2(), SECRET).raw
    fields = _fields(raw)
    mutate(fields)
    with pytest.raises(TransactionDecodingError):
        decode_signed_transaction(_rebuild(raw, fields))


def test_unsupported_types_and_trailing_bytes_are_refused() -> None:
    raw = sign_transaction(_type2(), SECRET).raw
    for bad in (b"", b"\x01" + raw[1:], b"\xf8" + raw[1:], raw + b"\x00"):
        with pytest.raises(TransactionDecodingError):
            decode_signed_transaction(bad)


def test_deeply_nested_rlp_is_refused_not_a_crash() -> None:
    prefixes, length = [], 0
    for _ in range(100_000):  # far deeper than Python's recursion limit
        if length < 56:
            prefix = bytes([0xC0 + length])
        else:
            size = length.to_bytes((length.bit_length() + 7) // 8, "big")
            prefix = bytes([0xF7 + len(size)]) + size
        prefixes.append(prefix)
        length += len(prefix)
    with pytest.raises(TransactionDecodingError, match="nesting too deep"):
        decode_signed_transaction(b"\x02" + b"".join(reversed(prefixes)))


def test_type4_without_authorizations_or_destination_is_refused() -> None:
    raw = sign_transaction(_type4(), SECRET).raw
    fields = _fields(raw)
    fields[9] = []
    with pytest.raises(TransactionDecodingError):
        decode_signed_transaction(_rebuild(raw, fields))
    fields = _fields(raw)
    fields[5] = b""
    with pytest.raises(TransactionDecodingError):
        decode_signed_transaction(_rebuild(raw, fields))


# ------------------------------------------------------------------------- construction


def test_priority_fee_above_max_fee_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        _type2(max_priority_fee_per_gas=2, max_fee_per_gas=1)


def test_chain_id_zero_and_oversized_fields_are_refused() -> None:
    for overrides in ({"chain_id": 0}, {"nonce": 2**64}, {"gas": -1}, {"value": 2**256}):
        with pytest.raises(ValueError):
            _type2(**overrides)


def test_set_code_transaction_needs_authorizations_and_a_destination() -> None:
    with pytest.raises(ValueError):
        _type4(authorization_list=())
    with pytest.raises(ValueError):
        _type4(to=None)


def test_authorization_from_a_vault_signature_round_trips() -> None:
    signature = sign_digest(AUTHORITY_SECRET, authorization_digest(5, TARGET, 0))
    auth = Authorization.from_signature(chain_id=5, address=TARGET, nonce=0, signature=signature)
    assert auth == sign_authorization(AUTHORITY_SECRET, chain_id=5, address=TARGET, nonce=0)
