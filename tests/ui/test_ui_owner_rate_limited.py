"""The owner page under the default rate limits (issue 14): a wallet with more sessions than
the per-owner burst still shows every card, page after page ("Show more sessions" clicked as
soon as it is offered); the page waits out each 429 (``Retry-After``) and signs the request
again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import insert, select
from ui_browser_support import UiWorld, open_owner_page

from sessionward.store.schema import sessions

EXTRA = 130
"""Sessions copied onto the wallet: with the one usage read per card, more requests than the
default burst (100) of the owner's wallet when every page is asked for at once."""


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
    more = page.locator("#load-more")
    cards = page.locator("article.session")
    shown = cards.count()
    while shown < total:
        expect(more).to_be_enabled()
        more.click()
        expect(cards).not_to_have_count(shown)
        shown = cards.count()
    expect(cards).to_have_count(total)
    expect(more).to_be_hidden()
    ids = [c.get_attribute("data-session-id") for c in cards.all()]
    assert len(set(ids)) == total, "no card twice"
