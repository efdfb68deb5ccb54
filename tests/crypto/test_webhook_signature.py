"""The webhook signature is Standard Webhooks' asymmetric form: ``v1a,<base64 Ed25519>`` over
``{webhook-id}.{webhook-timestamp}.{body}``, in the ``webhook-*`` headers.

The PyPI ``standardwebhooks`` package on the mirror (1.1.0) verifies only ``v1`` (HMAC), so the
stock-verifier check here is the specification's verification steps written out independently
of the module under test, plus a pinned vector."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sessionward.crypto.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookFormatError,
    parse_public_key,
    parse_signatures,
    sign_webhook,
    signed_content,
)

# RFC 8032 section 7.1, TEST 1 key pair.
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
KEY = Ed25519PrivateKey.from_private_bytes(SECRET)
# The specification's example message.
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
TIMESTAMP = "1674087231"
BODY = (
    b'{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z",'
    b'"data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}'
)
EXPECTED = (
    "v1a,pbpYBMlty2hExn4zt0UTGb6BaP2Vq5AfyzjB9GGV3x/wCJKd8UjOCf8Qhaji6TKY9C5eNMnlF0GG4udaO6B7Ag=="
)


def stock_verify(public_key: bytes, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification as the specification describes it (independent code)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp = lowered["webhook-id"], lowered["webhook-timestamp"]
    to_verify = f"{msg_id}.{timestamp}.".encode() + body
    key = Ed25519PublicKey.from_public_bytes(public_key)
    for versioned in lowered["webhook-signature"].split(" "):
        version, signature = versioned.split(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), to_verify)
        except InvalidSignature:
            continue
        return True
    return False


def test_the_header_names_are_the_standard_ones() -> None:
    assert (EVENT_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) == (
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    )


def test_a_known_key_and_message_give_the_pinned_signature() -> None:
    assert KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == PUBLIC
    assert signed_content(MSG_ID, TIMESTAMP, BODY) == f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY
    assert sign_webhook(KEY, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_a_stock_verifier_accepts_our_signature_and_refuses_a_changed_one() -> None:
    headers = {
        EVENT_ID_HEADER: MSG_ID,
        TIMESTAMP_HEADER: TIMESTAMP,
        SIGNATURE_HEADER: sign_webhook(KEY, MSG_ID, TIMESTAMP, BODY),
    }
    assert stock_verify(PUBLIC, headers, BODY)
    assert not stock_verify(PUBLIC, headers, BODY + b" ")
    assert not stock_verify(PUBLIC, {**headers, TIMESTAMP_HEADER: "1674087232"}, BODY)


def test_a_rotation_signs_with_every_key_space_separated() -> None:
    new = Ed25519PrivateKey.generate()
    value = sign_webhook([new, KEY], MSG_ID, TIMESTAMP, BODY)
    entries = value.split(" ")
    assert len(entries) == 2 and entries[1] == EXPECTED
    headers = {EVENT_ID_HEADER: MSG_ID, TIMESTAMP_HEADER: TIMESTAMP, SIGNATURE_HEADER: value}
    assert stock_verify(PUBLIC, headers, BODY)


def test_parsing_keeps_v1a_entries_and_skips_other_versions() -> None:
    # The specification's example header: an HMAC (v1) entry and an Ed25519 (v1a) entry.
    example = (
        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= "
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
    )
    [signature] = parse_signatures(example)
    assert len(signature) == 64
    with pytest.raises(WebhookFormatError, match="no v1a"):
        parse_signatures("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")


@pytest.mark.parametrize("event_id", ["", "evt.1", "evt 1", "x" * 129, "évt"])
def test_an_event_id_with_a_full_stop_or_outside_the_grammar_cannot_be_signed(
    event_id: str,
) -> None:
    with pytest.raises(WebhookFormatError, match="event id"):
        signed_content(event_id, TIMESTAMP, BODY)


def test_public_keys_are_base64_with_an_optional_whpk_prefix() -> None:
    text = base64.b64encode(PUBLIC).decode()
    for form in (text, "whpk_" + text):
        assert parse_public_key(form).public_bytes(Encoding.Raw, PublicFormat.Raw) == PUBLIC
    for bad in ("", "whpk_", "AAAA", "not base64"):
        with pytest.raises(WebhookFormatError):
            parse_public_key(bad)
