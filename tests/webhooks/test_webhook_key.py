"""The webhook signing key: from the environment, else a 0600 file made on first run; only the
public key is ever shown, and the private key never reaches a log."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from webhook_support import Receiver, an_alert

from sessionward.sdk.webhooks import verify_webhook
from sessionward.service.webhooks import (
    WEBHOOK_KEY_ENV,
    WEBHOOK_KEY_FILE,
    WebhookDispatcher,
    WebhookKeyError,
    WebhookPolicy,
    WebhookSigningKey,
    load_webhook_key,
)


def secret_text() -> tuple[str, str]:
    """A private key as ``SESSIONWARD_WEBHOOK_KEY`` holds it, and its public key (base64)."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    return (
        base64.b64encode(private.private_bytes_raw()).decode(),
        base64.b64encode(public).decode(),
    )


def test_the_key_comes_from_the_environment_first(tmp_path: Path) -> None:
    secret, public = secret_text()

    key = load_webhook_key(tmp_path, {WEBHOOK_KEY_ENV: secret})

    assert key.public_key_b64 == public
    assert not (tmp_path / WEBHOOK_KEY_FILE).exists()


@pytest.mark.parametrize("value", ["abc", base64.b64encode(b"\x01" * 31).decode(), "%%%%"])
def test_a_malformed_environment_key_is_refused_without_echoing_it(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(WebhookKeyError) as refused:
        load_webhook_key(tmp_path, {WEBHOOK_KEY_ENV: value})

    assert WEBHOOK_KEY_ENV in str(refused.value)
    assert value not in str(refused.value)


def test_without_the_environment_a_0600_key_file_is_made_once_and_reused(tmp_path: Path) -> None:
    first = load_webhook_key(tmp_path, {})
    path = tmp_path / WEBHOOK_KEY_FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_webhook_key(tmp_path, {})
    assert again.public_key_b64 == first.public_key_b64
    content = path.read_text().strip()
    assert len(base64.b64decode(content)) == 32
    assert content != first.public_key_b64  # the file holds the private key, not the public one
    assert WebhookSigningKey.from_text(content).public_key_b64 == first.public_key_b64


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_webhook_key(tmp_path, {})
    os.chmod(tmp_path / WEBHOOK_KEY_FILE, 0o640)

    with pytest.raises(WebhookKeyError, match="must be 0600"):
        load_webhook_key(tmp_path, {})


def test_a_key_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / WEBHOOK_KEY_FILE).mkdir()

    with pytest.raises(WebhookKeyError, match="not a regular file"):
        load_webhook_key(tmp_path, {})


def test_a_corrupt_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / WEBHOOK_KEY_FILE
    path.write_text("c2VjcmV0LWJ1dC13cm9uZy1sZW5ndGg=\n")
    os.chmod(path, 0o600)

    with pytest.raises(WebhookKeyError) as refused:
        load_webhook_key(tmp_path, {})

    assert "c2VjcmV0" not in str(refused.value)


def test_the_key_shows_only_its_public_half() -> None:
    secret, public = secret_text()
    key = WebhookSigningKey.from_text(secret)

    assert public in repr(key) and public in str(key)
    assert secret not in repr(key)
    assert len(base64.b64decode(key.public_key_b64)) == 32


def test_the_private_key_never_reaches_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, public = secret_text()
    key = load_webhook_key(tmp_path, {WEBHOOK_KEY_ENV: secret})
    policy = WebhookPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01)
    with Receiver(public, statuses=[500]) as receiver:
        dispatcher = WebhookDispatcher([receiver.url + "?token=hush"], key, policy=policy)
        dispatcher(an_alert())
        assert dispatcher.flush()
        dispatcher.close()
        [_, ok] = receiver.wait_for(2)

    assert verify_webhook(public, ok.headers, ok.body)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying" in logged  # something was logged about the delivery...
    assert secret not in logged  # ...but never the key
    assert base64.b64decode(secret).hex() not in logged
    assert "hush" not in logged  # nor the URL's query, which often carries a token


def test_the_dispatcher_shows_the_public_key_receivers_need(tmp_path: Path) -> None:
    key = load_webhook_key(tmp_path, {})

    with WebhookDispatcher([], key) as dispatcher:
        assert dispatcher.public_key_b64 == key.public_key_b64
