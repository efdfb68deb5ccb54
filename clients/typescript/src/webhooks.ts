/**
 * Verifying SessionWard's alert webhooks: Standard Webhooks 1.0, asymmetric form
 * (docs/protocol.md section 8.6). Headers `webhook-id`, `webhook-timestamp`, and
 * `webhook-signature: v1a,<base64 Ed25519>` (a space-separated list; other versions skipped),
 * signed over `{id}.{timestamp}.{body}` with the service's Ed25519 key.
 */

import { ed25519 } from "@noble/curves/ed25519.js";

import { concat, fromBase64, utf8 } from "./bytes.js";
import {
  WEBHOOK_EVENT_ID_HEADER,
  WEBHOOK_PUBLIC_KEY_PREFIX,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_SIGNATURE_VERSION,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./generated/protocol.js";

export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

const EVENT_ID = /^[A-Za-z0-9_:-]{1,128}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

/** The signed bytes: `{id}.{timestamp}.{body}`. */
export function webhookSignedContent(id: string, timestamp: string, body: Uint8Array): Uint8Array {
  return concat(utf8(`${id}.${timestamp}.`), body);
}

/** The 32-byte Ed25519 key from its base64 text (the `whpk_` prefix accepted). */
export function parseWebhookPublicKey(text: string): Uint8Array {
  const bare = text.startsWith(WEBHOOK_PUBLIC_KEY_PREFIX)
    ? text.slice(WEBHOOK_PUBLIC_KEY_PREFIX.length)
    : text;
  const key = fromBase64(bare);
  if (key.length !== 32) throw new TypeError("an Ed25519 public key is 32 bytes");
  return key;
}

export interface WebhookVerifyOptions {
  /** Seconds the timestamp may be from now (default 300). */
  toleranceS?: number;
  /** Unix seconds now (default the clock). */
  nowS?: number;
  /** Remembers accepted event ids: a second delivery of one is refused as a replay. */
  seen?: Set<string>;
}

type Headers = Record<string, string | undefined> | globalThis.Headers;

function header(headers: Headers, name: string): string {
  const value =
    headers instanceof globalThis.Headers
      ? headers.get(name)
      : (Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1] ?? null);
  if (value === null || value === undefined) {
    throw new WebhookVerificationError(`missing ${name}`);
  }
  return value;
}

/** Verify one delivery and return its parsed body; throws {@link WebhookVerificationError}. */
export function verifyWebhook(
  publicKeys: string | string[],
  headers: Headers,
  body: Uint8Array,
  options: WebhookVerifyOptions = {},
): Record<string, unknown> {
  const id = header(headers, WEBHOOK_EVENT_ID_HEADER);
  const timestamp = header(headers, WEBHOOK_TIMESTAMP_HEADER);
  const signatures = header(headers, WEBHOOK_SIGNATURE_HEADER);
  if (!EVENT_ID.test(id)) throw new WebhookVerificationError("malformed webhook-id");
  if (!TIMESTAMP.test(timestamp)) throw new WebhookVerificationError("malformed timestamp");
  const now = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (options.toleranceS ?? 300)) {
    throw new WebhookVerificationError("timestamp outside the tolerance");
  }
  const content = webhookSignedContent(id, timestamp, body);
  const keys = (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map(parseWebhookPublicKey);
  const verified = signatures.split(" ").some((entry) => {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== WEBHOOK_SIGNATURE_VERSION) return false;
    let signature: Uint8Array;
    try {
      signature = fromBase64(entry.slice(comma + 1));
    } catch {
      return false;
    }
    if (signature.length !== 64) return false;
    return keys.some((key) => ed25519.verify(signature, content, key));
  });
  if (!verified) throw new WebhookVerificationError("no valid v1a signature");
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new WebhookVerificationError("the body is not a JSON object");
  }
  const event = document as Record<string, unknown>;
  if (event.eventId !== id) throw new WebhookVerificationError("eventId is not webhook-id");
  if (options.seen !== undefined) {
    if (options.seen.has(id)) throw new WebhookVerificationError("event already accepted");
    options.seen.add(id);
  }
  return event;
}
