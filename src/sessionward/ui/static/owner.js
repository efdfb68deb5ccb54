// The owner's review page: every session of the wallet in plain language, its usage against
// each limit, the time it has left, its status, and a revoke button.
//
// Reads: ListAccess one keyset page at a time (the first page on load, the next one when the
// owner asks with "Show more sessions"), GetSessionUsage for the cards of that page only,
// InspectCredential (public) for each backend's display name once. So the first page costs the
// same whatever the number of sessions the wallet holds (issue 14: 10,000 sessions). Cards are
// shown in the server's order (session id), page after page. Revoke: RevokeAccess(walletId, credentialId, sessionId), then
// GetSession to show the server's word on it.
//
// Every request is signed here by this browser's owner *device* key (device.js): made by
// WebCrypto as non-extractable, kept in IndexedDB, paired by the owner's one-time code typed
// into the pairing form. The page reads nothing from its URL: a fragment (an old-style link
// with a key in it) is ignored and removed from the address bar at once.

import { duration, el, instant, nowSeconds, percent, say, decimal } from "./common.js";
import { deviceSigner, forgetDevice, loadDevice, pairDevice, pairingFailure } from "./device.js";
import { callMethod, callPublic, newIdempotencyKey } from "./signing.js";

const STATUS_TEXT = {
  active: "Active",
  pending: "Waiting for your approval",
  suspended: "Suspended by a safety rule",
  revoked: "Revoked",
  expired: "Expired",
};
const STILL_RUNNING = new Set(["active", "pending", "suspended"]);
const PAGE_LIMIT = 100; // devices: every page (a wallet has few)
const SESSION_PAGE = 10; // sessions per page: one ListAccess and this many usage reads

let signer = null;
let walletId = null;
let nextCursor = null; // where the next page of sessions starts; null: every page is shown
let generation = 0; // bumped by each reload: a page that arrives for an older load is dropped
const appNames = new Map(); // backend credentialId -> display name (public metadata)

/** The status shown: the server's, except an active session past its expiry is "expired". */
function shownStatus(session) {
  if (session.status === "active" && session.expiresAt <= nowSeconds()) return "expired";
  return session.status;
}

function timeLeftText(expiresAt, status) {
  if (status === "revoked") return "none (revoked)";
  const left = expiresAt - nowSeconds();
  return left > 0 ? `${duration(left)} left` : "none (expired)";
}

/** Micro-USD (how the service counts USD) as dollars and cents. */
function usd(micro) {
  return decimal(micro, 6, 2, { fixed: true });
}

/** A limit's label and amounts in words: [label, "spent of max" text]. */
function describeLimit(item) {
  const { limit, spent, max } = item;
  const unlimited = BigInt(max) <= 0n;
  if (limit === "maxUses") {
    return ["Uses", unlimited ? `${spent} uses (no limit)` : `${spent} of ${max} uses`];
  }
  if (limit === "maxValueUsd") {
    return ["Value in USD", `${usd(spent)} USD of ${usd(max)} USD`];
  }
  if (limit === "valueLimit") {
    return ["ETH sent (this period)", `${decimal(spent, 18)} ETH of ${decimal(max, 18)} ETH`];
  }
  if (limit === "maxFeeWei") {
    return ["Fees", `${decimal(spent, 18)} ETH of ${decimal(max, 18)} ETH`];
  }
  if (limit === "rateLimit") {
    return ["Calls (this interval)", `${spent} of ${max} calls`];
  }
  const token = /^tokenLimits\[(0x[0-9a-fA-F]+)\]$/.exec(limit);
  if (token) {
    const short = token[1].slice(0, 8) + "…";
    return [`Token ${short} (this period)`, `${spent} of ${max} base units`];
  }
  return [limit, `${spent} of ${max}`];
}

function usageRow(item) {
  const [label, amounts] = describeLimit(item);
  const pct = percent(item.spent, item.max);
  const fill = el("div", { class: "meter-fill" });
  const width = pct === null ? 0 : Math.min(100, Number(pct));
  fill.style.width = `${width}%`;
  const level = width >= 100 ? "full" : width >= 75 ? "high" : "ok";
  return el(
    "div",
    { class: "limit", dataset: { limit: item.limit, percent: pct ?? "" } },
    el(
      "div",
      { class: "limit-head" },
      el("span", { class: "limit-label" }, label),
      el("span", { class: "limit-amount" }, amounts),
      el("span", { class: "limit-percent" }, pct === null ? "no limit" : `${pct}%`),
    ),
    el(
      "div",
      {
        class: `meter meter-${level}`,
        role: "progressbar",
        "aria-label": label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": width,
      },
      fill,
    ),
  );
}

function revokeControls(session, card) {
  const box = el("div", { class: "actions" });
  const start = el("button", { type: "button", class: "revoke" }, "Revoke access");
  const ask = el(
    "div",
    { class: "confirm", hidden: true },
    el("span", {}, "Stop this session now? The backend loses access at once."),
    el("button", { type: "button", class: "revoke-confirm danger" }, "Yes, revoke"),
    el("button", { type: "button", class: "revoke-cancel" }, "Keep it"),
  );
  start.addEventListener("click", () => {
    start.hidden = true;
    ask.hidden = false;
    ask.querySelector(".revoke-confirm").focus();
  });
  ask.querySelector(".revoke-cancel").addEventListener("click", () => {
    ask.hidden = true;
    start.hidden = false;
  });
  ask.querySelector(".revoke-confirm").addEventListener("click", (event) => {
    event.target.disabled = true;
    revoke(session, card).catch((error) => {
      say(`Revoking failed: ${error.message}`, "error");
      event.target.disabled = false;
    });
  });
  box.append(start, ask);
  return box;
}

async function revoke(session, card) {
  say("Revoking…");
  await callMethod(
    signer,
    "RevokeAccess",
    { walletId, credentialId: session.credentialId, sessionId: session.sessionId },
    { idempotencyKey: newIdempotencyKey() },
  );
  // The server's word, not the answer's list: a session another path revoked meanwhile is
  // not in revokedSessions, yet it is revoked all the same.
  const fresh = await callMethod(signer, "GetSession", { sessionId: session.sessionId });
  if (fresh.status !== "revoked") throw new Error("the server does not show the session revoked");
  const usage = await callMethod(signer, "GetSessionUsage", { sessionId: session.sessionId });
  card.replaceWith(sessionCard(fresh, usage));
  say(`Session ${session.sessionId} revoked (${fresh.revokedBy}).`, "ok");
  renderCounts();
}

function sessionCard(session, usage) {
  const status = shownStatus(session);
  const app = appNames.get(session.credentialId) || session.credentialId;
  const card = el("article", {
    class: `session status-${status}`,
    dataset: { sessionId: session.sessionId, status },
  });
  const timeLeft = el(
    "dd",
    { class: "time-left", dataset: { expiresAt: session.expiresAt } },
    timeLeftText(session.expiresAt, status),
  );
  card.append(
    el(
      "header",
      {},
      el("h2", {}, app),
      el("span", { class: `badge badge-${status}` }, STATUS_TEXT[status] || status),
    ),
    el("p", { class: "summary" }, session.summary),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Time left"),
      timeLeft,
      el("dt", {}, "Ends"),
      el("dd", {}, instant(session.expiresAt)),
      el("dt", {}, "Session"),
      el("dd", { class: "mono" }, session.sessionId),
    ),
  );
  if (session.status === "revoked") {
    card.append(
      el(
        "p",
        { class: "revoked-by" },
        `Revoked by ${session.revokedBy} at ${instant(session.revokedAt)}`,
        session.revokeReason ? ` — ${session.revokeReason}` : "",
      ),
    );
  }
  const limits = el("div", { class: "usage", "aria-label": "Usage against each limit" });
  for (const item of usage.limits) limits.append(usageRow(item));
  card.append(el("h3", {}, "Usage"), limits);
  if (session.lifecycle === "pending_approval") {
    // The approval page reads the pending grant itself; only the (public) session id is passed.
    const link = el(
      "a",
      { class: "approve-link", href: `/ui/approve?session=${encodeURIComponent(session.sessionId)}` },
      "Review and approve with your wallet",
    );
    card.append(el("p", { class: "actions" }, link));
  }
  if (STILL_RUNNING.has(session.status)) card.append(revokeControls(session, card));
  return card;
}

function renderCounts() {
  const cards = [...document.querySelectorAll("article.session")];
  const counts = {};
  for (const card of cards) counts[card.dataset.status] = (counts[card.dataset.status] || 0) + 1;
  const parts = Object.entries(counts).map(([status, n]) => `${n} ${status}`);
  const more = nextCursor ? " (more on the next pages)" : "";
  document.getElementById("counts").textContent = cards.length
    ? `${cards.length} sessions shown${more}: ${parts.join(", ")}`
    : "No sessions on this wallet yet.";
}

/** One page of sessions after ``cursor`` with the usage of each: ``{sessions, usages,
 * cursor}``. Only this page's usages are read. */
async function sessionPage(cursor) {
  const body = { walletId, limit: SESSION_PAGE };
  if (cursor) body.cursor = cursor;
  const page = await callMethod(signer, "ListAccess", body);
  const sessions = page.items;
  const [usages] = await Promise.all([
    Promise.all(
      sessions.map((s) => callMethod(signer, "GetSessionUsage", { sessionId: s.sessionId })),
    ),
    Promise.all([...new Set(sessions.map((s) => s.credentialId))].map(learnAppName)),
  ]);
  return { sessions, usages, cursor: page.nextCursor };
}

/** Show the "Show more sessions" control when there is a next page. */
function renderMore() {
  const button = document.getElementById("load-more");
  button.hidden = !nextCursor;
  button.disabled = false;
}

async function learnAppName(credentialId) {
  if (appNames.has(credentialId)) return;
  try {
    const info = await callPublic("InspectCredential", { credentialId });
    appNames.set(credentialId, info.appName || credentialId);
  } catch (_) {
    appNames.set(credentialId, credentialId); // a retired backend: its id says enough
  }
}

const DEVICE_STATUS = { active: "Active", expired: "Expired", revoked: "Revoked" };

/** Every device of the wallet (ListDevices, every page), this browser's marked. */
async function loadDevices() {
  const devices = [];
  let cursor = null;
  do {
    const body = { walletId, limit: PAGE_LIMIT };
    if (cursor) body.cursor = cursor;
    const page = await callMethod(signer, "ListDevices", body);
    devices.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  const rows = devices.map((d) => {
    const mine = d.credentialId === signer.credentialId;
    return el(
      "tr",
      { dataset: { device: d.credentialId, status: d.status }, class: mine ? "this-device" : null },
      el("td", { class: "mono" }, d.credentialId, mine ? " (this browser)" : ""),
      el("td", {}, d.label || "—"),
      el("td", {}, DEVICE_STATUS[d.status] || d.status),
      el("td", {}, `${instant(d.createdAt)} (${d.pairedVia})`),
      el("td", {}, d.expiresAt ? instant(d.expiresAt) : "never"),
    );
  });
  document.getElementById("device-rows").replaceChildren(...rows);
  document.getElementById("devices").hidden = false;
}

/** The first page of sessions (a reload starts over), then the devices. */
async function load() {
  const mine = ++generation;
  const started = performance.now();
  say("Loading your sessions…");
  document.getElementById("load-more").hidden = true;
  const page = await sessionPage(null);
  if (mine !== generation) return;
  nextCursor = page.cursor;
  const cards = page.sessions.map((s, i) => sessionCard(s, page.usages[i]));
  document.getElementById("sessions").replaceChildren(...cards);
  renderCounts();
  renderMore();
  document.body.dataset.firstPageMs = String(Math.round(performance.now() - started));
  await loadDevices();
  if (mine !== generation) return;
  const more = nextCursor ? " More are on the next pages." : "";
  say(`Showing ${cards.length} sessions (${instant(nowSeconds())}).${more}`, "ok");
  document.body.dataset.loaded = "true";
}

/** The next page of sessions, appended below the cards already shown. */
async function loadMore() {
  if (!nextCursor) return;
  const mine = generation;
  const button = document.getElementById("load-more");
  button.disabled = true;
  say("Loading more sessions…");
  const page = await sessionPage(nextCursor);
  if (mine !== generation) return;
  nextCursor = page.cursor;
  const list = document.getElementById("sessions");
  list.append(...page.sessions.map((s, i) => sessionCard(s, page.usages[i])));
  renderCounts();
  renderMore();
  const shown = list.querySelectorAll("article.session").length;
  const more = nextCursor ? " More are on the next pages." : " That is every session.";
  say(`Showing ${shown} sessions.${more}`, "ok");
}

function tick() {
  for (const cell of document.querySelectorAll(".time-left")) {
    const card = cell.closest("article.session");
    cell.textContent = timeLeftText(Number(cell.dataset.expiresAt), card.dataset.status);
  }
}

// A device the server no longer accepts: the exact code and what the owner should do.
const DEAD_DEVICE = {
  CREDENTIAL_REVOKED: ["revoked", "This browser's device was revoked by the wallet's owner."],
  CREDENTIAL_EXPIRED: ["expired", "This browser's device has expired."],
  CREDENTIAL_UNKNOWN: ["unknown", "The service does not know this browser's device."],
};

/** Show why the device is refused and offer pairing again (the old key is useless now). */
function deviceRefused(error) {
  const [state, text] = DEAD_DEVICE[error.code];
  document.body.dataset.deviceState = state;
  document.body.dataset.loaded = "false";
  nextCursor = null;
  document.getElementById("sessions").replaceChildren();
  document.getElementById("counts").textContent = "";
  document.getElementById("reload").hidden = true;
  document.getElementById("load-more").hidden = true;
  document.getElementById("devices").hidden = true;
  say(`${text} Pair it again with a new code from your wallet app (${error.code}).`, "error");
  showPairing();
}

/** Run ``work``; a refusal of the device itself switches the page to pairing. */
async function guarded(work) {
  try {
    await work();
  } catch (error) {
    if (error && DEAD_DEVICE[error.code]) deviceRefused(error);
    else {
      say(`Could not load: ${error.message}`, "error");
      if (nextCursor) renderMore(); // the owner may try the next page again
    }
  }
}

function showPairing() {
  document.getElementById("pair").hidden = false;
  document.getElementById("pair-form").elements.pairingCode.focus();
}

function onPairSubmit(event) {
  event.preventDefault();
  const form = event.target;
  const code = form.elements.pairingCode.value.trim();
  const label = form.elements.label.value.trim();
  form.elements.pairingCode.value = ""; // the code is a secret until used: not kept in the DOM
  if (!code) {
    say("Type the pairing code your wallet app shows.", "error");
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  say("Pairing this browser…");
  pairDevice(code, label)
    .then((device) => {
      document.getElementById("pair").hidden = true;
      return start(device);
    })
    .catch((error) => say(pairingFailure(error), "error"))
    .finally(() => {
      button.disabled = false;
    });
}

async function forget() {
  // Revoke this device at the server first (a copy of the profile is then worthless too).
  try {
    await callMethod(signer, "RevokeDevice", { walletId, credentialId: signer.credentialId });
  } catch (error) {
    if (!DEAD_DEVICE[error.code]) throw error;
  }
  await forgetDevice();
  signer = null;
  document.body.dataset.device = "";
  document.body.dataset.loaded = "false";
  document.getElementById("sessions").replaceChildren();
  document.getElementById("counts").textContent = "";
  document.getElementById("who").hidden = true;
  document.getElementById("reload").hidden = true;
  document.getElementById("forget").hidden = true;
  document.getElementById("load-more").hidden = true;
  document.getElementById("devices").hidden = true;
  nextCursor = null;
  say("This browser is unpaired; its device key is revoked and deleted.", "ok");
  showPairing();
}

async function start(device) {
  signer = deviceSigner(device);
  walletId = device.walletId;
  document.body.dataset.device = device.credentialId;
  document.body.dataset.deviceState = "paired";
  const who = document.getElementById("who");
  const until = device.expiresAt ? `, paired until ${instant(device.expiresAt)}` : "";
  who.textContent = `Wallet ${walletId} · this browser is device ${device.credentialId}${until} (its key cannot leave this browser)`;
  who.hidden = false;
  document.getElementById("reload").hidden = false;
  document.getElementById("forget").hidden = false;
  await guarded(load);
}

async function main() {
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("pair-form").addEventListener("submit", onPairSubmit);
  document.getElementById("reload").addEventListener("click", () => guarded(load));
  document.getElementById("load-more").addEventListener("click", () => guarded(loadMore));
  document.getElementById("forget").addEventListener("click", () => {
    forget().catch((error) => say(`Could not unpair: ${error.message}`, "error"));
  });
  setInterval(tick, 1000);
  const device = await loadDevice();
  if (device) await start(device);
  else showPairing();
}

main().catch((error) => say(`Could not start: ${error.message}`, "error"));
