"""Fixtures of the SDK tests: one Waas served by a real uvicorn on a free 127.0.0.1 port per
module, with the relayer running; every test makes its own clients, wallets and sessions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import OpsClient
from sessionward.server import BackgroundServer
from sessionward.service.config import OpsCredential, Settings
from sessionward.service.waas import Waas

_OPS_SECRETS = [secrets.token_bytes(32) for _ in range(2)]
_OPS = [
    OpsCredential(f"ops-{i}", "ecdsa-p256k-eip191", Secp256k1RequestSigner(s).address)
    for i, s in enumerate(_OPS_SECRETS)
]


@pytest.fixture(scope="module")
def waas(tmp_path_factory: pytest.TempPathFactory) -> Waas:
    return Waas.from_settings(
        Settings(
            data_dir=tmp_path_factory.mktemp("waas"),
            ops_credentials=tuple(_OPS),
            relayer_poll_s=0.05,
        )
    )


@pytest.fixture(scope="module")
def url(waas: Waas) -> Iterator[str]:
    """The base URL of the running server (the relayer runs meanwhile)."""
    with BackgroundServer(waas) as base_url:
        yield base_url


@pytest.fixture
def ops(url: str) -> Iterator[list[OpsClient]]:
    clients = [
        OpsClient(url, Secp256k1RequestSigner(s), c.id)
        for s, c in zip(_OPS_SECRETS, _OPS, strict=True)
    ]
    yield clients
    for client in clients:
        client.close()
