"""Wallets: a SessionAccount created through the CREATE2 factory, or an existing account (an
EIP-7702-delegated EOA included) registered after checking its owner on chain."""

from __future__ import annotations

import secrets
from typing import Literal, TypedDict

from sessionward.chain.errors import ChainError
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.domain.reasons import ReasonCode
from sessionward.store.errors import AlreadyExists
from sessionward.store.wallets import WalletRecord

from .callers import SelfSigned
from .credentials import Credentials
from .errors import ServiceError, conflict, invalid
from .ids import new_id
from .onchain import DEPLOY_GAS
from .runtime import Runtime

OwnerKind = Literal["eoa", "erc1271"]


class WalletView(TypedDict):
    walletId: str
    chainId: int
    account: str
    owner: str
    ownerKind: str
    ownerCredentialId: str | None
    createdAt: int
    frozen: bool


def wallet_view(record: WalletRecord, owner_credential_id: str | None = None) -> WalletView:
    return {
        "walletId": record.id,
        "chainId": record.chain_id,
        "account": record.account,
        "owner": record.owner,
        "ownerKind": record.owner_kind,
        "ownerCredentialId": owner_credential_id,
        "createdAt": record.created_at,
        "frozen": record.frozen_at is not None,
    }


class Wallets:
    """CreateWallet and RegisterWallet."""

    def __init__(self, rt: Runtime, credentials: Credentials) -> None:
        self._rt = rt
        self._credentials = credentials

    def create(
        self,
        signer: SelfSigned,
        *,
        owner: str | None = None,
        owner_kind: OwnerKind = "eoa",
        salt: bytes | None = None,
    ) -> WalletView:
        """A new SessionAccount for ``owner`` (default: the signing key's address).

        The account's address is the factory's CREATE2 address, so the wallet is usable at
        once; its deployment is queued on the relayer ahead of anything that uses it.
        """
        owner = self._owner(signer, owner, owner_kind)
        salt = salt if salt is not None else secrets.token_bytes(32)
        if len(salt) != 32:
            raise invalid(ReasonCode.INPUT_MALFORMED, "salt must be 32 bytes")
        factory = self._rt.deployment.factory
        try:
            account = self._rt.calls.decode_address(
                self._rt.chain.call(factory, self._rt.calls.get_address(owner, salt))
            )
        except ChainError as exc:
            raise ServiceError(
                "conflict", ReasonCode.INPUT_MALFORMED, f"chain unavailable: {exc}"
            ) from None
        record = self._add(account, owner, owner_kind)
        self._rt.relayer.enqueue(
            f"deploy:{record.id}",
            to=factory,
            data=self._rt.calls.create_account(owner, salt),
            gas_limit=DEPLOY_GAS,
        )
        return self._finish(record, signer, "wallet.created")

    def register(
        self,
        signer: SelfSigned,
        *,
        account: str,
        owner: str | None = None,
        owner_kind: OwnerKind = "eoa",
    ) -> WalletView:
        """An existing SessionAccount (or an EOA delegated to its code with EIP-7702, which is
        then its own owner). The account's ``owner()`` on chain must be ``owner``."""
        owner = self._owner(signer, owner, owner_kind)
        try:
            on_chain = self._rt.calls.decode_owner(
                self._rt.chain.call(account, self._rt.calls.owner())
            )
        except ChainError:
            raise invalid(
                ReasonCode.ACCOUNT_MISMATCH, "the account is not a SessionAccount on this chain"
            ) from None
        if on_chain != owner:
            raise ServiceError(
                "forbidden",
                ReasonCode.SIGNER_MISMATCH,
                "the account's on-chain owner is not the signer",
            )
        record = self._add(account, owner, owner_kind)
        return self._finish(record, signer, "wallet.registered")

    def _owner(self, signer: SelfSigned, owner: str | None, owner_kind: OwnerKind) -> str:
        if owner_kind == "eoa":
            if signer.alg != ALG_SECP256K1:
                raise invalid(
                    ReasonCode.INPUT_MALFORMED, "an EOA owner signs with ecdsa-p256k-eip191"
                )
            if owner is not None and owner.lower() != signer.public_key.lower():
                raise ServiceError(
                    "forbidden",
                    ReasonCode.SIGNER_MISMATCH,
                    "an EOA owner must sign its own wallet request",
                )
            return signer.public_key.lower()
        if owner is None:
            raise invalid(
                ReasonCode.INPUT_MALFORMED, "an erc1271 owner needs the owner contract address"
            )
        return owner.lower()

    def _add(self, account: str, owner: str, owner_kind: OwnerKind) -> WalletRecord:
        try:
            return self._rt.store.wallets.add(
                wallet_id=new_id("wal"),
                chain_id=self._rt.chain_id,
                account=account,
                owner=owner,
                owner_kind=owner_kind,
                now=self._rt.now(),
            )
        except AlreadyExists:
            raise conflict(
                ReasonCode.INPUT_MALFORMED, "this account is already registered"
            ) from None

    def _finish(self, record: WalletRecord, signer: SelfSigned, kind: str) -> WalletView:
        credential = self._credentials.add_owner(
            wallet_id=record.id, alg=signer.alg, public_key=signer.public_key
        )
        self._rt.store.audit.append(
            record.id,
            kind,
            {"account": record.account, "owner": record.owner, "credential": credential.id},
            at=self._rt.now(),
        )
        return wallet_view(record, credential.id)
