// Request signatures in the browser (docs/protocol.md section 3), alg "ecdsa-p256-sha256".
//
// The preimage is seven lines joined by "\n" (no trailing newline):
//   SessionWard-Request/1, METHOD, path with query as sent, credentialId, nonce, ts (ms),
//   lower-case hex SHA-256 of the raw body bytes.
// It is signed with ECDSA P-256 over SHA-256 by WebCrypto, which answers r || s (64 bytes);
// the server refuses s > n/2 (SIGNATURE_MALLEABLE), so s is normalised to n - s when high.
//
// Signing keys are non-extractable CryptoKeys: an owner device's key is generated so
// (device.js), a pasted ops JWK is imported so. Nothing here ever puts a key in a request, a
// URL, storage or the DOM.

export const PREIMAGE_TAG = "SessionWard-Request/1";
export const ALG = "ecdsa-p256-sha256";
export const SIGNATURE_HEADER = "Oms-Wallet-Signature";

// The order of the P-256 group, and half of it (the largest s the server accepts).
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = N >> 1n;
const CREDENTIAL_ID = /^[A-Za-z0-9._~:-]{1,128}$/;
const PATH = /^\/[\x21-\x7e]*$/;
const METHOD = /^[A-Za-z]{1,16}$/;

const encoder = new TextEncoder();

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytesToBigInt(bytes) {
  return bytes.length === 0 ? 0n : BigInt("0x" + toHex(bytes));
}

function bigIntTo32Bytes(value) {
  const hex = value.toString(16).padStart(64, "0");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export async function sha256Hex(bytes) {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** The preimage text; throws on a field outside the protocol's grammar (as the server would). */
export function preimage(method, pathWithQuery, credentialId, nonce, tsMs, bodySha256Hex) {
  if (!METHOD.test(method)) throw new Error("method must be 1-16 ASCII letters");
  if (!PATH.test(pathWithQuery)) throw new Error("path must start with / and be printable ASCII");
  if (!CREDENTIAL_ID.test(credentialId)) throw new Error("malformed credential id");
  return [
    PREIMAGE_TAG,
    method.toUpperCase(),
    pathWithQuery,
    credentialId,
    BigInt(nonce).toString(10),
    BigInt(tsMs).toString(10),
    bodySha256Hex,
  ].join("\n");
}

/** r || s with s replaced by n - s when s > n/2 (a new array; the input is left as is). */
export function lowS(signature) {
  if (signature.length !== 64) throw new Error("a P-256 signature is 64 bytes r || s");
  const s = bytesToBigInt(signature.slice(32));
  const out = new Uint8Array(signature);
  if (s > HALF_N) out.set(bigIntTo32Bytes(N - s), 32);
  return out;
}

function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The 65-byte uncompressed public key of a P-256 JWK, as 0x hex (what the server registered). */
export function publicKeyHex(jwk) {
  return "0x04" + toHex(base64UrlToBytes(jwk.x)) + toHex(base64UrlToBytes(jwk.y));
}

/** Import a P-256 private JWK for signing only, non-extractable. Only the curve fields are
 * passed on, so a JWK's own ``key_ops``/``ext`` cannot widen what the key may do. */
export async function importSigningKey(jwk) {
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d || !jwk.x || !jwk.y) {
    throw new Error("the key must be a P-256 private key in JWK form (kty EC, crv P-256, d)");
  }
  const clean = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d };
  return crypto.subtle.importKey("jwk", clean, { name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
}

/** Strictly increasing nonces, never below the clock in nanoseconds, so that a reloaded page
 * does not reuse its previous nonces; a random offset separates two tabs in one millisecond. */
export class NonceSource {
  #last = 0n;

  next() {
    const jitter = crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000;
    const floor = BigInt(Date.now()) * 1_000_000n + BigInt(jitter);
    this.#last = floor > this.#last ? floor : this.#last + 1n;
    return this.#last;
  }
}

/** Signs requests as one credential. */
export class RequestSigner {
  #key;

  constructor(key, credentialId) {
    if (!CREDENTIAL_ID.test(credentialId)) throw new Error("malformed credential id");
    this.#key = key;
    this.credentialId = credentialId;
    this.nonces = new NonceSource();
  }

  /** The signature over ``text`` (the preimage), 64 bytes r || s with low s. */
  async signText(text) {
    const raw = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      this.#key,
      encoder.encode(text),
    );
    return lowS(new Uint8Array(raw));
  }

  /** The ``Oms-Wallet-Signature`` header value for one request. */
  async header(method, pathWithQuery, bodyBytes, { nonce, tsMs } = {}) {
    const n = nonce ?? this.nonces.next();
    const ts = tsMs ?? Date.now();
    const text = preimage(method, pathWithQuery, this.credentialId, n, ts, await sha256Hex(bodyBytes));
    const sig = await this.signText(text);
    return `alg="${ALG}", cred="${this.credentialId}", nonce=${n}, ts=${ts}, sig="0x${toHex(sig)}"`;
  }
}

/** An API refusal: the HTTP status and the error document's code and message. */
export class ApiCallError extends Error {
  constructor(status, doc) {
    const code = (doc && doc.code) || "HTTP_" + status;
    super(`${code}: ${(doc && doc.msg) || "request failed"}`);
    this.status = status;
    this.code = code;
    this.doc = doc;
  }
}

async function parsed(response) {
  let doc = null;
  try {
    doc = await response.json();
  } catch (_) {
    doc = null;
  }
  if (!response.ok) throw new ApiCallError(response.status, doc);
  return doc;
}

const FETCH_DEFAULTS = { credentials: "omit", cache: "no-store", redirect: "error" };

// A 429 RATE_LIMITED_REQUESTS changed nothing on the server: wait its Retry-After (bounded)
// and send again, signed afresh, a few times (a page with many sessions reads them in a burst).
const RATE_LIMIT_TRIES = 5;
const RATE_LIMIT_MAX_WAIT_MS = 10_000;

/** ``POST /v1/Waas/<method>`` with a JSON body, signed; the answer's JSON or an ApiCallError. */
export async function callMethod(signer, method, body, { idempotencyKey } = {}) {
  const path = "/v1/Waas/" + method;
  const bytes = encoder.encode(JSON.stringify(body));
  for (let attempt = 1; ; attempt++) {
    const headers = {
      "Content-Type": "application/json",
      [SIGNATURE_HEADER]: await signer.header("POST", path, bytes),
    };
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const response = await fetch(path, { ...FETCH_DEFAULTS, method: "POST", headers, body: bytes });
    if (response.status !== 429 || attempt >= RATE_LIMIT_TRIES) return parsed(response);
    const seconds = Number(response.headers.get("Retry-After")) || 1;
    await new Promise((done) => setTimeout(done, Math.min(seconds * 1000, RATE_LIMIT_MAX_WAIT_MS)));
  }
}

/** ``POST /v1/Waas/<method>`` without a signature (public methods: InspectCredential). */
export async function callPublic(method, body) {
  const path = "/v1/Waas/" + method;
  return parsed(
    await fetch(path, {
      ...FETCH_DEFAULTS,
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

/** A signed ``GET`` of ``pathWithQuery`` (empty body). */
export async function signedGet(signer, pathWithQuery) {
  const header = await signer.header("GET", pathWithQuery, new Uint8Array(0));
  return parsed(
    await fetch(pathWithQuery, { ...FETCH_DEFAULTS, method: "GET", headers: { [SIGNATURE_HEADER]: header } }),
  );
}

/** A fresh Idempotency-Key (one per user action, so a retried click is answered once). */
export function newIdempotencyKey() {
  return "ui-" + toHex(crypto.getRandomValues(new Uint8Array(16)));
}
