"""SessionWard's EIP-712 types (docs/protocol.md sections 1-2) and their digests."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crypto_support import ACCOUNT, CHAIN_ID, OWNER_SECRET, build_grant, eth_account_digest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward.crypto.eip712 import TypedDataError, domain_separator
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, recover_signer
from sessionward.crypto.typed_data import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    SCHEMA,
    credential_hash,
    domain_separator_for,
    execution_hash,
    grant_digest,
    revocation_digest,
    session_call_digest,
    typed_data_document,
)

ReferenceDigest = Callable[[str, int, str, dict[str, Any]], bytes]
PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SESSION_KEY = "0x5e5510e0000000000000000000000000000000a1"
OTHER_ACCOUNT = "0x2222222222222222222222222222222222222222"


def _protocol_type_lines() -> dict[str, str]:
    """The struct definitions of docs/protocol.md section 2, by struct name."""
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text[text.index("## 2. Typed messages") : text.index("## 3.")]
    block = section.split("```")[1]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    return {line[: line.index("(")]: line for line in lines}


class TestTypesMatchTheProtocol:
    def test_every_protocol_struct_is_in_the_schema_with_the_same_fields(self) -> None:
        lines = _protocol_type_lines()
        assert set(lines) == set(SCHEMA.struct_names)
        for name, line in lines.items():
            fields = ",".join(f"{t} {n}" for t, n in SCHEMA.fields(name))
            assert f"{name}({fields})" == line

    def test_encode_types_append_referenced_structs_alphabetically(self) -> None:
        lines = _protocol_type_lines()
        assert SCHEMA.encode_type("SessionGrant") == "".join(
            lines[n] for n in ["SessionGrant", "Envelope", "Permission", "Rule", "TokenLimit"]
        )
        assert SCHEMA.encode_type("Envelope") == "".join(
            lines[n] for n in ["Envelope", "Permission", "Rule", "TokenLimit"]
        )
        assert SCHEMA.encode_type("SessionCall") == lines["SessionCall"]
        assert SCHEMA.encode_type("Revocation") == lines["Revocation"]

    def test_domain_is_name_version_chain_and_account(self) -> None:
        assert (DOMAIN_NAME, DOMAIN_VERSION) == ("SessionWard", "1")
        assert domain_separator_for(CHAIN_ID, ACCOUNT) == domain_separator(
            "SessionWard", "1", CHAIN_ID, ACCOUNT
        )


class TestDigestsEqualEthAccount:
    def test_grant_digest(
        self, grant_message: dict[str, Any], reference_digest: ReferenceDigest
    ) -> None:
        expected = reference_digest("SessionGrant", CHAIN_ID, ACCOUNT, grant_message)
        assert grant_digest(CHAIN_ID, ACCOUNT, grant_message) == expected

    def test_session_call_digest(self, reference_digest: ReferenceDigest) -> None:
        call_hash = execution_hash(bytes(32), b"\x01" * 52 + b"\xa9\x05\x9c\xbb")
        message = {
            "account": ACCOUNT,
            "sessionKey": SESSION_KEY,
            "executionHash": call_hash,
            "nonce": 7,
            "deadline": 1_767_225_660,
        }
        assert session_call_digest(
            CHAIN_ID, ACCOUNT, SESSION_KEY, call_hash, 7, 1_767_225_660
        ) == reference_digest("SessionCall", CHAIN_ID, ACCOUNT, message)

    def test_revocation_digest(self, reference_digest: ReferenceDigest) -> None:
        message = {"account": ACCOUNT, "sessionKey": SESSION_KEY, "epoch": 2, "nonce": 9}
        assert revocation_digest(CHAIN_ID, ACCOUNT, SESSION_KEY, 2, 9) == reference_digest(
            "Revocation", CHAIN_ID, ACCOUNT, message
        )

    def test_a_wallet_signature_of_the_document_recovers_to_the_owner(
        self, grant_message: dict[str, Any]
    ) -> None:
        document = typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, grant_message)
        signed = Account.sign_typed_data(OWNER_SECRET, full_message=document)
        signer = recover_signer(
            grant_digest(CHAIN_ID, ACCOUNT, grant_message), bytes(signed.signature)
        )
        assert signer == address_from_secret(OWNER_SECRET)


class TestDigestBinding:
    def test_another_chain_or_account_gives_another_digest(self) -> None:
        grant = build_grant()
        digests = {
            grant_digest(CHAIN_ID, ACCOUNT, grant),
            grant_digest(10, ACCOUNT, grant),
            grant_digest(CHAIN_ID, OTHER_ACCOUNT, grant),
            revocation_digest(CHAIN_ID, ACCOUNT, SESSION_KEY, 0, 0),
            revocation_digest(10, ACCOUNT, SESSION_KEY, 0, 0),
            revocation_digest(CHAIN_ID, OTHER_ACCOUNT, SESSION_KEY, 0, 0),
        }
        assert len(digests) == 6

    def test_a_session_call_and_a_revocation_with_equal_numbers_differ(self) -> None:
        word = bytes(32)
        zero_key = "0x" + "00" * 20
        assert session_call_digest(CHAIN_ID, ACCOUNT, zero_key, word, 0, 0) != revocation_digest(
            CHAIN_ID, ACCOUNT, zero_key, 0, 0
        )

    def test_domain_separator_is_cached_per_chain_and_account(self) -> None:
        domain_separator_for.cache_clear()
        domain_separator_for(CHAIN_ID, ACCOUNT)
        domain_separator_for(CHAIN_ID, ACCOUNT)
        assert domain_separator_for.cache_info().hits == 1


class TestHelpers:
    def test_execution_hash_is_keccak_of_mode_then_calldata(self) -> None:
        mode = bytes([1]) + bytes(31)
        calldata = b"\x22" * 100
        assert execution_hash(mode, calldata) == keccak256(mode + calldata)

    @pytest.mark.parametrize("mode", [bytes(31), bytes(33), b""])
    def test_execution_mode_must_be_32_bytes(self, mode: bytes) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            execution_hash(mode, b"")

    def test_credential_hash_is_keccak_of_utf8(self) -> None:
        assert credential_hash("cred_é") == keccak256("cred_é".encode())


class TestTypedDataDocument:
    def test_document_is_json_with_wallet_conventions(self, grant_message: dict[str, Any]) -> None:
        document = typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, grant_message)
        assert json.loads(json.dumps(document)) == document
        assert document["primaryType"] == "SessionGrant"
        assert document["domain"] == {
            "name": "SessionWard",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0x1111111111111111111111111111111111111111",
        }
        assert list(document["types"]) == [
            "EIP712Domain",
            "SessionGrant",
            "Envelope",
            "Permission",
            "Rule",
            "TokenLimit",
        ]
        message = document["message"]
        assert message["nonce"] == "3" and message["envelope"]["validAfter"] == "1767225600"
        assert re.fullmatch(r"0x[0-9a-f]{64}", message["credential"])
        permission = message["envelope"]["permissions"][0]
        assert permission["selector"] == "0xa9059cbb"
        assert permission["rules"][0]["op"] == "4"
        assert message["envelope"]["tokenLimits"][0]["token"] == (
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
        )

    def test_session_call_document_has_only_its_own_type(self) -> None:
        message = {
            "account": ACCOUNT,
            "sessionKey": SESSION_KEY,
            "executionHash": bytes(32),
            "nonce": 0,
            "deadline": 0,
        }
        document = typed_data_document("SessionCall", CHAIN_ID, ACCOUNT, message)
        assert list(document["types"]) == ["EIP712Domain", "SessionCall"]

    def test_invalid_message_is_refused_with_the_field_path(
        self, grant_message: dict[str, Any]
    ) -> None:
        grant_message["envelope"]["permissions"][2]["selector"] = b"\x01\x02\x03"
        with pytest.raises(TypedDataError) as caught:
            typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, grant_message)
        assert caught.value.path == "SessionGrant.envelope.permissions[2].selector"
        with pytest.raises(TypedDataError):
            grant_digest(CHAIN_ID, ACCOUNT, grant_message)


class TestGrantValidation:
    @pytest.mark.parametrize(
        ("path", "value", "fragment"),
        [
            (("envelope", "validAfter"), 2**48, "out of range for uint48"),
            (("envelope", "maxUses"), -1, "out of range for uint32"),
            (("envelope", "maxValueUsd"), 1000, "expected a str"),
            (("credential",), "cred_test_0001", "malformed"),
            (("sessionKey",), "0x5E5510e0000000000000000000000000000000A1", "checksum"),
            (("envelope", "capabilities"), "erc20.transfer", "expected a list"),
        ],
    )
    def test_malformed_grant_fields_are_refused(
        self, grant_message: dict[str, Any], path: tuple[str, ...], value: Any, fragment: str
    ) -> None:
        target = grant_message
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(TypedDataError, match=fragment) as caught:
            grant_digest(CHAIN_ID, ACCOUNT, grant_message)
        assert caught.value.path == "SessionGrant." + ".".join(path)

    def test_unknown_envelope_field_is_refused(self, grant_message: dict[str, Any]) -> None:
        grant_message["envelope"]["wildcard"] = True
        with pytest.raises(TypedDataError, match="unknown field"):
            grant_digest(CHAIN_ID, ACCOUNT, grant_message)

    def test_hashing_does_not_mutate_the_grant(self, grant_message: dict[str, Any]) -> None:
        before = copy.deepcopy(grant_message)
        grant_digest(CHAIN_ID, ACCOUNT, grant_message)
        typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, grant_message)
        assert grant_message == before


# ---------------------------------------------------------------- generated grant envelopes

_ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
_WORDS = st.binary(min_size=32, max_size=32)
_SHORT_TEXT = st.text(max_size=16)


def _uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 3), st.integers(0, 2**bits - 1))


_RULES = st.fixed_dictionaries(
    {
        "arg": _SHORT_TEXT,
        "op": st.integers(0, 5),
        "offset": st.one_of(st.integers(0, 8), st.just(0xFFFF)),
        "values": st.lists(_WORDS, max_size=3),
    }
)
_PERMISSIONS = st.fixed_dictionaries(
    {
        "target": _ADDRESSES,
        "selector": st.binary(min_size=4, max_size=4),
        "function": _SHORT_TEXT,
        "actionClass": _SHORT_TEXT,
        "maxValuePerCall": _uint(256),
        "rules": st.lists(_RULES, max_size=3),
    }
)
_ENVELOPES = st.fixed_dictionaries(
    {
        "chainId": _uint(256),
        "validAfter": _uint(48),
        "expiresAt": _uint(48),
        "capabilities": st.lists(_SHORT_TEXT, max_size=3),
        "permissions": st.lists(_PERMISSIONS, max_size=4),
        "allowedDestinations": st.lists(_ADDRESSES, max_size=3),
        "valueLimit": _uint(256),
        "valuePeriod": _uint(48),
        "tokenLimits": st.lists(
            st.fixed_dictionaries({"token": _ADDRESSES, "limit": _uint(256), "period": _uint(48)}),
            max_size=3,
        ),
        "maxValueUsd": _SHORT_TEXT,
        "maxUses": _uint(32),
        "rateCount": _uint(32),
        "rateInterval": _uint(32),
        "maxFeeWei": _uint(256),
    }
)
_GRANTS = st.fixed_dictionaries(
    {
        "account": _ADDRESSES,
        "sessionKey": _ADDRESSES,
        "credential": _WORDS,
        "nonce": _uint(256),
        "epoch": _uint(256),
        "revoker": _ADDRESSES,
        "envelope": _ENVELOPES,
    }
)


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(grant=_GRANTS, chain_id=_uint(256), account=_ADDRESSES)
def test_generated_grants_hash_like_eth_account(
    grant: dict[str, Any], chain_id: int, account: str
) -> None:
    document = typed_data_document("SessionGrant", chain_id, account, grant)
    assert grant_digest(chain_id, account, grant) == eth_account_digest(document)
