"""Owner signatures: EOA via ecrecover, contract owners via an injected ERC-1271 checker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from crypto_support import ACCOUNT, CHAIN_ID, OWNER_SECRET, SESSION_SECRET, build_grant

from sessionward.crypto.owner_signature import Erc1271Checker, verify_owner_signature
from sessionward.crypto.secp256k1 import (
    SECP256K1_N,
    SignatureError,
    address_from_secret,
    sign_digest,
    to_checksum_address,
)
from sessionward.crypto.typed_data import grant_digest
from sessionward.reasons import ReasonCode

DIGEST = grant_digest(CHAIN_ID, ACCOUNT, build_grant())
OWNER = address_from_secret(OWNER_SECRET)
SAFE = "0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe"
CONTRACT_SIGNATURE = b"\x00" * 10 + b"opaque, contract-defined"


@dataclass
class FakeChecker:
    """Answers like a contract would; records what it was asked."""

    answer: Any = True
    calls: list[tuple[int, str, bytes, bytes]] = field(default_factory=list)

    def is_valid_signature(
        self, chain_id: int, contract: str, digest: bytes, signature: bytes
    ) -> bool:
        self.calls.append((chain_id, contract, digest, signature))
        return self.answer  # type: ignore[no-any-return]


class ExplodingChecker:
    def is_valid_signature(
        self, chain_id: int, contract: str, digest: bytes, signature: bytes
    ) -> bool:
        raise ConnectionError("node unreachable")


def _verify(**overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "owner": OWNER,
        "owner_kind": "eoa",
        "chain_id": CHAIN_ID,
        "digest": DIGEST,
        "signature": sign_digest(OWNER_SECRET, DIGEST),
        "erc1271": None,
    }
    arguments.update(overrides)
    verify_owner_signature(**arguments)


def _refusal(**overrides: Any) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        _verify(**overrides)
    return caught.value


class TestEoaOwner:
    def test_owner_signature_is_accepted_in_any_address_spelling(self) -> None:
        _verify()
        _verify(owner=to_checksum_address(OWNER))

    def test_signature_by_another_key_is_a_mismatch(self) -> None:
        error = _refusal(signature=sign_digest(SESSION_SECRET, DIGEST))
        assert error.code is ReasonCode.SIGNER_MISMATCH

    def test_high_s_twin_is_malleable(self) -> None:
        signature = sign_digest(OWNER_SECRET, DIGEST)
        s = int.from_bytes(signature[32:64], "big")
        twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
        assert _refusal(signature=twin).code is ReasonCode.SIGNATURE_MALLEABLE

    def test_garbage_is_invalid(self) -> None:
        assert _refusal(signature=b"\x01" * 65).code is ReasonCode.SIGNATURE_INVALID

    def test_a_configured_checker_is_not_consulted_for_an_eoa(self) -> None:
        checker = FakeChecker(answer=True)
        error = _refusal(signature=sign_digest(SESSION_SECRET, DIGEST), erc1271=checker)
        assert error.code is ReasonCode.SIGNER_MISMATCH
        assert checker.calls == []


class TestErc1271Owner:
    def test_contract_acceptance_is_accepted_and_the_call_is_exact(self) -> None:
        checker = FakeChecker(answer=True)
        _verify(
            owner=to_checksum_address(SAFE),
            owner_kind="erc1271",
            signature=CONTRACT_SIGNATURE,
            erc1271=checker,
        )
        assert checker.calls == [(CHAIN_ID, SAFE, DIGEST, CONTRACT_SIGNATURE)]

    def test_contract_refusal_is_invalid(self) -> None:
        checker = FakeChecker(answer=False)
        error = _refusal(
            owner=SAFE, owner_kind="erc1271", signature=CONTRACT_SIGNATURE, erc1271=checker
        )
        assert error.code is ReasonCode.SIGNATURE_INVALID
        assert len(checker.calls) == 1

    @pytest.mark.parametrize("answer", [1, "true", b"\x16\x26\xba\x7e", None])
    def test_truthy_answers_other_than_true_are_invalid(self, answer: Any) -> None:
        checker = FakeChecker(answer=answer)
        error = _refusal(
            owner=SAFE, owner_kind="erc1271", signature=CONTRACT_SIGNATURE, erc1271=checker
        )
        assert error.code is ReasonCode.SIGNATURE_INVALID

    def test_missing_checker_is_invalid_with_a_clear_message(self) -> None:
        error = _refusal(owner=SAFE, owner_kind="erc1271", signature=CONTRACT_SIGNATURE)
        assert error.code is ReasonCode.SIGNATURE_INVALID
        assert "no ERC-1271 checker" in error.message

    def test_zero_address_contract_owner_is_invalid_without_asking(self) -> None:
        checker = FakeChecker(answer=True)
        error = _refusal(
            owner="0x" + "00" * 20,
            owner_kind="erc1271",
            signature=CONTRACT_SIGNATURE,
            erc1271=checker,
        )
        assert error.code is ReasonCode.SIGNATURE_INVALID
        assert checker.calls == []

    def test_checker_failures_propagate_and_never_pass(self) -> None:
        checker: Erc1271Checker = ExplodingChecker()
        with pytest.raises(ConnectionError):
            _verify(owner=SAFE, owner_kind="erc1271", signature=CONTRACT_SIGNATURE, erc1271=checker)

    def test_an_eoa_signature_does_not_satisfy_a_contract_owner_without_the_contract(self) -> None:
        checker = FakeChecker(answer=False)
        # The contract's address is irrelevant to ecrecover: only the contract decides.
        error = _refusal(owner=SAFE, owner_kind="erc1271", erc1271=checker)
        assert error.code is ReasonCode.SIGNATURE_INVALID


class TestArgumentShapes:
    def test_unknown_owner_kind_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="unknown owner kind"):
            _verify(owner_kind="passkey")

    def test_short_digest_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError):
            _verify(digest=DIGEST[:31])

    def test_malformed_owner_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError):
            _verify(owner="0x1234")
