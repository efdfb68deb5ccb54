"""The well-known scenario every room's tests share: addresses, times, the seed envelope.

A plain module (not a conftest) so that test modules and support modules can import it by name.
"""

from __future__ import annotations

from typing import Any

CHAIN_ID = 1
ACCOUNT = "0x1111111111111111111111111111111111111111"
OTHER_ACCOUNT = "0x2222222222222222222222222222222222222222"
SESSION_KEY = "0x5e5510e0000000000000000000000000000000a1"
ROUTER_A = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"  # Uniswap V2 Router 02 (catalog)
ROUTER_B = "0xe592427a0aece92de3edee1f18e0157c05861564"  # Uniswap V3 SwapRouter (catalog)
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
TOKEN_X = "0x7070707070707070707070707070707070707070"  # an ERC-20 known only through tokenLimits
MERCHANT = "0x3333333333333333333333333333333333333333"
STRANGER = "0x4444444444444444444444444444444444444444"
NOW = 1_771_700_000  # 2026-02-21 18:53:20 UTC
SEED_EXPIRY = 1_771_703_600  # the seed envelope's expiresAt: 2026-02-21 19:53:20 UTC


def seed_document(**overrides: Any) -> dict[str, Any]:
    """The seed envelope of docs/design.md section 3, with real addresses; ``overrides`` replace fields."""
    doc: dict[str, Any] = {
        "sessionKey": SESSION_KEY,
        "capabilities": ["swap.execute"],
        "maxValueUsd": 500,
        "allowedDestinations": [ROUTER_A],
        "chainId": CHAIN_ID,
        "expiresAt": SEED_EXPIRY,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}
