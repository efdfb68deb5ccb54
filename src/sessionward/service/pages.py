"""Keyset pagination for list methods: opaque cursors, stable order, bounded pages.

A page is read as "the next ``limit`` rows after the cursor's key" from an index in key order
(one range scan, O(page) work whatever the list holds), never by loading the whole list. The
cursor is the key of the last item returned, base64url-encoded: it names a position, so items
added elsewhere in the list do not shift pages, and each list checks that the key it is given
belongs to it (a cursor of another list is refused as ``INPUT_MALFORMED``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Generic, TypedDict, TypeVar

from sessionward.reasons import ReasonCode

from .errors import invalid

MAX_PAGE: Final = 100
"""The largest ``limit`` a list accepts (the work of one page is bounded by it)."""

_T = TypeVar("_T", bound=Mapping[str, object])
_R = TypeVar("_R")
_CURSOR: Final = re.compile(r"^[A-Za-z0-9_=-]{1,256}$")


class Page(TypedDict, Generic[_T]):
    items: list[_T]
    nextCursor: str | None


def check_limit(limit: int) -> None:
    """Refuse a page size outside ``1..MAX_PAGE`` (``INPUT_MALFORMED``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise invalid(ReasonCode.INPUT_MALFORMED, f"limit must be between 1 and {MAX_PAGE}")


def _foreign() -> Exception:
    return invalid(ReasonCode.INPUT_MALFORMED, "cursor is not one this service issued")


def cursor_key(cursor: str) -> str:
    """The key a cursor names; ``INPUT_MALFORMED`` for anything that is not a cursor's shape
    (whether the key belongs to the list is the list's own check)."""
    try:
        if not _CURSOR.match(cursor):
            raise ValueError
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise _foreign() from None


def keyset_page(
    fetch: Callable[[str | None, int], Sequence[_R]],
    *,
    cursor: str | None,
    limit: int,
    belongs: Callable[[str], bool],
    key: Callable[[_R], str],
    render: Callable[[Sequence[_R]], list[_T]],
) -> Page[_T]:
    """One page of a list.

    ``fetch(after, n)`` returns up to ``n`` rows in key order after the key ``after`` (None:
    from the start); it is asked for ``limit + 1`` rows so that "is there more" needs no count.
    ``belongs(key)`` says whether a cursor's key is a row of this list. ``render`` turns the
    page's rows (at most ``limit``) into items, all at once so that it can share reads between
    them.
    """
    check_limit(limit)
    after = None
    if cursor is not None:
        after = cursor_key(cursor)
        if not belongs(after):
            raise _foreign()
    rows = fetch(after, limit + 1)
    shown = rows[:limit]
    next_cursor = (
        base64.urlsafe_b64encode(key(shown[-1]).encode("utf-8")).decode("ascii")
        if len(rows) > limit
        else None
    )
    return {"items": render(shown), "nextCursor": next_cursor}
