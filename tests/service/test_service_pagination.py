"""Lists scale with the page, not with the list (issue 14, tenant isolation): a wallet with
10,000 sessions answers the first page of ListAccess in under 50 ms (median of 5), every page
is one keyset range scan of an index, and walking the pages yields every session exactly once.

The sessions are written straight to the store in one bulk insert (10,000 use cases would take
minutes): copies of one session the owner really authorized, each under its own id, so that
every copy's grant still verifies against its signed digest as ListAccess computes it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from service_support import Backend, Wallet, World
from sqlalchemy import insert, select, text

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.pages import MAX_PAGE, Page
from sessionward.service.sessions import SessionDetail
from sessionward.store.schema import sessions

MANY = 10_000
FIRST_PAGE_BUDGET_S = 0.050
COLD_PAGE_BOUND_S = 0.250
"""A page whose sessions were never read: about 1 ms a session on a loaded 2-core machine."""
DEFAULT_PAGE = 50  # ListAccess's default ``limit`` (api/models.py)


def _seed(world: World, wallet: Wallet, backend: Backend, count: int) -> list[str]:
    """``count`` sessions of ``backend`` on ``wallet`` in one insert; their ids, sorted."""
    original = world.authorize(wallet, backend)["sessionId"]
    with world.rt.store.db.reading() as conn:
        row = dict(conn.execute(select(sessions).where(sessions.c.id == original)).one()._mapping)
    rows = [
        {**row, "id": f"{original}.{i:05d}", "session_key_id": f"seed{i}"} for i in range(count)
    ]
    with world.rt.store.db.writing() as conn:
        conn.execute(insert(sessions), rows)
    return sorted([original, *(r["id"] for r in rows)])


@pytest.fixture(scope="module")
def crowded(world: World) -> tuple[Wallet, Backend, list[str]]:
    """A wallet holding 10,001 sessions of one backend."""
    wallet, backend = world.wallet(), world.backend()
    return wallet, backend, _seed(world, wallet, backend, MANY)


def _owner_lister(world: World, wallet: Wallet) -> Callable[[str | None, int], Page[SessionDetail]]:
    def lister(cursor: str | None, limit: int) -> Page[SessionDetail]:
        return world.waas.sessions.list_for_owner(
            wallet.caller, wallet_id=wallet.wallet_id, cursor=cursor, limit=limit
        )

    return lister


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_the_first_page_of_a_wallet_with_ten_thousand_sessions_is_fast(
    world: World, crowded: tuple[Wallet, Backend, list[str]]
) -> None:
    """The first page (default size), read five times: median under 50 ms. And the five first
    reads of five consecutive pages (nothing of their sessions cached: each compiles and
    verifies its grants and writes its summaries) stay within a bound linear in the page, far
    from the seconds a whole-list read of 10,000 sessions costs."""
    wallet, _, ids = crowded
    lister = _owner_lister(world, wallet)
    cold: list[float] = []
    cursor: str | None = None
    for _ in range(5):
        started = time.perf_counter()
        page = lister(cursor, DEFAULT_PAGE)
        cold.append(time.perf_counter() - started)
        cursor = page["nextCursor"]
    first = [_timed(lambda: lister(None, DEFAULT_PAGE)) for _ in range(5)]
    print(
        f"\nListAccess page of {DEFAULT_PAGE} of {len(ids)} sessions: first page median "
        f"{statistics.median(first) * 1000:.1f} ms; pages read for the first time median "
        f"{statistics.median(cold) * 1000:.1f} ms"
    )
    assert statistics.median(first) < FIRST_PAGE_BUDGET_S
    assert statistics.median(cold) < COLD_PAGE_BOUND_S
    assert [item["sessionId"] for item in lister(None, DEFAULT_PAGE)["items"]] == ids[:DEFAULT_PAGE]


def test_the_page_query_is_an_index_range_scan(
    world: World, crowded: tuple[Wallet, Backend, list[str]]
) -> None:
    """SQLite's plan for a page uses the ``(wallet_id, id)`` index and sorts nothing."""
    wallet, _, ids = crowded
    with world.rt.store.db.reading() as conn:
        plan = " | ".join(
            str(row[-1])
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT * FROM sessions WHERE wallet_id = :w AND id > :a "
                    "ORDER BY id LIMIT 51"
                ),
                {"w": wallet.wallet_id, "a": ids[100]},
            )
        )
    assert "ix_sessions_wallet_page" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_walking_every_page_yields_each_session_once(
    world: World, crowded: tuple[Wallet, Backend, list[str]]
) -> None:
    """The 10,001 sessions through the store's keyset pages: disjoint, complete, in order."""
    wallet, _, ids = crowded
    store = world.rt.store.sessions
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = [r.id for r in store.page_of_wallet(wallet.wallet_id, after=after, limit=MAX_PAGE)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    seen = [i for p in pages for i in p]
    assert len(seen) == len(set(seen)) == len(ids)
    assert seen == ids


@pytest.mark.parametrize("role", ["owner", "backend"])
def test_service_pages_are_disjoint_and_complete(
    world: World, wallet: Wallet, backend: Backend, role: str
) -> None:
    """Through ListAccess / ListSessions, with pages of the largest size and a partial last
    page: every session exactly once, in id order."""
    ids = _seed(world, wallet, backend, 2 * MAX_PAGE + 6)

    def lister(cursor: str | None, limit: int) -> Page[SessionDetail]:
        if role == "owner":
            return _owner_lister(world, wallet)(cursor, limit)
        return world.waas.sessions.list_for_backend(backend.caller, cursor=cursor, limit=limit)

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = lister(cursor, MAX_PAGE)
        pages.append([item["sessionId"] for item in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [MAX_PAGE, MAX_PAGE, 7]
    seen = [i for p in pages for i in p]
    assert seen == ids


def test_a_page_larger_than_the_maximum_is_refused(
    world: World, crowded: tuple[Wallet, Backend, list[str]]
) -> None:
    wallet, _, _ = crowded
    with pytest.raises(ServiceError) as refused:
        _owner_lister(world, wallet)(None, MAX_PAGE + 1)
    assert refused.value.code is ReasonCode.INPUT_MALFORMED
