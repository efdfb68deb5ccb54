"""Idempotent requests (no HTTP): one execution per ``(subject, key)``, the kept answer to every
retry, refusals for a reused or busy key, and a released claim after a server failure.

On a migrated SQLite store of its own per test (``database_support``), so that the clock and the
store's units of work are the test's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from database_support import migrated_sqlite_store
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.idempotency import (
    KEY_IN_FLIGHT,
    KEY_USED_FOR_ANOTHER_REQUEST,
    IdempotentRequests,
    StoredAnswer,
)
from sessionward.store import Store

SUBJECT = "cred_backend"
KEY = "retry-me-1"
BODY = b'{"txnId":"txn_1"}'
Outcome = tuple[int, bytes, dict[str, str]]


def _stored(outcome: Outcome) -> StoredAnswer:
    status, body, _headers = outcome
    return StoredAnswer(status, body)


class CountingAnswer:
    """An answer that counts its executions and gives ``outcome`` (or raises ``error``)."""

    def __init__(self, outcome: Outcome, error: Exception | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.calls = 0

    def __call__(self) -> Outcome:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.outcome


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with migrated_sqlite_store(tmp_path) as migrated:
        yield migrated


@pytest.fixture
def requests(store: Store) -> IdempotentRequests:
    return IdempotentRequests(store.idempotency, lambda: 1_000, nonces=store.replay)


def _run(
    requests: IdempotentRequests,
    answer: Callable[[], Outcome],
    *,
    subject: str = SUBJECT,
    key: str = KEY,
    method: str = "Execute",
    body: bytes = BODY,
) -> Outcome | StoredAnswer:
    return requests.run(
        subject=subject, key=key, method=method, body=body, answer=answer, stored=_stored
    )


def _refusal(run: Callable[[], object]) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        run()
    assert refused.value.kind == "conflict"
    assert refused.value.code is ReasonCode.IDEMPOTENCY_KEY_REUSED
    return refused.value


def test_the_first_request_executes_and_gets_its_own_outcome(
    requests: IdempotentRequests,
) -> None:
    answer = CountingAnswer((200, b'{"ok":true}', {"X-Extra": "1"}))
    assert _run(requests, answer) == (200, b'{"ok":true}', {"X-Extra": "1"})
    assert answer.calls == 1


@pytest.mark.parametrize("status", [200, 201, 404, 409])
def test_a_retry_gets_the_kept_answer_verbatim_without_executing(
    requests: IdempotentRequests, status: int
) -> None:
    body = '{"msg":"déjà vu ✓","n":1}'.encode()
    first = CountingAnswer((status, body, {"X-Extra": "1"}))
    _run(requests, first)
    again = CountingAnswer((200, b"{}", {}))
    assert _run(requests, again) == StoredAnswer(status, body)
    assert _run(requests, again) == StoredAnswer(status, body)
    assert again.calls == 0


def test_the_key_with_another_body_is_refused_without_executing(
    requests: IdempotentRequests,
) -> None:
    _run(requests, CountingAnswer((200, b"{}", {})))
    other = CountingAnswer((200, b"{}", {}))
    refusal = _refusal(lambda: _run(requests, other, body=b'{"txnId":"txn_2"}'))
    assert refusal.message == KEY_USED_FOR_ANOTHER_REQUEST
    assert other.calls == 0


def test_the_key_for_another_method_is_refused_even_before_it_is_answered(
    requests: IdempotentRequests,
) -> None:
    inner: list[ServiceError] = []

    def answer() -> Outcome:
        inner.append(
            _refusal(lambda: _run(requests, CountingAnswer((200, b"{}", {})), method="Prepare"))
        )
        return 200, b"{}", {}

    _run(requests, answer)
    assert [r.message for r in inner] == [KEY_USED_FOR_ANOTHER_REQUEST]


def test_the_same_request_while_the_first_is_being_answered_is_refused(
    requests: IdempotentRequests,
) -> None:
    retry = CountingAnswer((200, b"{}", {}))
    inner: list[ServiceError] = []

    def answer() -> Outcome:
        inner.append(_refusal(lambda: _run(requests, retry)))
        return 200, b'{"first":true}', {}

    assert _run(requests, answer) == (200, b'{"first":true}', {})
    assert [r.message for r in inner] == [KEY_IN_FLIGHT]
    assert retry.calls == 0
    # Once answered, the same retry is the first answer.
    assert _run(requests, retry) == StoredAnswer(200, b'{"first":true}')


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_failure_is_not_kept_and_a_retry_executes(
    requests: IdempotentRequests, status: int
) -> None:
    failed = CountingAnswer((status, b'{"error":"InternalError"}', {}))
    assert _run(requests, failed) == (status, b'{"error":"InternalError"}', {})
    retry = CountingAnswer((200, b'{"ok":true}', {}))
    assert _run(requests, retry) == (200, b'{"ok":true}', {})
    assert retry.calls == 1
    assert _run(requests, retry) == StoredAnswer(200, b'{"ok":true}')
    assert retry.calls == 1


def test_an_exception_releases_the_claim_and_propagates(requests: IdempotentRequests) -> None:
    broken = CountingAnswer((200, b"{}", {}), error=RuntimeError("the chain is gone"))
    with pytest.raises(RuntimeError, match="the chain is gone"):
        _run(requests, broken)
    retry = CountingAnswer((201, b'{"ok":true}', {}))
    assert _run(requests, retry) == (201, b'{"ok":true}', {})
    assert retry.calls == 1


def test_keys_are_scoped_to_the_subject(requests: IdempotentRequests) -> None:
    mine = CountingAnswer((200, b'{"who":"me"}', {}))
    theirs = CountingAnswer((200, b'{"who":"them"}', {}))
    _run(requests, mine)
    assert _run(requests, theirs, subject="cred_other") == (200, b'{"who":"them"}', {})
    assert (mine.calls, theirs.calls) == (1, 1)


def test_the_claim_and_the_answer_roll_back_with_the_callers_unit_of_work(
    store: Store, requests: IdempotentRequests
) -> None:
    first = CountingAnswer((200, b'{"ok":true}', {}))
    with pytest.raises(LookupError), store.db.unit():
        _run(requests, first)
        raise LookupError("the caller's transaction fails after the answer")
    retry = CountingAnswer((200, b'{"again":true}', {}))
    assert _run(requests, retry) == (200, b'{"again":true}', {})
    assert retry.calls == 1


def test_the_answer_commits_with_the_callers_unit_of_work(
    store: Store, requests: IdempotentRequests
) -> None:
    with store.db.unit():
        _run(requests, CountingAnswer((200, b'{"ok":true}', {})))
    assert _run(requests, CountingAnswer((200, b"{}", {}))) == StoredAnswer(200, b'{"ok":true}')
