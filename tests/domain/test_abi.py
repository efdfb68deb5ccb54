"""Specification of the strict ABI codec (sessionward.domain.abi).

eth_abi is the reference for canonical encodings; our decoder must accept exactly those bytes
and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from eth_abi.abi import decode as eth_abi_decode_raw
from eth_abi.abi import encode as eth_abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import (
    ADDRESS,
    AbiEncodeError,
    AbiType,
    AddressType,
    ArgumentIndexOutOfRange,
    ArgumentPathError,
    ArrayType,
    BoolType,
    BytesType,
    CalldataError,
    CalldataMalformed,
    FixedBytesType,
    FunctionSignature,
    IntType,
    Param,
    SignatureSyntaxError,
    StringType,
    TupleCodec,
    TupleType,
    UintType,
    decode_arguments,
    decode_tuple,
    encode_arguments,
    encode_call,
    encode_tuple,
    encode_word,
    parse_signature,
    parse_type,
    resolve_argument,
    static_word_offset,
    validate_argument_path,
)
from sessionward.reasons import ReasonCode, SessionWardError

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
TOKEN_IN = "0x" + "c0" * 20
TOKEN_OUT = "0x" + "d0" * 20

TRANSFER = parse_signature("transfer(address to,uint256 amount)")
SWAP_V2 = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)"
)
EXACT_INPUT_SINGLE = parse_signature(
    "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,"
    "uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)"
)
BYTES_ARG = parse_signature("f(bytes data)")
TWO_BYTES = parse_signature("g(bytes a,bytes b)")
SMALL_TYPES = parse_signature("h(uint8 u,int8 i,bool b,bytes4 s,address a)")
STRING_ARG = parse_signature("name(string text)")
NESTED = parse_signature("n((uint256 id,bytes[] blobs,string label)[] items,uint16 flag)")


def word(n: int) -> bytes:
    return n.to_bytes(32, "big", signed=n < 0)


def words(*ns: int) -> bytes:
    return b"".join(word(n) for n in ns)


def refused(signature: FunctionSignature, data: bytes) -> CalldataMalformed:
    """Decoding must refuse with CALLDATA_MALFORMED and leave the input untouched."""
    buffer = bytearray(data)
    with pytest.raises(CalldataMalformed) as info:
        decode_arguments(signature, buffer)  # type: ignore[arg-type]  # a buffer on purpose
    assert info.value.code is ReasonCode.CALLDATA_MALFORMED
    assert bytes(buffer) == data
    return info.value


def normalize(t: AbiType, value: object) -> object:
    """eth_abi's decoded value in our representation (lower-case addresses, tuples)."""
    if isinstance(t, AddressType):
        assert isinstance(value, str)
        return value.lower()
    if isinstance(t, ArrayType):
        assert isinstance(value, list | tuple)
        return tuple(normalize(t.item, v) for v in value)
    if isinstance(t, TupleType):
        assert isinstance(value, list | tuple)
        return tuple(normalize(c.type, v) for c, v in zip(t.components, value, strict=True))
    return value


def eth_abi_decode(signature: FunctionSignature, data: bytes) -> tuple[object, ...]:
    decoded = eth_abi_decode_raw([p.type.canonical for p in signature.params], data)
    return tuple(normalize(p.type, v) for p, v in zip(signature.params, decoded, strict=True))


# ---------------------------------------------------------------------------------------------
# Types and signatures


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("uint256", "uint256"),
        ("uint", "uint256"),
        ("int", "int256"),
        ("int8", "int8"),
        ("bytes1", "bytes1"),
        ("bytes32", "bytes32"),
        ("address[]", "address[]"),
        ("bool[3][]", "bool[3][]"),
        ("(address to, uint256 amount)", "(address,uint256)"),
        ("tuple(address,bytes)[2]", "(address,bytes)[2]"),
        (" ( ( uint8 a , string b ) inner , bytes32 [ ] c ) ", "((uint8,string),bytes32[])"),
    ],
)
def test_parse_type_gives_the_canonical_form(text: str, canonical: str) -> None:
    assert parse_type(text).canonical == canonical


@pytest.mark.parametrize(
    ("text", "canonical", "selector"),
    [
        ("transfer(address to,uint256 amount)", "transfer(address,uint256)", "a9059cbb"),
        ("approve(address spender, uint256 amount)", "approve(address,uint256)", "095ea7b3"),
        (
            "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)",
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            "38ed1739",
        ),
        (
            "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,"
            "uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)",
            "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
            "414bf389",
        ),
        (
            "execute(bytes32 mode, bytes calldata executionCalldata)",
            "execute(bytes32,bytes)",
            "e9ae5c53",
        ),
        ("function multiSend(bytes memory transactions)", "multiSend(bytes)", "8d80ff0a"),
        ("totalSupply()", "totalSupply()", "18160ddd"),
    ],
)
def test_parse_signature_gives_canonical_text_and_selector(
    text: str, canonical: str, selector: str
) -> None:
    signature = parse_signature(text)
    assert signature.canonical == canonical
    assert signature.selector.hex() == selector
    assert signature.selector == keccak256(canonical.encode())[:4]


def test_parse_signature_keeps_argument_names_for_paths() -> None:
    assert [p.name for p in SWAP_V2.params] == [
        "amountIn",
        "amountOutMin",
        "path",
        "to",
        "deadline",
    ]
    (params,) = EXACT_INPUT_SINGLE.params
    assert isinstance(params.type, TupleType)
    assert params.type.components[0] == Param("tokenIn", ADDRESS)
    assert parse_signature("transfer(address,uint256)").params[0].name is None


def test_parse_type_builds_the_expected_type_objects() -> None:
    assert parse_type("(uint8 a, bytes[2] b)") == TupleType(
        (Param("a", UintType(8)), Param("b", ArrayType(BytesType(), 2)))
    )
    assert parse_type("int16") == IntType(16)
    assert parse_type("bytes7") == FixedBytesType(7)
    assert parse_type("bool") == BoolType()
    assert parse_type("string") == StringType()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "transfer",
        "transfer(",
        "transfer(address",
        "transfer(address,)",
        "transfer(,address)",
        "transfer(address to uint256)",
        "transfer(address to, uint256 to)",
        "transfer(uint7)",
        "transfer(uint264)",
        "transfer(uint0)",
        "transfer(uint008)",
        "transfer(int9)",
        "transfer(bytes0)",
        "transfer(bytes33)",
        "transfer(fixed128x18)",
        "transfer(address[0])",
        "transfer(address[01])",
        "transfer(address[-1])",
        "transfer(address[99999999])",
        "transfer(())",
        "transfer(address) returns (bool)",
        "1transfer(address)",
        "transfer(address)extra",
        "trans fer(address)",
        "transfer(address;uint256)",
        "transfer(" + "(" * 40 + "uint256" + ")" * 40 + ")",
        "transfer(uint256" + "[]" * 40 + ")",
    ],
)
def test_bad_signature_text_is_a_value_error_naming_the_problem(text: str) -> None:
    with pytest.raises(SignatureSyntaxError) as info:
        parse_signature(text)
    assert isinstance(info.value, ValueError)
    assert "column" in str(info.value) or "name" in str(info.value)


@pytest.mark.parametrize("text", ["uint256 amount", "address,", "(uint256", "[]", "bytes32]"])
def test_bad_type_text_is_refused(text: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_type(text)


def test_signatures_are_hashable_values() -> None:
    assert parse_signature("transfer(address a,uint256 b)") == parse_signature(
        "transfer(address a,uint256 b)"
    )
    assert len({TRANSFER, parse_signature("transfer(address to,uint256 amount)")}) == 1


# ---------------------------------------------------------------------------------------------
# Canonical vectors, cross-checked with eth_abi

VECTORS: list[tuple[str, tuple[object, ...]]] = [
    ("transfer(address to,uint256 amount)", (ALICE, 10**18)),
    ("approve(address spender,uint256 amount)", (BOB, 2**256 - 1)),
    ("totalSupply()", ()),
    (
        "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)",
        (10**6, 9 * 10**5, (TOKEN_IN, TOKEN_OUT), ALICE, 1_900_000_000),
    ),
    (
        "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,"
        "uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)",
        ((TOKEN_IN, TOKEN_OUT, 3000, ALICE, 1_900_000_000, 10**18, 1, 0),),
    ),
    ("f(int8 a,int256 b,int24 c)", (-128, -(2**255), 8_388_607)),
    ("f(bool a,bool b,bytes1 c,bytes32 d)", (True, False, b"\x01", bytes(range(32)))),
    ("f(bytes a,string b)", (b"", "")),
    ("f(bytes a,string b)", (bytes(range(33)), "héllo wörld ✓ 🚀")),
    ("f(string[] names)", (("a", "", "long" * 20),)),
    ("f(bytes[][] blobs)", (((b"x",), (), (b"", b"yz" * 20)),)),
    ("f(uint256[2][] grid,address[3] trio)", (((1, 2), (3, 4)), (ALICE, BOB, TOKEN_IN))),
    ("f((uint8,bytes)[2] pairs,string tag)", (((1, b"\x01"), (2, b"")), "t")),
    (
        "n((uint256 id,bytes[] blobs,string label)[] items,uint16 flag)",
        (((7, (b"ab", b"c" * 40), "seven"), (8, (), "")), 65535),
    ),
    (
        "execute(bytes32 mode,bytes executionCalldata)",
        (b"\x01" + bytes(31), bytes(range(52))),
    ),
]


@pytest.mark.parametrize(("text", "values"), VECTORS)
def test_encoding_equals_eth_abi_and_decoding_inverts_it(
    text: str, values: tuple[object, ...]
) -> None:
    signature = parse_signature(text)
    encoded = encode_arguments(signature, values)
    assert encoded == eth_abi_encode([p.type.canonical for p in signature.params], values)
    assert decode_arguments(signature, encoded) == values
    assert eth_abi_decode(signature, encoded) == values
    assert encode_call(signature, values) == signature.selector + encoded


def test_transfer_encoding_is_the_well_known_vector() -> None:
    data = encode_call(TRANSFER, (ALICE, 1000))
    assert data.hex() == ("a9059cbb" + "00" * 12 + "a1" * 20 + "00" * 30 + "03e8")


def test_decoded_values_use_the_documented_representation() -> None:
    data = encode_arguments(
        SMALL_TYPES, (255, -1, True, b"\xde\xad\xbe\xef", ALICE.upper().replace("0X", "0x"))
    )
    u, i, b, s, a = decode_arguments(SMALL_TYPES, data)
    assert (u, i, b, s) == (255, -1, True, b"\xde\xad\xbe\xef")
    assert a == ALICE  # lower-case
    assert type(b) is bool


def test_tuples_can_be_encoded_from_mappings_by_component_name() -> None:
    params = {
        "tokenIn": TOKEN_IN,
        "tokenOut": TOKEN_OUT,
        "fee": 500,
        "recipient": ALICE,
        "deadline": 1,
        "amountIn": 2,
        "amountOutMinimum": 3,
        "sqrtPriceLimitX96": 0,
    }
    as_mapping = encode_arguments(EXACT_INPUT_SINGLE, {"params": params})
    as_tuple = encode_arguments(EXACT_INPUT_SINGLE, (tuple(params.values()),))
    assert as_mapping == as_tuple


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ((ALICE,), "needs 2 items"),
        (("0x1234", 1), "to: address"),
        ((ALICE, -1), "amount: -1 is out of range"),
        ((ALICE, 2**256), "out of range for uint256"),
        ((ALICE, True), "needs an int"),
        ((ALICE, "1"), "needs an int"),
        ("ab", "list or tuple"),
    ],
)
def test_values_that_do_not_fit_the_signature_are_refused_by_the_encoder(
    values: object, fragment: str
) -> None:
    with pytest.raises(AbiEncodeError) as info:
        encode_arguments(TRANSFER, values)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("signature", "values", "fragment"),
    [
        (SMALL_TYPES, (256, 0, True, b"abcd", ALICE), "u: 256 is out of range for uint8"),
        (SMALL_TYPES, (0, 128, True, b"abcd", ALICE), "i: 128 is out of range for int8"),
        (SMALL_TYPES, (0, 0, 1, b"abcd", ALICE), "b: bool needs a bool"),
        (SMALL_TYPES, (0, 0, True, b"abc", ALICE), "s: bytes4 needs exactly 4 bytes"),
        (STRING_ARG, ("\ud800",), "not encodable as UTF-8"),
        (BYTES_ARG, ("00",), "bytes needs bytes"),
        (SWAP_V2, (1, 1, [ALICE, 5], ALICE, 1), "path[1]: address needs"),
    ],
)
def test_encoder_errors_name_the_argument(
    signature: FunctionSignature, values: object, fragment: str
) -> None:
    with pytest.raises(AbiEncodeError) as info:
        encode_arguments(signature, values)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("address", ALICE, bytes(12) + bytes.fromhex("a1" * 20)),
        ("uint256", 5, word(5)),
        ("uint8", 255, word(255)),
        ("int16", -2, b"\xff" * 30 + b"\xff\xfe"),
        ("bool", True, word(1)),
        ("bytes4", b"\x12\x34\x56\x78", b"\x12\x34\x56\x78" + bytes(28)),
    ],
)
def test_encode_word_gives_the_abi_word_of_static_values(
    text: str, value: object, expected: bytes
) -> None:
    assert encode_word(parse_type(text), value) == expected
    assert expected == eth_abi_encode([text], [value])


@pytest.mark.parametrize(("text", "value"), [("bytes", b""), ("string", ""), ("uint8[1]", (1,))])
def test_encode_word_refuses_what_is_not_one_static_word(text: str, value: object) -> None:
    with pytest.raises(AbiEncodeError):
        encode_word(parse_type(text), value)


# ---------------------------------------------------------------------------------------------
# Refusals: everything that is not the canonical encoding


@pytest.mark.parametrize("size", [0, 1, 2, 3, 31, 32, 63])
def test_truncated_static_arguments_are_refused(size: int) -> None:
    data = encode_arguments(TRANSFER, (ALICE, 1))
    error = refused(TRANSFER, data[:size])
    assert "truncated" in error.message


def test_every_strict_prefix_of_a_dynamic_encoding_is_refused() -> None:
    values = (((7, (b"ab", b"c" * 40), "seven"), (8, (), "")), 1)
    data = encode_arguments(NESTED, values)
    for size in range(len(data)):
        refused(NESTED, data[:size])


@pytest.mark.parametrize("extra", [b"\x00", bytes(32), b"\x01" * 5])
def test_trailing_bytes_after_the_canonical_end_are_refused(extra: bytes) -> None:
    static = encode_arguments(TRANSFER, (ALICE, 1))
    assert "trailing" in refused(TRANSFER, static + extra).message
    dynamic = encode_arguments(SWAP_V2, (1, 2, (TOKEN_IN,), ALICE, 3))
    assert "trailing" in refused(SWAP_V2, dynamic + extra).message


def test_an_offset_of_0x40_where_0x20_is_canonical_is_refused() -> None:
    canonical = encode_arguments(BYTES_ARG, (b"abc",))
    assert canonical[:32] == word(0x20)
    # Same bytes reachable through a gap: offset 0x40, one junk-free word, then the tail.
    gapped = word(0x40) + word(0) + canonical[32:]
    error = refused(BYTES_ARG, gapped)
    assert "offset 64 is not canonical" in error.message
    assert "(in data)" in error.message


def test_an_offset_pointing_past_the_end_is_refused() -> None:
    data = word(0x1000) + word(0)
    refused(BYTES_ARG, data)


def test_an_offset_pointing_backwards_into_the_head_is_refused() -> None:
    canonical = encode_arguments(TWO_BYTES, (b"a", b"b"))
    # b's offset rewritten to point at a's tail (shared) and to the head itself (backwards).
    shared = canonical[:32] + canonical[:32] + canonical[64:]
    refused(TWO_BYTES, shared)
    backwards = word(0) + canonical[32:]
    refused(TWO_BYTES, backwards)


def test_overlapping_tails_are_refused() -> None:
    canonical = encode_arguments(TWO_BYTES, (b"a" * 40, b"b"))
    a_offset = 0x40
    # b's offset points inside a's tail (overlap) instead of right after it.
    overlapping = canonical[:32] + word(a_offset + 32) + canonical[64:]
    assert "offset 96 is not canonical" in refused(TWO_BYTES, overlapping).message


def test_swapped_tail_order_is_refused() -> None:
    a, b = b"first", b"second"
    canonical = encode_arguments(TWO_BYTES, (a, b))
    tail_a, tail_b = canonical[64:128], canonical[128:192]
    swapped = word(0x80) + word(0x40) + tail_b + tail_a
    refused(TWO_BYTES, swapped)
    assert eth_abi_decode_raw(["bytes", "bytes"], swapped) == (a, b)  # lenient decoders accept it


def test_non_canonical_offset_inside_a_nested_array_is_refused_and_located() -> None:
    values = (((7, (b"ab", b"cd"), "x"),), 1)
    data = bytearray(encode_arguments(NESTED, values))
    canonical = bytes(data)
    # Find the blobs array's second element offset word (value 0x80 = 2 heads + tail of 0x40).
    blobs_offsets = [i for i in range(0, len(data), 32) if data[i : i + 32] == word(0x80)]
    assert blobs_offsets
    data[blobs_offsets[-1] + 31] = 0xA0
    error = refused(NESTED, bytes(data))
    assert "items[0].blobs[1]" in error.message
    assert decode_arguments(NESTED, canonical) == values


def test_a_length_past_the_end_is_refused_before_any_allocation() -> None:
    huge = 2**255
    started = time.perf_counter()
    refused(BYTES_ARG, word(0x20) + word(huge))
    refused(SWAP_V2, words(1, 2, 0xA0, 3, 4, huge))
    refused(parse_signature("f(string[] a)"), word(0x20) + word(2**64))
    refused(parse_signature("f(uint256[3][] a)"), word(0x20) + word(10**9) + bytes(96))
    assert time.perf_counter() - started < 0.5


def test_an_array_length_that_needs_more_heads_than_remain_is_refused() -> None:
    # Two elements claimed, room for one address only.
    data = words(1, 2, 0xA0, 3, 4, 2) + word(int(TOKEN_IN, 16))
    assert "array length 2 needs 64 bytes but only 32 remain" in refused(SWAP_V2, data).message


def test_a_bytes_length_past_the_end_is_refused() -> None:
    data = word(0x20) + word(33) + bytes(32)
    assert "length 33 exceeds" in refused(BYTES_ARG, data).message


def test_missing_tail_padding_is_refused() -> None:
    canonical = encode_arguments(BYTES_ARG, (b"abc",))
    refused(BYTES_ARG, canonical[:-1])
    refused(BYTES_ARG, canonical[: 64 + 3])


@pytest.mark.parametrize(
    ("name", "position", "fragment"),
    [
        ("address high byte", 0, "address has non-zero high-order padding"),
        ("address low padding byte", 11, "address has non-zero high-order padding"),
        ("uint256 cannot be dirty", None, ""),
    ],
)
def test_an_address_with_a_dirty_high_byte_is_refused(
    name: str, position: int | None, fragment: str
) -> None:
    data = bytearray(encode_arguments(TRANSFER, (ALICE, 1)))
    if position is None:
        data[32] = 0xFF  # every uint256 bit pattern is canonical
        assert decode_arguments(TRANSFER, bytes(data))[1] == 0xFF << 248 | 1
        return
    data[position] = 0x01
    error = refused(TRANSFER, bytes(data))
    assert fragment in error.message
    assert "(in to)" in error.message, name


SMALL_CANONICAL = (5, -5, True, b"\x01\x02\x03\x04", ALICE)


@pytest.mark.parametrize(
    ("word_index", "replacement", "fragment"),
    [
        (0, word(256), "uint8 has non-zero high-order padding"),
        (0, word(2**255 | 5), "uint8 has non-zero high-order padding"),
        (1, word(2**8 - 5), "int8 is not properly sign-extended"),  # -5 without sign extension
        (1, word(-129), "int8 is not properly sign-extended"),
        (1, word(128), "int8 is not properly sign-extended"),
        (2, word(2), "bool is neither 0 nor 1"),
        (2, word(2**255 | 1), "bool is neither 0 nor 1"),
        (3, b"\x01\x02\x03\x04" + bytes(27) + b"\x01", "bytes4 has non-zero right padding"),
        (3, b"\x01\x02\x03\x04\x05" + bytes(27), "bytes4 has non-zero right padding"),
        (
            4,
            b"\x80" + bytes(11) + bytes.fromhex("a1" * 20),
            "address has non-zero high-order padding",
        ),
    ],
)
def test_dirty_padding_is_refused_for_each_static_type(
    word_index: int, replacement: bytes, fragment: str
) -> None:
    data = bytearray(encode_arguments(SMALL_TYPES, SMALL_CANONICAL))
    data[32 * word_index : 32 * word_index + 32] = replacement
    error = refused(SMALL_TYPES, bytes(data))
    assert fragment in error.message
    assert f"at byte {32 * word_index}" in error.message


def test_bool_2_is_refused() -> None:
    signature = parse_signature("setFlag(bool on)")
    assert decode_arguments(signature, word(1)) == (True,)
    assert "bool is neither 0 nor 1" in refused(signature, word(2)).message


@pytest.mark.parametrize("signature", [BYTES_ARG, STRING_ARG], ids=["bytes", "string"])
def test_dirty_tail_padding_of_bytes_and_string_is_refused(signature: FunctionSignature) -> None:
    value: object = b"abc" if signature is BYTES_ARG else "abc"
    data = bytearray(encode_arguments(signature, (value,)))
    data[-1] = 0x01
    assert "non-zero tail padding" in refused(signature, bytes(data)).message


@pytest.mark.parametrize("raw", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"ok\xe2\x82"])
def test_string_that_is_not_utf8_is_refused(raw: bytes) -> None:
    data = word(0x20) + word(len(raw)) + raw + bytes(32 - len(raw))
    assert "not valid UTF-8" in refused(STRING_ARG, data).message


def test_calldata_errors_are_session_ward_errors_with_one_code() -> None:
    error = refused(TRANSFER, b"")
    assert isinstance(error, CalldataError)
    assert isinstance(error, SessionWardError)
    assert str(error).startswith("CALLDATA_MALFORMED: arguments of transfer(address,uint256)")


def test_tuple_codecs_decode_plain_abi_encode_and_name_the_data_in_errors() -> None:
    t = TupleType((Param("items", parse_type("(address target,uint256 value,bytes callData)[]")),))
    values = (((ALICE, 1, b"\x01\x02\x03\x04"),),)
    encoded = encode_tuple(t, values)
    assert encoded == eth_abi_encode(["(address,uint256,bytes)[]"], values)
    assert decode_tuple(t, encoded) == values
    assert TupleCodec(t).decode(encoded) == values
    with pytest.raises(CalldataMalformed) as info:
        TupleCodec(t).decode(encoded[:-32], "batch execution")
    assert info.value.message.startswith("batch execution: ")
    assert "(in items[0].callData)" in info.value.message


# ---------------------------------------------------------------------------------------------
# Argument paths


def test_resolve_argument_reads_names_indices_fields_and_elements() -> None:
    swap = decode_arguments(
        SWAP_V2, encode_arguments(SWAP_V2, (5, 4, (TOKEN_IN, TOKEN_OUT), BOB, 9))
    )
    assert resolve_argument(SWAP_V2, swap, "amountIn") == 5
    assert resolve_argument(SWAP_V2, swap, "3") == BOB
    assert resolve_argument(SWAP_V2, swap, "path[0]") == TOKEN_IN
    assert resolve_argument(SWAP_V2, swap, "path[1]") == TOKEN_OUT
    single = ((TOKEN_IN, TOKEN_OUT, 3000, ALICE, 1, 2, 3, 0),)
    assert resolve_argument(EXACT_INPUT_SINGLE, single, "params.tokenIn") == TOKEN_IN
    assert resolve_argument(EXACT_INPUT_SINGLE, single, "params.3") == ALICE
    assert resolve_argument(EXACT_INPUT_SINGLE, single, "0.amountIn") == 2
    nested = (((7, (b"ab", b"cd"), "x"),), 1)
    assert resolve_argument(NESTED, nested, "items[0].blobs[1]") == b"cd"
    assert resolve_argument(NESTED, nested, "items[0].label") == "x"


@pytest.mark.parametrize(
    ("signature", "path", "canonical"),
    [
        (TRANSFER, "to", "address"),
        (TRANSFER, "1", "uint256"),
        (SWAP_V2, "path", "address[]"),
        (SWAP_V2, "path[7]", "address"),
        (
            EXACT_INPUT_SINGLE,
            "params",
            "(address,address,uint24,address,uint256,uint256,uint256,uint160)",
        ),
        (EXACT_INPUT_SINGLE, "params.fee", "uint24"),
        (NESTED, "items[2].blobs[0]", "bytes"),
    ],
)
def test_validate_argument_path_returns_the_type_there(
    signature: FunctionSignature, path: str, canonical: str
) -> None:
    assert validate_argument_path(signature, path).canonical == canonical


@pytest.mark.parametrize(
    ("signature", "path"),
    [
        (TRANSFER, "recipient"),
        (TRANSFER, "2"),
        (TRANSFER, "to.x"),
        (TRANSFER, "to[0]"),
        (TRANSFER, ""),
        (TRANSFER, ".to"),
        (TRANSFER, "to."),
        (TRANSFER, "01"),
        (SWAP_V2, "path[x]"),
        (SWAP_V2, "path[]"),
        (SWAP_V2, "path.0"),
        (EXACT_INPUT_SINGLE, "params.tokenX"),
        (EXACT_INPUT_SINGLE, "params.8"),
        (EXACT_INPUT_SINGLE, "params[0]"),
        (parse_signature("f(address[2] pair)"), "pair[2]"),
    ],
)
def test_unknown_argument_paths_are_refused_at_grant_time(
    signature: FunctionSignature, path: str
) -> None:
    with pytest.raises(ArgumentPathError):
        validate_argument_path(signature, path)


def test_a_dynamic_index_past_the_decoded_array_is_reported_at_read_time() -> None:
    swap = (5, 4, (TOKEN_IN,), BOB, 9)
    with pytest.raises(ArgumentIndexOutOfRange):
        resolve_argument(SWAP_V2, swap, "path[1]")


@pytest.mark.parametrize(
    ("signature", "path", "offset"),
    [
        (TRANSFER, "to", 0),
        (TRANSFER, "amount", 1),
        (SWAP_V2, "amountOutMin", 1),
        (SWAP_V2, "path", None),
        (SWAP_V2, "path[0]", None),
        (SWAP_V2, "to", 3),
        (SWAP_V2, "deadline", 4),
        (EXACT_INPUT_SINGLE, "params.tokenIn", 0),
        (EXACT_INPUT_SINGLE, "params.recipient", 3),
        (EXACT_INPUT_SINGLE, "params.sqrtPriceLimitX96", 7),
        (EXACT_INPUT_SINGLE, "params", None),
        (
            parse_signature("f(uint8 a,(uint256 x,address[2] pair) s,bytes b,address c)"),
            "s.pair[1]",
            3,
        ),
        (parse_signature("f(uint8 a,(uint256 x,address[2] pair) s,bytes b,address c)"), "c", 5),
        (parse_signature("f(uint8 a,(uint256 x,address[2] pair) s,bytes b,address c)"), "b", None),
        (parse_signature("f(bytes b,(uint256 x,string y) d,address c)"), "d.x", None),
        (parse_signature("f(bytes b,(uint256 x,string y) d,address c)"), "c", 2),
        (parse_signature("f(uint256[2][3] m)"), "m[2][1]", 5),
        (parse_signature("f(bytes[2] m,uint256 z)"), "m[1]", None),
        (parse_signature("f(bytes[2] m,uint256 z)"), "z", 1),
    ],
)
def test_static_word_offset_locates_arguments_reachable_without_offsets(
    signature: FunctionSignature, path: str, offset: int | None
) -> None:
    assert static_word_offset(signature, path) == offset


@pytest.mark.parametrize(
    ("signature", "values", "path"),
    [
        (EXACT_INPUT_SINGLE, ((TOKEN_IN, TOKEN_OUT, 3000, ALICE, 1, 2, 3, 4),), "params.recipient"),
        (SWAP_V2, (5, 4, (TOKEN_IN, TOKEN_OUT), BOB, 9), "to"),
        (
            parse_signature("f(uint8 a,(uint256 x,address[2] pair) s,bytes b,address c)"),
            (1, (2, (ALICE, BOB)), b"zz", TOKEN_IN),
            "s.pair[1]",
        ),
    ],
)
def test_static_word_offset_points_at_the_word_holding_the_value(
    signature: FunctionSignature, values: tuple[object, ...], path: str
) -> None:
    offset = static_word_offset(signature, path)
    assert offset is not None
    data = encode_arguments(signature, values)
    argument_type = validate_argument_path(signature, path)
    expected = encode_word(argument_type, resolve_argument(signature, values, path))
    assert data[32 * offset : 32 * offset + 32] == expected


# ---------------------------------------------------------------------------------------------
# Performance


def test_decoding_a_transfer_takes_a_few_microseconds() -> None:
    data = encode_arguments(TRANSFER, (ALICE, 10**18))
    rounds = 20_000
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            decode_arguments(TRANSFER, data)
        best = min(best, (time.perf_counter() - started) / rounds)
    assert best < 20e-6  # measured ≈1.6 µs; the bound only catches an accidental slow path


# ---------------------------------------------------------------------------------------------
# Properties

SIGNATURES_FOR_FUZZ = [TRANSFER, SWAP_V2, EXACT_INPUT_SINGLE, SMALL_TYPES, STRING_ARG, NESTED]
# Words that make decoders take interesting branches: canonical offsets, lengths, huge values.
INTERESTING_WORDS = st.sampled_from(
    [0, 1, 2, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0x100, 2**64, 2**255, 2**256 - 1]
).map(word)
GARBAGE = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(INTERESTING_WORDS, st.binary(min_size=32, max_size=32)), max_size=14).map(
        b"".join
    ),
)


@settings(derandomize=True, max_examples=500, deadline=None)
@given(signature=st.sampled_from(SIGNATURES_FOR_FUZZ), data=GARBAGE)
def test_arbitrary_bytes_decode_canonically_or_raise_calldata_malformed(
    signature: FunctionSignature, data: bytes
) -> None:
    try:
        decoded = decode_arguments(signature, data)
    except CalldataMalformed as error:
        assert error.code is ReasonCode.CALLDATA_MALFORMED
    else:
        assert encode_arguments(signature, decoded) == data


UINT_BITS = [8, 16, 24, 64, 160, 256]
ELEMENTARY: list[AbiType] = [
    *(UintType(b) for b in UINT_BITS),
    *(IntType(b) for b in UINT_BITS),
    AddressType(),
    BoolType(),
    *(FixedBytesType(n) for n in (1, 4, 20, 32)),
    BytesType(),
    StringType(),
]


def _compose(children: st.SearchStrategy[AbiType]) -> st.SearchStrategy[AbiType]:
    arrays = st.builds(ArrayType, children, st.sampled_from([None, None, 1, 2, 3]))
    tuples = st.lists(children, min_size=1, max_size=3).map(
        lambda ts: TupleType(tuple(Param(None, t) for t in ts))
    )
    return st.one_of(arrays, tuples)


ABI_TYPES: st.SearchStrategy[AbiType] = st.recursive(
    st.sampled_from(ELEMENTARY), _compose, max_leaves=5
)


def values_for(t: AbiType) -> st.SearchStrategy[object]:
    if isinstance(t, UintType):
        return st.integers(0, 2**t.bits - 1)
    if isinstance(t, IntType):
        return st.integers(-(2 ** (t.bits - 1)), 2 ** (t.bits - 1) - 1)
    if isinstance(t, AddressType):
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if isinstance(t, BoolType):
        return st.booleans()
    if isinstance(t, FixedBytesType):
        return st.binary(min_size=t.size, max_size=t.size)
    if isinstance(t, BytesType):
        return st.binary(max_size=70)
    if isinstance(t, StringType):
        return st.text(max_size=20)
    if isinstance(t, ArrayType):
        low, high = (0, 3) if t.length is None else (t.length, t.length)
        return st.lists(values_for(t.item), min_size=low, max_size=high).map(tuple)
    assert isinstance(t, TupleType)
    return st.tuples(*(values_for(c.type) for c in t.components))


@st.composite
def signature_and_values(draw: st.DrawFn) -> tuple[FunctionSignature, tuple[object, ...]]:
    types = draw(st.lists(ABI_TYPES, min_size=1, max_size=3))
    signature = FunctionSignature("f", tuple(Param(None, t) for t in types))
    values = draw(st.tuples(*(values_for(t) for t in types)))
    return signature, values


PROPERTY_SETTINGS: Callable[[Callable[..., None]], Callable[..., None]] = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(case=signature_and_values())
def test_generated_values_round_trip_and_match_eth_abi(
    case: tuple[FunctionSignature, tuple[object, ...]],
) -> None:
    signature, values = case
    encoded = encode_arguments(signature, values)
    assert encoded == eth_abi_encode([p.type.canonical for p in signature.params], values)
    assert decode_arguments(signature, encoded) == values
    assert eth_abi_decode(signature, encoded) == values
    assert parse_signature(signature.canonical).selector == signature.selector


@PROPERTY_SETTINGS
@given(
    case=signature_and_values(),
    mutations=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=8
    ),
)
def test_mutating_one_byte_never_yields_a_non_canonical_acceptance(
    case: tuple[FunctionSignature, tuple[object, ...]], mutations: list[tuple[int, int]]
) -> None:
    signature, values = case
    encoded = encode_arguments(signature, values)
    for where, flip in mutations:  # each mutation is applied alone to the canonical bytes
        mutated = bytearray(encoded)
        mutated[where % len(mutated)] ^= flip
        try:
            decoded = decode_arguments(signature, bytes(mutated))
        except CalldataMalformed as error:
            assert error.code is ReasonCode.CALLDATA_MALFORMED
        else:
            assert encode_arguments(signature, decoded) == bytes(mutated)


@PROPERTY_SETTINGS
@given(
    case=signature_and_values(),
    cut=st.integers(min_value=1),
    extra=st.binary(min_size=1, max_size=40),
)
def test_shortened_or_extended_encodings_are_refused(
    case: tuple[FunctionSignature, tuple[object, ...]], cut: int, extra: bytes
) -> None:
    signature, values = case
    encoded = encode_arguments(signature, values)
    refused(signature, encoded[: len(encoded) - 1 - (cut % len(encoded))])
    refused(signature, encoded + extra)
