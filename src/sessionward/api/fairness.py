"""Fair scheduling between tenants (issue 14, tenant isolation): one tenant's flood must not
starve another.

The rate limits (:mod:`.rate_limit`) bound what a tenant is *served*; they cannot bound what
its requests *cost* before they are refused, nor the order in which admitted work runs. On a
node with few cores and one interpreter lock, a victim's request that runs beside eight of a
flooder's shares the lock with all eight. This module decides, on the event loop and before
any expensive work (the signature check, the credential read, the method), which request runs
next:

- A request's **tenant** is named cheaply, from its signature header's ``cred`` parameter
  (no parsing of the body, no verification) and the peer's address: :func:`tenant_of`. The
  name is a claim, used only to order work; a forger who names someone else's credential from
  another address waits in a queue of its own, never in the victim's. Unsigned requests queue
  per peer address.
- At most ``slots`` requests run at once (:class:`FairScheduler`); the others wait, costing no
  CPU, in a FIFO queue of their tenant. When a request finishes, its slot goes to the waiting
  tenant with the fewest requests running, ties broken round-robin: the tenant whose last
  request started longest ago (or never) first, then the one waiting longest. A tenant alone
  on the node gets every slot; waiting tenants take turns; a newcomer is served before a
  tenant that holds slots or was just served. So a victim's request waits for one of the
  requests already running to finish, never behind a flooder's queue.
- A tenant may have at most ``max_queued`` requests waiting; past it, it is refused at once
  with ``429 RATE_LIMITED_REQUESTS`` and ``Retry-After`` (nothing ran, nothing changed).

Everything here runs on one event loop (the ASGI server's), without locks; a waiting request
that is cancelled (its client went away) leaves its queue, and a slot handed to it is passed on.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from sessionward.reasons import ReasonCode

from .errors import ApiError

_CRED: Final = re.compile(r'(?:^|[,\s])cred="([^"]{1,200})"')


def tenant_of(signature_header: str | None, peer: str | None) -> str:
    """The scheduling key of a request: the ``cred`` its signature header names (without
    checking anything) at the peer's address; ``public`` for a request without one."""
    match = _CRED.search(signature_header) if signature_header else None
    claimed = match.group(1) if match else "public"
    return f"{claimed}@{peer or '?'}"


def claimed_credential(signature_header: str | None) -> str | None:
    """The registered credential id a signature header names, unverified (None for
    ``cred="self"``, no header or no ``cred``): what the early rate-limit check is keyed by."""
    match = _CRED.search(signature_header) if signature_header else None
    if match is None or match.group(1) == "self":
        return None
    return match.group(1)


class FairScheduler:
    """``async with scheduler.turn(tenant):`` runs its block once one of ``slots`` is free
    and it is ``tenant``'s turn (see the module docstring). Not thread-safe: one event loop."""

    def __init__(self, *, slots: int, max_queued: int) -> None:
        if slots < 1 or max_queued < 0:
            raise ValueError("at least one slot, and max_queued cannot be negative")
        self._slots = slots
        self._max_queued = max_queued
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._ring: deque[str] = deque()  # tenants with waiters, in the order they began waiting
        self._started: dict[str, int] = {}  # tenant -> sequence number of its latest start
        self._starts = 0
        self._busy = 0

    @property
    def running(self) -> int:
        """Requests holding a slot now."""
        return self._busy

    def waiting(self, tenant: str | None = None) -> int:
        """Requests waiting for a slot (of ``tenant``, or of everyone)."""
        if tenant is not None:
            return len(self._waiting.get(tenant, ()))
        return sum(len(q) for q in self._waiting.values())

    @asynccontextmanager
    async def turn(self, tenant: str) -> AsyncIterator[None]:
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    async def _acquire(self, tenant: str) -> None:
        if self._busy < self._slots and not self._ring:
            self._start(tenant)
            return
        queue = self._waiting.get(tenant)
        if queue is None:
            queue = self._waiting[tenant] = deque()
        if len(queue) >= self._max_queued:
            if not queue:
                del self._waiting[tenant]
            raise queue_full()
        if not queue:
            self._ring.append(tenant)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future  # resolved by _release, which has already counted us as running
        except BaseException:
            if future.done() and not future.cancelled():
                self._release(tenant)  # the slot was ours: hand it on
            else:
                self._forget(tenant, future)
            raise

    def _start(self, tenant: str) -> None:
        self._busy += 1
        self._running[tenant] = self._running.get(tenant, 0) + 1
        self._starts += 1
        self._started[tenant] = self._starts

    def _release(self, tenant: str) -> None:
        left = self._running[tenant] - 1
        if left:
            self._running[tenant] = left
        else:
            del self._running[tenant]
            if tenant not in self._waiting:  # idle again: as if never served (bounded state)
                self._started.pop(tenant, None)
        self._busy -= 1
        while self._ring and self._busy < self._slots:
            self._hand_slot()

    def _hand_slot(self) -> None:
        """Give a free slot to the waiting tenant with the fewest requests running, then the
        one whose last start is oldest (never: oldest of all), then the first in the ring; it
        goes to the back of the ring if it still has waiters. A waiter cancelled meanwhile is
        skipped."""
        best = min(range(len(self._ring)), key=self._priority)
        tenant = self._ring[best]
        del self._ring[best]
        queue = self._waiting[tenant]
        future = queue.popleft()
        while future.done() and queue:
            future = queue.popleft()
        if queue:
            self._ring.append(tenant)
        else:
            del self._waiting[tenant]
        if not future.done():
            self._start(tenant)
            future.set_result(None)
        elif tenant not in self._running and tenant not in self._waiting:
            self._started.pop(tenant, None)  # only cancelled waiters were left

    def _priority(self, index: int) -> tuple[int, int, int]:
        tenant = self._ring[index]
        return self._running.get(tenant, 0), self._started.get(tenant, 0), index

    def _forget(self, tenant: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is None or future not in queue:
            return  # already taken off by _hand_slot
        queue.remove(future)
        if not queue:
            del self._waiting[tenant]
            self._ring.remove(tenant)
            if tenant not in self._running:
                self._started.pop(tenant, None)


def queue_full() -> ApiError:
    """The refusal of a request whose tenant already has its maximum waiting."""
    return ApiError(
        429,
        "TooManyRequests",
        ReasonCode.RATE_LIMITED_REQUESTS,
        "too many requests from this signer waiting: retry after the time in Retry-After",
        reason="requests waiting",
        headers={"Retry-After": "1"},
    )
