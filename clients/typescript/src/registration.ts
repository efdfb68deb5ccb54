/**
 * The wallet-registration challenge (docs/protocol.md, "Wallet registration"): what an
 * account's owner signs to prove control before RegisterWallet (or a contract-owned
 * CreateWallet) gives anyone an owner credential for it. An EIP-712 message in the account's
 * own SessionWard domain:
 * `WalletRegistration(string service,address account,address owner,bytes32 credentialKey,uint256 nonce,uint48 deadline)`,
 * `credentialKey` = keccak256 of the credential's public key bytes as registered.
 */

import { keccak_256 } from "@noble/hashes/sha3.js";

import { fromHex, toHex } from "./bytes.js";
import { typedDataDigest } from "./eip712.js";
import { DOMAIN_NAME, DOMAIN_VERSION, GRANT_TYPES } from "./generated/protocol.js";

export const REGISTRATION_TYPE = [
  { name: "service", type: "string" },
  { name: "account", type: "address" },
  { name: "owner", type: "address" },
  { name: "credentialKey", type: "bytes32" },
  { name: "nonce", type: "uint256" },
  { name: "deadline", type: "uint48" },
];

export interface RegistrationFields {
  service: string;
  chainId: number | bigint;
  account: string;
  owner: string;
  /** The credential's public key as registered: an address or 0x hex of a P-256 key. */
  publicKey: string;
  nonce: bigint | number | string;
  deadline: number;
}

/** The 32-byte digest the owner signs. */
export function registrationDigest(fields: RegistrationFields): Uint8Array {
  const key = fields.publicKey.startsWith("0x") ? fields.publicKey : `0x${fields.publicKey}`;
  return typedDataDigest({
    types: {
      EIP712Domain: GRANT_TYPES.EIP712Domain.map((f) => ({ ...f })),
      WalletRegistration: REGISTRATION_TYPE,
    },
    primaryType: "WalletRegistration",
    domain: {
      name: DOMAIN_NAME,
      version: DOMAIN_VERSION,
      chainId: BigInt(fields.chainId),
      verifyingContract: fields.account,
    },
    message: {
      service: fields.service,
      account: fields.account,
      owner: fields.owner,
      credentialKey: toHex(keccak_256(fromHex(key.toLowerCase()))),
      nonce: BigInt(fields.nonce),
      deadline: fields.deadline,
    },
  });
}

export interface RegistrationChallenge {
  serviceId: string;
  chainId: number;
  account: string;
  owner: string;
  nonce: string;
  deadline: number;
  digest: string;
}

/** The challenge's digest, recomputed for `account` and this client's `publicKey` (and
 * `owner` when given); throws if the service's digest differs or the challenge names another
 * account or owner: never sign what was not asked. */
export function checkRegistrationChallenge(
  challenge: RegistrationChallenge,
  expect: { account: string; publicKey: string; owner?: string | undefined },
): Uint8Array {
  if (challenge.account.toLowerCase() !== expect.account.toLowerCase()) {
    throw new Error("the registration challenge names another account");
  }
  if (expect.owner !== undefined && challenge.owner.toLowerCase() !== expect.owner.toLowerCase()) {
    throw new Error("the registration challenge names another owner");
  }
  const digest = registrationDigest({
    service: challenge.serviceId,
    chainId: challenge.chainId,
    account: expect.account,
    owner: challenge.owner,
    publicKey: expect.publicKey,
    nonce: challenge.nonce,
    deadline: challenge.deadline,
  });
  if (toHex(digest) !== challenge.digest.toLowerCase()) {
    throw new Error("the registration challenge's digest does not match its fields");
  }
  return digest;
}
