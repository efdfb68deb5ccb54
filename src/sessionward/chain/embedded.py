"""The in-process chain: a :class:`Chain` on titanoboa's py-evm environment.

How raw transactions are applied (the design choice the module is built on): titanoboa's
``Env`` has no entry point for signed transactions, but the py-evm ``PragueVM`` underneath it
does. :meth:`EmbeddedChain.send_raw_transaction` therefore

1. decodes and checks the envelope with our own strict decoder
   (:func:`sessionward.chain.ethereum_transactions.decode_signed_transaction`: canonical RLP, low ``s``,
   recoverable sender) and checks what a node checks at submission (chain id, nonce, gas
   limits, base fee, balance, EIP-3607 sender without code);
2. hands the *same bytes*, decoded by py-evm's own transaction builder, to py-evm's
   ``state.apply_transaction``: gas purchase, nonce increment, EIP-7702 authorization
   processing, execution, refunds and the EIP-7623 data floor are py-evm's, not ours.

Block model (chosen to behave like anvil's automine, so the same tests hold on both): every
executable transaction is mined at once in its own block (number + 1); a transaction whose nonce
is ahead of the account's waits in a pool and is mined as soon as the gap is filled; the base fee
is constant. A block's timestamp is ``max(previous, clock + offset)`` (whole seconds): blocks
mined within one second share a timestamp, as on anvil, so chain time never runs ahead of the
clock however many transactions are mined (stamping each block a second after the previous
one made chain time run away under load, and calls of a live session failed ``SESSION_EXPIRED``
on chain). ``offset`` only grows, by :meth:`EmbeddedChain.time_travel`. ``eth_call``
and gas estimation run the same py-evm transaction pipeline inside a snapshot that is always
reverted, with a zero base fee so the caller needs no gas money (like a node's ``eth_call``).

The underlying titanoboa ``Env`` is exposed as :attr:`EmbeddedChain.env` for tests that want
boa's contract objects on the same state. All public methods take an internal lock, so one
instance can be shared by threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

from boa.environment import Env
from eth.exceptions import Revert
from eth.vm.spoof import SpoofTransaction
from eth_utils.exceptions import ValidationError as PyEvmValidationError

from sessionward.chain.errors import (
    AlreadyKnown,
    ExecutionReverted,
    FeeTooLow,
    GasLimitExceeded,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidTransaction,
    NonceTooLow,
    ReplacementUnderpriced,
    TransactionRejected,
)
from sessionward.chain.ethereum_transactions import (
    SignedTransaction,
    TransactionDecodingError,
    decode_signed_transaction,
)
from sessionward.chain.interface import (
    BlockTag,
    CallRequest,
    FeeSuggestion,
    Log,
    Receipt,
    TransactionView,
)
from sessionward.chain.revert import decode_revert_reason
from sessionward.crypto.secp256k1 import normalize_address

__all__ = ["EmbeddedChain"]

_ZERO_ADDRESS: Final = b"\x00" * 20
_DELEGATION_PREFIX: Final = b"\xef\x01\x00"
_SEND_REJECT_CODE: Final = -32003  # what anvil uses for pool refusals
# EIP-7623 (Prague): a transaction pays at least 21000 + 10 gas per calldata token.
_FLOOR_PER_TOKEN: Final = 10
_BASE_TX_GAS: Final = 21_000
# A pooled transaction is replaced only by one paying at least 10 % more (geth's rule).
_REPLACEMENT_BUMP_PERCENT: Final = 10


def _raw_address(address: str) -> bytes:
    return bytes.fromhex(normalize_address(address)[2:])


def _hex_address(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def _floor_gas(data: bytes) -> int:
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return _BASE_TX_GAS + _FLOOR_PER_TOKEN * tokens


class EmbeddedChain:
    """An in-process EVM (Prague rules) implementing :class:`~sessionward.chain.interface.Chain`
    and :class:`~sessionward.chain.interface.DevChain`.

    ``clock`` gives wall-clock seconds for block timestamps (inject a fake clock in tests);
    ``start_timestamp`` (default: the clock) is the genesis timestamp, below which no block
    goes. ``priority_fee_wei`` is the tip :meth:`max_fee` suggests; the base fee never changes.
    """

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        base_fee_wei: int = 1_000_000_000,
        priority_fee_wei: int = 1_000_000_000,
        block_gas_limit: int = 30_000_000,
        start_timestamp: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if chain_id <= 0 or base_fee_wei < 0 or priority_fee_wei < 0 or block_gas_limit <= 0:
            raise ValueError("chain id and gas limit must be positive, fees non-negative")
        self._lock = threading.RLock()
        self._clock = clock
        self._time_offset = 0
        self._chain_id = chain_id
        self._priority_fee = priority_fee_wei
        self._env = Env()
        patch = self._env.evm.patch
        patch.chain_id = chain_id
        patch.gas_limit = block_gas_limit
        patch.block_number = 0
        patch.timestamp = int(clock()) if start_timestamp is None else start_timestamp
        self._base_fee_wei = base_fee_wei
        self._state.execution_context._base_fee_per_gas = base_fee_wei
        self._receipts: dict[str, Receipt] = {}
        self._transactions: dict[str, TransactionView] = {}
        self._pool: dict[tuple[str, int], SignedTransaction] = {}

    # ------------------------------------------------------------------ plumbing

    @property
    def env(self) -> Any:
        """The titanoboa ``Env`` holding this chain's state (tests only)."""
        return self._env

    @property
    def _state(self) -> Any:
        return self._env.evm.vm.state

    @property
    def _base_fee(self) -> int:
        # Not read from the execution context: a simulation zeroes it there for a moment.
        return self._base_fee_wei

    @property
    def _gas_limit(self) -> int:
        return int(self._env.evm.patch.gas_limit)

    def _open_block(self) -> None:
        """Start the next block: number + 1, timestamp ``max(previous, clock + offset)``."""
        patch = self._env.evm.patch
        patch.timestamp = max(patch.timestamp, int(self._clock()) + self._time_offset)
        patch.block_number = patch.block_number + 1

    # ------------------------------------------------------------------ reads

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def block_number(self) -> int:
        with self._lock:
            return int(self._env.evm.patch.block_number)

    def block_timestamp(self) -> int:
        with self._lock:
            return int(self._env.evm.patch.timestamp)

    def get_balance(self, address: str) -> int:
        with self._lock:
            return int(self._state.get_balance(_raw_address(address)))

    def get_code(self, address: str) -> bytes:
        with self._lock:
            return bytes(self._state.get_code(_raw_address(address)))

    def get_transaction_count(self, address: str, block: BlockTag = "pending") -> int:
        # Automine: every executable transaction is mined at once, so pending == latest
        # (gapped pool transactions are not counted, as on anvil).
        if block not in ("latest", "pending"):
            raise ValueError("block must be 'latest' or 'pending'")
        with self._lock:
            return int(self._state.get_nonce(_raw_address(address)))

    def gas_price(self) -> int:
        return self._base_fee + self._priority_fee

    def max_fee(self) -> FeeSuggestion:
        return FeeSuggestion.from_base_fee(self._base_fee, self._priority_fee)

    # ------------------------------------------------------------------ simulation

    def _spoofed(self, request: CallRequest, gas: int) -> Any:
        builder = self._env.evm.vm.get_transaction_builder()
        sender = _ZERO_ADDRESS if request.sender is None else _raw_address(request.sender)
        to = b"" if request.to is None else _raw_address(request.to)
        common = {
            "chain_id": self._chain_id,
            "nonce": self._state.get_nonce(sender),
            "max_priority_fee_per_gas": 0,
            "max_fee_per_gas": 0,
            "gas": gas,
            "to": to,
            "value": request.value,
            "data": request.data,
            "access_list": [],
        }
        if request.authorization_list:
            auths = [
                {
                    "chain_id": a.chain_id,
                    "address": _raw_address(a.address),
                    "nonce": a.nonce,
                    "y_parity": a.y_parity,
                    "r": a.r,
                    "s": a.s,
                }
                for a in request.authorization_list
            ]
            unsigned = builder.new_unsigned_set_code_transaction(**common, authorization_list=auths)
        else:
            unsigned = builder.new_unsigned_dynamic_fee_transaction(**common)
        return SpoofTransaction(unsigned, from_=sender)

    def _run_reverted(self, request: CallRequest, gas: int) -> Any:
        """Run ``request`` through py-evm's transaction pipeline and undo everything."""
        state = self._state
        context = state.execution_context
        saved_base_fee = context._base_fee_per_gas
        # A transaction starts with cold access lists and its storage "original values" set
        # to the current state (EIP-2929 / EIP-2200): lock what came before, like a block does.
        state.lock_changes()
        snapshot = state.snapshot()
        context._base_fee_per_gas = 0
        try:
            return state.apply_transaction(self._spoofed(request, gas))
        except PyEvmValidationError as exc:
            message = str(exc)
            if "balance" in message or "afford" in message:
                raise InsufficientFunds(
                    _SEND_REJECT_CODE, "insufficient funds for gas * price + value"
                ) from None
            raise InvalidTransaction(-32000, message) from None
        finally:
            context._base_fee_per_gas = saved_base_fee
            state.revert(snapshot)

    @staticmethod
    def _raise_if_failed(computation: Any) -> None:
        if computation.is_error:
            data = bytes(computation.output) if isinstance(computation.error, Revert) else b""
            reason = decode_revert_reason(data)
            if isinstance(computation.error, Revert):
                raise ExecutionReverted(reason, data)
            raise ExecutionReverted(None, b"", message=f"execution failed: {computation.error!r}")

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> bytes:
        return self.simulate(CallRequest(to=to, data=data, value=value, sender=sender))

    def simulate(self, request: CallRequest) -> bytes:
        with self._lock:
            computation = self._run_reverted(request, self._gas_limit)
            self._raise_if_failed(computation)
            return bytes(computation.output)

    def estimate_gas(self, request: CallRequest) -> int:
        """Smallest gas limit (to within 1/64) that succeeds: the pre-refund usage of a run
        with the block gas limit, checked by a second run, else bisected upwards (the 63/64
        rule can make a call need more gas than it uses)."""
        with self._lock:
            limit = self._gas_limit
            computation = self._run_reverted(request, limit)
            self._raise_if_failed(computation)
            needed = max(limit - int(computation.get_gas_remaining()), _floor_gas(request.data))
            if needed >= limit or self._succeeds(request, needed):
                return min(needed, limit)
            failing, passing = needed, limit
            while passing - failing > max(1, failing // 64):
                middle = (failing + passing) // 2
                if self._succeeds(request, middle):
                    passing = middle
                else:
                    failing = middle
            return passing

    def _succeeds(self, request: CallRequest, gas: int) -> bool:
        try:
            return not self._run_reverted(request, gas).is_error
        except InvalidTransaction:  # below the intrinsic gas
            return False

    # ------------------------------------------------------------------ transactions

    def _check_submission(self, signed: SignedTransaction) -> Any:
        """What a node checks before pooling; returns py-evm's decoding of the same bytes."""
        tx = signed.unsigned
        state = self._state
        sender = _raw_address(signed.sender)
        if tx.chain_id != self._chain_id:
            raise InvalidTransaction(_SEND_REJECT_CODE, "invalid chain id for signer")
        if tx.nonce < state.get_nonce(sender):
            raise NonceTooLow(_SEND_REJECT_CODE, "nonce too low")
        if tx.gas > self._gas_limit:
            raise GasLimitExceeded(-32000, "intrinsic gas too high -- tx.gas_limit > block limit")
        py_tx = self._env.evm.vm.get_transaction_builder().decode(signed.raw)
        if tx.gas < max(int(py_tx.intrinsic_gas), _floor_gas(tx.data)):
            raise IntrinsicGasTooLow(-32000, "intrinsic gas too low")
        if tx.max_fee_per_gas < self._base_fee:
            raise FeeTooLow(_SEND_REJECT_CODE, "max fee per gas less than block base fee")
        if state.get_balance(sender) < tx.gas * tx.max_fee_per_gas + tx.value:
            raise InsufficientFunds(_SEND_REJECT_CODE, "insufficient funds for gas * price + value")
        code = bytes(state.get_code(sender))
        if code and not code.startswith(_DELEGATION_PREFIX):
            raise InvalidTransaction(_SEND_REJECT_CODE, "sender not an eoa (EIP-3607)")
        return py_tx

    def send_raw_transaction(self, raw: bytes) -> str:
        try:
            signed = decode_signed_transaction(raw)
        except TransactionDecodingError as exc:
            raise InvalidTransaction(
                -32602, f"failed to decode signed transaction: {exc}"
            ) from None
        with self._lock:
            key = (signed.sender, signed.unsigned.nonce)
            pooled = self._pool.get(key)
            if pooled is not None and pooled.hash == signed.hash:
                raise AlreadyKnown(_SEND_REJECT_CODE, "transaction already imported")
            py_tx = self._check_submission(signed)
            account_nonce = int(self._state.get_nonce(_raw_address(signed.sender)))
            if signed.unsigned.nonce > account_nonce:
                if pooled is not None and not self._outbids(signed, pooled):
                    raise ReplacementUnderpriced(
                        _SEND_REJECT_CODE, "replacement transaction underpriced"
                    )
                if pooled is not None:
                    del self._transactions[pooled.hash]
                self._pool[key] = signed
                self._transactions[signed.hash] = TransactionView(
                    signed.hash, signed.sender, signed.unsigned.nonce, None
                )
                return signed.hash
            self._mine(signed, py_tx)
            self._drain_pool(signed.sender)
            return signed.hash

    @staticmethod
    def _outbids(new: SignedTransaction, old: SignedTransaction) -> bool:
        factor = 100 + _REPLACEMENT_BUMP_PERCENT
        return (
            new.unsigned.max_fee_per_gas * 100 >= old.unsigned.max_fee_per_gas * factor
            and new.unsigned.max_priority_fee_per_gas * 100
            >= old.unsigned.max_priority_fee_per_gas * factor
        )

    def _drain_pool(self, sender: str) -> None:
        while True:
            nonce = int(self._state.get_nonce(_raw_address(sender)))
            queued = self._pool.pop((sender, nonce), None)
            if queued is None:
                return
            try:
                py_tx = self._check_submission(queued)
            except TransactionRejected:
                # No longer executable: dropped, as a node's pool eventually would.
                self._transactions.pop(queued.hash, None)
                return
            self._mine(queued, py_tx)

    def _mine(self, signed: SignedTransaction, py_tx: Any) -> None:
        """Execute one checked transaction in a new block and record its receipt."""
        vm = self._env.evm.vm
        state = self._state
        previous = (self._env.evm.patch.block_number, self._env.evm.patch.timestamp)
        self._open_block()
        state.lock_changes()  # see _run_reverted: per-transaction warm sets and original values
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(py_tx)
        except PyEvmValidationError as exc:
            state.revert(snapshot)
            self._env.evm.patch.block_number, self._env.evm.patch.timestamp = previous
            raise InvalidTransaction(_SEND_REJECT_CODE, str(exc)) from None
        state.commit(snapshot)
        tx = signed.unsigned
        block = int(self._env.evm.patch.block_number)
        logs = tuple(
            Log(
                address=_hex_address(address),
                topics=tuple(int(t).to_bytes(32, "big") for t in topics),
                data=bytes(data),
                log_index=index,
            )
            for index, (address, topics, data) in enumerate(computation.get_log_entries())
        )
        failed = bool(computation.is_error)
        revert_data = (
            bytes(computation.output)
            if failed and isinstance(computation.error, Revert)
            else (b"" if failed else None)
        )
        created = None
        if tx.to is None:
            created = _hex_address(computation.msg.storage_address)
        self._receipts[signed.hash] = Receipt(
            tx_hash=signed.hash,
            succeeded=not failed,
            gas_used=int(type(vm).finalize_gas_used(py_tx, computation)),
            effective_gas_price=min(
                tx.max_fee_per_gas, self._base_fee + tx.max_priority_fee_per_gas
            ),
            block_number=block,
            sender=signed.sender,
            to=tx.to,
            contract_address=created,
            logs=logs,
            revert_reason=decode_revert_reason(revert_data),
            revert_data=revert_data,
        )
        self._transactions[signed.hash] = TransactionView(
            signed.hash, signed.sender, tx.nonce, block
        )

    def get_receipt(self, tx_hash: str) -> Receipt | None:
        with self._lock:
            return self._receipts.get(tx_hash.lower())

    def get_transaction(self, tx_hash: str) -> TransactionView | None:
        with self._lock:
            return self._transactions.get(tx_hash.lower())

    # ------------------------------------------------------------------ dev helpers

    def set_balance(self, address: str, wei: int) -> None:
        if wei < 0:
            raise ValueError("a balance is non-negative")
        with self._lock:
            self._state.set_balance(_raw_address(address), wei)

    def set_code(self, address: str, code: bytes) -> None:
        with self._lock:
            self._env.set_code(normalize_address(address), bytes(code))

    def mine(self) -> None:
        """Mine an empty block stamped with the clock (the previous block's time if the clock
        has not moved past it)."""
        with self._lock:
            self._open_block()

    def time_travel(self, seconds: int) -> None:
        """Move the chain's clock ``seconds`` ahead of the injected clock (cumulatively) and
        mine an empty block carrying the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._time_offset += seconds
            self._open_block()
