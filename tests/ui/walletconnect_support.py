"""WalletConnect end to end on this machine: the approval page's real provider bundle, a local
relay of our own (``walletconnect_relay.mjs``) and a real wallet-side client
(``walletconnect_wallet.mjs``: ``@walletconnect/sign-client`` with viem's local account).

WalletConnect's public relay cannot be reached from here and WalletConnect publishes no relay
server, so the relay is a stand-in written for the tests: it routes the clients' end-to-end
encrypted messages by topic (the relay JSON-RPC of ``@walletconnect/relay-api``) and never reads
them. Both node processes are started on 127.0.0.1 and stopped by their PID
(``anvil_node.stop``).
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ui_browser_support import Service, ops_credential
from wallet_support import ESBUILD, ROOT

from anvil_node import stop as _stop
from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas
from sessionward.ui.walletconnect import ENV_BUNDLE, ENV_PROJECT_ID, ENV_RELAY_URL

HERE: Final = Path(__file__).resolve().parent
RELAY_SCRIPT: Final = HERE / "walletconnect_relay.mjs"
WALLET_SCRIPT: Final = HERE / "walletconnect_wallet.mjs"
PROVIDER: Final = ROOT / "node_modules" / "@walletconnect" / "ethereum-provider"
SIGN_CLIENT: Final = ROOT / "node_modules" / "@walletconnect" / "sign-client"


PROJECT_ID: Final = "0123456789abcdef0123456789abcdef"


@contextmanager
def walletconnect_service(
    data_dir: Path, ops_key: ec.EllipticCurvePrivateKey, *, relay_url: str, bundle: Path
) -> Iterator[Service]:
    """The UI service of conftest on SQLite in ``data_dir``, with WalletConnect configured
    through the environment (restored after) to ``relay_url`` and the provider ``bundle``."""
    logs = logging.getLogger("sessionward")
    level = logs.level
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SESSIONWARD_DATABASE_URL", raising=False)
        env.setenv(ENV_PROJECT_ID, PROJECT_ID)
        env.setenv(ENV_RELAY_URL, relay_url)
        env.setenv(ENV_BUNDLE, str(bundle))
        logs.setLevel(logging.WARNING)
        try:
            settings = Settings(data_dir=data_dir, ops_credentials=(ops_credential(ops_key),))
            waas = Waas.from_settings(settings)
            with BackgroundServer(waas) as url:
                yield Service(waas, url)
        finally:
            logs.setLevel(level)


def build_provider_bundle(out: Path) -> Path:
    """The page's EthereumProvider bundle at ``out``, built with the arguments of
    ``npm run build:walletconnect`` (package.json) except the output file."""
    if not PROVIDER.is_dir() or not SIGN_CLIENT.is_dir():
        raise RuntimeError("the WalletConnect packages are missing: run `npm install`")
    scripts = json.loads((ROOT / "package.json").read_text())["scripts"]
    args = scripts["build:walletconnect"].split()[1:]
    args = [a for a in args if not a.startswith("--outfile=")] + [f"--outfile={out}"]
    subprocess.run([str(ESBUILD), *args], cwd=ROOT, check=True, timeout=120)
    return out


class _Lines:
    """The JSON lines a child process prints, read on a thread as they come."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = {"event": "output", "text": line.decode(errors="replace").rstrip()}
            with self._changed:
                self.lines.append(entry)
                self._changed.notify_all()

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """The first line whose ``event`` is ``event``; TimeoutError with every line otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in self.lines:
                    if entry.get("event") == event:
                        return entry
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {event!r} within {timeout} s: {self.lines}")
                self._changed.wait(left)


@dataclass
class LocalRelay:
    """The test relay, listening on 127.0.0.1; its traffic log is JSON lines in ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, log: Path) -> LocalRelay:
        process = subprocess.Popen(
            ["node", str(RELAY_SCRIPT), str(log)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            first = process.stdout.readline()
            port = int(json.loads(first)["port"])
        except Exception:
            _stop(process)
            raise
        return cls(process, port, log)

    def stop(self) -> None:
        _stop(self.process)

    def events(self) -> list[dict[str, Any]]:
        """Every event the relay logged so far."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def published(self) -> list[bytes]:
        """Every message published through the relay, decoded from base64 as the relay holds
        them (the clients' envelopes: a type byte, a nonce and the sealed box)."""
        return [
            base64.b64decode(e["message"], validate=True)
            for e in self.events()
            if e["event"] == "publish"
        ]


@dataclass
class WalletProcess:
    """A running ``walletconnect_wallet.mjs`` paired (or pairing) with a dapp."""

    process: subprocess.Popen[bytes]
    output: _Lines
    config: dict[str, Any] = field(repr=False)

    @classmethod
    def start(
        cls,
        relay: LocalRelay,
        project_id: str,
        uri: str,
        key: bytes,
        *,
        chain_id: int = 1,
        signature: str = "sign",
        methods: list[str] | None = None,
    ) -> WalletProcess:
        """Pair with ``uri`` through ``relay``; ``signature`` is ``"sign"`` or ``"reject"``;
        ``methods``, when given, are the only methods the wallet grants the session (else every
        method the dapp asked for). The key goes to the process on stdin only."""
        config = {
            "relayUrl": relay.url,
            "projectId": project_id,
            "uri": uri,
            "key": "0x" + key.hex(),
            "chainId": chain_id,
            "signature": signature,
        }
        if methods is not None:
            config["methods"] = methods
        process = subprocess.Popen(
            ["node", str(WALLET_SCRIPT)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.close()
        return cls(process, _Lines(process.stdout), config)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.output.wait_for(event, timeout)

    def events(self) -> list[str]:
        return [str(line.get("event")) for line in self.output.lines]

    def stop(self) -> None:
        _stop(self.process)
