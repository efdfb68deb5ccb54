"""The generic EIP-712 hasher: spec example, strict value rules, and equality with eth_account."""

from __future__ import annotations

from typing import Any

import pytest
from crypto_support import eth_account_digest
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward.crypto.eip712 import (
    DOMAIN_TYPE,
    TypedDataError,
    TypedDataSchema,
    domain_separator,
    typed_data_digest,
)
from sessionward.crypto.keccak import keccak256

MAIL_SCHEMA = TypedDataSchema(
    {
        "Person": [("string", "name"), ("address", "wallet")],
        "Mail": [("Person", "from"), ("Person", "to"), ("string", "contents")],
    }
)
MAIL_DOMAIN = ("Ether Mail", "1", 1, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
MAIL: dict[str, Any] = {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!",
}

ATOMS = TypedDataSchema(
    {
        "Atoms": [
            ("uint8", "u8"),
            ("int8", "i8"),
            ("uint256", "u256"),
            ("bool", "flag"),
            ("bytes4", "b4"),
            ("bytes", "blob"),
            ("string", "text"),
            ("address", "who"),
            ("uint16[2]", "pair"),
        ]
    }
)
ATOMS_VALUE: dict[str, Any] = {
    "u8": 1,
    "i8": -1,
    "u256": 2**255,
    "flag": True,
    "b4": b"\x01\x02\x03\x04",
    "blob": b"\xff" * 40,
    "text": "héllo",
    "who": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    "pair": [1, 2],
}


def _atoms(**changes: Any) -> dict[str, Any]:
    return {**ATOMS_VALUE, **changes}


def _refused(field: str, value: Any) -> TypedDataError:
    with pytest.raises(TypedDataError) as caught:
        ATOMS.hash_struct("Atoms", _atoms(**{field: value}))
    assert caught.value.path.startswith(f"Atoms.{field}")
    return caught.value


# ----------------------------------------------------------------------------- spec example


class TestEip712SpecMailExample:
    def test_digest_is_the_one_published_in_the_eip(self) -> None:
        digest = typed_data_digest(
            domain_separator(*MAIL_DOMAIN), MAIL_SCHEMA.hash_struct("Mail", MAIL)
        )
        assert digest.hex() == "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"

    def test_intermediate_hashes_are_the_published_ones(self) -> None:
        assert MAIL_SCHEMA.encode_type("Mail") == (
            "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
        )
        assert MAIL_SCHEMA.type_hash("Mail").hex() == (
            "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
        )
        assert MAIL_SCHEMA.hash_struct("Mail", MAIL).hex() == (
            "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
        )
        assert domain_separator(*MAIL_DOMAIN).hex() == (
            "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
        )

    def test_domain_separator_equals_eth_account(self) -> None:
        name, version, chain_id, contract = MAIL_DOMAIN
        expected = hash_domain(
            {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract}
        )
        assert domain_separator(*MAIL_DOMAIN) == bytes(expected)

    def test_domain_type_string_is_the_protocol_one(self) -> None:
        assert DOMAIN_TYPE == (
            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
        )


# ---------------------------------------------------------------------------- type strings


class TestEncodeType:
    def test_referenced_structs_are_appended_in_alphabetical_order(self) -> None:
        schema = TypedDataSchema(
            {
                "Top": [("Zeta", "z"), ("Alpha[]", "a")],
                "Zeta": [("Mid", "m")],
                "Mid": [("uint8", "x")],
                "Alpha": [("bool", "ok")],
            }
        )
        assert schema.encode_type("Top") == (
            "Top(Zeta z,Alpha[] a)Alpha(bool ok)Mid(uint8 x)Zeta(Mid m)"
        )
        assert schema.type_hash("Top") == keccak256(schema.encode_type("Top").encode())

    def test_recursive_struct_lists_itself_once(self) -> None:
        schema = TypedDataSchema({"Node": [("string", "label"), ("Node[]", "children")]})
        assert schema.encode_type("Node") == "Node(string label,Node[] children)"
        tree = {"label": "root", "children": [{"label": "leaf", "children": []}]}
        document = {
            "types": {"EIP712Domain": [], **schema.types_document("Node")},
            "primaryType": "Node",
            "domain": {},
            "message": schema.message_document("Node", tree),
        }
        expected = eth_account_digest(document)
        empty_domain = keccak256(keccak256(b"EIP712Domain()"))
        assert typed_data_digest(empty_domain, schema.hash_struct("Node", tree)) == expected

    @pytest.mark.parametrize(
        ("types", "fragment"),
        [
            ({"A": [("Missing", "m")]}, "undefined type 'Missing'"),
            ({"uint256": [("bool", "b")]}, "shadows an atomic type"),
            ({"A": [("bool", "b"), ("uint8", "b")]}, "duplicate field name"),
            ({"A": [("uint8[", "b")]}, "malformed type expression"),
            ({"A": [("uint8[0]", "b")]}, "zero-length array"),
            ({"A": [("uint8[01]", "b")]}, "malformed type expression"),
            ({"A": [("bool", "not a name")]}, "not an identifier"),
            ({"1A": [("bool", "b")]}, "not an identifier"),
        ],
    )
    def test_malformed_schemas_are_refused(
        self, types: dict[str, list[tuple[str, str]]], fragment: str
    ) -> None:
        with pytest.raises(TypedDataError, match=fragment.replace("[", r"\[")):
            TypedDataSchema(types)

    def test_unknown_primary_type_is_refused(self) -> None:
        with pytest.raises(TypedDataError, match="unknown struct type"):
            MAIL_SCHEMA.hash_struct("Letter", MAIL)


# ---------------------------------------------------------------------------- value rules


class TestAtomicValues:
    def test_equivalent_spellings_hash_the_same(self) -> None:
        base = ATOMS.hash_struct("Atoms", ATOMS_VALUE)
        spellings = [
            _atoms(who="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            _atoms(who=bytes.fromhex("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")),
            _atoms(who="0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"),  # all caps: unchecksummed
            _atoms(b4="0x01020304"),
            _atoms(blob="0x" + "FF" * 40),
            _atoms(blob=bytearray(b"\xff" * 40)),
            _atoms(pair=(1, 2)),
        ]
        for spelling in spellings:
            assert ATOMS.hash_struct("Atoms", spelling) == base

    def test_every_field_changes_the_hash(self) -> None:
        base = ATOMS.hash_struct("Atoms", ATOMS_VALUE)
        variants = [
            _atoms(u8=2),
            _atoms(i8=1),
            _atoms(u256=2**255 - 1),
            _atoms(flag=False),
            _atoms(b4=b"\x01\x02\x03\x05"),
            _atoms(blob=b"\xff" * 39),
            _atoms(text="hello"),
            _atoms(who="0x" + "00" * 20),
            _atoms(pair=[2, 1]),
        ]
        hashes = {ATOMS.hash_struct("Atoms", v) for v in variants}
        assert base not in hashes and len(hashes) == len(variants)

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("u8", 256, "out of range for uint8"),
            ("u8", -1, "out of range for uint8"),
            ("u8", True, "expected an int"),
            ("u8", 1.0, "expected an int"),
            ("u8", "1", "expected an int"),
            ("i8", 128, "out of range for int8"),
            ("i8", -129, "out of range for int8"),
            ("u256", 2**256, "out of range for uint256"),
            ("flag", 1, "expected a bool"),
            ("b4", b"\x01\x02\x03", "expected 4 bytes, got 3"),
            ("b4", b"\x01\x02\x03\x04\x05", "expected 4 bytes, got 5"),
            ("b4", "0x010203", "expected 4 bytes, got 3"),
            ("b4", "01020304", "malformed"),
            ("b4", 16909060, "expected bytes4"),
            ("blob", "0x1", "malformed"),
            ("blob", "0xzz", "malformed"),
            ("blob", "0x 01", "malformed"),
            ("text", b"bytes", "expected a str"),
            ("text", "\ud800", "not encodable as UTF-8"),
            ("who", "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "invalid EIP-55 checksum"),
            ("who", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "40 hex digits"),
            ("who", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00", "40 hex digits"),
            ("who", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "40 hex digits"),
            ("who", b"\x00" * 19, "20-byte address"),
            ("who", 0, "expected an address"),
            ("pair", [1], "exactly 2 items"),
            ("pair", [1, 2, 3], "exactly 2 items"),
            ("pair", "ab", "expected a list"),
            ("pair", [1, 70000], "out of range for uint16"),
        ],
    )
    def test_out_of_range_and_mistyped_values_are_refused(
        self, field: str, value: Any, reason: str
    ) -> None:
        error = _refused(field, value)
        assert reason in error.reason

    def test_array_errors_name_the_item(self) -> None:
        error = _refused("pair", [1, 70000])
        assert error.path == "Atoms.pair[1]"


class TestStructValues:
    def test_missing_field_is_refused_with_its_path(self) -> None:
        message = {**MAIL, "to": {"name": "Bob"}}
        with pytest.raises(TypedDataError) as caught:
            MAIL_SCHEMA.hash_struct("Mail", message)
        assert str(caught.value) == "Mail.to.wallet: missing field"

    def test_unknown_field_is_refused(self) -> None:
        message = {**MAIL, "cc": MAIL["to"]}
        with pytest.raises(TypedDataError, match=r"unknown field\(s\) \['cc'\]"):
            MAIL_SCHEMA.hash_struct("Mail", message)

    def test_unknown_field_replacing_a_known_one_is_reported_as_missing(self) -> None:
        message = {"from": MAIL["from"], "to": MAIL["to"], "body": "Hello, Bob!"}
        with pytest.raises(TypedDataError, match=r"Mail\.contents: missing field"):
            MAIL_SCHEMA.hash_struct("Mail", message)

    def test_struct_value_must_be_a_mapping(self) -> None:
        with pytest.raises(TypedDataError, match=r"Mail\.from: expected a mapping"):
            MAIL_SCHEMA.hash_struct("Mail", {**MAIL, "from": ["Cow", MAIL["to"]["wallet"]]})

    def test_refusals_are_value_errors(self) -> None:
        with pytest.raises(ValueError):
            MAIL_SCHEMA.hash_struct("Mail", {})


# ------------------------------------------------------------- random schemas vs eth_account

_ATOMIC_TYPES = st.sampled_from(
    [
        *("address", "bool", "bytes", "string"),
        *("uint8", "uint48", "uint256", "int8", "int256"),
        *("bytes1", "bytes4", "bytes20", "bytes32"),
    ]
)


@st.composite
def _schemas(draw: st.DrawFn) -> dict[str, list[tuple[str, str]]]:
    """1-3 structs S0..Sk; Si may reference Sj only for j > i (no cycles), S0 is the primary
    type and reaches every other struct."""
    count = draw(st.integers(1, 3))
    types: dict[str, list[tuple[str, str]]] = {}
    for index in range(count):
        fields: list[tuple[str, str]] = []
        if index + 1 < count:  # keep every struct reachable from S0
            fields.append((f"S{index + 1}", "next"))
        for position in range(draw(st.integers(0 if fields else 1, 4))):
            base = draw(
                _ATOMIC_TYPES
                if index + 2 >= count
                else st.one_of(_ATOMIC_TYPES, st.just(f"S{index + 2}"))
            )
            suffix = draw(st.sampled_from(["", "", "[]", "[2]", "[][]", "[1][]"]))
            fields.append((base + suffix, f"f{position}"))
        types[f"S{index}"] = fields
    return types


def _value_strategy(type_: str, types: dict[str, list[tuple[str, str]]]) -> st.SearchStrategy[Any]:
    if type_.endswith("]"):
        inner, dimension = type_[: type_.rindex("[")], type_[type_.rindex("[") + 1 : -1]
        items = _value_strategy(inner, types)
        if dimension:
            return st.lists(items, min_size=int(dimension), max_size=int(dimension))
        return st.lists(items, max_size=2)
    if type_ in types:
        return st.fixed_dictionaries({n: _value_strategy(t, types) for t, n in types[type_]})
    if type_ == "address":
        return st.binary(min_size=20, max_size=20)
    if type_ == "bool":
        return st.booleans()
    if type_ == "bytes":
        return st.binary(max_size=40)
    if type_ == "string":
        return st.text(max_size=12)
    if type_.startswith("uint"):
        return st.integers(0, 2 ** int(type_[4:]) - 1)
    if type_.startswith("int"):
        bits = int(type_[3:])
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    size = int(type_[5:])
    return st.binary(min_size=size, max_size=size)


@settings(
    derandomize=True,
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_schemas_and_messages_hash_like_eth_account(data: st.DataObject) -> None:
    types = data.draw(_schemas())
    message = data.draw(_value_strategy("S0", types))
    schema = TypedDataSchema(types)
    document = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            **schema.types_document("S0"),
        },
        "primaryType": "S0",
        "domain": {"name": "random"},
        "message": schema.message_document("S0", message),
    }
    domain = keccak256(
        keccak256(b"EIP712Domain(string name)") + keccak256(b"random")
    )  # hashStruct(EIP712Domain{name: "random"})
    assert typed_data_digest(domain, schema.hash_struct("S0", message)) == eth_account_digest(
        document
    )
