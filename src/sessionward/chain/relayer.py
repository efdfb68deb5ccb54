"""The relayer: submits the service's transactions from its own hot key, exactly once.

Guarantees
- **No double submission.** A job's transaction is signed once per nonce, persisted as
  ``signed`` (nonce, raw bytes, hash) *before* it is sent, and from then on only those exact
  bytes are rebroadcast. A job is re-signed with a *new* nonce only when the chain proves that
  none of its transactions can ever be mined: the account's mined nonce is already past the
  job's nonce (read first) and no receipt exists for any hash the job ever had (read after).
  Since receipts are permanent, the nonce was then consumed by some other transaction.
- **Nonce order.** Jobs are signed in FIFO order with consecutive nonces from a local counter,
  initialised from ``max(chain pending nonce, highest outstanding job nonce + 1)`` and dropped
  (resynchronised) on ``nonce too low``, on a permanent refusal and on :meth:`reconcile`.
- **Fee cap.** A job whose ``gas_limit × maxFeePerGas`` exceeds the cap (the relayer's, or the
  job's own if lower) is refused with ``FEE_LIMIT_EXCEEDED``: at :meth:`enqueue` by raising
  :class:`FeeCapExceeded` (nothing stored), at signing time (fees rose) by moving the job to
  ``refused``. Nothing is signed or sent either way.
- **Confirmation depth.** With ``confirmations`` above 1, :meth:`poll` records a mined job's
  outcome only once its block is that deep (the head read once per poll).
- **Recovery.** :meth:`reconcile` (call it at start-up) settles every ``signed``/``submitted``
  job from the chain: receipt → final state; nonce consumed by another transaction → re-queued;
  known to the node → ``submitted``; unknown → the same bytes are rebroadcast. :meth:`poll`
  does the same for a job stuck longer than ``stuck_after_s``, and fills a nonce gap that no job
  holds with a zero-value self-transfer so later jobs are not blocked forever.

RPC cost per job in the steady state: one ``eth_estimateGas`` (none when the caller gives the
gas limit), one ``eth_sendRawTransaction``, one ``eth_getTransactionReceipt`` per poll; fee
suggestions are shared for ``fee_ttl_s`` and the nonce is fetched once per resync.

The relayer key is never logged; log lines carry job ids, nonces and hashes only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from sessionward.chain.errors import (
    AlreadyKnown,
    ChainError,
    FeeCapExceeded,
    FeeTooLow,
    InsufficientFunds,
    NonceTooLow,
    ReplacementUnderpriced,
    TransactionRejected,
)
from sessionward.chain.ethereum_transactions import (
    Authorization,
    Eip1559Transaction,
    SetCodeTransaction,
    UnsignedTransaction,
    transaction_hash,
)
from sessionward.chain.interface import CallRequest, Chain, FeeSuggestion, Receipt
from sessionward.chain.relay_jobs import OUTSTANDING, JobState, RelayJob, RelayJobStore
from sessionward.chain.signer import TransactionSigner
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.reasons import ReasonCode

__all__ = ["Relayer"]

_log = logging.getLogger(__name__)
_TRANSFER_GAS: Final = 21_000
_MAX_RESIGNS_PER_ROUND: Final = 3


class Relayer:
    """Submits :class:`RelayJob` transactions for one signer on one chain.

    Not re-entrant across processes for the same key: run one relayer loop per relayer key
    (the store's compare-and-set makes a second one lose races instead of double-sending).
    Within a process all public methods serialise on a lock.
    """

    def __init__(
        self,
        chain: Chain,
        signer: TransactionSigner,
        store: RelayJobStore,
        fee_cap_wei: int,
        *,
        gas_margin_percent: int = 20,
        stuck_after_s: float = 30.0,
        fee_ttl_s: float = 3.0,
        clock: Callable[[], float] = time.time,
        confirmations: int = 1,
    ) -> None:
        """``confirmations``: blocks a receipt must have (1: the including block alone)
        before :meth:`poll` records a job's outcome; deeper on a chain that reorganises."""
        if fee_cap_wei <= 0 or gas_margin_percent < 0 or stuck_after_s < 0 or fee_ttl_s < 0:
            raise ValueError("relayer limits must be non-negative (fee cap positive)")
        if confirmations < 1:
            raise ValueError("a receipt has at least one confirmation (its own block)")
        self._confirmations = confirmations
        self._chain = chain
        self._signer = signer
        self._store = store
        self._fee_cap = fee_cap_wei
        self._margin = gas_margin_percent
        self._stuck_after = stuck_after_s
        self._fee_ttl = fee_ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        self._next_nonce: int | None = None
        self._fees: tuple[FeeSuggestion, float] | None = None
        self.awaiting_receipt = False
        """Whether the last :meth:`poll` left a submitted job unmined (the loop then looks for
        its receipt again soon instead of after its slow poll)."""

    @property
    def address(self) -> str:
        return self._signer.address

    @property
    def chain_id(self) -> int:
        """The chain this relayer signs for (the chain id of every transaction it signs)."""
        return self._chain.chain_id

    @property
    def confirmations(self) -> int:
        return self._confirmations

    def _confirmed(self, receipt: Receipt, head: list[int]) -> bool:
        """Whether ``receipt`` has :attr:`confirmations` blocks (``head`` caches the chain's
        head for one poll: read once, and only when more than one confirmation is asked)."""
        if self._confirmations == 1:
            return True
        if not head:
            head.append(self._chain.block_number())
        return head[0] - receipt.block_number + 1 >= self._confirmations

    @property
    def store(self) -> RelayJobStore:
        """Where the jobs are kept (a node fences it with its relayer lease)."""
        return self._store

    def job(self, job_id: str) -> RelayJob | None:
        return self._store.get(job_id)

    def job_of_ref(self, ref: str) -> RelayJob | None:
        """The job that carries ``ref`` (:meth:`enqueue`'s ``refs``), if any."""
        return self._store.job_of_ref(ref)

    def refs_of(self, job_id: str) -> tuple[str, ...]:
        """What job ``job_id`` carries, in order."""
        return self._store.refs_of(job_id)

    # ------------------------------------------------------------------ helpers

    def _fee_suggestion(self, *, fresh: bool = False) -> FeeSuggestion:
        now = self._clock()
        if fresh or self._fees is None or now - self._fees[1] >= self._fee_ttl:
            self._fees = (self._chain.max_fee(), now)
        return self._fees[0]

    def _cap_for(self, job_cap: int | None) -> int:
        return self._fee_cap if job_cap is None else min(self._fee_cap, job_cap)

    def _nonce(self) -> int:
        if self._next_nonce is None:
            pending = self._chain.get_transaction_count(self.address, "pending")
            held = [j.nonce for j in self._store.in_states(self.address, OUTSTANDING)]
            self._next_nonce = max([pending, *(n + 1 for n in held if n is not None)])
        return self._next_nonce

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _save(self, job: RelayJob, **changes: object) -> RelayJob | None:
        updated = job.evolve(updated_at_ms=self._now_ms(), **changes)
        if not self._store.replace(updated):
            _log.warning("relay job %s changed under us; leaving it", job.job_id)
            return None
        return updated

    def _unsigned(self, job: RelayJob, nonce: int, fees: FeeSuggestion) -> UnsignedTransaction:
        fields = {
            "chain_id": self._chain.chain_id,
            "nonce": nonce,
            "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
            "max_fee_per_gas": fees.max_fee_per_gas,
            "gas": job.gas_limit,
            "to": job.to,
            "value": job.value,
            "data": job.data,
        }
        if job.authorization_list:
            return SetCodeTransaction(
                **fields,  # type: ignore[arg-type]
                authorization_list=job.authorization_list,
            )
        return Eip1559Transaction(**fields)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ enqueue

    def enqueue(
        self,
        job_id: str,
        *,
        to: str,
        data: bytes = b"",
        value: int = 0,
        gas_limit: int | None = None,
        fee_cap_wei: int | None = None,
        authorization_list: tuple[Authorization, ...] = (),
        refs: tuple[str, ...] = (),
    ) -> RelayJob:
        """Accept a job (idempotent on ``job_id`` for identical contents). ``refs``: what the
        job carries, stored with it (:meth:`RelayJobStore.add`; a ref already carried by a
        job raises :class:`DuplicateRelayJob` and nothing is stored).

        Without ``gas_limit`` the call is estimated from the relayer's address and a margin
        added; a reverting call raises :class:`ExecutionReverted` and nothing is stored.
        Raises :class:`FeeCapExceeded` (``FEE_LIMIT_EXCEEDED``) when the gas limit at the
        current fee suggestion exceeds the cap; nothing is stored then either.
        """
        with self._lock:
            existing = self._store.get(job_id)
            if existing is not None:
                same = (existing.to, existing.data, existing.value) == (
                    normalize_address(to),
                    bytes(data),
                    value,
                )
                if not same:
                    raise ValueError(f"relay job {job_id} exists with other contents")
                return existing
            if gas_limit is None:
                estimate = self._chain.estimate_gas(
                    CallRequest(
                        to=to,
                        data=data,
                        value=value,
                        sender=self.address,
                        authorization_list=authorization_list,
                    )
                )
                gas_limit = estimate + estimate * self._margin // 100
            fees = self._fee_suggestion()
            self._check_cap(job_id, gas_limit, fees, fee_cap_wei)
            job = RelayJob(
                job_id=job_id,
                sender=self.address,
                to=to,
                data=bytes(data),
                value=value,
                gas_limit=gas_limit,
                created_at_ms=self._now_ms(),
                fee_cap_wei=fee_cap_wei,
                authorization_list=tuple(authorization_list),
            )
            self._store.add(job, refs)
            _log.info("relay job %s queued (gas %d)", job_id, gas_limit)
            return job

    def _check_cap(
        self, job_id: str, gas_limit: int, fees: FeeSuggestion, job_cap: int | None
    ) -> None:
        required, cap = gas_limit * fees.max_fee_per_gas, self._cap_for(job_cap)
        if required > cap:
            raise FeeCapExceeded(
                f"relay job {job_id} may cost {required} wei in fees, over the cap of {cap} wei",
                required_wei=required,
                cap_wei=cap,
            )

    # ------------------------------------------------------------------ submit

    def submit(self) -> list[RelayJob]:
        """Rebroadcast ``signed`` leftovers, then sign and send queued jobs in FIFO order.

        Stops at the first transient failure (node unreachable, relayer underfunded): later
        nonces would only wait behind the gap. Returns the jobs whose state changed.
        """
        with self._lock:
            changed: list[RelayJob] = []
            for job in self._store.in_states(self.address, {JobState.SIGNED}):
                sent = self._broadcast(job)
                changed.append(sent)
                if sent.state is JobState.SIGNED:
                    return changed
            queue = self._store.in_states(self.address, {JobState.QUEUED})
            resigns = 0
            while queue:
                job = queue.pop(0)
                done = self._sign_and_send(job)
                if done is None:
                    continue
                changed.append(done)
                if done.state is JobState.QUEUED and resigns < _MAX_RESIGNS_PER_ROUND:
                    resigns += 1
                    queue.insert(0, done)  # its nonce was taken: sign again with a new one
                elif done.state in (JobState.SIGNED, JobState.QUEUED):
                    break
            return changed

    def _sign_and_send(self, job: RelayJob) -> RelayJob | None:
        fees = self._fee_suggestion()
        required, cap = job.gas_limit * fees.max_fee_per_gas, self._cap_for(job.fee_cap_wei)
        if required > cap:
            _log.warning("relay job %s refused: fees %d over cap %d", job.job_id, required, cap)
            return self._save(
                job, state=JobState.REFUSED, error=ReasonCode.FEE_LIMIT_EXCEEDED.value
            )
        nonce = self._nonce()
        raw = self._signer.sign_transaction(self._unsigned(job, nonce, fees))
        tx_hash = transaction_hash(raw)
        # Write-ahead: the signed bytes are durable before anything leaves the process.
        signed = self._save(
            job,
            state=JobState.SIGNED,
            nonce=nonce,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            raw_tx=raw,
            tx_hash=tx_hash,
            tx_hashes=(*job.tx_hashes, tx_hash),
        )
        if signed is None:
            self._next_nonce = None  # the nonce may be another relayer's now: resync
            return None
        self._next_nonce = nonce + 1
        _log.info("relay job %s signed: nonce %d, tx %s", job.job_id, nonce, tx_hash)
        return self._broadcast(signed)

    def _broadcast(self, job: RelayJob, *, may_resign: bool = True) -> RelayJob:
        """Send a ``signed`` (or rebroadcast a ``submitted``) job's exact bytes."""
        assert job.raw_tx is not None and job.nonce is not None
        attempts = job.attempts + 1
        try:
            self._chain.send_raw_transaction(job.raw_tx)
        except AlreadyKnown:
            # The node already holds these exact bytes (a rebroadcast): as good as sent.
            pass
        except NonceTooLow:
            return self._nonce_consumed(job)
        except (FeeTooLow, ReplacementUnderpriced) as exc:
            if may_resign:
                return self._resign_same_nonce(job, str(exc))
            return self._save(job, attempts=attempts, error=str(exc)) or job
        except InsufficientFunds as exc:
            _log.error("relayer %s cannot pay for job %s", self.address, job.job_id)
            return self._save(job, attempts=attempts, error=str(exc)) or job
        except TransactionRejected as exc:
            # Permanently refused, never pooled: its nonce is free again.
            _log.error("relay job %s rejected by the node: %s", job.job_id, exc.message)
            self._next_nonce = None
            return self._save(job, state=JobState.FAILED, attempts=attempts, error=str(exc)) or job
        except ChainError as exc:
            # Unknown whether it arrived: stays signed, rebroadcast (same bytes) later.
            _log.warning("relay job %s not confirmed sent: %s", job.job_id, exc)
            return self._save(job, attempts=attempts, error=str(exc)) or job
        sent = self._save(
            job,
            state=JobState.SUBMITTED,
            attempts=attempts,
            submitted_at_ms=self._now_ms(),
            error=None,
        )
        return sent or job

    def _resign_same_nonce(self, job: RelayJob, why: str) -> RelayJob:
        """Fees too low for the node: sign the *same nonce* again with fresh fees. At most one
        transaction per nonce can ever be mined, so this cannot execute the job twice."""
        assert job.nonce is not None
        fees = self._fee_suggestion(fresh=True)
        required, cap = job.gas_limit * fees.max_fee_per_gas, self._cap_for(job.fee_cap_wei)
        if required > cap or fees.max_fee_per_gas <= (job.max_fee_per_gas or 0):
            return self._save(job, attempts=job.attempts + 1, error=why) or job
        raw = self._signer.sign_transaction(self._unsigned(job, job.nonce, fees))
        tx_hash = transaction_hash(raw)
        resigned = self._save(
            job,
            state=JobState.SIGNED,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            raw_tx=raw,
            tx_hash=tx_hash,
            tx_hashes=(*job.tx_hashes, tx_hash),
        )
        if resigned is None:
            return job
        _log.info("relay job %s re-signed at nonce %d with higher fees", job.job_id, job.nonce)
        return self._broadcast(resigned, may_resign=False)

    # ------------------------------------------------------------------ settle

    def _finish(self, job: RelayJob, receipt: Receipt) -> RelayJob:
        state = JobState.EXECUTED if receipt.succeeded else JobState.FAILED
        _log.info("relay job %s %s in block %d", job.job_id, state, receipt.block_number)
        return (
            self._save(
                job,
                state=state,
                tx_hash=receipt.tx_hash,
                block_number=receipt.block_number,
                gas_used=receipt.gas_used,
                effective_gas_price=receipt.effective_gas_price,
                revert_reason=receipt.revert_reason,
                error=None if receipt.succeeded else (receipt.revert_reason or "reverted"),
            )
            or job
        )

    def _any_receipt(self, job: RelayJob) -> Receipt | None:
        current = [job.tx_hash] if job.tx_hash else []
        for tx_hash in current + [h for h in job.tx_hashes if h != job.tx_hash]:
            receipt = self._chain.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    def _nonce_consumed(self, job: RelayJob) -> RelayJob:
        """The chain says the job's nonce is used (observed *before* this call). If none of
        the job's transactions has a receipt, none ever will: re-queue it for a new nonce."""
        self._next_nonce = None
        receipt = self._any_receipt(job)
        if receipt is not None:
            return self._finish(job, receipt)
        _log.warning(
            "relay job %s: nonce %s was consumed by another transaction; re-queued",
            job.job_id,
            job.nonce,
        )
        return (
            self._save(
                job,
                state=JobState.QUEUED,
                nonce=None,
                raw_tx=None,
                tx_hash=None,
                submitted_at_ms=None,
                error="nonce consumed by another transaction",
            )
            or job
        )

    def poll(self) -> list[RelayJob]:
        """Read receipts of submitted jobs in nonce order (stopping at the first unmined one)
        and unstick that one if it has waited ``stuck_after_s``. Returns changed jobs."""
        with self._lock:
            changed: list[RelayJob] = []
            self.awaiting_receipt = False
            head: list[int] = []
            for job in self._store.in_states(self.address, {JobState.SUBMITTED}):
                assert job.tx_hash is not None
                receipt = self._chain.get_receipt(job.tx_hash)
                if receipt is not None and not self._confirmed(receipt, head):
                    self.awaiting_receipt = True  # mined, not yet deep enough: wait for it
                    break
                if receipt is not None:
                    changed.append(self._finish(job, receipt))
                    continue
                self.awaiting_receipt = True
                waited_ms = self._now_ms() - (job.submitted_at_ms or job.created_at_ms)
                if waited_ms < self._stuck_after * 1000:
                    break
                settled = self._unstick(job)
                changed.append(settled)
                if settled.state is not JobState.QUEUED and not settled.state.is_final:
                    break
            return changed

    def _unstick(self, job: RelayJob) -> RelayJob:
        assert job.nonce is not None and job.tx_hash is not None
        mined_nonce = self._chain.get_transaction_count(self.address, "latest")
        if mined_nonce > job.nonce:
            return self._nonce_consumed(job)
        if mined_nonce < job.nonce:
            self._fill_gaps(mined_nonce, job.nonce)
        if self._chain.get_transaction(job.tx_hash) is None:
            _log.warning("relay job %s unknown to the node; rebroadcasting", job.job_id)
            return self._broadcast(job)
        return job

    def _fill_gaps(self, start: int, end: int) -> None:
        """Make nonces ``start..end-1`` minable: rebroadcast the job holding one, or spend an
        unheld one on a zero-value transfer to ourselves."""
        held = {
            j.nonce: j
            for j in self._store.in_states(self.address, OUTSTANDING)
            if j.nonce is not None
        }
        for nonce in range(start, end):
            holder = held.get(nonce)
            if holder is not None:
                if self._chain.get_transaction(holder.tx_hash or "") is None:
                    self._broadcast(holder)
                continue
            fees = self._fee_suggestion(fresh=True)
            if _TRANSFER_GAS * fees.max_fee_per_gas > self._fee_cap:
                _log.error("nonce gap %d cannot be filled under the fee cap", nonce)
                return
            filler = Eip1559Transaction(
                chain_id=self._chain.chain_id,
                nonce=nonce,
                max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                max_fee_per_gas=fees.max_fee_per_gas,
                gas=_TRANSFER_GAS,
                to=self.address,
            )
            try:
                tx_hash = self._chain.send_raw_transaction(self._signer.sign_transaction(filler))
            except (AlreadyKnown, NonceTooLow):
                continue
            except ChainError as exc:
                _log.error("nonce gap %d not filled: %s", nonce, exc)
                return
            _log.warning("filled nonce gap %d with a no-op transfer %s", nonce, tx_hash)

    # ------------------------------------------------------------------ restart

    def reconcile(self) -> list[RelayJob]:
        """Settle every ``signed``/``submitted`` job against the chain (call at start-up and
        after any doubt); resets the local nonce and fee caches. Returns changed jobs."""
        with self._lock:
            self._next_nonce = None
            self._fees = None
            changed: list[RelayJob] = []
            outstanding = self._store.in_states(self.address, OUTSTANDING)
            if not outstanding:
                return changed
            # Read the mined nonce BEFORE any receipt: see the module docstring.
            mined_nonce = self._chain.get_transaction_count(self.address, "latest")
            for job in outstanding:
                assert job.nonce is not None and job.tx_hash is not None
                receipt = self._any_receipt(job)
                if receipt is not None:
                    changed.append(self._finish(job, receipt))
                elif job.nonce < mined_nonce:
                    changed.append(self._nonce_consumed(job))
                elif self._chain.get_transaction(job.tx_hash) is not None:
                    if job.state is JobState.SIGNED:
                        moved = self._save(
                            job, state=JobState.SUBMITTED, submitted_at_ms=self._now_ms()
                        )
                        changed.append(moved or job)
                else:
                    changed.append(self._broadcast(job))
            return changed

    def process(self) -> list[RelayJob]:
        """One relayer round: :meth:`submit` then :meth:`poll`."""
        with self._lock:
            return self.submit() + self.poll()
