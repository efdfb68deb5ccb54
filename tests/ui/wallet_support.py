"""A browser wallet for the approval-page tests: an EIP-1193 provider (``window.ethereum``) whose
signatures are made in the page by viem's local account (``privateKeyToAccount``) over a real
secp256k1 key.

viem (pinned in package.json) is bundled for the browser by esbuild (also pinned) once per test
session into one script that defines the global ``viemTest``; the provider shim below is
injected with it by ``page.add_init_script`` before the page's own scripts run. The key is
given to the init script as a JavaScript value: it is never part of a URL, a query or a
fragment, and never sent anywhere.

The provider answers ``eth_requestAccounts``/``eth_accounts``, ``eth_chainId``,
``wallet_switchEthereumChain`` (emitting ``chainChanged``) and ``eth_signTypedData_v4``; with
``reject`` it refuses every signature as a user would (EIP-1193 error 4001). Every request is
recorded in ``window.__wallet.requests`` (method names).
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Final

from playwright.sync_api import Page

ROOT: Final = Path(__file__).resolve().parents[2]
ESBUILD: Final = ROOT / "node_modules" / ".bin" / "esbuild"
ENTRY: Final = 'export { privateKeyToAccount } from "viem/accounts";\n'

_PROVIDER: Final = """
(() => {
  const config = window.__walletConfig;
  const account = viemTest.privateKeyToAccount(config.key);
  const listeners = {};
  let chainId = config.chainId;
  const state = { requests: [], address: account.address };
  window.__wallet = state;
  const emit = (event, value) => (listeners[event] || []).forEach((fn) => fn(value));
  const refuse = (code, message) => Object.assign(new Error(message), { code });
  window.ethereum = {
    isSessionWardTestWallet: true,
    async request({ method, params }) {
      state.requests.push(method);
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [account.address];
        case "eth_chainId":
          return "0x" + chainId.toString(16);
        case "wallet_switchEthereumChain":
          chainId = Number(BigInt(params[0].chainId));
          emit("chainChanged", "0x" + chainId.toString(16));
          return null;
        case "eth_signTypedData_v4": {
          if (config.reject) throw refuse(4001, "User rejected the request.");
          if (String(params[0]).toLowerCase() !== account.address.toLowerCase()) {
            throw refuse(4100, "The requested account has not been authorized.");
          }
          return account.signTypedData(JSON.parse(params[1]));
        }
        default:
          throw refuse(4200, `unsupported method ${method}`);
      }
    },
    on(event, fn) {
      (listeners[event] = listeners[event] || []).push(fn);
    },
    removeListener(event, fn) {
      listeners[event] = (listeners[event] || []).filter((f) => f !== fn);
    },
  };
})();
"""


@cache
def viem_bundle() -> str:
    """viem's local account for the browser (an IIFE defining ``viemTest``), built by esbuild."""
    if not ESBUILD.exists():
        raise RuntimeError(f"{ESBUILD} is missing: run `npm install` (package.json pins esbuild)")
    built = subprocess.run(
        [
            str(ESBUILD),
            "--bundle",
            "--format=iife",
            "--global-name=viemTest",
            "--platform=browser",
            "--log-level=warning",
        ],
        input=ENTRY,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return built.stdout


def install_wallet(page: Page, key: bytes, *, chain_id: int = 1, reject: bool = False) -> None:
    """Give ``page`` (before it loads) a ``window.ethereum`` signing with ``key``."""
    config = {"key": "0x" + key.hex(), "chainId": chain_id, "reject": reject}
    page.add_init_script(
        script=f"window.__walletConfig = {json.dumps(config)};\n{viem_bundle()}\n{_PROVIDER}"
    )


def wallet_requests(page: Page) -> list[str]:
    """The EIP-1193 methods the page asked the wallet for, in order."""
    return list(page.evaluate("() => window.__wallet.requests"))
