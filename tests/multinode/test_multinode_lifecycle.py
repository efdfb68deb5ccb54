"""Service and chain agree on every session across nodes, races and chain outages (issue 13):
two service nodes (two runtimes in this process, each with its own relayer and caches) on one
PostgreSQL schema, one anvil node mining a block every second (``--block-time 1``, state kept
in a file so the node can be stopped and started again by its PID).

- the approve/revoke race, with the relaying node's chain calls delayed, ends with the session
  removed on chain or verified never installed;
- the chain node stopped while approving (503, nothing written), relaying and revoking, then
  restarted: everything converges.

Each test asserts that the database and the chain agree and that the audit chain verifies.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from multinode_support import PG_URL
from sqlalchemy import create_engine, text

import anvil_node
from loopback_processes import listens_on
from sessionward.chain.contracts import transact
from sessionward.chain.errors import ChainError
from sessionward.chain.interface import Chain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import Settings
from sessionward.service.dispatcher import Dispatcher
from sessionward.service.errors import ServiceError
from sessionward.service.reconciler import cancel_queued
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas
from sessionward.store.database import normalize_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
import contextlib

from service_support import ManualClock, Wallet, World, make_ops_keys

pytestmark = [pytest.mark.postgres, pytest.mark.anvil]

ONCHAIN_NEVER, ONCHAIN_ACTIVE, ONCHAIN_REVOKED = 0, 1, 2
CHAIN_ID = 1


@dataclass
class RestartableAnvil:
    """anvil on a fixed loopback port with ``--block-time 1`` and its state in a file: stopped
    and started again by its PID, it comes back with the same chain."""

    port: int
    state: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(anvil_node.ANVIL_BIN), "--host", "127.0.0.1", "--port", str(self.port),
             "--hardfork", "prague", "--chain-id", str(CHAIN_ID), "--block-time", "1",
             "--state", str(self.state), "--state-interval", "1", "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if listens_on(self.process, self.port) and self.answers():
                return  # ours, not another worker's anvil on a port it took meanwhile
            time.sleep(0.1)
        raise RuntimeError("anvil did not start")

    def stop(self) -> None:
        if self.process is not None:
            anvil_node.stop(self.process)  # SIGTERM: anvil writes its state file
            self.process = None

    def answers(self) -> bool:
        try:
            reply = httpx.post(
                self.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
        except httpx.HTTPError:
            return False
        return reply.status_code == 200


class DelayedChain:
    """The relaying node's view of the chain with every transaction send delayed (a slow
    link): everything else goes straight to the node."""

    def __init__(self, inner: Chain, delay_s: float) -> None:
        self._inner = inner
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send_raw_transaction(self, raw: bytes) -> str:
        time.sleep(self.delay_s)
        return self._inner.send_raw_transaction(raw)


@dataclass
class Nodes:
    anvil: RestartableAnvil
    a: World
    """Node A: approves, and relays (its dispatcher, with delayed sends)."""
    b: World
    """Node B: another node on the same database (revokes)."""
    relaying: Dispatcher
    delayed: DelayedChain

    def step(self) -> None:
        with contextlib.suppress(ChainError):
            self.relaying.step()

    def until(self, done: Callable[[], bool], timeout_s: float = 40.0) -> float:
        """Step the relaying node until ``done``; the seconds it took."""
        started = time.monotonic()
        while not done():
            assert time.monotonic() - started < timeout_s, "did not converge"
            self.step()
            time.sleep(0.2)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    admin = create_engine(normalize_url(PG_URL))
    schema = f"sw_lifecycle_{uuid.uuid4().hex[:12]}"
    data_dir = tmp_path_factory.mktemp("lifecycle")
    anvil = RestartableAnvil(anvil_node.free_port(), data_dir / "anvil-state.json")
    anvil.start()
    ops = make_ops_keys()
    settings = Settings(
        data_dir=data_dir,
        database_url=PG_URL,
        database_schema=schema,
        rpc_url=anvil.url,
        ops_credentials=tuple(o.credential for o in ops),
    )
    clock_a, clock_b = ManualClock(), ManualClock()
    a = World(Waas(build_runtime(settings, clock=clock_a)), clock_a, ops)
    b = World(Waas(build_runtime(settings, clock=clock_b)), clock_b, ops)
    delayed = DelayedChain(a.rt.chain, 0.0)
    relaying = Dispatcher(a.process(delayed))  # type: ignore[arg-type]
    try:
        yield Nodes(anvil, a, b, relaying, delayed)
    finally:
        a.close()
        b.close()
        anvil.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def new_wallet(nodes: Nodes) -> Wallet:
    world = nodes.a
    secret = secrets.token_bytes(32)
    owner = address_from_secret(secret)
    view = world.waas.wallets.create(SelfSigned(ALG_SECP256K1, owner))
    caller = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
    wallet = Wallet(view["walletId"], view["account"], owner, secret, caller)
    nodes.until(lambda: bool(world.chain.get_code(wallet.account)))
    return wallet


@pytest.mark.parametrize("revoke_after_s", [0.0, 0.3, 1.5, 4.0])
def test_approve_on_one_node_revoke_on_another_ends_removed_or_never_installed(
    nodes: Nodes, revoke_after_s: float
) -> None:
    """Issue 13.1's race: node A approves and relays with every send delayed by a second; node
    B revokes at a chosen moment (before the install is signed, while it is being sent, after it
    is mined). Whatever the moment, the chain ends without the session."""
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    backend = a.backend()
    pending = a.authorize(wallet, backend)
    session_id = pending["sessionId"]
    nodes.delayed.delay_s = 1.0
    a.approve_pending(wallet, pending)
    relaying = threading.Thread(target=lambda: [nodes.step() for _ in range(8)])
    relaying.start()
    time.sleep(revoke_after_s)
    answer = b.revoke_as_owner(wallet, backend.credential_id, session_id)
    assert answer["revokedSessions"] == [session_id]
    relaying.join()
    nodes.delayed.delay_s = 0.0
    nodes.until(lambda: a.record(session_id).status == "revoked")
    assert a.assert_agrees(wallet, session_id) == "revoked"
    assert b.assert_agrees(wallet, session_id) == "revoked"
    # Which way the revocation reached the chain depends on the moment (both are exercised):
    # the queued install cancelled (never installed), or the removal queued behind it.
    [revoked] = [
        r for r in a.rt.store.audit.records(wallet.wallet_id) if r.kind == "session.revoked"
    ]
    onchain = a.onchain_status(wallet, pending["sessionKey"])
    if revoked.payload["onchain"] == "install cancelled":
        assert onchain == ONCHAIN_NEVER
    else:
        assert (revoked.payload["onchain"], onchain) == ("removal queued", ONCHAIN_REVOKED)
    print(f"revoke after {revoke_after_s}s: {revoked.payload['onchain']}")


def test_the_chain_node_stopped_while_approving_relaying_and_revoking_then_restarted(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    backend = a.backend()
    first = a.authorize(wallet, backend)
    second = a.authorize(wallet, backend)
    before = a.record(first["sessionId"])

    nodes.anvil.stop()
    try:
        # Approving: the chain cannot be asked; 503 and nothing written.
        with pytest.raises(ServiceError) as refused:
            a.approve_pending(wallet, first)
        assert (refused.value.kind, refused.value.code) == (
            "unavailable",
            ReasonCode.CHAIN_UNAVAILABLE,
        )
        assert a.record(first["sessionId"]) == before
        assert a.rt.relayer.job(f"enable:{first['sessionId']}") is None
    finally:
        nodes.anvil.start()

    a.approve_pending(wallet, first)
    a.approve_pending(wallet, second)
    nodes.anvil.stop()
    # Relaying while the node is down changes nothing for good; the sessions wait installing.
    for _ in range(3):
        nodes.step()
    assert a.record(first["sessionId"]).status == "installing"
    nodes.anvil.start()
    nodes.until(
        lambda: (
            a.record(first["sessionId"]).status == "active"
            and a.record(second["sessionId"]).status == "active"
        )
    )
    assert a.assert_agrees(wallet, first["sessionId"]) == "active"

    # Revoking while the node is down works at once (off chain); the removal follows.
    nodes.anvil.stop()
    try:
        answer = b.revoke_as_owner(wallet, backend.credential_id, first["sessionId"])
        assert answer["revokedSessions"] == [first["sessionId"]]
        for _ in range(3):
            nodes.step()
        assert b.record(first["sessionId"]).status == "revoking"
    finally:
        nodes.anvil.start()
    nodes.until(lambda: a.record(first["sessionId"]).status == "revoked")
    assert b.assert_agrees(wallet, first["sessionId"]) == "revoked"
    assert a.assert_agrees(wallet, second["sessionId"]) == "active"


def active_session(nodes: Nodes, wallet: Wallet) -> tuple[str, str, str]:
    """An approved session installed on chain: (session id, session key, credential id)."""
    a = nodes.a
    backend = a.backend()
    pending = a.authorize(wallet, backend)
    a.approve_pending(wallet, pending)
    nodes.until(lambda: a.record(pending["sessionId"]).status == "active")
    return pending["sessionId"], pending["sessionKey"], backend.credential_id


def test_an_outsider_installs_an_approved_grant_and_a_revoke_on_another_node_removes_it(
    nodes: Nodes,
) -> None:
    """The enable transaction is public: a stranger sends it first from a funded account of its
    own. The relaying node recognises the install from the account's view; the owner's revoke,
    answered by node B, ends with the session removed on chain."""
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    backend = a.backend()
    pending = a.authorize(wallet, backend)
    session_id = pending["sessionId"]
    a.approve_pending(wallet, pending)
    install = a.rt.relayer.job(f"enable:{session_id}")
    assert install is not None
    stranger = secrets.token_bytes(32)
    a.chain.set_balance(address_from_secret(stranger), 10**18)
    transact(a.chain, LocalTransactionSigner(stranger), to=wallet.account, data=install.data,
             gas=3_000_000)  # fmt: skip
    nodes.until(lambda: a.record(session_id).status == "active")
    installed = [
        r.payload["by"]
        for r in a.rt.store.audit.records(wallet.wallet_id)
        if r.kind == "session.installed"
    ]
    assert installed == ["other"]
    assert b.assert_agrees(wallet, session_id) == "active"
    b.revoke_as_owner(wallet, backend.credential_id, session_id)
    nodes.until(lambda: a.record(session_id).status == "revoked")
    assert b.assert_agrees(wallet, session_id) == "revoked"
    assert a.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_REVOKED


def test_a_revoked_session_whose_removal_was_lost_is_repaired_within_seconds(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    session_id, key, credential_id = active_session(nodes, wallet)
    b.revoke_as_owner(wallet, credential_id, session_id)
    removal = a.rt.relayer.job(f"revoke:{session_id}")
    assert removal is not None and cancel_queued(a.rt, removal, "lost")
    repair_s = nodes.until(lambda: a.record(session_id).status == "revoked")
    assert b.assert_agrees(wallet, session_id) == "revoked"
    assert a.onchain_status(wallet, key) == ONCHAIN_REVOKED
    assert a.rt.relayer.job(f"revoke:{session_id}#2") is not None
    assert repair_s < 15, repair_s  # one dispatcher round to notice, then a block or two


def test_a_global_freeze_from_one_node_refuses_new_authority_on_the_other(nodes: Nodes) -> None:
    """Issue 14.3 across nodes: ops freeze on node B; node A refuses AuthorizeRemoteAccess and
    ApproveSession (GLOBAL_FREEZE, nothing written), an install queued before is held, and the
    owner's revocation on node A still reaches the chain. Lifted by two ops: installs resume."""
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    live, live_key, live_credential = active_session(nodes, wallet)
    backend = a.backend()
    queued = a.authorize(wallet, backend)
    unapproved = a.authorize(wallet, backend)
    a.approve_pending(wallet, queued)
    b.waas.revocations.emergency_revoke(
        b.ops[0].caller, scope="global", target=None, reason="incident drill"
    )
    try:
        with pytest.raises(ServiceError) as refused:
            a.authorize(wallet, backend)
        assert refused.value.code is ReasonCode.GLOBAL_FREEZE
        before = a.record(unapproved["sessionId"])
        with pytest.raises(ServiceError) as refused:
            a.approve_pending(wallet, unapproved)
        assert refused.value.code is ReasonCode.GLOBAL_FREEZE
        assert a.record(unapproved["sessionId"]) == before
        a.revoke_as_owner(wallet, live_credential, live)
        nodes.until(lambda: a.record(live).status == "revoked")
        assert b.assert_agrees(wallet, live) == "revoked"
        for _ in range(3):
            nodes.step()
        assert a.record(queued["sessionId"]).status == "installing"
        assert a.onchain_status(wallet, queued["sessionKey"]) == ONCHAIN_NEVER
    finally:
        for ops in b.ops:
            try:
                b.waas.revocations.lift_freeze(ops.caller, scope="global", target=None)
            except ServiceError as waiting:
                assert waiting.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
    nodes.until(lambda: a.record(queued["sessionId"]).status == "active")
    assert b.assert_agrees(wallet, queued["sessionId"]) == "active"
    assert a.onchain_status(wallet, live_key) == ONCHAIN_REVOKED


def test_renewal_on_another_node_needs_a_fresh_owner_signature(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    wallet = new_wallet(nodes)
    session_id, _key, _credential = active_session(nodes, wallet)
    assert a.rt.store.sessions.suspend(session_id)
    before = b.record(session_id)
    grant_signature = bytes.fromhex(before.owner_signature or "")
    with pytest.raises(ServiceError) as refused:
        b.waas.sessions.approve(wallet.caller, session_id=session_id, signature=grant_signature)
    assert refused.value.code is ReasonCode.NONCE_REPLAYED
    assert b.record(session_id) == before
    renewal = b.waas.sessions.get(wallet.caller, session_id)["renewal"]
    signature = wallet.sign(renewal["digest"])
    assert (
        b.waas.sessions.approve(wallet.caller, session_id=session_id, signature=signature)["status"]
        == "active"
    )
    # The same renewal signature sent to the first node too: refused, the nonce is closed.
    with pytest.raises(ServiceError):
        a.waas.sessions.approve(wallet.caller, session_id=session_id, signature=signature)
    assert a.assert_agrees(wallet, session_id) == "active"
