/**
 * The seed story against a live `sessionward serve`, through this package only: a backend
 * registers, the owner creates a wallet, authorizes the seed envelope, checks and signs the
 * grant digest, approves; the backend prepares and executes a swap; an out-of-scope call is
 * refused; a P-256 device pairs and reads; the owner revokes and the next execute is refused;
 * ops freezes and lifts the wallet, and the freeze's alert webhook verifies.
 *
 * The harness (tests/clients/test_typescript_client.py) starts the server and sets
 * SESSIONWARD_URL, SESSIONWARD_FUND_URL (a test-only helper that mints demo USDX to the new
 * account, as the demo does), the demo contracts' addresses and an ops credential. Without
 * SESSIONWARD_URL the story is skipped.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { keccak_256 } from "@noble/hashes/sha3.js";

import {
  BackendClient,
  OpsClient,
  OwnerClient,
  P256RequestSigner,
  Secp256k1RequestSigner,
  SessionWardApiError,
  concat,
  fromHex,
  toHex,
  uintBytes,
  utf8,
  verifyWebhook,
} from "../src/index.js";

const env = process.env;
const URL = env.SESSIONWARD_URL;
const USDX_UNIT = 10n ** 6n;
const OTHER_ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564";

function word(value: bigint | string): Uint8Array {
  return uintBytes(typeof value === "string" ? BigInt(value) : value, 32);
}

/** swapExactTokensForTokens(uint256,uint256,address[],address,uint256) calldata. */
function swapCall(amountIn: bigint, path: string[], to: string, deadline: number): Uint8Array {
  const selector = keccak_256(
    utf8("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"),
  ).subarray(0, 4);
  return concat(
    selector,
    word(amountIn),
    word(0n),
    word(160n), // offset of the path array: five head words
    word(to),
    word(BigInt(deadline)),
    word(BigInt(path.length)),
    ...path.map((address) => word(address)),
  );
}

async function refusedWith(code: string, action: () => Promise<unknown>): Promise<SessionWardApiError> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof SessionWardApiError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`allowed; must be refused with ${code}`);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const now = () => Math.floor(Date.now() / 1000);

test("the seed story runs against a live server", { skip: URL === undefined }, async (t) => {
  const url = URL!;
  const router = env.SESSIONWARD_ROUTER!;
  const usdx = env.SESSIONWARD_USDX!;
  const wethx = env.SESSIONWARD_WETHX!;
  const chainId = Number(env.SESSIONWARD_CHAIN_ID);

  const backend = new BackendClient(url, Secp256k1RequestSigner.random());
  const ownerSecret = crypto.getRandomValues(new Uint8Array(32));
  const owner = new OwnerClient(url, new Secp256k1RequestSigner(ownerSecret));
  let credentialId = "";
  let walletId = "";
  let account = "";
  let sessionId = "";

  await t.test("a backend registers its credential, proving it holds the key", async () => {
    const credential = await backend.register("TS Trading Agent", "https://agent.example", now() + 86400);
    credentialId = credential.credentialId;
    assert.equal(backend.credentialId, credentialId);
    assert.equal(credential.publicKey.toLowerCase(), backend.publicKey);
  });

  await t.test("the owner creates a wallet (signed by the owner key itself)", async () => {
    const wallet = await owner.createWallet();
    walletId = wallet.walletId;
    account = wallet.account;
    assert.equal(wallet.chainId, chainId);
    assert.equal(owner.credentialId, wallet.ownerCredentialId);
    const funded = await fetch(env.SESSIONWARD_FUND_URL!, {
      method: "POST",
      body: JSON.stringify({ account, ownerSecret: toHex(ownerSecret) }),
    });
    assert.equal(funded.status, 200, await funded.text());
  });

  await t.test("a registration challenge from the server is recomputed and checked here", async () => {
    const other = new OwnerClient(url, Secp256k1RequestSigner.random());
    const challenge = await other.saltChallenge(crypto.getRandomValues(new Uint8Array(32)));
    assert.equal(toHex(challenge.digestBytes), challenge.digest);
    assert.equal(challenge.owner, (other.signer as Secp256k1RequestSigner).address);
  });

  await t.test("the owner authorizes the seed envelope, checks the grant and approves", async () => {
    const inspected = await owner.inspectCredential(credentialId);
    assert.equal(inspected.appName, "TS Trading Agent");
    const envelope = {
      capabilities: ["swap.execute"],
      maxValueUsd: 500,
      allowedDestinations: [router],
      chainId,
      expiresAt: now() + 900,
    };
    const pending = await owner.authorizeRemoteAccess(credentialId, undefined, envelope);
    assert.equal(pending.status, "pending");
    assert.equal(toHex(owner.grantDigest(pending)), pending.grantDigest);
    const signature = owner.signGrant(pending);
    const approved = await owner.approveSession(pending.sessionId, signature);
    assert.equal(approved.sessionId, pending.sessionId);
    sessionId = pending.sessionId;
    await until("the session to be installed on chain", async () => {
      const session = await owner.getSession(sessionId);
      return session.lifecycle === "active" ? session : undefined;
    });
  });

  await t.test("the backend prepares and executes a swap within the caps", async () => {
    const data = swapCall(100n * USDX_UNIT, [usdx, wethx], account, now() + 600);
    const quote = await backend.prepareTransaction(walletId, sessionId, router, 0, data);
    assert.equal(quote.status, "quoted");
    assert.ok(quote.intent.length >= 1);
    const done = await backend.execute(quote.txnId);
    const final = await backend.waitForTransaction(done.txnId);
    assert.equal(final.status, "executed", String(final.failure));
    assert.match(String(final.txHash), /^0x[0-9a-f]{64}$/);
    const usage = await backend.getSessionUsage(sessionId);
    const usd = usage.limits.find((limit) => limit.limit === "maxValueUsd");
    assert.ok(usd !== undefined && BigInt(usd.spent) > 0n, JSON.stringify(usage));
  });

  await t.test("a swap session has no ERC-7715 form: ExportPermission says so", async () => {
    // Only ERC-20 transfer allowances to named payees export (docs/protocol.md section 11).
    const refusal = await refusedWith("PERMISSION_TYPE_UNSUPPORTED", () =>
      backend.exportPermission(sessionId),
    );
    assert.equal(refusal.status, 400);
  });

  await t.test("a swap through another router is refused with its reason", async () => {
    const data = swapCall(10n * USDX_UNIT, [usdx, wethx], account, now() + 600);
    const refusal = await refusedWith("TARGET_NOT_ALLOWED", () =>
      backend.prepareTransaction(walletId, sessionId, OTHER_ROUTER, 0, data),
    );
    assert.equal(refusal.status, 403);
    assert.ok(refusal.reasons.includes("TARGET_NOT_ALLOWED"));
  });

  await t.test("a P-256 device pairs with a one-time code and signs through WebCrypto", async () => {
    const code = await owner.createPairingCode();
    const device = new OwnerClient(url, await P256RequestSigner.generate());
    const paired = await device.pairDevice(code.pairingCode, "TS test device");
    assert.equal(paired.walletId, walletId);
    const access = await device.listAccess();
    assert.ok(access.items.some((session) => session.sessionId === sessionId));
  });

  await t.test("the owner revokes; the backend's next swap is refused", async () => {
    const revoked = await owner.revokeAccess(undefined, credentialId, sessionId);
    assert.ok(JSON.stringify(revoked).includes(sessionId));
    const data = swapCall(10n * USDX_UNIT, [usdx, wethx], account, now() + 600);
    await refusedWith("SESSION_REVOKED", async () => {
      const quote = await backend.prepareTransaction(walletId, sessionId, router, 0, data);
      return backend.execute(quote.txnId);
    });
  });

  await t.test("ops freezes the wallet and lifts the freeze", { skip: !env.SESSIONWARD_OPS_SECRET }, async () => {
    const ops = new OpsClient(
      url,
      new Secp256k1RequestSigner(fromHex(env.SESSIONWARD_OPS_SECRET!)),
      env.SESSIONWARD_OPS_ID!,
    );
    await ops.emergencyRevoke("wallet", walletId, "TS client drill");
    await refusedWith("REASON_REQUIRED", () => ops.emergencyRevoke("wallet", walletId, ""));
    const lifted = await ops.liftFreeze("wallet", walletId);
    assert.ok(lifted !== undefined);
  });

  await t.test("the alert webhooks (revoked-session attempt, freeze) verify with the service's key", { skip: !env.SESSIONWARD_WEBHOOKS_URL }, async () => {
    type Delivery = { headers: Record<string, string>; body: string };
    const seen = new Set<string>();
    const key = env.SESSIONWARD_WEBHOOK_PUBLIC_KEY!;
    const verified = (d: Delivery) =>
      verifyWebhook(key, d.headers, Uint8Array.from(atob(d.body), (c) => c.charCodeAt(0)));
    const events = await until("the freeze's alert webhook", async () => {
      const deliveries = (await (await fetch(env.SESSIONWARD_WEBHOOKS_URL!)).json()) as Delivery[];
      const events = deliveries.map(verified); // every delivery verifies
      const rules = events.map((e) => (e.alert as { rule: string }).rule);
      return rules.includes("emergency_revoke") ? { deliveries, rules } : undefined;
    });
    assert.ok(events.rules.includes("post_revocation_attempt"), String(events.rules));
    const first = events.deliveries[0]!;
    const body = Uint8Array.from(atob(first.body), (c) => c.charCodeAt(0));
    verifyWebhook(key, first.headers, body, { seen });
    assert.throws(() => verifyWebhook(key, first.headers, body, { seen }), /already accepted/);
    const otherKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    assert.throws(() => verifyWebhook(otherKey, first.headers, body), /no valid v1a signature/);
  });
});
