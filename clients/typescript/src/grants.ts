/**
 * Checking a session grant before the owner signs it: never sign a digest not recomputed.
 *
 * AuthorizeRemoteAccess answers the grant's `eth_signTypedData_v4` document and its
 * `grantDigest`. {@link verifyGrant} recomputes the EIP-712 digest of the document here
 * (`./eip712.ts`), checks the document uses exactly the protocol's types and domain, that it
 * binds the expected account, chain, session key and credential, and that it says what the owner
 * asked for (chain, expiry, capabilities), and only then returns the digest to sign. A service
 * that shows the owner one grant and asks for a signature over another is caught here.
 */

import { keccak_256 } from "@noble/hashes/sha3.js";

import { toHex, utf8 } from "./bytes.js";
import { TypedDataError, typedDataDigest, type TypedData } from "./eip712.js";
import { DOMAIN_NAME, DOMAIN_VERSION, GRANT_TYPES, PRIMARY_TYPE } from "./generated/protocol.js";

export class GrantVerificationError extends Error {
  override name = "GrantVerificationError";
}

function canonical(value: unknown): string {
  return JSON.stringify(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function sameAddress(a: unknown, b: unknown): boolean {
  return (
    typeof a === "string" &&
    typeof b === "string" &&
    /^0x[0-9a-fA-F]{40}$/.test(a) &&
    a.toLowerCase() === b.toLowerCase()
  );
}

function integer(value: unknown): bigint | undefined {
  try {
    if (typeof value === "number" || typeof value === "bigint") return BigInt(value);
    if (typeof value === "string" && /^[0-9]+$/.test(value)) return BigInt(value);
  } catch {
    return undefined;
  }
  return undefined;
}

/** `keccak256(utf8(credentialId))`: the grant's `credential` field. */
export function credentialHash(credentialId: string): string {
  return toHex(keccak_256(utf8(credentialId)));
}

/** The EIP-712 digest of a SessionGrant document, computed locally; refuses a document whose
 * primary type, types or domain are not exactly the protocol's (docs/protocol.md 1-2). */
export function grantDocumentDigest(document: unknown): Uint8Array {
  const doc = asRecord(document);
  if (doc === undefined || doc.primaryType !== PRIMARY_TYPE) {
    throw new GrantVerificationError("the document is not a SessionGrant");
  }
  if (canonical(doc.types) !== canonical(GRANT_TYPES)) {
    throw new GrantVerificationError("the document's types are not the protocol's");
  }
  const domain = asRecord(doc.domain);
  const domainKeys = GRANT_TYPES.EIP712Domain.map((f) => f.name);
  if (
    domain === undefined ||
    canonical(Object.keys(domain).sort()) !== canonical([...domainKeys].sort())
  ) {
    throw new GrantVerificationError("the document's domain is not the protocol's");
  }
  if (domain.name !== DOMAIN_NAME || domain.version !== DOMAIN_VERSION) {
    throw new GrantVerificationError("the domain is not SessionWard version 1");
  }
  try {
    return typedDataDigest(doc as unknown as TypedData);
  } catch (error) {
    if (error instanceof TypedDataError) {
      throw new GrantVerificationError(`the grant does not hash: ${error.message}`);
    }
    throw error;
  }
}

export interface GrantExpectations {
  /** The wallet's account: the grant must be for it. */
  account?: string | undefined;
  /** The backend credential the owner authorized: the grant must be bound to it. */
  credentialId?: string | undefined;
  /** The envelope the owner asked for: chain, expiry and capabilities must be the grant's. */
  requested?: Record<string, unknown> | undefined;
}

/** The digest to sign for an AuthorizeRemoteAccess answer (or a pending GetSession), after
 * checking it. Throws {@link GrantVerificationError} rather than return anything unexpected. */
export function verifyGrant(pending: Record<string, unknown>, expect: GrantExpectations = {}) {
  const document = asRecord(pending.grant);
  if (document === undefined) throw new GrantVerificationError("the answer carries no grant");
  const digest = grantDocumentDigest(document);
  const claimed = pending.grantDigest;
  if (typeof claimed !== "string" || claimed.toLowerCase() !== toHex(digest)) {
    throw new GrantVerificationError("grantDigest is not the digest of the grant document");
  }
  const message = asRecord(document.message)!;
  const domain = asRecord(document.domain)!;
  if (!sameAddress(message.account, domain.verifyingContract)) {
    throw new GrantVerificationError("the grant's account is not the domain's account");
  }
  if (expect.account !== undefined && !sameAddress(message.account, expect.account)) {
    throw new GrantVerificationError("the grant is for another account");
  }
  const envelope = asRecord(message.envelope);
  const chainId = integer(envelope?.chainId);
  if (envelope === undefined || chainId === undefined || chainId !== integer(domain.chainId)) {
    throw new GrantVerificationError("the envelope's chain is not the domain's chain");
  }
  if (pending.sessionKey !== undefined && !sameAddress(message.sessionKey, pending.sessionKey)) {
    throw new GrantVerificationError("the grant names another session key");
  }
  if (expect.credentialId !== undefined) {
    if (String(message.credential).toLowerCase() !== credentialHash(expect.credentialId)) {
      throw new GrantVerificationError("the grant is bound to another credential");
    }
  }
  if (pending.expiresAt !== undefined && integer(envelope.expiresAt) !== integer(pending.expiresAt)) {
    throw new GrantVerificationError("the grant's expiry is not the one the answer shows");
  }
  const requested = expect.requested;
  if (requested !== undefined) {
    if (requested.chainId !== undefined && integer(requested.chainId) !== chainId) {
      throw new GrantVerificationError("the grant is for another chain than requested");
    }
    if (
      requested.expiresAt !== undefined &&
      integer(requested.expiresAt) !== integer(envelope.expiresAt)
    ) {
      throw new GrantVerificationError("the grant expires at another time than requested");
    }
    if (
      Array.isArray(requested.capabilities) &&
      canonical([...requested.capabilities].sort()) !==
        canonical([...((envelope.capabilities as unknown[]) ?? [])].sort())
    ) {
      throw new GrantVerificationError("the grant's capabilities are not the requested ones");
    }
  }
  return digest;
}
