/** Cross-language vectors (tests/clients/vectors.json, written by the Python side): the
 * request preimages and signatures, the grant digest and the owner's signature of it, and the
 * webhook signature are byte for byte what the service computes. */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  GrantVerificationError,
  P256RequestSigner,
  Secp256k1RequestSigner,
  WebhookVerificationError,
  fromHex,
  grantDocumentDigest,
  checkRegistrationChallenge,
  recoverAddress,
  registrationDigest,
  requestPreimage,
  signRequest,
  toHex,
  verifyGrant,
  verifyWebhook,
} from "../src/index.js";
import { vectors } from "./support.js";

const V = vectors();

test("request preimages are the protocol's seven lines, byte for byte", () => {
  for (const r of V.requests) {
    const preimage = requestPreimage(
      r.method, r.path, r.credentialId, BigInt(r.nonce), BigInt(r.ts), fromHex(r.bodyHex),
    );
    assert.equal(new TextDecoder().decode(preimage), r.preimage);
  }
});

test("secp256k1 request signatures equal the Python SDK's (deterministic ECDSA)", async () => {
  const signer = new Secp256k1RequestSigner(fromHex(V.secp256k1.secret));
  assert.equal(signer.address, V.secp256k1.address);
  for (const r of V.requests) {
    const header = await signRequest(
      signer, r.credentialId, r.method, r.path, fromHex(r.bodyHex), BigInt(r.nonce), BigInt(r.ts),
    );
    assert.equal(header, r.secp256k1Header);
  }
});

test("P-256 signatures made in Python verify with WebCrypto, and ours are low-s", async () => {
  const key = await crypto.subtle.importKey(
    "raw", fromHex(V.p256.publicKey), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"],
  );
  for (const r of V.requests) {
    const ok = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" }, key, fromHex(r.p256Signature), new TextEncoder().encode(r.preimage),
    );
    assert.ok(ok, r.path);
  }
  const signer = await P256RequestSigner.generate();
  const half = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n / 2n;
  for (let i = 0; i < 20; i++) {
    const sig = await signer.sign(new TextEncoder().encode(`message ${i}`));
    assert.equal(sig.length, 64);
    assert.ok(BigInt(toHex(sig.subarray(32))) <= half);
  }
});

test("the grant digest is recomputed locally and the owner's signature matches", () => {
  const g = V.grant;
  assert.equal(toHex(grantDocumentDigest(g.pending.grant)), g.pending.grantDigest);
  const digest = verifyGrant(g.pending, {
    account: g.pending.grant.message.account,
    credentialId: g.credentialId,
    requested: { chainId: 1, expiresAt: g.pending.expiresAt, capabilities: ["erc20.transfer"] },
  });
  const owner = new Secp256k1RequestSigner(fromHex(g.ownerSecret));
  assert.equal(toHex(owner.signDigest(digest)), g.ownerSignature);
  assert.equal(recoverAddress(digest, fromHex(g.ownerSignature)), g.ownerAddress);
});

test("a grant that is not what the answer claims is refused before any signature", () => {
  const g = V.grant;
  const tamper = (edit: (p: any) => void) => {
    const copy = structuredClone(g.pending);
    edit(copy);
    return copy;
  };
  const cases: Array<[string, any, object]> = [
    ["another digest", tamper((p) => (p.grantDigest = "0x" + "00".repeat(32))), {}],
    ["a widened limit", tamper((p) => (p.grant.message.envelope.maxUses = "21")), {}],
    ["another primary type", tamper((p) => (p.grant.primaryType = "SessionCall")), {}],
    ["extra types", tamper((p) => (p.grant.types.Extra = [])), {}],
    ["another domain", tamper((p) => (p.grant.domain.name = "Other")), {}],
    ["another account", g.pending, { account: "0x" + "22".repeat(20) }],
    ["another credential", g.pending, { credentialId: "cred_other" }],
    ["another session key", tamper((p) => (p.sessionKey = "0x" + "44".repeat(20))), {}],
    ["another expiry", g.pending, { requested: { expiresAt: 1 } }],
    ["another chain", g.pending, { requested: { chainId: 10 } }],
  ];
  for (const [what, pending, expect] of cases) {
    assert.throws(() => verifyGrant(pending, expect), GrantVerificationError, what);
  }
});

test("webhook signatures verify, and tampering, staleness and replays are refused", () => {
  const w = V.webhook;
  const body = fromHex(w.bodyHex);
  const headers = {
    "webhook-id": w.id,
    "webhook-timestamp": w.timestamp,
    "webhook-signature": `v1,ignored ${w.signature}`,
  };
  const now = Number(w.timestamp) + 10;
  const seen = new Set<string>();
  const event = verifyWebhook(w.publicKey, headers, body, { nowS: now, seen });
  assert.equal(event.eventId, w.id);
  assert.throws(() => verifyWebhook(w.publicKey, headers, body, { nowS: now, seen }), WebhookVerificationError);
  assert.throws(
    () => verifyWebhook(w.publicKey, headers, body, { nowS: now + 600 }),
    WebhookVerificationError,
  );
  const altered = Uint8Array.from(body);
  const at = altered.length - 3;
  altered[at] = altered[at]! ^ 1;
  assert.throws(() => verifyWebhook(w.publicKey, headers, altered, { nowS: now }), WebhookVerificationError);
  assert.throws(
    () => verifyWebhook(`whpk_${w.publicKey}`, { ...headers, "webhook-id": "evt_other" }, body, { nowS: now }),
    WebhookVerificationError,
  );
  assert.equal(verifyWebhook(`whpk_${w.publicKey}`, headers, body, { nowS: now }).eventId, w.id);
});

test("the wallet-registration digest equals the service's, and a changed field is refused", () => {
  const r = V.registration;
  assert.equal(toHex(registrationDigest(r)), r.digest);
  const challenge = {
    serviceId: r.service, chainId: r.chainId, account: r.account, owner: r.owner,
    nonce: r.nonce, deadline: r.deadline, digest: r.digest,
  };
  const expect = { account: r.account, publicKey: r.publicKey, owner: r.owner };
  assert.equal(toHex(checkRegistrationChallenge(challenge, expect)), r.digest);
  assert.throws(() => checkRegistrationChallenge({ ...challenge, deadline: r.deadline + 1 }, expect));
  assert.throws(() => checkRegistrationChallenge(challenge, { ...expect, publicKey: V.secp256k1.address }));
  assert.throws(() => checkRegistrationChallenge(challenge, { ...expect, owner: V.secp256k1.address }));
});
