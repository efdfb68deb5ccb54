"""Registered signers: what request authentication learns about a credential, and the session
view that reuses it instead of reading the credential again."""

from __future__ import annotations

import pytest
from service_support import Backend, Session, World

from sessionward.service.callers import Caller, CredentialState


def test_an_unknown_credential_has_no_signer(world: World) -> None:
    assert world.waas.credentials.signer("cred_nobody") is None


def test_a_live_credential_signs_as_its_caller(world: World, backend: Backend) -> None:
    signer = world.waas.credentials.signer(backend.credential_id)
    assert signer is not None and signer.key is not None
    assert signer.caller.credential_id == backend.credential_id
    assert signer.caller.role == "backend"
    assert not signer.caller.revoked and not signer.caller.expired
    record = world.waas.runtime.store.credentials.get(backend.credential_id)
    assert record is not None
    assert signer.caller.state == CredentialState(None, record.expires_at)


def test_a_revoked_credential_still_signs_and_its_caller_says_so(world: World) -> None:
    """Its requests must authenticate, so that the policy path can refuse and record them."""
    backend = world.backend()
    world.waas.revocations.revoke_credential(
        backend.caller, credential_id=backend.credential_id, reason="retired"
    )
    signer = world.waas.credentials.signer(backend.credential_id)
    assert signer is not None and signer.key is not None
    assert signer.caller.revoked
    assert signer.caller.state is not None and signer.caller.state.revoked_at is not None


def test_the_session_view_uses_the_state_read_with_the_request(
    world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = world.record(session.session_id)
    now = world.waas.runtime.now()
    caller = Caller(
        record.credential_id, "backend", state=CredentialState(revoked_at=now, expires_at=now + 5)
    )

    def unread(_credential_id: str) -> None:
        raise AssertionError("the credential was read again")

    monkeypatch.setattr(world.waas.runtime.store.credentials, "get", unread)
    view = world.waas.directory.view(record, now=now, caller=caller)
    assert view.credential_revoked
    assert view.credential_expires_at == now + 5


def test_the_session_view_reads_the_credential_when_the_caller_carries_no_state(
    world: World, session: Session
) -> None:
    record = world.record(session.session_id)
    now = world.waas.runtime.now()
    stale = Caller(record.credential_id, "backend")  # as built by hand: nothing read with it
    view = world.waas.directory.view(record, now=now, caller=stale)
    stored = world.waas.runtime.store.credentials.get(record.credential_id)
    assert stored is not None
    assert not view.credential_revoked
    assert view.credential_expires_at == stored.expires_at


def test_the_session_view_never_takes_another_credentials_state(
    world: World, session: Session
) -> None:
    record = world.record(session.session_id)
    now = world.waas.runtime.now()
    other = Caller("cred_other", "backend", state=CredentialState(revoked_at=now, expires_at=None))
    assert not world.waas.directory.view(record, now=now, caller=other).credential_revoked
