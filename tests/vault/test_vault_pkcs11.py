"""The PKCS#11 vault on SoftHSM2: keys are made in the token and no byte of them can be read,
wrapped or copied out; the token's ``r ‖ s`` become low-``s`` signatures with the right
recovery id that coincurve and eth-keys verify; revocation destroys the key in the token;
records of one backend are refused by the other; the token, PIN and PIN file are checked; the
local vault's key-encryption key can live in the token, never leaving it either."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from coincurve import PublicKey
from eth_keys.datatypes import Signature
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11
from vault_support import T0, SoftHsm

from sessionward.crypto.secp256k1 import SECP256K1_N, address_of, recover_signer
from sessionward.reasons import ReasonCode
from sessionward.vault.backends import open_vault
from sessionward.vault.hsm import (
    ENV_PIN,
    ENV_PIN_FILE,
    Pkcs11Vault,
    Pkcs11VaultError,
    TokenKeyEncryptionKey,
    TokenOptions,
    load_pin,
    recoverable_signature,
    reference,
)
from sessionward.vault.interface import VaultRefusal
from sessionward.vault.kek import KeyEncryptionKey
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore

SECP256K1_PARAMS = bytes.fromhex("06052b8104000a")  # DER OID 1.3.132.0.10
DIGEST = bytes.fromhex("5a" * 32)


@pytest.fixture
def hsm_vault(pkcs11_vault: Pkcs11Vault) -> Pkcs11Vault:
    return pkcs11_vault


@pytest.fixture
def inspector(softhsm: SoftHsm, hsm_vault: Pkcs11Vault) -> Iterator[Any]:
    """A session of our own on the vault's token, as an attacker holding the PIN would have
    (opened while the vault is logged in, so it shares that login)."""
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.token)
    session = token.open(rw=True)
    try:
        yield session
    finally:
        session.close()


def _private(session: Any, key_id: str) -> Any:
    return session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id.encode())


def _public_point(session: Any, key_id: str) -> bytes:
    public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id.encode())
    point: bytes = public[Attribute.EC_POINT]
    return point[2:] if len(point) == 67 else point


def test_keys_are_made_in_the_token_as_sensitive_secp256k1_keys(
    hsm_vault: Pkcs11Vault, inspector: Any
) -> None:
    handle = hsm_vault.create_key()
    key = _private(inspector, handle.key_id)
    assert key.key_type == KeyType.EC
    assert key[Attribute.EC_PARAMS] == SECP256K1_PARAMS
    assert key[Attribute.TOKEN] and key[Attribute.PRIVATE] and key[Attribute.SIGN]
    assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
    assert not key[Attribute.EXTRACTABLE] and key[Attribute.NEVER_EXTRACTABLE]
    assert key[Attribute.LOCAL]  # generated on the token, never imported
    assert not key[Attribute.DERIVE] and not key[Attribute.DECRYPT] and not key[Attribute.UNWRAP]
    assert address_of(_public_point(inspector, handle.key_id)) == handle.address


def test_no_key_bytes_can_be_read_from_the_token(hsm_vault: Pkcs11Vault, inspector: Any) -> None:
    handle = hsm_vault.create_key()
    key = _private(inspector, handle.key_id)
    # Read the value: refused.
    with pytest.raises(p11.AttributeSensitive):
        key[Attribute.VALUE]
    # Make it extractable or not sensitive, then read: refused (one-way attributes).
    for attribute, value in ((Attribute.EXTRACTABLE, True), (Attribute.SENSITIVE, False)):
        with pytest.raises(p11.PKCS11Error):
            key[attribute] = value
    assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
    # Copy it into an extractable or non-sensitive object: refused.
    for template in ({Attribute.EXTRACTABLE: True}, {Attribute.SENSITIVE: False}):
        with pytest.raises(p11.PKCS11Error):
            key.copy(template)
    # Wrap it under a key we hold: refused.
    wrapping = inspector.generate_key(
        KeyType.AES,
        256,
        store=False,
        capabilities=pkcs11.MechanismFlag.WRAP | pkcs11.MechanismFlag.ENCRYPT,
    )
    with pytest.raises(p11.PKCS11Error) as wrapped:
        wrapping.wrap_key(key)
    assert isinstance(wrapped.value, p11.KeyUnextractable | p11.KeyNotWrappable)
    # And it still signs for the vault, unchanged.
    assert recover_signer(DIGEST, hsm_vault.sign(handle.key_id, DIGEST, now=T0)) == handle.address


def test_signatures_verify_with_coincurve_and_eth_keys_and_are_low_s(
    hsm_vault: Pkcs11Vault, inspector: Any
) -> None:
    handle = hsm_vault.create_key()
    public = PublicKey(_public_point(inspector, handle.key_id))
    for _ in range(40):
        digest = secrets.token_bytes(32)
        signature = hsm_vault.sign(handle.key_id, digest, now=T0)
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        assert 0 < s <= SECP256K1_N // 2 and v in (27, 28)
        # coincurve: the recoverable signature recovers exactly the token's public key, and
        # the plain ECDSA signature (DER) verifies under it.
        recovered = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
        assert recovered.format() == public.format()
        assert public.verify(_der(int.from_bytes(r, "big"), s), digest, hasher=None)
        # eth-keys: recovers the key's address.
        sig = Signature(vrs=(v - 27, int.from_bytes(r, "big"), s))
        assert sig.recover_public_key_from_msg_hash(digest).to_address() == handle.address


def _der(r: int, s: int) -> bytes:
    def integer(value: int) -> bytes:
        body = value.to_bytes(32, "big").lstrip(b"\x00")
        if body[0] & 0x80:
            body = b"\x00" + body
        return b"\x02" + bytes([len(body)]) + body

    content = integer(r) + integer(s)
    return b"\x30" + bytes([len(content)]) + content


def test_high_s_from_the_token_is_normalised_with_the_recovery_id_flipped(
    hsm_vault: Pkcs11Vault,
) -> None:
    # The token may return either s; both must give the same low-s signature.
    handle = hsm_vault.create_key()
    signature = hsm_vault.sign(handle.key_id, DIGEST, now=T0)
    r, s = signature[:32], int.from_bytes(signature[32:64], "big")
    high = r + (SECP256K1_N - s).to_bytes(32, "big")
    low = r + s.to_bytes(32, "big")
    assert recoverable_signature(high, DIGEST, handle.address) == signature
    assert recoverable_signature(low, DIGEST, handle.address) == signature
    assert recoverable_signature(low, DIGEST, "0x" + "11" * 20) is None
    assert recoverable_signature(b"\x00" * 64, DIGEST, handle.address) is None


def test_revocation_destroys_the_key_in_the_token(
    hsm_vault: Pkcs11Vault, records: InMemoryKeyRecordStore, inspector: Any
) -> None:
    handle = hsm_vault.create_key()
    hsm_vault.disable(handle.key_id, now=T0 + 5)
    for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
        with pytest.raises(p11.NoSuchKey):
            inspector.get_key(object_class=object_class, id=handle.key_id.encode())
    record = records.get(handle.key_id)
    assert record is not None
    assert record.disabled_at == T0 + 5 and record.destroyed_at == T0 + 5
    assert record.ciphertext == b""
    with pytest.raises(VaultRefusal) as refused:
        hsm_vault.sign(handle.key_id, DIGEST, now=T0)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED
    hsm_vault.disable(handle.key_id, now=T0 + 9)  # idempotent
    hsm_vault.destroy(handle.key_id)


def test_a_key_gone_from_the_token_is_refused(
    hsm_vault: Pkcs11Vault, inspector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handle = hsm_vault.create_key()
    hsm_vault.sign(handle.key_id, DIGEST, now=T0)  # the vault now caches the key's handle
    _private(inspector, handle.key_id).destroy()  # an operator removes it from the token
    with pytest.raises(VaultRefusal) as refused:
        hsm_vault.sign(handle.key_id, DIGEST, now=T0)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED


def test_the_record_holds_only_a_reference_to_the_token_object(
    hsm_vault: Pkcs11Vault, records: InMemoryKeyRecordStore, inspector: Any
) -> None:
    handle = hsm_vault.create_key(not_after=T0 + 60)
    record = records.get(handle.key_id)
    assert record is not None
    assert record.ciphertext == reference(handle.key_id) == b"pkcs11:" + handle.key_id.encode()
    assert record.wrapped_data_key == b"" and record.nonces == b""
    assert _public_point(inspector, handle.key_id)[1:33] not in record.ciphertext


def test_an_altered_record_raises_the_tamper_hook(
    softhsm: SoftHsm, records: InMemoryKeyRecordStore
) -> None:
    tampered: list[str] = []
    vault = Pkcs11Vault.open(
        records,
        options=TokenOptions(module=softhsm.module, token_label=softhsm.token),
        pin=softhsm.pin,
        clock=lambda: T0,
        on_tamper=tampered.append,
    )
    try:
        handle = vault.create_key()
        record = records.get(handle.key_id)
        assert record is not None
        records.put(dataclasses.replace(record, address="0x" + "ab" * 20))
        with pytest.raises(VaultRefusal):
            vault.sign(handle.key_id, DIGEST, now=T0)
        records.put(dataclasses.replace(record, ciphertext=reference("vk_other")))
        with pytest.raises(VaultRefusal):
            vault.sign(handle.key_id, DIGEST, now=T0)
        assert tampered == [handle.key_id, handle.key_id]
    finally:
        vault.close()


def test_each_backend_refuses_the_others_records(
    hsm_vault: Pkcs11Vault, local_vault: LocalVault
) -> None:
    # Same record store: a key made by one backend never signs through the other.
    in_token = hsm_vault.create_key()
    encrypted = local_vault.create_key()
    for vault, key in ((local_vault, in_token), (hsm_vault, encrypted)):
        with pytest.raises(VaultRefusal) as refused:
            vault.sign(key.key_id, DIGEST, now=T0)
        assert refused.value.code is ReasonCode.SIGNING_REFUSED


def test_two_vaults_on_one_token_share_its_session(
    softhsm: SoftHsm, records: InMemoryKeyRecordStore, hsm_vault: Pkcs11Vault
) -> None:
    other = Pkcs11Vault.open(
        records,
        options=TokenOptions(module=softhsm.module, token_label=softhsm.token),
        pin=softhsm.pin,
        clock=lambda: T0,
    )
    handle = other.create_key()
    other.close()  # the first vault stays logged in
    assert recover_signer(DIGEST, hsm_vault.sign(handle.key_id, DIGEST, now=T0)) == handle.address


def test_a_wrong_pin_is_refused_and_not_echoed(
    softhsm: SoftHsm, records: InMemoryKeyRecordStore
) -> None:
    wrong = "not-the-pin-9"
    with pytest.raises(Pkcs11VaultError) as refused:
        Pkcs11Vault.open(
            records,
            options=TokenOptions(module=softhsm.module, token_label=softhsm.other_token),
            pin=wrong,
        )
    assert wrong not in str(refused.value) and "PIN" in str(refused.value)


def test_an_unknown_token_or_module_is_refused(
    softhsm: SoftHsm, records: InMemoryKeyRecordStore, tmp_path: Path
) -> None:
    with pytest.raises(Pkcs11VaultError, match="no token labelled"):
        Pkcs11Vault.open(
            records,
            options=TokenOptions(module=softhsm.module, token_label="no-such-token"),
            pin=softhsm.pin,
        )
    with pytest.raises(Pkcs11VaultError, match="no PKCS#11 module"):
        Pkcs11Vault.open(records, options=TokenOptions(module=tmp_path / "none.so"), pin="1")


def test_a_token_can_be_named_by_slot(softhsm: SoftHsm, records: InMemoryKeyRecordStore) -> None:
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.other_token)
    vault = Pkcs11Vault.open(
        records,
        options=TokenOptions(module=softhsm.module, slot=int(token.slot.slot_id)),
        pin=softhsm.other_pin,
        clock=lambda: T0,
    )
    try:
        handle = vault.create_key()
        assert recover_signer(DIGEST, vault.sign(handle.key_id, DIGEST, now=T0)) == handle.address
        assert "other" in repr(vault) and softhsm.other_pin not in repr(vault)
    finally:
        vault.close()


def test_the_pin_comes_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    assert load_pin({ENV_PIN: "1234"}) == "1234"
    pin_file = tmp_path / "pin"
    pin_file.write_text("5678\n")
    pin_file.chmod(0o600)
    assert load_pin({ENV_PIN_FILE: str(pin_file)}) == "5678"
    assert load_pin({}, pin_file=pin_file) == "5678"
    assert load_pin({ENV_PIN: "1234"}, pin_file=pin_file) == "1234"
    pin_file.chmod(0o644)
    with pytest.raises(Pkcs11VaultError, match="0600") as loose:
        load_pin({}, pin_file=pin_file)
    assert "5678" not in str(loose.value)
    with pytest.raises(Pkcs11VaultError, match=ENV_PIN):
        load_pin({})


# ---------------------------------------------------------------- the KEK in the token


def test_the_kek_in_the_token_never_leaves_it(
    softhsm: SoftHsm, token_kek: TokenKeyEncryptionKey, inspector: Any
) -> None:
    key = inspector.get_key(
        object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=token_kek.label
    )
    assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
    assert not key[Attribute.WRAP] and not key[Attribute.UNWRAP]
    with pytest.raises(p11.AttributeSensitive):
        key[Attribute.VALUE]
    with pytest.raises(p11.PKCS11Error):
        key.copy({Attribute.EXTRACTABLE: True})


def test_a_local_vault_with_the_kek_in_the_token_needs_that_token_key(
    softhsm: SoftHsm, token_kek: TokenKeyEncryptionKey, records: InMemoryKeyRecordStore
) -> None:
    vault = LocalVault(records, token_kek, clock=lambda: T0)
    handle = vault.create_key()
    label = token_kek.label
    options = TokenOptions(module=softhsm.module, token_label=softhsm.token)
    # Another process opening the same token key signs for it (the KEK is shared by the nodes)
    again = TokenKeyEncryptionKey.open(options=options, pin=softhsm.pin, label=label)
    try:
        signature = LocalVault(records, again).sign(handle.key_id, DIGEST, now=T0)
        assert recover_signer(DIGEST, signature) == handle.address
    finally:
        again.close()
    # ... while a file KEK, or another token key, cannot unwrap its data keys.
    other = TokenKeyEncryptionKey.open(options=options, pin=softhsm.pin, label=label + "-other")
    try:
        for thief in (LocalVault(records, KeyEncryptionKey.generate()), LocalVault(records, other)):
            with pytest.raises(VaultRefusal) as refused:
                thief.sign(handle.key_id, DIGEST, now=T0)
            assert refused.value.code is ReasonCode.SIGNING_REFUSED
    finally:
        other.close()
    with pytest.raises(Pkcs11VaultError, match="no key-encryption key"):
        TokenKeyEncryptionKey.open(
            options=options, pin=softhsm.pin, label="kek-absent", create=False
        )


def test_open_vault_puts_the_local_vaults_kek_in_the_token(
    softhsm: SoftHsm, records: InMemoryKeyRecordStore, tmp_path: Path
) -> None:
    vault = open_vault(
        "local",
        records,
        data_dir=tmp_path,
        kek="pkcs11",
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token,
        pkcs11_kek_label="kek-open-vault",
        environ={ENV_PIN: softhsm.pin},
    )
    try:
        assert isinstance(vault, LocalVault)
        handle = vault.create_key()
        assert recover_signer(DIGEST, vault.sign(handle.key_id, DIGEST, now=T0)) == handle.address
        assert not (tmp_path / "vault.key").exists()  # no key file: the KEK is in the token
    finally:
        vault.close()


def test_revocation_stands_when_the_token_cannot_destroy_the_key(
    hsm_vault: Pkcs11Vault,
    records: InMemoryKeyRecordStore,
    inspector: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handle = hsm_vault.create_key()

    def failing(key_id: str) -> None:
        raise Pkcs11VaultError("the token failed to destroy key: DeviceError")

    monkeypatch.setattr(hsm_vault, "_destroy_objects", failing)
    hsm_vault.disable(handle.key_id, now=T0 + 1)  # no exception: the revocation holds
    record = records.get(handle.key_id)
    assert record is not None and record.disabled_at == T0 + 1 and record.destroyed_at is None
    with pytest.raises(VaultRefusal) as refused:
        hsm_vault.sign(handle.key_id, DIGEST, now=T0 + 2)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED
    monkeypatch.undo()
    hsm_vault.destroy(handle.key_id)  # later: finished
    with pytest.raises(p11.NoSuchKey):
        _private(inspector, handle.key_id)
    record = records.get(handle.key_id)
    assert record is not None and record.destroyed_at is not None
