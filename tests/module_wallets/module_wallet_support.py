"""The service with a SessionWard module configured (``session_module``), and third-party
ERC-7579 accounts that installed it, registered through RegisterWallet (``accountKind:
erc7579``): :class:`ModuleWorld` extends the several-networks test world with them.

An account here is OpenZeppelin's ``AccountERC7579`` with one ECDSA owner
(tests/erc7579/OwnedAccountERC7579.sol): its ERC-1271 accepts the owner's signature of a hash,
which is all the service and the module ask of it (the registration challenge, the grant).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from account7579_support import Account7579, create_account7579
from alto_bundler import funded
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, Key, Stage
from module_support import ModuleWallet, deploy_module
from oz_account import MODULE_TYPE_VALIDATOR, deploy_oz_account

from networks.networks_support import APPROVE, USDX_UNIT, Backend, Networks, Session, Wallet
from sessionward.chain.contracts import DeployedContract
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.crypto.typed_data import account_message_digest
from sessionward.domain.abi import encode_call
from sessionward.domain.calldata import Call
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import NetworkSettings
from sessionward.service.errors import ServiceError
from sessionward.service.wallets import RegistrationProof

CHAIN_ID = 31337
NETWORK = "local"
MODULE_TYPE_EXECUTOR = 2
FEE_BUDGET = 10**17


def module_network(
    anvil: str, module: str | None, *, bundler_url: str | None = None
) -> NetworkSettings:
    """The one network of these tests: anvil, the canonical EntryPoint, the module."""
    return NetworkSettings(
        NETWORK,
        CHAIN_ID,
        rpc_url=anvil,
        entry_point=ENTRY_POINT_V07,
        bundler_url=bundler_url,
        session_module=module,
    )


@dataclass(frozen=True)
class AccountMessageWallet(Wallet):
    """A wallet whose account's ERC-1271 takes the owner's signature of SessionWard's
    ``AccountMessage(hash)`` (SessionAccount7579): its owner signs grants wrapped so."""

    chain_id: int = 0

    def sign(self, digest_hex: str) -> bytes:
        digest = bytes.fromhex(digest_hex.removeprefix("0x"))
        return sign_digest(
            self.owner_secret, account_message_digest(self.chain_id, self.account, digest)
        )


class ModuleWorld(Networks):
    """The service on ``local`` with the module, and the accounts of these tests."""

    def __init__(self, built: Networks, stage: Stage, module: DeployedContract) -> None:
        super().__init__(built.waas)
        self.stage = stage
        self.module = module
        self.accounts: dict[str, ModuleWallet] = {}
        self.network = self.rt.network_name  # NETWORK, or "default" for single-chain settings

    @classmethod
    def start(
        cls,
        data_dir: Path,
        stage: Stage,
        anvil: str,
        *,
        bundler_url: str | None = None,
        module: DeployedContract | None = None,
    ) -> ModuleWorld:
        module = module or deploy_module(stage)
        built = Networks.build(
            data_dir, (module_network(anvil, module.address, bundler_url=bundler_url),)
        )
        return cls(built, stage, module)

    fee_budget: int | None = FEE_BUDGET
    """The grants' ``maxFeeWei``: the account pays its own UserOperations within it."""

    def settle(self, rounds: int = 6) -> None:
        super().settle(rounds)

    # --- the account, as its owner sets it up (outside the service) -----------------------

    def module_account(self, *, install: tuple[int, ...] = (1, 2)) -> ModuleWallet:
        """A fresh OZ account with the module installed as ``install`` (validator and
        executor by default) by its owner, 1,000 of the service's USDX, 10 ether, and the
        service's router approved by the owner's own operation."""
        account = deploy_oz_account(self.stage)
        wallet = ModuleWallet(self.stage, account, self.module, Key(), Key().address)
        for module_type in install:
            wallet.install(module_type)
        return self._ready(wallet)

    def account7579(self) -> ModuleWallet:
        """A fresh SessionAccount7579 from its factory (the module installed as validator and
        executor in its constructor), funded and approving the router as
        :meth:`module_account`'s."""
        account = create_account7579(self.stage, self.module)
        return self._ready(ModuleWallet(self.stage, account, self.module, Key(), Key().address))

    def _ready(self, wallet: ModuleWallet) -> ModuleWallet:
        account = wallet.account
        rt = self.net(self.network)
        usdx = rt.deployment.token("USDX")
        self.token(self.network, usdx).transact(
            rt.deployer, "mint", wallet.address, 1_000 * USDX_UNIT
        )
        approve = encode_call(APPROVE, (rt.deployment.router, 2**255))
        wallet.owner_run(account.execute_data(Call(usdx, 0, approve)))
        self.accounts[wallet.address] = wallet
        return wallet

    def proof(self, account: ModuleWallet, *, signer: Key | None = None) -> RegistrationProof:
        """The owner's answer to GetRegistrationChallenge for the account (``signer``: who
        signs instead, for a forged proof)."""
        challenge = self.waas.wallets.registration_challenge(
            self.self_signed(account),
            account=account.address,
            account_kind="erc7579",
            network=self.network,
        )
        digest = bytes.fromhex(challenge["digest"][2:])
        if isinstance(account.account, Account7579):  # its ERC-1271 takes AccountMessage
            signature = account.account.erc1271_signature(digest, signer)
        else:
            signature = (signer or account.account.owner).sign(digest)
        return RegistrationProof(int(challenge["nonce"]), challenge["deadline"], signature)

    @staticmethod
    def self_signed(account: ModuleWallet) -> SelfSigned:
        return SelfSigned(ALG_SECP256K1, account.account.owner.address)

    @staticmethod
    def self_signed_key(key: Key) -> SelfSigned:
        return SelfSigned(ALG_SECP256K1, key.address)

    def register(self, account: ModuleWallet) -> Wallet:
        """RegisterWallet (``accountKind: erc7579``) with the owner's proof."""
        view = self.waas.wallets.register(
            self.self_signed(account),
            account=account.address,
            proof=self.proof(account),
            account_kind="erc7579",
            network=self.network,
        )
        assert view["accountKind"] == "erc7579"
        assert view["sessionModule"] == self.module.address.lower()
        caller = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
        owner = account.account.owner
        if isinstance(account.account, Account7579):
            return AccountMessageWallet(
                view["walletId"],
                self.network,
                view["account"],
                owner.address,
                owner.secret,
                caller,
                chain_id=self.rt.chain_id,
            )
        return Wallet(
            view["walletId"], self.network, view["account"], owner.address, owner.secret, caller
        )

    def module_view(self, function: str, *args: object) -> Any:
        return self.module.call_one(function, *args)

    def status_on_chain(self, wallet: Wallet | str, session_key: str) -> int:
        """The module's ``session(account, key).status`` for a wallet or an account
        address: 0 none, 1 live, 2 revoked."""
        account = wallet if isinstance(wallet, str) else wallet.account
        status, _valid_after, _expires_at = self.module.call("session", account, session_key)
        assert isinstance(status, int)
        return status

    def usdx_at(self, account: str) -> int:
        """The service's USDX held by ``account`` on the world's network."""
        rt = self.rt
        value = self.token(rt.network_name, rt.deployment.token("USDX")).call_one(
            "balanceOf", account
        )
        assert isinstance(value, int)
        return value

    def fund_for_operations(self, wallet: Wallet) -> None:
        """Ether for the account's own UserOperation prefunds."""
        self.chain(self.network).set_balance(wallet.account, 10 * ONE_ETH)

    def granted(self, backend: Backend) -> Session:
        """A registered module account, funded for its operations, with a session the owner
        approved and the service installed through the module."""
        wallet = self.register(self.module_account())
        self.fund_for_operations(wallet)
        session = self.session(wallet, backend)
        assert self.status_on_chain(wallet, session.session_key) == 1
        return session

    def run(self, session: Session, usdx: int, submission: str) -> str:
        """Prepare and Execute a swap of ``usdx`` as ``submission``, settled: the final
        status, or the refusal's reason code."""
        try:
            quote = self.prepare(session, usdx, network=self.network)
            self.waas.transactions.execute(
                session.backend.caller,
                quote["txnId"],
                submission=submission,  # type: ignore[arg-type]
            )
        except ServiceError as refused:
            return refused.code.value
        for _ in range(100):
            self.settle(rounds=1)
            status = self.waas.transactions.status(session.backend.caller, quote["txnId"])
            if status["status"] != "pending":
                return str(status["status"])
        raise AssertionError("the call stayed pending")


@contextmanager
def module_world(
    stage: Stage, anvil: str, data_dir: Path, *, bundler: bool = True
) -> Iterator[ModuleWorld]:
    """``with module_world(...) as world:`` the service on anvil with a fresh module, and
    with ``bundler`` the real alto (funded, stopped by its PID) as its bundler."""
    if not bundler:
        world = ModuleWorld.start(data_dir, stage, anvil)
        try:
            yield world
        finally:
            world.close()
        return
    with funded(stage.chain, anvil) as alto:
        world = ModuleWorld.start(data_dir, stage, anvil, bundler_url=alto.url)
        try:
            yield world
        finally:
            world.close()


__all__ = ["MODULE_TYPE_EXECUTOR", "MODULE_TYPE_VALIDATOR", "NETWORK", "ModuleWorld"]
