// A phone wallet for the approval-page tests, as a WalletConnect v2 wallet would be: the real
// @walletconnect/sign-client (pinned in package.json) on the wallet side, pairing with the
// page's EthereumProvider through a relay, and viem's local account (privateKeyToAccount) over
// a real secp256k1 key making the signature.
//
// Usage: node walletconnect_wallet.mjs   (one JSON line on stdin, the configuration:)
//   {"relayUrl": "ws://127.0.0.1:N", "projectId": "<32 hex>", "uri": "wc:...",
//    "key": "0x<32 bytes>", "chainId": 1, "signature": "sign" | "reject",
//    "methods": ["personal_sign", ...]}   (optional: grant only these, not what was asked)
//   The key comes on stdin, never on the command line or in the environment.
//
// It pairs with `uri`, approves the session proposal for the key's account on `chainId` (every
// method and event the dapp asked for, or only `methods`, on eip155 only), then answers
// eth_signTypedData_v4: with "sign" by signing the typed data (after checking the request names its own account), with
// "reject" as a user refusing it (WalletConnect's USER_REJECTED, code 5000, what WalletKit
// wallets send). Any other request is refused (4200). It prints one JSON line per step on
// stdout ({"event": "ready" | "proposal" (with the namespaces asked for) | "approved" | "request"
// | "signed" | "rejected" | "error", ...}) and runs until SIGTERM. Its state is in memory only.

import { createInterface } from "node:readline";
import { SignClient } from "@walletconnect/sign-client";
import { privateKeyToAccount } from "viem/accounts";

const USER_REJECTED = { code: 5000, message: "User rejected." };
const UNSUPPORTED = { code: 4200, message: "The wallet does not support this method." };

function say(event, details = {}) {
  process.stdout.write(JSON.stringify({ event, ...details }) + "\n");
}

/** IKeyValueStorage in memory (the wallet keeps nothing on disk). */
class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  async getKeys() {
    return [...this.items.keys()];
  }
  async getEntries() {
    return [...this.items.entries()];
  }
  async getItem(key) {
    return this.items.get(key);
  }
  async setItem(key, value) {
    this.items.set(key, value);
  }
  async removeItem(key) {
    this.items.delete(key);
  }
}

async function readConfig() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return JSON.parse(line);
  }
  throw new Error("no configuration on stdin");
}

function namespacesFor(proposal, account, chainId, methods) {
  const chain = `eip155:${chainId}`;
  const asked = [proposal.requiredNamespaces, proposal.optionalNamespaces]
    .map((namespaces) => (namespaces || {}).eip155 || { chains: [], methods: [], events: [] });
  const chains = asked.flatMap((n) => n.chains || []);
  if (!chains.includes(chain)) throw new Error(`the dapp did not ask for ${chain}: ${chains}`);
  return {
    eip155: {
      chains: [chain],
      accounts: [`${chain}:${account.address}`],
      methods: methods || [...new Set(asked.flatMap((n) => n.methods || []))],
      events: [...new Set(asked.flatMap((n) => n.events || []))],
    },
  };
}

async function main() {
  const config = await readConfig();
  const account = privateKeyToAccount(config.key);
  const client = await SignClient.init({
    projectId: config.projectId,
    relayUrl: config.relayUrl,
    storage: new MemoryStorage(),
    telemetryEnabled: false,
    logger: "silent",
    metadata: {
      name: "SessionWard test wallet",
      description: "A WalletConnect wallet of SessionWard's tests",
      url: "https://wallet.invalid",
      icons: [],
    },
  });

  client.on("session_proposal", async ({ id, params }) => {
    say("proposal", {
      proposer: params.proposer.metadata.url,
      required: params.requiredNamespaces,
      optional: params.optionalNamespaces,
    });
    try {
      const namespaces = namespacesFor(params, account, config.chainId, config.methods);
      const { acknowledged } = await client.approve({ id, namespaces });
      const session = await acknowledged();
      say("approved", { topic: session.topic, accounts: session.namespaces.eip155.accounts });
    } catch (error) {
      say("error", { during: "approve", message: String(error?.message || error) });
    }
  });

  client.on("session_request", async ({ id, topic, params }) => {
    const { method, params: args } = params.request;
    say("request", { method, chainId: params.chainId });
    const answer = (response) =>
      client.respond({ topic, response: { id, jsonrpc: "2.0", ...response } });
    try {
      if (method !== "eth_signTypedData_v4") return await answer({ error: UNSUPPORTED });
      if (String(args[0]).toLowerCase() !== account.address.toLowerCase()) {
        return await answer({ error: { code: 4100, message: "Not this wallet's account." } });
      }
      if (config.signature === "reject") {
        await answer({ error: USER_REJECTED });
        return say("rejected");
      }
      const signature = await account.signTypedData(JSON.parse(args[1]));
      await answer({ result: signature });
      say("signed", { signature });
    } catch (error) {
      say("error", { during: method, message: String(error?.message || error) });
    }
  });

  await client.core.pairing.pair({ uri: config.uri });
  say("ready", { address: account.address });
}

process.on("SIGTERM", () => process.exit(0));
main().catch((error) => {
  say("error", { during: "start", message: String(error?.message || error) });
  process.exit(1);
});
