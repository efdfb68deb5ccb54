"""The receiver's verifier (``sessionward.sdk.webhooks``) against real deliveries: an authentic
delivery verifies; any change to the body, the timestamp, the event id or the signature is
refused with its code; a replayed event id is refused with a replay cache."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from webhook_support import Received, Receiver, an_alert

from sessionward.crypto.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_content,
)
from sessionward.sdk import webhooks as sdk
from sessionward.sdk.webhooks import ReplayCache, WebhookVerificationError, verify_webhook
from sessionward.service.webhooks import (
    WebhookDispatcher,
    WebhookSigningKey,
    event_body,
    signed_headers,
)


@pytest.fixture
def delivered(receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]) -> Received:
    """One real delivery as the receiver got it."""
    dispatchers([receiver.url]).publish(an_alert())
    [got] = receiver.wait_for(1)
    return got


def refusal(key: WebhookSigningKey, headers: dict[str, str], body: bytes, **kw: object) -> str:
    """The code ``verify_webhook`` refuses with (fails the test if it accepts)."""
    with pytest.raises(WebhookVerificationError) as refused:
        verify_webhook(key.public_key_b64, headers, body, **kw)  # type: ignore[arg-type]
    return refused.value.code


def test_the_signed_content_is_id_dot_timestamp_dot_body() -> None:
    expected = b'evt_abc.1700000000.{"eventId":"evt_abc"}'

    assert signed_content("evt_abc", "1700000000", b'{"eventId":"evt_abc"}') == expected


def test_a_known_key_signs_the_preimage_as_ed25519_does() -> None:
    key = WebhookSigningKey.from_text(base64.b64encode(bytes(range(32))).decode())
    body = event_body("evt_kat", an_alert())
    headers = signed_headers(key, "evt_kat", body, 1_700_000_000.9)

    assert headers[TIMESTAMP_HEADER] == "1700000000"  # whole seconds, truncated
    event = verify_webhook(key.public_key_b64, headers, body, now=1_700_000_100)
    assert event["eventId"] == "evt_kat"
    # Ed25519 is deterministic: the same key, preimage and signature, every time.
    assert signed_headers(key, "evt_kat", body, 1_700_000_000) == headers


def test_an_authentic_delivery_verifies_and_returns_the_event(
    key: WebhookSigningKey, delivered: Received
) -> None:
    event = verify_webhook(key.public_key_b64, delivered.headers, delivered.body)

    assert event == json.loads(delivered.body)
    assert event["eventId"] == delivered.event_id
    assert event["alert"]["rule"] == "forbidden_action_attempt"


def test_header_names_are_case_insensitive(key: WebhookSigningKey, delivered: Received) -> None:
    lowered = {k.lower(): v for k, v in delivered.headers.items()}

    assert verify_webhook(key.public_key_b64, lowered, delivered.body)["eventId"]


def test_a_tampered_body_is_refused(key: WebhookSigningKey, delivered: Received) -> None:
    body = delivered.body.replace(b'"critical"', b'"warning"')
    assert body != delivered.body

    assert refusal(key, delivered.headers, body) == sdk.SIGNATURE_INVALID
    assert refusal(key, delivered.headers, delivered.body + b" ") == sdk.SIGNATURE_INVALID


def test_a_changed_timestamp_is_refused(key: WebhookSigningKey, delivered: Received) -> None:
    headers = {**delivered.headers, TIMESTAMP_HEADER: str(int(delivered.timestamp) + 1)}

    assert refusal(key, headers, delivered.body) == sdk.SIGNATURE_INVALID


def test_a_timestamp_outside_the_tolerance_is_refused(
    key: WebhookSigningKey, delivered: Received
) -> None:
    sent = int(delivered.timestamp)

    assert refusal(key, delivered.headers, delivered.body, now=sent + 301) == (
        sdk.TIMESTAMP_OUT_OF_TOLERANCE
    )
    assert refusal(key, delivered.headers, delivered.body, now=sent - 301) == (
        sdk.TIMESTAMP_OUT_OF_TOLERANCE
    )
    assert refusal(key, delivered.headers, delivered.body, now=sent + 31, tolerance_s=30) == (
        sdk.TIMESTAMP_OUT_OF_TOLERANCE
    )
    assert verify_webhook(key.public_key_b64, delivered.headers, delivered.body, now=sent + 300)


def test_a_changed_event_id_is_refused(key: WebhookSigningKey, delivered: Received) -> None:
    headers = {**delivered.headers, EVENT_ID_HEADER: "evt_someotherevent"}

    assert refusal(key, headers, delivered.body) == sdk.SIGNATURE_INVALID


def test_a_changed_signature_is_refused(key: WebhookSigningKey, delivered: Received) -> None:
    raw = bytearray(base64.b64decode(delivered.signature.removeprefix("v1a,")))
    raw[0] ^= 1
    flipped = {**delivered.headers, SIGNATURE_HEADER: "v1a," + base64.b64encode(raw).decode()}
    other = signed_headers(key, "evt_other", delivered.body, time.time())[SIGNATURE_HEADER]
    borrowed = {**delivered.headers, SIGNATURE_HEADER: other}

    assert refusal(key, flipped, delivered.body) == sdk.SIGNATURE_INVALID
    assert refusal(key, borrowed, delivered.body) == sdk.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("v1a,", sdk.SIGNATURE_MALFORMED),
        ("v1a,not-base64!", sdk.SIGNATURE_MALFORMED),
        ("v1a," + base64.b64encode(b"\x00" * 63).decode(), sdk.SIGNATURE_MALFORMED),
        ("v1a=" + base64.b64encode(b"\x00" * 64).decode(), sdk.SIGNATURE_MALFORMED),
        ("v1," + base64.b64encode(b"\x00" * 32).decode(), sdk.SIGNATURE_MALFORMED),  # HMAC only
        ("v1a," + base64.b64encode(b"\x00" * 64).decode(), sdk.SIGNATURE_INVALID),
    ],
)
def test_a_malformed_signature_is_refused(
    key: WebhookSigningKey, delivered: Received, value: str, code: str
) -> None:
    headers = {**delivered.headers, SIGNATURE_HEADER: value}

    assert refusal(key, headers, delivered.body) == code


@pytest.mark.parametrize("name", [SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_ID_HEADER])
def test_a_missing_header_is_refused(
    key: WebhookSigningKey, delivered: Received, name: str
) -> None:
    headers = {k: v for k, v in delivered.headers.items() if k != name}

    assert refusal(key, headers, delivered.body) == sdk.HEADER_MISSING


@pytest.mark.parametrize("value", ["-1", "1.5", "now", "1" * 13])
def test_a_malformed_timestamp_is_refused(
    key: WebhookSigningKey, delivered: Received, value: str
) -> None:
    headers = {**delivered.headers, TIMESTAMP_HEADER: value}

    assert refusal(key, headers, delivered.body) == sdk.TIMESTAMP_MALFORMED


def test_another_key_is_refused_and_a_rotation_list_is_accepted(
    key: WebhookSigningKey, delivered: Received
) -> None:
    stranger = WebhookSigningKey.generate()

    assert refusal(stranger, delivered.headers, delivered.body) == sdk.SIGNATURE_INVALID
    rotated = [stranger.public_key_b64, key.public_key_b64]
    assert verify_webhook(rotated, delivered.headers, delivered.body)["eventId"]


def test_a_malformed_public_key_is_refused(delivered: Received) -> None:
    for bad in ("", "AAAA", "not base64"):
        with pytest.raises(WebhookVerificationError) as refused:
            verify_webhook(bad, delivered.headers, delivered.body)
        assert refused.value.code == sdk.PUBLIC_KEY_MALFORMED


def test_a_body_whose_event_id_differs_from_the_header_is_refused(
    key: WebhookSigningKey,
) -> None:
    body = event_body("evt_inside", an_alert())
    headers = signed_headers(key, "evt_outside", body, time.time())

    assert refusal(key, headers, body) == sdk.EVENT_ID_MISMATCH


@pytest.mark.parametrize(
    "body",
    [
        b'{"eventId":"evt_d","type":"alert","type":"other"}',
        b"[1,2]",
        b'{"eventId":"evt_d"}',
        b"\xff\xfe",
    ],
)
def test_a_signed_body_that_is_not_one_event_is_refused(
    key: WebhookSigningKey, body: bytes
) -> None:
    headers = signed_headers(key, "evt_d", body, time.time())

    assert refusal(key, headers, body) == sdk.BODY_MALFORMED


def test_a_replayed_delivery_is_refused_with_a_replay_cache(
    key: WebhookSigningKey, delivered: Received
) -> None:
    seen = ReplayCache()
    verify_webhook(key.public_key_b64, delivered.headers, delivered.body, seen=seen)

    assert refusal(key, delivered.headers, delivered.body, seen=seen) == sdk.EVENT_REPLAYED
    # A retry of the same event (fresh timestamp and signature) is the same event id.
    retry = signed_headers(key, delivered.event_id, delivered.body, time.time() + 5)
    assert refusal(key, retry, delivered.body, seen=seen) == sdk.EVENT_REPLAYED
    assert len(seen) == 1


def test_a_forgotten_event_is_accepted_again(key: WebhookSigningKey, delivered: Received) -> None:
    seen = ReplayCache()
    verify_webhook(key.public_key_b64, delivered.headers, delivered.body, seen=seen)

    seen.forget(delivered.event_id)

    assert verify_webhook(key.public_key_b64, delivered.headers, delivered.body, seen=seen)


def test_a_refused_delivery_is_not_remembered(key: WebhookSigningKey, delivered: Received) -> None:
    seen = ReplayCache()
    forged = delivered.body.replace(b'"critical"', b'"warning"')

    assert refusal(key, delivered.headers, forged, seen=seen) == sdk.SIGNATURE_INVALID

    assert delivered.event_id not in seen
    assert verify_webhook(key.public_key_b64, delivered.headers, delivered.body, seen=seen)


def test_the_replay_cache_forgets_an_event_once_its_window_has_passed() -> None:
    seen = ReplayCache()

    assert seen.remember("evt_a", until=1_000, now=700)
    assert not seen.remember("evt_a", until=1_100, now=999)
    assert seen.remember("evt_a", until=1_400, now=1_001)  # expired: a new window


def test_the_replay_cache_is_bounded() -> None:
    seen = ReplayCache(max_entries=2)
    for event_id in ("evt_1", "evt_2", "evt_3"):
        assert seen.remember(event_id, until=10**9, now=0)

    assert len(seen) == 2
    assert "evt_1" not in seen and "evt_3" in seen


def test_a_whpk_prefixed_key_and_a_list_with_other_versions_verify(
    key: WebhookSigningKey, delivered: Received
) -> None:
    hmac_entry = "v1," + base64.b64encode(b"\x00" * 32).decode()
    headers = {**delivered.headers, SIGNATURE_HEADER: f"{hmac_entry} {delivered.signature}"}

    assert verify_webhook("whpk_" + key.public_key_b64, headers, delivered.body)["eventId"]


def test_an_event_id_with_a_full_stop_is_refused(key: WebhookSigningKey) -> None:
    # With a full stop, "{id}.{timestamp}.{body}" could be split two ways: the format forbids it.
    headers = {**signed_headers(key, "evt_x", b"{}", time.time()), EVENT_ID_HEADER: "evt.x"}

    assert refusal(key, headers, b"{}") == sdk.EVENT_ID_MALFORMED
