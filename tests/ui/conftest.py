"""Fixtures of the review-page tests: per module, one service on embedded defaults (SQLite in a
temporary directory, in-process chain, a P-256 ops credential configured) served over HTTP by
``BackgroundServer``, one world in it, and one headless Chromium with a fresh profile. Each
test opens its own page."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright
from ui_browser_support import (
    CHROMIUM,
    Service,
    UiWorld,
    build_world,
    launch_chromium,
    ops_credential,
)

from sessionward.crypto.p256 import generate_private_key
from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas


@pytest.fixture(scope="module")
def ops_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, ops_key: ec.EllipticCurvePrivateKey
) -> Iterator[Service]:
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)  # embedded defaults: SQLite
    service_logs = logging.getLogger("sessionward")
    level = service_logs.level
    service_logs.setLevel(logging.WARNING)  # quiet while this module runs; restored after
    try:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("ui-waas"), ops_credentials=(ops_credential(ops_key),)
        )
        waas = Waas.from_settings(settings)
        with BackgroundServer(waas) as url:
            yield Service(waas, url)
    finally:
        service_logs.setLevel(level)


@pytest.fixture(scope="module")
def world(service: Service, ops_key: ec.EllipticCurvePrivateKey) -> UiWorld:
    """A wallet with a device key, a backend, a used and an idle session (built once)."""
    return build_world(service.url, service.waas, ops_key)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `./run test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
        context.set_default_timeout(15_000)
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh tab; the test fails if the page logs a script error or an uncaught exception."""
    tab = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    tab.close()
    # Chromium logs every refused request; the tests that provoke a refusal assert it.
    unexpected = [p for p in problems if not p.startswith(_REFUSAL_LOG)]
    assert not unexpected, unexpected


_REFUSAL_LOG = (
    "console: Failed to load resource: the server responded with a status of 401",
    "console: Failed to load resource: the server responded with a status of 403",
)
