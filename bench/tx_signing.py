"""Transaction signing and decoding: ``sessionward.chain.ethereum_transactions`` vs ``eth-account`` in the
same run (issue 15: keep a hand-written path only if a benchmark shows it matters).

Measures, per second on one core, for the relayer's two transaction shapes (a type-2 ERC-20
style call, and a type-4 EIP-7702 transaction with one authorization):

1. ``sign``: ``chain.transactions.sign_transaction`` (what the relayer's local signer runs);
2. ``eth-account``: ``Account.sign_transaction`` on the equivalent dict (checksummed addresses);
3. ``decode``: ``chain.transactions.decode_signed_transaction`` (what the embedded chain runs
   on every ``eth_sendRawTransaction``), and eth-account's ``TypedTransaction.from_bytes`` plus
   ``Account.recover_transaction`` for the same bytes.

The signed bytes of (1) and (2) are asserted equal before anything is timed.

Run: ``.venv/bin/python bench/tx_signing.py [--seconds 2]`` (about 6 x seconds in all).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from sessionward.chain.ethereum_transactions import (
    Eip1559Transaction,
    SetCodeTransaction,
    decode_signed_transaction,
    sign_authorization,
    sign_transaction,
)
from sessionward.crypto.secp256k1 import address_from_secret, to_checksum_address

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
AUTHORITY = bytes.fromhex("11" * 32)
TOKEN = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
DELEGATE = "0x5ce9454909639d2d17a3f753ce7d93fa0b9ab12e"
TRANSFER = bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex("33" * 20) + (10**6).to_bytes(32)


def _type2() -> Eip1559Transaction:
    return Eip1559Transaction(
        chain_id=8453,
        nonce=41,
        max_priority_fee_per_gas=10**6,
        max_fee_per_gas=2 * 10**9,
        gas=120_000,
        to=TOKEN,
        value=0,
        data=TRANSFER,
    )


def _type4() -> SetCodeTransaction:
    return SetCodeTransaction(
        chain_id=8453,
        nonce=42,
        max_priority_fee_per_gas=10**6,
        max_fee_per_gas=2 * 10**9,
        gas=300_000,
        to=address_from_secret(AUTHORITY),
        value=0,
        data=TRANSFER,
        authorization_list=(
            sign_authorization(AUTHORITY, chain_id=8453, address=DELEGATE, nonce=0),
        ),
    )


def _as_dict(tx: Eip1559Transaction | SetCodeTransaction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": tx.TYPE,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "gas": tx.gas,
        "to": to_checksum_address(tx.to) if tx.to else None,
        "value": tx.value,
        "data": tx.data,
        "accessList": [],
    }
    if isinstance(tx, SetCodeTransaction):
        doc["authorizationList"] = [
            {
                "chainId": a.chain_id,
                "address": to_checksum_address(a.address),
                "nonce": a.nonce,
                "yParity": a.y_parity,
                "r": a.r,
                "s": a.s,
            }
            for a in tx.authorization_list
        ]
    return doc


def per_second(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    seconds = parser.parse_args().seconds
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"# tx signing, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, load {load}"
    )
    print(
        f"{'shape':8} {'ours sign/s':>12} {'eth-account sign/s':>19} {'ratio':>6}"
        f" {'ours decode/s':>14} {'eth-account decode/s':>21} {'ratio':>6}"
    )
    for name, tx in (("type 2", _type2()), ("type 4", _type4())):
        document = _as_dict(tx)
        ours_raw = sign_transaction(tx, SECRET).raw
        theirs_raw = bytes(Account.sign_transaction(document, SECRET).raw_transaction)
        assert ours_raw == theirs_raw, f"{name}: the two signers disagree"

        def ours_sign(tx: Any = tx) -> object:
            return sign_transaction(tx, SECRET)

        def theirs_sign(document: dict[str, Any] = document) -> object:
            return Account.sign_transaction(document, SECRET)

        def ours_decode(raw: bytes = ours_raw) -> object:
            return decode_signed_transaction(raw)

        def theirs_decode(raw: bytes = ours_raw) -> object:
            TypedTransaction.from_bytes(HexBytes(raw))
            return Account.recover_transaction(raw)

        sign_ours, sign_theirs = per_second(ours_sign, seconds), per_second(theirs_sign, seconds)
        dec_ours, dec_theirs = per_second(ours_decode, seconds), per_second(theirs_decode, seconds)
        print(
            f"{name:8} {sign_ours:12.0f} {sign_theirs:19.0f} {sign_ours / sign_theirs:6.1f}"
            f" {dec_ours:14.0f} {dec_theirs:21.0f} {dec_ours / dec_theirs:6.1f}"
        )


if __name__ == "__main__":
    main()
