// What both pages share: building DOM safely, plain-language formatting, and connecting an
// ops key (pasted into a form, never read from the URL).
//
// Every text that comes from the server (summaries, app names, reasons) is set with
// textContent, never parsed as HTML, so a backend's app name cannot inject markup.

import { importSigningKey, publicKeyHex, RequestSigner } from "./signing.js";

/** ``el("p", {class: "x", dataset: {a: "1"}}, "text", child)``: an element, text children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/** "2 h 14 min", "45 s", "3 d 2 h": the two largest units of a duration in seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "n/a";
  let s = Math.max(0, Math.round(Number(seconds)));
  const units = [
    ["d", 86400],
    ["h", 3600],
    ["min", 60],
    ["s", 1],
  ];
  const parts = [];
  for (const [name, size] of units) {
    if (s >= size || (name === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)} ${name}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** "1 session", "3 sessions". */
export function plural(count, noun) {
  return `${count} ${noun}${Number(count) === 1 ? "" : "s"}`;
}

/** A unix time as "2026-11-21 02:08 UTC". */
export function instant(unix) {
  if (unix === null || unix === undefined) return "n/a";
  return new Date(Number(unix) * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** ``value / 10**decimals`` as a decimal string, cut (not rounded) to ``shown`` fraction
 * digits; trailing zeros are dropped unless ``fixed`` (money: "100.00"). */
export function decimal(value, decimals, shown = 6, { fixed = false } = {}) {
  const v = BigInt(value);
  const base = 10n ** BigInt(decimals);
  const whole = v / base;
  let fraction = (v % base).toString().padStart(decimals, "0").slice(0, shown);
  if (!fixed) fraction = fraction.replace(/0+$/, "");
  const wholeText = whole.toLocaleString("en-US");
  return fraction ? `${wholeText}.${fraction}` : wholeText;
}

/** ``spent / max`` in percent with one decimal (a string), or null when there is no maximum. */
export function percent(spent, max) {
  const m = BigInt(max);
  if (m <= 0n) return null;
  const tenths = (BigInt(spent) * 1000n) / m;
  return `${tenths / 10n}.${tenths % 10n}`;
}

/** A rate document ``{numerator, denominator, value}`` as "12.5 %" or "n/a". */
export function rate(doc) {
  if (!doc || doc.value === null || doc.value === undefined) return "n/a";
  return `${(doc.value * 100).toFixed(1)} %`;
}

/** Show ``text`` in the page's status line (a polite live region). */
export function say(text, kind = "info") {
  const line = document.getElementById("status-line");
  line.textContent = text;
  line.dataset.kind = kind;
}

/**
 * Connect an ops key from the connect form (pasted; the page never reads a key from its URL).
 * ``fields`` are the form parameters besides ``key`` that the page needs. Resolves with
 * ``{params, signer, publicKey}``. A fragment (an old-style link that carried a key) is
 * ignored and removed from the address bar at once; the pasted key is cleared from the form.
 */
export function connect(fields) {
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  const form = document.getElementById("connect-form");
  const panel = document.getElementById("connect");
  return new Promise((resolve) => {
    async function attempt(values, jwk) {
      const params = {};
      for (const name of fields) {
        const value = (values.get(name) || "").trim();
        if (!value) throw new Error(`${name} is missing`);
        params[name] = value;
      }
      const key = await importSigningKey(jwk);
      const signer = new RequestSigner(key, params.credentialId);
      panel.hidden = true;
      resolve({ params, signer, publicKey: publicKeyHex(jwk) });
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = new FormData(form);
      let jwk;
      try {
        jwk = JSON.parse(String(values.get("key") || ""));
      } catch (_) {
        say("The key is not JSON (paste the private key as a JWK).", "error");
        return;
      }
      form.elements.key.value = ""; // do not keep the pasted secret in the DOM
      attempt(values, jwk).catch((error) => say(error.message, "error"));
    });
    panel.hidden = false;
  });
}
