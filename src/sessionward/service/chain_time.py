"""Time from a trusted source: the chain head's timestamp checks this node's clock (issue 13).

Every time bound the service enforces (session windows, quote and call deadlines) is read from
the node's clock, while the contract enforces the same bounds against ``block.timestamp``. A
node whose clock runs behind would go on signing calls after the session expired on chain: the
chain refuses them, but the service has already reserved budget and reported ``pending``. So
Execute first compares the node's clock with the chain head's timestamp and refuses to sign
(``CLOCK_SKEW``, HTTP 503: nothing reserved, nothing signed, the quote stays executable on a
healthy node) when

- the node is **behind** the head by more than ``max_clock_skew_s`` (the head's timestamp only
  grows, so this is certain skew), or
- the node is **ahead** of the head by more than ``max_clock_lead_s``, counting the time since
  the head was read (off by default: an idle development chain mines no block for hours, so a
  head far in the past proves nothing; on a chain with regular blocks set it above the block
  time plus the bound).

The head's timestamp is read at most every ``ttl_s`` seconds (one ``eth_getBlockByNumber``),
so Execute does not ask the chain each time. If the chain cannot be read, the last reading is
used while it is younger than ``max_clock_skew_s``; after that Execute answers
``CHAIN_UNAVAILABLE`` (503): without a trusted time the node does not sign.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sessionward.chain.errors import ChainError
from sessionward.chain.interface import Chain
from sessionward.reasons import ReasonCode

from .errors import unavailable

__all__ = ["ChainClock"]


class ChainClock:
    """The chain head's timestamp, cached for ``ttl_s`` seconds, and the clock check."""

    def __init__(
        self,
        chain: Chain,
        *,
        ttl_s: float,
        max_behind_s: int,
        max_ahead_s: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chain = chain
        self._ttl_s = ttl_s
        self._max_behind_s = max_behind_s
        self._max_ahead_s = max_ahead_s
        self._monotonic = monotonic
        self._reading: tuple[int, float] | None = None
        """(head timestamp, monotonic time it was read)"""
        self._lock = threading.Lock()

    def _head(self) -> tuple[int, float]:
        with self._lock:
            reading = self._reading
            now = self._monotonic()
            if reading is not None and now - reading[1] < self._ttl_s:
                return reading
            try:
                fresh = (self._chain.block_timestamp(), now)
            except ChainError:
                if reading is not None and now - reading[1] < self._max_behind_s:
                    return reading
                raise unavailable(
                    ReasonCode.CHAIN_UNAVAILABLE,
                    "the chain cannot be read to check this node's clock: nothing was signed",
                ) from None
            self._reading = fresh
            return fresh

    def check(self, now: int) -> None:
        """Return if ``now`` (this node's clock, unix seconds) agrees with the chain; raise a
        503 :class:`~sessionward.service.errors.ServiceError` (``CLOCK_SKEW`` or
        ``CHAIN_UNAVAILABLE``) otherwise."""
        head, read_at = self._head()
        behind = head - now
        if behind > self._max_behind_s:
            raise unavailable(
                ReasonCode.CLOCK_SKEW,
                f"this node's clock is {behind} s behind the chain head: it signs nothing",
            )
        if self._max_ahead_s is not None:
            ahead = now - (head + int(self._monotonic() - read_at))
            if ahead > self._max_ahead_s:
                raise unavailable(
                    ReasonCode.CLOCK_SKEW,
                    f"this node's clock is {ahead} s ahead of the chain head: it signs nothing",
                )
