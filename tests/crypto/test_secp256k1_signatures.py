"""secp256k1 signing and recovery, checked against eth_account, and every refusal's code."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from crypto_support import EIP55_TEST_CASES, OWNER_SECRET, SESSION_SECRET
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils.address import to_checksum_address as eth_utils_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

import sessionward.crypto.secp256k1 as secp
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import (
    SECP256K1_N,
    ZERO_ADDRESS,
    SignatureError,
    address_from_secret,
    address_of,
    is_checksum_valid,
    normalize_address,
    personal_message_hash,
    recover_signer,
    sign_digest,
    to_checksum_address,
    verify_signer,
)
from sessionward.reasons import ReasonCode, SessionWardError

DIGEST = keccak256(b"a digest to sign")
_FIELD_P = 2**256 - 2**32 - 977
_SECRETS = st.integers(1, SECP256K1_N - 1).map(lambda n: n.to_bytes(32, "big"))
_DIGESTS = st.binary(min_size=32, max_size=32)


def _high_s_twin(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def _refusal(digest: bytes, signature: bytes) -> ReasonCode:
    with pytest.raises(SignatureError) as caught:
        recover_signer(digest, signature)
    return caught.value.code


class TestSigningEqualsEthAccount:
    @settings(derandomize=True, max_examples=40, deadline=None, database=None)
    @given(secret=_SECRETS, digest=_DIGESTS)
    def test_signature_and_recovery_match_eth_account(self, secret: bytes, digest: bytes) -> None:
        signature = sign_digest(secret, digest)
        reference = Account.unsafe_sign_hash(digest, secret)
        assert signature == bytes(reference.signature)
        assert recover_signer(digest, signature) == Account.from_key(secret).address.lower()
        assert Account._recover_hash(digest, signature=signature).lower() == address_from_secret(
            secret
        )

    @settings(derandomize=True, max_examples=40, deadline=None, database=None)
    @given(secret=_SECRETS, digest=_DIGESTS)
    def test_signatures_are_always_low_s_with_v_27_or_28(
        self, secret: bytes, digest: bytes
    ) -> None:
        signature = sign_digest(secret, digest)
        assert len(signature) == 65
        assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
        assert signature[64] in (27, 28)

    def test_signing_is_deterministic(self) -> None:
        assert sign_digest(OWNER_SECRET, DIGEST) == sign_digest(OWNER_SECRET, DIGEST)

    def test_personal_message_hash_is_eip191_version_e(self) -> None:
        for message in (b"", b"hello", b"\x00" * 100):
            expected = _hash_eip191_message(encode_defunct(primitive=message))
            assert personal_message_hash(message) == bytes(expected)

    @pytest.mark.parametrize("secret", [bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31])
    def test_invalid_secrets_are_refused(self, secret: bytes) -> None:
        with pytest.raises(ValueError):
            sign_digest(secret, DIGEST)


class TestRecoveryRefusals:
    def test_high_s_twin_of_a_valid_signature_is_malleable(self) -> None:
        signature = sign_digest(OWNER_SECRET, DIGEST)
        twin = _high_s_twin(signature)
        # The twin is mathematically valid (a permissive verifier recovers the owner) ...
        permissive = Account._recover_hash(DIGEST, signature=twin)
        assert permissive.lower() == address_from_secret(OWNER_SECRET)
        # ... and is refused anyway.
        assert _refusal(DIGEST, twin) is ReasonCode.SIGNATURE_MALLEABLE

    @pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
    def test_v_other_than_27_or_28_is_invalid(self, v: int) -> None:
        signature = sign_digest(OWNER_SECRET, DIGEST)
        assert _refusal(DIGEST, signature[:64] + bytes([v])) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize("length", [0, 64, 66, 130])
    def test_wrong_length_is_invalid(self, length: int) -> None:
        signature = (sign_digest(OWNER_SECRET, DIGEST) * 3)[:length]
        assert _refusal(DIGEST, signature) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize(
        ("r", "s"),
        [(0, 1), (1, 0), (SECP256K1_N, 1), (SECP256K1_N + 1, 1), (2**256 - 1, 1)],
    )
    def test_r_or_s_zero_or_not_below_n_is_invalid(self, r: int, s: int) -> None:
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x1b"
        assert _refusal(DIGEST, signature) is ReasonCode.SIGNATURE_INVALID

    def test_s_not_below_n_is_invalid_not_merely_malleable(self) -> None:
        signature = (1).to_bytes(32, "big") + SECP256K1_N.to_bytes(32, "big") + b"\x1b"
        assert _refusal(DIGEST, signature) is ReasonCode.SIGNATURE_INVALID

    def test_signature_from_which_no_key_recovers_is_invalid(self) -> None:
        # r must be the x coordinate of a curve point; pick an r for which x³ + 7 has no root.
        r = next(x for x in range(1, 100) if pow(x**3 + 7, (_FIELD_P - 1) // 2, _FIELD_P) != 1)
        signature = r.to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"
        assert _refusal(DIGEST, signature) is ReasonCode.SIGNATURE_INVALID

    def test_recovering_the_zero_address_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # No known key hashes to address 0; simulate one to prove the defence is in place.
        signature = sign_digest(OWNER_SECRET, DIGEST)
        monkeypatch.setattr(secp, "address_of", lambda _public_key: ZERO_ADDRESS)
        assert _refusal(DIGEST, signature) is ReasonCode.SIGNER_ZERO_ADDRESS

    def test_refusals_are_session_ward_errors(self) -> None:
        with pytest.raises(SessionWardError):
            recover_signer(DIGEST, b"")

    def test_digest_must_be_32_bytes(self) -> None:
        with pytest.raises(ValueError):
            recover_signer(DIGEST[:31], sign_digest(OWNER_SECRET, DIGEST))


class TestVerifySigner:
    def test_expected_signer_in_any_valid_spelling_is_accepted(self) -> None:
        signature = sign_digest(OWNER_SECRET, DIGEST)
        address = address_from_secret(OWNER_SECRET)
        verify_signer(DIGEST, signature, address)
        verify_signer(DIGEST, signature, to_checksum_address(address))

    def test_another_signer_is_a_mismatch(self) -> None:
        signature = sign_digest(SESSION_SECRET, DIGEST)
        with pytest.raises(SignatureError) as caught:
            verify_signer(DIGEST, signature, address_from_secret(OWNER_SECRET))
        assert caught.value.code is ReasonCode.SIGNER_MISMATCH

    def test_signature_over_another_digest_is_a_mismatch(self) -> None:
        signature = sign_digest(OWNER_SECRET, keccak256(b"something else"))
        with pytest.raises(SignatureError) as caught:
            verify_signer(DIGEST, signature, address_from_secret(OWNER_SECRET))
        assert caught.value.code is ReasonCode.SIGNER_MISMATCH

    def test_malleable_signature_is_refused_before_comparing(self) -> None:
        twin = _high_s_twin(sign_digest(OWNER_SECRET, DIGEST))
        with pytest.raises(SignatureError) as caught:
            verify_signer(DIGEST, twin, address_from_secret(OWNER_SECRET))
        assert caught.value.code is ReasonCode.SIGNATURE_MALLEABLE


class TestAddresses:
    @pytest.mark.parametrize("address", EIP55_TEST_CASES)
    def test_checksum_matches_the_eip55_examples(self, address: str) -> None:
        assert to_checksum_address(address.lower()) == address
        assert is_checksum_valid(address)

    @settings(derandomize=True, max_examples=60, deadline=None, database=None)
    @given(raw=st.binary(min_size=20, max_size=20))
    def test_checksum_matches_eth_utils(self, raw: bytes) -> None:
        assert to_checksum_address(raw) == eth_utils_checksum("0x" + raw.hex())

    @pytest.mark.parametrize(
        "address",
        [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
            "0x" + "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".upper(),
            "0x123",
            "nonsense",
        ],
    )
    def test_wrong_checksums_and_malformed_strings_are_not_valid(self, address: str) -> None:
        assert not is_checksum_valid(address)

    def test_normalize_address_accepts_lower_checksummed_and_bytes_only(self) -> None:
        lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
        assert normalize_address(lower) == lower
        assert normalize_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed") == lower
        assert normalize_address(bytes.fromhex(lower[2:])) == lower
        with pytest.raises(ValueError, match="checksum"):
            normalize_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")

    def test_address_of_accepts_every_public_key_encoding(self) -> None:
        public = PrivateKey(OWNER_SECRET).public_key
        uncompressed = public.format(compressed=False)
        expected = Account.from_key(OWNER_SECRET).address.lower()
        assert address_of(uncompressed) == expected
        assert address_of(public.format(compressed=True)) == expected
        assert address_of(uncompressed[1:]) == expected
        assert address_from_secret(OWNER_SECRET) == expected

    @pytest.mark.parametrize(
        "bad", [b"", b"\x04" + bytes(64), b"\x02" + b"\xff" * 32, b"\x05" * 65]
    )
    def test_address_of_refuses_points_off_the_curve(self, bad: bytes) -> None:
        with pytest.raises(ValueError):
            address_of(bad)
