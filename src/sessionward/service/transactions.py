"""Transactions: PrepareEthereumTransaction / PrepareEthereumContractCall (quote), Execute
(reserve, sign, queue) and TransactionStatus.

Execute re-runs the policy (state may have changed since the quote) and then hands the charges
to :meth:`sessionward.store.execution.Executions.execute`, which reserves the budget, re-checks
revocation and freezes, numbers the call and has the vault sign it, all in one database
transaction (docs/design.md section 8). The signed call is then relayed by the dispatcher.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal, Protocol, TypedDict

from sessionward.chain.errors import ChainError
from sessionward.chain.user_operations import UserOperation
from sessionward.crypto.typed_data import execution_hash, session_call_digest
from sessionward.domain.abi import (
    AbiEncodeError,
    AbiJsonError,
    SignatureSyntaxError,
    encode_call,
    parse_signature,
    value_from_json,
)
from sessionward.domain.calldata import CalldataError, account_execution, unwrap_request
from sessionward.domain.decision import CallIntent, Decision, Violation
from sessionward.domain.policy import CallRequest, evaluate
from sessionward.domain.usage import Charge, Usage
from sessionward.reasons import ReasonCode
from sessionward.store.decisions import DecisionEvent
from sessionward.store.execution import SignedCall
from sessionward.store.sessions import SessionRecord
from sessionward.store.transaction_records import TransactionRecord
from sessionward.store.wallets import WalletRecord
from sessionward.vault.interface import KeyRecord

from .anomaly import velocity_charges
from .callers import Caller
from .chain_time import ChainClock
from .errors import ServiceError, denied, invalid, not_found
from .ids import new_id
from .onchain import EXECUTE_BASE_GAS, EXECUTE_GAS_PER_CALL, OnchainSessions
from .runtime import Runtime
from .sessions import SessionDirectory
from .user_operations import UserOperationPlan, UserOperationRefused

Submission = Literal["relayer", "userop"]
SUBMISSIONS: tuple[Submission, ...] = ("relayer", "userop")
"""How Execute submits a session call: through the relayer, or as an ERC-4337 UserOperation."""

FEE_TTL_S = 3.0
"""A fee suggestion older than this is refreshed (in the background, see ``_max_fee``)."""
FEE_MAX_AGE_S = 60.0
"""A fee suggestion older than this is not used: the chain is asked before answering."""
_NONCE_KEY_SCOPE = "userop-key"
"""The nonces table's scope of the UserOperation nonce keys an account's calls took."""
_NONCE_KEY_ATTEMPTS = 16


class DecisionListener(Protocol):
    """Told about every recorded decision (the anomaly rules)."""

    def observe(
        self, event: DecisionEvent, decision: Decision, usage: Usage | None = None
    ) -> Callable[[], None] | None:
        """Called in the transaction that records the decision; returns what to do once it
        has committed (or ``None``)."""
        ...


class Verdict(TypedDict):
    allowed: bool
    reasons: list[str]
    violations: list[dict[str, object]]


class TransactionView(TypedDict):
    txnId: str
    status: str
    sessionId: str
    walletId: str
    to: str
    value: str
    data: str
    intent: list[dict[str, Any]]
    verdict: Verdict
    feeWei: str
    expiresAt: int
    txHash: str | None
    failure: str | None


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return value


def intent_json(intents: Sequence[CallIntent]) -> list[dict[str, Any]]:
    return [
        {
            "call": i.index,
            "to": i.to,
            "value": str(i.value),
            "actionClass": i.action_class,
            "function": i.function,
            "arguments": [_json_value(a) for a in i.arguments],
        }
        for i in intents
    ]


def transaction_view(
    record: TransactionRecord, violations: Sequence[Violation] = ()
) -> TransactionView:
    reasons = [r for r in record.reasons.split(",") if r]
    return {
        "txnId": record.id,
        "status": record.status,
        "sessionId": record.session_id,
        "walletId": record.wallet_id,
        "to": record.to_address,
        "value": str(record.value),
        "data": "0x" + record.data.hex(),
        "intent": json.loads(record.intent),
        "verdict": {
            "allowed": not reasons,
            "reasons": reasons,
            "violations": [v.to_json() for v in violations],
        },
        "feeWei": str(record.fee_wei),
        "expiresAt": record.quote_expires_at,
        "txHash": record.tx_hash,
        "failure": record.failure,
    }


class Transactions:
    """Quotes, executions and their status."""

    def __init__(
        self,
        rt: Runtime,
        directory: SessionDirectory,
        listener: DecisionListener | None = None,
        *,
        on_pending: Callable[[], None] | None = None,
    ) -> None:
        """``on_pending`` is called once an Execute's signed call has committed (it wakes the
        relayer: :meth:`sessionward.service.dispatcher.Dispatcher.wake`)."""
        self._rt = rt
        self._dir = directory
        self._listener = listener
        self._on_pending = on_pending
        # Per network (chain id): the fee suggestion and when it was read, and whether a
        # refresh is running.
        self._fees: dict[int, tuple[int, float]] = {}
        self._fee_lock = threading.Lock()
        self._fee_refreshing: set[int] = set()
        settings = rt.settings
        # The in-process chain stamps its blocks with this node's own clock: nothing to check.
        self._chain_clocks: dict[int, ChainClock | None] = {}
        for net in [rt.on(n.chain_id) for n in rt.networks] or [rt]:
            embedded = settings.rpc_url is None if net.network is None else net.network.embedded
            self._chain_clocks[net.chain_id] = (
                None
                if embedded
                else ChainClock(
                    net.chain,
                    ttl_s=settings.chain_time_ttl_s,
                    max_behind_s=settings.max_clock_skew_s,
                    max_ahead_s=settings.max_clock_lead_s,
                )
            )

    def expect_prepare(self, *, wallet_id: object, session_id: object) -> None:
        """A Prepare on ``session_id`` of ``wallet_id`` is about to be authenticated in this
        unit of work: its decision's reads go with the request's replay nonce, once its
        signature has verified (PostgreSQL; see
        :meth:`sessionward.store.engine.Store.read_decision_reads_ahead`). Values that are not
        ids, as an unvalidated body may hold, expect nothing: the request is refused later, as
        before."""
        if isinstance(wallet_id, str) and isinstance(session_id, str):
            self._rt.store.read_decision_reads_ahead(session_id=session_id, wallet_id=wallet_id)

    def expect_execute(self, *, txn_id: object) -> None:
        """:meth:`expect_prepare` for an Execute of ``txn_id``: the transaction's read and its
        decision's go with the replay nonce."""
        if isinstance(txn_id, str):
            self._rt.store.read_execute_reads_ahead(txn_id=txn_id)

    def _network_of(self, wallet_id: str, network: str | int | None = None) -> Runtime:
        """The runtime on the wallet's network, checked against the ``network`` a request
        named (``CHAIN_MISMATCH``, ``NETWORK_UNKNOWN``: raised before anything is written).
        With one network and none named, nothing is read."""
        rt = self._rt
        if network is None and not rt.several_networks:
            return rt
        return rt.for_wallet(self._dir.wallet_identity(wallet_id).chain_id, network)

    def _closed_for_signing(self, decision: Decision, *, expires_at: int, now: int) -> Decision:
        """``decision``, or a refusal ``SESSION_EXPIRED`` once the session is within
        ``session_close_margin_s`` of ``expiresAt``: a call signed then might be included after
        the session expired on chain (docs/protocol.md, "Clock and session close"). A decision
        already refused keeps its own reasons."""
        margin = self._rt.settings.session_close_margin_s
        if not decision.allowed or now < expires_at - margin:
            return decision
        closing = Violation(
            ReasonCode.SESSION_EXPIRED,
            "expiresAt",
            f"the session closes {margin} s before expiresAt",
        )
        return replace(decision, violations=(closing,))

    # --- Prepare --------------------------------------------------------------------------

    def prepare(
        self,
        caller: Caller,
        *,
        wallet_id: str,
        session_id: str,
        to: str,
        value: int,
        data: bytes,
        chain_id: int | None = None,
        network: str | int | None = None,
    ) -> TransactionView:
        """Decode and decide; record a quote (or a denial, which is raised as ``denied``).

        ``network`` (a name or a chain id), when given, must be the wallet's: another one is
        refused ``CHAIN_MISMATCH`` (403), an unknown one ``NETWORK_UNKNOWN`` (404), before the
        unit, so neither writes anything (no quote, no decision event). ``chain_id`` is the
        call's chain as the policy sees it (a mismatch there is a recorded denial).

        One unit of work (:meth:`sessionward.store.database.Database.unit`; it joins the
        caller's unit, e.g. the API request's): the reads of the decision and the two writes
        (the quote, the decision event) commit together, so the request takes the database's
        write lock once. The fee suggestion comes from a cache refreshed off this path
        (:meth:`_max_fee`); a denial is raised after the unit, whose records stay committed."""
        caller.require("backend", allow_dead=True)
        started = time.perf_counter()
        rt = self._rt
        net = self._network_of(wallet_id, network)
        fee_per_gas = self._max_fee(net)  # before the unit: never a chain call under the lock
        with rt.store.db.unit():
            rt.store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)
            record = self._dir.record(session_id)
            if record.credential_id != caller.credential_id:
                raise ServiceError(
                    "forbidden",
                    ReasonCode.ROLE_FORBIDDEN,
                    "this session is bound to another credential",
                )
            wallet = self._dir.wallet(wallet_id)
            now = rt.now()
            view = self._dir.view(record, now=now, caller=caller, wallet_read=wallet)
            calls = _count_calls(
                wallet.account,
                to,
                value,
                data,
                rt.catalog.multisend.get(wallet.chain_id, frozenset()),
            )
            request = CallRequest(
                chain_id=wallet.chain_id if chain_id is None else chain_id,
                account=wallet.account,
                to=to,
                value=value,
                data=data,
                fee_wei=gas_limit_for(calls) * fee_per_gas,
            )
            usage = rt.store.budget.usage_of(session_id)
            decision = evaluate(request, view, usage, now, catalog=rt.catalog, prices=rt.prices)
            # The same close as Execute's, so no quote is given that Execute would refuse for it.
            decision = self._closed_for_signing(decision, expires_at=view.scope.expires_at, now=now)
            stored = rt.store.transactions.add_quote(
                txn_id=new_id("txn"),
                session_id=session_id,
                wallet_id=wallet_id,
                credential_id=caller.credential_id,
                status="quoted" if decision.allowed else "denied",
                to_address=to,
                value=value,
                data=data,
                fee_wei=request.fee_wei,
                action_class=decision.action_class,
                intent=json.dumps(intent_json(decision.intents)),
                reasons=[r.value for r in decision.reasons],
                now=now,
                quote_expires_at=now + rt.settings.quote_ttl_s,
            )
            event = self._record_decision(
                record.id, wallet_id, caller.credential_id, decision, started, "prepare", now
            )
        if not decision.allowed:
            raise denied(
                decision.violations, event.id, "the session's envelope does not allow this call"
            )
        return transaction_view(stored)

    def prepare_contract_call(
        self,
        caller: Caller,
        *,
        wallet_id: str,
        session_id: str,
        contract: str,
        method: str,
        args: Sequence[object],
        value: int = 0,
        chain_id: int | None = None,
        network: str | int | None = None,
    ) -> TransactionView:
        """:meth:`prepare` for ``method`` (a human-readable signature) with JSON arguments."""
        try:
            signature = parse_signature(method)
        except SignatureSyntaxError as exc:
            raise invalid(ReasonCode.INPUT_MALFORMED, f"method: {exc}") from None
        if len(args) != len(signature.params):
            raise invalid(
                ReasonCode.INPUT_MALFORMED,
                f"{signature.name} takes {len(signature.params)} arguments",
            )
        try:
            values = tuple(
                value_from_json(p.type, a, f"args[{i}]")
                for i, (p, a) in enumerate(zip(signature.params, args, strict=True))
            )
            data = encode_call(signature, values)
        except AbiJsonError as exc:
            raise invalid(ReasonCode.INPUT_MALFORMED, str(exc)) from None
        except AbiEncodeError as exc:
            raise invalid(ReasonCode.INPUT_MALFORMED, f"args: {exc}") from None
        return self.prepare(
            caller,
            wallet_id=wallet_id,
            session_id=session_id,
            to=contract,
            value=value,
            data=data,
            chain_id=chain_id,
            network=network,
        )

    # --- Execute --------------------------------------------------------------------------

    def execute(
        self, caller: Caller, txn_id: str, *, submission: Submission = "relayer"
    ) -> TransactionView:
        """Re-decide, then reserve + sign + queue atomically; refuse with reasons otherwise.

        ``submission``: ``relayer`` (the session key signs the session call, the relayer sends
        it) or ``userop`` (the session key signs an ERC-4337 UserOperation built and
        estimated before the unit of work, which the network's bundler then runs; see
        :mod:`.user_operations`). Who pays a UserOperation is what the owner signed: a grant
        with a fee budget lets the account pay within it; a grant with none has the network's
        paymaster sponsor it (``FEE_LIMIT_EXCEEDED`` when there is no paymaster)."""
        if submission not in SUBMISSIONS:
            raise invalid(
                ReasonCode.INPUT_MALFORMED, f"submission must be one of {', '.join(SUBMISSIONS)}"
            )
        caller.require("backend", allow_dead=True)
        started = time.perf_counter()
        rt = self._rt
        # The transaction's read and its decision's, in one round trip (PostgreSQL, in a unit).
        rt.store.prefetch_execute_reads(txn_id=txn_id)
        txn = self._txn(caller, txn_id)
        now = rt.now()
        if txn.status != "quoted":
            raise ServiceError(
                "conflict", ReasonCode.TRANSACTION_NOT_QUOTED, f"the transaction is {txn.status}"
            )
        if now >= txn.quote_expires_at:
            raise ServiceError(
                "conflict", ReasonCode.QUOTE_EXPIRED, "the quote has expired: prepare again"
            )
        chain_clock = self._chain_clocks.get(self._network_of(txn.wallet_id).chain_id)
        if chain_clock is not None:
            # Before anything is read for the decision: a skewed node reserves and signs nothing.
            chain_clock.check(now)
        # The reads of the decision below (prefetched above unless a statement came between).
        rt.store.prefetch_decision_reads(session_id=txn.session_id, wallet_id=txn.wallet_id)
        record = self._dir.record(txn.session_id)
        # Only immutable fields of the wallet are used here; view() reads its freeze fresh.
        wallet = self._dir.wallet_identity(txn.wallet_id)
        view = self._dir.view(record, now=now, caller=caller)
        request = CallRequest(
            wallet.chain_id, wallet.account, txn.to_address, txn.value, txn.data, txn.fee_wei
        )
        decision = evaluate(
            request,
            view,
            rt.store.budget.usage_of(record.id),
            now,
            catalog=rt.catalog,
            prices=rt.prices,
        )
        decision = self._closed_for_signing(decision, expires_at=view.scope.expires_at, now=now)
        if not decision.allowed:
            return self._refuse(txn, decision.violations, decision, started, now)
        # Exactly the calls the policy decided on (a MultiSend's records as one batch).
        mode, execution = account_execution(
            account=wallet.account,
            to=txn.to_address,
            value=txn.value,
            data=txn.data,
            multisend=rt.catalog.multisend.get(wallet.chain_id, frozenset()),
        )
        deadline = min(now + rt.settings.call_deadline_s, view.scope.expires_at)
        exec_hash = execution_hash(mode, execution)
        plan = None
        if submission == "userop":
            try:
                plan = self._plan_user_operation(
                    txn,
                    session_key=record.session_key_address,
                    wallet=wallet,
                    mode=mode,
                    execution=execution,
                    sponsored=not view.scope.envelope.max_fee_wei,
                    now=now,
                )
            except UserOperationRefused as refused:
                # The account's own validation refused what the policy allowed.
                violation = Violation(refused.code, "userOperation", refused.message)
                return self._refuse(txn, (violation,), decision, started, now)

        def sign(call_nonce: int, key: KeyRecord | None) -> SignedCall:
            if plan is not None:
                signature = rt.vault.sign(record.session_key_id, plan.digest, now=now, record=key)
                return SignedCall(
                    signature=signature, deadline=deadline, mode=mode, execution=execution
                )
            digest = session_call_digest(
                wallet.chain_id,
                wallet.account,
                record.session_key_address,
                exec_hash,
                call_nonce,
                deadline,
            )
            signature = rt.vault.sign(record.session_key_id, digest, now=now, record=key)
            return SignedCall(
                signature=signature, deadline=deadline, mode=mode, execution=execution
            )

        event = decision_event(
            record.id, wallet.id, caller.credential_id, decision, started, "execute", now
        )
        reservation_id = new_id("res")
        outcome = rt.store.executions.execute(
            txn_id=txn.id,
            session_id=record.id,
            reservation_id=reservation_id,
            charges=[
                *decision.charges,
                *self._shadow_charges(decision, now, view.scope.valid_after),
            ],
            action_classes=sorted({i.action_class for i in decision.intents}),
            now=now,
            sign=sign,
            audit_stream=wallet.id,
            audit_payload={
                "txn": txn.id,
                "session": record.id,
                "executionHash": "0x" + exec_hash.hex(),
            },
            decision=event,
            signing_key=record.session_key_id,
        )
        if outcome.reasons == (ReasonCode.TRANSACTION_NOT_QUOTED,):
            # A concurrent Execute of the same quote won: not a policy decision, nothing to record.
            raise ServiceError(
                "conflict", ReasonCode.TRANSACTION_NOT_QUOTED, "the transaction is pending"
            )
        if not outcome.accepted:
            violations = tuple(
                Violation(code, "execution", "refused at execution time")
                for code in outcome.reasons
            )
            return self._refuse(txn, violations, decision, started, now)
        self._notify(event, decision, outcome.usage, loaded=record)
        if self._on_pending is not None:
            rt.store.db.after_commit(self._on_pending)
        assert outcome.signed is not None and outcome.call_nonce is not None
        # The row as the execution transaction left it (``quoted`` -> ``pending``): no re-read.
        return transaction_view(
            replace(
                txn,
                status="pending",
                reservation_id=reservation_id,
                call_nonce=outcome.call_nonce,
                deadline=outcome.signed.deadline,
                mode=outcome.signed.mode,
                execution=outcome.signed.execution,
                signature=outcome.signed.signature,
                executed_at=now,
            )
        )

    def _plan_user_operation(
        self,
        txn: TransactionRecord,
        *,
        session_key: str,
        wallet: WalletRecord,
        mode: bytes,
        execution: bytes,
        sponsored: bool,
        now: int,
    ) -> UserOperationPlan:
        """Build, estimate and (if ``sponsored``) sponsor the call's UserOperation, and record
        the plan, before the unit of work that signs it (network calls never under the write
        lock). Raises :class:`UserOperationRefused` when the bundler refuses it."""
        net = self._network_of(txn.wallet_id)
        path = net.user_operations
        if path is None:
            raise ServiceError(
                "invalid",
                ReasonCode.USER_OPERATION_REFUSED,
                f"network {net.network_name!r} has no bundler: submission 'userop' is unavailable",
            )
        if sponsored and path.paymaster is None:
            raise ServiceError(
                "invalid",
                ReasonCode.FEE_LIMIT_EXCEEDED,
                "the session's grant gives the account no fee budget and network "
                f"{net.network_name!r} has no paymaster to sponsor the operation",
            )
        sessions = net.calls.sessions_of(wallet)
        nonce = self._user_operation_nonce(net, txn, wallet.account, sessions)
        try:
            plan = path.plan(
                txn_id=txn.id,
                account=wallet.account,
                sessions=sessions,
                nonce=nonce,
                session_key=session_key,
                mode=mode,
                execution=execution,
                sponsored=sponsored,
                now=now,
            )
        except ChainError as exc:
            raise ServiceError(
                "unavailable", ReasonCode.CHAIN_UNAVAILABLE, f"the bundler: {exc}"
            ) from None
        net.store.user_operations.add(
            user_op_hash="0x" + plan.user_op_hash.hex(),
            txn_id=txn.id,
            chain_id=net.chain_id,
            operation=json.dumps(plan.operation.to_rpc(), separators=(",", ":")),
            now=now,
        )
        return plan

    def _user_operation_nonce(
        self, net: Runtime, txn: TransactionRecord, account: str, sessions: OnchainSessions
    ) -> int:
        """The EntryPoint nonce of the call's operation: the one an earlier plan of this call
        used (an Execute retried after a crash plans the same operation again), else the first
        of the transaction's candidate keys that no other operation of the account took. Taken
        keys are recorded, so two calls of one account never share a key (a module wallet's
        key has only 32 bits of its own after the module's address: a shared key would leave
        one of the two operations unmineable and its call pending)."""
        earlier = net.store.user_operations.of_transaction(txn.id)
        if earlier:
            return UserOperation.from_rpc(json.loads(earlier[-1].operation)).nonce
        for attempt in range(_NONCE_KEY_ATTEMPTS):
            nonce = sessions.user_operation_nonce(txn.id, attempt=attempt)
            if net.store.nonces.use_once(_NONCE_KEY_SCOPE, account, nonce >> 64, None):
                return nonce
        raise ServiceError(
            "invalid",
            ReasonCode.USER_OPERATION_REFUSED,
            f"no free nonce key for this call after {_NONCE_KEY_ATTEMPTS} candidates",
        )

    def _refuse(
        self,
        txn: TransactionRecord,
        violations: tuple[Violation, ...],
        decision: Decision,
        started: float,
        now: int,
    ) -> TransactionView:
        refused = Decision(violations, decision.intents, decision.charges)
        self._rt.store.transactions.deny(txn.id, [r.value for r in refused.reasons], now=now)
        event = self._record_decision(
            txn.session_id, txn.wallet_id, txn.credential_id, refused, started, "execute", now
        )
        raise denied(violations, event.id, "refused at execution time")

    # --- TransactionStatus ----------------------------------------------------------------

    def status(self, caller: Caller, txn_id: str) -> TransactionView:
        return transaction_view(self._txn(caller, txn_id))

    def _txn(self, caller: Caller, txn_id: str) -> TransactionRecord:
        caller.require(caller.role, allow_dead=True)
        txn = self._rt.store.transactions.get(txn_id)
        if txn is None:
            raise not_found("transaction", ReasonCode.TRANSACTION_UNKNOWN)
        if caller.role == "backend" and txn.credential_id == caller.credential_id:
            return txn
        if caller.role == "owner" and txn.wallet_id == caller.wallet_id:
            return txn
        raise ServiceError(
            "forbidden", ReasonCode.ROLE_FORBIDDEN, "this transaction belongs to another credential"
        )

    # --- helpers --------------------------------------------------------------------------

    def _record_decision(
        self,
        session_id: str,
        wallet_id: str,
        credential_id: str,
        decision: Decision,
        started: float,
        kind: str,
        now: int,
    ) -> DecisionEvent:
        event = decision_event(session_id, wallet_id, credential_id, decision, started, kind, now)
        self._rt.store.decisions.record(event)
        self._notify(event, decision)
        return event

    def _shadow_charges(self, decision: Decision, now: int, anchor: int) -> list[Charge]:
        rules = self._rt.settings.anomaly
        if rules.velocity_fraction <= 0:
            return []
        return velocity_charges(
            decision.charges, now=now, anchor=anchor, window_s=rules.velocity_window_s
        )

    def _notify(
        self,
        event: DecisionEvent,
        decision: Decision,
        usage: Usage | None = None,
        *,
        loaded: SessionRecord | None = None,
    ) -> None:
        """Tell the listener (the anomaly rules) about a recorded decision: it counts it in the
        transaction that records it (inside a unit of work, the unit's), and what it decides
        to do runs once that has committed, since a rule may revoke durably. ``loaded``: the
        session record this use case has just read, which the action may reuse instead of
        reading it again."""
        listener = self._listener
        if listener is None:
            return
        act = listener.observe(event, decision, usage)
        if act is None:
            return

        def run() -> None:
            if loaded is None:
                act()
                return
            with self._dir.pinned(loaded):
                act()

        self._rt.store.db.after_commit(run)

    def _max_fee(self, net: Runtime) -> int:
        """The chain's max fee per gas, cached: younger than :data:`FEE_TTL_S` it is used as
        is; older (up to :data:`FEE_MAX_AGE_S`) it is used while a background thread asks the
        chain again, so a Prepare, which runs as one unit of work holding the database's write
        lock on SQLite, does not wait for the chain. Only a node with no recent suggestion
        (the first call, or after a minute without one) asks the chain on the spot. One cache
        per network: ``net`` is the runtime on the wallet's network."""
        chain_id = net.chain_id
        with self._fee_lock:
            cached = self._fees.get(chain_id)
            age = float("inf") if cached is None else time.monotonic() - cached[1]
            if cached is not None and age <= FEE_MAX_AGE_S:
                if age > FEE_TTL_S and chain_id not in self._fee_refreshing:
                    self._fee_refreshing.add(chain_id)
                    threading.Thread(
                        target=self._refresh_fee, args=(net,), name="sessionward-fee", daemon=True
                    ).start()
                return cached[0]
        return self._refresh_fee(net, raising=True)

    def _refresh_fee(self, net: Runtime, *, raising: bool = False) -> int:
        chain_id = net.chain_id
        try:
            fee = net.chain.max_fee().max_fee_per_gas
        except ChainError:
            with self._fee_lock:
                self._fee_refreshing.discard(chain_id)
            if raising:
                raise ServiceError(
                    "conflict", ReasonCode.CHAIN_UNAVAILABLE, "chain unavailable"
                ) from None
            return 0
        with self._fee_lock:
            self._fees[chain_id] = (fee, time.monotonic())
            self._fee_refreshing.discard(chain_id)
        return fee


def decision_event(
    session_id: str,
    wallet_id: str,
    credential_id: str,
    decision: Decision,
    started: float,
    kind: str,
    now: int,
) -> DecisionEvent:
    """The telemetry record of one decision (latency measured from ``started``)."""
    return DecisionEvent(
        id=new_id("dec"),
        at=now,
        verdict="allow" if decision.allowed else "deny",
        reasons=tuple(r.value for r in decision.reasons),
        latency_us=int((time.perf_counter() - started) * 1_000_000),
        request_kind=kind,
        session_id=session_id,
        wallet_id=wallet_id,
        credential_id=credential_id,
        action_class=decision.action_class,
        rule=decision.violations[0].rule if decision.violations else None,
    )


def gas_limit_for(calls: int) -> int:
    return EXECUTE_BASE_GAS + EXECUTE_GAS_PER_CALL * max(calls, 1)


def _count_calls(
    account: str, to: str, value: int, data: bytes, multisend: frozenset[str] = frozenset()
) -> int:
    try:
        return len(
            unwrap_request(account=account, to=to, value=value, data=data, multisend=multisend)
        )
    except CalldataError:
        return 1
