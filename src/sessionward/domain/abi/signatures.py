"""Function signatures: parsing, selectors, and the calldata of a call."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.solidity_types import (
    AbiType,
    Param,
    SignatureSyntaxError,
    TupleType,
    is_identifier,
    parse_parameters,
)

from .codec import TupleCodec
from .encoding import encoder
from .errors import AbiEncodeError, EncodeFault

__all__ = [
    "FunctionSignature",
    "decode_arguments",
    "encode_arguments",
    "encode_call",
    "encode_word",
    "parse_signature",
]


@dataclass(frozen=True, slots=True)
class FunctionSignature:
    """A function's name and parameters; ``canonical`` and ``selector`` are derived from them.

    Create it once (usually with :func:`parse_signature`) and reuse it: the argument codec is
    compiled at construction.
    """

    name: str
    params: tuple[Param, ...]
    canonical: str = field(init=False)
    selector: bytes = field(init=False)
    _codec: TupleCodec = field(init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Cheap and consistent with equality (equal signatures share name and canonical text);
        # signatures key the argument-path cache, so hashing must not walk every parameter.
        return hash((self.name, self.canonical))

    def __post_init__(self) -> None:
        if not is_identifier(self.name):
            raise SignatureSyntaxError(f"{self.name!r} is not a function name")
        args = TupleType(self.params)
        canonical = self.name + args.canonical
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "selector", keccak256(canonical.encode("ascii"))[:4])
        object.__setattr__(self, "_codec", TupleCodec(args))

    @property
    def args_type(self) -> TupleType:
        """The parameters as one tuple type."""
        return TupleType(self.params)


@lru_cache(maxsize=1024)
def parse_signature(text: str) -> FunctionSignature:
    """Parse a human-readable signature, e.g. ``transfer(address to,uint256 amount)``.

    Argument names are optional (and must be unique per parameter list); an optional leading
    ``function`` keyword and data-location keywords (``memory``, ``calldata``) are tolerated.
    Raises :class:`SignatureSyntaxError` on bad text.
    """
    name, params = parse_parameters(text)
    return FunctionSignature(name, params)


def decode_arguments(signature: FunctionSignature, args: bytes) -> tuple[object, ...]:
    """Strictly decode the calldata after the 4-byte selector into one value per parameter.

    Raises only :class:`CalldataMalformed` (see the module contract for what is refused).
    """
    return signature._codec.decode(args, f"arguments of {signature.canonical}")


def encode_arguments(signature: FunctionSignature, values: object) -> bytes:
    """Canonical encoding of the arguments (without selector). Raises :class:`AbiEncodeError`."""
    return signature._codec.encode(values)


def encode_call(signature: FunctionSignature, values: object) -> bytes:
    """Full calldata: selector ‖ canonical arguments."""
    return signature.selector + signature._codec.encode(values)


def encode_word(abi_type: AbiType, value: object) -> bytes:
    """The 32-byte ABI word of a static elementary value (``address``, ``uintN``, ``bool``…)."""
    if not abi_type.is_word:
        raise AbiEncodeError(f"{abi_type.canonical} is not a one-word static type")
    try:
        return encoder(abi_type)(value)
    except EncodeFault as fault:
        raise AbiEncodeError(f"{abi_type.canonical}: {fault.reason}") from None
