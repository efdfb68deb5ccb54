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

    def with_prices(self, extra: Mapping[tuple[int, str | None], Price]) -> FixedPrices:
        return FixedPrices({**self.table, **extra})


DEFAULT_PRICES = FixedPrices(
    {
        (1, NATIVE_ASSET): Price(Decimal(3000), 18),
        (1, "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"): Price(Decimal(3000), 18),  # WETH
        (1, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"): Price(Decimal(1), 6),  # USDC
        (1, "0xdac17f958d2ee523a2206206994597c13d831ec7"): Price(Decimal(1), 6),  # USDT
        (1, "0x6b175474e89094c44da98b954eedeac495271d0f"): Price(Decimal(1), 18),  # DAI
    }
)
