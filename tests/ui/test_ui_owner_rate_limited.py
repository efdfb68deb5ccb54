"""The owner page under the default rate limits (issue 14): a wallet with more sessions than
the per-owner burst still loads every card; the page waits out each 429 (``Retry-After``) and
signs the request again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import insert, select
from ui_browser_support import UiWorld, open_owner_page

from sessionward.store.schema import sessions

EXTRA = 130
"""Sessions copied onto the wallet: with the one usage read per card, more requests than the
default burst (100) of the owner's wallet."""


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh tab that fails the test on script errors (the refused reads it logs are the
    point here: 429 is expected)."""
    tab = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "status of 429" not in message.text:
            problems.append(f"console: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    tab.close()
    assert not problems, problems


def test_a_wallet_over_the_owner_burst_still_shows_every_session(
    world: UiWorld, page: Page
) -> None:
    store = world.waas.runtime.store
    with store.db.reading() as conn:
        row = dict(
            conn.execute(select(sessions).where(sessions.c.id == world.idle_session)).one()._mapping
        )
    rows = [{**row, "id": f"{row['id']}.{i:04d}"} for i in range(EXTRA)]
    with store.db.writing() as conn:
        conn.execute(insert(sessions), rows)
    total = len(store.sessions.of_wallet(world.wallet["walletId"]))
    page.set_default_timeout(60_000)
    open_owner_page(page, world)
    expect(page.locator("article.session")).to_have_count(total)
