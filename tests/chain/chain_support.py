"""Plain helpers for the chain tests: build, sign and send transactions by hand."""

from __future__ import annotations

from sessionward.chain.errors import InvalidTransaction
from sessionward.chain.ethereum_transactions import (
    Authorization,
    Eip1559Transaction,
    SetCodeTransaction,
    UnsignedTransaction,
    transaction_hash,
)
from sessionward.chain.interface import Chain, FeeSuggestion
from sessionward.chain.signer import TransactionSigner

CHAIN_ID = 31337
ONE_ETH = 10**18


def unsigned_tx(
    chain: Chain,
    signer: TransactionSigner,
    *,
    to: str | None,
    data: bytes = b"",
    value: int = 0,
    gas: int = 150_000,
    nonce: int | None = None,
    max_fee: int | None = None,
    tip: int | None = None,
    chain_id: int | None = None,
    authorizations: tuple[Authorization, ...] = (),
) -> UnsignedTransaction:
    """A type-2 (or, with authorizations, type-4) transaction with the chain's suggested fees
    and the signer's pending nonce unless given."""
    fees = chain.max_fee()
    fields = {
        "chain_id": chain.chain_id if chain_id is None else chain_id,
        "nonce": chain.get_transaction_count(signer.address) if nonce is None else nonce,
        "max_priority_fee_per_gas": fees.max_priority_fee_per_gas if tip is None else tip,
        "max_fee_per_gas": fees.max_fee_per_gas if max_fee is None else max_fee,
        "gas": gas,
        "to": to,
        "value": value,
        "data": data,
    }
    if authorizations:
        return SetCodeTransaction(**fields, authorization_list=authorizations)  # type: ignore[arg-type]
    return Eip1559Transaction(**fields)  # type: ignore[arg-type]


def send(chain: Chain, signer: TransactionSigner, **fields: object) -> str:
    """Sign :func:`unsigned_tx` with ``signer`` and submit it; returns the hash."""
    raw = signer.sign_transaction(unsigned_tx(chain, signer, **fields))  # type: ignore[arg-type]
    return chain.send_raw_transaction(raw)


class SimulatedCrash(Exception):
    """The process 'dies' here: raised through the relayer, which must not catch it."""


class FaultyChain:
    """A :class:`Chain` proxy that injects faults into ``send_raw_transaction``.

    - ``crash_before_send``: raise :class:`SimulatedCrash` before the node sees the bytes;
    - ``crash_after_send``: forward, then raise (the answer is lost);
    - ``swallow``: hashes whose bytes are acknowledged but never forwarded (a lossy node);
    - ``reject``: hashes refused with ``InvalidTransaction``;
    - ``fees``: a fee suggestion to report instead of the node's.
    ``sent`` lists the hashes forwarded to the node.
    """

    def __init__(self, inner: Chain) -> None:
        self.inner = inner
        self.crash_before_send = False
        self.crash_after_send = False
        self.swallow: set[str] = set()
        self.swallow_all = False
        self.reject: set[str] = set()
        self.fees: FeeSuggestion | None = None
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    @property
    def chain_id(self) -> int:
        return self.inner.chain_id

    def max_fee(self) -> FeeSuggestion:
        return self.fees if self.fees is not None else self.inner.max_fee()

    def send_raw_transaction(self, raw: bytes) -> str:
        tx_hash = transaction_hash(raw)
        if self.crash_before_send:
            raise SimulatedCrash("before send")
        if tx_hash in self.reject:
            raise InvalidTransaction(-32003, "rejected by the test")
        if self.swallow_all or tx_hash in self.swallow:
            return tx_hash
        self.sent.append(self.inner.send_raw_transaction(raw))
        if self.crash_after_send:
            raise SimulatedCrash("after send")
        return tx_hash
