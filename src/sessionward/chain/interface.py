"""What SessionWard needs from an EVM chain: the :class:`Chain` protocol and its value types.

Two backends implement it with the same observable behaviour (the tests in ``tests/chain`` run
the same specifications on both): :class:`sessionward.chain.embedded.EmbeddedChain` (in-process,
titanoboa/py-evm) and :class:`sessionward.chain.rpc.RpcChain` (any JSON-RPC node; anvil in
tests).

Conventions:

- addresses are lower-case ``0x`` strings (any valid spelling is accepted as input);
- transaction hashes are lower-case ``0x`` hex strings of 32 bytes;
- amounts are ints in wei, gas in gas units;
- every method is one request to the node (one JSON-RPC round trip for :class:`RpcChain`),
  except where its docstring says otherwise;
- failures raise :class:`sessionward.chain.errors.ChainError` subclasses.

Transactions are built and signed in Python (:mod:`sessionward.chain.ethereum_transactions`) and handed
over as raw bytes; the chain never holds a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from sessionward.chain.ethereum_transactions import Authorization
from sessionward.crypto.secp256k1 import normalize_address

__all__ = [
    "BlockTag",
    "CallRequest",
    "Chain",
    "DevChain",
    "FeeSuggestion",
    "Log",
    "Receipt",
    "TransactionView",
]

BlockTag = Literal["latest", "pending"]


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A transaction to simulate (``eth_call``) or estimate (``eth_estimateGas``).

    ``sender`` ``None`` means the zero address; ``to`` ``None`` runs ``data`` as init code.
    ``authorization_list`` makes it a simulated EIP-7702 transaction.
    """

    to: str | None
    data: bytes = b""
    value: int = 0
    sender: str | None = None
    authorization_list: tuple[Authorization, ...] = ()

    def __post_init__(self) -> None:
        if self.to is not None:
            object.__setattr__(self, "to", normalize_address(self.to))
        if self.sender is not None:
            object.__setattr__(self, "sender", normalize_address(self.sender))
        if self.value < 0:
            raise ValueError("value must be non-negative")
        object.__setattr__(self, "authorization_list", tuple(self.authorization_list))


@dataclass(frozen=True, slots=True)
class FeeSuggestion:
    """EIP-1559 fee fields for the next block.

    ``max_fee_per_gas = 2 × base_fee + max_priority_fee_per_gas``: it stays valid through six
    consecutive full blocks of +12.5 % base-fee growth.
    """

    base_fee: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int

    @classmethod
    def from_base_fee(cls, base_fee: int, priority_fee: int) -> FeeSuggestion:
        return cls(base_fee, priority_fee, 2 * base_fee + priority_fee)


@dataclass(frozen=True, slots=True)
class Log:
    """An event log: emitting contract, topics (32 bytes each), data, index in its block."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of a mined transaction.

    ``succeeded`` is the EIP-658 status. For a failed transaction ``revert_data`` is the raw
    revert payload and ``revert_reason`` its decoded ``Error(string)`` text (``Panic(0x..)``
    for a panic) when the backend could obtain it; both are ``None`` otherwise.
    """

    tx_hash: str
    succeeded: bool
    gas_used: int
    effective_gas_price: int
    block_number: int
    sender: str
    to: str | None
    contract_address: str | None
    logs: tuple[Log, ...] = field(default=())
    revert_reason: str | None = None
    revert_data: bytes | None = None

    @property
    def fee_paid(self) -> int:
        """Wei the sender paid for gas."""
        return self.gas_used * self.effective_gas_price


@dataclass(frozen=True, slots=True)
class TransactionView:
    """A transaction the node knows: pending (``block_number is None``) or mined."""

    tx_hash: str
    sender: str
    nonce: int
    block_number: int | None


@runtime_checkable
class Chain(Protocol):
    """An EVM chain as SessionWard's service and relayer use it."""

    @property
    def chain_id(self) -> int:
        """The chain id (fetched once, then cached)."""
        ...

    def block_number(self) -> int:
        """Number of the latest block."""
        ...

    def block_timestamp(self) -> int:
        """Unix timestamp of the latest block."""
        ...

    def get_balance(self, address: str) -> int:
        """Balance at the latest block, in wei."""
        ...

    def get_code(self, address: str) -> bytes:
        """Code at the latest block (an EIP-7702 delegated EOA shows ``0xef0100 ‖ target``)."""
        ...

    def get_transaction_count(self, address: str, block: BlockTag = "pending") -> int:
        """The account nonce: mined (``latest``) or including the node's executable pool
        (``pending``; transactions behind a nonce gap are not counted)."""
        ...

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> bytes:
        """``eth_call`` at the latest block: the return data, or :class:`ExecutionReverted`."""
        ...

    def simulate(self, request: CallRequest) -> bytes:
        """:meth:`call` for a full :class:`CallRequest` (EIP-7702 authorizations included)."""
        ...

    def estimate_gas(self, request: CallRequest) -> int:
        """Gas limit that makes ``request`` succeed, or :class:`ExecutionReverted`."""
        ...

    def gas_price(self) -> int:
        """The node's legacy gas price suggestion (``eth_gasPrice``)."""
        ...

    def max_fee(self) -> FeeSuggestion:
        """EIP-1559 fee suggestion for the next block (one request)."""
        ...

    def send_raw_transaction(self, raw: bytes) -> str:
        """Submit a signed transaction; returns its hash. Raises a
        :class:`TransactionRejected` subclass if the node refuses it. Never estimates."""
        ...

    def get_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt once mined, else ``None``. For a failed transaction the backend may
        spend one extra request to obtain the revert reason."""
        ...

    def get_transaction(self, tx_hash: str) -> TransactionView | None:
        """The transaction if the node knows it (pooled or mined), else ``None``."""
        ...


@runtime_checkable
class DevChain(Chain, Protocol):
    """Test and demo helpers both backends offer (anvil's ``anvil_*``/``evm_*`` methods)."""

    def set_balance(self, address: str, wei: int) -> None:
        """Set an account's balance."""
        ...

    def set_code(self, address: str, code: bytes) -> None:
        """Put ``code`` (runtime code, as a deployment would leave it) at ``address``; the
        account's balance, nonce and storage are kept."""
        ...

    def mine(self) -> None:
        """Mine one (empty) block."""
        ...

    def time_travel(self, seconds: int) -> None:
        """Move the clock forward by ``seconds`` and mine a block carrying the new time."""
        ...
