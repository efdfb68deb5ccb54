"""ERC-1271 through ERC-7739: a dapp's EIP-712 message (or EIP-191 message) that the owner
signed through its wallet's ERC-7739 flow validates on the owner's account, and only there.

The vectors (tests/vectors/erc7739_viem.json) are computed by viem's ERC-7739 helpers
(``hashTypedData``, ``wrapTypedDataSignature``, ``hashMessage`` of ``viem/experimental/erc7739``;
the generator is tests/vectors/erc7739_viem.mjs) for the contract tests' key ``erc7739-owner``
and its own EIP-7702 account on chain 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boa
import pytest
from contracts_support import (
    World,
    addr,
    delegate_7702,
    double_deployer,
    factory_account,
    make_key,
)
from test_account import INVALID, MAGIC, _account_message_digest

from sessionward.chain.contracts import compile_vyper
from sessionward.contracts import load_deployer, source_path
from sessionward.crypto.keccak import keccak256

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "erc7739_viem.json").read_text()
)
CREATE2_PROXY = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
DETECTION = bytes.fromhex("7739" * 16)
SUPPORTED = bytes.fromhex("77390001")
FIELDS = (
    b" contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
)


def verifier_address() -> str:
    """The CREATE2 address of NestedTypedDataVerifier's initcode under the deterministic
    deployment proxy, salt 0."""
    initcode = compile_vyper(source_path("NestedTypedDataVerifier")).initcode
    proxy = bytes.fromhex(CREATE2_PROXY[2:])
    return "0x" + keccak256(b"\xff" + proxy + b"\x00" * 32 + keccak256(initcode))[12:].hex()


def install_verifier() -> str:
    """Put the verifier's runtime at its address (what the proxy deployment leaves there)."""
    address = verifier_address()
    deployed = load_deployer("NestedTypedDataVerifier").deploy()
    boa.env.set_code(address, boa.env.get_code(deployed.address))
    return address


@pytest.fixture
def verifier() -> str:
    return install_verifier()


@pytest.fixture
def owner_account(world: World, verifier: str) -> Any:
    """The vectors' owner as its own EIP-7702 account, on the vectors' chain."""
    boa.env.evm.patch.chain_id = VECTORS["chainId"]
    owner = make_key("erc7739-owner")
    assert owner.address == VECTORS["account"]
    return delegate_7702(owner.address, world.implementation)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def nested(owner_signature: bytes, app_domain: bytes, contents: bytes, description: bytes) -> bytes:
    return (
        owner_signature + app_domain + contents + description + len(description).to_bytes(2, "big")
    )


def typed_data_sign_digest(
    account: str, chain_id: int, app_domain: bytes, contents: bytes, name: bytes, ctype: bytes
) -> bytes:
    """What the owner signs (ERC-7739 ``TypedDataSign``), written out from the ERC text."""
    typehash = keccak256(b"TypedDataSign(" + name + FIELDS + ctype)
    struct = keccak256(
        typehash
        + contents
        + keccak256(b"SessionWard")
        + keccak256(b"1")
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(account[2:])
        + bytes(32)
    )
    return keccak256(b"\x19\x01" + app_domain + struct)


# --- the address and the support detection ---------------------------------------------------


def test_the_account_names_the_verifier_by_the_create2_address_of_its_code() -> None:
    text = source_path("SessionAccount").read_text()
    constant = text.split("ERC7739_VERIFIER: constant(address) = ")[1].split()[0]
    assert constant.lower() == verifier_address()


def test_the_account_answers_the_erc7739_detection_request(owner_account: Any) -> None:
    assert owner_account.isValidSignature(DETECTION, b"Any Signature") == SUPPORTED


def test_the_account_states_its_eip712_domain_erc5267(owner_account: Any) -> None:
    fields, name, version, chain_id, contract, salt, extensions = owner_account.eip712Domain()
    assert (fields, name, version, chain_id) == (b"\x0f", "SessionWard", "1", VECTORS["chainId"])
    assert (addr(contract), salt, list(extensions)) == (VECTORS["account"], bytes(32), [])


# --- viem's vectors ------------------------------------------------------------------------------


def sorted_description(signature: bytes) -> tuple[bytes, bytes]:
    """The contents description of a viem-wrapped signature as the ERC wants it: viem writes
    ``encodeType(primaryType)`` (the primary type first: implicit mode), but the digest it signs
    sorts every type the ``TypedDataSign`` references, so when one sorts before the primary the
    description must be explicit (``sorted types ‖ name``). Returns (description, name)."""
    described = int.from_bytes(signature[-2:], "big")
    description = signature[-2 - described : -2]
    parts = [part + b")" for part in description.split(b")") if part]
    name = parts[0][: parts[0].index(b"(")]
    ordered = b"".join(sorted(parts, key=lambda part: part[: part.index(b"(")]))
    return (description, name) if ordered == description else (ordered + name, name)


def rewrapped(signature: bytes) -> bytes:
    description, _name = sorted_description(signature)
    return nested(signature[:65], signature[65:97], signature[97:129], description)


IMPLICIT_IS_EXACT = [
    c for c in VECTORS["typed"] if rewrapped(_hex(c["signature"])) == _hex(c["signature"])
]
NEEDS_EXPLICIT = [c for c in VECTORS["typed"] if c not in IMPLICIT_IS_EXACT]


@pytest.mark.parametrize("case", IMPLICIT_IS_EXACT, ids=lambda c: c["name"])
def test_a_viem_typed_data_sign_signature_validates(
    owner_account: Any, case: dict[str, Any]
) -> None:
    assert owner_account.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == MAGIC


@pytest.mark.parametrize("case", NEEDS_EXPLICIT, ids=lambda c: c["name"])
def test_a_viem_signature_over_types_sorting_before_the_primary_needs_the_explicit_mode(
    owner_account: Any, case: dict[str, Any]
) -> None:
    """viem 2.57.20 wraps it in implicit mode, which rebuilds another type string than the
    one its digest hashed: refused as the ERC says; the same owner signature in explicit mode
    validates."""
    hash_ = _hex(case["hash"])
    assert owner_account.isValidSignature(hash_, _hex(case["signature"])) == INVALID
    assert owner_account.isValidSignature(hash_, rewrapped(_hex(case["signature"]))) == MAGIC


def test_the_vectors_hold_both_description_modes() -> None:
    assert IMPLICIT_IS_EXACT and NEEDS_EXPLICIT


@pytest.mark.parametrize("case", VECTORS["typed"], ids=lambda c: c["name"])
def test_the_digest_viem_signs_is_the_one_the_erc_text_defines(case: dict[str, Any]) -> None:
    signature = _hex(case["signature"])
    description, name = sorted_description(signature)
    ctype = description if description.endswith(b")") else description[: -len(name)]
    app_domain, contents = signature[65:97], signature[97:129]
    digest = typed_data_sign_digest(
        VECTORS["account"], VECTORS["chainId"], app_domain, contents, name, ctype
    )
    assert "0x" + digest.hex() == case["digest"]
    assert keccak256(b"\x19\x01" + app_domain + contents).hex() == case["hash"][2:]


@pytest.mark.parametrize("case", VECTORS["personal"], ids=lambda c: c["message"][:11])
def test_a_viem_personal_sign_signature_validates(owner_account: Any, case: dict[str, Any]) -> None:
    assert owner_account.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == MAGIC


# --- replays and tampering are refused ------------------------------------------------------------


def test_a_nested_signature_is_refused_on_another_account_of_the_same_owner(
    world: World, owner_account: Any
) -> None:
    case = VECTORS["typed"][0]
    other = factory_account(world, VECTORS["account"], b"\x07" * 32)
    assert other.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == INVALID
    personal = VECTORS["personal"][0]
    assert other.isValidSignature(_hex(personal["hash"]), _hex(personal["signature"])) == INVALID


def test_a_nested_signature_is_refused_on_another_chain(owner_account: Any) -> None:
    case = VECTORS["typed"][0]
    boa.env.evm.patch.chain_id = VECTORS["chainId"] + 1
    assert owner_account.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == INVALID


def test_the_raw_owner_signature_over_the_app_hash_is_refused(owner_account: Any) -> None:
    case = VECTORS["typed"][0]
    raw = make_key("erc7739-owner").sign(_hex(case["hash"]))
    assert owner_account.isValidSignature(_hex(case["hash"]), raw) == INVALID


@pytest.mark.parametrize("where", ["owner-signature", "contents", "description"])
def test_a_tampered_nested_signature_is_refused(owner_account: Any, where: str) -> None:
    case = VECTORS["typed"][0]
    signature = bytearray(_hex(case["signature"]))
    position = {"owner-signature": 10, "contents": 100, "description": 140}[where]
    signature[position] ^= 0x01
    assert owner_account.isValidSignature(_hex(case["hash"]), bytes(signature)) == INVALID


def test_a_session_key_cannot_sign_a_nested_message(owner_account: Any) -> None:
    case = VECTORS["typed"][0]
    session = make_key("session-1").sign(_hex(case["digest"]))
    signature = session + _hex(case["signature"])[65:]
    assert owner_account.isValidSignature(_hex(case["hash"]), signature) == INVALID


@pytest.mark.parametrize(
    "name",
    [b"", b"mail", b"(Mail", b"Ma,il", b"Ma il", b"Ma)il", b"Ma\x00il"],
    ids=["empty", "lower-case", "paren", "comma", "space", "close-paren", "nul"],
)
def test_a_contents_name_that_could_break_the_type_string_is_refused(
    owner_account: Any, name: bytes
) -> None:
    """Explicit mode (``contentsType ‖ contentsName``): the owner signed exactly what the
    account would rebuild, yet the name could show the wallet another type."""
    owner = make_key("erc7739-owner")
    app_domain, contents = keccak256(b"app"), keccak256(b"contents")
    ctype = b"Mail(string contents)"
    digest = typed_data_sign_digest(
        VECTORS["account"], VECTORS["chainId"], app_domain, contents, name, ctype
    )
    signature = nested(owner.sign(digest), app_domain, contents, ctype + name)
    app_hash = keccak256(b"\x19\x01" + app_domain + contents)
    assert owner_account.isValidSignature(app_hash, signature) == INVALID


def test_an_explicit_mode_description_validates(owner_account: Any) -> None:
    """``contentsType`` need not start with its name (EIP-712 sorts referenced types)."""
    owner = make_key("erc7739-owner")
    app_domain, contents = keccak256(b"app"), keccak256(b"contents")
    ctype = b"Asset(address token,uint256 amount)Order(Asset give,Asset take)"
    digest = typed_data_sign_digest(
        VECTORS["account"], VECTORS["chainId"], app_domain, contents, b"Order", ctype
    )
    signature = nested(owner.sign(digest), app_domain, contents, ctype + b"Order")
    app_hash = keccak256(b"\x19\x01" + app_domain + contents)
    assert owner_account.isValidSignature(app_hash, signature) == MAGIC


def test_a_nested_signature_validates_for_an_erc1271_owner(world: World, verifier: str) -> None:
    signer = make_key("smart-owner-signer")
    smart_owner = double_deployer("Signer1271").deploy(signer.address)
    account = factory_account(world, smart_owner)
    chain_id = int(boa.env.evm.patch.chain_id)
    app_domain, contents = keccak256(b"app"), keccak256(b"contents")
    ctype = b"Mail(string contents)"
    digest = typed_data_sign_digest(addr(account), chain_id, app_domain, contents, b"Mail", ctype)
    signature = nested(signer.sign(digest), app_domain, contents, ctype)
    assert (
        account.isValidSignature(keccak256(b"\x19\x01" + app_domain + contents), signature) == MAGIC
    )


# --- without the verifier, and the existing wrapper -----------------------------------------------


def test_without_the_verifier_nested_signatures_are_invalid_and_nothing_reverts(
    world: World,
) -> None:
    boa.env.evm.patch.chain_id = VECTORS["chainId"]
    boa.env.set_code(verifier_address(), b"")
    account = delegate_7702(VECTORS["account"], world.implementation)
    case = VECTORS["typed"][0]
    assert account.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == INVALID
    personal = VECTORS["personal"][0]
    assert account.isValidSignature(_hex(personal["hash"]), _hex(personal["signature"])) == MAGIC


def test_the_account_message_wrapper_still_validates(world: World, verifier: str) -> None:
    wallet = world.wallet
    message = keccak256(b"sign in to example.org")
    signature = wallet.owner.sign(_account_message_digest(wallet.chain_id, wallet.address, message))
    assert wallet.contract.isValidSignature(message, signature) == MAGIC


def test_a_plain_signature_never_reaches_the_verifier(world: World) -> None:
    """Code at the verifier's address that burns every gas it is given: a 65-byte signature
    still validates (the account does not call there), a nested one does not."""
    boa.env.evm.patch.chain_id = VECTORS["chainId"]
    boa.env.set_code(verifier_address(), b"\xfe")
    account = delegate_7702(VECTORS["account"], world.implementation)
    personal = VECTORS["personal"][0]
    assert account.isValidSignature(_hex(personal["hash"]), _hex(personal["signature"])) == MAGIC
    case = VECTORS["typed"][0]
    assert account.isValidSignature(_hex(case["hash"]), _hex(case["signature"])) == INVALID
