"""The one address rule: EIP-55's own test cases, single-case bodies accepted as unchecksummed,
mixed case held to the checksum, and every parser of the project agreeing with it."""

from __future__ import annotations

import pytest
from crypto_support import EIP55_TEST_CASES
from eth_utils.address import to_checksum_address as eth_utils_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.crypto import address, secp256k1
from sessionward.crypto.address import (
    AddressChecksumError,
    is_address_text,
    is_checksum_valid,
    normalize_address,
    to_checksum_address,
)
from sessionward.domain.values import InvalidValue, parse_address

CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
LOWER = CHECKSUMMED.lower()


@pytest.mark.parametrize("case", EIP55_TEST_CASES)
def test_eip55_test_cases_are_their_own_checksum_and_parse_to_lower_case(case: str) -> None:
    assert to_checksum_address(case.lower()) == case
    assert to_checksum_address(bytes.fromhex(case[2:])) == case
    assert is_checksum_valid(case)
    assert normalize_address(case) == case.lower()
    assert parse_address(case) == case.lower()


@pytest.mark.parametrize("spelling", [LOWER, "0x" + LOWER[2:].upper(), CHECKSUMMED])
def test_all_lower_all_upper_and_checksummed_spellings_are_one_address(spelling: str) -> None:
    assert normalize_address(spelling) == LOWER
    assert parse_address(spelling, "to") == LOWER


def test_a_single_case_body_is_unchecksummed_not_a_valid_checksum() -> None:
    # Accepted by the parser, but it is not the checksummed display form.
    assert not is_checksum_valid("0x" + LOWER[2:].upper())
    assert not is_checksum_valid(LOWER)


def test_a_mixed_case_typo_is_refused_by_every_parser_with_the_same_reason() -> None:
    typo = CHECKSUMMED[:-1] + "D"  # the last letter's case flipped
    with pytest.raises(AddressChecksumError, match="checksum"):
        normalize_address(typo)
    with pytest.raises(InvalidValue, match="to: address has an invalid EIP-55 checksum"):
        parse_address(typo, "to")


@pytest.mark.parametrize(
    "value",
    ["0x123", LOWER[2:], LOWER + "00", "0X" + LOWER[2:], LOWER[:-1] + "g", " " + LOWER[1:]],
)
def test_malformed_strings_are_not_addresses(value: str) -> None:
    assert not is_address_text(value)
    with pytest.raises(ValueError, match="40 hex digits") as caught:
        normalize_address(value)
    assert not isinstance(caught.value, AddressChecksumError)
    with pytest.raises(InvalidValue, match="expected an address"):
        parse_address(value)


def test_bytes_are_an_address_for_normalize_but_not_for_the_json_parser() -> None:
    assert normalize_address(bytes.fromhex(LOWER[2:])) == LOWER
    with pytest.raises(ValueError, match="20 bytes"):
        normalize_address(b"\x00" * 19)
    with pytest.raises(InvalidValue):
        parse_address(bytes.fromhex(LOWER[2:]))


def test_secp256k1_reexports_the_one_implementation() -> None:
    assert secp256k1.normalize_address is address.normalize_address
    assert secp256k1.to_checksum_address is address.to_checksum_address
    assert secp256k1.is_checksum_valid is address.is_checksum_valid


def _case_mangled(draw: st.DrawFn) -> str:
    raw = draw(st.binary(min_size=20, max_size=20))
    flips = draw(st.lists(st.booleans(), min_size=40, max_size=40))
    body = "".join(c.upper() if f else c for c, f in zip(raw.hex(), flips, strict=True))
    return "0x" + body


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(st.composite(_case_mangled)())
def test_the_domain_parser_and_the_crypto_parser_agree_on_every_spelling(text: str) -> None:
    try:
        expected: str | None = normalize_address(text)
    except ValueError:
        expected = None
    try:
        got: str | None = parse_address(text)
    except InvalidValue:
        got = None
    assert got == expected
    body = text[2:]
    single_case = body in (body.lower(), body.upper())
    assert (expected is not None) == (single_case or text == eth_utils_checksum(text))
