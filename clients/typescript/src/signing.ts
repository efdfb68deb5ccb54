/**
 * Signed HTTP requests, docs/protocol.md section 3 (normative).
 *
 * Every authenticated request carries
 * `Oms-Wallet-Signature: alg="<alg>", cred="<credentialId>", nonce=<n>, ts=<ms>, sig="0x<hex>"`
 * over the seven-line preimage built by {@link requestPreimage}. Two algorithms:
 * `ecdsa-p256k-eip191` (secp256k1 over the EIP-191 personal-message hash, 65 bytes r‖s‖v, v 27
 * or 28, low s) through `@noble/curves`, and `ecdsa-p256-sha256` (P-256 over SHA-256, 64 bytes
 * r‖s, low s) through WebCrypto's `crypto.subtle`.
 */

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { bytesToBigInt, concat, toHex, uintBytes, utf8, type Hex } from "./bytes.js";
import { ALG_P256, ALG_SECP256K1, PREIMAGE_TAG } from "./generated/protocol.js";

export { ALG_P256, ALG_SECP256K1, PREIMAGE_TAG };

export type Alg = typeof ALG_SECP256K1 | typeof ALG_P256;

/** Something that signs request preimages for one `alg` (a key, a device, an HSM). */
export interface RequestSigner {
  readonly alg: Alg;
  /** What the signer registers as its `publicKey`: an address, or 0x hex of a P-256 key. */
  readonly publicKey: string;
  sign(preimage: Uint8Array): Promise<Uint8Array>;
}

const METHOD = /^[A-Za-z]{1,16}$/;
const PATH = /^\/[\x21-\x7e]*$/;
const CREDENTIAL_ID = /^[A-Za-z0-9._~:-]{1,128}$/;
const MAX_DECIMAL = (1n << 63n) - 1n;

function checkDecimal(value: bigint | number, what: string): string {
  const big = BigInt(value);
  if (big < 0n || big > MAX_DECIMAL) throw new RangeError(`${what} must be in [0, 2**63 - 1]`);
  return big.toString();
}

/** The signed bytes: seven lines joined by `\n`, no trailing newline (protocol section 3). */
export function requestPreimage(
  method: string,
  pathWithQuery: string,
  credentialId: string,
  nonce: bigint | number,
  tsMs: bigint | number,
  body: Uint8Array,
): Uint8Array {
  if (!METHOD.test(method)) throw new TypeError("method must be 1-16 ASCII letters");
  if (!PATH.test(pathWithQuery)) {
    throw new TypeError("path must start with / and be printable ASCII without spaces");
  }
  if (!CREDENTIAL_ID.test(credentialId)) {
    throw new TypeError("credential id must be 1-128 characters of A-Z a-z 0-9 . _ ~ : -");
  }
  const lines = [
    PREIMAGE_TAG,
    method.toUpperCase(),
    pathWithQuery,
    credentialId,
    checkDecimal(nonce, "nonce"),
    checkDecimal(tsMs, "ts"),
    toHex(sha256(body)).slice(2),
  ];
  return utf8(lines.join("\n"));
}

export interface SignatureHeader {
  alg: Alg;
  cred: string;
  nonce: bigint | number;
  ts: bigint | number;
  sig: Uint8Array;
}

const SIGNATURE_LENGTHS: Record<Alg, number> = { [ALG_SECP256K1]: 65, [ALG_P256]: 64 };

/** The canonical header value. */
export function formatSignatureHeader(header: SignatureHeader): string {
  if (header.sig.length !== SIGNATURE_LENGTHS[header.alg]) {
    throw new TypeError(`an ${header.alg} signature is ${SIGNATURE_LENGTHS[header.alg]} bytes`);
  }
  return (
    `alg="${header.alg}", cred="${header.cred}", nonce=${checkDecimal(header.nonce, "nonce")}, ` +
    `ts=${checkDecimal(header.ts, "ts")}, sig="${toHex(header.sig)}"`
  );
}

/** The `Oms-Wallet-Signature` value for one request. */
export async function signRequest(
  signer: RequestSigner,
  credentialId: string,
  method: string,
  path: string,
  body: Uint8Array,
  nonce: bigint | number,
  tsMs: bigint | number,
): Promise<string> {
  const preimage = requestPreimage(method, path, credentialId, nonce, tsMs, body);
  const sig = await signer.sign(preimage);
  return formatSignatureHeader({ alg: signer.alg, cred: credentialId, nonce, ts: tsMs, sig });
}

// ----------------------------------------------------------------------------- secp256k1

/** EIP-191 `personal_sign` hash: keccak256("\x19Ethereum Signed Message:\n" + len + message). */
export function personalMessageHash(message: Uint8Array): Uint8Array {
  return keccak_256(concat(utf8(`\x19Ethereum Signed Message:\n${message.length}`), message));
}

/** The lower-case address of a secp256k1 public key (33 or 65 bytes). */
export function addressOfPublicKey(publicKey: Uint8Array): Hex {
  const point = secp256k1.Point.fromBytes(publicKey);
  const uncompressed = point.toBytes(false);
  return toHex(keccak_256(uncompressed.subarray(1)).subarray(12));
}

/** A 65-byte `r ‖ s ‖ v` signature (v 27 or 28, low s) of a 32-byte digest. */
export function signDigest(secret: Uint8Array, digest: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new TypeError("a digest is 32 bytes");
  const recovered = secp256k1.sign(digest, secret, { prehash: false, format: "recovered" });
  // noble's "recovered" format is recovery byte first, then r ‖ s.
  return concat(recovered.subarray(1, 65), new Uint8Array([27 + recovered[0]!]));
}

/** The address that signed `digest` (65-byte `r ‖ s ‖ v`); throws on a high-s signature. */
export function recoverAddress(digest: Uint8Array, signature: Uint8Array): Hex {
  if (signature.length !== 65) throw new TypeError("a recoverable signature is 65 bytes");
  const v = signature[64]!;
  if (v !== 27 && v !== 28) throw new TypeError("v must be 27 or 28");
  const s = bytesToBigInt(signature.subarray(32, 64));
  if (s > secp256k1.Point.CURVE().n / 2n) throw new TypeError("high-s signature (malleable)");
  const recovered = concat(new Uint8Array([v - 27]), signature.subarray(0, 64));
  const publicKey = secp256k1.recoverPublicKey(recovered, digest, { prehash: false });
  return addressOfPublicKey(publicKey);
}

/** `ecdsa-p256k-eip191`: secp256k1 over the EIP-191 hash of the preimage. */
export class Secp256k1RequestSigner implements RequestSigner {
  readonly alg = ALG_SECP256K1;
  readonly address: Hex;
  readonly #secret: Uint8Array;

  constructor(secret: Uint8Array) {
    if (!secp256k1.utils.isValidSecretKey(secret)) throw new TypeError("invalid secp256k1 secret");
    this.#secret = Uint8Array.from(secret);
    this.address = addressOfPublicKey(secp256k1.getPublicKey(this.#secret, false));
  }

  /** A fresh random key. */
  static random(): Secp256k1RequestSigner {
    return new Secp256k1RequestSigner(secp256k1.utils.randomSecretKey());
  }

  get publicKey(): string {
    return this.address;
  }

  async sign(preimage: Uint8Array): Promise<Uint8Array> {
    return signDigest(this.#secret, personalMessageHash(preimage));
  }

  /** Sign a 32-byte digest (a grant's, a registration challenge's) with this key. */
  signDigest(digest: Uint8Array): Uint8Array {
    return signDigest(this.#secret, digest);
  }

  toString(): string {
    return `Secp256k1RequestSigner(address=${this.address})`; // never the secret
  }
}

// --------------------------------------------------------------------------------- P-256

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** `ecdsa-p256-sha256`: P-256 over SHA-256 of the preimage, through WebCrypto. */
export class P256RequestSigner implements RequestSigner {
  readonly alg = ALG_P256;
  readonly publicKeyBytes: Uint8Array;
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey, publicKeyBytes: Uint8Array) {
    this.#key = key;
    this.publicKeyBytes = publicKeyBytes;
  }

  /** A signer over an existing WebCrypto key pair (the private key may be non-extractable). */
  static async fromKeyPair(pair: CryptoKeyPair): Promise<P256RequestSigner> {
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return new P256RequestSigner(pair.privateKey, raw);
  }

  /** A fresh non-extractable key pair. */
  static async generate(): Promise<P256RequestSigner> {
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ]);
    return P256RequestSigner.fromKeyPair(pair);
  }

  /** The 65-byte uncompressed key as registered: 0x hex. */
  get publicKey(): string {
    return toHex(this.publicKeyBytes);
  }

  async sign(preimage: Uint8Array): Promise<Uint8Array> {
    const signature = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, this.#key, Uint8Array.from(preimage)),
    );
    const s = bytesToBigInt(signature.subarray(32));
    if (s <= P256_N / 2n) return signature;
    return concat(signature.subarray(0, 32), uintBytes(P256_N - s, 32)); // low s, same signature
  }
}
