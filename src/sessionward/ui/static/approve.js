// The approval page (/ui/approve?session=<id>): the owner approves a pending session with their
// own wallet.
//
// 1. Reads the pending session (GetSession, signed by this browser's paired owner device: the
//    same non-extractable key as the review page; pairing is offered when there is none). The
//    only thing read from the URL is the session id, which is not a secret.
// 2. Recomputes the EIP-712 digest of the grant document and checks it equals the digest the
//    service stored, and that the document is for this wallet, chain, session key and expiry;
//    otherwise it refuses to ask the wallet anything.
// 3. Shows the server's plain-language summary and, for every field of the typed data, its value
//    as the wallet shows it next to what it means (contract names, token amounts in token units,
//    limits, window, chain, fee budget).
// 4. Connects the EIP-1193 provider (window.ethereum, or WalletConnect's EthereumProvider where
//    the service configures WalletConnect: /ui/api/wallets), checks the account is the wallet's
//    owner and the chain the wallet's chain, asks eth_signTypedData_v4, recovers the signer here
//    and compares it with the owner, and only then sends ApproveSession.
//
// body[data-state] says where the page is: loading, pair, ready, connected, wrong-account,
// wrong-chain, no-wallet, rejected, signing, approved, expired, not-pending, mismatch, error,
// wc-connecting, wc-pairing (the WalletConnect link is shown), wc-unreachable (the relay cannot
// be reached from this browser), wc-unsupported (the WalletConnect wallet did not grant
// eth_signTypedData_v4).

import { decimal, duration, el, instant, nowSeconds, say } from "./common.js";
import { deviceSigner, loadDevice, pairDevice, pairingFailure } from "./device.js";
import {
  bytesToHex,
  parseSignature,
  recoverAddress,
  sameAddress,
  typedDataDigest,
} from "./ethsig.js";
import { callMethod, newIdempotencyKey } from "./signing.js";

const SESSION_ID = /^[A-Za-z0-9._~:-]{1,128}$/;
const CHAINS = {
  1: "Ethereum",
  10: "OP Mainnet",
  137: "Polygon",
  8453: "Base",
  42161: "Arbitrum One",
  11155111: "Sepolia",
  84532: "Base Sepolia",
  31337: "a local test chain",
};
const RULE_OPS = [
  "must be",
  "must not be",
  "must be at most",
  "must be at least",
  "must be one of",
  "must not be any of",
];
const OFFCHAIN_ONLY = 0xffff;
const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
const USER_REJECTED = 4001; // EIP-1193
const WC_USER_REJECTED = 5000; // what WalletConnect wallets answer (the SDK's USER_REJECTED)
// How long the page waits for WalletConnect's relay to answer (the provider retries forever; the
// pairing link exists only once the relay has accepted the connection).
const RELAY_TIMEOUT_MS = 8000;

let signer = null; // this browser's owner device (requests to SessionWard)
let sessionId = null;
let pending = null; // GetSession's answer while pending
let digest = null; // Uint8Array: the grant digest, recomputed here
let labels = new Map(); // lower-case address -> known contract {name, symbol, decimals}
let provider = null;
let account = null; // the connected wallet account
let walletChain = null; // the connected wallet's chain id (number)
let finished = false; // approved, expired or refused for good: no more signing
let walletConnect = null; // {projectId, relayUrl} where the service configures WalletConnect

function setState(state) {
  document.body.dataset.state = state;
}

function chainName(chainId) {
  const name = CHAINS[Number(chainId)];
  return name ? `${name} (chain ${chainId})` : `chain ${chainId}`;
}

function short(address) {
  return `${address.slice(0, 8)}…${address.slice(-4)}`;
}

// --- words for values ---------------------------------------------------------------------

function known(address) {
  return labels.get(String(address).toLowerCase()) || null;
}

/** "Demo Router (0xd5e4…be0d)", "your wallet", "an unknown contract 0x…". */
function nameOf(address) {
  if (sameAddress(address, pending.account)) return "your wallet";
  if (sameAddress(address, ZERO_ADDRESS)) return "nobody (the zero address)";
  const label = known(address);
  if (!label) return `an unknown address ${short(address)}`;
  const symbol = label.symbol && label.symbol !== label.name ? ` (${label.symbol})` : "";
  return `${label.name}${symbol}`;
}

function nativeAmount(wei) {
  return `${decimal(wei, 18, 18)} ${Number(pending.chainId) === 1 ? "ETH" : "native coin"}`;
}

function tokenAmount(token, amount) {
  const label = known(token);
  if (label && label.decimals !== null && label.decimals !== undefined) {
    return `${decimal(amount, label.decimals, label.decimals)} ${label.symbol || label.name}`;
  }
  return `${amount} base units of ${nameOf(token)}`;
}

function period(seconds) {
  const s = Number(seconds);
  if (s === 0) return "for the whole session (no refill)";
  if (s === 86400) return "per day";
  if (s === 3600) return "per hour";
  if (s === 604800) return "per week";
  return `per ${duration(s)}`;
}

/** An ABI word of a rule: an address when it looks like one, else its number. */
function ruleWord(word) {
  const value = BigInt(word);
  if (value > 0n && value < 1n << 160n && word.slice(2, 26) === "0".repeat(24)) {
    return nameOf("0x" + word.slice(26));
  }
  return value.toString(10);
}

/** What one leaf field of the grant means, in a sentence. ``parent`` is the struct holding it. */
function meaning(path, value, parent) {
  const key = path.replace(/\[\d+\]/g, "[]");
  const envelope = pending.grant.message.envelope;
  switch (key) {
    case "domain.name":
      return "A SessionWard session grant (the signing domain).";
    case "domain.version":
      return `Version ${value} of the grant format.`;
    case "domain.chainId":
    case "message.envelope.chainId":
      return `Valid only on ${chainName(value)}.`;
    case "domain.verifyingContract":
      return `Only your wallet contract ${value} accepts this signature.`;
    case "message.account":
      return "Your wallet: the account this session acts for.";
    case "message.sessionKey":
      return "The session's own key, held by SessionWard for the app: the only key that can use this session.";
    case "message.credential":
      return "Fingerprint of the app's SessionWard credential: the session is bound to that app.";
    case "message.nonce":
      return "A one-time number: this grant can be installed once.";
    case "message.epoch":
      return 'Your wallet\'s session epoch now: "revoke all sessions" voids this grant.';
    case "message.revoker":
      return sameAddress(value, ZERO_ADDRESS)
        ? "Only you can revoke this session on chain."
        : "SessionWard's relayer: it may remove this session on chain (never widen it); you can revoke too.";
    case "message.envelope.validAfter":
      return `Usable from ${instant(value)}.`;
    case "message.envelope.expiresAt": {
      const left = Number(value) - nowSeconds();
      return `Ends at ${instant(value)}${left > 0 ? ` (in ${duration(left)})` : " (already past)"}.`;
    }
    case "message.envelope.capabilities[]":
      return `The app asked for: ${value}.`;
    case "message.envelope.permissions[].target":
      return `The contract the app may call: ${nameOf(value)}.`;
    case "message.envelope.permissions[].selector":
      return `The 4-byte id of ${parent.function}.`;
    case "message.envelope.permissions[].function":
      return `The app may call ${value} on ${nameOf(parent.target)}.`;
    case "message.envelope.permissions[].actionClass":
      return value === "custom" ? "A call the app listed itself." : `Counted as the action ${value}.`;
    case "message.envelope.permissions[].maxValuePerCall":
      return BigInt(value) === 0n
        ? "No native coin may be sent with this call."
        : `At most ${nativeAmount(value)} sent with each call.`;
    case "message.envelope.permissions[].rules[].arg":
      return `A condition on the call's argument ${value}.`;
    case "message.envelope.permissions[].rules[].op":
      return `The argument ${parent.arg} ${RULE_OPS[Number(value)] || "(unknown operator)"} the values below.`;
    case "message.envelope.permissions[].rules[].offset":
      return Number(value) === OFFCHAIN_ONLY
        ? "Checked by SessionWard before it signs (the wallet contract cannot read this argument)."
        : "Checked by your wallet contract on every call, and by SessionWard.";
    case "message.envelope.permissions[].rules[].values[]":
      return `${parent.arg}: ${ruleWord(value)}.`;
    case "message.envelope.allowedDestinations[]":
      return `The app may send calls to ${nameOf(value)}.`;
    case "message.envelope.valueLimit":
      return BigInt(value) === 0n
        ? "No native coin may leave your wallet (only fees within the fee budget)."
        : `At most ${nativeAmount(value)} may leave your wallet ${period(envelope.valuePeriod)}.`;
    case "message.envelope.valuePeriod":
      return `The native-coin limit applies ${period(value)}.`;
    case "message.envelope.tokenLimits[].token":
      return `A spending limit on ${nameOf(value)}.`;
    case "message.envelope.tokenLimits[].limit":
      return `At most ${tokenAmount(parent.token, value)} out ${period(parent.period)}.`;
    case "message.envelope.tokenLimits[].period":
      return `This token limit applies ${period(value)}.`;
    case "message.envelope.maxValueUsd":
      return value === ""
        ? "No total in US dollars."
        : `SessionWard refuses more than ${value} USD in total (at live prices).`;
    case "message.envelope.maxUses":
      return Number(value) === 0 ? "No limit on the number of executions." : `At most ${value} executions.`;
    case "message.envelope.rateCount":
      return Number(value) === 0
        ? "No rate limit."
        : `At most ${value} executions per ${duration(envelope.rateInterval)}.`;
    case "message.envelope.rateInterval":
      return Number(value) === 0 ? "No rate limit." : `The rate limit's interval: ${duration(value)}.`;
    case "message.envelope.maxFeeWei":
      return BigInt(value) === 0n
        ? "No fee budget."
        : `At most ${nativeAmount(value)} in fees over the whole session.`;
    default:
      return "A field of the grant (shown as signed).";
  }
}

// --- the grant's fields ------------------------------------------------------------------

/** Rows [path, type, value, parent] for every leaf of ``value`` of EIP-712 type ``type``. */
function leaves(types, type, value, path, parent, out) {
  if (types[type]) {
    for (const field of types[type]) {
      leaves(types, field.type, value[field.name], `${path}.${field.name}`, value, out);
    }
  } else if (type.endsWith("]")) {
    const inner = type.slice(0, type.lastIndexOf("["));
    if (value.length === 0) out.push([path, type, "[] (none)", parent, true]);
    value.forEach((item, i) => leaves(types, inner, item, `${path}[${i}]`, parent, out));
  } else {
    out.push([path, type, value, parent, false]);
  }
  return out;
}

function emptyMeaning(path) {
  if (path.endsWith("tokenLimits")) return "No per-token limits.";
  if (path.endsWith("allowedDestinations")) return "No destination list.";
  if (path.endsWith("rules")) return "No condition on the arguments.";
  return "None.";
}

function renderFields() {
  const { types, domain, message } = pending.grant;
  const rows = [
    ...leaves(types, "EIP712Domain", domain, "domain", null, []),
    ...leaves(types, pending.grant.primaryType, message, "message", null, []),
  ].map(([path, type, value, parent, empty]) =>
    el(
      "tr",
      { dataset: { field: path } },
      el("th", { class: "mono" }, path, el("span", { class: "muted type" }, ` ${type}`)),
      el("td", { class: "mono value" }, String(value)),
      el("td", { class: "meaning" }, empty ? emptyMeaning(path) : meaning(path, value, parent)),
    ),
  );
  document.getElementById("fields").replaceChildren(...rows);
  document.getElementById("digest").textContent = bytesToHex(digest);
  document.getElementById("grant").hidden = false;
}

function renderRequest() {
  const summary = document.getElementById("summary");
  summary.replaceChildren(
    ...pending.summary.split("\n").map((line, i) =>
      el("p", { class: i === 0 && line.startsWith("App ") ? "app-label" : null }, line),
    ),
  );
  const facts = [
    ["Session", pending.sessionId],
    ["Your wallet", pending.account],
    ["Owner (must sign)", pending.owner],
    ["Chain", chainName(pending.chainId)],
    ["Valid", `${instant(pending.validAfter)} to ${instant(pending.expiresAt)}`],
  ];
  const dl = document.getElementById("facts");
  dl.replaceChildren(
    ...facts.flatMap(([term, text]) => [el("dt", {}, term), el("dd", { class: "mono" }, text)]),
    el("dt", {}, "Approve before"),
    el("dd", { id: "time-left" }, ""),
  );
  document.getElementById("request").hidden = false;
  tick();
}

// --- checks -------------------------------------------------------------------------------

/** The document the wallet will sign is the one SessionWard stored, for this wallet. */
function checkGrant() {
  const grant = pending.grant;
  const problems = [];
  digest = typedDataDigest(grant);
  if (bytesToHex(digest) !== String(pending.grantDigest).toLowerCase()) {
    problems.push("its digest is not the one SessionWard stored");
  }
  if (Number(grant.domain.chainId) !== Number(pending.chainId)) problems.push("another chain");
  if (!sameAddress(grant.domain.verifyingContract, pending.account)) problems.push("another wallet");
  if (!sameAddress(grant.message.account, pending.account)) problems.push("another account");
  if (!sameAddress(grant.message.sessionKey, pending.sessionKey)) problems.push("another key");
  if (Number(grant.message.envelope.expiresAt) !== Number(pending.expiresAt)) {
    problems.push("another expiry");
  }
  return problems;
}

function expired() {
  return pending && Number(pending.expiresAt) <= nowSeconds();
}

function showExpired() {
  finished = true;
  setState("expired");
  document.getElementById("sign").disabled = true;
  document.getElementById("connect").disabled = true;
  document.getElementById("connect-wc").disabled = true;
  say(
    `This request expired at ${instant(pending.expiresAt)}: it can no longer be approved. ` +
      "Ask the app to request access again.",
    "error",
  );
}

function tick() {
  const cell = document.getElementById("time-left");
  if (!pending || !cell) return;
  if (document.body.dataset.state === "approved") {
    cell.textContent = "approved";
    return;
  }
  const left = Number(pending.expiresAt) - nowSeconds();
  cell.textContent = left > 0 ? `${instant(pending.expiresAt)} (${duration(left)} left)` : "expired";
  if (left <= 0 && !finished) showExpired();
}

// --- the wallet ---------------------------------------------------------------------------

function walletError(error, what) {
  if (error && (error.code === USER_REJECTED || error.code === WC_USER_REJECTED)) {
    setState("rejected");
    say(`You rejected ${what} in your wallet. Nothing was approved; you can try again.`, "error");
    return;
  }
  setState("error");
  say(`Your wallet could not complete ${what}: ${(error && error.message) || error}`, "error");
}

/** Compare the connected account and chain with the wallet's owner and chain. */
function checkConnection() {
  if (finished) return;
  const sign = document.getElementById("sign");
  const switcher = document.getElementById("switch-chain");
  sign.disabled = true;
  switcher.hidden = true;
  const line = document.getElementById("wallet-line");
  if (!account) return;
  line.textContent = `Connected: ${account} on ${chainName(walletChain)}.`;
  if (!sameAddress(account, pending.owner)) {
    setState("wrong-account");
    say(
      `The connected account ${account} is not this wallet's owner (${pending.owner}). ` +
        "Choose the owner account in your wallet.",
      "error",
    );
    return;
  }
  if (walletChain !== Number(pending.chainId)) {
    setState("wrong-chain");
    switcher.hidden = false;
    say(
      `Your wallet is on ${chainName(walletChain)}; this wallet lives on ${chainName(pending.chainId)}. ` +
        "Switch network in your wallet.",
      "error",
    );
    return;
  }
  setState("connected");
  sign.disabled = false;
  say("Your wallet is connected as the owner. Review the fields below, then sign.", "ok");
}

async function readConnection() {
  const accounts = await provider.request({ method: "eth_accounts" });
  account = accounts && accounts.length ? accounts[0] : null;
  walletChain = Number(BigInt(await provider.request({ method: "eth_chainId" })));
}

async function connectWallet() {
  provider = window.ethereum;
  if (!provider || typeof provider.request !== "function") {
    setState("no-wallet");
    say("No browser wallet found (window.ethereum). Install or unlock one, then reload.", "error");
    return;
  }
  try {
    const accounts = await provider.request({ method: "eth_requestAccounts" });
    account = accounts && accounts.length ? accounts[0] : null;
    walletChain = Number(BigInt(await provider.request({ method: "eth_chainId" })));
  } catch (error) {
    walletError(error, "the connection");
    return;
  }
  watchProvider();
}

class RelayUnreachable extends Error {}

function relayHost() {
  try {
    return new URL(walletConnect.relayUrl).host;
  } catch {
    return walletConnect.relayUrl;
  }
}

/** Pair with a phone wallet through WalletConnect (v2, EthereumProvider), then use it as the
 *  EIP-1193 provider: the same account, chain and signature checks as window.ethereum. */
async function connectWalletConnect() {
  setState("wc-connecting");
  say(`Connecting to WalletConnect's relay (${relayHost()})…`);
  const { EthereumProvider } = await import("./walletconnect.js");
  const wc = await EthereumProvider.init({
    projectId: walletConnect.projectId,
    relayUrl: walletConnect.relayUrl,
    chains: [Number(pending.chainId)],
    // The one method this page asks the wallet for: unless the session grants it, the provider
    // would send it to WalletConnect's public RPC node instead of the wallet.
    methods: ["eth_signTypedData_v4"],
    showQrModal: false,
    telemetryEnabled: false, // no usage events to WalletConnect's servers
    metadata: {
      name: "SessionWard",
      description: "Approve a session for your wallet",
      url: location.origin,
      icons: [],
    },
  });
  let paired = false;
  wc.on("display_uri", (uri) => {
    paired = true;
    document.getElementById("wc-uri").textContent = uri;
    document.getElementById("wc-pairing").hidden = false;
    setState("wc-pairing");
    say("Approve the connection in your wallet app (scan or paste the WalletConnect link).");
  });
  const unreachable = new Promise((_, reject) =>
    setTimeout(() => {
      if (!paired) reject(new RelayUnreachable());
    }, RELAY_TIMEOUT_MS),
  );
  try {
    await Promise.race([wc.connect(), unreachable]);
  } catch (error) {
    if (error instanceof RelayUnreachable) {
      setState("wc-unreachable");
      say(
        `WalletConnect's relay (${relayHost()}) cannot be reached from this browser, so no ` +
          "phone wallet can connect through it. Nothing was signed or approved. Use a browser " +
          "wallet (Connect wallet), or try WalletConnect again once the relay is reachable.",
        "error",
      );
      return;
    }
    walletError(error, "the WalletConnect connection");
    return;
  }
  document.getElementById("wc-pairing").hidden = true;
  // A wallet may approve the session without the method the page needs; the provider would then
  // send the grant to WalletConnect's RPC node instead of the wallet. Never ask; say so.
  const granted = wc.session?.namespaces?.eip155?.methods || [];
  if (!granted.includes("eth_signTypedData_v4")) {
    setState("wc-unsupported");
    say(
      "Your wallet connected through WalletConnect but does not allow signing typed data " +
        "(eth_signTypedData_v4), which approving needs. Nothing was signed or approved. " +
        "Use a wallet that supports it, or a browser wallet (Connect wallet).",
      "error",
    );
    await wc.disconnect().catch(() => {});
    return;
  }
  provider = wc;
  await readConnection();
  watchProvider();
}

function watchProvider() {
  if (typeof provider.on === "function") {
    provider.on("accountsChanged", (accounts) => {
      account = accounts && accounts.length ? accounts[0] : null;
      checkConnection();
    });
    provider.on("chainChanged", (chainId) => {
      walletChain = Number(BigInt(chainId));
      checkConnection();
    });
  }
  document.getElementById("connect").textContent = "Reconnect";
  checkConnection();
}

async function switchChain() {
  try {
    await provider.request({
      method: "wallet_switchEthereumChain",
      params: [{ chainId: "0x" + Number(pending.chainId).toString(16) }],
    });
    await readConnection();
    checkConnection();
  } catch (error) {
    walletError(error, "the network switch");
  }
}

async function signAndApprove() {
  const sign = document.getElementById("sign");
  sign.disabled = true;
  if (expired()) return showExpired();
  await readConnection(); // the wallet's state now, not when it was connected
  checkConnection();
  if (document.body.dataset.state !== "connected") return;
  sign.disabled = true;
  setState("signing");
  say("Confirm the signature in your wallet…");
  let signature;
  try {
    signature = await provider.request({
      method: "eth_signTypedData_v4",
      params: [account, JSON.stringify(pending.grant)],
    });
  } catch (error) {
    walletError(error, "the signature");
    sign.disabled = false;
    return;
  }
  // Checked here before anything is sent: the signer must be the owner.
  let canonical;
  try {
    canonical = parseSignature(signature).canonical;
    const signedBy = recoverAddress(digest, signature);
    if (!sameAddress(signedBy, pending.owner)) {
      setState("wrong-account");
      say(
        `Your wallet signed with ${signedBy}, not with the owner ${pending.owner}. Nothing was sent.`,
        "error",
      );
      sign.disabled = false;
      return;
    }
  } catch (error) {
    setState("error");
    say(`The wallet's signature is not usable (${error.message}). Nothing was sent.`, "error");
    sign.disabled = false;
    return;
  }
  if (expired()) return showExpired();
  say("Signature checked. Sending the approval…");
  try {
    const approved = await callMethod(
      signer,
      "ApproveSession",
      { sessionId, signature: canonical },
      { idempotencyKey: newIdempotencyKey() },
    );
    finished = true;
    setState("approved");
    document.body.dataset.lifecycle = approved.lifecycle;
    document.getElementById("connect").disabled = true;
    document.getElementById("connect-wc").disabled = true;
    say(
      `Approved. SessionWard is installing the session on your wallet (${approved.lifecycle}); ` +
        "you can review or revoke it on the review page.",
      "ok",
    );
  } catch (error) {
    refused(error);
    if (!finished) sign.disabled = false;
  }
}

function refused(error) {
  const code = error && error.code;
  if (code === "SESSION_EXPIRED") return showExpired();
  if (code === "SESSION_NOT_PENDING" || code === "SESSION_REVOKED") {
    finished = true;
    setState("not-pending");
    say(`This request can no longer be approved (${code}).`, "error");
    return;
  }
  if (code === "GLOBAL_FREEZE") {
    setState("error");
    say("SessionWard's operators have frozen all sessions: nothing can be approved now.", "error");
    return;
  }
  setState("error");
  say(`SessionWard refused the approval: ${error.message}`, "error");
}

// --- loading ------------------------------------------------------------------------------

async function loadLabels() {
  try {
    const response = await fetch("/ui/api/contracts", { credentials: "omit", cache: "no-store" });
    const doc = await response.json();
    labels = new Map(
      doc.contracts
        .filter((c) => Number(c.chainId) === Number(pending.chainId))
        .map((c) => [c.address.toLowerCase(), c]),
    );
  } catch (_) {
    labels = new Map(); // addresses are then shown as such
  }
}

const NOT_PENDING = {
  active: "This session is already approved and active.",
  suspended: "This session is suspended by a safety rule; renew it from your wallet app.",
  revoked: "This session was revoked.",
  expired: "This request expired: ask the app to request access again.",
};

async function load() {
  setState("loading");
  say("Loading the request…");
  let detail;
  try {
    detail = await callMethod(signer, "GetSession", { sessionId });
  } catch (error) {
    if (["CREDENTIAL_REVOKED", "CREDENTIAL_EXPIRED", "CREDENTIAL_UNKNOWN"].includes(error.code)) {
      setState("pair");
      say(`This browser's device is no longer accepted (${error.code}): pair it again.`, "error");
      document.getElementById("pair").hidden = false;
      return;
    }
    setState("error");
    if (error.code === "ROLE_FORBIDDEN") {
      say("This request belongs to another wallet than the one this browser is paired with.", "error");
    } else if (error.code === "SESSION_UNKNOWN") {
      say("No such request: check the link your app opened.", "error");
    } else {
      say(`Could not load the request: ${error.message}`, "error");
    }
    return;
  }
  pending = detail;
  if (detail.lifecycle !== "pending_approval" || !detail.grant) {
    finished = true;
    setState(detail.status === "expired" ? "expired" : "not-pending");
    const text =
      detail.lifecycle === "installing"
        ? "This session is already approved; SessionWard is installing it."
        : NOT_PENDING[detail.status] || `This session is ${detail.status}.`;
    say(text, detail.status === "active" ? "ok" : "error");
    return;
  }
  if (detail.ownerKind !== "eoa") {
    finished = true;
    setState("error");
    say("This wallet's owner is a contract account: approve from that account's own app.", "error");
    return;
  }
  await loadLabels();
  let problems;
  try {
    problems = checkGrant();
  } catch (error) {
    problems = [error.message];
  }
  renderRequest();
  if (problems.length) {
    finished = true;
    setState("mismatch");
    say(`This grant does not check out (${problems.join(", ")}): do not sign it.`, "error");
    return;
  }
  renderFields();
  document.getElementById("wallet").hidden = false;
  if (expired()) return showExpired();
  setState("ready");
  say("Check what the app asks for, then connect your wallet to sign.");
}

async function start(device) {
  signer = deviceSigner(device);
  const who = document.getElementById("who");
  who.textContent = `Wallet ${device.walletId} · this browser is device ${device.credentialId}`;
  who.hidden = false;
  await load();
}

function onPairSubmit(event) {
  event.preventDefault();
  const form = event.target;
  const code = form.elements.pairingCode.value.trim();
  const label = form.elements.label.value.trim();
  form.elements.pairingCode.value = "";
  if (!code) return say("Type the pairing code your wallet app shows.", "error");
  say("Pairing this browser…");
  pairDevice(code, label)
    .then((device) => {
      document.getElementById("pair").hidden = true;
      return start(device);
    })
    .catch((error) => say(pairingFailure(error), "error"));
}

/** Whether the service offers WalletConnect (/ui/api/wallets); without an answer, only the
 *  browser wallet is offered. */
async function loadWalletOptions() {
  try {
    const response = await fetch("/ui/api/wallets", { headers: { accept: "application/json" } });
    if (response.ok) walletConnect = (await response.json()).walletConnect || null;
  } catch {
    walletConnect = null;
  }
  document.getElementById("connect-wc").hidden = walletConnect === null;
}

async function main() {
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("pair-form").addEventListener("submit", onPairSubmit);
  document.getElementById("connect").addEventListener("click", () => {
    connectWallet().catch((error) => walletError(error, "the connection"));
  });
  document.getElementById("connect-wc").addEventListener("click", () => {
    connectWalletConnect().catch((error) => walletError(error, "the WalletConnect connection"));
  });
  await loadWalletOptions();
  document.getElementById("switch-chain").addEventListener("click", () => switchChain());
  document.getElementById("sign").addEventListener("click", () => {
    signAndApprove().catch((error) => {
      setState("error");
      say(`Could not approve: ${error.message}`, "error");
    });
  });
  setInterval(tick, 1000);
  sessionId = new URLSearchParams(location.search).get("session");
  if (!sessionId || !SESSION_ID.test(sessionId)) {
    setState("error");
    say("This link names no request (it needs ?session=<id>). Open it again from your app.", "error");
    return;
  }
  const device = await loadDevice();
  if (device) await start(device);
  else {
    setState("pair");
    say("Pair this browser with your wallet to see the request.");
    document.getElementById("pair").hidden = false;
  }
}

main().catch((error) => say(`Could not start: ${error.message}`, "error"));
