"""Session calls as ERC-4337 UserOperations through a real bundler (issue 17, "Measured").

Everything is real: anvil (npm ``@foundry-rs/anvil``), the canonical EntryPoint v0.7 (npm
``@account-abstraction/contracts``), the alto bundler (npm ``@pimlico/alto``, its own ``node``
process) and the service itself (``Waas`` on the anvil network with ``bundler_url`` and
``entry_point``, its dispatcher loop running as ``sessionward serve`` runs it). Every process
started here is stopped by its PID.

1. **Execute → receipt**: a trial is a Prepare + ``Execute(submission='userop')`` of a 1-USDX
   swap (in process, no HTTP), then the store is read every 2 ms until the call is final.
   Reported: Execute called → call final, p50 and p99, with anvil mining a block every second
   (trials start at random moments, so a call waits half a block on average) and with
   automine.
2. **Operations per second through the bundler**: ``--wallets`` accounts each with a session;
   each account's calls are planned and signed (``UserOperationPath``, the service's own
   path; the session key signs in Python here, the vault is not what is measured), then all
   are handed to the bundler at once; reported is operations sent → all mined (automine).

``--account``: ``session-account`` (SessionWard's SessionAccount, the default),
``oz-module`` (OpenZeppelin's ``AccountERC7579`` compiled from npm, with SessionWard's ERC-7579
module installed and registered as an ``erc7579`` wallet: the module validates each
operation) or ``account7579`` (SessionWard's SessionAccount7579, the module installed by its
factory).

The set-up code is the test suite's (tests/erc4337, tests/erc7579, tests/networks and
tests/module_wallets), so the bench measures exactly what the tests check.

Run: ``.venv/bin/python bench/user_operations.py [--account oz-module] [--trials 30] [--ops 64]
[--wallets 8]``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / room) for room in ("", "erc4337", "erc7579", "module_wallets")]

from alto_bundler import funded  # noqa: E402
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, Key, make_stage, transfer_call  # noqa: E402
from erc4337_support import execution as execution_of  # noqa: E402
from module_support import ModuleWallet, deploy_module  # noqa: E402
from module_wallet_support import ModuleWorld  # noqa: E402

import anvil_node  # noqa: E402
from networks.networks_support import Networks, Session  # noqa: E402
from sessionward.chain.bundler import BundlerClient  # noqa: E402
from sessionward.chain.contracts import transact  # noqa: E402
from sessionward.chain.rpc import RpcChain  # noqa: E402
from sessionward.crypto import typed_data  # noqa: E402
from sessionward.service.config import NetworkSettings  # noqa: E402
from sessionward.service.onchain import (  # noqa: E402
    AccountCalls,
    AccountSessions,
    ModuleSessions,
    OnchainSessions,
)
from sessionward.service.user_operations import UserOperationPath  # noqa: E402

CHAIN_ID = 31337
USDX = 10**6
ACCOUNTS = ("session-account", "oz-module", "account7579")


@dataclass(frozen=True)
class Stack:
    """anvil with the EntryPoint and the demo world, and alto on it."""

    rpc_url: str
    bundler_url: str
    stage: Any


@contextmanager
def stack(block_time: int | None) -> Iterator[Stack]:
    with anvil_node.running(CHAIN_ID, block_time=block_time) as rpc_url:
        chain = RpcChain(rpc_url, timeout=60)
        stage = make_stage(chain)
        with funded(chain, rpc_url) as alto:
            yield Stack(rpc_url, alto.url, stage)
        chain.close()


def settle_paced(world: World | BenchModuleWorld, rounds: int) -> None:
    """Step the dispatchers ``rounds`` times, four times as often with timed blocks, waiting
    ``pause_s`` between steps so that blocks get mined."""
    for _ in range(rounds * (4 if world.pause_s else 1)):
        for dispatcher in world.waas.dispatchers:
            dispatcher.step()
        time.sleep(world.pause_s)


class World(Networks):
    """The service on one network; with timed blocks, settling waits for them."""

    pause_s = 0.0
    fee_budget = 10**18

    def settle(self, rounds: int = 3) -> None:
        settle_paced(self, rounds)


def _rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_for(done: Callable[[], bool], *, timeout_s: float, every_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return time.perf_counter()
        time.sleep(every_s)
    raise TimeoutError("not final in time")


class BenchModuleWorld(ModuleWorld):
    """:class:`ModuleWorld` settling as :class:`World` does."""

    pause_s = 0.0
    fee_budget = 10**18

    def settle(self, rounds: int = 3) -> None:
        settle_paced(self, rounds)


def _session(world: World | BenchModuleWorld, account: str) -> Session:
    """A session of a new wallet of kind ``account``, funded for its operations."""
    backend = world.backend()
    if isinstance(world, BenchModuleWorld):
        made = world.module_account() if account == "oz-module" else world.account7579()
        wallet = world.register(made)
    else:
        wallet = world.wallet("local", secrets.token_bytes(32), secrets.token_bytes(32))
    world.chain("local").set_balance(wallet.account, ONE_ETH)
    return world.session(wallet, backend)


def execute_to_receipt(block_time: int | None, trials: int, account: str) -> list[float]:
    """Execute called → call final (ms), for ``trials`` userop calls through the service."""
    with stack(block_time) as s, tempfile.TemporaryDirectory() as data_dir:
        module = None if account == "session-account" else deploy_module(s.stage)
        network = NetworkSettings(
            "local",
            CHAIN_ID,
            rpc_url=s.rpc_url,
            entry_point=ENTRY_POINT_V07,
            bundler_url=s.bundler_url,
            session_module=None if module is None else module.address,
        )
        built = Networks.build(Path(data_dir), (network,), rate_limit_enabled=False)
        world: World | BenchModuleWorld = (
            World(built.waas) if module is None else BenchModuleWorld(built, s.stage, module)
        )
        world.pause_s = 0.0 if block_time is None else block_time / 3
        try:
            # Set up with the dispatcher stepped by hand, then let its loop run.
            session = _session(world, account)
            backend = session.backend
            world.waas.start()
            latencies = []
            for _ in range(trials + 2):  # two warm-up calls
                quote = world.prepare(session, 1)
                started = time.perf_counter()
                world.waas.transactions.execute(backend.caller, quote["txnId"], submission="userop")

                def final(txn_id: str = quote["txnId"]) -> bool:
                    record = world.rt.store.transactions.get(txn_id)
                    return record is not None and record.status in ("executed", "failed")

                mined = wait_for(final, timeout_s=60, every_s=0.002)
                record = world.rt.store.transactions.get(quote["txnId"])
                assert record is not None and record.status == "executed", record
                latencies.append((mined - started) * 1000)
                time.sleep(random.uniform(0, 0.2 if block_time is None else block_time))
            return latencies[2:]
        finally:
            world.close()


def _module_wallets(stage: Any, wallets: int, account: str) -> list[ModuleWallet]:
    """``wallets`` accounts of kind ``account`` with the module and an enabled session
    (USDX transfers, a fee budget), set up by their owners outside the service."""
    module = deploy_module(stage)
    made = []
    for _ in range(wallets):
        if account == "oz-module":
            from oz_account import deploy_oz_account

            wallet = ModuleWallet(stage, deploy_oz_account(stage), module, Key(), Key().address)
            wallet.install(1)
        else:
            from account7579_support import create_account7579

            wallet = ModuleWallet(
                stage, create_account7579(stage, module), module, Key(), Key().address
            )
        grant = wallet.grant(max_fee_wei=10**18)
        if account == "account7579":  # its ERC-1271 takes AccountMessage signatures
            digest = typed_data.grant_digest(stage.chain.chain_id, wallet.address, grant)
            data = wallet.enable_data(grant, wallet.account.erc1271_signature(digest))
            transact(stage.chain, stage.deployer, to=wallet.module_address, data=data)
        else:
            wallet.enable(grant)
        made.append(wallet)
    return made


def operations_per_second(ops: int, wallets: int, account: str) -> tuple[float, float]:
    """(operations/s, seconds) for ``ops`` session operations of ``wallets`` accounts, all
    handed to the bundler at once (automine)."""
    with stack(None) as s, BundlerClient(s.bundler_url, entry_point=ENTRY_POINT_V07) as bundler:
        stage = s.stage
        calls = AccountCalls()
        path = UserOperationPath(chain=stage.chain, bundler=bundler, calls=calls)
        usdx = stage.demo.token("USDX")
        # (address, session key, recipient, where its sessions live) per account
        holders: list[tuple[str, Key, str, OnchainSessions]] = []
        if account == "session-account":
            for wallet in (stage.new_wallet(fee_budget=10**18) for _ in range(wallets)):
                sessions = AccountSessions(calls, wallet.address)
                holders.append((wallet.address, wallet.session, wallet.recipient, sessions))
        else:
            for holder in _module_wallets(stage, wallets, account):
                sessions = ModuleSessions(calls, holder.address, holder.module_address)
                holders.append((holder.address, holder.session, holder.recipient, sessions))
        signed = []
        for i in range(ops):
            address, key, recipient, sessions = holders[i % wallets]
            mode, data = execution_of((transfer_call(usdx, recipient, USDX),))
            plan = path.plan(
                txn_id=f"txn_bench_{i}",
                account=address,
                session_key=key.address,
                mode=mode,
                execution=data,
                sponsored=False,
                now=stage.chain.block_timestamp(),
                sessions=sessions,
            )
            signed.append(plan.signed(key.sign(plan.digest)))
        started = time.perf_counter()
        hashes = [path.submit(op) for op in signed]
        pending = set(hashes)
        while pending:
            for op_hash in list(pending):
                receipt = path.outcome(op_hash)
                if receipt is not None:
                    assert receipt.success, receipt
                    pending.discard(op_hash)
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        return ops / seconds, seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--ops", type=int, default=64)
    parser.add_argument("--wallets", type=int, default=8)
    parser.add_argument("--account", choices=ACCOUNTS, default="session-account")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    print(f"# UserOperations through alto ({args.account}) — "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, python {platform.python_version()}")  # fmt: skip
    print("\n| anvil | trials | Execute->receipt p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for block_time in (1, None):
        latencies = execute_to_receipt(block_time, args.trials, args.account)
        label = "1 s blocks" if block_time else "automine"
        print(
            f"| {label} | {len(latencies)} | {statistics.median(latencies):.0f} | "
            f"{_rank(latencies, 0.99):.0f} | {max(latencies):.0f} |"
        )
    rate, seconds = operations_per_second(args.ops, args.wallets, args.account)
    print("\n| operations | accounts | seconds | operations/s |")
    print("|---|---|---|---|")
    print(f"| {args.ops} | {args.wallets} | {seconds:.2f} | {rate:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
