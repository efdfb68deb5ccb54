"""Plain helpers for the chain tests: build, sign and send transactions by hand."""

from __future__ import annotations

from sessionward.chain.interface import Chain
from sessionward.chain.signer import TransactionSigner
from sessionward.chain.transactions import (
    Authorization,
    Eip1559Transaction,
    SetCodeTransaction,
    UnsignedTransaction,
)

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
