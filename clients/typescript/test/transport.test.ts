/** The transport with a fake `fetch`: what is signed is what is sent, error answers become
 * SessionWardApiError with every field, a 429 RATE_LIMITED_REQUESTS is re-sent (re-signed,
 * fresh nonce) after its Retry-After, floats are refused before anything is sent. */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NonceCounter,
  Secp256k1RequestSigner,
  SessionWardApiError,
  Transport,
  personalMessageHash,
  recoverAddress,
  requestPreimage,
} from "../src/index.js";

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

function fakeFetch(answers: Array<[number, string, Record<string, string>?]>, sent: Sent[]) {
  return (async (url: URL, init: RequestInit) => {
    sent.push({
      url: String(url),
      headers: init.headers as Record<string, string>,
      body: init.body as Uint8Array,
    });
    const [status, text, headers] = answers.shift()!;
    return new Response(text, { status, headers: headers ?? {} });
  }) as unknown as typeof fetch;
}

function parseHeader(value: string) {
  const fields = Object.fromEntries(
    value.split(", ").map((part) => {
      const [key, raw] = part.split("=") as [string, string];
      return [key, raw.replace(/^"|"$/g, "")];
    }),
  );
  return fields as { alg: string; cred: string; nonce: string; ts: string; sig: string };
}

test("the signature covers the exact bytes, path and nonce that are sent", async () => {
  const signer = Secp256k1RequestSigner.random();
  const sent: Sent[] = [];
  const transport = new Transport("http://node.test/base/", {
    fetch: fakeFetch([[200, '{"ok":true}']], sent),
  });
  const answer = await transport.call("GetSession", { sessionId: "ses_1" }, {
    signer,
    credentialId: "cred_1",
  });
  assert.deepEqual(answer, { ok: true });
  const request = sent[0]!;
  assert.equal(request.url, "http://node.test/base/v1/Waas/GetSession");
  assert.equal(new TextDecoder().decode(request.body), '{"sessionId":"ses_1"}');
  const header = parseHeader(request.headers["Oms-Wallet-Signature"]!);
  assert.equal(header.alg, "ecdsa-p256k-eip191");
  assert.equal(header.cred, "cred_1");
  const preimage = requestPreimage(
    "POST", "/base/v1/Waas/GetSession", "cred_1", BigInt(header.nonce), BigInt(header.ts), request.body,
  );
  const sig = Uint8Array.from(Buffer.from(header.sig.slice(2), "hex"));
  assert.equal(recoverAddress(personalMessageHash(preimage), sig), signer.address);
});

test("an error answer carries its code, reason, reasons and request id", async () => {
  const document = {
    error: "PolicyDenied", code: "TARGET_NOT_ALLOWED", reason: "allowedDestinations",
    msg: "no", status: 403, requestId: "req_1", reasons: ["TARGET_NOT_ALLOWED"],
  };
  const transport = new Transport("http://node.test", {
    fetch: fakeFetch([[403, JSON.stringify(document)]], []),
  });
  const error = await transport.call("Execute", { txnId: "t" }).catch((e: unknown) => e);
  assert.ok(error instanceof SessionWardApiError);
  assert.equal(error.status, 403);
  assert.equal(error.code, "TARGET_NOT_ALLOWED");
  assert.equal(error.kind, "PolicyDenied");
  assert.equal(error.reason, "allowedDestinations");
  assert.deepEqual(error.reasons, ["TARGET_NOT_ALLOWED"]);
  assert.equal(error.requestId, "req_1");
  const proxy = new Transport("http://node.test", { fetch: fakeFetch([[502, "<html>bad gateway"]], []) });
  const other = await proxy.call("Execute", { txnId: "t" }).catch((e: unknown) => e);
  assert.ok(other instanceof SessionWardApiError);
  assert.equal(other.code, "HTTP_ERROR");
});

test("a request refused for its rate is re-sent, re-signed with a fresh nonce", async () => {
  const signer = Secp256k1RequestSigner.random();
  const sent: Sent[] = [];
  const limited = JSON.stringify({ code: "RATE_LIMITED_REQUESTS", msg: "slow down", status: 429 });
  const transport = new Transport("http://node.test", {
    fetch: fakeFetch([[429, limited, { "Retry-After": "0" }], [200, "{}"]], sent),
  });
  await transport.call("ListSessions", { limit: 1 }, { signer, credentialId: "c" });
  assert.equal(sent.length, 2);
  const nonces = sent.map((s) => parseHeader(s.headers["Oms-Wallet-Signature"]!).nonce);
  assert.notEqual(nonces[0], nonces[1]);
  const tooLong = new Transport("http://node.test", {
    fetch: fakeFetch([[429, limited, { "Retry-After": "60" }]], []),
  });
  await assert.rejects(tooLong.call("ListSessions", {}, { signer, credentialId: "c" }), SessionWardApiError);
});

test("floats and bigints are refused before anything is sent", async () => {
  const sent: Sent[] = [];
  const transport = new Transport("http://node.test", { fetch: fakeFetch([], sent) });
  await assert.rejects(transport.call("X", { value: 1.5 }), TypeError);
  await assert.rejects(transport.call("X", { args: [{ n: 10n }] }), TypeError);
  assert.equal(sent.length, 0);
});

test("nonces strictly increase and start at the clock in nanoseconds", () => {
  const counter = new NonceCounter();
  const first = counter.next();
  assert.ok(first >= BigInt(Date.now() - 1000) * 1_000_000n);
  let last = first;
  for (let i = 0; i < 1000; i++) {
    const next = counter.next();
    assert.ok(next > last);
    last = next;
  }
});
