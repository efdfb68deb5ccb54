// The ops console: this week's alerts, the freezes in force and the week's delegation-health
// numbers, from GET /ui/api/ops/overview signed by an ops credential (P-256) in this page.

import { connect, duration, el, instant, plural, rate, say } from "./common.js";
import { signedGet } from "./signing.js";

const OVERVIEW = "/ui/api/ops/overview";

let signer = null;

function tile(metric, label, value, detail) {
  return el(
    "div",
    { class: "tile", dataset: { metric } },
    el("div", { class: "tile-label" }, label),
    el("div", { class: "tile-value" }, value),
    el("div", { class: "tile-detail" }, detail),
  );
}

function renderMetrics(m) {
  const d = m.decisions;
  const ttr = m.timeToRevoke;
  const life = m.sessionLifetime.overall;
  document.getElementById("metrics").replaceChildren(
    tile("decisions", "Delegated decisions", d.total, `${d.allowed} allowed, ${d.denied} denied`),
    tile("denial-rate", "Denial rate", rate(d.denialRate), `${d.denied} of ${d.total}`),
    tile(
      "context-mismatch-rate",
      "Context mismatches",
      rate(m.contextMismatch.rate),
      `${m.contextMismatch.decisions} of ${d.total}`,
    ),
    tile(
      "post-revocation-attempts",
      "Post-revocation attempts",
      m.postRevocation.attempts,
      plural(m.postRevocation.byCredential.length, "credential"),
    ),
    tile(
      "time-to-revoke",
      "Time to revoke (p50 / p95)",
      ttr.p50Seconds === null ? "n/a" : `${duration(ttr.p50Seconds)} / ${duration(ttr.p95Seconds)}`,
      `${ttr.stopped} of ${ttr.criticalAlerts} critical alerts stopped`,
    ),
    tile(
      "session-lifetime",
      "Mean session lifetime",
      life.meanSeconds === null ? "n/a" : duration(life.meanSeconds),
      `${plural(life.sessions, "session")} ended`,
    ),
  );
  const reasons = document.getElementById("reasons");
  reasons.replaceChildren(
    ...m.denialsByReason.map((r) =>
      el(
        "tr",
        { dataset: { reason: r.reason } },
        el("td", { class: "mono" }, r.reason),
        el("td", { class: "num" }, r.denied),
        el("td", { class: "num" }, rate(r.shareOfDenials)),
      ),
    ),
  );
  document.getElementById("reasons-empty").hidden = m.denialsByReason.length > 0;
  renderDaily(m.daily);
}

function renderDaily(days) {
  const most = Math.max(1, ...days.map((day) => day.allowed + day.denied));
  const chart = document.getElementById("daily");
  chart.replaceChildren(
    ...days.map((day) => {
      const allowed = el("div", { class: "bar-allowed" });
      const denied = el("div", { class: "bar-denied" });
      allowed.style.height = `${(100 * day.allowed) / most}%`;
      denied.style.height = `${(100 * day.denied) / most}%`;
      return el(
        "div",
        {
          class: "day",
          dataset: { day: day.day, allowed: day.allowed, denied: day.denied },
          title: `${day.day}: ${day.allowed} allowed, ${day.denied} denied`,
        },
        el("div", { class: "bars" }, denied, allowed),
        el("div", { class: "day-label" }, day.day.slice(5)),
      );
    }),
  );
}

function alertTarget(alert) {
  const detail = alert.detail || {};
  if (detail.scope) return detail.target ? `${detail.scope} ${detail.target}` : detail.scope;
  return alert.sessionId || alert.credentialId || alert.walletId || "";
}

function renderAlerts(alerts, total) {
  document.getElementById("alerts").replaceChildren(
    ...alerts.map((a) =>
      el(
        "tr",
        { class: `severity-${a.severity}`, dataset: { alertId: a.id, rule: a.rule } },
        el("td", {}, instant(a.at)),
        el("td", {}, el("span", { class: `badge badge-${a.severity}` }, a.severity)),
        el("td", { class: "mono nowrap" }, a.rule),
        el("td", { class: "mono" }, alertTarget(a)),
        el("td", {}, (a.detail && a.detail.reason) || ""),
        el("td", {}, a.actionTaken || "none yet"),
        el("td", { class: "num" }, a.secondsToAction === null ? "—" : duration(a.secondsToAction)),
      ),
    ),
  );
  document.getElementById("alerts-empty").hidden = alerts.length > 0;
  document.getElementById("alerts-count").textContent =
    total > alerts.length ? `(newest ${alerts.length} of ${total})` : `(${total})`;
}

function renderFreezes(freezes) {
  document.getElementById("freezes").replaceChildren(
    ...freezes.map((f) =>
      el(
        "tr",
        { dataset: { freezeId: f.id, scope: f.scope } },
        el("td", {}, f.scope),
        el("td", { class: "mono" }, f.target ?? "everything"),
        el("td", {}, f.reason),
        el("td", { class: "mono" }, f.createdBy),
        el("td", {}, instant(f.createdAt)),
      ),
    ),
  );
  document.getElementById("freezes-empty").hidden = freezes.length > 0;
  document.getElementById("freezes-count").textContent = `(${freezes.length})`;
}

async function load() {
  say("Loading…");
  const doc = await signedGet(signer, OVERVIEW);
  const period = document.getElementById("period");
  period.textContent = `${instant(doc.period.since)} to ${instant(doc.period.until)}`;
  period.dataset.since = doc.period.since;
  period.dataset.until = doc.period.until;
  renderMetrics(doc.metrics);
  renderAlerts(doc.alerts, doc.alertsTotal);
  renderFreezes(doc.freezes);
  say(`Updated at ${instant(doc.generatedAt)}.`, "ok");
  document.body.dataset.loaded = "true";
}

async function main() {
  const connected = await connect(["credentialId"]);
  signer = connected.signer;
  const who = document.getElementById("who");
  who.textContent = `Signed in as ops credential ${signer.credentialId} (the key stays in this tab)`;
  who.hidden = false;
  for (const id of ["overview", "reload"]) document.getElementById(id).hidden = false;
  document.getElementById("reload").addEventListener("click", () => {
    load().catch((error) => say(`Could not load: ${error.message}`, "error"));
  });
  await load();
}

main().catch((error) => say(`Could not load: ${error.message}`, "error"));
