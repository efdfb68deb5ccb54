"""The reads: ListSessions (backend) and ListAccess (owner) page with opaque cursors in a stable
order, within limit bounds, refusing a cursor they did not issue; GetSession and
GetSessionUsage are for the session's backend, its wallet's owner, and ops."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from service_support import Backend, Wallet, World

from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller
from sessionward.service.errors import ServiceError
from sessionward.service.pages import MAX_PAGE, Page
from sessionward.service.sessions import SessionDetail

Lister = Callable[[str | None, int], Page[SessionDetail]]


def _pending_sessions(world: World, wallet: Wallet, backend: Backend, count: int) -> list[str]:
    return [world.authorize(wallet, backend)["sessionId"] for _ in range(count)]


def _walk(lister: Lister, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = lister(cursor, limit)
        pages.append([item["sessionId"] for item in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


@pytest.fixture
def sessions_of_both(world: World, wallet: Wallet, backend: Backend) -> list[str]:
    """Five sessions of ``backend`` on ``wallet``; plus noise: another backend on the wallet
    and the backend on another wallet."""
    ids = _pending_sessions(world, wallet, backend, 5)
    _pending_sessions(world, wallet, world.backend(), 1)
    _pending_sessions(world, world.wallet(), backend, 1)
    return ids


def test_list_sessions_pages_a_backends_sessions_in_one_stable_order(
    world: World, wallet: Wallet, backend: Backend, sessions_of_both: list[str]
) -> None:
    def lister(cursor: str | None, limit: int) -> Page[SessionDetail]:
        return world.waas.sessions.list_for_backend(backend.caller, cursor=cursor, limit=limit)

    everything = lister(None, MAX_PAGE)
    assert everything["nextCursor"] is None
    ids = [item["sessionId"] for item in everything["items"]]
    assert len(ids) == 6 and set(sessions_of_both) < set(ids)
    assert all(item["credentialId"] == backend.credential_id for item in everything["items"])
    pages = _walk(lister, 2)
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [i for p in pages for i in p] == ids
    assert _walk(lister, 6) == [ids]


def test_list_access_pages_the_sessions_on_an_owners_wallet(
    world: World, wallet: Wallet, backend: Backend, sessions_of_both: list[str]
) -> None:
    def lister(cursor: str | None, limit: int) -> Page[SessionDetail]:
        return world.waas.sessions.list_for_owner(
            wallet.caller, wallet_id=wallet.wallet_id, cursor=cursor, limit=limit
        )

    ids = [item["sessionId"] for item in lister(None, MAX_PAGE)["items"]]
    assert len(ids) == 6 and set(sessions_of_both) < set(ids)
    assert all(item["walletId"] == wallet.wallet_id for item in lister(None, MAX_PAGE)["items"])
    pages = _walk(lister, 4)
    assert [len(p) for p in pages] == [4, 2]
    assert [i for p in pages for i in p] == ids


def test_a_session_created_after_a_page_was_read_is_on_a_later_page(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """Within one second (the clock is pinned) ids decide the order; ids are creation-ordered,
    so a session created after a page was read is never hidden before the cursor."""
    world.clock.pin()
    try:
        first = _pending_sessions(world, wallet, backend, 3)
        page = world.waas.sessions.list_for_backend(backend.caller, cursor=None, limit=2)
        later = _pending_sessions(world, wallet, backend, 1)
        seen = [i["sessionId"] for i in page["items"]]
        cursor = page["nextCursor"]
        while cursor is not None:
            rest = world.waas.sessions.list_for_backend(backend.caller, cursor=cursor, limit=2)
            seen += [i["sessionId"] for i in rest["items"]]
            cursor = rest["nextCursor"]
    finally:
        world.clock.release()
    assert sorted(seen) == sorted(first + later)


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1])
def test_a_limit_outside_one_to_the_maximum_is_refused(
    world: World, wallet: Wallet, backend: Backend, limit: int
) -> None:
    with pytest.raises(ServiceError) as backend_list:
        world.waas.sessions.list_for_backend(backend.caller, cursor=None, limit=limit)
    assert backend_list.value.code is ReasonCode.INPUT_MALFORMED
    with pytest.raises(ServiceError) as owner_list:
        world.waas.sessions.list_for_owner(
            wallet.caller, wallet_id=wallet.wallet_id, cursor=None, limit=limit
        )
    assert owner_list.value.code is ReasonCode.INPUT_MALFORMED


def test_a_cursor_issued_for_another_list_is_refused(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    _pending_sessions(world, wallet, backend, 3)
    stranger = world.backend()
    other_wallet = world.wallet()
    _pending_sessions(world, other_wallet, stranger, 3)
    foreign = world.waas.sessions.list_for_backend(stranger.caller, cursor=None, limit=1)
    assert foreign["nextCursor"] is not None
    cursors = [
        foreign["nextCursor"],
        "not base64!",
        base64.urlsafe_b64encode(b"ses_forged").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ]
    for cursor in cursors:
        with pytest.raises(ServiceError) as backend_list:
            world.waas.sessions.list_for_backend(backend.caller, cursor=cursor, limit=10)
        assert backend_list.value.code is ReasonCode.INPUT_MALFORMED
        with pytest.raises(ServiceError) as owner_list:
            world.waas.sessions.list_for_owner(
                wallet.caller, wallet_id=wallet.wallet_id, cursor=cursor, limit=10
            )
        assert owner_list.value.code is ReasonCode.INPUT_MALFORMED


def test_list_access_is_for_the_wallets_owner_and_list_sessions_for_backends(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    other = world.wallet()
    for caller in (other.caller, backend.caller, world.ops[0].caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.sessions.list_for_owner(
                caller, wallet_id=wallet.wallet_id, cursor=None, limit=10
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    with pytest.raises(ServiceError) as as_owner:
        world.waas.sessions.list_for_backend(wallet.caller, cursor=None, limit=10)
    assert as_owner.value.code is ReasonCode.ROLE_FORBIDDEN


def test_a_session_is_read_by_its_backend_its_owner_and_ops_only(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    session_id = world.authorize(wallet, backend)["sessionId"]
    readers: list[Caller] = [backend.caller, wallet.caller, world.ops[0].caller]
    for caller in readers:
        assert world.waas.sessions.get(caller, session_id)["sessionId"] == session_id
        assert world.waas.sessions.usage(caller, session_id)["sessionId"] == session_id
    for caller in (world.backend().caller, world.wallet().caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.sessions.get(caller, session_id)
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
        with pytest.raises(ServiceError) as usage:
            world.waas.sessions.usage(caller, session_id)
        assert usage.value.code is ReasonCode.ROLE_FORBIDDEN
    with pytest.raises(ServiceError) as unknown:
        world.waas.sessions.get(backend.caller, "ses_" + "0" * 32)
    assert unknown.value.code is ReasonCode.SESSION_UNKNOWN
