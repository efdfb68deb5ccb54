"""Request rate limits per signer (issue 14, tenant isolation): token buckets, 429 + Retry-After.

Contracts:

- A request is counted only once its signature has verified (the check runs between the
  signature check and the nonce's record, see :class:`Authenticator`): an unauthenticated flood
  that names someone's credential id cannot spend that credential's budget.
- Each authenticated request takes one token from the bucket of its **signer** (a registered
  credential, or a ``cred="self"`` key) and, for an owner credential (the wallet's own key or a
  paired device), one from the bucket of its **wallet**: adding devices does not multiply an
  owner's budget. Both or neither are taken.
- A request over the limit is refused with ``429 RATE_LIMITED_REQUESTS`` and ``Retry-After``
  (whole seconds until a token is back) and changes nothing: its nonce is not recorded (the
  same signed request may be sent again after the wait, inside its window), its method does
  not run. ``RATE_LIMITED`` is another thing: a session envelope's ``rateLimit``.
- A signer whose bucket is already empty is refused the same way *before* its credential is
  read or its signature checked (:meth:`RateLimiter.refuse_early`, which takes nothing): only
  verified requests empty a bucket, so nobody else can bring that about, and a flood's excess
  then costs the node as little as possible (what it costs is the other tenants' latency;
  ``bench/fairness.py`` measures it).
- Buckets live in this process's memory: with N nodes behind a balancer a signer gets up to N
  times the rate. That is the documented default; a shared limiter would go in front.
  The table of buckets is bounded (``max_keys``): past it, full buckets (idle signers, whose
  state equals a fresh bucket) are dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from sessionward.reasons import ReasonCode

from .errors import ApiError

MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Sustained requests per second and burst (bucket size) per signer and per owner wallet."""

    per_credential_rps: float
    per_owner_rps: float
    burst: int


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by key; thread-safe (requests are answered on worker threads)."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if limits.per_credential_rps <= 0 or limits.per_owner_rps <= 0 or limits.burst < 1:
            raise ValueError("rates must be positive and the burst at least 1")
        self._limits = limits
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, *, signer: str, wallet_id: str | None) -> None:
        """Take a token for ``signer`` (and for ``wallet_id``, an owner's wallet) or raise
        ``429 RATE_LIMITED_REQUESTS`` with ``Retry-After``, taking none."""
        keys: list[tuple[str, float]] = [(f"signer:{signer}", self._limits.per_credential_rps)]
        if wallet_id is not None:
            keys.append((f"wallet:{wallet_id}", self._limits.per_owner_rps))
        wait = self._take(keys)
        if wait > 0:
            raise _refusal(wait)

    def refuse_early(self, *, signer: str) -> None:
        """Before any verification: raise the 429 at once if ``signer``'s bucket is empty now,
        taking nothing. Only requests whose signature verified ever empty a bucket, so nobody
        without the signer's key can bring this refusal about; it saves a flooding signer's
        excess requests the credential read and the signature check (their CPU is the other
        tenants' latency)."""
        with self._lock:
            bucket = self._buckets.get(f"signer:{signer}")
            if bucket is None:
                return
            rate = self._limits.per_credential_rps
            tokens = min(
                float(self._limits.burst), bucket.tokens + (self._clock() - bucket.at) * rate
            )
            wait = (1.0 - tokens) / rate if tokens < 1.0 else 0.0
        if wait > 0:
            raise _refusal(wait)

    def _take(self, keys: Sequence[tuple[str, float]]) -> float:
        """0 if a token was taken from every bucket, else the seconds until each has one."""
        now = self._clock()
        burst = float(self._limits.burst)
        with self._lock:
            buckets: list[_Bucket] = []
            wait = 0.0
            for key, rate in keys:
                bucket = self._buckets.get(key)
                if bucket is None:
                    self._make_room()
                    bucket = self._buckets[key] = _Bucket(burst, now)
                bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
                bucket.at = now
                if bucket.tokens < 1.0:
                    wait = max(wait, (1.0 - bucket.tokens) / rate)
                buckets.append(bucket)
            if wait > 0:
                return wait
            for bucket in buckets:
                bucket.tokens -= 1.0
            return 0.0

    def _make_room(self) -> None:
        if len(self._buckets) < self._max_keys:
            return
        now = self._clock()
        rate = min(self._limits.per_credential_rps, self._limits.per_owner_rps)
        burst = float(self._limits.burst)
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * rate >= burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:  # every signer busy: forget the oldest half
            for key in list(self._buckets)[: self._max_keys // 2]:
                del self._buckets[key]


def _refusal(wait: float) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        ReasonCode.RATE_LIMITED_REQUESTS,
        "too many requests from this signer: retry after the time in Retry-After",
        reason="request rate",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )
