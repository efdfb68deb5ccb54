"""Fixtures of the webhook tests: a fresh Ed25519 webhook key, real receivers on free loopback
ports, and dispatchers with fast retries (10 ms base backoff) that are closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from webhook_support import FAST, Receiver

from sessionward.service.webhooks import WebhookDispatcher, WebhookPolicy, WebhookSigningKey


@pytest.fixture
def key() -> WebhookSigningKey:
    return WebhookSigningKey.generate()


@pytest.fixture
def receivers(key: WebhookSigningKey) -> Iterator[Callable[..., Receiver]]:
    """``receivers(**script)``: a running receiver that verifies with ``key``'s public key."""
    with ExitStack() as stack:

        def make(**script: Any) -> Receiver:
            return stack.enter_context(Receiver(key.public_key_b64, **script))

        yield make


@pytest.fixture
def receiver(receivers: Callable[..., Receiver]) -> Receiver:
    """A receiver that answers 200 at once."""
    return receivers()


@pytest.fixture
def dispatchers(key: WebhookSigningKey) -> Iterator[Callable[..., WebhookDispatcher]]:
    """``dispatchers(urls, policy=FAST, **kw)``: a dispatcher signing with ``key``."""
    made: list[WebhookDispatcher] = []

    def make(urls: list[str], *, policy: WebhookPolicy = FAST, **kw: Any) -> WebhookDispatcher:
        dispatcher = WebhookDispatcher(urls, key, policy=policy, **kw)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()
