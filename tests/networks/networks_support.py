"""Plain helpers for the several-networks tests: one :class:`Waas` serving two networks
(``alpha`` and ``beta``, different chain ids) and the actors around it.

Both networks get the same deployer key, so the demo contracts (the factory among them) sit at
the same addresses on both chains, and one owner's account made with one salt has the same
address on both: the setting in which a grant, a session call or a signed revocation made for
one chain could be replayed on the other, if anything but the chain id told them apart. The
relayer keys differ (the service requires it).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import demo_contract
from sessionward.chain.errors import ExecutionReverted
from sessionward.chain.interface import CallRequest, DevChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import NetworkSettings, Settings
from sessionward.service.onchain import revert_code
from sessionward.service.runtime import Runtime, build_runtime
from sessionward.service.waas import Waas
from sessionward.store.schema import (
    decision_events,
    relay_jobs,
    sessions,
    transactions,
    vault_keys,
    wallets,
)

USDX_UNIT = 10**6
SWAP = parse_signature("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")
APPROVE = parse_signature("approve(address,uint256)")
ALPHA_CHAIN_ID = 31_337_001
BETA_CHAIN_ID = 31_337_002


def two_networks(
    data_dir: Path, *, alpha_rpc: str | None = None, beta_rpc: str | None = None
) -> tuple[NetworkSettings, NetworkSettings]:
    """``alpha`` and ``beta`` (in-process chains unless RPC URLs are given), with one deployer
    key written for both (see the module docstring)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    deployer = secrets.token_bytes(32).hex()
    for name in ("alpha", "beta"):
        path = data_dir / f"deployer-{name}.key"
        path.write_text(deployer, encoding="utf-8")
        path.chmod(0o600)
    return (
        NetworkSettings("alpha", ALPHA_CHAIN_ID, rpc_url=alpha_rpc),
        NetworkSettings("beta", BETA_CHAIN_ID, rpc_url=beta_rpc),
    )


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    network: str
    account: str
    owner: str
    owner_secret: bytes = field(repr=False)
    caller: Caller

    def sign(self, digest_hex: str) -> bytes:
        return sign_digest(self.owner_secret, bytes.fromhex(digest_hex.removeprefix("0x")))


@dataclass(frozen=True)
class Backend:
    credential_id: str
    caller: Caller


@dataclass(frozen=True)
class Session:
    session_id: str
    wallet: Wallet
    backend: Backend
    session_key: str


class Networks:
    """One Waas on two networks, and what the tests do and read on each.

    ``fee_budget``: the ``maxFeeWei`` of the envelopes it authorizes (None: no fee budget, so
    a UserOperation of the session can only be sponsored)."""

    fee_budget: int | None = None

    def __init__(self, waas: Waas) -> None:
        self.waas = waas
        self.rt: Runtime = waas.runtime
        self._account = demo_contract("SessionAccount")
        self._token = demo_contract("DemoToken")

    @classmethod
    def build(cls, data_dir: Path, networks: tuple[NetworkSettings, ...], **kw: Any) -> Networks:
        settings = Settings(data_dir=data_dir, networks=networks, **kw)
        return cls(Waas(build_runtime(settings)))

    def close(self) -> None:
        self.waas.stop()

    # --- networks -------------------------------------------------------------------------

    def net(self, name: str) -> Runtime:
        return self.rt.select(name)

    def chain(self, name: str) -> DevChain:
        chain = self.net(name).chain
        assert isinstance(chain, DevChain)
        return chain

    def settle(self, rounds: int = 3) -> None:
        """Every network's dispatcher, until queued work is mined and applied."""
        for _ in range(rounds):
            for dispatcher in self.waas.dispatchers:
                dispatcher.step()

    # --- actors ---------------------------------------------------------------------------

    def wallet(self, network: str, owner_secret: bytes, salt: bytes) -> Wallet:
        """CreateWallet on ``network`` for the owner key, deployed, 1,000 USDX, router
        approved by the owner's own transaction."""
        owner = address_from_secret(owner_secret)
        view = self.waas.wallets.create(
            SelfSigned(ALG_SECP256K1, owner), salt=salt, network=network
        )
        caller = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
        wallet = Wallet(view["walletId"], network, view["account"], owner, owner_secret, caller)
        self.settle()
        chain, rt = self.chain(network), self.net(network)
        assert chain.get_code(wallet.account), "the account was not deployed"
        chain.set_balance(owner, 10**18)
        usdx = rt.deployment.token("USDX")
        self.token(network, usdx).transact(rt.deployer, "mint", wallet.account, 1_000 * USDX_UNIT)
        inner = encode_call(APPROVE, (rt.deployment.router, 2**255))
        data = encode_execute(mode_single(), encode_single_execution(Call(usdx, 0, inner)))
        transact(chain, LocalTransactionSigner(owner_secret), to=wallet.account, data=data)
        return wallet

    def backend(self) -> Backend:
        address = address_from_secret(secrets.token_bytes(32))
        view = self.waas.credentials.register_backend(
            SelfSigned(ALG_SECP256K1, address),
            app_name="Acme Agent",
            app_url="https://agent.example",
            expires_at=int(time.time()) + 86_400,
        )
        return Backend(view["credentialId"], Caller(view["credentialId"], "backend"))

    def envelope(self, network: str) -> dict[str, Any]:
        rt = self.net(network)
        envelope = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "allowedDestinations": [rt.deployment.router],
            "chainId": rt.chain_id,
            "expiresAt": int(time.time()) + 1800,
        }
        if self.fee_budget is not None:
            envelope["maxFeeWei"] = str(self.fee_budget)
        return envelope

    def authorize(self, wallet: Wallet, backend: Backend) -> dict[str, Any]:
        return dict(
            self.waas.sessions.authorize(
                wallet.caller,
                credential_id=backend.credential_id,
                wallet_id=wallet.wallet_id,
                envelope=self.envelope(wallet.network),
                network=wallet.network,
            )
        )

    def session(self, wallet: Wallet, backend: Backend) -> Session:
        pending = self.authorize(wallet, backend)
        self.waas.sessions.approve(
            wallet.caller,
            session_id=pending["sessionId"],
            signature=wallet.sign(pending["grantDigest"]),
        )
        self.settle()
        record = self.rt.store.sessions.get(pending["sessionId"])
        assert record is not None and record.onchain_enabled_at is not None
        return Session(pending["sessionId"], wallet, backend, pending["sessionKey"])

    def swap_data(self, wallet: Wallet, usdx: int) -> bytes:
        d = self.net(wallet.network).deployment
        path = (d.token("USDX"), d.token("WETHX"))
        return encode_call(
            SWAP, (usdx * USDX_UNIT, 0, path, wallet.account, int(time.time()) + 3600)
        )

    def prepare(self, session: Session, usdx: int, **kw: Any) -> Any:
        return self.waas.transactions.prepare(
            session.backend.caller,
            wallet_id=session.wallet.wallet_id,
            session_id=session.session_id,
            to=self.net(session.wallet.network).deployment.router,
            value=0,
            data=self.swap_data(session.wallet, usdx),
            **kw,
        )

    def revoke(self, session: Session) -> None:
        """The owner revokes the session (RevokeAccess), then the dispatchers settle."""
        self.waas.revocations.revoke_access(
            session.wallet.caller,
            wallet_id=session.wallet.wallet_id,
            credential_id=session.backend.credential_id,
            session_id=session.session_id,
        )
        self.settle()

    def swap(self, session: Session, usdx: int) -> str:
        """Prepare, Execute and settle one swap on the session's network: its txn id."""
        quote = self.prepare(session, usdx, network=session.wallet.network)
        self.waas.transactions.execute(session.backend.caller, quote["txnId"])
        self.settle()
        return str(quote["txnId"])

    # --- reads ----------------------------------------------------------------------------

    def token(self, network: str, address: str) -> DeployedContract:
        return DeployedContract(self.chain(network), address, self._token)

    def usdx(self, wallet: Wallet, on: str | None = None) -> int:
        network = on or wallet.network
        token = self.token(network, self.net(network).deployment.token("USDX"))
        value = token.call_one("balanceOf", wallet.account)
        assert isinstance(value, int)
        return value

    def usdx_of(self, network: str, holder: Any) -> int:
        """USDX of ``holder.account`` (e.g. an SDK owner client) on ``network``."""
        token = self.token(network, self.net(network).deployment.token("USDX"))
        value = token.call_one("balanceOf", holder.account)
        assert isinstance(value, int)
        return value

    def account_view(self, network: str, account: str, function: str, *args: object) -> Any:
        return DeployedContract(self.chain(network), account, self._account).call_one(
            function, *args
        )

    def onchain_status(self, network: str, account: str, session_key: str) -> int:
        """``session(key).status`` on ``network`` (0 never, 1 active, 2 revoked)."""
        view = self.account_view(network, account, "session", session_key)
        assert isinstance(view, tuple) and isinstance(view[0], int)
        return view[0]

    def chain_state(self, network: str, account: str, *keys: str) -> tuple[Any, ...]:
        """What a replay on ``network`` must leave unchanged: the account's epoch, owner
        nonce, USDX balance and the status and call nonce of each of ``keys``."""
        usdx = self.net(network).deployment.token("USDX")
        balance = self.token(network, usdx).call_one("balanceOf", account)
        return (
            self.account_view(network, account, "epoch"),
            self.account_view(network, account, "owner_nonce"),
            balance,
            *(self.onchain_status(network, account, k) for k in keys),
            *(self.account_view(network, account, "session_nonce", k) for k in keys),
        )

    def db_counts(self) -> dict[str, int]:
        """Rows per table that a refused request must not add to."""
        counts = {}
        with self.rt.store.db.reading() as conn:
            for table in (wallets, sessions, transactions, decision_events, relay_jobs, vault_keys):
                counts[table.name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
        return counts

    def replay(self, network: str, account: str, data: bytes) -> ReasonCode | None:
        """Send ``data`` to ``account`` on ``network`` as a third party would (an attacker's
        funded key): the reason code the account reverts with (asked by ``eth_call`` first,
        then the transaction is really sent and must fail on chain). None if it succeeded
        (then it was sent and mined)."""
        chain = self.chain(network)
        attacker = LocalTransactionSigner(secrets.token_bytes(32))
        chain.set_balance(attacker.address, 10**18)
        try:
            chain.simulate(CallRequest(to=account, data=data, sender=attacker.address))
        except ExecutionReverted as exc:
            code = revert_code(exc.reason)
        else:
            transact(chain, attacker, to=account, data=data)
            return None
        receipt = transact(chain, attacker, to=account, data=data, gas=3_000_000, check=False)
        assert not receipt.succeeded, "the replay was mined as a success"
        return code
