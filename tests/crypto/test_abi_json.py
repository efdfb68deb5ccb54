"""The one JSON form of typed values (sessionward.crypto.abi_json), the one type grammar it
reads types with (sessionward.crypto.solidity_types), and EIP-712 structs as ABI tuples."""

from __future__ import annotations

from typing import Any

import pytest
from crypto_support import build_grant
from eth_abi.abi import decode as eth_abi_decode
from eth_abi.abi import encode as eth_abi_encode
from hypothesis import given
from hypothesis import strategies as st

from sessionward.crypto.abi_json import AbiJsonError, value_from_json, value_to_json
from sessionward.crypto.eip712 import TypedDataError, TypedDataSchema
from sessionward.crypto.solidity_types import (
    ELEMENTARY_NAMES,
    UINT256,
    AbiType,
    ArrayType,
    IntType,
    Param,
    SignatureSyntaxError,
    StructType,
    TupleType,
    UintType,
    base_type,
    parse_type,
)
from sessionward.crypto.typed_data import SCHEMA

CHECKSUMMED = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
LOWER = CHECKSUMMED.lower()
STRUCTS = {
    "Rule": (Param("arg", parse_type("string")), Param("values", parse_type("bytes32[]"))),
    "Permission": (Param("target", parse_type("address")), Param("rules", StructType("Rule"))),
}


def _refusal(t: AbiType | str, value: object) -> AbiJsonError:
    abi_type = parse_type(t) if isinstance(t, str) else t
    with pytest.raises(AbiJsonError) as caught:
        value_from_json(abi_type, value, "args[0]", structs=STRUCTS)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("args[0]")
    return caught.value


# ------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize(
    ("text", "document", "value"),
    [
        ("uint8", 255, 255),
        (
            "uint256",
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            2**256 - 1,
        ),
        ("int16", "-32768", -32768),
        ("int256", -1, -1),
        ("address", CHECKSUMMED, LOWER),
        ("address", LOWER, LOWER),
        ("bool", True, True),
        ("bytes4", "0xA9059CBB", bytes.fromhex("a9059cbb")),
        ("bytes", "0x", b""),
        ("string", "héllo", "héllo"),
        ("uint8[2]", [1, "2"], (1, 2)),
        ("(address to,uint256 amount)", [LOWER, "5"], (LOWER, 5)),
        ("(address to,uint256 amount)", {"amount": 5, "to": LOWER}, (LOWER, 5)),
        ("(uint8,bool)[]", [[1, True], [2, False]], ((1, True), (2, False))),
    ],
)
def test_json_values_read_as_the_values_the_abi_encoder_takes(
    text: str, document: Any, value: object
) -> None:
    assert value_from_json(parse_type(text), document) == value


@pytest.mark.parametrize(
    ("text", "document", "reason"),
    [
        ("uint8", 256, "out of range"),
        ("uint8", -1, "out of range"),
        ("uint256", "007", "decimal string"),
        ("uint256", " 7", "decimal string"),
        ("uint256", "7" * 80, "decimal string"),
        ("uint256", 1.0, "decimal string"),
        ("uint256", True, "boolean"),
        ("int8", "-129", "out of range"),
        ("int8", "+1", "decimal string"),
        ("address", "0x" + "ab" * 19, "40 hex digits"),
        ("address", CHECKSUMMED.replace("CD2a", "cD2a"), "checksum"),
        ("address", 5, "address"),
        ("bool", "true", "true or false"),
        ("bytes4", "0x0102", "expected 4 bytes"),
        ("bytes", "0x 01", "hex"),
        ("bytes", "0x1", "hex"),
        ("string", 1, "string"),
        ("uint8[2]", [1], "2 items"),
        ("uint8[]", "1,2", "list"),
        ("(address to,uint256 amount)", [LOWER], "2 fields"),
        ("(address to,uint256 amount)", {"to": LOWER}, "missing field"),
        ("(address to,uint256 amount)", {"to": LOWER, "amount": 1, "memo": ""}, "unknown fields"),
    ],
)
def test_a_json_value_that_does_not_fit_its_type_is_refused_naming_where(
    text: str, document: Any, reason: str
) -> None:
    assert reason in _refusal(text, document).reason


def test_the_path_names_the_innermost_offending_value() -> None:
    error = _refusal("(address to,uint256[] amounts)", {"to": LOWER, "amounts": ["1", "x"]})
    assert error.path == "args[0].amounts[1]"


def test_structs_are_read_as_objects_with_exactly_their_fields() -> None:
    document = {"target": CHECKSUMMED, "rules": {"arg": "to", "values": ["0x" + "00" * 32]}}
    assert value_from_json(StructType("Permission"), document, structs=STRUCTS) == {
        "target": LOWER,
        "rules": {"arg": "to", "values": (bytes(32),)},
    }
    assert (
        "unknown fields" in _refusal(StructType("Rule"), {"arg": "", "values": [], "x": 1}).reason
    )
    assert "expected an object" in _refusal(StructType("Rule"), ["", []]).reason
    with pytest.raises(AbiJsonError, match="undefined struct 'Nope'"):
        value_from_json(StructType("Nope"), {}, structs=STRUCTS)


# ------------------------------------------------------------------------------------ writing


def test_values_are_written_in_the_wallet_form() -> None:
    t = parse_type("(address a,uint256 n,int8 i,bytes2 b,bytes d,bool f,string s,uint8[] xs)")
    value = (LOWER, 10**30, -3, b"\xab\xcd", "0xDEAD", True, "x", (1, 2))
    assert value_to_json(t, value) == [
        CHECKSUMMED,
        str(10**30),
        "-3",
        "0xabcd",
        "0xdead",
        True,
        "x",
        ["1", "2"],
    ]


def test_a_struct_is_written_as_an_object_in_field_order() -> None:
    value = {"rules": {"values": [bytes(32)], "arg": "to"}, "target": bytes.fromhex(LOWER[2:])}
    assert value_to_json(StructType("Permission"), value, structs=STRUCTS) == {
        "target": CHECKSUMMED,
        "rules": {"arg": "to", "values": ["0x" + "00" * 32]},
    }


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=40),
    st.lists(st.booleans(), max_size=4),
)
def test_writing_then_reading_gives_the_value_back(
    unsigned: int, signed: int, blob: bytes, flags: list[bool]
) -> None:
    t = parse_type("(uint64,int64,bytes,bool[],address)")
    value = (unsigned, signed, blob, tuple(flags), LOWER)
    assert value_from_json(t, value_to_json(t, value)) == value


# ------------------------------------------------------------------------------------ grammar


def test_the_eip712_form_of_the_grammar_names_structs_and_refuses_inline_tuples() -> None:
    assert parse_type("Rule[][2]", structs=True) == ArrayType(
        ArrayType(StructType("Rule"), None), 2
    )
    assert base_type(parse_type("Rule[][2]", structs=True)) == StructType("Rule")
    assert parse_type("uint48", structs=True) == UintType(48)
    with pytest.raises(SignatureSyntaxError, match="inline tuples"):
        parse_type("(uint8,bool)", structs=True)
    with pytest.raises(SignatureSyntaxError, match="unknown type 'Rule'"):
        parse_type("Rule")


def test_aliases_parse_but_are_not_canonical_names() -> None:
    assert parse_type("uint") == UINT256
    assert parse_type("int") == IntType(256)
    assert {"uint", "int"}.isdisjoint(ELEMENTARY_NAMES)
    assert {"uint8", "int256", "bytes32", "address", "bool", "string", "bytes"} <= ELEMENTARY_NAMES
    assert len(ELEMENTARY_NAMES) == 32 + 32 + 32 + 4


def test_a_zero_length_array_is_not_a_type() -> None:
    with pytest.raises(SignatureSyntaxError, match="zero-length array"):
        parse_type("uint8[0]")


def test_inline_tuples_are_abi_types() -> None:
    assert parse_type("tuple(uint8 a,bool)") == TupleType(
        (Param("a", UintType(8)), Param(None, parse_type("bool")))
    )


# ------------------------------------------------------------------------- EIP-712 and the ABI


def _abi_type(t: AbiType) -> AbiType:
    """The ABI type of an EIP-712 type: named structs spelled out as tuples."""
    if isinstance(t, StructType):
        fields = SCHEMA.struct_fields[t.name]
        return TupleType(tuple(Param(f.name, _abi_type(f.type)) for f in fields))
    if isinstance(t, ArrayType):
        return ArrayType(_abi_type(t.item), t.length)
    return t


def test_a_struct_message_becomes_the_abi_tuple_of_the_same_struct() -> None:
    grant = build_grant(3)
    as_tuple = SCHEMA.abi_tuple("SessionGrant", grant)
    envelope = as_tuple[6]
    assert isinstance(envelope, tuple)
    assert as_tuple[:6] == tuple(
        grant[f] for f in ("account", "sessionKey", "credential", "nonce", "epoch", "revoker")
    )
    permissions = envelope[4]
    assert isinstance(permissions, tuple) and len(permissions) == 3
    assert all(isinstance(p, tuple) and isinstance(p[5], tuple) for p in permissions)
    grant_type = _abi_type(StructType("SessionGrant"))
    encoded = eth_abi_encode([grant_type.canonical], [as_tuple])
    assert (
        eth_abi_encode([grant_type.canonical], eth_abi_decode([grant_type.canonical], encoded))
        == encoded
    )


@pytest.mark.parametrize("text", ["uint", "uint8 [2]", "(uint8,bool)", "tuple(uint8)", "uint8[0]"])
def test_eip712_field_types_are_read_in_canonical_form_only(text: str) -> None:
    with pytest.raises(TypedDataError, match="malformed type expression"):
        TypedDataSchema({"A": [(text, "a")]})
