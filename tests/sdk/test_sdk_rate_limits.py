"""The SDK against a real server with tight request-rate limits: a client that goes over its
signer's burst waits out the ``Retry-After`` of the 429 and its request then succeeds, once."""

from __future__ import annotations

import secrets
import time

import pytest

from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

BURST = 2
RPS = 1.0


@pytest.fixture(scope="module")
def waas(tmp_path_factory: pytest.TempPathFactory) -> Waas:
    """This module's service (``url`` serves it): a burst of 2, then one request a second."""
    return Waas.from_settings(
        Settings(
            data_dir=tmp_path_factory.mktemp("waas"),
            run_relayer=False,
            rate_limit_per_credential_rps=RPS,
            rate_limit_per_owner_rps=RPS,
            rate_limit_burst=BURST,
        )
    )


def test_a_client_over_its_burst_waits_out_the_limit_and_succeeds(url: str) -> None:
    with BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32))) as backend:
        backend.register("Rate Test", "https://rate.example", int(time.time()) + 3600)
        started = time.monotonic()
        for _ in range(BURST + 2):
            assert backend.list_sessions(limit=5)["items"] == []
        # The burst was spent by the registration and the first reads: later reads waited.
        assert time.monotonic() - started >= 1.0
