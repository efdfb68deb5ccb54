"""The wallet owner's client: create or register a wallet, authorize a backend, check and
sign the grant, approve, review and revoke sessions.

The owner's root key signs two different things, never confused: API requests (EIP-191 over
the request preimage, by :class:`Secp256k1RequestSigner`) and session grants (EIP-712, by
:meth:`OwnerClient.sign_grant`, only after :func:`sessionward.sdk.grants.verify_grant` has
recomputed the digest from the grant document).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from sessionward.crypto.registration import registration_digest
from sessionward.crypto.request_signature import RequestSigner, Secp256k1RequestSigner
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.crypto.typed_data import account_message_digest

from .base import SignedClient, page_body
from .grants import verify_grant
from .transport import hex_bytes


class OwnerClient(SignedClient):
    """``OwnerClient(base_url, owner_secret_or_signer, credential_id=None, ...)``.

    With a 32-byte secp256k1 secret the client signs requests *and* grants with it. With a
    :class:`RequestSigner` (e.g. a P-256 device key) it signs requests only; grants are then
    signed elsewhere (:meth:`grant_digest` gives the checked digest).
    """

    def __init__(
        self,
        base_url: str,
        owner_secret_or_signer: bytes | RequestSigner,
        credential_id: str | None = None,
        *,
        wallet_id: str | None = None,
        account: str | None = None,
        chain_id: int | None = None,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        account_messages: bool = False,
    ) -> None:
        """``account_messages``: the wallet's account judges the owner's signatures as
        SessionWard's ``AccountMessage(hash)`` (SessionAccount7579's ERC-1271): the
        registration challenge and grants are then signed wrapped so."""
        secret: bytes | None = None
        signer: RequestSigner
        if isinstance(owner_secret_or_signer, bytes | bytearray):
            secret = bytes(owner_secret_or_signer)
            signer = Secp256k1RequestSigner(secret)
        else:
            signer = owner_secret_or_signer
        super().__init__(base_url, signer, credential_id, http=http, timeout=timeout)
        self.__secret = secret
        self._account_messages = account_messages
        self.wallet_id = wallet_id
        self.account = account
        self.chain_id = chain_id
        """The wallet's chain (its network), from CreateWallet/RegisterWallet: grants for
        another chain are refused before signing."""
        self._authorized: dict[str, str] = {}  # sessionId -> the credential it was asked for

    def __repr__(self) -> str:
        return f"OwnerClient(credential_id={self.credential_id!r}, wallet_id={self.wallet_id!r})"

    # --- wallets --------------------------------------------------------------------------

    def create_wallet(
        self,
        salt: bytes | None = None,
        *,
        owner: str | None = None,
        owner_kind: str | None = None,
        sign_challenge: Callable[[bytes], bytes] | None = None,
        network: str | int | None = None,
    ) -> dict[str, Any]:
        """CreateWallet signed by the owner key itself, on ``network`` (its name or chain id;
        the service's default network when None); remembers ``walletId``, ``account``,
        ``chainId`` and ``ownerCredentialId`` (the credential this client signs as afterwards).

        For a contract owner (``owner_kind="erc1271"``) the owner proves control:
        ``sign_challenge(digest)`` signs the checked registration challenge of the account
        this ``salt`` (random if not given) makes."""
        body: dict[str, Any] = {}
        if owner_kind == "erc1271":
            if sign_challenge is None:
                raise ValueError("a contract owner signs the registration challenge")
            salt = salt if salt is not None else secrets.token_bytes(32)
            challenge = self._challenge({"salt": hex_bytes(salt)}, owner, owner_kind, None, network)
            body["registration"] = _proof(challenge, sign_challenge)
        if salt is not None:
            body["salt"] = hex_bytes(salt)
        if owner is not None:
            body["owner"] = owner
        if owner_kind is not None:
            body["ownerKind"] = owner_kind
        if network is not None:
            body["network"] = network
        return self._adopt(self._self_signed("CreateWallet", body))

    def registration_challenge(
        self,
        account: str,
        *,
        owner: str | None = None,
        owner_kind: str | None = None,
        network: str | int | None = None,
        account_kind: str | None = None,
    ) -> dict[str, Any]:
        """GetRegistrationChallenge for ``account`` on ``network``, its digest recomputed here
        and checked (:func:`check_registration_challenge`) before anyone is asked to sign it."""
        target: dict[str, Any] = {"account": account}
        if account_kind is not None:
            target["accountKind"] = account_kind
        return self._challenge(target, owner, owner_kind, account, network)

    def _challenge(
        self,
        target: dict[str, Any],
        owner: str | None,
        owner_kind: str | None,
        account: str | None,
        network: str | int | None = None,
    ) -> dict[str, Any]:
        body = {**target, **_wallet_body(None, owner, owner_kind)}
        if network is not None:
            body["network"] = network
        challenge = self._self_signed("GetRegistrationChallenge", body)
        check_registration_challenge(
            challenge,
            account=account or str(challenge["account"]),
            public_key=self.public_key,
            owner=owner,
        )
        return challenge

    def register_wallet(
        self,
        account: str,
        *,
        owner: str | None = None,
        owner_kind: str | None = None,
        sign_challenge: Callable[[bytes], bytes] | None = None,
        network: str | int | None = None,
        account_kind: str | None = None,
    ) -> dict[str, Any]:
        """RegisterWallet: an existing account on ``network``, with its owner's proof of
        control (a challenge of that network's chain).

        The owner signs the checked challenge digest: by default this client's secp256k1
        secret (an EOA owner, or the EIP-7702 EOA itself); for a contract owner (ERC-1271)
        ``sign_challenge(digest)`` returns the bytes its ``isValidSignature`` accepts.
        ``account_kind="erc7579"``: any ERC-7579 account with the network's SessionWard
        module installed; the account's ERC-1271 judges the signature (by default this
        client's secret, for an account whose signer is this key)."""
        challenge = self.registration_challenge(
            account,
            owner=owner,
            owner_kind=owner_kind,
            network=network,
            account_kind=account_kind,
        )
        body = _wallet_body(account, owner, owner_kind)
        sign = sign_challenge or self._sign_with_secret
        if sign_challenge is None and self._account_messages:
            chain_id = int(challenge["chainId"])

            def sign(digest: bytes) -> bytes:
                return self._sign_with_secret(account_message_digest(chain_id, account, digest))

        body["registration"] = _proof(challenge, sign)
        if network is not None:
            body["network"] = network
        if account_kind is not None:
            body["accountKind"] = account_kind
        return self._adopt(self._self_signed("RegisterWallet", body))

    def _sign_with_secret(self, digest: bytes) -> bytes:
        if self.__secret is None:
            raise ValueError("no secp256k1 owner secret: pass sign_challenge")
        return sign_digest(self.__secret, digest)

    def _adopt(self, wallet: dict[str, Any]) -> dict[str, Any]:
        self.wallet_id = wallet["walletId"]
        self.account = wallet["account"]
        self.chain_id = wallet.get("chainId")
        self.credential_id = wallet["ownerCredentialId"]
        return wallet

    def register_device(
        self, alg: str, public_key: str, expires_at: int | None = None
    ) -> dict[str, Any]:
        """RegisterCredential signed by the wallet's owner credential: the owner signs a device
        key directly. The device expires (``expires_at``, else the service's default device
        lifetime), is listed and revocable, and cannot register devices itself."""
        body: dict[str, Any] = {"alg": alg, "publicKey": public_key}
        if expires_at is not None:
            body["expiresAt"] = expires_at
        return self._call("RegisterCredential", body)

    def create_pairing_code(
        self, wallet_id: str | None = None, *, device_ttl_seconds: int | None = None
    ) -> dict[str, Any]:
        """CreatePairingCode: ``{pairingCode, walletId, expiresAt, deviceExpiresIn}``. Give the
        code to the device (typed or pasted into the review page, never in a link): it pairs
        one device, once, before ``expiresAt``."""
        body: dict[str, Any] = {"walletId": self._wallet(wallet_id)}
        if device_ttl_seconds is not None:
            body["deviceTtlSeconds"] = device_ttl_seconds
        return self._call("CreatePairingCode", body)

    def pair_device(self, pairing_code: str, label: str | None = None) -> dict[str, Any]:
        """PairDevice from a device client (a P-256 signer): signed ``cred="self"`` by the
        device key with the owner's one-time code; adopts the device's credential and wallet."""
        body: dict[str, Any] = {"pairingCode": pairing_code}
        if label is not None:
            body["label"] = label
        device = self._self_signed("PairDevice", body)
        self.credential_id = device["credentialId"]
        self.wallet_id = device["walletId"]
        return device

    def list_devices(
        self, wallet_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """One page ``{items, nextCursor}`` of the wallet's devices."""
        return self._read("ListDevices", page_body(cursor, limit, walletId=self._wallet(wallet_id)))

    def revoke_device(
        self, credential_id: str, wallet_id: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """RevokeDevice: the device's requests are refused from the answer on."""
        body: dict[str, Any] = {"walletId": self._wallet(wallet_id), "credentialId": credential_id}
        if reason is not None:
            body["reason"] = reason
        return self._call("RevokeDevice", body)

    def _wallet(self, wallet_id: str | None) -> str:
        wallet = wallet_id if wallet_id is not None else self.wallet_id
        if wallet is None:
            raise ValueError("no wallet: create or register one, or pass wallet_id")
        return wallet

    # --- consent --------------------------------------------------------------------------

    def inspect_credential(self, credential_id: str) -> dict[str, Any]:
        """The backend's public metadata (appName, appUrl, expiresAt...), unsigned."""
        return self._public("InspectCredential", {"credentialId": credential_id})

    def authorize_remote_access(
        self,
        credential_id: str,
        wallet_id: str | None,
        envelope: Mapping[str, Any],
        *,
        network: str | int | None = None,
    ) -> dict[str, Any]:
        """AuthorizeRemoteAccess: ``{sessionId, status: "pending", sessionKey, summary, grant,
        grantDigest, expiresAt}``. ``wallet_id`` None means this client's wallet; ``network``,
        when given, must be the wallet's (else 403 ``CHAIN_MISMATCH``)."""
        wallet = wallet_id if wallet_id is not None else self.wallet_id
        if wallet is None:
            raise ValueError("no wallet: create or register one, or pass wallet_id")
        body: dict[str, Any] = {
            "credentialId": credential_id,
            "walletId": wallet,
            "envelope": dict(envelope),
        }
        if network is not None:
            body["network"] = network
        pending = self._call("AuthorizeRemoteAccess", body)
        self._authorized[pending["sessionId"]] = credential_id
        return pending

    def grant_digest(self, pending: Mapping[str, Any]) -> bytes:
        """The grant's digest, recomputed from its document and checked against this client's
        account and the credential it authorized (:func:`verify_grant`)."""
        return verify_grant(
            pending,
            account=self.account,
            credential_id=self._authorized.get(str(pending.get("sessionId"))),
            chain_id=self.chain_id,
        )

    def sign_grant(self, pending: Mapping[str, Any]) -> bytes:
        """The owner's 65-byte signature of the checked grant digest (raises
        :class:`GrantVerificationError` rather than sign anything unexpected)."""
        if self.__secret is None:
            raise ValueError("this client has no secp256k1 owner secret to sign grants with")
        digest = self.grant_digest(pending)
        if self._account_messages:
            if self.chain_id is None or self.account is None:
                raise ValueError("an AccountMessage names the wallet: register it first")
            digest = account_message_digest(self.chain_id, self.account, digest)
        return sign_digest(self.__secret, digest)

    def approve_session(self, session_id: str, signature: bytes | str) -> dict[str, Any]:
        return self._call(
            "ApproveSession", {"sessionId": session_id, "signature": hex_bytes(signature)}
        )

    # --- review and revoke ----------------------------------------------------------------

    def list_access(
        self, wallet_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """One page ``{items, nextCursor}`` of the wallet's sessions."""
        wallet = wallet_id if wallet_id is not None else self.wallet_id
        return self._read("ListAccess", page_body(cursor, limit, walletId=wallet))

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self._read("GetSession", {"sessionId": session_id})

    def get_session_usage(
        self, session_id: str, *, network: str | int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"sessionId": session_id}
        if network is not None:
            body["network"] = network
        return self._read("GetSessionUsage", body)

    def transaction_status(self, txn_id: str) -> dict[str, Any]:
        return self._read("TransactionStatus", {"txnId": txn_id})

    def revoke_access(
        self, wallet_id: str | None, credential_id: str, session_id: str | None = None
    ) -> dict[str, Any]:
        """Revoke one session, or every session of ``credential_id`` on the wallet."""
        wallet = wallet_id if wallet_id is not None else self.wallet_id
        body: dict[str, Any] = {"walletId": wallet, "credentialId": credential_id}
        if session_id is not None:
            body["sessionId"] = session_id
        return self._call("RevokeAccess", body)


def _proof(challenge: Mapping[str, Any], sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """The ``registration`` field: the challenge's nonce and deadline, and the signature."""
    signature = sign(bytes.fromhex(str(challenge["digest"])[2:]))
    return {
        "nonce": challenge["nonce"],
        "deadline": challenge["deadline"],
        "signature": hex_bytes(signature),
    }


def _wallet_body(account: str | None, owner: str | None, owner_kind: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {} if account is None else {"account": account}
    if owner is not None:
        body["owner"] = owner
    if owner_kind is not None:
        body["ownerKind"] = owner_kind
    return body


def check_registration_challenge(
    challenge: Mapping[str, Any], *, account: str, public_key: str, owner: str | None
) -> bytes:
    """The challenge's digest, recomputed from its fields for ``account`` and this client's
    ``public_key`` (and ``owner`` when given); raises ``ValueError`` if the service's digest
    differs or the challenge names another account or owner: never sign what was not asked."""
    if str(challenge.get("account", "")).lower() != account.lower():
        raise ValueError("the registration challenge names another account")
    if owner is not None and str(challenge.get("owner", "")).lower() != owner.lower():
        raise ValueError("the registration challenge names another owner")
    digest = registration_digest(
        service=str(challenge["serviceId"]),
        chain_id=int(challenge["chainId"]),
        account=account,
        owner=str(challenge["owner"]),
        public_key=public_key,
        nonce=int(challenge["nonce"]),
        deadline=int(challenge["deadline"]),
    )
    if "0x" + digest.hex() != str(challenge.get("digest", "")).lower():
        raise ValueError("the registration challenge's digest does not match its fields")
    return digest
