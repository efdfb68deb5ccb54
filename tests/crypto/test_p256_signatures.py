"""P-256 signatures: 64-byte low-s r‖s over SHA-256, and every refusal's code."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.crypto.p256 import (
    P256_N,
    generate_private_key,
    public_key_bytes,
    sign_p256,
    verify_p256,
)
from sessionward.crypto.secp256k1 import SignatureError
from sessionward.reasons import ReasonCode

# A fixed key keeps the property tests reproducible.
KEY = ec.derive_private_key(0x5E55_10_4A_12D, ec.SECP256R1())
PUBLIC = public_key_bytes(KEY)
MESSAGE = b"SessionWard-Request/1\nPOST\n/v1/x"


def _refusal(public_key: bytes, message: bytes, signature: bytes) -> ReasonCode:
    with pytest.raises(SignatureError) as caught:
        verify_p256(public_key, message, signature)
    return caught.value.code


def _high_s_twin(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:], "big")
    return signature[:32] + (P256_N - s).to_bytes(32, "big")


class TestSignAndVerify:
    @settings(derandomize=True, max_examples=40, deadline=None, database=None)
    @given(message=st.binary(max_size=200))
    def test_signatures_are_64_bytes_low_s_and_verify(self, message: bytes) -> None:
        signature = sign_p256(KEY, message)
        assert len(signature) == 64
        assert int.from_bytes(signature[32:], "big") <= P256_N // 2
        verify_p256(PUBLIC, message, signature)
        # Independent check with the library's own DER verifier.
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        KEY.public_key().verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))

    def test_public_key_is_65_byte_uncompressed_sec1(self) -> None:
        key = generate_private_key()
        encoded = public_key_bytes(key)
        assert len(encoded) == 65 and encoded[0] == 4
        assert public_key_bytes(key.public_key()) == encoded

    def test_keys_of_other_curves_are_refused(self) -> None:
        other = ec.generate_private_key(ec.SECP256K1())
        with pytest.raises(ValueError):
            public_key_bytes(other)
        with pytest.raises(ValueError):
            sign_p256(other, MESSAGE)


class TestRefusals:
    def test_high_s_twin_is_malleable(self) -> None:
        twin = _high_s_twin(sign_p256(KEY, MESSAGE))
        # The twin passes a permissive verifier ...
        r, s = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:], "big")
        KEY.public_key().verify(encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hashes.SHA256()))
        # ... and is refused here.
        assert _refusal(PUBLIC, MESSAGE, twin) is ReasonCode.SIGNATURE_MALLEABLE

    def test_tampered_message_is_invalid(self) -> None:
        signature = sign_p256(KEY, MESSAGE)
        assert _refusal(PUBLIC, MESSAGE + b"?", signature) is ReasonCode.SIGNATURE_INVALID

    def test_another_key_is_invalid(self) -> None:
        signature = sign_p256(KEY, MESSAGE)
        other = public_key_bytes(generate_private_key())
        assert _refusal(other, MESSAGE, signature) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize("length", [0, 63, 65, 70])
    def test_wrong_signature_length_is_invalid(self, length: int) -> None:
        signature = (sign_p256(KEY, MESSAGE) * 2)[:length]
        assert _refusal(PUBLIC, MESSAGE, signature) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (P256_N, 1), (1, P256_N)])
    def test_r_or_s_out_of_range_is_invalid(self, r: int, s: int) -> None:
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        assert _refusal(PUBLIC, MESSAGE, signature) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize(
        "public_key",
        [
            b"",
            PUBLIC[:33],  # compressed-length prefix of the real key
            b"\x02" + PUBLIC[1:33],  # a valid compressed encoding: only uncompressed is allowed
            PUBLIC[:64] + bytes([PUBLIC[64] ^ 1]),  # y changed: off the curve
            b"\x04" + bytes(64),
            b"\x05" + PUBLIC[1:],
        ],
    )
    def test_bad_public_keys_are_invalid(self, public_key: bytes) -> None:
        signature = sign_p256(KEY, MESSAGE)
        assert _refusal(public_key, MESSAGE, signature) is ReasonCode.SIGNATURE_INVALID
