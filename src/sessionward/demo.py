"""``sessionward demo``: the three actors, end to end, on embedded defaults.

The service runs on a free loopback port (SQLite in a temporary data directory, the local
vault, the in-process chain with the demo token and router). The owner, the backend and ops
then talk to it only through the SDK, with signed requests; the demo reads balances from the
chain as an observer. Every step states what must happen, and the demo exits non-zero if any
step does not.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from sessionward.chain.contracts import DeployedContract
from sessionward.chain.demo import demo_contract, fund_demo_wallet
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.sdk import BackendClient, OpsClient, OwnerClient, SessionWardApiError
from sessionward.server import BackgroundServer
from sessionward.service.config import OpsCredential, Settings, vault_environment
from sessionward.service.waas import Waas
from sessionward.vault.hsm import DEFAULT_MODULE, ENV_PIN
from sessionward.vault.softhsm import ENV_CONF as SOFTHSM_CONF
from sessionward.vault.softhsm import init_softhsm

SWAP = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)"
)
TRANSFER_OWNERSHIP = parse_signature("transferOwnership(address newOwner)")
OTHER_ROUTER = (
    "0xe592427a0aece92de3edee1f18e0157c05861564"  # a real router, but not the granted one
)
USDX = 10**6


class DemoFailed(Exception):
    """A step did not do what it must."""


@dataclass
class Story:
    console: Console
    steps: int = 0
    refusals: dict[str, str] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        self.steps += 1
        self.console.print(f"[bold cyan]{self.steps:>2}.[/] {text}")

    def ok(self, text: str) -> None:
        self.console.print(f"    [green]✓[/] {text}")

    def note(self, text: str) -> None:
        self.console.print(f"    [dim]{text}[/]")

    def expect_refusal(
        self, what: str, code: str, action: Callable[[], object]
    ) -> SessionWardApiError:
        """Run ``action``; it must be refused with ``code``."""
        try:
            action()
        except SessionWardApiError as refused:
            if refused.code != code:
                raise DemoFailed(f"{what}: refused with {refused.code}, expected {code}") from None
            self.refusals[what] = code
            self.ok(f"refused {code} ({refused.reason}) — HTTP {refused.status}")
            return refused
        raise DemoFailed(f"{what}: was allowed, must be refused with {code}")


def run_demo(*, data_dir: Path | None = None, console: Console | None = None) -> int:
    """Play the story; 0 when every step behaved, 1 otherwise."""
    console = console or Console(highlight=False)
    logging.getLogger().setLevel(logging.WARNING)  # the story is the output, not the logs
    with tempfile.TemporaryDirectory(prefix="sessionward-demo-") as tmp:
        story = Story(console)
        try:
            _play(story, Path(data_dir or tmp))
        except (DemoFailed, SessionWardApiError, TimeoutError) as failure:
            console.print(f"[bold red]✗ demo failed at step {story.steps}:[/] {failure}")
            return 1
    return 0


def _with_demo_vault(settings: Settings) -> Settings:
    """``SESSIONWARD_VAULT=pkcs11`` with no PIN, token or module of its own plays on a
    throwaway SoftHSM2 token in the demo's data directory (random PIN in a 0600 file)."""
    if settings.vault != "pkcs11" or os.environ.get(ENV_PIN) or settings.pkcs11_pin_file:
        return settings
    if settings.pkcs11_token_label or settings.pkcs11_slot is not None:
        return settings  # a token of the operator's: its PIN must be given (load_pin says so)
    if settings.pkcs11_module != DEFAULT_MODULE:
        return settings
    label, hsm_dir = "sessionward-demo", settings.data_dir / "softhsm"
    hsm_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pin = secrets.token_hex(8)
    os.environ[SOFTHSM_CONF] = str(init_softhsm(hsm_dir, {label: pin}))
    pin_file = hsm_dir / "pin"
    pin_file.touch(mode=0o600)
    pin_file.write_text(pin + "\n")
    return replace(settings, pkcs11_token_label=label, pkcs11_pin_file=pin_file)


def _play(story: Story, data_dir: Path) -> None:
    console = story.console
    ops_secrets = [secrets.token_bytes(32), secrets.token_bytes(32)]
    ops = tuple(
        OpsCredential(f"ops-{i + 1}", "ecdsa-p256k-eip191", address_from_secret(s))
        for i, s in enumerate(ops_secrets)
    )
    settings = _with_demo_vault(
        Settings(data_dir=data_dir, ops_credentials=ops, **vault_environment(os.environ))
    )
    vault = "local vault" if settings.vault == "local" else "keys in a PKCS#11 token"
    story.step(f"Start SessionWard on embedded defaults (SQLite, {vault}, in-process chain 1)")
    started = time.monotonic()
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    waas = Waas.from_settings(settings)
    rt = waas.runtime
    with BackgroundServer(waas) as url:
        story.ok(
            f"listening on {url} (ready in {time.monotonic() - started:.1f} s); router {rt.deployment.router}"
        )
        if settings.vault == "pkcs11":
            story.note(
                f"session keys are generated in the token {settings.pkcs11_token_label!r} "
                f"({settings.pkcs11_module.name}); it signs, and no key bytes ever leave it"
            )
        usdx = rt.deployment.token("USDX")
        wethx = rt.deployment.token("WETHX")
        router = rt.deployment.router
        usdx_token = DeployedContract(rt.chain, usdx, demo_contract("DemoToken"))
        wethx_token = DeployedContract(rt.chain, wethx, demo_contract("DemoToken"))

        story.step("The backend (an AI agent) registers its credential, proving it holds the key")
        backend_secret = secrets.token_bytes(32)
        backend = BackendClient(url, Secp256k1RequestSigner(backend_secret))
        credential = backend.register(
            "Acme Trading Agent", "https://agent.example", int(time.time()) + 86400
        )
        story.ok(f"credential {credential['credentialId']}")

        story.step(
            "The owner creates a smart wallet (a SessionAccount through the CREATE2 factory)"
        )
        owner_secret = secrets.token_bytes(32)
        owner = OwnerClient(url, owner_secret)
        wallet = owner.create_wallet()
        account = wallet["account"]
        story.ok(f"wallet {wallet['walletId']} = account {account} on chain {wallet['chainId']}")
        _wait(lambda: bool(rt.chain.get_code(account)), "account deployment")
        fund_demo_wallet(
            rt.chain,
            rt.deployment,
            rt.deployer,
            owner_secret=owner_secret,
            account=account,
            usdx=1_000,
        )
        story.note(
            "funded with 1,000 USDX; the owner itself let the router pull USDX (its own transaction)"
        )

        def seed(expires_in: int) -> dict[str, Any]:
            return {
                "capabilities": ["swap.execute"],
                "maxValueUsd": 500,
                "allowedDestinations": [router],
                "chainId": 1,
                "expiresAt": int(time.time()) + expires_in,
            }

        def grant(expires_in: int, label: str) -> str:
            pending = owner.authorize_remote_access(
                credential["credentialId"], wallet["walletId"], seed(expires_in)
            )
            signature = owner.sign_grant(pending)
            session_id = str(pending["sessionId"])
            owner.approve_session(session_id, signature)
            # Approval answers "installing": the session is active only once the chain shows
            # it installed (the relaying node records that from the account's own view).
            _wait(
                lambda: owner.get_session(session_id)["lifecycle"] == "active",
                f"{label} to be installed on chain",
            )
            story.ok(f"{label}: {pending['summary']}")
            return session_id

        def swap(
            session_id: str, amount: int, *, to: str = router, chain_id: int | None = None
        ) -> dict[str, Any]:
            data = encode_call(
                SWAP, (amount * USDX, 0, (usdx, wethx), account, int(time.time()) + 600)
            )
            quote = backend.prepare_transaction(
                wallet["walletId"], session_id, to, 0, data, chain_id=chain_id
            )
            done = backend.execute(quote["txnId"], idempotency_key=secrets.token_hex(8))
            final = backend.wait_for_transaction(done["txnId"], timeout=30.0)
            if final["status"] != "executed":
                raise DemoFailed(
                    f"swap of {amount} USDX ended {final['status']}: {final.get('failure')}"
                )
            story.executed.append(final["txnId"])
            return final

        story.step(
            "The owner reviews the credential and authorizes the seed envelope; it signs the EIP-712 grant"
        )
        inspected = owner.inspect_credential(credential["credentialId"])
        story.note(f"consent screen shows app {inspected['appName']!r} at {inspected['appUrl']}")
        session = grant(900, "session 1")

        story.step("The backend swaps within the caps: 100 USDX twice")
        before = (
            usdx_token.call_one("balanceOf", account),
            wethx_token.call_one("balanceOf", account),
        )
        for amount in (100, 100):
            final = swap(session, amount)
            story.ok(f"swap {amount} USDX executed on chain, tx {final['txHash']}")
        after = (
            usdx_token.call_one("balanceOf", account),
            wethx_token.call_one("balanceOf", account),
        )
        assert (
            isinstance(before[0], int) and isinstance(after[0], int) and isinstance(after[1], int)
        )
        assert isinstance(before[1], int)
        if before[0] - after[0] != 200 * USDX or after[1] <= before[1]:
            raise DemoFailed("balances did not move as the swaps say")
        story.ok(f"account balances: {after[0] / USDX:,.2f} USDX, {after[1] / 10**18:.6f} WETHX")
        usage = backend.get_session_usage(session)
        usd = next(item for item in usage["limits"] if item["limit"] == "maxValueUsd")
        story.note(f"USD budget used: {int(usd['spent']) / 1e6:.2f} of {int(usd['max']) / 1e6:.0f}")

        story.step("Out-of-scope attempts are refused, each with its reason")
        story.note("another router:")
        story.expect_refusal(
            "another router", "TARGET_NOT_ALLOWED", lambda: swap(session, 10, to=OTHER_ROUTER)
        )
        story.note("350 USDX more would cross the 500 USD cap:")
        story.expect_refusal("over the cap", "USD_LIMIT_EXCEEDED", lambda: swap(session, 350))
        story.note("transferOwnership through the session:")
        hijack = encode_call(TRANSFER_OWNERSHIP, (address_from_secret(secrets.token_bytes(32)),))
        story.expect_refusal(
            "transferOwnership",
            "NON_DELEGABLE_ACTION",
            lambda: backend.prepare_transaction(wallet["walletId"], session, router, 0, hijack),
        )
        state = owner.get_session(session)
        if state["status"] != "revoked" or not str(state["revokedBy"]).startswith("policy:"):
            raise DemoFailed("the forbidden-action attempt must revoke the session (policy path)")
        story.ok(f"the policy engine revoked session 1 at once ({state['revokedBy']})")

        story.step("A fresh session is used on another chain: a context mismatch")
        session = grant(900, "session 2")
        story.expect_refusal(
            "another chain", "CHAIN_MISMATCH", lambda: swap(session, 10, chain_id=10)
        )
        story.ok(f"and revoked it: {owner.get_session(session)['revokedBy']}")

        story.step("A short session (5 s) is used after it expired")
        session = grant(5, "session 3")
        time.sleep(6)
        story.expect_refusal("after expiry", "SESSION_EXPIRED", lambda: swap(session, 10))

        story.step("The owner revokes a working session; the backend tries once more")
        session = grant(900, "session 4")
        final = swap(session, 50)
        story.ok(f"swap 50 USDX executed, tx {final['txHash']}")
        revoked = owner.revoke_access(wallet["walletId"], credential["credentialId"], session)
        story.ok(f"revoked {revoked['revokedSessions']}")
        story.expect_refusal("after revocation", "SESSION_REVOKED", lambda: swap(session, 10))
        _wait(
            lambda: owner.get_session(session)["onchainRevokedAt"] is not None,
            "on-chain revocation",
        )
        story.ok("the session was also removed from the account's sessions module on chain")

        story.step("Ops pulls the kill switch for the whole service, then two ops lift it")
        ops_clients = [
            OpsClient(url, Secp256k1RequestSigner(s), c.id)
            for s, c in zip(ops_secrets, ops, strict=True)
        ]
        ops_clients[0].emergency_revoke("global", None, "demo: incident drill")
        story.ok("global freeze in force")
        try:
            ops_clients[0].lift_freeze("global")
        except SessionWardApiError as first:
            story.note(f"first ops approval recorded ({first.code})")
        lifted = ops_clients[1].lift_freeze("global")
        story.ok(f"lifted by {lifted['approvals']}")

        story.step("The audit log's hash chains are verified")
        verdict = rt.store.audit.verify()
        if not verdict.ok:
            raise DemoFailed(f"audit log does not verify: {verdict.problems}")
        records = sum(len(rt.store.audit.records(stream)) for stream in rt.store.audit.streams())
        story.ok(f"{records} records in {len(rt.store.audit.streams())} streams, every link intact")

    console.rule("Summary")
    console.print(
        f"{len(story.executed)} swaps executed on chain; {len(story.refusals)} attempts refused: "
        + ", ".join(f"{k} → {v}" for k, v in story.refusals.items())
    )
    console.print("Every step behaved as required.", style="bold green")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what}")
        time.sleep(0.1)
