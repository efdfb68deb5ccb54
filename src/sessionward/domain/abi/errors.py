"""The refusals of the ABI codec, and the internal faults that become them.

Decoding refuses calldata with :class:`CalldataMalformed` (a :class:`SessionWardError`, it
answers a request); bad configuration text and values raise ``ValueError`` subclasses.
:class:`Fault` and :class:`EncodeFault` only travel inside the package: they collect the
argument path while they propagate and become the public errors at its boundary.
"""

from __future__ import annotations

from sessionward.reasons import ReasonCode, SessionWardError

__all__ = [
    "AbiEncodeError",
    "ArgumentIndexOutOfRange",
    "ArgumentPathError",
    "CalldataError",
    "CalldataMalformed",
    "EncodeFault",
    "Fault",
]


class CalldataError(SessionWardError):
    """Base of every refusal of the *shape* of calldata (malformed, empty batch, call type…)."""


class CalldataMalformed(CalldataError):
    """Calldata that is not the canonical encoding of what it claims to be.

    The message names what was wrong and where (byte position and argument path).
    """

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.CALLDATA_MALFORMED, message)


class ArgumentPathError(ValueError):
    """An argument path that does not name anything in a signature."""


class ArgumentIndexOutOfRange(ArgumentPathError):
    """A valid path whose dynamic-array index is past the decoded array's length."""


class AbiEncodeError(ValueError):
    """A value that does not fit the ABI type it is to be encoded as."""


class Fault(Exception):
    """Internal decoding failure; becomes :class:`CalldataMalformed` at the public boundary.

    ``path`` collects argument-path segments innermost first while the fault propagates out.
    """

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
        self.path: list[str] = []

    def describe(self, what: str) -> str:
        where = f"at byte {self.position}"
        if self.path:
            where += f" (in {''.join(reversed(self.path))})"
        return f"{what}: {self.reason} {where}"


class EncodeFault(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []
