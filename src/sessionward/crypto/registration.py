"""The wallet-registration challenge: what an account's owner signs to prove control before
``RegisterWallet`` gives anyone an owner credential for it (docs/protocol.md, "Wallet
registration").

An EIP-712 message in the account's own SessionWard domain
(``{name: "SessionWard", version: "1", chainId, verifyingContract: account}``, which binds the
chain and the account)::

    WalletRegistration(string service, address account, address owner, bytes32 credentialKey,
                       uint256 nonce, uint48 deadline)

- ``service``: the SessionWard deployment's identifier (its ``service_id`` setting), so a proof
  given to one service is worthless at another;
- ``credentialKey``: ``keccak256`` of the owner credential's public key as registered (the
  20-byte address for secp256k1, the 65-byte uncompressed key for P-256), so a proof seen in
  transit cannot register someone else's key;
- ``nonce`` (below ``2**63``) and ``deadline`` (unix seconds): single use, short lived; the
  service remembers each ``(account, nonce)`` until the deadline and bounds how far ahead the
  deadline may be.

The owner signs the digest as it signs anything else: an EOA with its key (``r ‖ s ‖ v``,
the account itself for an EIP-7702 EOA), a contract owner through its ``isValidSignature``.
"""

from __future__ import annotations

from typing import Final

from sessionward.crypto.eip712 import TypedDataSchema, typed_data_digest
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.typed_data import domain_separator_for

__all__ = ["REGISTRATION_SCHEMA", "credential_key_hash", "registration_digest"]

REGISTRATION_SCHEMA: Final = TypedDataSchema(
    {
        "WalletRegistration": [
            ("string", "service"),
            ("address", "account"),
            ("address", "owner"),
            ("bytes32", "credentialKey"),
            ("uint256", "nonce"),
            ("uint48", "deadline"),
        ]
    }
)

MAX_NONCE: Final = 2**63 - 1


def credential_key_hash(public_key: str) -> bytes:
    """``keccak256`` of the credential's public key bytes (``0x`` hex: an address or a P-256
    key), as the service normalised it."""
    return keccak256(bytes.fromhex(public_key.removeprefix("0x")))


def registration_digest(
    *,
    service: str,
    chain_id: int,
    account: str,
    owner: str,
    public_key: str,
    nonce: int,
    deadline: int,
) -> bytes:
    """The 32-byte digest the owner signs. Raises ``ValueError`` for a malformed field."""
    if not 0 <= nonce <= MAX_NONCE:
        raise ValueError("a registration nonce is in [0, 2**63 - 1]")
    message = {
        "service": service,
        "account": account,
        "owner": owner,
        "credentialKey": credential_key_hash(public_key),
        "nonce": nonce,
        "deadline": deadline,
    }
    return typed_data_digest(
        domain_separator_for(chain_id, account),
        REGISTRATION_SCHEMA.hash_struct("WalletRegistration", message),
    )
