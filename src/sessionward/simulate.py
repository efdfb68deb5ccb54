"""``sessionward simulate``: days of realistic delegated traffic, through the service, so that
``sessionward report`` has something to say.

The simulation drives the real use cases of :class:`~sessionward.service.waas.Waas` in-process
(the calls the HTTP layer would make, with the :class:`Caller` it would authenticate) on the
embedded chain, writing into the data directory / database of the given settings. Time is
simulated: the runtime (and with it the in-process chain, whose blocks follow the runtime clock)
reads a :class:`SimulatedClock` that the scheduler moves from ``days`` days ago up to now, so
the default report period (the 7 days ending now) covers it.

Who does what
-------------
- Six owners, each with a funded SessionAccount (USDX, router approved by the owner), and two
  agents per wallet (backend credentials). An agent whose credential was revoked registers a
  new one before its next session.
- Every simulated day runs a few dozen *episodes*, each one session's life, interleaved in
  time: well-behaved agents swapping within their caps (the majority); agents that drift out
  of scope (another router, over the USD cap, a forbidden selector, the wrong chain, a denial
  burst, spending too fast, use-count and rate caps); sessions used after they expired; owners
  revoking sessions, with agents that keep trying afterwards (once, or until the policy path
  revokes their credential); grants the owner never approves. Each kind occurs at least once in
  a simulation; the rest are drawn by weight (most are well-behaved).
- Ops desk: each day an emergency session revoke and a credential revoke with a written
  reason; a wallet freeze (lifted hours later) on the first day, a global freeze drill lifted by
  two ops on the middle day, a swap freeze (action class) lifted on the last day.

Determinism: every choice comes from one ``random.Random(seed)`` consumed in the scheduler's
order, and nothing the simulation decides depends on key material, ids or the wall clock, so
the same seed gives the same counts of every kind and the same decision and reason
distribution (ids, keys and hashes differ from run to run).
"""

from __future__ import annotations

import heapq
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sessionward.chain.demo import fund_demo_wallet
from sessionward.chain.interface import DevChain
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import OpsCredential, Settings
from sessionward.service.errors import ServiceError
from sessionward.service.revocation import EmergencyScope
from sessionward.service.runtime import Runtime, build_runtime
from sessionward.service.waas import Waas
from sessionward.store.alerts import AlertRecord

__all__ = [
    "EVENT_KINDS",
    "SimulatedClock",
    "SimulationError",
    "SimulationSummary",
    "run_simulation",
]

_log = logging.getLogger(__name__)

DAY: Final = 86_400
MINUTE: Final = 60
USDX: Final = 10**6
WALLETS: Final = 6
AGENTS_PER_WALLET: Final = 2
EPISODES_PER_DAY: Final = 26
WALLET_FUNDING_USDX: Final = 1_000_000
SETUP_GAS: Final = 300_000

SWAP = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)"
)
FORBIDDEN_CALLS: Final = (
    parse_signature("transferOwnership(address newOwner)"),
    parse_signature("setApprovalForAll(address operator,bool approved)"),
    parse_signature("upgradeToAndCall(address newImplementation,bytes data)"),
)
OTHER_ROUTERS: Final = (
    "0xe592427a0aece92de3edee1f18e0157c05861564",  # Uniswap V3 SwapRouter
    "0x7a250d5630b4cf539739df2c5dacb4c659f2488d",  # Uniswap V2 Router 02
    "0x1111111254eeb25477b68fb85ed929f73a960582",  # an aggregator nobody granted
)
OTHER_CHAINS: Final = (10, 137, 8453)
APP_NAMES: Final = (
    "Acme Rebalancer",
    "DCA Bot",
    "Treasury Autopilot",
    "Yield Router",
    "Portfolio Agent",
    "Payroll Swapper",
)
EMERGENCY_REASONS: Final[Mapping[str, tuple[str, ...]]] = {
    "session": (
        "risk desk: swap pattern unlike this agent's history",
        "owner called support: does not recognise this session",
        "counterparty on the sanctions watch list",
    ),
    "credential": (
        "vendor reported the agent's signing key exposed in a CI log",
        "agent vendor offboarded after a security review",
        "credential used from an unexpected network",
    ),
    "wallet": ("owner reported a lost device",),
    "action_class": ("router exploit advisory: pausing swaps until reviewed",),
    "global": ("incident drill: global kill switch",),
}

# Episode kinds and their weights (every kind also runs once per simulation, whatever the draw).
EPISODE_WEIGHTS: Final[Mapping[str, int]] = {
    "steady": 60,
    "over_cap": 6,
    "wrong_router": 6,
    "forbidden_selector": 2,
    "context_mismatch": 2,
    "denial_burst": 2,
    "velocity": 3,
    "usage_cap": 4,
    "expired_use": 6,
    "owner_revoke": 6,
    "persistent_after_revoke": 1,
    "declined": 2,
}

EVENT_KINDS: Final = (
    "wallets_created",
    "credentials_registered",
    "sessions_authorized",
    "sessions_approved",
    "sessions_left_pending",
    "swaps_executed",
    "out_of_scope_attempts",
    "expired_attempts",
    "post_revocation_attempts",
    "owner_revocations",
    "anomaly_revocations",
    "velocity_suspensions",
    "owner_renewals",
    "credential_revocations_by_policy",
    "emergency_session",
    "emergency_credential",
    "emergency_wallet",
    "emergency_action_class",
    "emergency_global",
    "freeze_lifts",
)
"""The kinds a simulation of a day or more always produces (``swaps_failed`` may stay 0)."""

OUT_OF_SCOPE: Final = frozenset(
    {
        ReasonCode.TARGET_NOT_ALLOWED.value,
        ReasonCode.SELECTOR_NOT_ALLOWED.value,
        ReasonCode.NON_DELEGABLE_ACTION.value,
        ReasonCode.SELF_CALL_FORBIDDEN.value,
        ReasonCode.CALL_TYPE_FORBIDDEN.value,
        ReasonCode.ARG_RULE_VIOLATED.value,
        ReasonCode.USD_LIMIT_EXCEEDED.value,
        ReasonCode.VALUE_LIMIT_EXCEEDED.value,
        ReasonCode.TOKEN_LIMIT_EXCEEDED.value,
        ReasonCode.USAGE_LIMIT_REACHED.value,
        ReasonCode.RATE_LIMITED.value,
        ReasonCode.CHAIN_MISMATCH.value,
        ReasonCode.ACCOUNT_MISMATCH.value,
    }
)
POST_REVOCATION: Final = frozenset(
    {ReasonCode.SESSION_REVOKED.value, ReasonCode.CREDENTIAL_REVOKED.value}
)
# Refusals after which an agent gives up on its session.
TERMINAL: Final = POST_REVOCATION | {
    ReasonCode.SESSION_EXPIRED.value,
    ReasonCode.SESSION_SUSPENDED.value,
    ReasonCode.WALLET_FROZEN.value,
    ReasonCode.GLOBAL_FREEZE.value,
    ReasonCode.ACTION_CLASS_FROZEN.value,
}
ANOMALY_REVOKE_RULES: Final = frozenset(
    {"context_mismatch", "forbidden_action_attempt", "denial_burst"}
)
EXECUTED: Final = "EXECUTED"


class SimulationError(Exception):
    """The simulation cannot run with these settings (e.g. not on a development chain)."""


class SimulatedClock:
    """Unix seconds that only the simulation moves, and only forward."""

    def __init__(self, start: int) -> None:
        self._now = start

    def __call__(self) -> int:
        return self._now

    def advance_to(self, at: int) -> None:
        self._now = max(self._now, at)


@dataclass(frozen=True)
class SimulationSummary:
    """What a run did. Equality ignores when it ran and how long it took: two runs with the same
    ``days`` and ``seed`` are equal."""

    days: int
    seed: int
    counts: Mapping[str, int]
    """Events by kind (:data:`EVENT_KINDS`, plus ``swaps_failed`` and ``episodes:<kind>``)."""
    decisions: Mapping[str, int]
    """Policy decisions by verdict (``allow``, ``deny``) as the service answered them (the
    store records exactly these)."""
    denial_reasons: Mapping[str, int]
    """Denied decisions carrying each reason code (once per decision)."""
    alerts: Mapping[str, int]
    """Alerts by rule (anomaly rules and ``emergency_revoke``)."""
    started_at: int = field(compare=False)
    ended_at: int = field(compare=False)
    elapsed_s: float = field(compare=False)

    @property
    def total_decisions(self) -> int:
        return sum(self.decisions.values())


# --- the tally --------------------------------------------------------------------------------


class Tally:
    """Counts kept by the simulation itself, independently of the store."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()

    def allowed(self) -> None:
        self.decisions["allow"] += 1

    def denied(self, reasons: Sequence[str]) -> None:
        self.decisions["deny"] += 1
        codes = set(reasons)
        for code in dict.fromkeys(reasons):
            self.reasons[code] += 1
        if codes & OUT_OF_SCOPE:
            self.counts["out_of_scope_attempts"] += 1
        if ReasonCode.SESSION_EXPIRED.value in codes:
            self.counts["expired_attempts"] += 1
        if codes & POST_REVOCATION:
            self.counts["post_revocation_attempts"] += 1

    def alert(self, alert: AlertRecord) -> None:
        """The anomaly monitor's sink: every alert it raises passes here."""
        self.alerts[alert.rule] += 1
        if alert.rule in ANOMALY_REVOKE_RULES and alert.action_taken:
            self.counts["anomaly_revocations"] += 1
        elif alert.rule == "value_velocity":
            self.counts["velocity_suspensions"] += 1
        elif alert.rule == "post_revocation_burst":
            self.counts["credential_revocations_by_policy"] += 1

    def summary(
        self, days: int, seed: int, started_at: int, ended_at: int, elapsed: float
    ) -> SimulationSummary:
        counts = {kind: self.counts.get(kind, 0) for kind in EVENT_KINDS}
        counts.update({k: v for k, v in sorted(self.counts.items()) if k not in counts})
        counts.setdefault("swaps_failed", 0)
        return SimulationSummary(
            days=days,
            seed=seed,
            counts=counts,
            decisions={"allow": self.decisions["allow"], "deny": self.decisions["deny"]},
            denial_reasons=dict(sorted(self.reasons.items())),
            alerts=dict(sorted(self.alerts.items())),
            started_at=started_at,
            ended_at=ended_at,
            elapsed_s=elapsed,
        )


# --- the actors -------------------------------------------------------------------------------


@dataclass
class SimWallet:
    index: int
    wallet_id: str
    account: str
    owner_secret: bytes = field(repr=False)
    caller: Caller


@dataclass
class Agent:
    """An agent (backend) working for one wallet; ``credential_id`` is its current credential."""

    name: str
    wallet: SimWallet
    credential_id: str = ""


@dataclass
class SimSession:
    session_id: str
    agent: Agent
    credential_id: str
    grant_digest: str
    expires_at: int
    usd_cap: int


class World:
    """The service and the simulation's actors, with the actions they take through it."""

    def __init__(
        self, waas: Waas, clock: SimulatedClock, tally: Tally, ops: Sequence[Caller]
    ) -> None:
        self.waas = waas
        self.rt: Runtime = waas.runtime
        self.clock = clock
        self.tally = tally
        self.ops = tuple(ops)
        chain = self.rt.chain
        if not isinstance(chain, DevChain):
            raise SimulationError("the simulation needs a development chain")
        self.chain: DevChain = chain
        self.router = self.rt.deployment.router
        self.usdx = self.rt.deployment.token("USDX")
        self.wethx = self.rt.deployment.token("WETHX")
        self.wallets: list[SimWallet] = []
        self.agents: list[Agent] = []
        self.sessions: list[SimSession] = []
        """Every session in creation order (never sorted by id: ids are random)."""

    def now(self) -> int:
        return self.clock()

    def settle(self) -> None:
        """Relay what is queued (deploys, installs, calls, removals: the embedded chain mines
        each at once, so one dispatcher round carries it through) and bring the clock level
        with the chain (a block is stamped with the clock, never behind the previous block, so
        the chain can be ahead of a clock that has not moved since)."""
        self.waas.dispatcher.step()
        self.clock.advance_to(self.chain.block_timestamp())

    # --- set-up -----------------------------------------------------------------------------

    def add_wallet(self) -> SimWallet:
        """CreateWallet for a fresh owner key; deployed, funded, router approved by the owner."""
        secret = secrets.token_bytes(32)
        owner = address_from_secret(secret)
        view = self.waas.wallets.create(SelfSigned(ALG_SECP256K1, owner))
        wallet = SimWallet(
            len(self.wallets),
            view["walletId"],
            view["account"],
            secret,
            Caller(view["ownerCredentialId"] or "", "owner", view["walletId"]),
        )
        self.settle()
        # Set-up transactions carry their gas: estimating each would cost as much as running it.
        fund_demo_wallet(
            self.chain,
            self.rt.deployment,
            self.rt.deployer,
            owner_secret=secret,
            account=wallet.account,
            usdx=WALLET_FUNDING_USDX,
            allowance=2**255,
            gas=SETUP_GAS,
        )
        self.clock.advance_to(self.chain.block_timestamp())
        self.wallets.append(wallet)
        self.tally.counts["wallets_created"] += 1
        return wallet

    def register(self, agent: Agent, lifetime_s: int) -> None:
        """RegisterCredential: the agent proves a fresh key and gets a credential."""
        address = address_from_secret(secrets.token_bytes(32))
        view = self.waas.credentials.register_backend(
            SelfSigned(ALG_SECP256K1, address),
            app_name=agent.name,
            app_url="https://agents.example/" + agent.name.lower().replace(" ", "-"),
            expires_at=self.now() + lifetime_s,
        )
        agent.credential_id = view["credentialId"]
        self.tally.counts["credentials_registered"] += 1

    def ensure_credential(self, agent: Agent, lifetime_s: int) -> None:
        """An agent whose credential was revoked registers a new one."""
        record = self.rt.store.credentials.get(agent.credential_id) if agent.credential_id else None
        if record is None or record.revoked_at is not None:
            self.register(agent, lifetime_s)

    def caller(self, credential_id: str) -> Caller:
        """The backend as the API layer would present it (a revoked credential still
        authenticates, so that its attempts are refused and recorded by the policy path)."""
        record = self.rt.store.credentials.get(credential_id)
        revoked = record is None or record.revoked_at is not None
        return Caller(credential_id, "backend", revoked=revoked)

    # --- sessions ---------------------------------------------------------------------------

    def authorize(self, agent: Agent, *, ttl_s: int, usd_cap: int, **extra: object) -> SimSession:
        """AuthorizeRemoteAccess for a swap session on the demo router."""
        envelope: dict[str, object] = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": usd_cap,
            "allowedDestinations": [self.router],
            "chainId": self.rt.chain_id,
            "expiresAt": self.now() + ttl_s,
            **extra,
        }
        view = self.waas.sessions.authorize(
            agent.wallet.caller,
            credential_id=agent.credential_id,
            wallet_id=agent.wallet.wallet_id,
            envelope=envelope,
        )
        session = SimSession(
            view["sessionId"],
            agent,
            agent.credential_id,
            view["grantDigest"],
            view["expiresAt"],
            usd_cap,
        )
        self.sessions.append(session)
        self.tally.counts["sessions_authorized"] += 1
        return session

    def approve(self, session: SimSession) -> bool:
        """ApproveSession with the owner's signature over the grant, or for a suspended session
        over its SessionRenewal (a fresh owner act); False if the service refused."""
        wallet = session.agent.wallet
        signed = session.grant_digest
        if self.status(session) == "suspended":
            detail = self.waas.sessions.get(wallet.caller, session.session_id)
            signed = detail["renewal"]["digest"] if "renewal" in detail else signed
        digest = bytes.fromhex(signed.removeprefix("0x"))
        try:
            self.waas.sessions.approve(
                wallet.caller,
                session_id=session.session_id,
                signature=sign_digest(wallet.owner_secret, digest),
            )
        except ServiceError as refused:
            _log.debug("approval of %s refused: %s", session.session_id, refused.code)
            return False
        self.settle()
        return True

    def grant(self, agent: Agent, *, ttl_s: int, usd_cap: int, **extra: object) -> SimSession:
        session = self.authorize(agent, ttl_s=ttl_s, usd_cap=usd_cap, **extra)
        if self.approve(session):
            self.tally.counts["sessions_approved"] += 1
        return session

    def status(self, session: SimSession) -> str:
        record = self.rt.store.sessions.get(session.session_id)
        return record.status if record is not None else "unknown"

    def is_live(self, session: SimSession) -> bool:
        return self.status(session) == "active" and self.now() < session.expires_at

    def owner_revokes(self, session: SimSession) -> bool:
        wallet = session.agent.wallet
        view = self.waas.revocations.revoke_access(
            wallet.caller,
            wallet_id=wallet.wallet_id,
            credential_id=session.credential_id,
            session_id=session.session_id,
        )
        self.settle()
        if view["revokedSessions"]:
            self.tally.counts["owner_revocations"] += 1
            return True
        return False

    # --- calls ------------------------------------------------------------------------------

    def swap(
        self, session: SimSession, usdx: int, *, to: str | None = None, chain_id: int | None = None
    ) -> str:
        """Prepare and Execute a swap of ``usdx`` USDX; ``EXECUTED``, or the first reason code
        of the refusal."""
        account = session.agent.wallet.account
        data = encode_call(
            SWAP, (usdx * USDX, 0, (self.usdx, self.wethx), account, self.now() + 3600)
        )
        return self.call(session, to or self.router, data, chain_id=chain_id)

    def call(
        self, session: SimSession, to: str, data: bytes, *, chain_id: int | None = None
    ) -> str:
        caller = self.caller(session.credential_id)
        wallet_id = session.agent.wallet.wallet_id
        try:
            quote = self.waas.transactions.prepare(
                caller,
                wallet_id=wallet_id,
                session_id=session.session_id,
                to=to,
                value=0,
                data=data,
                chain_id=chain_id,
            )
        except ServiceError as refused:
            return self._refused(refused)
        self.tally.allowed()
        try:
            done = self.waas.transactions.execute(caller, quote["txnId"])
        except ServiceError as refused:
            return self._refused(refused)
        self.tally.allowed()
        final = None
        for _ in range(3):
            self.settle()
            final = self.rt.store.transactions.get(done["txnId"])
            if final is None or final.status != "pending":
                break
        if final is not None and final.status == "executed":
            self.tally.counts["swaps_executed"] += 1
        else:
            self.tally.counts["swaps_failed"] += 1
        return EXECUTED

    def _refused(self, refused: ServiceError) -> str:
        if refused.decision_id is not None:
            self.tally.denied([v.code.value for v in refused.violations])
        else:
            self.tally.counts["refused_without_decision"] += 1
        self.settle()  # a policy revocation queues an on-chain removal
        return refused.code.value

    def forbidden_call(self, session: SimSession, rng: random.Random) -> str:
        """A call no session may make, on the granted router."""
        signature = rng.choice(FORBIDDEN_CALLS)
        stranger = "0x" + keccak256(f"stranger-{rng.random()}".encode())[12:].hex()
        args: tuple[object, ...]
        if signature.name == "transferOwnership":
            args = (stranger,)
        elif signature.name == "setApprovalForAll":
            args = (stranger, True)
        else:
            args = (stranger, b"")
        return self.call(session, self.router, encode_call(signature, args))

    # --- ops --------------------------------------------------------------------------------

    def emergency(
        self, scope: EmergencyScope, target: str | None, reason: str, by: int = 0
    ) -> None:
        view = self.waas.revocations.emergency_revoke(
            self.ops[by], scope=scope, target=target, reason=reason
        )
        self.settle()
        self.tally.counts[f"emergency_{scope}"] += 1
        _log.debug("emergency %s %s: %s", scope, target, view["revokedSessions"])

    def lift(self, scope: EmergencyScope, target: str | None) -> None:
        """Lift a freeze: one ops for a targeted one, two distinct ops for a global one."""
        if scope == "global":
            try:
                self.waas.revocations.lift_freeze(self.ops[0], scope="global", target=None)
            except ServiceError as first:
                if first.code is not ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS:
                    raise
            view = self.waas.revocations.lift_freeze(self.ops[1], scope="global", target=None)
        else:
            view = self.waas.revocations.lift_freeze(self.ops[1], scope=scope, target=target)
        self.tally.counts["freeze_lifts"] += view["lifted"]


# --- behaviours: one session's life each --------------------------------------------------------

Episode = Iterator[int]
"""A generator that acts at the current simulated time and yields how many seconds to wait."""


class Behaviours:
    """The episodes agents, owners and ops play. Each yields waits in seconds."""

    def __init__(self, world: World, rng: random.Random, credential_lifetime_s: int) -> None:
        self.w = world
        self.rng = rng
        self.credential_lifetime_s = credential_lifetime_s

    def episode(self, kind: str, agent: Agent) -> Episode:
        play: Callable[[Agent], Episode] = getattr(self, kind)
        self.w.tally.counts[f"episodes:{kind}"] += 1
        self.w.ensure_credential(agent, self.credential_lifetime_s)
        return play(agent)

    # --- helpers ----------------------------------------------------------------------------

    def _amount(self, cap: int, parts: int) -> int:
        """A swap size between 60 % and 100 % of ``cap / parts`` (``parts`` of them fit)."""
        top = max(2, cap // parts)
        return self.rng.randint(max(1, top * 6 // 10), top)

    def _spaced(self) -> int:
        """Time between an agent's swaps: at most two fall in one 5-minute velocity window."""
        return self.rng.randint(3 * MINUTE, 8 * MINUTE)

    def _swaps(self, session: SimSession, count: int, parts: int) -> Iterator[int]:
        """Up to ``count`` in-scope swaps, spaced; stops at a terminal refusal or near expiry."""
        for _ in range(count):
            if self.w.now() + 2 * MINUTE >= session.expires_at:
                return
            if self.w.swap(session, self._amount(session.usd_cap, parts)) in TERMINAL:
                return
            yield self._spaced()

    # --- the episodes -----------------------------------------------------------------------

    def steady(self, agent: Agent) -> Episode:
        cap = self.rng.choice((500, 1_000, 2_000, 5_000))
        session = self.w.grant(agent, ttl_s=self.rng.randint(45, 60) * MINUTE, usd_cap=cap)
        yield self.rng.randint(1, 3) * MINUTE
        yield from self._swaps(session, self.rng.randint(3, 7), parts=10)
        if self.rng.random() < 0.2 and self.w.is_live(session):
            self.w.owner_revokes(session)  # done for the day

    def over_cap(self, agent: Agent) -> Episode:
        cap = self.rng.choice((200, 300, 400))
        session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=cap)
        yield MINUTE
        for _ in range(8):
            outcome = self.w.swap(session, self.rng.randint(cap * 3 // 10, cap * 45 // 100))
            if outcome != EXECUTED:
                break
            yield self.rng.randint(6, 10) * MINUTE  # one per velocity window: only the cap bites
        if outcome == ReasonCode.USD_LIMIT_EXCEEDED.value and self.rng.random() < 0.5:
            yield self.rng.randint(6, 10) * MINUTE
            self.w.swap(session, max(1, cap // 20))  # what is left still fits

    def wrong_router(self, agent: Agent) -> Episode:
        session = self.w.grant(agent, ttl_s=50 * MINUTE, usd_cap=1_000)
        yield MINUTE
        yield from self._swaps(session, self.rng.randint(1, 2), parts=8)
        for _ in range(self.rng.randint(1, 2)):
            self.w.swap(session, self._amount(1_000, 8), to=self.rng.choice(OTHER_ROUTERS))
            yield self._spaced()
        yield from self._swaps(session, self.rng.randint(0, 2), parts=8)

    def forbidden_selector(self, agent: Agent) -> Episode:
        session = self.w.grant(agent, ttl_s=45 * MINUTE, usd_cap=500)
        yield MINUTE
        yield from self._swaps(session, self.rng.randint(0, 2), parts=6)
        self.w.forbidden_call(session, self.rng)  # revoked at once by the policy path
        yield self.rng.randint(1, 4) * MINUTE
        self.w.swap(session, self._amount(500, 6))  # the agent did not notice

    def context_mismatch(self, agent: Agent) -> Episode:
        session = self.w.grant(agent, ttl_s=45 * MINUTE, usd_cap=500)
        yield MINUTE
        yield from self._swaps(session, self.rng.randint(0, 2), parts=6)
        self.w.swap(session, self._amount(500, 6), chain_id=self.rng.choice(OTHER_CHAINS))

    def denial_burst(self, agent: Agent) -> Episode:
        """A confused agent retries a refused call in a tight loop: five denials in a minute."""
        session = self.w.grant(agent, ttl_s=45 * MINUTE, usd_cap=500)
        yield MINUTE
        router = self.rng.choice(OTHER_ROUTERS)
        for _ in range(6):
            if self.w.swap(session, self._amount(500, 6), to=router) in POST_REVOCATION:
                break
            yield self.rng.randint(5, 10)

    def velocity(self, agent: Agent) -> Episode:
        """Half the budget within one 5-minute window: suspended until the owner renews."""
        cap = self.rng.choice((400, 600))
        session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=cap)
        yield 20
        for _ in range(3):
            outcome = self.w.swap(session, cap * self.rng.randint(26, 30) // 100)
            if outcome != EXECUTED:
                break
            yield self.rng.randint(20, 40)
        if self.w.status(session) != "suspended":
            return
        yield self.rng.randint(5, 30) * MINUTE  # the owner reads the alert, then renews
        if self.w.approve(session):
            self.w.tally.counts["owner_renewals"] += 1
            yield self._spaced()
            yield from self._swaps(session, self.rng.randint(1, 2), parts=10)

    def usage_cap(self, agent: Agent) -> Episode:
        if self.rng.random() < 0.5:
            session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=1_000, maxUses=3)
        else:
            rate = {"count": 2, "interval": 15 * MINUTE}
            session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=1_000, rateLimit=rate)
        yield MINUTE
        for _ in range(4):
            if self.w.swap(session, self._amount(1_000, 10)) != EXECUTED:
                break
            yield self.rng.randint(2, 4) * MINUTE

    def expired_use(self, agent: Agent) -> Episode:
        session = self.w.grant(agent, ttl_s=self.rng.randint(10, 15) * MINUTE, usd_cap=500)
        yield MINUTE
        yield from self._swaps(session, self.rng.randint(1, 2), parts=6)
        wait = session.expires_at - self.w.now() + self.rng.randint(1, 20) * MINUTE
        yield max(1, wait)
        self.w.swap(session, self._amount(500, 6))  # a cron job that outlived its session

    def owner_revoke(self, agent: Agent) -> Episode:
        session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=1_000)
        yield MINUTE
        yield from self._swaps(session, self.rng.randint(1, 3), parts=8)
        if not self.w.is_live(session):
            return
        self.w.owner_revokes(session)
        for _ in range(self.rng.randint(1, 2)):
            yield self._spaced()  # spaced: fewer than three attempts in ten minutes
            self.w.swap(session, self._amount(1_000, 8))

    def persistent_after_revoke(self, agent: Agent) -> Episode:
        """The owner revokes; the agent hammers on until the policy path retires its key."""
        session = self.w.grant(agent, ttl_s=60 * MINUTE, usd_cap=1_000)
        yield MINUTE
        yield from self._swaps(session, 1, parts=8)
        if self.w.status(session) == "active":
            self.w.owner_revokes(session)
        for _ in range(4):
            yield self.rng.randint(20, 60)
            self.w.swap(session, self._amount(1_000, 8))

    def declined(self, agent: Agent) -> Episode:
        """The owner never signs the grant; the agent tries anyway."""
        session = self.w.authorize(agent, ttl_s=30 * MINUTE, usd_cap=500)
        self.w.tally.counts["sessions_left_pending"] += 1
        yield self.rng.randint(2, 5) * MINUTE
        self.w.swap(session, self._amount(500, 6))

    # --- the ops desk -----------------------------------------------------------------------

    def _live_sessions(self) -> list[SimSession]:
        now = self.w.now()  # the expiry filter first: it spares a store read per old session
        return [s for s in self.w.sessions if now < s.expires_at and self.w.is_live(s)]

    def ops_revoke_session(self) -> Episode:
        for _ in range(36):  # look again every 10 minutes for up to 6 hours
            live = self._live_sessions()
            if live:
                session = self.rng.choice(live)
                reason = self.rng.choice(EMERGENCY_REASONS["session"])
                self.w.emergency("session", session.session_id, reason)
                return
            yield 10 * MINUTE

    def ops_revoke_credential(self) -> Episode:
        for _ in range(36):
            live = self._live_sessions()
            if live:
                credential = self.rng.choice(live).credential_id
                reason = self.rng.choice(EMERGENCY_REASONS["credential"])
                self.w.emergency("credential", credential, reason)
                return
            yield 10 * MINUTE

    def ops_freeze_wallet(self) -> Episode:
        wallet = self.rng.choice(self.w.wallets)
        self.w.emergency("wallet", wallet.wallet_id, EMERGENCY_REASONS["wallet"][0])
        yield self.rng.randint(2, 4) * 60 * MINUTE
        self.w.lift("wallet", wallet.wallet_id)

    def ops_freeze_swaps(self) -> Episode:
        self.w.emergency("action_class", "swap.execute", EMERGENCY_REASONS["action_class"][0], by=1)
        yield self.rng.randint(30, 60) * MINUTE
        self.w.lift("action_class", "swap.execute")

    def ops_global_drill(self) -> Episode:
        self.w.emergency("global", None, EMERGENCY_REASONS["global"][0])
        yield self.rng.randint(15, 25) * MINUTE
        self.w.lift("global", None)


# --- the scheduler ------------------------------------------------------------------------------


class Scheduler:
    """Runs episodes in simulated-time order: pops the earliest, moves the clock there, lets it
    act, and puts it back at its next wake-up. Ties go in the order they were scheduled."""

    def __init__(self, clock: SimulatedClock, end: int) -> None:
        self._clock = clock
        self._end = end
        self._heap: list[tuple[int, int, Callable[[], Episode] | Episode]] = []
        self._sequence = 0

    def at(self, when: int, start: Callable[[], Episode]) -> None:
        """Start an episode at ``when`` (it is created then, so it sees the world as it is)."""
        heapq.heappush(self._heap, (when, self._sequence, start))
        self._sequence += 1

    def run(self, on_time: Callable[[int], None]) -> None:
        """Until the end: anything due later is dropped (nothing happens after ``end``)."""
        while self._heap:
            when, _, item = heapq.heappop(self._heap)
            if when >= self._end:
                break
            self._clock.advance_to(when)
            on_time(self._clock())
            episode = item() if callable(item) else item
            try:
                wait = next(episode)
            except StopIteration:
                continue
            except ServiceError as refused:
                if refused.code is not ReasonCode.GLOBAL_FREEZE:
                    raise
                continue  # no session can be authorized during a global freeze drill
            heapq.heappush(self._heap, (self._clock() + max(1, wait), self._sequence, episode))
            self._sequence += 1
        self._heap.clear()


def _plan_day(
    day: int,
    days: int,
    day_start: int,
    rng: random.Random,
    behaviours: Behaviours,
    agents: Sequence[Agent],
    scheduler: Scheduler,
) -> None:
    """Schedule one day's episodes and ops actions. Every episode kind runs once in the
    simulation (the kinds are dealt round-robin over the days); the rest are drawn by weight."""
    kinds = list(EPISODE_WEIGHTS)
    forced = kinds[day::days]
    count = EPISODES_PER_DAY + rng.randint(-3, 3)
    drawn = rng.choices(kinds, weights=list(EPISODE_WEIGHTS.values()), k=count - len(forced))
    plan = forced + drawn
    rng.shuffle(plan)
    for kind in plan:
        agent = rng.choice(agents)
        # Not in the first quarter hour: a report run soon after (its default period is the 7
        # days ending *then*) still covers every decision.
        when = day_start + rng.randint(15 * MINUTE, DAY - 90 * MINUTE)
        scheduler.at(when, _start(behaviours, kind, agent))
    # The ops desk, always well before the end so that every freeze is lifted within the run.
    scheduler.at(day_start + rng.randint(2, 16) * 3600, behaviours.ops_revoke_session)
    scheduler.at(day_start + rng.randint(2, 16) * 3600, behaviours.ops_revoke_credential)
    if day == 0:
        scheduler.at(day_start + rng.randint(3, 10) * 3600, behaviours.ops_freeze_wallet)
    if day == days // 2:
        scheduler.at(day_start + rng.randint(11, 16) * 3600, behaviours.ops_global_drill)
    if day == days - 1:
        scheduler.at(day_start + rng.randint(17, 19) * 3600, behaviours.ops_freeze_swaps)


def _start(behaviours: Behaviours, kind: str, agent: Agent) -> Callable[[], Episode]:
    return lambda: behaviours.episode(kind, agent)


# --- the entry point ------------------------------------------------------------------------------


def simulation_ops() -> tuple[OpsCredential, ...]:
    """Two ops credentials for the simulated ops desk. Their addresses are hashes of a label,
    so no private key is known for them: nobody can sign as them over the API."""
    return tuple(
        OpsCredential(
            f"sim-ops-{i}",
            ALG_SECP256K1,
            "0x" + keccak256(f"sessionward simulated ops desk {i}".encode())[12:].hex(),
        )
        for i in (1, 2)
    )


def run_simulation(
    settings: Settings,
    *,
    days: int,
    seed: int,
    progress: bool = True,
    console: Console | None = None,
    start_at: int | None = None,
) -> SimulationSummary:
    """Simulate ``days`` days of traffic ending now (or starting at ``start_at``), writing into
    ``settings``' data directory / database; print and return the summary.

    Runs on the in-process chain (``rpc_url`` is ignored). Raises :class:`SimulationError` for
    ``days < 1``.
    """
    if days < 1:
        raise SimulationError("simulate at least one day")
    console = console or Console(highlight=False)
    started = time.monotonic()
    start = int(time.time()) - days * DAY if start_at is None else start_at
    end = start + days * DAY
    clock = SimulatedClock(start)
    ops = simulation_ops()
    known = {o.id for o in settings.ops_credentials}
    config = replace(
        settings,
        rpc_url=None,
        run_relayer=False,
        ops_credentials=settings.ops_credentials + tuple(o for o in ops if o.id not in known),
    )
    tally = Tally()
    rng = random.Random(seed)
    with _quiet_service_logs():
        _simulate(config, ops, clock, tally, rng, days, end, progress, console)
    summary = tally.summary(days, seed, start, end, time.monotonic() - started)
    print_summary(summary, console)
    return summary


@contextmanager
def _quiet_service_logs() -> Iterator[None]:
    """The service logs every relayed transaction at INFO: thousands of lines in a simulated
    week. Only warnings are shown while it runs."""
    service = logging.getLogger("sessionward")
    level = service.level
    service.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        service.setLevel(level)


def _simulate(
    config: Settings,
    ops: Sequence[OpsCredential],
    clock: SimulatedClock,
    tally: Tally,
    rng: random.Random,
    days: int,
    end: int,
    progress: bool,
    console: Console,
) -> None:
    """Set the world up at the clock's start, plan every day, and run the plan to ``end``."""
    waas = Waas(build_runtime(config, clock=clock), alert_sink=tally.alert)
    try:
        world = World(waas, clock, tally, [Caller(o.id, "ops") for o in ops])
        for _ in range(WALLETS):
            world.add_wallet()
        lifetime = days * DAY + DAY
        for wallet in world.wallets:
            for j in range(AGENTS_PER_WALLET):
                name = f"{APP_NAMES[wallet.index % len(APP_NAMES)]} {j + 1}"
                agent = Agent(name, wallet)
                world.register(agent, lifetime)
                world.agents.append(agent)
        behaviours = Behaviours(world, rng, lifetime)
        scheduler = Scheduler(clock, end)
        day_start = end - days * DAY  # set-up took a few block-seconds; the plan is by the day
        for day in range(days):
            _plan_day(day, days, day_start + day * DAY, rng, behaviours, world.agents, scheduler)
        _run(scheduler, days, day_start, progress, console)
    finally:
        waas.stop()


def _run(scheduler: Scheduler, days: int, day_start: int, show: bool, console: Console) -> None:
    if not show:
        scheduler.run(lambda _now: None)
        return
    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("days", total=days)

        def on_time(now: int) -> None:
            bar.update(task, completed=min(days, (now - day_start) // DAY))

        scheduler.run(on_time)
        bar.update(task, completed=days)


def print_summary(summary: SimulationSummary, console: Console) -> None:
    """The summary as tables: events by kind, decisions, reasons and alerts."""
    events = Table(title=f"Simulated {summary.days} day(s), seed {summary.seed}")
    events.add_column("event")
    events.add_column("count", justify="right")
    for kind, count in summary.counts.items():
        if not kind.startswith("episodes:"):
            events.add_row(kind, str(count))
    console.print(events)
    decisions = Table(title=f"{summary.total_decisions} policy decisions")
    decisions.add_column("verdict / denial reason")
    decisions.add_column("count", justify="right")
    for verdict, count in summary.decisions.items():
        decisions.add_row(f"[bold]{verdict}", str(count))
    for reason, count in sorted(summary.denial_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        decisions.add_row(f"  {reason}", str(count))
    console.print(decisions)
    alerts = Table(title="Alerts by rule")
    alerts.add_column("rule")
    alerts.add_column("count", justify="right")
    for rule, count in summary.alerts.items():
        alerts.add_row(rule, str(count))
    console.print(alerts)
    console.print(
        f"Took {summary.elapsed_s:.1f} s. Read it with [bold]sessionward report[/] "
        "(the default period, the 7 days ending now, covers it)."
    )
