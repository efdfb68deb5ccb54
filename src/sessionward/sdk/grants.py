"""Checking a session grant before the owner signs it: never sign a digest not recomputed.

The service returns, for AuthorizeRemoteAccess, the grant's ``eth_signTypedData_v4`` document
and its ``grantDigest``. :func:`verify_grant` recomputes the EIP-712 digest of the *document*
with SessionWard's own hasher (:mod:`sessionward.crypto.eip712`, independent of eth-account),
checks that the document uses exactly the protocol's types and domain, that it binds the
expected account, chain, session key and credential, and only then returns the digest to sign.
A service that shows the owner one grant and asks for a signature over another is caught here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from sessionward.crypto.abi_json import AbiJsonError, value_from_json
from sessionward.crypto.eip712 import (
    TypedDataError,
    domain_separator,
    domain_type_fields,
    typed_data_digest,
)
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.crypto.solidity_types import UINT256, StructType
from sessionward.crypto.typed_data import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    SCHEMA,
    credential_hash,
)

from .errors import GrantVerificationError

PRIMARY_TYPE: Final = "SessionGrant"


def _expected_types() -> dict[str, Any]:
    return {"EIP712Domain": domain_type_fields(), **SCHEMA.types_document(PRIMARY_TYPE)}


def _integer(value: object, path: str) -> int:
    """A JSON integer field: a decimal string (as wallets render them) or an integer."""
    try:
        return cast(int, value_from_json(UINT256, value, path))
    except AbiJsonError as exc:
        raise GrantVerificationError(str(exc)) from None


def grant_document_digest(document: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest of a SessionGrant typed-data document, computed locally.

    Refuses (:class:`GrantVerificationError`) a document whose primary type, types or domain
    are not exactly the protocol's (docs/protocol.md sections 1-2).
    """
    if document.get("primaryType") != PRIMARY_TYPE:
        raise GrantVerificationError("the document is not a SessionGrant")
    if document.get("types") != _expected_types():
        raise GrantVerificationError("the document's types are not the protocol's")
    domain = document.get("domain")
    if not isinstance(domain, Mapping) or set(domain) != {f["name"] for f in domain_type_fields()}:
        raise GrantVerificationError("the document's domain is not the protocol's")
    if domain["name"] != DOMAIN_NAME or domain["version"] != DOMAIN_VERSION:
        raise GrantVerificationError("the domain is not SessionWard version 1")
    try:
        message = value_from_json(
            StructType(PRIMARY_TYPE),
            document.get("message"),
            "message",
            structs=SCHEMA.struct_fields,
        )
        assert isinstance(message, Mapping)
        separator = domain_separator(
            DOMAIN_NAME,
            DOMAIN_VERSION,
            _integer(domain["chainId"], "domain.chainId"),
            domain["verifyingContract"],
        )
        return typed_data_digest(separator, SCHEMA.hash_struct(PRIMARY_TYPE, message))
    except AbiJsonError as exc:
        raise GrantVerificationError(f"the grant is not a valid document: {exc}") from None
    except TypedDataError as exc:
        raise GrantVerificationError(f"the grant does not hash: {exc}") from None


def _same_address(a: object, b: object) -> bool:
    try:
        return (
            isinstance(a, str)
            and isinstance(b, str)
            and normalize_address(a) == normalize_address(b)
        )
    except ValueError:
        return False


def verify_grant(
    pending: Mapping[str, Any],
    *,
    account: str | None = None,
    credential_id: str | None = None,
    chain_id: int | None = None,
) -> bytes:
    """The digest to sign for an AuthorizeRemoteAccess answer, after checking it.

    Checks: the locally computed digest of ``pending["grant"]`` equals ``grantDigest``; the
    grant's account is the domain's verifying contract (and ``account`` when given); the
    envelope's chain is the domain's; the session key is the answer's ``sessionKey``; and the
    grant's credential is ``keccak256(credential_id)`` when ``credential_id`` is given; the
    domain's chain is ``chain_id`` (the wallet's network) when given, so an owner never signs
    a grant for another network than the wallet's.
    """
    document = pending.get("grant")
    if not isinstance(document, Mapping):
        raise GrantVerificationError("the answer carries no grant document")
    digest = grant_document_digest(document)
    claimed = pending.get("grantDigest")
    if not isinstance(claimed, str) or claimed.lower() != "0x" + digest.hex():
        raise GrantVerificationError("grantDigest is not the digest of the grant document")
    message = document["message"]
    domain = document["domain"]
    if not _same_address(message.get("account"), domain["verifyingContract"]):
        raise GrantVerificationError("the grant's account is not the domain's account")
    if account is not None and not _same_address(message.get("account"), account):
        raise GrantVerificationError("the grant is for another account")
    envelope = message.get("envelope")
    if not isinstance(envelope, Mapping) or _integer(
        envelope.get("chainId"), "chainId"
    ) != _integer(domain["chainId"], "domain.chainId"):
        raise GrantVerificationError("the envelope's chain is not the domain's chain")
    if chain_id is not None and _integer(domain["chainId"], "domain.chainId") != chain_id:
        raise GrantVerificationError("the grant is for another chain than the wallet's")
    session_key = pending.get("sessionKey")
    if session_key is not None and not _same_address(message.get("sessionKey"), session_key):
        raise GrantVerificationError("the grant names another session key")
    if credential_id is not None:
        expected = "0x" + credential_hash(credential_id).hex()
        if str(message.get("credential", "")).lower() != expected:
            raise GrantVerificationError("the grant is bound to another credential")
    return digest
