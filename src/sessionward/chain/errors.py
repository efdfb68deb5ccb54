"""Typed failures of talking to an EVM chain.

Two families, kept apart on purpose:

- :class:`ChainError` and its subclasses are *infrastructure* outcomes: the node is unreachable,
  answered something malformed, refused a transaction, or an ``eth_call`` reverted. They are
  facts about the chain, not policy verdicts, so they do not carry a :class:`ReasonCode`.
- :class:`FeeCapExceeded` is a *refusal* by SessionWard itself (the relayer will not pay that
  much): it is both a :class:`ChainError` and a :class:`SessionWardError` carrying
  ``FEE_LIMIT_EXCEEDED``, so the service can report it like any other denial.

Messages never contain key material; they may contain addresses, hashes and node messages.
"""

from __future__ import annotations

from sessionward.reasons import ReasonCode, SessionWardError

__all__ = [
    "AlreadyKnown",
    "ChainError",
    "ChainUnavailable",
    "ExecutionReverted",
    "FeeCapExceeded",
    "FeeTooLow",
    "GasLimitExceeded",
    "InsufficientFunds",
    "IntrinsicGasTooLow",
    "InvalidTransaction",
    "NonceTooLow",
    "ReplacementUnderpriced",
    "RpcError",
    "RpcProtocolError",
    "TransactionRejected",
    "UnknownChain",
]


class ChainError(Exception):
    """Base of every failure raised by :mod:`sessionward.chain`."""


class ChainUnavailable(ChainError):
    """The node could not be reached or did not answer in time (transport failure).

    Nothing can be concluded about the request: a ``send`` may or may not have arrived.
    """


class RpcProtocolError(ChainError):
    """The node answered, but not with a valid JSON-RPC 2.0 response for our request
    (wrong id, missing result, malformed hex quantity, ...)."""


class UnknownChain(ChainError):
    """A chain id this component has no connection for."""


class RpcError(ChainError):
    """A JSON-RPC error object (or its embedded-chain equivalent): ``code`` and ``message``
    as the node sent them, ``data`` the raw ``error.data`` bytes when it was hex."""

    def __init__(self, code: int, message: str, data: bytes | None = None) -> None:
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class ExecutionReverted(RpcError):
    """``eth_call`` / ``eth_estimateGas`` execution failed: a revert, or an exceptional halt
    (invalid opcode, out of gas). ``reason`` is the decoded ``Error(string)`` text (or
    ``Panic(0x..)``) when revert data carried one, else ``None``."""

    def __init__(
        self, reason: str | None, data: bytes = b"", *, code: int = 3, message: str = ""
    ) -> None:
        text = message or (f"execution reverted: {reason}" if reason else "execution reverted")
        super().__init__(code, text, data)
        self.reason = reason


class TransactionRejected(RpcError):
    """The node refused a raw transaction at submission: it is not in any pool."""


class NonceTooLow(TransactionRejected):
    """The transaction's nonce is below the sender's mined nonce (already used)."""


class AlreadyKnown(TransactionRejected):
    """The exact transaction is already in the node's pool."""


class ReplacementUnderpriced(TransactionRejected):
    """Another transaction with the same sender and nonce is pooled, and this one does not
    pay enough more to replace it."""


class FeeTooLow(TransactionRejected):
    """``maxFeePerGas`` is below the block base fee (or the node's minimum)."""


class InsufficientFunds(TransactionRejected):
    """The sender cannot pay ``gas × maxFeePerGas + value``."""


class IntrinsicGasTooLow(TransactionRejected):
    """The gas limit is below the transaction's intrinsic cost."""


class GasLimitExceeded(TransactionRejected):
    """The gas limit is above the block gas limit."""


class InvalidTransaction(TransactionRejected):
    """Any other refusal: wrong chain id, bad signature, malformed encoding, ..."""


class FeeCapExceeded(ChainError, SessionWardError):
    """SessionWard refuses to pay: ``gas × maxFeePerGas`` would exceed the fee cap.

    Carries ``FEE_LIMIT_EXCEEDED``; nothing was signed or sent.
    """

    def __init__(self, message: str, *, required_wei: int, cap_wei: int) -> None:
        SessionWardError.__init__(self, ReasonCode.FEE_LIMIT_EXCEEDED, message)
        self.required_wei = required_wei
        self.cap_wei = cap_wei
