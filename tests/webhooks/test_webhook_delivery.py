"""Delivery of signed alert webhooks to real receivers: what is sent, what is retried and how,
what stops retries, and that raising an alert never waits on a receiver."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from webhook_support import FAST, Receiver, TickingClock, an_alert

from sessionward.crypto.webhook_signature import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from sessionward.server import free_port
from sessionward.service.config import ConfigError
from sessionward.service.webhooks import WebhookDispatcher, WebhookPolicy

Dispatchers = Callable[..., WebhookDispatcher]
Receivers = Callable[..., Receiver]


def test_an_alert_is_delivered_as_a_signed_event_the_sdk_verifier_accepts(
    receiver: Receiver, dispatchers: Dispatchers
) -> None:
    dispatcher = dispatchers([receiver.url])
    alert = an_alert()

    event_id = dispatcher.publish(alert)

    [got] = receiver.wait_for(1)
    assert got.refusal is None
    assert got.event == {
        "eventId": event_id,
        "type": "alert",
        "alert": {
            "id": "alr_test1",
            "at": 1_700_000_000,
            "rule": "forbidden_action_attempt",
            "severity": "critical",
            "sessionId": "ses_1",
            "walletId": "wal_1",
            "credentialId": "cred_1",
            "detail": {"decision": "dec_1", "reasons": ["NON_DELEGABLE_ACTION"], "why": ["x"]},
            "actionTaken": "revoked session ses_1",
            "actionAt": 1_700_000_001,
        },
    }
    assert got.headers["Content-Type"] == "application/json"
    assert got.signature.startswith("v1a,")
    assert abs(int(got.timestamp) - time.time()) < 60
    assert dispatcher.flush()
    stats = dispatcher.stats()
    assert (stats.events, stats.queued, stats.delivered, stats.attempts) == (1, 1, 1, 1)
    assert (stats.failed, stats.retries, stats.pending) == (0, 0, 0)


def test_the_sink_call_delivers_like_publish(receiver: Receiver, dispatchers: Dispatchers) -> None:
    dispatcher = dispatchers([receiver.url])

    dispatcher(an_alert("alr_sink"))

    [got] = receiver.wait_for(1)
    assert got.event is not None and got.event["alert"]["id"] == "alr_sink"


def test_every_configured_url_gets_the_same_event_id_and_body(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    first, second = receivers(), receivers()
    dispatcher = dispatchers([first.url, second.url])

    event_id = dispatcher.publish(an_alert())

    [a], [b] = first.wait_for(1), second.wait_for(1)
    assert a.event_id == b.event_id == event_id
    assert a.body == b.body
    assert a.refusal is None and b.refusal is None


def test_each_alert_is_its_own_event(receiver: Receiver, dispatchers: Dispatchers) -> None:
    dispatcher = dispatchers([receiver.url])

    ids = [dispatcher.publish(an_alert(f"alr_{i}")) for i in range(3)]

    got = receiver.wait_for(3)
    assert len(set(ids)) == 3
    assert {r.event_id for r in got} == set(ids)


def test_retries_keep_the_event_id_and_body_and_sign_each_attempt_afresh(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(statuses=[500, 500])
    dispatcher = dispatchers([receiver.url], clock=TickingClock())

    event_id = dispatcher.publish(an_alert())

    attempts = receiver.wait_for(3)
    assert dispatcher.flush()
    assert [a.status for a in attempts] == [500, 500, 200]
    assert {a.event_id for a in attempts} == {event_id}
    assert len({a.body for a in attempts}) == 1
    assert len({a.timestamp for a in attempts}) == 3
    assert len({a.signature for a in attempts}) == 3
    assert all(a.refusal is None for a in attempts)  # every attempt verifies on its own
    [delivery] = dispatcher.deliveries()
    assert delivery.state == "delivered"
    assert [x.outcome for x in delivery.attempts] == ["retry", "retry", "delivered"]
    assert [x.status_code for x in delivery.attempts] == [500, 500, 200]
    assert [str(x.timestamp) for x in delivery.attempts] == [a.timestamp for a in attempts]
    stats = dispatcher.stats()
    assert (stats.delivered, stats.attempts, stats.retries, stats.failed) == (1, 3, 2, 0)


def test_request_timeout_and_too_many_requests_are_retried(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(statuses=[429, 408, 503])
    dispatcher = dispatchers([receiver.url])

    dispatcher.publish(an_alert())

    attempts = receiver.wait_for(4)
    assert dispatcher.flush()
    assert [a.status for a in attempts] == [429, 408, 503, 200]
    assert dispatcher.deliveries()[0].state == "delivered"


def test_a_permanent_client_error_stops_the_retries(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(statuses=[400])
    dispatcher = dispatchers([receiver.url])

    dispatcher.publish(an_alert())

    assert dispatcher.flush()
    time.sleep(0.1)  # longer than any backoff of FAST: a retry would have arrived
    assert [a.status for a in receiver.received] == [400]
    [delivery] = dispatcher.deliveries()
    assert delivery.state == "failed"
    assert [x.outcome for x in delivery.attempts] == ["failed"]
    stats = dispatcher.stats()
    assert (stats.failed, stats.delivered, stats.retries, stats.attempts) == (1, 0, 0, 1)


def test_a_redirect_is_not_followed_and_not_retried(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(statuses=[307])
    dispatcher = dispatchers([receiver.url])

    dispatcher.publish(an_alert())

    assert dispatcher.flush()
    assert [a.status for a in receiver.received] == [307]
    assert dispatcher.deliveries()[0].state == "failed"


def test_attempts_are_bounded_by_max_attempts(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(default=500)
    dispatcher = dispatchers([receiver.url], policy=replace(FAST, max_attempts=3))

    dispatcher.publish(an_alert())

    assert dispatcher.flush()
    time.sleep(0.1)
    assert [a.status for a in receiver.received] == [500, 500, 500]
    [delivery] = dispatcher.deliveries()
    assert delivery.state == "failed"
    assert [x.outcome for x in delivery.attempts] == ["retry", "retry", "failed"]
    assert dispatcher.stats().failed == 1


def test_connection_errors_are_retried_until_the_attempts_run_out(
    dispatchers: Dispatchers,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hooks"
    dispatcher = dispatchers([nobody], policy=replace(FAST, max_attempts=4))

    dispatcher.publish(an_alert())

    assert dispatcher.flush()
    [delivery] = dispatcher.deliveries()
    assert delivery.state == "failed"
    assert len(delivery.attempts) == 4
    assert all(a.status_code is None and a.error == "ConnectError" for a in delivery.attempts)


def test_a_receiver_that_times_out_is_retried_with_the_same_event(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(delays=[0.6])
    dispatcher = dispatchers([receiver.url], policy=replace(FAST, timeout_s=0.2))

    event_id = dispatcher.publish(an_alert())

    attempts = receiver.wait_for(2)
    assert dispatcher.flush()
    assert [a.event_id for a in attempts] == [event_id, event_id]
    [delivery] = dispatcher.deliveries()
    assert delivery.attempts[0].error == "ReadTimeout"
    assert delivery.state == "delivered"


def test_a_retry_after_is_honoured_up_to_the_backoff_cap(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(statuses=[429], retry_after="5")
    dispatcher = dispatchers([receiver.url], policy=replace(FAST, backoff_max_s=0.3))

    dispatcher.publish(an_alert())
    attempts = receiver.wait_for(2)

    # FAST alone would wait at most 0.05 s; Retry-After: 5 is capped at backoff_max_s = 0.3 s.
    gap = attempts[1].arrived - attempts[0].arrived
    assert 0.25 <= gap < 2.0, gap
    assert [a.status for a in attempts] == [429, 200]


def test_raising_an_alert_never_waits_for_the_receiver(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(delay_s=0.3)
    dispatcher = dispatchers([receiver.url], policy=replace(FAST, workers=1))
    dispatcher(an_alert("alr_first"))
    receiver.wait_for(1)  # the only worker now waits on the sleeping receiver

    took = []
    for i in range(5):
        started = time.perf_counter()
        dispatcher(an_alert(f"alr_{i}"))
        took.append(time.perf_counter() - started)

    assert max(took) < 0.005, took
    assert len(receiver.received) == 1  # nothing else got through meanwhile
    assert dispatcher.stats().pending == 6
    receiver.wait_for(6, timeout=15)


def test_a_full_queue_drops_the_alert_and_counts_it(
    receivers: Receivers, dispatchers: Dispatchers
) -> None:
    receiver = receivers(delay_s=0.5)
    dispatcher = dispatchers([receiver.url], policy=replace(FAST, queue_size=1, workers=1))

    kept = dispatcher.publish(an_alert("alr_kept"))
    dropped = dispatcher.publish(an_alert("alr_dropped"))

    assert kept is not None and dropped is None
    assert dispatcher.flush()
    stats = dispatcher.stats()
    assert (stats.events, stats.queued, stats.dropped, stats.delivered) == (2, 1, 1, 1)
    assert [r.event_id for r in receiver.received] == [kept]


def test_without_urls_the_sink_does_nothing(dispatchers: Dispatchers) -> None:
    dispatcher = dispatchers([])

    assert dispatcher.publish(an_alert()) is None
    dispatcher(an_alert())

    assert dispatcher.stats().events == 0


def test_after_close_alerts_are_dropped(receiver: Receiver, dispatchers: Dispatchers) -> None:
    dispatcher = dispatchers([receiver.url])
    dispatcher.close()

    assert dispatcher.publish(an_alert()) is None

    assert dispatcher.stats().dropped == 1
    assert receiver.received == []


def test_the_signed_headers_are_the_documented_ones(
    receiver: Receiver, dispatchers: Dispatchers
) -> None:
    dispatcher = dispatchers([receiver.url])

    dispatcher.publish(an_alert())

    [got] = receiver.wait_for(1)
    for name in (EVENT_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        assert name in got.headers
    assert got.headers[TIMESTAMP_HEADER].isdigit()


@pytest.mark.parametrize("bad", ["ftp://example.com/x", "/relative", "https://", "example.com"])
def test_a_webhook_url_must_be_absolute_http(dispatchers: Dispatchers, bad: str) -> None:
    with pytest.raises(ConfigError, match="absolute"):
        dispatchers([bad])


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"queue_size": 0},
        {"workers": 0},
        {"timeout_s": 0.0},
        {"backoff_base_s": -1.0},
    ],
)
def test_a_policy_that_cannot_deliver_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        replace(WebhookPolicy(), **bad)
