// End-to-end tests of the Action Cable face (/cable, issue R2 3/7): the raw
// protocol frame by frame on both subprotocols, resume over
// actioncable-v1-ext-json, tokens, drain — and the real clients from npm in
// Node: stock @rails/actioncable (live only) and @anycable/web (resume across
// a SIGKILL of its node).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import ActionCable from "@rails/actioncable";
import { createCable } from "@anycable/web";
import WebSocket from "ws";
import { startFaultProxy } from "./fault_proxy.mjs";
import {
  freshDatabase,
  getJson,
  publish,
  range,
  signJwt,
  signStreamName,
  startNode,
  waitFor,
  wsClient,
} from "./harness.mjs";

const STREAMS_SECRET = "cable-streams-secret-9e1f";
const JWT_SECRET = "cable-jwt-secret-4a7b";
const ADMIN = "cable-admin-77c2";
const ENV = {
  SEQCAST_STREAMS_SECRET: STREAMS_SECRET,
  SEQCAST_JWT_SECRET: JWT_SECRET,
  SEQCAST_ADMIN_KEY: ADMIN,
  SEQCAST_DRAIN_DELAY_SECONDS: "0",
  SEQCAST_DRAIN_WINDOW_SECONDS: "1",
};
const ADMIN_HEADERS = { authorization: `Bearer ${ADMIN}` };
const JSON_PROTOCOLS = ["actioncable-v1-json", "actioncable-unsupported"];
const EXT_PROTOCOLS = ["actioncable-v1-ext-json"];
const MESSAGE_TYPES = new Set(["welcome", "ping", "confirm_subscription", "reject_subscription", "disconnect"]);

let channelCounter = 0;
const newChannel = (prefix = "cable") => `${prefix}:${process.pid}:${Date.now()}:${++channelCounter}`;
const html = (i) => `<turbo-stream action="append" target="log"><template><p>${i}</p></template></turbo-stream>`;
const turboIdentifier = (name, key = STREAMS_SECRET, extra = {}) =>
  JSON.stringify({ channel: "Turbo::StreamsChannel", signed_stream_name: signStreamName(name, key), ...extra });
const pubsubSigned = (name) => JSON.stringify({ channel: "$pubsub", signed_stream_name: signStreamName(name, STREAMS_SECRET) });
const token = (channels, extra = {}) =>
  signJwt({ sub: "cable", channels, exp: Math.floor(Date.now() / 1000) + 3600, ...extra }, JWT_SECRET);

async function publishAll(node, channel, from, to) {
  for (let i = from; i <= to; i++) {
    const res = await publish(node.url, channel, html(i), { headers: ADMIN_HEADERS });
    assert.equal(res.status, 201, `publish ${i}: ${res.text}`);
  }
}

const cableUrl = (port, query = "") => `ws://127.0.0.1:${port}/cable${query}`;
const openCable = (port, protocols = JSON_PROTOCOLS, query = "") => wsClient(cableUrl(port, query), { protocols });

/** Subscribes `identifier` and resolves with the confirm or reject frame. */
async function subscribe(ws, identifier, extra = {}) {
  ws.send({ command: "subscribe", identifier, ...extra });
  return ws.next((f) => f.identifier === identifier && (f.type === "confirm_subscription" || f.type === "reject_subscription"));
}

/** The frames of `identifier` that carry a message, as a live view. */
const messagesOf = (ws, identifier) => ws.frames.filter((f) => f.identifier === identifier && "message" in f);

describe("Action Cable face (/cable)", () => {
  let node;
  let db;
  before(async () => {
    db = await freshDatabase();
    node = await startNode({ databaseUrl: db, env: ENV, name: "cable" });
  });
  after(() => node?.stop());

  test("selects ext-json over json over unsupported, and answers an upgrade without any", async () => {
    for (const [offer, selected] of [
      [["actioncable-v1-ext-json", "actioncable-v1-json"], "actioncable-v1-ext-json"],
      [["actioncable-v1-json", "actioncable-unsupported"], "actioncable-v1-json"],
      [["actioncable-unsupported"], "actioncable-unsupported"],
      [[], ""],
    ]) {
      const ws = await openCable(node.port, offer);
      assert.equal(ws.socket.protocol, selected, `offered ${offer.join(",") || "none"}`);
      const first = await ws.next(() => true);
      assert.deepEqual(first, { type: "welcome" }, "welcome first, nothing else in it");
      await ws.close();
    }
  });

  test("json: confirm echoes the identifier, every message in order with exactly its two members", async () => {
    const channel = newChannel();
    const ws = await openCable(node.port);
    // data-* params after the signed name, and characters a re-encoder could change.
    const identifier = turboIdentifier(channel, STREAMS_SECRET, { data_note: "é/<&>\"", n: 1 });
    const confirm = await subscribe(ws, identifier);
    assert.deepEqual(confirm, { identifier, type: "confirm_subscription" });
    // A second subscribe of the same identifier: no answer, nothing doubled.
    ws.send({ command: "subscribe", identifier });
    // The client's perform(): ignored.
    ws.send({ command: "message", identifier, data: JSON.stringify({ action: "speak" }) });
    ws.send("not json at all");
    await publishAll(node, channel, 1, 25);
    await waitFor(() => messagesOf(ws, identifier).length >= 25, { what: "25 messages" });
    const got = messagesOf(ws, identifier);
    assert.deepEqual(got.map((f) => f.message), range(1, 25).map(html));
    for (const f of got) assert.deepEqual(Object.keys(f), ["identifier", "message"]);
    for (const f of ws.frames) {
      if ("message" in f && !("type" in f)) continue;
      assert.ok(MESSAGE_TYPES.has(f.type), `only Action Cable's frames on json: ${JSON.stringify(f)}`);
    }
    assert.equal(ws.frames.filter((f) => f.type === "confirm_subscription").length, 1, "one confirm");

    // Unsubscribe: no answer, and nothing more for it (a second stream is the barrier).
    ws.send({ command: "unsubscribe", identifier });
    const barrierChannel = newChannel("barrier");
    const barrier = turboIdentifier(barrierChannel);
    await subscribe(ws, barrier);
    await publishAll(node, channel, 26, 26);
    await publish(node.url, barrierChannel, "done", { headers: ADMIN_HEADERS });
    await ws.next((f) => f.identifier === barrier && f.message === "done");
    assert.equal(messagesOf(ws, identifier).length, 25, "nothing after unsubscribe");
    await ws.close();
  });

  test("pings every 3 s with unix seconds", async () => {
    const ws = await openCable(node.port);
    const first = await ws.next((f) => f.type === "ping", 5_000);
    const second = await ws.next((f) => f.type === "ping", 5_000);
    for (const p of [first, second]) {
      assert.deepEqual(Object.keys(p), ["type", "message"]);
      assert.ok(Number.isInteger(p.message) && Math.abs(p.message - Date.now() / 1000) < 10, JSON.stringify(p));
    }
    assert.ok(second.message - first.message >= 2 && second.message - first.message <= 4, "3 s apart");
    await ws.close();
  });

  test("rejects bad signatures, other keys, unknown channels and names outside the alphabet", async () => {
    const ws = await openCable(node.port);
    const channel = newChannel();
    const good = signStreamName(channel, STREAMS_SECRET);
    const tampered = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
    const cases = [
      JSON.stringify({ channel: "Turbo::StreamsChannel", signed_stream_name: tampered }),
      turboIdentifier(channel, "some-other-key"),
      JSON.stringify({ channel: "Turbo::StreamsChannel", signed_stream_name: "not-a-signed-name" }),
      JSON.stringify({ channel: "ChatChannel", room: 1 }),
      JSON.stringify({ channel: "Turbo::StreamsChannel", stream_name: channel }),
      JSON.stringify({ channel: "$pubsub", stream_name: channel }), // no token on a node with jwt_secret
      turboIdentifier("not a channel!"),
      "{not json",
    ];
    for (const identifier of cases) {
      assert.deepEqual(await subscribe(ws, identifier), { identifier, type: "reject_subscription" }, identifier);
    }
    assert.deepEqual(await subscribe(ws, pubsubSigned(channel)), { identifier: pubsubSigned(channel), type: "confirm_subscription" });
    await ws.close();
  });

  test("tokens: ?jid= or ?token= opens $pubsub stream_name; a bad one is told unauthorized and closed", async () => {
    const ws = await openCable(node.port, JSON_PROTOCOLS, `?jid=${token(["room:*"])}`);
    const allowed = JSON.stringify({ channel: "$pubsub", stream_name: "room:7" });
    const other = JSON.stringify({ channel: "$pubsub", stream_name: "other:7" });
    assert.equal((await subscribe(ws, allowed)).type, "confirm_subscription");
    assert.equal((await subscribe(ws, other)).type, "reject_subscription");
    await publish(node.url, "room:7", { hello: 1 }, { headers: ADMIN_HEADERS });
    assert.deepEqual(await ws.next((f) => f.identifier === allowed && "message" in f), { identifier: allowed, message: { hello: 1 } });
    await ws.close();

    const expired = signJwt({ sub: "x", channels: ["room:*"], exp: Math.floor(Date.now() / 1000) - 60 }, JWT_SECRET);
    const forged = signJwt({ sub: "x", channels: ["room:*"] }, "not-the-secret");
    for (const bad of [`?token=${forged}`, `?jid=${expired}`, "?token=junk"]) {
      const refused = await openCable(node.port, JSON_PROTOCOLS, bad);
      const first = await refused.next(() => true);
      assert.deepEqual(first, { type: "disconnect", reason: "unauthorized", reconnect: false }, bad);
      const closed = await refused.closed;
      assert.equal(refused.frames.length, 1, "nothing else");
      assert.ok(closed.code === 1000 || closed.code === 1005, `closed ${closed.code}`);
    }
  });

  test("ext-json: resume after a position, then confirm_history, then live — every message once", async () => {
    const channel = newChannel();
    await publishAll(node, channel, 1, 30);
    const info = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}`, { headers: ADMIN_HEADERS });
    const epoch = info.body.epoch;
    assert.equal(typeof epoch, "string", info.text);
    const ws = await openCable(node.port, EXT_PROTOCOLS);
    const identifier = pubsubSigned(channel);
    const confirm = await subscribe(ws, identifier, { history: { since: 0, streams: { [channel]: { epoch, offset: 10 } } } });
    assert.equal(confirm.type, "confirm_subscription");
    await ws.next((f) => f.type === "confirm_history" && f.identifier === identifier);
    await publishAll(node, channel, 31, 35);
    await waitFor(() => messagesOf(ws, identifier).length >= 25, { what: "messages 11..35" });
    const got = messagesOf(ws, identifier);
    assert.deepEqual(got.map((f) => f.offset), range(11, 35), "11..35 once, in order");
    assert.deepEqual(got.map((f) => f.message), range(11, 35).map(html));
    for (const f of got) {
      assert.deepEqual(Object.keys(f), ["identifier", "message", "stream_id", "epoch", "offset"]);
      assert.equal(f.stream_id, channel);
      assert.equal(f.epoch, epoch);
    }
    const historyAt = ws.frames.findIndex((f) => f.type === "confirm_history");
    const live = ws.frames.findIndex((f) => f.offset === 31);
    const lastReplayed = ws.frames.findIndex((f) => f.offset === 30);
    assert.ok(lastReplayed < historyAt && historyAt < live, "confirm_history between replay and live");

    // The `history` command on the subscribed identifier: nothing new to send, no second confirm.
    ws.send({ command: "history", identifier, history: { streams: { [channel]: { epoch, offset: 20 } } } });
    await ws.next((f) => f.type === "confirm_history" && f.identifier === identifier);
    ws.send({ command: "history", identifier, history: { streams: { [channel]: { epoch: "stale-epoch", offset: 20 } } } });
    await ws.next((f) => f.type === "reject_history" && f.identifier === identifier);
    ws.send({ command: "pong" });
    await publishAll(node, channel, 36, 36);
    await waitFor(() => messagesOf(ws, identifier).length >= 26, { what: "message 36" });
    assert.deepEqual(messagesOf(ws, identifier).map((f) => f.offset), range(11, 36), "still once each");
    assert.equal(ws.frames.filter((f) => f.type === "confirm_subscription").length, 1);
    await ws.close();
  });

  test("ext-json: a stale epoch gets reject_history, then live only", async () => {
    const channel = newChannel();
    await publishAll(node, channel, 1, 5);
    const ws = await openCable(node.port, EXT_PROTOCOLS);
    const identifier = turboIdentifier(channel);
    await subscribe(ws, identifier, { history: { since: 0, streams: { [channel]: { epoch: "gone-epoch", offset: 3 } } } });
    await ws.next((f) => f.type === "reject_history" && f.identifier === identifier);
    await publishAll(node, channel, 6, 7);
    await waitFor(() => messagesOf(ws, identifier).length >= 2, { what: "live 6, 7" });
    assert.deepEqual(messagesOf(ws, identifier).map((f) => f.offset), [6, 7], "no history after reject_history");
    assert.equal(ws.frames.some((f) => f.type === "confirm_history"), false);
    await ws.close();
  });

  test("ext-json: history.since answers every retained message with ts >= since", async () => {
    const channel = newChannel();
    await publishAll(node, channel, 1, 3);
    const log = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=1`, { headers: ADMIN_HEADERS });
    const lastTs = Math.max(...log.body.messages.map((m) => Date.parse(m.ts) / 1000));
    const since = Math.floor(lastTs) + 1;
    await waitFor(() => Date.now() / 1000 >= since + 0.05, { what: "the next second", timeoutMs: 3_000 });
    await publishAll(node, channel, 4, 6);
    const ws = await openCable(node.port, EXT_PROTOCOLS);
    const identifier = pubsubSigned(channel);
    await subscribe(ws, identifier, { history: { since, streams: {} } });
    await ws.next((f) => f.type === "confirm_history" && f.identifier === identifier);
    assert.deepEqual(messagesOf(ws, identifier).map((f) => f.offset), [4, 5, 6]);
    await ws.close();
  });

  test("drain: disconnect server_restart with reconnect:true, then close 1012", async () => {
    const draining = await startNode({ databaseUrl: db, env: ENV, name: "cable-drain" });
    const ws = await openCable(draining.port);
    const identifier = turboIdentifier(newChannel());
    await subscribe(ws, identifier);
    const stopped = draining.stop();
    const notice = await ws.next((f) => f.type === "disconnect", 10_000);
    assert.deepEqual(notice, { type: "disconnect", reason: "server_restart", reconnect: true });
    const closed = await ws.closed;
    assert.equal(closed.code, 1012);
    await stopped;
  });
});

describe("real clients from npm, in Node", () => {
  let db;
  before(async () => {
    db = await freshDatabase();
  });

  test("stock @rails/actioncable: confirm, every message in order, reject, reconnect by itself after a drain", async (t) => {
    const blue = await startNode({ databaseUrl: db, env: ENV, name: "cable-blue" });
    const green = await startNode({ databaseUrl: db, env: ENV, name: "cable-green" });
    t.after(() => Promise.all([blue.stop(), green.stop()]));
    const proxy = await startFaultProxy({ upstreamPort: blue.port });
    t.after(() => proxy.close());
    // What a browser gives the stock client; nothing else is patched.
    ActionCable.adapters.WebSocket = WebSocket;
    globalThis.addEventListener ??= () => {};
    globalThis.removeEventListener ??= () => {};
    const consumer = ActionCable.createConsumer(cableUrl(proxy.port));
    t.after(() => consumer.disconnect());
    const channel = newChannel("stock");
    const received = [];
    let connected = 0;
    consumer.subscriptions.create(
      { channel: "Turbo::StreamsChannel", signed_stream_name: signStreamName(channel, STREAMS_SECRET) },
      { connected: () => connected++, received: (data) => received.push(data) },
    );
    let rejected = false;
    consumer.subscriptions.create(
      { channel: "Turbo::StreamsChannel", signed_stream_name: signStreamName(channel, "other-key") },
      { rejected: () => (rejected = true), received: () => assert.fail("a rejected subscription received") },
    );
    await waitFor(() => connected === 1 && rejected, { what: "connected and rejected" });
    await publishAll(blue, channel, 1, 20);
    await waitFor(() => received.length >= 20, { what: "20 messages" });
    assert.deepEqual(received, range(1, 20).map(html));

    // Blue drains; the proxy now leads to green; the stock client comes back by itself.
    proxy.setUpstream(green.port);
    await blue.stop();
    await waitFor(() => connected === 2, { what: "reconnected after the drain", timeoutMs: 30_000 });
    await publishAll(green, channel, 21, 25);
    await waitFor(() => received.length >= 25, { what: "messages after the reconnect" });
    assert.deepEqual(received.slice(20), range(21, 25).map(html), "live again (no resume: stock client)");
  });

  test("@anycable/web on ext-json: every message exactly once and in order across a SIGKILL of its node", async (t) => {
    const a = await startNode({ databaseUrl: db, env: ENV, name: "cable-a" });
    const b = await startNode({ databaseUrl: db, env: ENV, name: "cable-b" });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    const proxy = await startFaultProxy({ upstreamPort: a.port });
    t.after(() => proxy.close());
    const cable = createCable(cableUrl(proxy.port), {
      protocol: "actioncable-v1-ext-json",
      websocketImplementation: WebSocket,
      logLevel: "error",
    });
    t.after(() => cable.disconnect());
    const channel = newChannel("anycable");
    const sub = cable.streamFromSigned(signStreamName(channel, STREAMS_SECRET));
    const received = [];
    const infos = [];
    sub.on("message", (m) => received.push(m));
    sub.on("info", (i) => infos.push(i.type));
    await sub.ensureSubscribed();
    await publishAll(b, channel, 1, 40);
    await waitFor(() => received.length >= 40, { what: "1..40 live" });

    // The node dies mid-stream; the client is moved to the other node and resumes.
    await a.kill();
    proxy.setUpstream(b.port);
    const publishing = publishAll(b, channel, 41, 120);
    await publishing;
    await waitFor(() => received.length >= 120, { what: "1..120 after the kill", timeoutMs: 30_000 });
    assert.deepEqual(received, range(1, 120).map(html), "every message once, in order");
    assert.ok(infos.includes("history_received"), `history confirmed after the resume: ${infos}`);

    // The channel is deleted and begins again while the client is away: its position is of
    // another epoch, so the resume is refused (history_not_found) and it goes on live.
    const resubscribed = infos.length;
    proxy.partition({ mode: "refuse" });
    const del = await fetch(`${b.url}/v1/channels/${encodeURIComponent(channel)}`, { method: "DELETE", headers: ADMIN_HEADERS });
    assert.equal(del.status, 204, await del.text());
    proxy.heal();
    await waitFor(() => infos.slice(resubscribed).includes("history_not_found"), { what: "reject_history", timeoutMs: 30_000 });
    await publishAll(b, channel, 1, 3);
    await waitFor(() => received.length >= 123, { what: "live after reject_history" });
    assert.deepEqual(received.slice(120), range(1, 3).map(html));
  });
});

describe("the bundled client's createConsumer (our protocol underneath, with resume)", () => {
  test("Turbo identifiers: every message once, in order, across a SIGKILL and a page reload; rejects", async (t) => {
    const { createConsumer } = await import("../../client-js/src/seqcast.js");
    const db = await freshDatabase();
    const a = await startNode({ databaseUrl: db, env: ENV, name: "consumer-a" });
    const b = await startNode({ databaseUrl: db, env: ENV, name: "consumer-b" });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    const proxy = await startFaultProxy({ upstreamPort: a.port });
    t.after(() => proxy.close());
    const saved = new Map(); // what localStorage keeps across a reload
    const storage = {
      getItem: (k) => (saved.has(k) ? saved.get(k) : null),
      setItem: (k, v) => saved.set(k, String(v)),
      removeItem: (k) => saved.delete(k),
    };
    const channel = newChannel("consumer");
    // This node has a jwt_secret, so /v1/ws wants a token at the upgrade (the contract's
    // 401); it need not cover the signed streams.
    const options = { WebSocket, storage, token: token([]), minReconnectDelay: 50, maxReconnectDelay: 500 };
    const identifier = { channel: "Turbo::StreamsChannel", signed_stream_name: signStreamName(channel, STREAMS_SECRET) };
    const received = [];
    let connected = 0;
    let rejected = 0;
    const forged = { channel: "Turbo::StreamsChannel", signed_stream_name: signStreamName(channel, "other-key") };
    const refused = (what) => ({ rejected: () => rejected++, received: () => assert.fail(`${what} got data`) });
    const page = () => {
      const consumer = createConsumer(proxy.wsUrl, options);
      // A forged name of the same stream, before and after the real one: never joined to it.
      consumer.subscriptions.create(forged, refused("forged, first"));
      consumer.subscriptions.create(identifier, { connected: () => connected++, received: (d) => received.push(d) });
      // A second identifier of the same stream (data-* params): its own callbacks, one wire subscription.
      const twin = [];
      consumer.subscriptions.create({ ...identifier, data_frame: "x" }, { received: (d) => twin.push(d) });
      consumer.subscriptions.create(forged, refused("forged, second"));
      consumer.subscriptions.create({ channel: "ChatChannel" }, refused("an unknown channel"));
      return { consumer, twin };
    };
    let { consumer, twin } = page();
    await waitFor(() => connected === 1 && rejected === 3, { what: "connected, three rejected" });
    await publishAll(b, channel, 1, 30);
    await waitFor(() => received.length >= 30, { what: "1..30" });

    await a.kill();
    proxy.setUpstream(b.port);
    await publishAll(b, channel, 31, 60);
    await waitFor(() => received.length >= 60, { what: "1..60 after the kill", timeoutMs: 30_000 });
    assert.deepEqual(received, range(1, 60).map(html));
    assert.deepEqual(twin, range(1, 60).map(html), "the twin identifier got the same, once");

    // A page reload: the old page is gone, messages go on, the new page resumes from storage.
    consumer.disconnect();
    await publishAll(b, channel, 61, 75);
    ({ consumer, twin } = page());
    t.after(() => consumer.disconnect());
    await publishAll(b, channel, 76, 80);
    await waitFor(() => received.length >= 80, { what: "1..80 after the reload" });
    assert.deepEqual(received, range(1, 80).map(html), "every message once, in order, across the reload");
  });
});
