"""Request bodies of every API method: camelCase JSON, strict types, unknown fields refused.

These models check *shape* only (types, formats, bounds that keep values storable); every
decision about the values (roles, bindings, windows, policy) is the service's. Conventions:

- identifiers are 1-128 characters of ``A-Z a-z 0-9 . _ ~ : -`` (the credential-id grammar of
  the request signature), so no control character ever reaches the store;
- addresses are ``0x`` + 40 hex digits, all lower case, all upper case or a valid EIP-55
  checksum (the one rule of :mod:`sessionward.crypto.address`);
- amounts are decimal strings in ``[0, 2**256)``; bytes are ``0x`` hex;
- timestamps are JSON integers (unix seconds), counts are JSON integers.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from sessionward.crypto.secp256k1 import normalize_address
from sessionward.service.pages import MAX_PAGE

UINT256_MAX: Final = 2**256 - 1
MAX_TIMESTAMP: Final = 2**48 - 1
MAX_CHAIN_ID: Final = 2**63 - 1
DEFAULT_PAGE: Final = 50


def _address(value: str) -> str:
    try:
        return normalize_address(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _amount(value: str) -> str:
    if int(value) > UINT256_MAX:
        raise ValueError("amount above 2**256 - 1")
    return value


Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~:-]{1,128}$")]
Address = Annotated[
    str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$"), AfterValidator(_address)
]
Hex = Annotated[str, StringConstraints(pattern=r"^0x(?:[0-9a-fA-F]{2})*$")]
Bytes32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Amount = Annotated[
    str, StringConstraints(pattern=r"^(?:0|[1-9][0-9]{0,77})$"), AfterValidator(_amount)
]
PublicKey = Annotated[str, StringConstraints(pattern=r"^(?:0x)?[0-9a-fA-F]{40,130}$")]
Alg = Literal["ecdsa-p256k-eip191", "ecdsa-p256-sha256"]  # ALG_SECP256K1, ALG_P256
Timestamp = Annotated[int, Field(ge=0, le=MAX_TIMESTAMP)]
ChainId = Annotated[int, Field(ge=0, le=MAX_CHAIN_ID)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]
Cursor = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_=-]{1,256}$")]
OwnerKind = Literal["eoa", "erc1271"]
AccountKind = Literal["session_account", "erc7579"]
NetworkName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Network = Annotated[
    NetworkName | ChainId,
    Field(
        description="The network: its configured name, or its chain id (a JSON integer or a "
        "string of decimal digits). Unknown: 404 NETWORK_UNKNOWN; another than the wallet's: "
        "403 CHAIN_MISMATCH. Nothing is written either way."
    ),
]
Scope = Literal["session", "wallet", "credential", "action_class", "global"]


_AMOUNT_RULE: Final = (
    "amounts and uint values are decimal strings; a JSON integer is accepted only up to "
    "2**53 - 1 in absolute value and refused above (400 INPUT_MALFORMED)"
)
_ARGS_RULE: Final = f"The method's arguments as JSON: bytes as 0x hex; {_AMOUNT_RULE}."
_ENVELOPE_RULE: Final = f"The capability envelope (docs/protocol.md); {_AMOUNT_RULE}."

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters
AppName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
AppUrl = Annotated[str, StringConstraints(max_length=512, pattern=_PRINTABLE)]
Reason = Annotated[str, StringConstraints(max_length=1000, pattern=_PRINTABLE)]
MethodSignature = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=_PRINTABLE)
]


class Body(BaseModel):
    """Base of request bodies: camelCase, strict, closed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)


# --- credentials ---------------------------------------------------------------------------


class RegisterCredentialRequest(Body):
    """Signed with ``cred="self"`` by the key in the body: a backend registers itself
    (``appName`` and ``expiresAt`` required). Signed by an owner credential: registers the
    body's key as another owner key (device) of that owner's wallet."""

    alg: Alg
    public_key: PublicKey
    app_name: AppName | None = None
    app_url: AppUrl | None = None
    expires_at: Timestamp | None = None


class InspectCredentialRequest(Body):
    credential_id: Id


class RevokeCredentialRequest(Body):
    credential_id: Id
    reason: Reason | None = None


# --- owner devices (sessionward.service.devices) -------------------------------------------

DeviceLabel = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
PairingCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 -]{8,64}$")]


class CreatePairingCodeRequest(Body):
    """By the wallet's owner credential: a one-time code; ``deviceTtlSeconds`` shortens the
    paired device's lifetime (never beyond the configured ``device_ttl_s``)."""

    wallet_id: Id
    device_ttl_seconds: Annotated[int, Field(ge=1, le=MAX_TIMESTAMP)] | None = None


class PairDeviceRequest(Body):
    """Signed ``cred="self"`` by the new device key (``alg``/``publicKey``) with the owner's
    one-time ``pairingCode`` in the body (never in a URL)."""

    alg: Alg
    public_key: PublicKey
    pairing_code: PairingCode
    label: DeviceLabel | None = None


class ListDevicesRequest(Body):
    wallet_id: Id
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class RevokeDeviceRequest(Body):
    wallet_id: Id
    credential_id: Id
    reason: Reason | None = None


# --- wallets -------------------------------------------------------------------------------


Nonce = Annotated[str, StringConstraints(pattern=r"^(?:0|[1-9][0-9]{0,18})$")]


class RegistrationProofBody(Body):
    """The owner's signature over ``GetRegistrationChallenge``'s digest (docs/protocol.md,
    "Wallet registration"): the challenge's ``nonce`` (decimal string) and ``deadline``."""

    nonce: Nonce
    deadline: Timestamp
    signature: Hex


class CreateWalletRequest(Body):
    """Self-signed by the owner key (``publicKey`` is the owner address for secp256k1)."""

    alg: Alg
    public_key: PublicKey
    owner: Address | None = None
    owner_kind: OwnerKind = "eoa"
    salt: Bytes32 | None = None
    registration: RegistrationProofBody | None = None
    """Required for an ``erc1271`` owner (with ``salt``): see GetRegistrationChallenge."""
    network: Network | None = None
    """The network the wallet is made on (default: the service's first network)."""


class GetRegistrationChallengeRequest(Body):
    """Self-signed by the key that will become the owner credential. ``account`` for
    RegisterWallet, or ``salt`` for CreateWallet (the account the factory will make)."""

    alg: Alg
    public_key: PublicKey
    account: Address | None = None
    salt: Bytes32 | None = None
    owner: Address | None = None
    owner_kind: OwnerKind = "eoa"
    network: Network | None = None
    account_kind: AccountKind = "session_account"
    """``erc7579``: any ERC-7579 account with the network's SessionWard module installed; the
    account is its own owner (ERC-1271), so ``owner`` is the account or absent."""


class RegisterWalletRequest(Body):
    alg: Alg
    public_key: PublicKey
    account: Address
    registration: RegistrationProofBody
    owner: Address | None = None
    owner_kind: OwnerKind = "eoa"
    network: Network | None = None
    account_kind: AccountKind = "session_account"
    """``session_account`` (its ``owner()`` on chain is the owner) or ``erc7579`` (any ERC-7579
    account with the network's SessionWard module installed as validator and executor, proven
    by its own ERC-1271 answer to the challenge)."""


# --- sessions ------------------------------------------------------------------------------


class AuthorizeRemoteAccessRequest(Body):
    credential_id: Id
    wallet_id: Id
    envelope: Annotated[dict[str, Any], Field(description=_ENVELOPE_RULE)]
    network: Network | None = None


class ApproveSessionRequest(Body):
    session_id: Id
    signature: Hex


class ListAccessRequest(Body):
    wallet_id: Id
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class RevokeAccessRequest(Body):
    wallet_id: Id
    credential_id: Id
    session_id: Id | None = None


class GetSessionRequest(Body):
    session_id: Id


class ListSessionsRequest(Body):
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class GetSessionUsageRequest(Body):
    session_id: Id
    network: Network | None = None


class ImportPermissionRequestRequest(Body):
    """An ERC-7715 ``wallet_grantPermissions`` request (its ``params``: a list of
    ``PermissionRequest`` objects, or one) for the backend ``credentialId`` on the wallet."""

    credential_id: Id
    wallet_id: Id
    request: Annotated[
        list[dict[str, Any]] | dict[str, Any],
        Field(description="the wallet_grantPermissions params (docs/protocol.md section 11)"),
    ]


class ExportPermissionRequest(Body):
    session_id: Id


# --- transactions --------------------------------------------------------------------------


class PrepareEthereumTransactionRequest(Body):
    wallet_id: Id
    session_id: Id
    to: Address
    value: Amount
    data: Hex
    chain_id: ChainId | None = None
    network: Network | None = None


class PrepareEthereumContractCallRequest(Body):
    """``method`` is a human-readable signature (``transfer(address to,uint256 amount)``);
    ``args`` are its arguments as JSON (integers as decimal strings, bytes as 0x hex)."""

    wallet_id: Id
    session_id: Id
    contract: Address
    method: MethodSignature
    args: Annotated[list[Any], Field(description=_ARGS_RULE)]
    value: Amount = "0"
    chain_id: ChainId | None = None
    network: Network | None = None


class ExecuteRequest(Body):
    txn_id: Id
    submission: Literal["relayer", "userop"] = Field(
        "relayer",
        description="How the signed call reaches the chain: 'relayer' (the service's relayer "
        "sends it) or 'userop' (an ERC-4337 UserOperation through the network's bundler; "
        "sponsored by its paymaster when the session's grant gives the account no fee budget).",
    )


class TransactionStatusRequest(Body):
    txn_id: Id


# --- ops -----------------------------------------------------------------------------------


class EmergencyRevokeRequest(Body):
    """``target`` names the session, wallet, credential or action class; none for ``global``.
    ``reason`` is mandatory (its absence is refused as ``REASON_REQUIRED``)."""

    scope: Scope
    target: Id | None = None
    reason: Reason | None = None


class LiftFreezeRequest(Body):
    scope: Scope
    target: Id | None = None
