"""HTTP request signatures (docs/protocol.md section 3): preimage, header, verification order."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from crypto_support import ACCOUNT, CHAIN_ID, CREDENTIAL_SECRET, build_grant
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.crypto.p256 import P256_N, sign_p256
from sessionward.crypto.request_signature import (
    ALG_P256,
    ALG_SECP256K1,
    MAX_HEADER_LENGTH,
    CredentialKey,
    InMemoryReplayStore,
    P256RequestSigner,
    RequestAuthError,
    RequestSigner,
    Secp256k1RequestSigner,
    SignatureHeader,
    format_signature_header,
    parse_signature_header,
    request_preimage,
    sign_request,
    verify_request,
)
from sessionward.crypto.secp256k1 import SECP256K1_N, personal_message_hash, sign_digest
from sessionward.crypto.typed_data import grant_digest
from sessionward.reasons import ReasonCode

NOW = 1_767_225_600_000
CRED = "cred_test_0001"
P256_CRED = "cred_p256_0001"
METHOD, PATH, BODY = "POST", "/v1/sessions?walletId=w_1", b'{"walletId":"w_1"}'
SECP_SIGNER = Secp256k1RequestSigner(CREDENTIAL_SECRET)
P256_SIGNER = P256RequestSigner(ec.derive_private_key(0xC0FFEE, ec.SECP256R1()))
KEYS = {
    CRED: CredentialKey.secp256k1(SECP_SIGNER.address),
    P256_CRED: CredentialKey.p256(P256_SIGNER.public_key),
}
SIGNERS: dict[str, RequestSigner] = {CRED: SECP_SIGNER, P256_CRED: P256_SIGNER}


class FixedClockStore(InMemoryReplayStore):
    """An in-memory replay store whose clock the test moves."""

    def __init__(self, now_ms: int = NOW) -> None:
        self.now_ms = now_ms
        super().__init__(clock_ms=lambda: self.now_ms)


def _header(
    cred: str = CRED,
    *,
    nonce: int = 1,
    ts: int = NOW,
    method: str = METHOD,
    path: str = PATH,
    body: bytes = BODY,
) -> str:
    return sign_request(SIGNERS[cred], cred, method, path, body, nonce, ts)


def _verify(header: str | SignatureHeader, store: InMemoryReplayStore, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "method": METHOD,
        "path_with_query": PATH,
        "body": BODY,
        "now_ms": NOW,
        "lookup": KEYS.get,
        "replay": store,
    }
    arguments.update(overrides)
    return verify_request(header, **arguments)


def _refusal(header: str, store: InMemoryReplayStore, **overrides: Any) -> ReasonCode:
    with pytest.raises(RequestAuthError) as caught:
        _verify(header, store, **overrides)
    return caught.value.code


def _with_signature(header: str, signature: bytes) -> str:
    parsed = parse_signature_header(header)
    return format_signature_header(
        SignatureHeader(parsed.alg, parsed.cred, parsed.nonce, parsed.ts, signature)
    )


# ------------------------------------------------------------------------------- preimage


class TestPreimage:
    def test_preimage_is_the_seven_protocol_lines(self) -> None:
        preimage = request_preimage("post", PATH, CRED, 42, NOW, BODY)
        body_hash = hashlib.sha256(BODY).hexdigest()
        assert (
            preimage
            == (
                "SessionWard-Request/1\nPOST\n/v1/sessions?walletId=w_1\ncred_test_0001\n42\n"
                f"1767225600000\n{body_hash}"
            ).encode()
        )

    def test_empty_body_hashes_the_empty_string(self) -> None:
        preimage = request_preimage("GET", "/v1/x", CRED, 0, 0, b"")
        assert preimage.endswith(
            b"\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )

    @pytest.mark.parametrize(
        "arguments",
        [
            ("PO ST", "/x", CRED, 1, 1, b""),
            ("", "/x", CRED, 1, 1, b""),
            ("POST", "x", CRED, 1, 1, b""),
            ("POST", "/x\nPOST", CRED, 1, 1, b""),
            ("POST", "/a b", CRED, 1, 1, b""),
            ("POST", "/é", CRED, 1, 1, b""),
            ("POST", "/x", "cred\n1", 1, 1, b""),
            ("POST", "/x", "", 1, 1, b""),
            ("POST", "/x", CRED, -1, 1, b""),
            ("POST", "/x", CRED, 1, 2**63, b""),
            ("POST", "/x", CRED, True, 1, b""),
            ("POST", "/x", CRED, 1, 1, "text body"),
        ],
    )
    def test_fields_outside_their_grammar_are_malformed(self, arguments: tuple[Any, ...]) -> None:
        with pytest.raises(RequestAuthError) as caught:
            request_preimage(*arguments)
        assert caught.value.code is ReasonCode.INPUT_MALFORMED


# --------------------------------------------------------------------------------- header


class TestHeaderFormat:
    def test_header_has_the_protocol_shape(self) -> None:
        header = _header(nonce=5)
        signature = parse_signature_header(header).sig
        assert header == (
            f'alg="ecdsa-p256k-eip191", cred="{CRED}", nonce=5, ts={NOW}, sig="0x{signature.hex()}"'
        )

    @settings(derandomize=True, max_examples=60, deadline=None, database=None)
    @given(
        alg=st.sampled_from([ALG_SECP256K1, ALG_P256]),
        cred=st.text("abcXYZ019._~:-", min_size=1, max_size=128),
        nonce=st.integers(0, 2**63 - 1),
        ts=st.integers(0, 2**63 - 1),
        data=st.data(),
    )
    def test_format_then_parse_is_identity(
        self, alg: str, cred: str, nonce: int, ts: int, data: st.DataObject
    ) -> None:
        size = 65 if alg == ALG_SECP256K1 else 64
        sig = data.draw(st.binary(min_size=size, max_size=size))
        header = SignatureHeader(alg, cred, nonce, ts, sig)
        assert parse_signature_header(format_signature_header(header)) == header

    def test_parameter_order_and_spacing_are_free(self) -> None:
        sig = "0x" + "11" * 65
        value = f'\tsig="{sig}",ts=7 ,  nonce=0,cred="c" ,alg="{ALG_SECP256K1}" '
        assert parse_signature_header(value) == SignatureHeader(
            ALG_SECP256K1, "c", 0, 7, bytes.fromhex("11" * 65)
        )

    VALID = f'alg="{ALG_SECP256K1}", cred="c", nonce=1, ts=2, sig="0x{"ab" * 65}"'

    @pytest.mark.parametrize(
        "value",
        [
            "",
            VALID + ",",
            VALID + ", nonce=1",
            VALID.replace("nonce=1", "nonce=01"),
            VALID.replace("nonce=1", "nonce=+1"),
            VALID.replace("nonce=1", "nonce=-1"),
            VALID.replace("nonce=1", 'nonce="1"'),
            VALID.replace("nonce=1", "nonce=1_0"),
            VALID.replace("nonce=1", "nonce=٣"),
            VALID.replace("nonce=1", f"nonce={2**63}"),
            VALID.replace("ts=2", "ts=2.0"),
            VALID.replace('alg="', "alg=").replace('eip191"', "eip191"),
            VALID.replace('cred="c"', "cred=c"),
            VALID.replace('cred="c"', 'cred=""'),
            VALID.replace('cred="c"', 'cred="c d"'),
            VALID.replace('cred="c"', 'cred="c,d"'),
            VALID.replace('cred="c"', 'cred="c\\"d"'),
            VALID.replace('cred="c"', 'cred="' + "c" * 129 + '"'),
            VALID.replace('cred="c"', 'cred="é"'),
            VALID.replace(", ts=2", ""),
            VALID.replace("ts=2", "TS=2"),
            VALID.replace("ts=2", "ts =2"),
            VALID.replace("ts=2", "ts=2, extra=3"),
            VALID.replace('sig="0x', 'sig="'),
            VALID.replace('sig="0x', 'sig="0X'),
            VALID.replace('sig="0xab', 'sig="0xa'),
            VALID.replace('sig="0xab', 'sig="0xzz'),
            VALID.replace(", ", ",\n "),
            VALID.replace(", ", "; "),
            VALID + "\x00",
            VALID + " " * (MAX_HEADER_LENGTH - len(VALID) + 1),
        ],
    )
    def test_malformed_headers_are_refused_as_malformed(self, value: str) -> None:
        with pytest.raises(RequestAuthError) as caught:
            parse_signature_header(value)
        assert caught.value.code is ReasonCode.INPUT_MALFORMED

    @pytest.mark.parametrize(
        "value",
        [
            VALID.replace(ALG_SECP256K1, "ecdsa-p256k"),
            VALID.replace(ALG_SECP256K1, "none"),
            VALID.replace(ALG_SECP256K1, ALG_P256),  # 65-byte sig with a 64-byte alg
            VALID.replace("ab" * 65, "ab" * 64),
            VALID.replace("ab" * 65, "ab" * 66),
        ],
    )
    def test_unsupported_alg_or_wrong_signature_length_is_invalid(self, value: str) -> None:
        with pytest.raises(RequestAuthError) as caught:
            parse_signature_header(value)
        assert caught.value.code is ReasonCode.SIGNATURE_INVALID

    def test_non_text_header_is_malformed(self) -> None:
        with pytest.raises(RequestAuthError) as caught:
            parse_signature_header(b"alg=1")  # type: ignore[arg-type]
        assert caught.value.code is ReasonCode.INPUT_MALFORMED

    @settings(derandomize=True, max_examples=400, deadline=None, database=None)
    @given(value=st.text(max_size=300))
    def test_fuzzed_text_only_ever_raises_request_auth_errors(self, value: str) -> None:
        with contextlib.suppress(RequestAuthError):
            parse_signature_header(value)

    @settings(derandomize=True, max_examples=200, deadline=None, database=None)
    @given(data=st.data())
    def test_mutated_valid_headers_only_ever_raise_request_auth_errors(
        self, data: st.DataObject
    ) -> None:
        value = _header()
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(value)))
            action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
            char = data.draw(st.sampled_from(list('",= \t0x9aZ-\n\\é')))
            if action == "insert":
                value = value[:position] + char + value[position:]
            elif action == "delete":
                value = value[:position] + value[position + 1 :]
            else:
                value = value[:position] + char + value[position + 1 :]
        try:
            header = parse_signature_header(value)
        except RequestAuthError:
            return
        assert format_signature_header(header)  # whatever parses is well-formed


# --------------------------------------------------------------------------- verification


class TestVerifyAccepts:
    @pytest.mark.parametrize("cred", [CRED, P256_CRED])
    def test_a_correctly_signed_request_returns_its_credential(self, cred: str) -> None:
        store = FixedClockStore()
        assert _verify(_header(cred), store) == cred
        assert len(store) == 1

    def test_timestamps_exactly_60_seconds_off_are_accepted(self) -> None:
        store = FixedClockStore()
        assert _verify(_header(nonce=1, ts=NOW - 60_000), store) == CRED
        assert _verify(_header(nonce=2, ts=NOW + 60_000), store) == CRED

    def test_method_case_does_not_matter(self) -> None:
        assert _verify(_header(method="post"), FixedClockStore(), method="POST") == CRED


class TestVerifyRefuses:
    @pytest.mark.parametrize("cred", [CRED, P256_CRED])
    def test_tampered_body_is_refused_and_burns_no_nonce(self, cred: str) -> None:
        store = FixedClockStore()
        code = _refusal(_header(cred), store, body=BODY + b" ")
        assert code in (ReasonCode.SIGNER_MISMATCH, ReasonCode.SIGNATURE_INVALID)
        assert len(store) == 0

    @pytest.mark.parametrize("cred", [CRED, P256_CRED])
    def test_replayed_request_is_refused(self, cred: str) -> None:
        store = FixedClockStore()
        header = _header(cred)
        _verify(header, store)
        assert _refusal(header, store) is ReasonCode.NONCE_REPLAYED
        assert len(store) == 1

    def test_a_nonce_is_per_credential(self) -> None:
        store = FixedClockStore()
        _verify(_header(CRED, nonce=9), store)
        assert _verify(_header(P256_CRED, nonce=9), store) == P256_CRED
        assert _refusal(_header(CRED, nonce=9, body=b"other"), store, body=b"other") is (
            ReasonCode.NONCE_REPLAYED
        )

    @pytest.mark.parametrize("ts", [NOW - 60_001, NOW + 60_001, 0])
    def test_stale_and_future_timestamps_are_refused(self, ts: int) -> None:
        store = FixedClockStore()
        assert _refusal(_header(ts=ts), store) is ReasonCode.TIMESTAMP_OUT_OF_WINDOW
        assert len(store) == 0

    @pytest.mark.parametrize(
        "overrides",
        [
            {"path_with_query": "/v1/sessions?walletId=w_2"},
            {"path_with_query": "/v1/sessions"},
            {"path_with_query": "/v1/wallets?walletId=w_1"},
            {"method": "PUT"},
        ],
    )
    @pytest.mark.parametrize("cred", [CRED, P256_CRED])
    def test_signature_for_another_path_or_method_is_refused(
        self, cred: str, overrides: dict[str, str]
    ) -> None:
        store = FixedClockStore()
        code = _refusal(_header(cred), store, **overrides)
        assert code in (ReasonCode.SIGNER_MISMATCH, ReasonCode.SIGNATURE_INVALID)
        assert len(store) == 0

    def test_invalid_signature_never_burns_the_nonce(self) -> None:
        store = FixedClockStore()
        forged = _with_signature(_header(nonce=77), sign_digest(b"\x07" * 32, bytes(32)))
        assert _refusal(forged, store) is ReasonCode.SIGNER_MISMATCH
        assert _verify(_header(nonce=77), store) == CRED

    def test_eip712_signature_by_the_same_key_is_refused(self) -> None:
        store = FixedClockStore()
        digest = grant_digest(CHAIN_ID, ACCOUNT, build_grant())
        cross = _with_signature(_header(), sign_digest(CREDENTIAL_SECRET, digest))
        assert _refusal(cross, store) is ReasonCode.SIGNER_MISMATCH
        assert len(store) == 0

    def test_personal_sign_of_the_body_alone_is_refused(self) -> None:
        store = FixedClockStore()
        cross = _with_signature(
            _header(), sign_digest(CREDENTIAL_SECRET, personal_message_hash(BODY))
        )
        assert _refusal(cross, store) is ReasonCode.SIGNER_MISMATCH

    def test_raw_digest_signature_of_the_preimage_is_refused(self) -> None:
        # Same key, same preimage, but not EIP-191 wrapped: another protocol.
        store = FixedClockStore()
        preimage = request_preimage(METHOD, PATH, CRED, 1, NOW, BODY)
        from sessionward.crypto.keccak import keccak256

        cross = _with_signature(_header(), sign_digest(CREDENTIAL_SECRET, keccak256(preimage)))
        assert _refusal(cross, store) is ReasonCode.SIGNER_MISMATCH

    def test_p256_signature_of_the_body_alone_is_refused(self) -> None:
        store = FixedClockStore()
        key = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
        cross = _with_signature(_header(P256_CRED), sign_p256(key, BODY))
        assert _refusal(cross, store) is ReasonCode.SIGNATURE_INVALID

    def test_header_alg_other_than_the_credentials_is_refused(self) -> None:
        store = FixedClockStore()
        preimage = request_preimage(METHOD, PATH, P256_CRED, 1, NOW, BODY)
        wrong = format_signature_header(
            SignatureHeader(ALG_SECP256K1, P256_CRED, 1, NOW, SECP_SIGNER.sign(preimage))
        )
        assert _refusal(wrong, store) is ReasonCode.SIGNATURE_INVALID
        assert len(store) == 0

    def test_unknown_credential_is_refused(self) -> None:
        store = FixedClockStore()
        assert _refusal(_header(), store, lookup=lambda _cred: None) is ReasonCode.SIGNATURE_INVALID

    @pytest.mark.parametrize("cred", [CRED, P256_CRED])
    def test_high_s_twin_of_a_request_signature_is_malleable(self, cred: str) -> None:
        store = FixedClockStore()
        header = _header(cred)
        sig = parse_signature_header(header).sig
        n = SECP256K1_N if cred == CRED else P256_N
        s = int.from_bytes(sig[32:64], "big")
        twin = (
            sig[:32]
            + (n - s).to_bytes(32, "big")
            + (bytes([55 - sig[64]]) if len(sig) == 65 else b"")
        )
        assert _refusal(_with_signature(header, twin), store) is ReasonCode.SIGNATURE_MALLEABLE
        assert _verify(header, store) == cred  # the canonical one still goes through

    def test_malformed_header_is_refused_before_anything_else(self) -> None:
        store = FixedClockStore()
        lookups: list[str] = []

        def lookup(cred: str) -> CredentialKey | None:
            lookups.append(cred)
            return KEYS.get(cred)

        assert _refusal("garbage", store, lookup=lookup) is ReasonCode.INPUT_MALFORMED
        assert lookups == [] and len(store) == 0

    def test_replay_ttl_shorter_than_the_window_is_a_configuration_error(self) -> None:
        with pytest.raises(ValueError):
            _verify(_header(), FixedClockStore(), window_ms=60_000, replay_ttl_ms=59_999)


class TestReplayStore:
    def test_a_used_nonce_stays_refused_as_long_as_its_timestamp_is_acceptable(self) -> None:
        store = FixedClockStore()
        ts = NOW + 60_000  # a request from the future edge of the window
        header = _header(ts=ts)
        _verify(header, store)
        last_acceptable = ts + 60_000
        store.now_ms = last_acceptable
        assert _refusal(header, store, now_ms=last_acceptable) is ReasonCode.NONCE_REPLAYED

    def test_expired_entries_are_pruned(self) -> None:
        store = FixedClockStore(now_ms=0)
        assert store.remember("c", 1, 100)
        assert store.remember("c", 2, 200)
        assert not store.remember("c", 1, 100)
        store.now_ms = 150
        assert store.remember("c", 3, 300)
        assert len(store) == 2  # nonce 1 is gone
        assert store.remember("c", 1, 400)  # and may be remembered afresh

    def test_concurrent_uses_of_one_nonce_admit_exactly_one(self) -> None:
        store = InMemoryReplayStore()
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def use() -> None:
            barrier.wait()
            results.append(store.remember("c", 42, 2**62))

        threads = [threading.Thread(target=use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False] * 7 + [True]


class TestSigners:
    def test_secp256k1_signer_never_shows_its_secret(self) -> None:
        assert CREDENTIAL_SECRET.hex() not in repr(SECP_SIGNER)
        assert SECP_SIGNER.address in repr(SECP_SIGNER)

    def test_credential_keys_refuse_inconsistent_material(self) -> None:
        with pytest.raises(ValueError):
            CredentialKey(alg=ALG_SECP256K1, public_key=P256_SIGNER.public_key)
        with pytest.raises(ValueError):
            CredentialKey(alg=ALG_P256, address=SECP_SIGNER.address)
        with pytest.raises(ValueError):
            CredentialKey.p256(P256_SIGNER.public_key[:33])
        with pytest.raises(ValueError):
            CredentialKey(alg="hmac", address=SECP_SIGNER.address)

    def test_signers_satisfy_the_protocol(self) -> None:
        signers: list[Callable[[bytes], bytes]] = [SECP_SIGNER.sign, P256_SIGNER.sign]
        assert [len(sign(b"x")) for sign in signers] == [65, 64]
        assert (SECP_SIGNER.alg, P256_SIGNER.alg) == (ALG_SECP256K1, ALG_P256)


# ---------------------------------------------------------------- verifying a parsed header


@pytest.mark.parametrize("cred", [CRED, P256_CRED])
def test_a_parsed_header_verifies_as_its_text_does(cred: str) -> None:
    assert _verify(parse_signature_header(_header(cred)), FixedClockStore()) == cred


@pytest.mark.parametrize(
    ("header", "overrides", "code"),
    [
        (lambda: _header(ts=NOW - 61_000), {}, ReasonCode.TIMESTAMP_OUT_OF_WINDOW),
        (lambda: _header(), {"body": b"{}"}, ReasonCode.SIGNER_MISMATCH),
        (lambda: _header(), {"lookup": lambda _cred: None}, ReasonCode.SIGNATURE_INVALID),
    ],
    ids=["stale", "tampered body", "unknown credential"],
)
def test_a_parsed_header_is_refused_as_its_text_is(
    header: Callable[[], str], overrides: dict[str, Any], code: ReasonCode
) -> None:
    with pytest.raises(RequestAuthError) as parsed:
        _verify(parse_signature_header(header()), FixedClockStore(), **overrides)
    assert parsed.value.code is code
    assert _refusal(header(), FixedClockStore(), **overrides) is code


def test_a_parsed_header_is_remembered_once() -> None:
    store = FixedClockStore()
    header = _header(nonce=7)
    assert _verify(parse_signature_header(header), store) == CRED
    with pytest.raises(RequestAuthError) as replayed:
        _verify(parse_signature_header(header), store)
    assert replayed.value.code is ReasonCode.NONCE_REPLAYED
