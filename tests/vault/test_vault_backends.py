"""Choosing the vault by configuration: ``SESSIONWARD_VAULT=local|pkcs11`` with the module,
the token (label or slot) and the PIN source, and ``SESSIONWARD_VAULT_KEK=pkcs11`` for the local
vault's key-encryption key; the service's runtime signs through the chosen backend, and an
unknown backend is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from vault_support import T0, SoftHsm

from sessionward.crypto.secp256k1 import recover_signer
from sessionward.service.config import ConfigError, Settings
from sessionward.service.runtime import build_runtime
from sessionward.vault.backends import open_vault
from sessionward.vault.hsm import ENV_PIN, Pkcs11Vault
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore

DIGEST = bytes.fromhex("42" * 32)


def test_the_environment_chooses_the_backend_and_the_token() -> None:
    settings = Settings.load(
        {
            "SESSIONWARD_VAULT": "pkcs11",
            "SESSIONWARD_PKCS11_MODULE": "/opt/hsm/libvendor.so",
            "SESSIONWARD_PKCS11_TOKEN_LABEL": "wallets",
            "SESSIONWARD_PKCS11_SLOT": "0x2a",
            "SESSIONWARD_PKCS11_PIN_FILE": "/run/secrets/hsm-pin",
            ENV_PIN: "never-a-setting",
        }
    )
    assert settings.vault == "pkcs11"
    assert settings.pkcs11_module == Path("/opt/hsm/libvendor.so")
    assert settings.pkcs11_token_label == "wallets" and settings.pkcs11_slot == 42
    assert settings.pkcs11_pin_file == Path("/run/secrets/hsm-pin")
    assert "never-a-setting" not in repr(settings)


def test_the_environment_puts_the_local_vaults_kek_in_the_token() -> None:
    settings = Settings.load(
        {"SESSIONWARD_VAULT_KEK": "pkcs11", "SESSIONWARD_PKCS11_KEK_LABEL": "wallet-kek"}
    )
    assert settings.vault == "local" and settings.vault_kek == "pkcs11"
    assert settings.pkcs11_kek_label == "wallet-kek"
    with pytest.raises(ConfigError, match="SESSIONWARD_VAULT_KEK"):
        Settings.load({"SESSIONWARD_VAULT_KEK": "kms"})


def test_the_local_vault_is_the_default_and_softhsm_the_default_module() -> None:
    settings = Settings.load({})
    assert settings.vault == "local" and settings.vault_kek == "local"
    assert settings.pkcs11_module == Path("/usr/lib/softhsm/libsofthsm2.so")
    assert settings.pkcs11_kek_label == "sessionward-kek"


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SESSIONWARD_VAULT"):
        Settings.load({"SESSIONWARD_VAULT": "cloud"})
    with pytest.raises(ConfigError, match="SESSIONWARD_PKCS11_SLOT"):
        Settings.load({"SESSIONWARD_PKCS11_SLOT": "first"})
    with pytest.raises(ConfigError, match="vault"):
        Settings().with_document({"vault": "cloud"})
    with pytest.raises(ValueError, match="unknown vault backend"):
        open_vault("cloud", InMemoryKeyRecordStore(), data_dir=tmp_path)


def test_a_configuration_file_names_the_module_and_pin_file() -> None:
    settings = Settings().with_document(
        {"vault": "pkcs11", "pkcs11_module": "/m.so", "pkcs11_pin_file": "/p"}
    )
    assert settings.pkcs11_module == Path("/m.so") and settings.pkcs11_pin_file == Path("/p")


def test_open_vault_gives_each_backend(softhsm: SoftHsm, tmp_path: Path) -> None:
    records = InMemoryKeyRecordStore()
    local = open_vault(
        "local", records, data_dir=tmp_path, environ={"SESSIONWARD_VAULT_KEY": "11" * 32}
    )
    assert isinstance(local, LocalVault)
    token = open_vault(
        "pkcs11",
        records,
        data_dir=tmp_path,
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token,
        environ={ENV_PIN: softhsm.pin},
        clock=lambda: T0,
    )
    try:
        assert isinstance(token, Pkcs11Vault)
        key = token.create_key()
        assert recover_signer(DIGEST, token.sign(key.key_id, DIGEST, now=T0)) == key.address
    finally:
        token.close()


def test_the_runtime_signs_through_the_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    pin_file = tmp_path / "secrets" / "pin"
    pin_file.parent.mkdir(mode=0o700)
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    settings = Settings(
        data_dir=tmp_path / "data",
        run_relayer=False,
        vault="pkcs11",
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token,
        pkcs11_pin_file=pin_file,
    )
    rt = build_runtime(settings)
    try:
        assert isinstance(rt.vault, Pkcs11Vault)
        key = rt.vault.create_key()
        record = rt.store.vault_keys.get(key.key_id)  # the SQL record store: no secret in it
        assert record is not None and record.ciphertext == b"pkcs11:" + key.key_id.encode()
        signature = rt.vault.sign(key.key_id, DIGEST, now=rt.now(), record=record)
        assert recover_signer(DIGEST, signature) == key.address
        rt.vault.disable(key.key_id, now=rt.now())  # revocation destroys it in the token
        gone = rt.store.vault_keys.get(key.key_id)
        assert gone is not None and gone.destroyed_at is not None
        assert not (settings.data_dir / "vault.key").exists()  # no KEK with the token backend
    finally:
        rt.close()


def test_the_runtime_keeps_the_local_vaults_kek_in_the_token(
    softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PIN, softhsm.pin)
    settings = Settings(
        data_dir=tmp_path / "data",
        run_relayer=False,
        vault_kek="pkcs11",
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token,
        pkcs11_kek_label="kek-runtime-test",
    )
    rt = build_runtime(settings)
    try:
        assert isinstance(rt.vault, LocalVault)
        key = rt.vault.create_key()
        signature = rt.vault.sign(key.key_id, DIGEST, now=rt.now())
        assert recover_signer(DIGEST, signature) == key.address
        assert not (settings.data_dir / "vault.key").exists()  # no key file beside the database
    finally:
        rt.close()
