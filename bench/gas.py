"""Gas of the SessionAccount's main paths, as mined transactions (receipt ``gasUsed``: intrinsic
gas, calldata, refunds and the EIP-7623 floor included).

Paths, in steady state (every slot a path writes already holds a non-zero value, as after the
first use): the owner's ERC-20 transfer through ``execute`` (single and batch of 3), the same
transfer relayed for a session (single, batch of 3, and under a cumulative token limit),
enabling a 3-permission session (2 argument rules), and revoking a session (by the owner and by
the grant's revoker), and the same transfer as an ERC-4337 user operation through the real
EntryPoint v0.7 (npm ``@account-abstraction/contracts`` 0.7.0; a ``handleOps`` of one operation
sent by the bundler, the account's deposit covering the prefund), signed by the owner and by a
session key (whose validation also checks the scope and charges the fee budget). Goals: a
session call at most the owner's equivalent + 25,000; a token-limited transfer at most the
owner's transfer + 30,000; a revocation at most 30,000; a session user operation at most the
owner's + 30,000. Without the npm packages the user-operation paths are skipped.

Measured on the in-process chain (``EmbeddedChain``) and, if anvil is installed from npm,
on anvil (started on 127.0.0.1 with ``--hardfork prague``, stopped by its PID).

Run: ``.venv/bin/python bench/gas.py`` (a few seconds; prints markdown tables; exit status 1 if a
goal is missed).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sessionward.chain.contracts import ContractArtifact, DeployedContract, transact
from sessionward.chain.demo import DemoDeployment, demo_contract, deploy_demo
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import DevChain, Receipt
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import (
    PackedUserOperation,
    grant_struct,
    owner_user_op_signature,
    pack_uint128_pair,
    session_user_op_signature,
    user_op_hash,
)
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, personal_message_hash, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_single_execution,
    mode_batch,
    mode_single,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the tests' anvil launcher

import anvil_node  # noqa: E402

ENTRY_POINT_ARTIFACT: Final = (
    REPO_ROOT
    / "node_modules"
    / "@account-abstraction"
    / "contracts"
    / "artifacts"
    / "EntryPoint.json"
)
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
    "session UserOperation (handleOps)": ("owner UserOperation (handleOps)", 30_000),
}
# Gas fields of the measured user operations (the fee fields come from the chain).
OP_VERIFICATION_GAS: Final = 300_000
OP_CALL_GAS: Final = 200_000
OP_PRE_VERIFICATION_GAS: Final = 60_000


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


def _entry_point_artifact() -> ContractArtifact | None:
    """The EntryPoint v0.7 build of the npm package, or None when it is not installed."""
    if not ENTRY_POINT_ARTIFACT.is_file():
        return None
    data = json.loads(ENTRY_POINT_ARTIFACT.read_text())
    return ContractArtifact(
        name="EntryPoint",
        abi=tuple(data["abi"]),
        initcode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        runtime=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
    )


class _Bench:
    """One account on one chain and the transactions whose receipts are measured."""

    def __init__(self, chain: DevChain) -> None:
        self.chain = chain
        self.deployer = LocalTransactionSigner(_Key.named("deployer").secret)
        self.relayer = LocalTransactionSigner(_Key.named("relayer").secret)
        chain.set_balance(self.deployer.address, 10**21)
        self.entry_point_code = _entry_point_artifact()
        self.entry_point = ZERO_ADDRESS
        if self.entry_point_code is not None:
            # Gas does not depend on the EntryPoint's address: a plain CREATE will do.
            receipt = transact(chain, self.deployer, to=None, data=self.entry_point_code.initcode)
            assert receipt.contract_address is not None
            self.entry_point = receipt.contract_address
        self.demo: DemoDeployment = deploy_demo(
            chain,
            deployer=self.deployer,
            relayer=self.relayer.address,
            entry_point=self.entry_point,
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
        max_fee_wei: int = 0,
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
                "maxFeeWei": max_fee_wei,
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

    def user_op(self, call_data: bytes, signer: _Key, session: bool) -> PackedUserOperation:
        """A user operation of the account signed by ``signer`` (the owner, or a session key
        when ``session``), at the EntryPoint's next nonce and the chain's fee suggestion."""
        assert self.entry_point_code is not None
        entry_point = DeployedContract(self.chain, self.entry_point, self.entry_point_code)
        nonce = entry_point.call_one("getNonce", self.account, 0)
        assert isinstance(nonce, int)
        fees = self.chain.max_fee()
        op = PackedUserOperation(
            sender=self.account,
            nonce=nonce,
            init_code=b"",
            call_data=call_data,
            account_gas_limits=pack_uint128_pair(OP_VERIFICATION_GAS, OP_CALL_GAS),
            pre_verification_gas=OP_PRE_VERIFICATION_GAS,
            gas_fees=pack_uint128_pair(fees.max_priority_fee_per_gas, fees.max_fee_per_gas),
            paymaster_and_data=b"",
            signature=b"",
        )
        digest = personal_message_hash(user_op_hash(op, self.entry_point, self.chain.chain_id))
        signature = signer.sign(digest)
        envelope = (
            session_user_op_signature(signer.address, signature)
            if session
            else owner_user_op_signature(signature)
        )
        return op._replace(signature=envelope)

    def handle_op(self, op: PackedUserOperation) -> Receipt:
        """``handleOps([op], bundler)`` sent by the bundler (the relayer key); raises unless the
        operation ran (the EntryPoint does not revert when an operation's execution fails)."""
        assert self.entry_point_code is not None
        token = self.demo.bind(self.chain, "DemoToken", self.usdx)
        before = token.call_one("balanceOf", self.merchant)
        data = self.entry_point_code.encode("handleOps", [tuple(op)], self.relayer.address)
        receipt = transact(self.chain, self.relayer, to=self.entry_point, data=data, gas=TX_GAS)
        if not receipt.succeeded or token.call_one("balanceOf", self.merchant) == before:
            raise RuntimeError(f"measured user operation did not run: {receipt.revert_reason}")
        return receipt

    def deposit(self, amount: int) -> None:
        """Fund the account's EntryPoint deposit, so no operation sends a prefund."""
        assert self.entry_point_code is not None
        data = self.entry_point_code.encode("depositTo", self.account)
        transact(self.chain, self.deployer, to=self.entry_point, data=data, value=amount)


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
    if bench.entry_point_code is not None:
        results.update(measure_user_ops(bench, permissions[:1]))
    return results


def measure_user_ops(bench: _Bench, permissions: list[dict[str, Any]]) -> dict[str, int]:
    """Receipt gas of one ``handleOps`` carrying the owner's, then a session's, ERC-20
    transfer (steady state: each kind ran once before)."""
    results: dict[str, int] = {}
    bench.deposit(10**18)
    owner_call = bench.code.encode("execute", *bench.single())
    bench.handle_op(bench.user_op(owner_call, bench.owner, session=False))
    results["owner UserOperation (handleOps)"] = bench.handle_op(
        bench.user_op(owner_call, bench.owner, session=False)
    ).gas_used
    key = _Key.named("user-operation session")
    bench.enable(bench.grant(key, permissions, [], max_fee_wei=10**18))
    session_call = bench.code.encode("execute_session_op", key.address, *bench.single())
    bench.handle_op(bench.user_op(session_call, key, session=True))
    results["session UserOperation (handleOps)"] = bench.handle_op(
        bench.user_op(session_call, key, session=True)
    ).gas_used
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


@contextmanager
def anvil() -> Iterator[RpcChain]:
    """Our own anvil on a free local port, started and stopped by its own PID as the tests
    start it (``tests/anvil_node.py``: the binary, not npm's wrapper)."""
    with anvil_node.running(CHAIN_ID) as url, RpcChain(url) as chain:
        yield chain


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
    if anvil_node.ANVIL_BIN.exists():

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
