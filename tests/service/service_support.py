"""Plain helpers for the service specification tests (no HTTP).

A :class:`World` is one :class:`~sessionward.service.waas.Waas` on embedded defaults (SQLite in a
temporary data directory, the local vault, the in-process chain with the demo contracts) plus
the actors of docs/design.md section 1: owners with funded wallets, backends with credentials, and two
ops credentials. It drives the flows the way the HTTP layer would (a :class:`Caller` per
authenticated request) and reads back everything a test must check: the store's rows, the audit
streams and the chain.

:class:`Snapshot` captures everything a refused request must leave unchanged for one session:
its row, its usage counters, its reservations, its transactions and its signed-call audit
records.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import demo_contract
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.relayer import Relayer
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import SECP256K1_N, address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single
from sessionward.domain.usage import USD, USES, Counter
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import AnomalyRules, OpsCredential, Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import RELAYER_KEY_FILE, Runtime, build_runtime
from sessionward.service.transactions import TransactionView
from sessionward.service.waas import Waas
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.store.schema import reservations, sessions, vault_keys
from sessionward.store.sessions import SessionRecord

USDX_UNIT = 10**6
"""One demo USDX (6 decimals); priced at exactly 1 USD."""
USD_UNIT = 10**6
"""Usage counts USD in micro-dollars."""
SWAP = parse_signature("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")
APPROVE = parse_signature("approve(address,uint256)")
TRANSFER_OWNERSHIP = parse_signature("transferOwnership(address)")
ONCHAIN_NEVER = 0
ONCHAIN_ACTIVE = 1
ONCHAIN_REVOKED = 2


class ManualClock:
    """Wall-clock seconds plus an offset that tests move forward (never backward: the embedded
    chain stamps its blocks with this clock). :meth:`pin` stops it at its current reading, for
    exact bounds; :meth:`release` lets it run again from there."""

    def __init__(self) -> None:
        self._offset = 0
        self._pinned: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            if self._pinned is not None:
                return self._pinned
            return int(time.time()) + self._offset

    def advance(self, seconds: int) -> None:
        assert seconds >= 0, "the clock never goes backward"
        with self._lock:
            if self._pinned is not None:
                self._pinned += seconds
            else:
                self._offset += seconds

    def catch_up(self, at: int) -> None:
        """Move forward to ``at`` if the clock is behind it."""
        behind = at - self()
        if behind > 0:
            self.advance(behind)

    def pin(self) -> int:
        now = self()
        with self._lock:
            self._pinned = now
        return now

    def release(self) -> None:
        with self._lock:
            if self._pinned is not None:
                self._offset = max(self._offset, self._pinned - int(time.time()))
                self._pinned = None


@dataclass(frozen=True)
class OpsKey:
    credential: OpsCredential
    caller: Caller


def make_ops_keys(count: int = 2) -> tuple[OpsKey, ...]:
    """``count`` ops credentials with fresh secp256k1 addresses (their secrets are discarded:
    the service layer trusts the Caller the API layer authenticated)."""
    keys = []
    for i in range(count):
        address = address_from_secret(secrets.token_bytes(32))
        credential = OpsCredential(f"ops-{i + 1}", ALG_SECP256K1, address)
        keys.append(OpsKey(credential, Caller(credential.id, "ops")))
    return tuple(keys)


@dataclass(frozen=True)
class Wallet:
    """An owner (an EOA key) and the SessionAccount it owns."""

    wallet_id: str
    account: str
    owner: str
    owner_secret: bytes = field(repr=False)
    caller: Caller

    def sign(self, digest_hex: str) -> bytes:
        return sign_digest(self.owner_secret, bytes.fromhex(digest_hex.removeprefix("0x")))


@dataclass(frozen=True)
class Backend:
    credential_id: str
    caller: Caller

    def dead(self) -> Caller:
        """The caller as the API layer presents a revoked credential (still authenticated)."""
        return Caller(self.credential_id, "backend", revoked=True)


@dataclass(frozen=True)
class Session:
    session_id: str
    wallet: Wallet
    backend: Backend
    session_key: str


@dataclass(frozen=True)
class Snapshot:
    """Everything about one session a refused request must not change."""

    session: SessionRecord
    usage: Mapping[str, Counter]
    reservations: tuple[tuple[str, str], ...]
    transactions: tuple[tuple[str, str, bool], ...]
    signed_calls: int
    vault_keys: int


def high_s_twin(signature: bytes) -> bytes:
    """The other valid ECDSA signature of the same key and digest: ``(r, n - s)``, ``v`` flipped."""
    s = int.from_bytes(signature[32:64], "big")
    v = 27 + 28 - signature[64]
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v])


def codes(error: ServiceError) -> tuple[ReasonCode, ...]:
    """The reason codes of every violation a refusal carries."""
    return tuple(v.code for v in error.violations)


class SimulatedCrash(Exception):
    """The process "dies" here (the relayer only catches chain errors, so this escapes)."""


class CrashingChain:
    """A chain proxy for a process that dies around a broadcast: ``before_send`` dies before
    the node sees the bytes, otherwise the bytes are forwarded and the process dies before it
    hears the answer. Everything else goes to the real chain."""

    def __init__(self, inner: Chain, *, before_send: bool) -> None:
        self._inner = inner
        self._before_send = before_send

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send_raw_transaction(self, raw: bytes) -> str:
        if not self._before_send:
            self._inner.send_raw_transaction(raw)
        raise SimulatedCrash("the relaying process died")


class World:
    """One Waas and the actors around it."""

    def __init__(self, waas: Waas, clock: ManualClock, ops: tuple[OpsKey, ...]) -> None:
        self.waas = waas
        self.rt: Runtime = waas.runtime
        self.clock = clock
        self.ops = ops
        chain = self.rt.chain
        assert isinstance(chain, DevChain)
        self.chain: DevChain = chain
        self.router = self.rt.deployment.router
        self.usdx = self.rt.deployment.token("USDX")
        self.wethx = self.rt.deployment.token("WETHX")
        self._token = demo_contract("DemoToken")
        self._account = demo_contract("SessionAccount")

    @classmethod
    def build(
        cls,
        data_dir: Path,
        *,
        anomaly: AnomalyRules | None = None,
        ops: tuple[OpsKey, ...] | None = None,
        **settings: Any,
    ) -> World:
        ops = ops if ops is not None else make_ops_keys()
        clock = ManualClock()
        config = Settings(
            data_dir=data_dir,
            ops_credentials=tuple(o.credential for o in ops),
            anomaly=anomaly or AnomalyRules(),
            **settings,
        )
        return cls(Waas(build_runtime(config, clock=clock)), clock, ops)

    def close(self) -> None:
        self.waas.stop()

    def process(self, chain: Chain | None = None) -> Runtime:
        """The runtime as another process over the same data directory would build it: the
        same store, vault, chain and relayer key, but its own relayer (no in-memory state)."""
        data_dir = self.rt.settings.data_dir
        relayer = Relayer(
            chain or self.rt.chain,
            LocalTransactionSigner.from_file(data_dir / RELAYER_KEY_FILE),
            SqlRelayJobStore(self.rt.store.db),
            self.rt.settings.relayer_fee_cap_wei,
        )
        return replace(self.rt, relayer=relayer)

    def now(self) -> int:
        return self.rt.now()

    # --- actors ---------------------------------------------------------------------------

    def wallet(self, *, usdx: int = 1_000 * USDX_UNIT, approve_router: bool = True) -> Wallet:
        """CreateWallet for a fresh owner key, deployed on chain; the account holds ``usdx``
        demo USDX and (unless told otherwise) has approved the router, by the owner's own
        transaction through the account's ``execute``."""
        secret = secrets.token_bytes(32)
        owner = address_from_secret(secret)
        view = self.waas.wallets.create(SelfSigned(ALG_SECP256K1, owner))
        caller = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
        wallet = Wallet(view["walletId"], view["account"], owner, secret, caller)
        self.settle()
        assert self.chain.get_code(wallet.account), "the account was not deployed"
        self.chain.set_balance(owner, 10**18)
        if usdx:
            self.token(self.usdx).transact(self.rt.deployer, "mint", wallet.account, usdx)
        if approve_router:
            self.owner_approves_router(wallet, 2**255)
        return wallet

    def owner_approves_router(self, wallet: Wallet, amount: int) -> None:
        """The owner (not a session) sets the account's USDX allowance for the router."""
        inner = encode_call(APPROVE, (self.router, amount))
        data = encode_execute(mode_single(), encode_single_execution(Call(self.usdx, 0, inner)))
        transact(
            self.chain, LocalTransactionSigner(wallet.owner_secret), to=wallet.account, data=data
        )
        self.clock.catch_up(self.chain.block_timestamp())

    def backend(self, *, expires_in: int = 86_400, app_name: str = "Acme Agent") -> Backend:
        """RegisterCredential for a fresh secp256k1 backend key."""
        address = address_from_secret(secrets.token_bytes(32))
        view = self.waas.credentials.register_backend(
            SelfSigned(ALG_SECP256K1, address),
            app_name=app_name,
            app_url="https://agent.example",
            expires_at=self.now() + expires_in,
        )
        return Backend(view["credentialId"], Caller(view["credentialId"], "backend"))

    def envelope(self, **overrides: Any) -> dict[str, Any]:
        """The seed envelope (docs/design.md section 3) on the demo router: swap, 500 USD, 30 minutes."""
        doc: dict[str, Any] = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "allowedDestinations": [self.router],
            "chainId": self.rt.chain_id,
            "expiresAt": self.now() + 1800,
        }
        doc.update(overrides)
        return {k: v for k, v in doc.items() if v is not None}

    def authorize(self, wallet: Wallet, backend: Backend, **overrides: Any) -> dict[str, Any]:
        view = self.waas.sessions.authorize(
            wallet.caller,
            credential_id=backend.credential_id,
            wallet_id=wallet.wallet_id,
            envelope=self.envelope(**overrides),
        )
        return dict(view)

    def session(
        self, wallet: Wallet | None = None, backend: Backend | None = None, **overrides: Any
    ) -> Session:
        """An approved session (installed on chain) of ``backend`` on ``wallet`` (fresh ones by
        default) for the seed envelope with ``overrides``."""
        wallet = wallet or self.wallet()
        backend = backend or self.backend()
        pending = self.authorize(wallet, backend, **overrides)
        self.waas.sessions.approve(
            wallet.caller,
            session_id=pending["sessionId"],
            signature=wallet.sign(pending["grantDigest"]),
        )
        self.settle()
        record = self.record(pending["sessionId"])
        assert record.onchain_enabled_at is not None, "the session was not installed on chain"
        return Session(pending["sessionId"], wallet, backend, pending["sessionKey"])

    # --- calls ----------------------------------------------------------------------------

    def swap_data(self, wallet: Wallet, usdx: int) -> bytes:
        """Router calldata swapping ``usdx`` USDX (whole units) for WETHX into the account."""
        return encode_call(
            SWAP, (usdx * USDX_UNIT, 0, (self.usdx, self.wethx), wallet.account, self.now() + 3600)
        )

    def quote(
        self, session: Session, usdx: int, *, caller: Caller | None = None, **kw: Any
    ) -> TransactionView:
        return self.waas.transactions.prepare(
            caller or session.backend.caller,
            wallet_id=session.wallet.wallet_id,
            session_id=session.session_id,
            to=self.router,
            value=0,
            data=self.swap_data(session.wallet, usdx),
            **kw,
        )

    def prepare(
        self, session: Session, *, to: str, data: bytes, caller: Caller | None = None, **kw: Any
    ) -> TransactionView:
        return self.waas.transactions.prepare(
            caller or session.backend.caller,
            wallet_id=session.wallet.wallet_id,
            session_id=session.session_id,
            to=to,
            value=0,
            data=data,
            **kw,
        )

    def execute(
        self, session: Session, txn_id: str, *, caller: Caller | None = None
    ) -> TransactionView:
        return self.waas.transactions.execute(caller or session.backend.caller, txn_id)

    def swap(self, session: Session, usdx: int) -> TransactionView:
        """Prepare and Execute one swap (pending until :meth:`settle`)."""
        return self.execute(session, self.quote(session, usdx)["txnId"])

    def settle(self, rounds: int = 3) -> None:
        """Run the dispatcher until the queued on-chain work is mined and applied, then bring the
        service clock level with the chain (a chain moved on by ``time_travel``)."""
        for _ in range(rounds):
            self.waas.dispatcher.step()
        self.clock.catch_up(self.chain.block_timestamp())

    # --- reads ----------------------------------------------------------------------------

    def record(self, session_id: str) -> SessionRecord:
        record = self.rt.store.sessions.get(session_id)
        assert record is not None
        return record

    def usage(self, session_id: str) -> dict[str, int]:
        """The session's counters as ``{bucket: amount}``."""
        return {b: c.amount for b, c in self.rt.store.budget.usage_of(session_id).counters.items()}

    def usd_spent(self, session_id: str) -> int:
        return self.usage(session_id).get(USD, 0)

    def uses(self, session_id: str) -> int:
        return self.usage(session_id).get(USES, 0)

    def audit_kinds(self, stream: str) -> list[str]:
        return [r.kind for r in self.rt.store.audit.records(stream)]

    def signed_calls(self, wallet_id: str) -> list[str]:
        """The ``txn`` of every ``session.call.signed`` record of the wallet's stream, in order."""
        return [
            str(r.payload["txn"])
            for r in self.rt.store.audit.records(wallet_id)
            if r.kind == "session.call.signed"
        ]

    def vault_key_count(self) -> int:
        with self.rt.store.db.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(vault_keys)).scalar_one())

    def session_count(self) -> int:
        with self.rt.store.db.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(sessions)).scalar_one())

    def reservations_of(self, session_id: str) -> tuple[tuple[str, str], ...]:
        statement = (
            select(reservations.c.id, reservations.c.status)
            .where(reservations.c.session_id == session_id)
            .order_by(reservations.c.id)
        )
        with self.rt.store.db.reading() as conn:
            return tuple((str(i), str(s)) for i, s in conn.execute(statement))

    def snapshot(self, session_id: str) -> Snapshot:
        record = self.record(session_id)
        txns = tuple(
            (t.id, t.status, t.signature is not None)
            for t in self.rt.store.transactions.of_session(session_id)
        )
        return Snapshot(
            session=record,
            usage=dict(self.rt.store.budget.usage_of(session_id).counters),
            reservations=self.reservations_of(session_id),
            transactions=txns,
            signed_calls=len(self.signed_calls(record.wallet_id)),
            vault_keys=self.vault_key_count(),
        )

    def assert_unchanged(self, before: Snapshot, *, except_txn: str | None = None) -> None:
        """Nothing of ``before``'s session changed, except that ``except_txn`` (the request just
        refused, at Prepare or at Execute) may now exist or have become ``denied``, unsigned."""
        after = self.snapshot(before.session.id)
        assert after.session == before.session
        assert after.usage == before.usage
        assert after.reservations == before.reservations
        assert after.signed_calls == before.signed_calls
        assert after.vault_keys == before.vault_keys
        others = [t for t in after.transactions if t[0] != except_txn]
        assert others == [t for t in before.transactions if t[0] != except_txn]
        if except_txn is not None:
            assert (except_txn, "denied", False) in after.transactions

    def token(self, address: str) -> DeployedContract:
        return DeployedContract(self.chain, address, self._token)

    def balance(self, token: str, holder: str) -> int:
        value = self.token(token).call_one("balanceOf", holder)
        assert isinstance(value, int)
        return value

    def onchain_status(self, wallet: Wallet, session_key: str) -> int:
        """The ``status`` of the account's ``session(key)`` view (1 active, 2 revoked)."""
        view = DeployedContract(self.chain, wallet.account, self._account).call_one(
            "session", session_key
        )
        assert isinstance(view, tuple)
        status = view[0]
        assert isinstance(status, int)
        return status

    def assert_agrees(self, wallet: Wallet, session_id: str) -> str:
        """Assert the database and the chain agree on the session (the account's
        ``session(key)`` view against the session's status) and the wallet's audit chain
        verifies; the session's status."""
        record = self.record(session_id)
        onchain = self.onchain_status(wallet, record.session_key_address)
        expected = {
            "active": {ONCHAIN_ACTIVE},
            "suspended": {ONCHAIN_ACTIVE},
            "revoked": {ONCHAIN_REVOKED, ONCHAIN_NEVER},
            "pending_approval": {ONCHAIN_NEVER},
        }[record.status]
        assert onchain in expected, (record.status, onchain)
        if record.status == "revoked" and record.approved_at is not None:
            assert record.onchain_revoked_at is not None
        assert self.rt.store.audit.verify(wallet.wallet_id).ok
        return record.status

    def approve_pending(self, wallet: Wallet, pending: dict[str, Any]) -> Any:
        """The owner signs the pending grant's digest and approves it."""
        return self.waas.sessions.approve(
            wallet.caller,
            session_id=pending["sessionId"],
            signature=wallet.sign(pending["grantDigest"]),
        )

    def revoke_as_owner(self, wallet: Wallet, credential_id: str, session_id: str) -> Any:
        """The owner revokes one session of the backend ``credential_id``."""
        return self.waas.revocations.revoke_access(
            wallet.caller,
            wallet_id=wallet.wallet_id,
            credential_id=credential_id,
            session_id=session_id,
        )

    def onchain_nonce(self, wallet: Wallet, session_key: str) -> int:
        """The account's ``session_nonce(key)``: the lowest call nonce the key has not used."""
        value = DeployedContract(self.chain, wallet.account, self._account).call_one(
            "session_nonce", session_key
        )
        assert isinstance(value, int)
        return value

    def simulate_session_call(self, session: Session, usdx: int) -> str | None:
        """``eth_call`` the account's ``execute_with_session`` for a swap with a dummy signature:
        the revert reason (the account checks the session's state before the signature)."""
        inner = self.swap_data(session.wallet, usdx)
        data = self.rt.calls.execute_with_session(
            session.session_key,
            mode_single(),
            encode_single_execution(Call(self.router, 0, inner)),
            self.onchain_nonce(session.wallet, session.session_key),
            self.now() + 600,
            b"\x00" * 65,
        )
        try:
            self.chain.call(session.wallet.account, data, sender=self.rt.relayer.address)
        except ExecutionReverted as reverted:
            return reverted.reason
        return None
