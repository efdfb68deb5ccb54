/**
 * The three actors' clients, mirroring the Python SDK (`sessionward.sdk`): {@link BackendClient}
 * (the remote backend), {@link OwnerClient} (the wallet's owner) and {@link OpsClient} (the
 * kill switch). Every answer is the API's JSON object, typed from the OpenAPI document
 * (`./generated/api.ts`).
 */

import { fromHex, toHex, type Hex } from "./bytes.js";
import type { Methods } from "./generated/api.js";
import { verifyGrant } from "./grants.js";
import { checkRegistrationChallenge } from "./registration.js";
import {
  Secp256k1RequestSigner,
  type RequestSigner,
} from "./signing.js";
import { SELF_CREDENTIAL, Transport, type TransportOptions } from "./transport.js";

export type MethodName = keyof Methods;
export type Answer<M extends MethodName> = Methods[M]["response"];
export type Request<M extends MethodName> = Methods[M]["request"];

/** Final transaction states: polling stops there. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["executed", "failed", "denied"]);

/** A decimal-string amount (bigints and safe integers accepted). */
export function amount(value: bigint | number | string): string {
  const text = typeof value === "string" ? value : BigInt(value).toString();
  if (!/^[0-9]+$/.test(text)) throw new RangeError("amounts are non-negative decimal integers");
  return BigInt(text).toString();
}

function hexOf(value: Uint8Array | string): string {
  if (typeof value === "string") {
    if (!value.startsWith("0x")) throw new TypeError("hex strings start with 0x");
    return value.toLowerCase();
  }
  return toHex(value);
}

function page(cursor: string | undefined, limit: number, fields: object = {}) {
  return { ...fields, limit, ...(cursor === undefined ? {} : { cursor }) };
}

function randomKey(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16))).slice(2);
}

/** What every client shares: a transport, a request signer and the credential it signs as. */
export class SignedClient {
  protected readonly transport: Transport;
  readonly signer: RequestSigner;
  credentialId: string | undefined;

  constructor(
    baseUrl: string,
    signer: RequestSigner,
    credentialId?: string,
    options: TransportOptions = {},
  ) {
    this.transport = new Transport(baseUrl, options);
    this.signer = signer;
    this.credentialId = credentialId;
  }

  get publicKey(): string {
    return this.signer.publicKey;
  }

  protected call<M extends MethodName>(
    method: M,
    body: Request<M>,
    options: { idempotencyKey?: string; read?: boolean } = {},
  ): Promise<Answer<M>> {
    if (this.credentialId === undefined) throw new Error("no credential id yet: register first");
    return this.transport.call<Answer<M>>(method, body, {
      signer: this.signer,
      credentialId: this.credentialId,
      idempotencyKey: options.idempotencyKey,
      retrySafe: options.read ?? false,
    });
  }

  protected read<M extends MethodName>(method: M, body: Request<M>): Promise<Answer<M>> {
    return this.call(method, body, { read: true });
  }

  /** A call signed `cred="self"`: the body names this signer's key (proof of possession). */
  protected selfSigned<M extends MethodName>(
    method: M,
    body: Omit<Request<M>, "alg" | "publicKey">,
  ): Promise<Answer<M>> {
    const document = { alg: this.signer.alg, publicKey: this.publicKey, ...body };
    return this.transport.call<Answer<M>>(method, document, {
      signer: this.signer,
      credentialId: SELF_CREDENTIAL,
    });
  }

  protected unsigned<M extends MethodName>(method: M, body: Request<M>): Promise<Answer<M>> {
    return this.transport.call<Answer<M>>(method, body, { retrySafe: true });
  }
}

/** The remote backend: register a credential, prepare and execute calls within granted
 * sessions, read its sessions, retire its credential. */
export class BackendClient extends SignedClient {
  /** RegisterCredential, signed by the key itself; remembers the new `credentialId`. */
  async register(appName: string, appUrl: string | undefined, expiresAt: number) {
    const answer = await this.selfSigned("RegisterCredential", {
      appName,
      expiresAt,
      ...(appUrl === undefined ? {} : { appUrl }),
    });
    this.credentialId = answer.credentialId;
    return answer;
  }

  /** PrepareEthereumTransaction: the quote, or a `PolicyDenied` error with its reasons. */
  prepareTransaction(
    walletId: string,
    sessionId: string,
    to: string,
    value: bigint | number | string,
    data: Uint8Array | string,
    chainId?: number,
  ) {
    return this.call("PrepareEthereumTransaction", {
      walletId,
      sessionId,
      to,
      value: amount(value),
      data: hexOf(data),
      ...(chainId === undefined ? {} : { chainId }),
    });
  }

  /** PrepareEthereumContractCall: `method` is a signature such as `transfer(address,uint256)`;
   * integers as decimal strings, bytes as 0x hex. */
  prepareContractCall(
    walletId: string,
    sessionId: string,
    contract: string,
    method: string,
    args: unknown[],
    value: bigint | number | string = 0,
    chainId?: number,
  ) {
    return this.call("PrepareEthereumContractCall", {
      walletId,
      sessionId,
      contract,
      method,
      args,
      value: amount(value),
      ...(chainId === undefined ? {} : { chainId }),
    } as Request<"PrepareEthereumContractCall">);
  }

  /** Execute a quote, always with an `Idempotency-Key` (fresh unless given), so a retry after
   * a network failure can never execute twice. `submission`: through the service's relayer
   * (the default), or as an ERC-4337 UserOperation through the network's bundler. */
  execute(
    txnId: string,
    idempotencyKey: string = randomKey(),
    submission: "relayer" | "userop" = "relayer",
  ) {
    const body = submission === "relayer" ? { txnId } : { txnId, submission };
    return this.call("Execute", body, { idempotencyKey });
  }

  transactionStatus(txnId: string) {
    return this.read("TransactionStatus", { txnId });
  }

  /** Poll TransactionStatus until executed, failed or denied (back-off up to 1 s). */
  async waitForTransaction(txnId: string, timeoutMs = 30_000, pollMs = 100) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.transactionStatus(txnId);
      if (FINAL_STATUSES.has(status.status)) return status;
      if (Date.now() >= deadline) throw new Error(`transaction ${txnId} still ${status.status}`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      pollMs = Math.min(pollMs * 1.5, 1000);
    }
  }

  getSession(sessionId: string) {
    return this.read("GetSession", { sessionId });
  }

  listSessions(cursor?: string, limit = 50) {
    return this.read("ListSessions", page(cursor, limit) as Request<"ListSessions">);
  }

  getSessionUsage(sessionId: string) {
    return this.read("GetSessionUsage", { sessionId });
  }

  /** ExportPermission: an active session as ERC-7715 PermissionResponse objects. */
  exportPermission(sessionId: string) {
    return this.read("ExportPermission", { sessionId });
  }

  /** Retire this credential and every session bound to it. */
  revokeCredential(reason?: string) {
    if (this.credentialId === undefined) throw new Error("no credential id yet: register first");
    return this.call("RevokeCredential", {
      credentialId: this.credentialId,
      ...(reason === undefined ? {} : { reason }),
    });
  }
}

/** Who owns a wallet, when it is not this client's own key (an EOA by default). */
export interface WalletOwnerOptions {
  owner?: string;
  ownerKind?: "eoa" | "erc1271";
  /** `"erc7579"`: any ERC-7579 account with the network's SessionWard module installed, its
   * own owner by ERC-1271 (RegisterWallet only); `"session_account"` by default. */
  accountKind?: "session_account" | "erc7579";
  /** Signs a checked registration digest (a contract owner's isValidSignature bytes). */
  signChallenge?: (digest: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

function ownerFields(options: WalletOwnerOptions) {
  return {
    ...(options.owner === undefined ? {} : { owner: options.owner }),
    ...(options.ownerKind === undefined ? {} : { ownerKind: options.ownerKind }),
    ...(options.accountKind === undefined ? {} : { accountKind: options.accountKind }),
  };
}

async function proof(
  challenge: { nonce: string; deadline: number; digestBytes: Uint8Array },
  sign: (digest: Uint8Array) => Uint8Array | Promise<Uint8Array>,
) {
  return {
    nonce: challenge.nonce,
    deadline: challenge.deadline,
    signature: toHex(await sign(challenge.digestBytes)),
  };
}

/** The wallet's owner: create a wallet, authorize a backend, check and sign the grant, approve,
 * review and revoke. With a secp256k1 signer it signs requests *and* grants; with another
 * signer (a P-256 device key) requests only, and {@link OwnerClient.grantDigest} gives the
 * checked digest for a wallet to sign. */
export class OwnerClient extends SignedClient {
  walletId: string | undefined;
  account: string | undefined;
  readonly #authorized = new Map<string, { credentialId: string; envelope: object | undefined }>();

  constructor(
    baseUrl: string,
    signer: RequestSigner,
    credentialId?: string,
    options: TransportOptions & { walletId?: string; account?: string } = {},
  ) {
    super(baseUrl, signer, credentialId, options);
    this.walletId = options.walletId;
    this.account = options.account;
  }

  #wallet(walletId?: string): string {
    const wallet = walletId ?? this.walletId;
    if (wallet === undefined) throw new Error("no wallet: create or register one, or pass it");
    return wallet;
  }

  /** CreateWallet signed by the owner key itself; remembers `walletId`, `account` and the
   * owner credential this client signs as afterwards. For a contract owner
   * (`ownerKind: "erc1271"`) `signChallenge(digest)` signs the checked registration challenge
   * of the account this `salt` (random if not given) makes. */
  async createWallet(salt?: Uint8Array, options: WalletOwnerOptions = {}) {
    const body: Record<string, unknown> = {};
    if (options.ownerKind === "erc1271") {
      if (options.signChallenge === undefined) {
        throw new Error("a contract owner signs the registration challenge");
      }
      salt = salt ?? crypto.getRandomValues(new Uint8Array(32));
      const challenge = await this.#challenge({ salt: toHex(salt) }, options, undefined);
      body.registration = await proof(challenge, options.signChallenge);
    }
    if (salt !== undefined) body.salt = toHex(salt);
    if (options.owner !== undefined) body.owner = options.owner;
    if (options.ownerKind !== undefined) body.ownerKind = options.ownerKind;
    return this.#adopt(await this.selfSigned("CreateWallet", body as Omit<Request<"CreateWallet">, "alg" | "publicKey">));
  }

  /** GetRegistrationChallenge for `account` (or, with `salt`, the account the factory will
   * make), its digest recomputed here and checked before anyone is asked to sign it. */
  registrationChallenge(account: string, options: WalletOwnerOptions = {}) {
    return this.#challenge({ account }, options, account);
  }

  /** The challenge for the counterfactual account of `salt` (CreateWallet), checked. */
  saltChallenge(salt: Uint8Array, options: WalletOwnerOptions = {}) {
    return this.#challenge({ salt: toHex(salt) }, options, undefined);
  }

  async #challenge(
    target: { account?: string; salt?: string },
    options: WalletOwnerOptions,
    account: string | undefined,
  ) {
    const challenge = await this.selfSigned("GetRegistrationChallenge", {
      ...target,
      ...ownerFields(options),
    } as Request<"GetRegistrationChallenge">);
    const digest = checkRegistrationChallenge(challenge, {
      account: account ?? challenge.account,
      publicKey: this.publicKey,
      owner: options.owner,
    });
    return { ...challenge, digestBytes: digest };
  }

  /** RegisterWallet: an existing account, with its owner's proof of control. The owner signs
   * the checked challenge digest: by default this client's secp256k1 key (an EOA owner, or
   * the EIP-7702 EOA itself); for a contract owner `signChallenge(digest)`. */
  async registerWallet(account: string, options: WalletOwnerOptions = {}) {
    const challenge = await this.registrationChallenge(account, options);
    const sign = options.signChallenge ?? ((digest: Uint8Array) => this.#signDigest(digest));
    const wallet = await this.selfSigned("RegisterWallet", {
      account,
      ...ownerFields(options),
      registration: await proof(challenge, sign),
    } as Omit<Request<"RegisterWallet">, "alg" | "publicKey">);
    return this.#adopt(wallet);
  }

  #signDigest(digest: Uint8Array): Uint8Array {
    if (!(this.signer instanceof Secp256k1RequestSigner)) {
      throw new Error("no secp256k1 owner key: pass signChallenge");
    }
    return this.signer.signDigest(digest);
  }

  #adopt<W extends { walletId: string; account: string; ownerCredentialId?: string | null }>(
    wallet: W,
  ): W {
    this.walletId = wallet.walletId;
    this.account = wallet.account;
    this.credentialId = wallet.ownerCredentialId ?? undefined;
    return wallet;
  }

  /** RegisterCredential signed by the owner credential: a device key signed in directly. */
  registerDevice(alg: string, publicKey: string, expiresAt?: number) {
    return this.call("RegisterCredential", {
      alg,
      publicKey,
      ...(expiresAt === undefined ? {} : { expiresAt }),
    } as Request<"RegisterCredential">);
  }

  createPairingCode(walletId?: string, deviceTtlSeconds?: number) {
    return this.call("CreatePairingCode", {
      walletId: this.#wallet(walletId),
      ...(deviceTtlSeconds === undefined ? {} : { deviceTtlSeconds }),
    });
  }

  /** PairDevice from a device client (a P-256 signer), signed `cred="self"` with the owner's
   * one-time code; adopts the device's credential and wallet. */
  async pairDevice(pairingCode: string, label?: string) {
    const device = await this.selfSigned("PairDevice", {
      pairingCode,
      ...(label === undefined ? {} : { label }),
    } as Omit<Request<"PairDevice">, "alg" | "publicKey">);
    this.credentialId = device.credentialId;
    this.walletId = device.walletId;
    return device;
  }

  listDevices(walletId?: string, cursor?: string, limit = 50) {
    return this.read(
      "ListDevices",
      page(cursor, limit, { walletId: this.#wallet(walletId) }) as Request<"ListDevices">,
    );
  }

  revokeDevice(credentialId: string, walletId?: string, reason?: string) {
    return this.call("RevokeDevice", {
      walletId: this.#wallet(walletId),
      credentialId,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  /** The backend's public metadata (appName, appUrl, expiresAt), unsigned. */
  inspectCredential(credentialId: string) {
    return this.unsigned("InspectCredential", { credentialId });
  }

  /** AuthorizeRemoteAccess: the pending session with its grant document and digest. */
  async authorizeRemoteAccess(
    credentialId: string,
    walletId: string | undefined,
    envelope: Request<"AuthorizeRemoteAccess">["envelope"],
  ) {
    const pending = await this.call("AuthorizeRemoteAccess", {
      credentialId,
      walletId: this.#wallet(walletId),
      envelope,
    });
    this.#authorized.set(pending.sessionId, { credentialId, envelope });
    return pending;
  }

  /** ImportPermissionRequest: an ERC-7715 `wallet_grantPermissions` request (its params) for
   * the backend `credentialId`, as a session pending approval; approve it like any other
   * (its grant is checked by {@link OwnerClient.grantDigest} against the credential). */
  async importPermissionRequest(
    credentialId: string,
    walletId: string | undefined,
    request: Request<"ImportPermissionRequest">["request"],
  ) {
    const pending = await this.call("ImportPermissionRequest", {
      credentialId,
      walletId: this.#wallet(walletId),
      request,
    });
    this.#authorized.set(pending.sessionId, { credentialId, envelope: undefined });
    return pending;
  }

  exportPermission(sessionId: string) {
    return this.read("ExportPermission", { sessionId });
  }

  /** The grant's digest, recomputed from its document and checked against this client's
   * account, the credential it authorized and the envelope it asked for. */
  grantDigest(pending: Answer<"AuthorizeRemoteAccess">): Uint8Array {
    const asked = this.#authorized.get(pending.sessionId);
    return verifyGrant(pending as unknown as Record<string, unknown>, {
      account: this.account,
      credentialId: asked?.credentialId,
      requested: asked?.envelope as Record<string, unknown> | undefined,
    });
  }

  /** The owner's 65-byte signature of the checked grant digest (a secp256k1 owner only). */
  signGrant(pending: Answer<"AuthorizeRemoteAccess">): Uint8Array {
    return this.#signDigest(this.grantDigest(pending));
  }

  approveSession(sessionId: string, signature: Uint8Array | Hex) {
    return this.call("ApproveSession", {
      sessionId,
      signature: typeof signature === "string" ? toHex(fromHex(signature)) : toHex(signature),
    });
  }

  listAccess(walletId?: string, cursor?: string, limit = 50) {
    return this.read(
      "ListAccess",
      page(cursor, limit, { walletId: this.#wallet(walletId) }) as Request<"ListAccess">,
    );
  }

  getSession(sessionId: string) {
    return this.read("GetSession", { sessionId });
  }

  getSessionUsage(sessionId: string) {
    return this.read("GetSessionUsage", { sessionId });
  }

  transactionStatus(txnId: string) {
    return this.read("TransactionStatus", { txnId });
  }

  /** Revoke one session, or every session of `credentialId` on the wallet. */
  revokeAccess(walletId: string | undefined, credentialId: string, sessionId?: string) {
    return this.call("RevokeAccess", {
      walletId: this.#wallet(walletId),
      credentialId,
      ...(sessionId === undefined ? {} : { sessionId }),
    });
  }
}

/** Ops: the kill switch (EmergencyRevoke) and lifting freezes, as an ops credential from the
 * service's configuration. */
export class OpsClient extends SignedClient {
  constructor(baseUrl: string, signer: RequestSigner, credentialId: string, options = {}) {
    super(baseUrl, signer, credentialId, options);
  }

  /** Revoke by `scope` (session, wallet, credential, action_class, or global without target);
   * `reason` is mandatory. */
  emergencyRevoke(scope: string, target: string | undefined, reason: string) {
    return this.call("EmergencyRevoke", {
      scope,
      reason,
      ...(target === undefined ? {} : { target }),
    } as Request<"EmergencyRevoke">);
  }

  /** Lift a freeze; the first ops approval of a global lift is answered 409
   * FREEZE_LIFT_NEEDS_SECOND_OPS, the second, distinct one lifts it. */
  liftFreeze(scope: string, target?: string) {
    return this.call("LiftFreeze", {
      scope,
      ...(target === undefined ? {} : { target }),
    } as Request<"LiftFreeze">);
  }
}
