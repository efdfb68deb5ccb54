// A minimal WalletConnect v2 relay for the approval-page tests: a stand-in for WalletConnect's
// public relay, which this machine cannot reach and which WalletConnect does not publish.
//
// It speaks the relay's JSON-RPC over WebSocket (the method names of npm
// @walletconnect/relay-api): irn_subscribe, irn_batchSubscribe, irn_unsubscribe,
// irn_batchUnsubscribe, irn_publish, irn_batchPublish, irn_batchFetchMessages, and the two
// session methods @walletconnect/sign-client 2.25 sends to the relay (wc_proposeSession: the
// proposal on the pairing topic; wc_approveSession: the proposal's answer on the pairing topic
// and the settlement on the session topic; each also subscribes its caller to the topic it
// will hear the answer on, as the clients expect: they send no irn_subscribe for it). Messages
// reach subscribers as irn_subscription requests
// {id: <subscription id>, data: {topic, message, publishedAt, tag, attestation?}}.
//
// Contracts: it routes messages by topic and never reads them (they are end-to-end encrypted
// by the clients; it keeps them as the opaque strings it was given). A message published while
// a topic has no subscriber waits in the topic's mailbox until its ttl runs out, and reaches
// every client that subscribes later, once per client (a client is the did:key its JWT names:
// its reconnections share a mailbox position); the publishing client never gets its own
// message back. Only 127.0.0.1 is listened on. Not a production relay: no authentication (the
// client's JWT must be present; it is read, not verified), no limits beyond a message size
// cap, everything in memory.
//
// Usage: node walletconnect_relay.mjs <log-file>
//   Listens on an ephemeral port of 127.0.0.1 and prints {"port": N} on stdout when ready.
//   Appends one JSON line per relay event to <log-file> (what a test may assert about the
//   traffic): {"event": "connect"|"rpc"|"publish"|"deliver"|"close", ...}; a publish line
//   carries the message as published (ciphertext).
//   Stopped by SIGTERM to its PID.

import { appendFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";

const MAX_MESSAGE_CHARS = 512 * 1024;
const MAX_TTL_SECONDS = 30 * 86400;
const TOPIC = /^[0-9a-f]{64}$/;
const TAG_PROPOSE_REQUEST = 1100;
const TAG_PROPOSE_RESPONSE = 1101; // the Sign API's tags (docs.walletconnect.com, RPC methods)
const TAG_SETTLE_REQUEST = 1102;

const logFile = process.argv[2];
if (!logFile) {
  process.stderr.write("usage: node walletconnect_relay.mjs <log-file>\n");
  process.exit(2);
}

function record(entry) {
  appendFileSync(logFile, JSON.stringify({ at: Date.now(), ...entry }) + "\n");
}

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** topic -> {subscribers: Map<connection, subscriptionId>, mailbox: [{seq, ...message}]} */
const topics = new Map();
/** client id -> the sequence numbers of the messages it was given */
const delivered = new Map();
let nextSeq = 1;
let nextConnection = 1;
let nextRequestId = Date.now() * 1000;

function topicState(topic) {
  let state = topics.get(topic);
  if (!state) {
    state = { subscribers: new Map(), mailbox: [] };
    topics.set(topic, state);
  }
  return state;
}

function sweep(state) {
  const now = Date.now();
  state.mailbox = state.mailbox.filter((entry) => entry.expiresAt > now);
}

function checkTopic(topic) {
  if (typeof topic !== "string" || !TOPIC.test(topic)) {
    throw new RpcError(-32602, "topic must be 64 lower-case hex digits");
  }
  return topic;
}

function send(connection, payload) {
  if (connection.socket.readyState === connection.socket.OPEN) {
    connection.socket.send(JSON.stringify(payload));
  }
}

function deliver(connection, topic, entry) {
  if (entry.from === connection.client || connection.delivered.has(entry.seq)) return;
  const subscriptionId = topicState(topic).subscribers.get(connection);
  if (!subscriptionId) return;
  connection.delivered.add(entry.seq);
  const data = {
    topic,
    message: entry.message,
    publishedAt: entry.publishedAt,
    tag: entry.tag,
  };
  if (entry.attestation !== undefined) data.attestation = entry.attestation;
  send(connection, {
    id: nextRequestId++,
    jsonrpc: "2.0",
    method: "irn_subscription",
    params: { id: subscriptionId, data },
  });
  record({ event: "deliver", connection: connection.id, topic, tag: entry.tag, seq: entry.seq });
}

function publish(connection, { topic, message, ttl, tag, attestation }) {
  checkTopic(topic);
  if (typeof message !== "string" || !message || message.length > MAX_MESSAGE_CHARS) {
    throw new RpcError(-32602, "message must be a non-empty string of at most 512 KiB");
  }
  const seconds = Number(ttl);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_TTL_SECONDS) {
    throw new RpcError(-32602, "ttl must be a whole number of seconds, at most 30 days");
  }
  const state = topicState(topic);
  sweep(state);
  const publishedAt = Date.now();
  const entry = {
    seq: nextSeq++,
    from: connection.client,
    message,
    publishedAt,
    expiresAt: publishedAt + seconds * 1000,
    tag: Number.isInteger(tag) ? tag : 0,
    attestation: typeof attestation === "string" ? attestation : undefined,
  };
  state.mailbox.push(entry);
  record({ event: "publish", connection: connection.id, topic, tag: entry.tag, message });
  for (const subscriber of state.subscribers.keys()) deliver(subscriber, topic, entry);
}

function subscribe(connection, topic) {
  checkTopic(topic);
  const state = topicState(topic);
  let id = state.subscribers.get(connection);
  if (!id) {
    id = createHash("sha256").update(`${connection.secret}:${topic}`).digest("hex");
    state.subscribers.set(connection, id);
    connection.topics.add(topic);
  }
  // The mailbox follows the answer (the client knows the subscription before its messages).
  setImmediate(() => {
    sweep(state);
    for (const entry of state.mailbox) deliver(connection, topic, entry);
  });
  return id;
}

function unsubscribe(connection, topic) {
  checkTopic(topic);
  topics.get(topic)?.subscribers.delete(connection);
  connection.topics.delete(topic);
  return true;
}

function fetchMessages(connection, topicList) {
  const messages = [];
  for (const topic of topicList) {
    checkTopic(topic);
    const state = topics.get(topic);
    if (!state || !state.subscribers.has(connection)) continue;
    sweep(state);
    for (const entry of state.mailbox) {
      if (entry.from === connection.client || connection.delivered.has(entry.seq)) continue;
      connection.delivered.add(entry.seq);
      messages.push({
        topic,
        message: entry.message,
        publishedAt: entry.publishedAt,
        tag: entry.tag,
        ...(entry.attestation !== undefined ? { attestation: entry.attestation } : {}),
      });
    }
  }
  return { messages, hasMore: false };
}

function list(value, name) {
  if (!Array.isArray(value)) throw new RpcError(-32602, `${name} must be a list`);
  return value;
}

function handle(connection, method, params) {
  switch (method) {
    case "irn_subscribe":
      return subscribe(connection, params.topic);
    case "irn_batchSubscribe":
      return list(params.topics, "topics").map((topic) => subscribe(connection, topic));
    case "irn_unsubscribe":
      return unsubscribe(connection, params.topic);
    case "irn_batchUnsubscribe":
      list(params.subscriptions, "subscriptions").forEach((s) => unsubscribe(connection, s.topic));
      return true;
    case "irn_publish":
      publish(connection, params);
      return true;
    case "irn_batchPublish":
      list(params.messages, "messages").forEach((m) => publish(connection, m));
      return true;
    case "irn_batchFetchMessages":
      return fetchMessages(connection, list(params.topics, "topics"));
    case "wc_proposeSession":
      // The proposer hears the answer on the pairing topic without subscribing itself.
      subscribe(connection, params.pairingTopic);
      publish(connection, {
        topic: params.pairingTopic,
        message: params.sessionProposal,
        ttl: params.ttl,
        tag: Number.isInteger(params.tag) ? params.tag : TAG_PROPOSE_REQUEST,
        attestation: params.attestation,
      });
      return true;
    case "wc_approveSession":
      // The responder hears the session on its topic without subscribing itself.
      subscribe(connection, params.sessionTopic);
      publish(connection, {
        topic: params.pairingTopic,
        message: params.sessionProposalResponse,
        ttl: params.ttl,
        tag: TAG_PROPOSE_RESPONSE,
      });
      publish(connection, {
        topic: params.sessionTopic,
        message: params.sessionSettlementRequest,
        ttl: params.ttl,
        tag: TAG_SETTLE_REQUEST,
      });
      return true;
    default:
      throw new RpcError(-32601, `unknown method ${method}`);
  }
}

function onFrame(connection, text) {
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    send(connection, { id: null, jsonrpc: "2.0", error: { code: -32700, message: "parse error" } });
    return;
  }
  if (typeof payload.method !== "string") return; // an answer (the client's ack of a delivery)
  const topicsOf = payload.params?.topic
    ? [payload.params.topic]
    : payload.params?.topics || [payload.params?.pairingTopic, payload.params?.sessionTopic];
  record({
    event: "rpc",
    connection: connection.id,
    method: payload.method,
    topics: (topicsOf || []).filter(Boolean),
  });
  try {
    const result = handle(connection, payload.method, payload.params || {});
    send(connection, { id: payload.id, jsonrpc: "2.0", result });
  } catch (error) {
    const code = error instanceof RpcError ? error.code : -32603;
    send(connection, { id: payload.id, jsonrpc: "2.0", error: { code, message: error.message } });
  }
}

/** The client's id: the issuer (did:key) of the JWT it connects with, read, not verified; a
 *  client reconnecting keeps its mailbox position and never gets its own messages back. */
function clientId(jwt) {
  try {
    const payload = JSON.parse(Buffer.from(String(jwt).split(".")[1], "base64url").toString());
    if (typeof payload.iss === "string" && payload.iss) return payload.iss;
  } catch {
    // not a JWT: a client of its own
  }
  return `anonymous-${randomBytes(8).toString("hex")}`;
}

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  maxPayload: 2 * MAX_MESSAGE_CHARS,
  verifyClient: ({ req }) => new URL(req.url, "ws://relay").searchParams.has("auth"),
});

server.on("connection", (socket, request) => {
  const query = new URL(request.url, "ws://relay").searchParams;
  const client = clientId(query.get("auth"));
  if (!delivered.has(client)) delivered.set(client, new Set());
  const connection = {
    id: nextConnection++,
    client,
    secret: randomBytes(16).toString("hex"),
    socket,
    topics: new Set(),
    delivered: delivered.get(client),
  };
  record({
    event: "connect",
    connection: connection.id,
    client,
    projectId: query.get("projectId"),
  });
  socket.on("message", (data) => onFrame(connection, data.toString("utf8")));
  socket.on("close", () => {
    for (const topic of connection.topics) topics.get(topic)?.subscribers.delete(connection);
    record({ event: "close", connection: connection.id });
  });
});

server.on("listening", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});

process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
