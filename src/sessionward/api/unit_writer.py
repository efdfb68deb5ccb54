"""One thread that runs the requests needing a unit of work, and commits them in groups.

On SQLite every write transaction takes the database's one write lock, so Execute requests
run one after another whatever the number of threads. Running them on the event loop's
worker-thread pool made each pay a thread hop of its own, a wait for the lock, its own BEGIN
and commit, and a share of the contention between forty threads for the lock and the GIL.
:class:`UnitWriter` runs them instead on ONE thread, a batch at a time: every request that
arrived while the previous batch ran forms the next one, and the batch commits once
(:meth:`sessionward.store.database.Database.run_units`). An idle server runs a lone request
at once, so batching adds no wait; a busy one gets larger batches and fewer commits.

On PostgreSQL the same: a node's units run on the one writer thread and commit in groups.
There each unit in its own transaction on a thread of its own cost a BEGIN and a COMMIT
round trip, a pooled connection and a thread hand-off per round trip (measured at 32
connections, server and database CPU per session call together: 7.4-8.5 ms that way, 4.9-5.4
ms grouped). A second writer thread was measured too: no more calls per second, more CPU.

Answers are released only after the batch's commit has returned: a client never sees a
signature whose reservation could still be rolled back.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Final, Generic, TypeVar

T = TypeVar("T")

_log = logging.getLogger("sessionward.api")

RunUnits = Callable[[Sequence[Callable[[], T]]], list[T | Exception]]
"""Runs callables as units of work committed together; their outcomes, in order."""

DEFAULT_MAX_BATCH: Final = 16
"""Units per commit at most: a batch holds the write lock for its whole length, so a revocation
waiting for it waits at most this many units (about 13 ms here). Measured at 32 connections, 16
and 32 serve as many Executes per second; 8 serves about 10 % fewer (more commits)."""

_Job = tuple[Callable[[], T], asyncio.Future[T]]


def run_each(units: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run the units in turn, without a database: what each returned or raised. (A writer for
    work that needs no transaction, such as the benchmark's floor.)"""
    outcomes: list[T | Exception] = []
    for unit in units:
        try:
            outcomes.append(unit())
        except Exception as failed:
            outcomes.append(failed)
    return outcomes


class UnitWriter(Generic[T]):
    """``await writer.run(unit)`` runs ``unit`` on the writer thread, grouped with whatever
    else is queued, and returns its outcome (or raises its exception) once the group's
    commit has returned.

    Callers on any event loop may share one writer (each answer is delivered on its caller's
    loop). The thread starts with the first unit and ends with :meth:`close`; it is a daemon
    thread, so an interpreter exiting without :meth:`close` loses only what had not committed
    and was therefore never answered.
    """

    def __init__(
        self,
        run_units: RunUnits[T],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str = "sessionward-units",
    ) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one unit")
        self._run_units = run_units
        self._max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[_Job[T] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def run(self, unit: Callable[[], T]) -> T:
        """The outcome of ``unit``, run as a unit of work on the writer thread. Raises
        ``RuntimeError`` once the writer is closed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the unit writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put((unit, future))
        return await future

    def close(self, timeout_s: float = 30.0) -> None:
        """Run what is queued, then stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout=timeout_s)

    # --- on the writer thread -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: Sequence[_Job[T]]) -> None:
        outcomes: Sequence[T | BaseException]
        try:
            outcomes = self._run_units([unit for unit, _ in batch])
        except BaseException:  # run_units gives each unit's exception back; this is an interrupt
            _log.exception("a group of units of work was interrupted (rolled back)")
            outcomes = [RuntimeError("the unit of work was interrupted")] * len(batch)
        _settle_all(batch, outcomes)


def _settle_all(batch: Sequence[_Job[T]], outcomes: Sequence[T | BaseException]) -> None:
    """Hand each outcome to its future, one call per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[T], T | BaseException]]]
    by_loop = {}
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, settled in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting for those answers any more.
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: Sequence[tuple[asyncio.Future[T], T | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():  # the waiting request was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
