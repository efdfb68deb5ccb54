"""Cursor pagination for list methods: opaque cursors, stable order."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Generic, TypedDict, TypeVar

from sessionward.domain.reasons import ReasonCode

from .errors import invalid

MAX_PAGE = 100
_T = TypeVar("_T", bound=Mapping[str, object])


class Page(TypedDict, Generic[_T]):
    items: list[_T]
    nextCursor: str | None


def paginate(items: Sequence[_T], *, cursor: str | None, limit: int, key: str) -> Page[_T]:
    """``items`` (in their stable order) after the cursor's position, at most ``limit``.

    The cursor names the last item returned (by ``key``), so inserts elsewhere in the list do
    not shift pages.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise invalid(ReasonCode.INPUT_MALFORMED, f"limit must be between 1 and {MAX_PAGE}")
    start = 0
    if cursor is not None:
        try:
            after = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeError):
            raise invalid(
                ReasonCode.INPUT_MALFORMED, "cursor is not one this service issued"
            ) from None
        positions = [i for i, item in enumerate(items) if item[key] == after]
        if not positions:
            raise invalid(ReasonCode.INPUT_MALFORMED, "cursor is not one this service issued")
        start = positions[0] + 1
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    next_cursor = (
        base64.urlsafe_b64encode(str(page[-1][key]).encode()).decode("ascii")
        if page and more
        else None
    )
    return {"items": page, "nextCursor": next_cursor}
