"""The approval page's own Ethereum crypto (``/ui/static/ethsig.js``), run in Chromium and
compared with the service's Python implementation: Keccak-256 across block boundaries, EIP-55
addresses, the EIP-712 digest of a typed-data document, and signer recovery under the service's
signature rules (65 bytes, v 27/28 or 0/1, low s)."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.sync_api import Page
from ui_browser_support import Service

from sessionward.crypto.address import to_checksum_address
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.crypto.typed_data import renewal_digest, renewal_message, typed_data_document

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_RUN = """async ([name, args]) => {
  const m = await import('/ui/static/ethsig.js');
  const hex = (v) => (v instanceof Uint8Array ? m.bytesToHex(v) : v);
  try {
    if (name === 'keccak') return hex(m.keccak256(m.hexToBytes(args[0])));
    if (name === 'digest') return hex(m.typedDataDigest(args[0]));
    if (name === 'recover') return m.recoverAddress(m.hexToBytes(args[0]), args[1]);
    if (name === 'checksum') return m.checksumAddress(args[0]);
  } catch (error) {
    return 'error: ' + error.message;
  }
}"""


def _run(page: Page, name: str, *args: Any) -> Any:
    return page.evaluate(_RUN, [name, list(args)])


def test_keccak_and_addresses_match_the_service(service: Service, page: Page) -> None:
    page.goto(service.url + "/ui/approve")
    for size in (0, 1, 31, 32, 135, 136, 137, 271, 272, 500):
        data = secrets.token_bytes(size)
        assert _run(page, "keccak", "0x" + data.hex()) == "0x" + keccak256(data).hex(), size
    for _ in range(5):
        address = address_from_secret(secrets.token_bytes(32))
        assert _run(page, "checksum", address) == to_checksum_address(address)


def test_the_typed_data_digest_matches_the_service(service: Service, page: Page) -> None:
    page.goto(service.url + "/ui/approve")
    account = address_from_secret(secrets.token_bytes(32))
    key = address_from_secret(secrets.token_bytes(32))
    message = renewal_message(account, key, secrets.token_bytes(32), 2**64 + 7)
    document = typed_data_document("SessionRenewal", 8453, account, message)
    expected = renewal_digest(8453, account, message)
    assert _run(page, "digest", document) == "0x" + expected.hex()
    document["message"]["nonce"] = str(2**64 + 8)  # one changed field: another digest
    assert _run(page, "digest", document) != "0x" + expected.hex()


def test_recovery_finds_the_signer_and_refuses_what_the_service_refuses(
    service: Service, page: Page
) -> None:
    page.goto(service.url + "/ui/approve")
    secret = secrets.token_bytes(32)
    owner = to_checksum_address(address_from_secret(secret))
    for _ in range(4):
        digest = secrets.token_bytes(32)
        signature = sign_digest(secret, digest)
        assert _run(page, "recover", "0x" + digest.hex(), "0x" + signature.hex()) == owner
        zero_one = signature[:64] + bytes([signature[64] - 27])
        assert _run(page, "recover", "0x" + digest.hex(), "0x" + zero_one.hex()) == owner
    s = int.from_bytes(signature[32:64], "big")
    high_s = (
        signature[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    )
    assert _run(page, "recover", "0x" + digest.hex(), "0x" + high_s.hex()).startswith(
        "error: SIGNATURE_MALLEABLE"
    )
    assert _run(page, "recover", "0x" + digest.hex(), "0x" + signature[:64].hex()).startswith(
        "error: SIGNATURE_INVALID"
    )
    bad_v = signature[:64] + bytes([29])
    assert _run(page, "recover", "0x" + digest.hex(), "0x" + bad_v.hex()).startswith(
        "error: SIGNATURE_INVALID"
    )
    other = secrets.token_bytes(32)
    assert _run(page, "recover", "0x" + other.hex(), "0x" + signature.hex()) != owner
