/**
 * Signed calls to `POST /v1/Waas/<Method>` over `fetch` (docs/protocol.md section 3).
 *
 * Each request is signed over its exact body bytes, the raw path as sent, a fresh nonce and the
 * current time. Nonces are strictly increasing and never below the clock in nanoseconds, so a
 * client never reuses one, even across restarts.
 */

import { utf8 } from "./bytes.js";
import {
  IDEMPOTENCY_HEADER,
  METHOD_PREFIX,
  RETRY_AFTER_HEADER,
  SELF_CREDENTIAL,
  SIGNATURE_HEADER,
} from "./generated/protocol.js";
import type { ApiError, ReasonCode } from "./generated/api.js";
import { signRequest, type RequestSigner } from "./signing.js";

/** An error answer of the API, with every field of its error document. */
export class SessionWardApiError extends Error {
  override name = "SessionWardApiError";
  readonly status: number;
  /** The stable reason code (`HTTP_ERROR` when the answer is not the API's error shape). */
  readonly code: ReasonCode | "HTTP_ERROR";
  readonly document: Partial<ApiError>;

  constructor(status: number, document: Partial<ApiError> | undefined, text: string) {
    const code = typeof document?.code === "string" ? document.code : "HTTP_ERROR";
    super(`${status} ${code}: ${document?.msg ?? text.slice(0, 200)}`);
    this.status = status;
    this.code = code;
    this.document = document ?? {};
  }

  get reason(): string {
    return this.document.reason ?? "";
  }
  get reasons(): string[] {
    return this.document.reasons ?? [];
  }
  get kind(): string {
    return this.document.error ?? "";
  }
  get requestId(): string | undefined {
    return this.document.requestId;
  }
}

/** Strictly increasing nonces, never below the clock in nanoseconds. */
export class NonceCounter {
  #last = 0n;
  next(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.#last = this.#last + 1n > now ? this.#last + 1n : now;
    return this.#last;
  }
}

function refuseFloats(value: unknown, path = "body"): void {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new TypeError(`${path}: amounts are decimal strings or safe integers, never floats`);
  }
  if (typeof value === "bigint") throw new TypeError(`${path}: send bigints as decimal strings`);
  if (Array.isArray(value)) value.forEach((v, i) => refuseFloats(v, `${path}[${i}]`));
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) refuseFloats(v, `${path}.${k}`);
  }
}

export interface CallOptions {
  signer?: RequestSigner | undefined;
  credentialId?: string | undefined;
  idempotencyKey?: string | undefined;
  /** Transport failures are retried only for reads or with an idempotency key. */
  retrySafe?: boolean;
}

export interface TransportOptions {
  fetch?: typeof fetch;
  retries?: number;
  /** A 429 RATE_LIMITED_REQUESTS is retried after Retry-After only up to this wait. */
  maxRateLimitWaitS?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One API endpoint. */
export class Transport {
  readonly baseUrl: string;
  readonly nonces = new NonceCounter();
  readonly #fetch: typeof fetch;
  readonly #retries: number;
  readonly #maxRateLimitWaitS: number;

  constructor(baseUrl: string, options: TransportOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#retries = options.retries ?? 2;
    this.#maxRateLimitWaitS = options.maxRateLimitWaitS ?? 5;
  }

  /** POST `body` to `method`, signed by `signer` as `credentialId` (unsigned without a
   * signer). Throws {@link SessionWardApiError} for every error answer. */
  async call<T = Record<string, unknown>>(
    method: string,
    body: object,
    options: CallOptions = {},
  ): Promise<T> {
    refuseFloats(body);
    const url = new URL(`${this.baseUrl}${METHOD_PREFIX}${method}`);
    const raw = utf8(JSON.stringify(body));
    const attempts = 1 + (options.retrySafe || options.idempotencyKey ? this.#retries : 0);
    let rateLimitedRetries = this.#retries;
    for (let attempt = 1; ; ) {
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (options.idempotencyKey !== undefined) {
        headers[IDEMPOTENCY_HEADER] = options.idempotencyKey;
      }
      if (options.signer !== undefined) {
        if (options.credentialId === undefined) {
          throw new Error("this call needs a credential id (register first)");
        }
        headers[SIGNATURE_HEADER] = await signRequest(
          options.signer,
          options.credentialId,
          "POST",
          url.pathname + url.search,
          raw,
          this.nonces.next(),
          Date.now(),
        );
      }
      let response: Response;
      try {
        response = await this.#fetch(url, { method: "POST", headers, body: Uint8Array.from(raw) });
      } catch (error) {
        if (attempt++ >= attempts) throw error;
        await sleep(100 * attempt);
        continue;
      }
      const text = await response.text();
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch {
        document = undefined;
      }
      const isObject = typeof document === "object" && document !== null && !Array.isArray(document);
      if (response.ok && isObject) return document as T;
      const error = new SessionWardApiError(
        response.status,
        isObject ? (document as Partial<ApiError>) : undefined,
        text,
      );
      const wait = Number(response.headers.get(RETRY_AFTER_HEADER) ?? "NaN");
      if (
        response.status === 429 &&
        error.code === "RATE_LIMITED_REQUESTS" &&
        rateLimitedRetries-- > 0 &&
        wait >= 0 &&
        wait <= this.#maxRateLimitWaitS
      ) {
        await sleep(wait * 1000);
        continue;
      }
      throw error;
    }
  }
}

export { SELF_CREDENTIAL };
