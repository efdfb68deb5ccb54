"""Fixtures of the crypto tests (the plain helpers live in ``crypto_support``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crypto_support import build_grant, eth_account_digest

from sessionward.crypto.typed_data import typed_data_document


@pytest.fixture
def grant_message() -> dict[str, Any]:
    """The realistic 8-permission grant message of ``crypto_support.build_grant``."""
    return build_grant()


@pytest.fixture
def reference_digest() -> Callable[[str, int, str, dict[str, Any]], bytes]:
    """``(primary_type, chain_id, account, message) -> digest`` computed by eth_account from our
    own JSON document (so the document is checked at the same time)."""

    def digest(primary_type: str, chain_id: int, account: str, message: dict[str, Any]) -> bytes:
        return eth_account_digest(typed_data_document(primary_type, chain_id, account, message))

    return digest
