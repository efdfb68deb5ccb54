"""USD pricing of outflows, behind a small pluggable interface.

Prices only ever *bound* spending, so values are rounded up: a price source can make the engine
stricter than exact arithmetic, never looser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

NATIVE_ASSET: None = None
"""Key of a chain's native coin in price tables."""


class PriceSource(Protocol):
    def usd_value(self, chain_id: int, token: str | None, amount: int) -> int | None:
        """Micro-USD value of ``amount`` base units of ``token`` (``None`` = native coin), rounded
        up, or ``None`` when the price is unknown."""
        ...

    def priced_tokens(self, chain_id: int) -> tuple[str, ...]:
        """The tokens (not the native coin) this source prices on ``chain_id``, sorted."""
        ...


@dataclass(frozen=True, slots=True)
class Price:
    """``usd`` per whole unit of an asset with ``decimals`` decimals."""

    usd: Decimal
    decimals: int
    numerator: int = field(init=False, repr=False)
    denominator: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # micro-USD per base unit as an exact fraction, so tiny prices never round to zero.
        usd_n, usd_d = self.usd.as_integer_ratio()
        object.__setattr__(self, "numerator", usd_n * 1_000_000)
        object.__setattr__(self, "denominator", usd_d * 10**self.decimals)

    def micro_usd(self, amount: int) -> int:
        """The value of ``amount`` base units in micro-USD, rounded up."""
        return -(-amount * self.numerator // self.denominator)


@dataclass(frozen=True)
class FixedPrices:
    """A fixed price table: the default, and what tests and the demo use."""

    table: Mapping[tuple[int, str | None], Price] = field(default_factory=dict)

    def usd_value(self, chain_id: int, token: str | None, amount: int) -> int | None:
        price = self.table.get((chain_id, token))
        if price is None:
            return None
        return price.micro_usd(amount)

    def priced_tokens(self, chain_id: int) -> tuple[str, ...]:
        return tuple(sorted(t for c, t in self.table if c == chain_id and t is not None))

    def with_prices(self, extra: Mapping[tuple[int, str | None], Price]) -> FixedPrices:
        return FixedPrices({**self.table, **extra})


_AMOUNT_LIMIT = 2**256 - 1


def max_amount_within(
    prices: PriceSource, chain_id: int, asset: str | None, cap_micro_usd: int
) -> int | None:
    """The largest amount of ``asset`` whose USD value, as ``prices`` rounds it (up), is at most
    ``cap_micro_usd``; ``None`` when the asset has no price.

    This is how a USD cap becomes an on-chain limit in token units: an outflow the limit admits
    is never worth more than the cap at these prices, and one base unit more would be (for any
    price source whose value is non-decreasing in the amount). Pure; binary search, so exact
    for every price source, not only :class:`FixedPrices`.
    """
    if prices.usd_value(chain_id, asset, 0) is None:
        return None
    low, high = 0, _AMOUNT_LIMIT
    while low < high:
        middle = (low + high + 1) // 2
        value = prices.usd_value(chain_id, asset, middle)
        if value is not None and value <= cap_micro_usd:
            low = middle
        else:
            high = middle - 1
    return low


DEFAULT_PRICES = FixedPrices(
    {
        (1, NATIVE_ASSET): Price(Decimal(3000), 18),
        (1, "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"): Price(Decimal(3000), 18),  # WETH
        (1, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"): Price(Decimal(1), 6),  # USDC
        (1, "0xdac17f958d2ee523a2206206994597c13d831ec7"): Price(Decimal(1), 6),  # USDT
        (1, "0x6b175474e89094c44da98b954eedeac495271d0f"): Price(Decimal(1), 18),  # DAI
    }
)
