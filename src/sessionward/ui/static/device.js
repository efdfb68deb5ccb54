// This browser's owner device: a P-256 key made here by WebCrypto as NON-EXTRACTABLE, kept in
// IndexedDB (the CryptoKey object itself: script can sign with it, never read it), and paired
// with the owner's wallet by the owner's one-time pairing code.
//
// Pairing (docs: sessionward.ui.routes): the page makes the key, then sends PairDevice signed
// cred="self" by that key (proof of possession) with the code in the JSON body. The code is
// typed or pasted into a form field and the field is emptied at once; neither the code nor any
// key is ever put in a URL, a query, a fragment, localStorage or the DOM.

import { ALG, callMethod, RequestSigner, toHex } from "./signing.js";

const DB_NAME = "sessionward";
const DB_VERSION = 1;
const STORE = "owner-device";
const CURRENT = "current";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** The paired device ``{credentialId, walletId, privateKey, publicKey, label, expiresAt}``,
 * or null when this browser has none. */
export async function loadDevice() {
  const record = await withStore("readonly", (store) => store.get(CURRENT));
  return record && record.privateKey && record.credentialId ? record : null;
}

async function saveDevice(record) {
  await withStore("readwrite", (store) => store.put(record, CURRENT));
}

/** Drop this browser's device (its key is gone for good: it cannot be exported). */
export async function forgetDevice() {
  await withStore("readwrite", (store) => store.delete(CURRENT));
}

/** A fresh P-256 key pair whose private half is non-extractable. */
export function newDeviceKey() {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]);
}

/** 0x hex of the 65-byte uncompressed public key (what the server registers). */
export async function publicKeyHexOf(publicKey) {
  return "0x" + toHex(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey)));
}

/** Pair a new key of this browser with the wallet whose owner issued ``code``; resolves with
 * the stored device record. A refusal (ApiCallError: PAIRING_CODE_USED...) stores nothing. */
export async function pairDevice(code, label) {
  const pair = await newDeviceKey();
  const publicKey = await publicKeyHexOf(pair.publicKey);
  const body = { alg: ALG, publicKey, pairingCode: code };
  if (label) body.label = label;
  const device = await callMethod(new RequestSigner(pair.privateKey, "self"), "PairDevice", body);
  const record = {
    credentialId: device.credentialId,
    walletId: device.walletId,
    privateKey: pair.privateKey,
    publicKey,
    label: device.label,
    expiresAt: device.expiresAt,
  };
  await saveDevice(record);
  return record;
}

/** The request signer of a stored device. */
export function deviceSigner(record) {
  return new RequestSigner(record.privateKey, record.credentialId);
}

const PAIRING_REFUSALS = {
  GLOBAL_FREEZE:
    "SessionWard's operators have frozen all sessions, and no browser can be paired until they " +
    "lift the freeze. Nothing was stored; your code stays valid until it expires.",
  PAIRING_CODE_USED: "This code was used already: ask your wallet app for a new one.",
  PAIRING_CODE_EXPIRED: "This code has expired: ask your wallet app for a new one.",
  PAIRING_CODE_INVALID: "This is not a code your wallet app issued: check it and type it again.",
  DEVICE_LIMIT_REACHED: "Your wallet has as many devices as it may have: revoke one first.",
};

/** What to tell the owner when pairing fails: the server's reason in words, and its code. */
export function pairingFailure(error) {
  const text = error && PAIRING_REFUSALS[error.code];
  return text ? `Pairing failed: ${text} (${error.code})` : `Pairing failed: ${error.message}`;
}
