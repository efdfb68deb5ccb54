"""Usage counters and the charges a decision asks the store to reserve.

A session's usage is a set of *buckets*, each a running total inside a *window*:

====================  ==========================================  ===========================
bucket                measures                                    window
====================  ==========================================  ===========================
``uses``              executions                                  always 0 (whole session)
``native``            native value leaving the account (wei)      ``(now - validAfter) // valuePeriod`` or 0
``token:<address>``   outflow of one ERC-20 (its base units)      same rule with the token's period
``usd``               USD value of every outflow (micro-USD)      always 0
``fee``               relayer fee budget (wei)                    always 0
``rate``              executions inside one rate interval         ``(now - validAfter) // interval``
====================  ==========================================  ===========================

A counter stored for an older window than the current one reads as zero: that is how periods
refill. Usage always includes in-flight reservations; a reservation released after a failed
transaction gives its amounts back (if its window is still current).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sessionward.reasons import ReasonCode

USES = "uses"
NATIVE = "native"
USD = "usd"
FEE = "fee"
RATE = "rate"
TOKEN_PREFIX = "token:"


def token_bucket(token: str) -> str:
    """The bucket name of an ERC-20 token's outflow (``token`` is a lower-case address)."""
    return TOKEN_PREFIX + token


def window_index(now: int, anchor: int, period: int) -> int:
    """The refilling window that contains ``now``.

    Windows are ``[anchor + k*period, anchor + (k+1)*period)``: a period refills *exactly* at
    ``anchor + k*period``. A period of 0 means no refill (one window for the whole session).
    Times before the anchor fall in window 0.
    """
    if period <= 0 or now <= anchor:
        return 0
    return (now - anchor) // period


@dataclass(frozen=True, slots=True)
class Counter:
    """The total of a bucket in a given window."""

    window: int
    amount: int


@dataclass(frozen=True, slots=True)
class Usage:
    """A snapshot of a session's counters (reservations included)."""

    counters: Mapping[str, Counter] = field(default_factory=dict)

    def spent(self, bucket: str, window: int) -> int:
        """What the bucket holds in ``window``; zero if its counter belongs to an older window."""
        counter = self.counters.get(bucket)
        if counter is None or counter.window != window:
            return 0
        return counter.amount


EMPTY_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount to add to one bucket, allowed only while the total stays ``<= limit``.

    ``reason`` is the code reported when the store finds the limit would be crossed (another
    request may have spent the budget between the decision and the reservation).
    """

    bucket: str
    window: int
    amount: int
    limit: int
    reason: ReasonCode
