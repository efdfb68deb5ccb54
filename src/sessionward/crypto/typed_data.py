"""SessionWard's EIP-712 types and digests (docs/protocol.md sections 1 and 2, normative).

Message dicts use the struct field names of the protocol verbatim (camelCase). A grant is::

    {
        "account": "0x…", "sessionKey": "0x…", "credential": <32 bytes>, "nonce": 0,
        "epoch": 0, "revoker": "0x…",
        "envelope": {
            "chainId": 1, "validAfter": …, "expiresAt": …, "capabilities": ["erc20.transfer"],
            "permissions": [{"target": "0x…", "selector": <4 bytes>,
                             "function": "transfer(address,uint256)", "actionClass": "…",
                             "maxValuePerCall": 0,
                             "rules": [{"arg": "to", "op": 0, "offset": 0,
                                        "values": [<32 bytes>, …]}]}],
            "allowedDestinations": ["0x…"], "valueLimit": 0, "valuePeriod": 0,
            "tokenLimits": [{"token": "0x…", "limit": …, "period": …}],
            "maxValueUsd": "", "maxUses": 0, "rateCount": 0, "rateInterval": 0, "maxFeeWei": 0,
        },
    }

Value conventions are those of :mod:`sessionward.crypto.eip712`. The functions here only hash:
whether the grant's ``account`` equals the domain's account, or the envelope's ``chainId`` the
domain's chain, is checked by whoever builds the grant (and again by the contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from sessionward.crypto.eip712 import (
    TypedDataSchema,
    domain_separator,
    domain_type_fields,
    typed_data_digest,
)
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import to_checksum_address

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "SCHEMA",
    "credential_hash",
    "domain_separator_for",
    "execution_hash",
    "grant_digest",
    "renewal_digest",
    "renewal_message",
    "revocation_digest",
    "session_call_digest",
    "typed_data_document",
]

DOMAIN_NAME: Final = "SessionWard"
DOMAIN_VERSION: Final = "1"

SCHEMA: Final = TypedDataSchema(
    {
        "SessionGrant": [
            ("address", "account"),
            ("address", "sessionKey"),
            ("bytes32", "credential"),
            ("uint256", "nonce"),
            ("uint256", "epoch"),
            ("address", "revoker"),
            ("Envelope", "envelope"),
        ],
        "Envelope": [
            ("uint256", "chainId"),
            ("uint48", "validAfter"),
            ("uint48", "expiresAt"),
            ("string[]", "capabilities"),
            ("Permission[]", "permissions"),
            ("address[]", "allowedDestinations"),
            ("uint256", "valueLimit"),
            ("uint48", "valuePeriod"),
            ("TokenLimit[]", "tokenLimits"),
            ("string", "maxValueUsd"),
            ("uint32", "maxUses"),
            ("uint32", "rateCount"),
            ("uint32", "rateInterval"),
            ("uint256", "maxFeeWei"),
        ],
        "Permission": [
            ("address", "target"),
            ("bytes4", "selector"),
            ("string", "function"),
            ("string", "actionClass"),
            ("uint256", "maxValuePerCall"),
            ("Rule[]", "rules"),
        ],
        "Rule": [
            ("string", "arg"),
            ("uint8", "op"),
            ("uint16", "offset"),
            ("bytes32[]", "values"),
        ],
        "TokenLimit": [
            ("address", "token"),
            ("uint256", "limit"),
            ("uint48", "period"),
        ],
        "SessionCall": [
            ("address", "account"),
            ("address", "sessionKey"),
            ("bytes32", "executionHash"),
            ("uint256", "nonce"),
            ("uint48", "deadline"),
        ],
        "Revocation": [
            ("address", "account"),
            ("address", "sessionKey"),
            ("uint256", "epoch"),
            ("uint256", "nonce"),
        ],
        # Off-chain only: the owner's fresh consent to re-activate a suspended session. Its
        # nonce is opened by the suspension and closed by the renewal, so neither the grant
        # signature (public once installed) nor an earlier renewal can renew again.
        "SessionRenewal": [
            ("address", "account"),
            ("address", "sessionKey"),
            ("bytes32", "grantDigest"),
            ("uint256", "nonce"),
        ],
    }
)


@lru_cache(maxsize=1024)
def domain_separator_for(chain_id: int, account: str) -> bytes:
    """Domain separator of ``account`` on ``chain_id`` (cached: it is the same for every
    message of an account). Raises ``ValueError`` for a malformed chain id or address."""
    return domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, account)


def _digest(chain_id: int, account: str, primary_type: str, message: Mapping[str, Any]) -> bytes:
    return typed_data_digest(
        domain_separator_for(chain_id, account), SCHEMA.hash_struct(primary_type, message)
    )


ACCOUNT_MESSAGE_TYPEHASH: Final = keccak256(b"AccountMessage(bytes32 hash)")


def account_message_digest(chain_id: int, account: str, digest: bytes) -> bytes:
    """EIP-712 digest of SessionWard's ``AccountMessage(bytes32 hash)`` in ``account``'s
    domain: what the owner signs for the account's ERC-1271 to accept ``digest``
    (SessionAccount accepts it beside ERC-7739; SessionAccount7579 accepts only it, so a bare
    signature made for another account at the same address never counts)."""
    if len(digest) != 32:
        raise ValueError("an AccountMessage wraps a 32-byte hash")
    return typed_data_digest(
        domain_separator_for(chain_id, account), keccak256(ACCOUNT_MESSAGE_TYPEHASH + digest)
    )


def grant_digest(chain_id: int, account: str, grant: Mapping[str, Any]) -> bytes:
    """EIP-712 digest of a ``SessionGrant`` message, the one the owner signs."""
    return _digest(chain_id, account, "SessionGrant", grant)


def session_call_digest(
    chain_id: int,
    account: str,
    session_key: str,
    execution_hash: bytes,
    nonce: int,
    deadline: int,
) -> bytes:
    """EIP-712 digest of a ``SessionCall``, the one the session key signs."""
    return _digest(
        chain_id,
        account,
        "SessionCall",
        {
            "account": account,
            "sessionKey": session_key,
            "executionHash": execution_hash,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def revocation_digest(
    chain_id: int, account: str, session_key: str, epoch: int, nonce: int
) -> bytes:
    """EIP-712 digest of an owner's ``Revocation`` (``session_key`` zero = revoke all)."""
    return _digest(
        chain_id,
        account,
        "Revocation",
        {"account": account, "sessionKey": session_key, "epoch": epoch, "nonce": nonce},
    )


def renewal_message(
    account: str, session_key: str, grant_digest: bytes, nonce: int
) -> dict[str, Any]:
    """The ``SessionRenewal`` message of a suspended session (``grant_digest``: the digest of
    the grant the owner signed; ``nonce``: the renewal nonce its suspension opened)."""
    return {
        "account": account,
        "sessionKey": session_key,
        "grantDigest": grant_digest,
        "nonce": nonce,
    }


def renewal_digest(chain_id: int, account: str, message: Mapping[str, Any]) -> bytes:
    """EIP-712 digest of a ``SessionRenewal`` (see :func:`renewal_message`), the one the owner
    signs to re-activate a suspended session."""
    return _digest(chain_id, account, "SessionRenewal", message)


def execution_hash(mode: bytes, execution_calldata: bytes) -> bytes:
    """``keccak256(mode ‖ executionCalldata)``; ``mode`` is the 32-byte ERC-7579 mode."""
    if not isinstance(mode, bytes) or len(mode) != 32:
        raise ValueError("an ERC-7579 execution mode is 32 bytes")
    return keccak256(mode + bytes(execution_calldata))


def credential_hash(credential_id: str) -> bytes:
    """``keccak256(utf8(credentialId))``, the ``SessionGrant.credential`` field."""
    return keccak256(credential_id.encode("utf-8"))


def typed_data_document(
    primary_type: str, chain_id: int, account: str, message: Mapping[str, Any]
) -> dict[str, Any]:
    """The full ``eth_signTypedData_v4`` document a wallet (or eth_account) signs.

    ``types`` holds ``EIP712Domain``, ``primary_type`` and the structs it references; the
    message is rendered with checksummed addresses, ``0x`` hex bytes and decimal-string
    integers. Signing its digest is signing :func:`grant_digest` (or the matching digest).
    """
    types: dict[str, Any] = {"EIP712Domain": domain_type_fields()}
    types.update(SCHEMA.types_document(primary_type))
    domain_separator_for(chain_id, account)  # validates chain id and account
    return {
        "types": types,
        "primaryType": primary_type,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": int(chain_id),
            "verifyingContract": to_checksum_address(account),
        },
        "message": SCHEMA.message_document(primary_type, message),
    }
