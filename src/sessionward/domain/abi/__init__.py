"""A strict Solidity ABI codec, written for deciding what calldata *means*.

SessionWard authorizes calls by reading their arguments, so the decoder must give every byte
string at most one meaning. It therefore accepts **only the canonical encoding** (the one the
Solidity ABI specification's encoder produces) and refuses everything else with
:class:`CalldataMalformed`:

- every offset equals exactly where the canonical encoder puts that tail: tails follow the heads
  in component order, with no gap, overlap, backward or shared offset;
- every padding bit is zero: the high 12 bytes of an ``address``, the high bits of ``uintN``,
  proper sign extension of ``intN``, ``bool`` only 0 or 1, the right padding of ``bytesN``, and the
  tail padding of ``bytes`` and ``string``;
- ``string`` is valid UTF-8; lengths fit in the data; nothing trails the canonical end;
- work is bounded by the data: a length is checked against the bytes that remain before anything
  is allocated, and since canonical tails never share bytes, every element consumes its own
  32 bytes at least, so decoding is linear in the input.

With those rules decoding is the exact inverse of :func:`encode_arguments`: for any ``data``,
either ``encode_arguments(sig, decode_arguments(sig, data)) == data`` or decoding raises.

Decoded values: ``address`` → lower-case ``0x`` str; ``uintN``/``intN`` → int; ``bool`` → bool;
``bytesN`` and ``bytes`` → bytes; ``string`` → str; arrays and tuples → tuple.

Type and signature text is configuration, not calldata: bad text raises
:class:`SignatureSyntaxError`, a bad argument path :class:`ArgumentPathError`, a value that
cannot be encoded :class:`AbiEncodeError` (all :class:`ValueError`).

The package's modules follow the codec's seams: :mod:`.errors` (the refusals),
:mod:`.decoding` and :mod:`.encoding` (readers and encoders compiled once per type, sharing
:mod:`.layout`), :mod:`.codec` (:class:`TupleCodec`), :mod:`.signatures` (functions, selectors,
calldata) and :mod:`.paths` (argument paths). The types and their grammar live one layer down
in :mod:`sessionward.crypto.solidity_types` and the JSON form of values in
:mod:`sessionward.crypto.abi_json`, shared with the EIP-712 hasher and the SDK; they are
re-exported here so that this package stays the one import for ABI work.
"""

from __future__ import annotations

from sessionward.crypto.abi_json import AbiJsonError, value_from_json, value_to_json
from sessionward.crypto.solidity_types import (
    ADDRESS,
    BOOL,
    BYTES,
    MAX_FIXED_ARRAY_LENGTH,
    MAX_TYPE_DEPTH,
    STRING,
    UINT256,
    WORD,
    AbiType,
    AddressType,
    ArrayType,
    BoolType,
    BytesType,
    FixedBytesType,
    IntType,
    Param,
    SignatureSyntaxError,
    StringType,
    TupleType,
    UintType,
    parse_type,
)

from .codec import TupleCodec, decode_tuple, encode_tuple
from .errors import (
    AbiEncodeError,
    ArgumentIndexOutOfRange,
    ArgumentPathError,
    CalldataError,
    CalldataMalformed,
)
from .paths import (
    ArgumentPath,
    compile_argument_path,
    resolve_argument,
    static_word_offset,
    validate_argument_path,
)
from .signatures import (
    FunctionSignature,
    decode_arguments,
    encode_arguments,
    encode_call,
    encode_word,
    parse_signature,
)

__all__ = [
    "ADDRESS",
    "BOOL",
    "BYTES",
    "MAX_FIXED_ARRAY_LENGTH",
    "MAX_TYPE_DEPTH",
    "STRING",
    "UINT256",
    "WORD",
    "AbiEncodeError",
    "AbiJsonError",
    "AbiType",
    "AddressType",
    "ArgumentIndexOutOfRange",
    "ArgumentPath",
    "ArgumentPathError",
    "ArrayType",
    "BoolType",
    "BytesType",
    "CalldataError",
    "CalldataMalformed",
    "FixedBytesType",
    "FunctionSignature",
    "IntType",
    "Param",
    "SignatureSyntaxError",
    "StringType",
    "TupleCodec",
    "TupleType",
    "UintType",
    "compile_argument_path",
    "decode_arguments",
    "decode_tuple",
    "encode_arguments",
    "encode_call",
    "encode_tuple",
    "encode_word",
    "parse_signature",
    "parse_type",
    "resolve_argument",
    "static_word_offset",
    "validate_argument_path",
    "value_from_json",
    "value_to_json",
]
