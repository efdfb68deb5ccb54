"""Gas of the SessionAccount's main paths, as mined transactions (receipt ``gasUsed``: intrinsic
gas, calldata, refunds and the EIP-7623 floor included).

Paths, in steady state (every slot a path writes already holds a non-zero value, as after the
first use): the owner's ERC-20 transfer through ``execute`` (single and batch of 3), the same
transfer relayed for a session (single, batch of 3, and under a cumulative token limit),
enabling a 3-permission session (2 argument rules), and revoking a session (by the owner and by
the grant's revoker). Goals: a session call at most the owner's equivalent + 25,000; a
token-limited transfer at most the owner's transfer + 30,000; a revocation at most 30,000.

Measured on the in-process chain (``EmbeddedChain``) and, if ``node_modules/.bin/anvil`` exists,
on anvil (started on 127.0.0.1 with ``--hardfork prague``, stopped by its PID).

Run: ``.venv/bin/python bench/gas.py`` (a few seconds; prints markdown tables; exit status 1 if a
goal is missed).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sessionward.chain.contracts import ContractArtifact, transact
from sessionward.chain.demo import DemoDeployment, demo_contract, deploy_demo
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import DevChain, Receipt
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_single_execution,
    mode_batch,
    mode_single,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
ANVIL_BIN: Final = REPO_ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID: Final = 31337
USDX: Final = 10**6
TX_GAS: Final = 3_000_000
TRANSFER: Final = parse_signature("transfer(address,uint256)")
APPROVE: Final = parse_signature("approve(address,uint256)")
SWAP: Final = parse_signature("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")
ZERO_ADDRESS: Final = "0x" + "00" * 20
DAY: Final = 86_400

# (path, goal as (the path it is compared with, allowance) or an absolute bound)
GOALS: Final[dict[str, tuple[str | None, int]]] = {
    "session single call": ("owner single call", 25_000),
    "session batch of 3": ("owner batch of 3", 25_000),
    "session ERC-20 transfer, token limit": ("owner single call", 30_000),
    "revoke (owner)": (None, 30_000),
    "revoke (grant's revoker)": (None, 30_000),
}


@dataclass(frozen=True)
class _Key:
    """A benchmark key derived from a public label: the same calldata (hence the same gas) on
    every run, whatever the chain."""

    secret: bytes

    @classmethod
    def named(cls, label: str) -> _Key:
        return cls(keccak256(b"sessionward-bench:" + label.encode()))

    @property
    def address(self) -> str:
        return address_from_secret(self.secret)

    def sign(self, digest: bytes) -> bytes:
        return sign_digest(self.secret, digest)


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _permission(target: str, function: str, recipient_rule: list[str] | None) -> dict[str, Any]:
    canonical = parse_signature(function).canonical
    rules = []
    if recipient_rule is not None:
        rules.append(
            {"arg": "0", "op": 4, "offset": 0, "values": [_word(a) for a in recipient_rule]}
        )
    return {
        "target": target,
        "selector": keccak256(canonical.encode())[:4],
        "function": canonical,
        "actionClass": "custom",
        "maxValuePerCall": 0,
        "rules": rules,
    }


class _Bench:
    """One account on one chain and the transactions whose receipts are measured."""

    def __init__(self, chain: DevChain) -> None:
        self.chain = chain
        self.deployer = LocalTransactionSigner(_Key.named("deployer").secret)
        self.relayer = LocalTransactionSigner(_Key.named("relayer").secret)
        self.demo: DemoDeployment = deploy_demo(
            chain, deployer=self.deployer, relayer=self.relayer.address
        )
        self.code: ContractArtifact = demo_contract("SessionAccount")
        self.owner = _Key.named("owner")
        chain.set_balance(self.owner.address, 10**19)
        factory = self.demo.bind(chain, "SessionAccountFactory", self.demo.factory)
        salt = b"\x00" * 31 + b"\x01"
        factory.transact(self.relayer, "create_account", self.owner.address, salt)
        address = factory.call_one("get_address", self.owner.address, salt)
        assert isinstance(address, str)
        self.account = address
        self.usdx = self.demo.token("USDX")
        token = self.demo.bind(chain, "DemoToken", self.usdx)
        token.transact(self.deployer, "mint", self.account, 1_000_000 * USDX)
        self.merchant = _Key.named("merchant").address
        self.grant_nonces = iter(range(1, 1_000))

    def _send(self, data: bytes, signer: LocalTransactionSigner) -> Receipt:
        receipt = transact(self.chain, signer, to=self.account, data=data, gas=TX_GAS, check=False)
        if not receipt.succeeded:
            raise RuntimeError(f"measured transaction reverted: {receipt.revert_reason}")
        return receipt

    def _transfer(self) -> Call:
        return Call(self.usdx, 0, encode_call(TRANSFER, (self.merchant, USDX)))

    def single(self) -> tuple[bytes, bytes]:
        return mode_single(), encode_single_execution(self._transfer())

    def batch3(self) -> tuple[bytes, bytes]:
        return mode_batch(), encode_batch_execution([self._transfer()] * 3)

    def owner_execute(self, execution: tuple[bytes, bytes]) -> Receipt:
        owner = LocalTransactionSigner(self.owner.secret)
        return self._send(self.code.encode("execute", *execution), owner)

    def grant(
        self,
        session: _Key,
        permissions: list[dict[str, Any]],
        token_limits: list[dict[str, Any]],
        revoker: str = ZERO_ADDRESS,
    ) -> dict[str, Any]:
        now = self.chain.block_timestamp()
        return {
            "account": self.account,
            "sessionKey": session.address,
            "credential": typed_data.credential_hash("cred-bench"),
            "nonce": next(self.grant_nonces),
            "epoch": 0,
            "revoker": revoker,
            "envelope": {
                "chainId": self.chain.chain_id,
                "validAfter": now - 60,
                "expiresAt": now + DAY,
                "capabilities": ["custom"],
                "permissions": permissions,
                "allowedDestinations": [],
                "valueLimit": 0,
                "valuePeriod": 0,
                "tokenLimits": token_limits,
                "maxValueUsd": "",
                "maxUses": 0,
                "rateCount": 0,
                "rateInterval": 0,
                "maxFeeWei": 0,
            },
        }

    def enable(self, grant: dict[str, Any]) -> Receipt:
        digest = typed_data.grant_digest(self.chain.chain_id, self.account, grant)
        data = self.code.encode("enable_session", grant_struct(grant), self.owner.sign(digest))
        return self._send(data, self.relayer)

    def session_call(self, session: _Key, execution: tuple[bytes, bytes], nonce: int) -> Receipt:
        mode, ec = execution
        deadline = self.chain.block_timestamp() + 600
        digest = typed_data.session_call_digest(
            self.chain.chain_id,
            self.account,
            session.address,
            typed_data.execution_hash(mode, ec),
            nonce,
            deadline,
        )
        data = self.code.encode(
            "execute_with_session", session.address, mode, ec, nonce, deadline, session.sign(digest)
        )
        return self._send(data, self.relayer)

    def revoke(self, session: _Key, signer: LocalTransactionSigner) -> Receipt:
        return self._send(self.code.encode("revoke_session", session.address), signer)


def measure(chain: DevChain) -> dict[str, int]:
    """Receipt gas of every path on ``chain`` (one fresh deployment)."""
    bench = _Bench(chain)
    results: dict[str, int] = {}
    recipients = [bench.merchant, bench.account]
    permissions = [
        _permission(bench.usdx, "transfer(address,uint256)", recipients),
        _permission(bench.usdx, "approve(address,uint256)", recipients),
        _permission(bench.demo.router, SWAP.canonical, None),
    ]
    bench.owner_execute(bench.single())  # the merchant's balance slot is non-zero from here on
    results["owner single call"] = bench.owner_execute(bench.single()).gas_used
    results["owner batch of 3"] = bench.owner_execute(bench.batch3()).gas_used

    plain, limited = _Key.named("session"), _Key.named("token-limited session")
    results["enable 3-permission session (2 rules)"] = bench.enable(
        bench.grant(plain, permissions, [])
    ).gas_used
    bench.session_call(plain, bench.single(), 0)  # the nonce bitmap word is non-zero from here on
    results["session single call"] = bench.session_call(plain, bench.single(), 1).gas_used
    results["session batch of 3"] = bench.session_call(plain, bench.batch3(), 2).gas_used

    token_limit = [{"token": bench.usdx, "limit": 1_000 * USDX, "period": DAY}]
    bench.enable(bench.grant(limited, permissions[:1], token_limit, revoker=bench.relayer.address))
    bench.session_call(limited, bench.single(), 0)
    results["session ERC-20 transfer, token limit"] = bench.session_call(
        limited, bench.single(), 1
    ).gas_used
    owner = LocalTransactionSigner(bench.owner.secret)
    results["revoke (owner)"] = bench.revoke(plain, owner).gas_used
    results["revoke (grant's revoker)"] = bench.revoke(limited, bench.relayer).gas_used
    return results


def goal_text(name: str, results: dict[str, int]) -> str:
    """The goal of ``name`` and how far the measurement is from it (``-`` when none)."""
    goal = GOALS.get(name)
    if goal is None:
        return ""
    base, allowance = goal
    if base is None:
        bound = allowance
        label = f"≤ {allowance:,}"
    else:
        bound = results[base] + allowance
        label = f"≤ {base} + {allowance:,} (+{results[name] - results[base]:,})"
    margin = bound - results[name]
    verdict = "met" if margin >= 0 else "MISSED"
    return f"{label}: {verdict}, margin {margin:,}"


def table(title: str, results: dict[str, int]) -> str:
    lines = [f"{title}", "", "| path | gas | goal |", "|---|---:|---|"]
    lines += [f"| {name} | {gas:,} | {goal_text(name, results)} |" for name, gas in results.items()]
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def anvil() -> Iterator[RpcChain]:
    """Our own anvil on a free local port, stopped by its PID when done."""
    port = _free_port()
    process = subprocess.Popen(
        [
            str(ANVIL_BIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--hardfork",
            "prague",
            "--chain-id",
            str(CHAIN_ID),
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    chain = RpcChain(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if chain.chain_id == CHAIN_ID:
                    break
            except Exception:  # not listening yet
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.1)
        yield chain
    finally:
        chain.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    runs: list[tuple[str, Callable[[], dict[str, int]]]] = [
        (
            "in-process chain (EmbeddedChain, py-evm Prague)",
            lambda: measure(EmbeddedChain(chain_id=CHAIN_ID)),
        )
    ]
    if ANVIL_BIN.exists():

        def on_anvil() -> dict[str, int]:
            with anvil() as chain:
                return measure(chain)

        runs.append(("anvil (--hardfork prague)", on_anvil))
    print(f"Gas, measured {datetime.now(UTC):%Y-%m-%d} on {machine()}\n")
    missed = False
    for title, run in runs:
        results = run()
        print(table(f"**{title}**", results) + "\n")
        missed |= any("MISSED" in goal_text(name, results) for name in results)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
