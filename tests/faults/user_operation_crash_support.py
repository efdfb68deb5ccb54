"""Helpers of the UserOperation crash tests: the ERC-4337 world on anvil (the canonical
EntryPoint v0.7 from npm, the alto bundler from npm), SessionWard in process over a data
directory it can be restarted on, and the check that the database and the chain agree after a
crash.

What the test knows of every call it made is a :class:`Call` in a :class:`Ledger`; what
:func:`assert_database_agrees_with_chain` checks, over every call of the ledger:

- the operation ran on chain at most once: its EntryPoint nonce key (one per call, the same in
  every plan of it) has sequence 0 (never ran) or 1 (ran);
- the database's TransactionStatus is the chain's: an operation that ran and succeeded is
  ``executed`` with its bundle's transaction hash, one that ran and reverted is ``failed``, a
  call that never committed is ``quoted`` with no signature and nothing ran;
- no signature exists for a plan that never committed: a plan no stored signature covers was
  never submitted and has no receipt at the bundler, and a signed call has exactly one plan its
  signature signs;
- nothing is spent twice or lost: no reservation held, no call left pending, the session's USD
  counter is the sum of its executed calls and the account's USDX moved by exactly that; every
  finished call has one outcome record in the audit stream, and the audit chain verifies.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select

# The ERC-4337 rooms' helpers (EntryPoint v0.7 from npm, alto, their chain id), re-exported
# for the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "erc4337"))

import faults_support
from alto_bundler import Alto as Alto
from alto_bundler import funded as funded
from erc4337_fixtures import CHAIN_ID as CHAIN_ID
from erc4337_support import ENTRY_POINT_V07, aa_artifact
from erc4337_support import deploy_entry_point as deploy_entry_point
from faults_support import statuses
from multinode_support import Party, ServiceNode

from networks.networks_support import Networks, Session
from sessionward.chain.bundler import BundlerClient
from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import demo_contract
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.chain.user_operations import UserOperation
from sessionward.crypto.secp256k1 import SignatureError, personal_message_hash, recover_signer
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call as AccountCall
from sessionward.domain.calldata import encode_execute, encode_single_execution, mode_single
from sessionward.domain.usage import USD
from sessionward.service.config import NetworkSettings, Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import build_runtime, wall_clock
from sessionward.service.user_operations import nonce_for
from sessionward.service.waas import Waas
from sessionward.store import Store
from sessionward.store.schema import reservations, transactions

USDX: Final = 10**6
"""One USDX in base units; the demo prices 1 USDX at 1 USD (micro-dollars in the counters)."""
FEE_BUDGET: Final = 10**17
"""The grants' ``maxFeeWei``: the account pays its own operations, within it."""
FINAL: Final = ("executed", "failed")
OUTCOME_KINDS: Final = ("session.call.executed", "session.call.failed")
SEQUENCE_MASK: Final = 2**64 - 1
TRANSFER: Final = parse_signature("transfer(address,uint256)")


@dataclass(frozen=True)
class Call:
    """One session call the test quoted."""

    txn_id: str
    session_id: str
    wallet_id: str
    account: str
    usdx: int
    ample: bool = True
    """The account holds enough USDX for every call the test makes of it: the call must
    execute. A call of a poorer account may be refused at planning (the bundler's estimate
    sees the swap revert) or revert on chain (a call mined before it took the USDX)."""


@dataclass
class Ledger:
    calls: dict[str, Call] = field(default_factory=dict)
    start_usdx: dict[str, int] = field(default_factory=dict)
    """account → its USDX before the ledger's first call."""
    start_usd: dict[str, int] = field(default_factory=dict)
    """session → its USD counter before the ledger's first call (absent: 0)."""

    def add(self, call: Call) -> None:
        self.calls[call.txn_id] = call


def usdx_of(chain: Chain, token: str, holder: str) -> int:
    value = DeployedContract(chain, token, demo_contract("DemoToken")).call_one("balanceOf", holder)
    assert isinstance(value, int)
    return value


def sequence_ran(chain: Chain, account: str, txn_id: str, plans: list[str]) -> int:
    """The sequence of the call's nonce key in the EntryPoint: how many operations with that
    key ran (0 or 1). The key is the plans' (``plans``: their operations' JSON; every plan of
    a call has the same), else the service's for the transaction."""
    keys = {UserOperation.from_rpc(json.loads(plan)).nonce >> 64 for plan in plans}
    assert len(keys) <= 1, (txn_id, keys)  # one nonce key per call, whatever was re-planned
    key = keys.pop() if keys else nonce_for(txn_id) >> 64
    entry_point = DeployedContract(chain, ENTRY_POINT_V07, aa_artifact("EntryPoint"))
    nonce = entry_point.call_one("getNonce", account, key)
    assert isinstance(nonce, int)
    return nonce & SEQUENCE_MASK


def _signed_plans(store: Store, txn_id: str, signature: bytes, session_key: str) -> list[str]:
    """The userOpHashes of the call's plans that ``signature`` signs by its session key."""
    signed = []
    for plan in store.user_operations.of_transaction(txn_id):
        digest = personal_message_hash(bytes.fromhex(plan.user_op_hash[2:]))
        try:
            if recover_signer(digest, signature) == session_key:
                signed.append(plan.user_op_hash)
        except SignatureError:
            continue
    return signed


def _assert_call_agrees(store: Store, chain: Chain, bundler: BundlerClient, call: Call) -> bool:
    """One call's row, plans and signature against the EntryPoint and the bundler; whether
    the chain executed it."""
    txn = store.transactions.get(call.txn_id)
    session = store.sessions.get(call.session_id)
    assert txn is not None and session is not None, call
    plans = store.user_operations.of_transaction(call.txn_id)
    ran = sequence_ran(chain, call.account, call.txn_id, [p.operation for p in plans])
    assert ran in (0, 1), (call, ran)  # at most once, whatever the crash
    signed = []
    if txn.signature is not None:
        signed = _signed_plans(store, call.txn_id, txn.signature, session.session_key_address)
        assert len(signed) == 1, (call, signed, plans)  # the signature is of one plan
        # Committed: the operation ran (here the bundler has no reason to refuse a signed
        # operation; its execution may revert).
        assert ran == 1 or txn.status == "pending", (call, txn.status, txn.failure)
    else:  # never committed (or refused at planning): nothing ran
        assert txn.status in ("quoted", "denied") and ran == 0, (call, txn.status, ran)
    # A plan no stored signature covers was never handed to the bundler, and never ran.
    for plan in plans:
        if plan.user_op_hash not in signed:
            assert plan.submitted_at is None, (call, plan)
            assert bundler.receipt(plan.user_op_hash) is None, (call, plan)
    receipt = bundler.receipt(signed[0]) if signed else None
    assert (receipt is not None) == (ran == 1), (call, receipt, ran)
    if txn.status in FINAL and receipt is not None:
        # Recorded as the chain decided, with the bundle's transaction.
        recorded = (txn.status, txn.failure)
        assert txn.status == ("executed" if receipt.success else "failed"), (
            call,
            recorded,
            receipt,
        )
        assert txn.tx_hash == receipt.transaction_hash, (call, txn.tx_hash, receipt)
        bundle = chain.get_receipt(receipt.transaction_hash)
        assert bundle is not None and bundle.succeeded, call
    elif txn.status == "executed":
        raise AssertionError(f"{call}: executed in the database, never ran on chain")
    if call.ample:
        assert txn.status == "executed", (call, txn.status, txn.failure)
    return receipt is not None and receipt.success


def assert_database_agrees_with_chain(
    store: Store, chain: Chain, bundler: BundlerClient, token: str, ledger: Ledger
) -> None:
    """The crash invariants over every call of ``ledger``, every call driven to its end
    (see the module docstring)."""
    executed = [
        call for call in ledger.calls.values() if _assert_call_agrees(store, chain, bundler, call)
    ]
    # No call left pending, no reservation held by any of them.
    ours = list(ledger.calls)
    with store.db.reading() as conn:
        held = conn.execute(
            select(func.count())
            .select_from(
                transactions.join(reservations, reservations.c.id == transactions.c.reservation_id)
            )
            .where(transactions.c.id.in_(ours), reservations.c.status == "held")
        ).scalar_one()
        pending = conn.execute(
            select(func.count())
            .select_from(transactions)
            .where(transactions.c.id.in_(ours), transactions.c.status == "pending")
        ).scalar_one()
    assert (held, pending) == (0, 0)
    # Nothing spent twice, nothing lost: the session's counter and the account's USDX moved
    # by exactly what the chain executed.
    for session_id in {c.session_id for c in ledger.calls.values()}:
        counters = store.budget.usage_of(session_id).counters
        usd = counters[USD].amount if USD in counters else 0
        moved = sum(c.usdx * USDX for c in executed if c.session_id == session_id)
        assert usd - ledger.start_usd.get(session_id, 0) == moved, session_id
    for account, start in ledger.start_usdx.items():
        moved = sum(c.usdx * USDX for c in executed if c.account == account)
        assert usdx_of(chain, token, account) == start - moved, account
    # One outcome record per finished call, and the audit chain verifies.
    for wallet_id in {c.wallet_id for c in ledger.calls.values()}:
        ours = [c.txn_id for c in ledger.calls.values() if c.wallet_id == wallet_id]
        done = sorted(t for t, s in statuses(store, ours).items() if s in FINAL)
        outcomes = sorted(
            str(r.payload["txn"]) for r in store.audit.records(wallet_id) if r.kind in OUTCOME_KINDS
        )
        assert [o for o in outcomes if o in ledger.calls] == done, wallet_id
    assert store.audit.verify().ok


# --- SessionWard in process, restartable ---------------------------------------------------


class UserOperationWorld(Networks):
    """The service on one network, ``local``, with a bundler: every grant gives the account a
    fee budget (it pays its own operations) and a USD cap far above the tests' calls."""

    def settle(self, rounds: int = 6) -> None:
        """More rounds than the default: the bundler shares the node (and the machine)."""
        super().settle(rounds)

    def envelope(self, network: str) -> dict[str, Any]:
        envelope = super().envelope(network)
        envelope.update(maxFeeWei=str(FEE_BUDGET), maxValueUsd=1_000_000)
        return envelope


class InProcess:
    """SessionWard in process over one data directory. :meth:`restart` abandons the running
    service (whatever it held in memory: the relayer's state, the dispatcher's) and builds a
    new one over the same database, vault and keys, as a new process would; its dispatcher
    begins as the relaying loop begins a term (reconcile, then the recovery pass)."""

    def __init__(
        self,
        data_dir: Path,
        network: NetworkSettings,
        chain: DevChain,
        *,
        database_url: str | None = None,
        database_schema: str | None = None,
    ) -> None:
        """``database_url``: PostgreSQL (in ``database_schema``); none, SQLite in the data
        directory."""
        self.data_dir = data_dir
        self.network = network
        self.chain = chain
        self.database = {"database_url": database_url, "database_schema": database_schema}
        self.world = UserOperationWorld.build(data_dir, (network,), **self.database)
        self.ledger = Ledger()
        self.backend = self.world.backend()
        self.rich = self._session(usdx=1_000)
        self.poor = self._session(usdx=5)
        self.holds = {self.rich.wallet.account: 1_000, self.poor.wallet.account: 5}
        self.restarts = 0

    @property
    def store(self) -> Store:
        return self.world.rt.store

    @property
    def token(self) -> str:
        return self.world.rt.deployment.token("USDX")

    def _session(self, *, usdx: int) -> Session:
        """A wallet with ``usdx`` USDX, 1 ether for its operations, and one session."""
        world = self.world
        wallet = world.wallet("local", secrets.token_bytes(32), secrets.token_bytes(32))
        self.chain.set_balance(wallet.account, 10**18)
        surplus = 1_000 - usdx  # Networks.wallet mints 1,000
        if surplus:
            give = encode_call(TRANSFER, ("0x" + "ee" * 20, surplus * USDX))
            data = encode_execute(
                mode_single(), encode_single_execution(AccountCall(self.token, 0, give))
            )
            transact(
                self.chain,
                LocalTransactionSigner(wallet.owner_secret),
                to=wallet.account,
                data=data,
            )
        return world.session(wallet, self.backend)

    def begin(self) -> Ledger:
        """A new ledger (one per test, or per example of a property): every account minted
        back to what it held at first, and the starting balances and counters taken."""
        token = self.world.token("local", self.token)
        self.ledger = Ledger()
        for account, usdx in self.holds.items():
            missing = usdx * USDX - usdx_of(self.chain, self.token, account)
            if missing > 0:
                token.transact(self.world.rt.deployer, "mint", account, missing)
            self.ledger.start_usdx[account] = usdx * USDX
        for session in (self.rich, self.poor):
            counters = self.store.budget.usage_of(session.session_id).counters
            self.ledger.start_usd[session.session_id] = (
                counters[USD].amount if USD in counters else 0
            )
        return self.ledger

    def restart(self, *, later_s: int = 0) -> None:
        """``later_s``: the new service starts that many seconds after the crash (its clock
        runs that far ahead of the chain's and of the wall clock)."""
        self.restarts += 1
        self.world.close()
        settings = Settings(data_dir=self.data_dir, networks=(self.network,), **self.database)
        runtime = build_runtime(settings, clock=lambda: wall_clock() + later_s)
        self.world = UserOperationWorld(Waas(runtime))
        for dispatcher in self.world.waas.dispatchers:
            dispatcher.reconcile()
            dispatcher.recover()

    def quote(self, session: Session, usdx: int) -> Call:
        quote = self.world.prepare(session, usdx)
        wallet = session.wallet
        call = Call(
            str(quote["txnId"]),
            session.session_id,
            wallet.wallet_id,
            wallet.account,
            usdx,
            ample=session is self.rich,
        )
        self.ledger.add(call)
        return call

    def execute(self, call: Call) -> str:
        """Execute as a UserOperation: ``pending``, or the refusal's reason code."""
        try:
            view = self.world.waas.transactions.execute(
                self.backend.caller, call.txn_id, submission="userop"
            )
        except ServiceError as refused:
            # Shown with a failing test's output: a refusal's code alone hides its why.
            print(
                f"Execute {call.txn_id}: {refused.code.value} {refused.violations}", file=sys.stderr
            )
            return refused.code.value
        return str(view["status"])

    def drive(self, txn_ids: list[str], *, paused_rounds: int = 0, timeout_s: float = 30) -> None:
        """Dispatcher rounds until every call is final; the chain mines nothing during the
        first ``paused_rounds`` (anvil's automine off: the bundler's bundle waits). The
        caller turns automine back on if a round raises."""
        rounds, deadline = 0, time.monotonic() + timeout_s
        while not all(s not in ("pending", "quoted") for s in self.statuses(txn_ids)):
            if rounds == paused_rounds:
                automine(self.chain, on=True)
            if time.monotonic() > deadline:
                raise AssertionError(f"not final in {timeout_s} s: {self.statuses(txn_ids)}")
            self.world.settle(1)  # a crash armed here leaves the chain as it was
            rounds += 1
            time.sleep(0.02)
        automine(self.chain, on=True)

    def statuses(self, txn_ids: list[str]) -> list[str]:
        return list(statuses(self.store, txn_ids).values())

    def close(self) -> None:
        self.world.close()


def automine(chain: DevChain, *, on: bool) -> None:
    """anvil mines a block per transaction (on: and one block now, with whatever waited), or
    none until told (off)."""
    assert isinstance(chain, RpcChain)
    chain._rpc.request("evm_setAutomine", [on])
    if on:
        chain._rpc.request("evm_mine", [])


def bundle_in_pool(chain: DevChain, timeout_s: float = 10.0) -> bool:
    """Wait until the bundler has sent a bundle that waits unmined in anvil's pool (the chain
    stalls: automine off); False if none came in ``timeout_s``."""
    assert isinstance(chain, RpcChain)
    deadline = time.monotonic() + timeout_s
    while int(chain._rpc.request("txpool_status", [])["pending"], 16) == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- sessionward serve, killed at a step ---------------------------------------------------

FAULT_NODE: Final = Path(__file__).resolve().parent / "user_operation_fault_node.py"


def start_node(
    name: str, env: Mapping[str, str], log: Path, *, port: int, kill_at: str | None = None
) -> ServiceNode:
    """``sessionward serve`` on ``port`` through ``user_operation_fault_node.py``;
    ``kill_at`` arms that step (:data:`user_operation_fault_points.STEPS`) to ``kill -9`` it."""
    return faults_support.start_node(name, env, log, port=port, kill_at=kill_at, script=FAULT_NODE)


def grant_user_operation_session(party: Party, *, max_usd: int = 1_000_000) -> str:
    """A ``swap.execute`` session on the demo router whose grant gives the account a fee
    budget (it pays its own UserOperations), installed on chain."""
    return party.grant_swap_session(max_usd=max_usd, ttl_s=3600, fee_budget=FEE_BUDGET)
