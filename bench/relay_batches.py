"""Several session calls of one account in one transaction (issue 16, item 3): gas per call and
relayer transactions per call, for batches of 1 (a call alone) to 8 calls, measured in the same
run on the in-process chain.

One service in this process on embedded defaults (SQLite in a temporary directory, the
in-process chain), its relaying loop off: the bench drives the dispatcher itself. A wallet with
10,000 USDX and one swap session; per batch size N and round, N swaps of 1 USDX are prepared and
executed (all pending together), then dispatcher rounds run until every call is final. Reported
per N: the gas the relayer paid per call (the receipts of the transactions it sent for them,
divided by N), the transactions it sent, and the ratio against a call alone in the same run.

Run: ``.venv/bin/python bench/relay_batches.py [--rounds 5]`` (well under a minute).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as ex  # bench/ is not a package: its own directory on the path

SIZES = (1, 2, 4, 8)


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    from sessionward.chain.demo import fund_demo_wallet
    from sessionward.crypto.request_signature import ALG_SECP256K1
    from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
    from sessionward.domain.abi import encode_call, parse_signature
    from sessionward.service.callers import Caller, SelfSigned
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="batches per size")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    print(
        f"# relay_batches bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as data_dir:
        waas = Waas.from_settings(
            Settings(data_dir=Path(data_dir), run_relayer=False, rate_limit_enabled=False)
        )
        try:
            rt = waas.runtime

            def settle() -> None:
                for _ in range(4):
                    waas.dispatcher.step()

            owner_secret = secrets.token_bytes(32)
            wallet = waas.wallets.create(
                SelfSigned(ALG_SECP256K1, address_from_secret(owner_secret))
            )
            owner = Caller(wallet["ownerCredentialId"] or "", "owner", wallet["walletId"])
            credential = waas.credentials.register_backend(
                SelfSigned(ALG_SECP256K1, address_from_secret(secrets.token_bytes(32))),
                app_name="bench",
                app_url="https://bench.example",
                expires_at=rt.now() + 86_400,
            )
            settle()  # the account deployed
            fund_demo_wallet(
                rt.chain,
                rt.deployment,
                rt.deployer,
                owner_secret=owner_secret,
                account=wallet["account"],
                usdx=10_000,
            )
            pending = waas.sessions.authorize(
                owner,
                credential_id=credential["credentialId"],
                wallet_id=wallet["walletId"],
                envelope={
                    "capabilities": ["swap.execute"],
                    "maxValueUsd": 1_000_000,
                    "allowedDestinations": [rt.deployment.router],
                    "chainId": rt.chain_id,
                    "expiresAt": rt.now() + 3_600,
                },
            )
            waas.sessions.approve(
                owner,
                session_id=pending["sessionId"],
                signature=sign_digest(owner_secret, bytes.fromhex(pending["grantDigest"][2:])),
            )
            settle()  # the session installed
            caller = Caller(credential["credentialId"], "backend")
            swap = parse_signature(ex.SWAP_SIGNATURE)
            tokens = rt.deployment.tokens
            gas: dict[int, list[float]] = {n: [] for n in SIZES}
            sent: dict[int, list[int]] = {n: [] for n in SIZES}
            for _ in range(args.rounds):
                for n in SIZES:
                    txn_ids = []
                    for _call in range(n):
                        data = encode_call(
                            swap,
                            (ex.USDX, 0, (tokens["USDX"], tokens["WETHX"]), wallet["account"],
                             rt.now() + 3_600),
                        )  # fmt: skip
                        quote = waas.transactions.prepare(
                            caller,
                            wallet_id=wallet["walletId"],
                            session_id=pending["sessionId"],
                            to=rt.deployment.router,
                            value=0,
                            data=data,
                        )
                        waas.transactions.execute(caller, quote["txnId"])
                        txn_ids.append(quote["txnId"])
                    settle()
                    hashes = set()
                    for txn_id in txn_ids:
                        record = rt.store.transactions.get(txn_id)
                        assert record is not None and record.status == "executed", record
                        hashes.add(record.tx_hash)
                    used = 0
                    for tx_hash in hashes:
                        assert tx_hash is not None
                        receipt = rt.chain.get_receipt(tx_hash)
                        assert receipt is not None
                        used += receipt.gas_used
                    gas[n].append(used / n)
                    sent[n].append(len(hashes))
        finally:
            waas.stop()
    alone = statistics.median(gas[1])
    print(f"\n{args.rounds} rounds per size; swaps of 1 USDX through the demo router\n")
    print("| calls of one account pending together | transactions sent | gas per call "
          "(median) | against a call alone |")  # fmt: skip
    print("|---:|---:|---:|---:|")
    for n in SIZES:
        per_call = statistics.median(gas[n])
        print(
            f"| {n} | {statistics.median(sent[n]):.0f} | {per_call:,.0f} | {per_call / alone:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
