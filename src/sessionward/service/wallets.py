"""Wallets: a SessionAccount created through the CREATE2 factory, or an existing account (an
EIP-7702-delegated EOA included) registered after checking its owner on chain *and* the owner's
proof of control: its signature over a registration challenge bound to this service, the chain,
the account and the key that becomes the owner credential (issue 14.4).

An existing account is one of two kinds (``accountKind``):

- ``session_account``: a SessionAccount; its ``owner()`` on chain must be the owner;
- ``erc7579``: any ERC-7579 account with SessionWard's module (the network's
  ``session_module``) installed as validator *and* executor, as its own
  ``isModuleInstalled`` says. Such an account has no standard owner view, so the account is
  its own owner (``erc1271``): the proof of control is the account's ERC-1271 verdict on the
  registration challenge, exactly the check the module makes of every grant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, TypedDict

from sessionward.chain.erc1271 import ChainErc1271Checker
from sessionward.chain.errors import ChainError, ExecutionReverted
from sessionward.crypto.owner_signature import verify_owner_signature
from sessionward.crypto.registration import MAX_NONCE, registration_digest
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import SignatureError
from sessionward.domain.abi import CalldataMalformed
from sessionward.reasons import ReasonCode
from sessionward.store.errors import AlreadyExists
from sessionward.store.wallets import WalletRecord

from .callers import SelfSigned
from .credentials import Credentials
from .errors import ServiceError, conflict, invalid
from .ids import new_id
from .onchain import (
    DEPLOY_GAS,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR,
    decode_bool,
    is_module_installed_call,
)
from .runtime import Runtime

_DAY_S = 86_400
"""The window of the wallet-creation budget (``wallet_creation_per_owner_per_day``)."""

OwnerKind = Literal["eoa", "erc1271"]
AccountKind = Literal["session_account", "erc7579"]
ACCOUNT_KINDS: tuple[AccountKind, ...] = ("session_account", "erc7579")


@dataclass(frozen=True, slots=True)
class RegistrationProof:
    """The owner's answer to a registration challenge: its nonce, deadline (unix seconds) and
    signature (65 bytes for an EOA; whatever the owner contract accepts for ERC-1271)."""

    nonce: int
    deadline: int
    signature: bytes


class RegistrationChallengeView(TypedDict):
    serviceId: str
    chainId: int
    account: str
    owner: str
    nonce: str
    deadline: int
    digest: str


class WalletView(TypedDict):
    walletId: str
    chainId: int
    account: str
    owner: str
    ownerKind: str
    ownerCredentialId: str | None
    createdAt: int
    frozen: bool
    accountKind: AccountKind
    sessionModule: str | None


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
        "accountKind": "session_account" if record.session_module is None else "erc7579",
        "sessionModule": record.session_module,
    }


class Wallets:
    """CreateWallet and RegisterWallet."""

    def __init__(self, rt: Runtime, credentials: Credentials) -> None:
        self._rt = rt
        self._credentials = credentials
        self._networks: dict[int, Wallets] = {}

    def _on(self, network: str | int | None) -> Wallets:
        """These use cases on the network a request chose (its name or chain id; the default
        network when none): the wallet is that network's, its account deployed, read and
        proven there. ``NETWORK_UNKNOWN`` (404) for a network the service does not serve."""
        rt = self._rt.select(network)
        if rt.chain_id == self._rt.chain_id:
            return self
        other = self._networks.get(rt.chain_id)
        if other is None:
            other = self._networks[rt.chain_id] = Wallets(rt, self._credentials)
        return other

    def create(
        self,
        signer: SelfSigned,
        *,
        owner: str | None = None,
        owner_kind: OwnerKind = "eoa",
        salt: bytes | None = None,
        proof: RegistrationProof | None = None,
        network: str | int | None = None,
    ) -> WalletView:
        """A new SessionAccount for ``owner`` (default: the signing key's address), on
        ``network`` (name or chain id; default: the first configured network).

        The account's address is the factory's CREATE2 address, so the wallet is usable at
        once; its deployment is queued on the relayer ahead of anything that uses it. An EOA
        owner proves control by signing the request itself; a contract owner (``erc1271``)
        by ``proof``, its signature over the registration challenge for the account of this
        ``salt`` (``GetRegistrationChallenge`` with the salt): without it nobody gets an owner
        credential over someone else's contract (``REGISTRATION_PROOF_INVALID``).
        """
        if network is not None and (here := self._on(network)) is not self:
            return here.create(signer, owner=owner, owner_kind=owner_kind, salt=salt, proof=proof)
        owner = self._owner(signer, owner, owner_kind)
        if owner_kind == "erc1271" and (proof is None or salt is None):
            raise ServiceError(
                "forbidden",
                ReasonCode.REGISTRATION_PROOF_INVALID,
                "a contract owner proves control: give the salt and the owner's signature over "
                "GetRegistrationChallenge for it",
            )
        salt = salt if salt is not None else secrets.token_bytes(32)
        if len(salt) != 32:
            raise invalid(ReasonCode.INPUT_MALFORMED, "salt must be 32 bytes")
        self._within_creation_budget(owner)  # before anything reaches the chain
        factory = self._rt.deployment.factory
        account = self._predicted(owner, salt)
        if proof is not None:
            self._check_proof(signer, account, owner, owner_kind, proof)
        with self._rt.store.db.unit():  # the count and the new row in one write transaction
            self._within_creation_budget(owner)
            record = self._add(account, owner, owner_kind)
        self._rt.relayer.enqueue(
            f"deploy:{record.id}",
            to=factory,
            data=self._rt.calls.create_account(owner, salt),
            gas_limit=DEPLOY_GAS,
        )
        return self._finish(record, signer, "wallet.created")

    def _within_creation_budget(self, owner: str) -> None:
        """Refuse (429 ``WALLET_CREATION_BUDGET_EXHAUSTED``, ``Retry-After``: when the oldest of
        them leaves the window) once ``owner`` has ``wallet_creation_per_owner_per_day`` wallets
        recorded in the last 24 hours: the relayer pays every deployment, so one owner key cannot
        make it pay without bound. Nothing is recorded or sent by a refusal. Run in a unit of
        work with the insert, the count is exact on SQLite (one writer); on PostgreSQL two
        simultaneous creations of one owner may both pass at the last slot."""
        budget = self._rt.settings.wallet_creation_per_owner_per_day
        if budget <= 0:
            return
        now = self._rt.now()
        count, oldest = self._rt.store.wallets.created_since(owner, since=now - _DAY_S + 1)
        if count < budget:
            return
        retry_after = max(1, (oldest if oldest is not None else now) + _DAY_S - now)
        raise ServiceError(
            "exhausted",
            ReasonCode.WALLET_CREATION_BUDGET_EXHAUSTED,
            f"this owner created {count} wallets in the last 24 hours (at most {budget})",
            retry_after_s=retry_after,
        )

    def _predicted(self, owner: str, salt: bytes) -> str:
        """The factory's CREATE2 address of ``owner``'s account with ``salt``."""
        try:
            return self._rt.calls.decode_address(
                self._rt.chain.call(
                    self._rt.deployment.factory, self._rt.calls.get_address(owner, salt)
                )
            )
        except ChainError as exc:
            raise ServiceError(
                "unavailable", ReasonCode.CHAIN_UNAVAILABLE, f"chain unavailable: {exc}"
            ) from None

    def registration_challenge(
        self,
        signer: SelfSigned,
        *,
        account: str | None = None,
        salt: bytes | None = None,
        owner: str | None = None,
        owner_kind: OwnerKind = "eoa",
        network: str | int | None = None,
        account_kind: AccountKind = "session_account",
    ) -> RegistrationChallengeView:
        """What the account's owner signs for :meth:`register` (``account``) or
        :meth:`create` (``salt``: the account the factory will make), with a fresh random
        nonce and a deadline ``registration_ttl_s`` ahead; nothing is stored: the nonce is
        spent when the proof is used. ``signer`` is the key that becomes the owner
        credential. The challenge names ``network``'s chain (default: the first network).
        For an ``erc7579`` account the owner is the account itself (see the module
        docstring)."""
        if network is not None and (here := self._on(network)) is not self:
            return here.registration_challenge(
                signer,
                account=account,
                salt=salt,
                owner=owner,
                owner_kind=owner_kind,
                account_kind=account_kind,
            )
        if account_kind == "erc7579":
            if account is None or salt is not None:
                raise invalid(
                    ReasonCode.INPUT_MALFORMED, "an erc7579 account is registered by its address"
                )
            owner, owner_kind = self._erc7579_owner(account, owner)
        owner = self._owner(signer, owner, owner_kind)
        if (account is None) == (salt is None):
            raise invalid(ReasonCode.INPUT_MALFORMED, "name either the account or the salt")
        if account is None:
            assert salt is not None
            account = self._predicted(owner, salt)
        nonce = secrets.randbelow(MAX_NONCE)
        deadline = self._rt.now() + self._rt.settings.registration_ttl_s
        digest = self._registration_digest(signer, account, owner, nonce, deadline)
        return {
            "serviceId": self._rt.settings.service_id,
            "chainId": self._rt.chain_id,
            "account": account,
            "owner": owner,
            "nonce": str(nonce),
            "deadline": deadline,
            "digest": "0x" + digest.hex(),
        }

    def register(
        self,
        signer: SelfSigned,
        *,
        account: str,
        proof: RegistrationProof,
        owner: str | None = None,
        owner_kind: OwnerKind = "eoa",
        network: str | int | None = None,
        account_kind: AccountKind = "session_account",
    ) -> WalletView:
        """An existing SessionAccount (or an EOA delegated to its code with EIP-7702, which is
        then its own owner), or with ``account_kind="erc7579"`` any ERC-7579 account with the
        network's SessionWard module installed (:meth:`_register_erc7579`). The account's ``owner()`` on chain must be ``owner``, and
        ``proof`` the owner's signature over the registration challenge
        (:mod:`sessionward.crypto.registration`) for this service, chain, account and
        ``signer``'s key: an EOA's own signature, or the owner contract's ERC-1271 verdict.
        Refusals: ``REGISTRATION_PROOF_EXPIRED`` (400), ``REGISTRATION_PROOF_INVALID`` (403),
        ``NONCE_REPLAYED`` (409), ``WALLET_ALREADY_REGISTERED`` (409); each changes nothing
        but a spent nonce of a valid proof. The account is read and registered on ``network``
        (default: the first network); a proof made for another chain is invalid here."""
        if network is not None and (here := self._on(network)) is not self:
            return here.register(
                signer,
                account=account,
                proof=proof,
                owner=owner,
                owner_kind=owner_kind,
                account_kind=account_kind,
            )
        if account_kind == "erc7579":
            return self._register_erc7579(signer, account=account, proof=proof, owner=owner)
        if account_kind != "session_account":
            raise invalid(ReasonCode.INPUT_MALFORMED, "accountKind is session_account or erc7579")
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
        self._check_proof(signer, account, owner, owner_kind, proof)
        record = self._add(account, owner, owner_kind)
        return self._finish(record, signer, "wallet.registered")

    def _register_erc7579(
        self, signer: SelfSigned, *, account: str, proof: RegistrationProof, owner: str | None
    ) -> WalletView:
        """An ERC-7579 account with the network's SessionWard module installed as validator
        and executor, proven by the account's own ERC-1271 answer to the registration
        challenge. Refusals, nothing written: ``ACCOUNT_MISMATCH`` (400) when the network has
        no module configured, no contract is at ``account``, it does not answer
        ``isModuleInstalled`` or has not installed the module as both types;
        ``SIGNER_MISMATCH`` (403) for an ``owner`` other than the account;
        ``CHAIN_UNAVAILABLE`` (503) when the node cannot answer; then as :meth:`register`."""
        owner, owner_kind = self._erc7579_owner(account, owner)
        module = self._installed_module(owner)
        self._check_proof(signer, owner, owner, owner_kind, proof)
        record = self._add(owner, owner, owner_kind, session_module=module)
        return self._finish(record, signer, "wallet.registered")

    def _erc7579_owner(self, account: str, owner: str | None) -> tuple[str, OwnerKind]:
        """An ERC-7579 account's owner for the service: the account itself, by ERC-1271."""
        account = account.lower()
        if owner is not None and owner.lower() != account:
            raise ServiceError(
                "forbidden",
                ReasonCode.SIGNER_MISMATCH,
                "an erc7579 account is its own owner: its ERC-1271 answer proves control",
            )
        return account, "erc1271"

    def _installed_module(self, account: str) -> str:
        """The network's SessionWard module, checked installed on ``account`` as validator
        and executor by the account's own ``isModuleInstalled``."""
        module = self._rt.session_module
        if module is None:
            raise invalid(
                ReasonCode.ACCOUNT_MISMATCH,
                f"network {self._rt.network_name!r} has no SessionWard module configured "
                "(session_module): it registers SessionAccounts only",
            )
        chain = self._rt.chain
        try:
            if not chain.get_code(account):
                raise invalid(ReasonCode.ACCOUNT_MISMATCH, "no contract is at this account")
            for module_type in (MODULE_TYPE_VALIDATOR, MODULE_TYPE_EXECUTOR):
                answer = chain.call(account, is_module_installed_call(module_type, module))
                if not decode_bool(answer):
                    raise invalid(
                        ReasonCode.ACCOUNT_MISMATCH,
                        "the account has not installed the SessionWard module as validator "
                        "and executor",
                    )
        except (ExecutionReverted, CalldataMalformed):
            raise invalid(
                ReasonCode.ACCOUNT_MISMATCH,
                "the account does not answer ERC-7579's isModuleInstalled",
            ) from None
        except ChainError:
            raise ServiceError(
                "unavailable", ReasonCode.CHAIN_UNAVAILABLE, "the chain could not be asked"
            ) from None
        return module

    def _registration_digest(
        self, signer: SelfSigned, account: str, owner: str, nonce: int, deadline: int
    ) -> bytes:
        return registration_digest(
            service=self._rt.settings.service_id,
            chain_id=self._rt.chain_id,
            account=account,
            owner=owner,
            public_key=signer.public_key,
            nonce=nonce,
            deadline=deadline,
        )

    def _check_proof(
        self,
        signer: SelfSigned,
        account: str,
        owner: str,
        owner_kind: OwnerKind,
        proof: RegistrationProof,
    ) -> None:
        now = self._rt.now()
        if not now < proof.deadline <= now + self._rt.settings.registration_ttl_s:
            raise invalid(
                ReasonCode.REGISTRATION_PROOF_EXPIRED,
                "the registration challenge's deadline has passed or is too far ahead",
            )
        if not 0 <= proof.nonce <= MAX_NONCE:
            raise invalid(ReasonCode.INPUT_MALFORMED, "registration nonce out of range")
        digest = self._registration_digest(signer, account, owner, proof.nonce, proof.deadline)
        try:
            verify_owner_signature(
                owner=owner,
                owner_kind=owner_kind,
                chain_id=self._rt.chain_id,
                digest=digest,
                signature=proof.signature,
                erc1271=ChainErc1271Checker(self._rt.chain),
            )
        except SignatureError:
            raise ServiceError(
                "forbidden",
                ReasonCode.REGISTRATION_PROOF_INVALID,
                "the account's owner did not sign this registration challenge",
            ) from None
        except ChainError:
            raise ServiceError(
                "unavailable", ReasonCode.CHAIN_UNAVAILABLE, "the chain could not be asked"
            ) from None
        # Spent only once the proof verified: a forged proof cannot burn the owner's nonce.
        if not self._rt.store.replay.remember(
            f"registration:{account.lower()}", proof.nonce, proof.deadline * 1000
        ):
            raise conflict(ReasonCode.NONCE_REPLAYED, "this registration proof was used before")

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

    def _add(
        self,
        account: str,
        owner: str,
        owner_kind: OwnerKind,
        *,
        session_module: str | None = None,
    ) -> WalletRecord:
        try:
            return self._rt.store.wallets.add(
                wallet_id=new_id("wal"),
                chain_id=self._rt.chain_id,
                account=account,
                owner=owner,
                owner_kind=owner_kind,
                now=self._rt.now(),
                session_module=session_module,
            )
        except AlreadyExists:
            raise conflict(
                ReasonCode.WALLET_ALREADY_REGISTERED, "this account is already registered"
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
