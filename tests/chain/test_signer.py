"""The relayer's local signer: where its key may come from, and that it never shows it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from sessionward.chain.ethereum_transactions import Eip1559Transaction, decode_signed_transaction
from sessionward.chain.signer import (
    RELAYER_KEY_ENV,
    LocalTransactionSigner,
    RelayerKeyError,
    TransactionSigner,
)
from sessionward.crypto.secp256k1 import address_from_secret

SECRET_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = address_from_secret(bytes.fromhex(SECRET_HEX))


def _key_file(tmp_path: Path, content: str, mode: int = 0o600) -> Path:
    path = tmp_path / "relayer.key"
    path.write_text(content)
    path.chmod(mode)
    return path


def test_private_key_file_loads(tmp_path: Path) -> None:
    signer = LocalTransactionSigner.from_file(_key_file(tmp_path, "0x" + SECRET_HEX + "\n"))
    assert signer.address == ADDRESS
    assert isinstance(signer, TransactionSigner)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path, SECRET_HEX, mode)
    with pytest.raises(RelayerKeyError) as refused:
        LocalTransactionSigner.from_file(path)
    assert SECRET_HEX not in str(refused.value)


@pytest.mark.parametrize("content", ["nothex", "00" * 32, "ff" * 32, "11" * 31, ""])
def test_key_file_without_a_valid_secret_is_refused_without_echoing_it(
    tmp_path: Path, content: str
) -> None:
    with pytest.raises(RelayerKeyError) as refused:
        LocalTransactionSigner.from_file(_key_file(tmp_path, content))
    if content:
        assert content not in str(refused.value)


def test_missing_key_file_is_refused_unless_asked_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "new.key"
    with pytest.raises(RelayerKeyError):
        LocalTransactionSigner.from_file(path)
    created = LocalTransactionSigner.from_file(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert LocalTransactionSigner.from_file(path, create=True).address == created.address


def test_directory_is_not_a_key_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(RelayerKeyError):
        LocalTransactionSigner.from_file(folder)


def test_environment_variable_loads_and_absence_is_refused() -> None:
    assert LocalTransactionSigner.from_env({RELAYER_KEY_ENV: SECRET_HEX}).address == ADDRESS
    with pytest.raises(RelayerKeyError):
        LocalTransactionSigner.from_env({})
    if RELAYER_KEY_ENV not in os.environ:
        with pytest.raises(RelayerKeyError):
            LocalTransactionSigner.from_env()


def test_signer_never_shows_its_secret() -> None:
    signer = LocalTransactionSigner(bytes.fromhex(SECRET_HEX))
    for text in (repr(signer), str(signer), f"{signer!r}"):
        assert SECRET_HEX not in text and ADDRESS in text
    assert not hasattr(signer, "secret")
    with pytest.raises(TypeError):
        pickle.dumps(signer)


def test_signed_transactions_recover_to_the_signer() -> None:
    signer = LocalTransactionSigner(bytes.fromhex(SECRET_HEX))
    unsigned = Eip1559Transaction(
        chain_id=1,
        nonce=0,
        max_priority_fee_per_gas=1,
        max_fee_per_gas=2,
        gas=21_000,
        to="0x" + "11" * 20,
    )
    decoded = decode_signed_transaction(signer.sign_transaction(unsigned))
    assert decoded.sender == ADDRESS and decoded.unsigned == unsigned
