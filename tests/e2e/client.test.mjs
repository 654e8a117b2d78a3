// End-to-end tests of the JS client (issue "3/6 Browsers") in Node against real
// nodes: every client ends with every seq exactly once, in order, across nodes
// killed with SIGKILL and restarted, a `since` handed over by the application,
// and `reconnect` hints from a drain.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import { Seqcast } from "../../client-js/src/seqcast.js";
import {
  REPO,
  freshDatabase,
  getJson,
  publishWithRetry,
  range,
  startNode,
  uniqueName,
  waitFor,
  withTimeout,
} from "./harness.mjs";

// Client errors that are expected while a node is down or going away.
const EXPECTED_ERROR_CODES = new Set(["transport_error"]);

/**
 * A Seqcast client in Node with one subscription that records everything:
 *   got      every message the handler received, in order
 *   events   reset / gap / error events of the subscription
 *   states   every connection state change
 *   errors   every error the client reported
 *   subscribed  a promise of the first `subscribed` event
 * It is closed when the test ends.
 */
function startClient(t, wsUrl, channel, subscribeOptions = {}) {
  const sc = new Seqcast(wsUrl, { WebSocket, minReconnectDelay: 50, maxReconnectDelay: 500 });
  const client = { sc, got: [], events: [], states: [], errors: [] };
  sc.on("state", (state) => client.states.push(state));
  sc.on("error", (info) => client.errors.push(info));
  client.sub = sc.subscribe(channel, subscribeOptions, (msg) => client.got.push(msg));
  for (const name of ["reset", "gap", "error"]) {
    client.sub.on(name, (info) => client.events.push({ [name]: info }));
  }
  client.subscribed = new Promise((resolve) => client.sub.on("subscribed", resolve));
  t.after(() => sc.close());
  return client;
}

function allSubscribed(clients) {
  return withTimeout(Promise.all(clients.map((c) => c.subscribed)), 30_000, "every client's first `subscribed`");
}

/** Waits until every client has at least `count` messages. */
async function allReceived(clients, count, timeoutMs = 60_000) {
  await waitFor(() => clients.every((c) => c.got.length >= count), {
    timeoutMs,
    what: `every client to receive ${count} messages (have ${clients.map((c) => c.got.length).join(", ")})`,
  });
}

/** Asserts that a client received exactly seqs first..last, once each, in order, with their payloads. */
function assertExactly(client, first, last, label) {
  const seqs = client.got.map((m) => m.seq);
  assert.deepEqual(seqs, range(first, last), `${label}: seqs received`);
  assert.deepEqual(
    client.got.map((m) => m.data.i),
    range(first, last),
    `${label}: payloads match their seqs`,
  );
  assert.equal(new Set(client.got.map((m) => m.epoch)).size, 1, `${label}: one epoch throughout`);
  assert.deepEqual(client.events, [], `${label}: no reset, gap or error events`);
  const unexpected = client.errors.filter((e) => !EXPECTED_ERROR_CODES.has(e.code));
  assert.deepEqual(unexpected.map((e) => `${e.code}: ${e.message}`), [], `${label}: unexpected client errors`);
  assert.equal(client.sub.position.seq, last, `${label}: position after the last message`);
}

/** How often the client lost its connection (entered "reconnecting" from "open"). */
function reconnects(client) {
  let count = 0;
  for (let i = 1; i < client.states.length; i++) {
    if (client.states[i] === "reconnecting" && client.states[i - 1] === "open") count += 1;
  }
  return count;
}

/**
 * Publishes {i} for i = from..to, one after another, every `intervalMs`, each
 * under the key `${keyPrefix}-${i}` and retried while the node is down.
 * `progress.published` is the last i published, `progress.retried` counts
 * the publishes that needed more than one attempt. Asserts seq == i (a single
 * publisher on a fresh channel: a retried publish must not add a message).
 */
async function publishRange(nodeUrl, channel, from, to, { intervalMs = 10, keyPrefix = "m", progress = {} } = {}) {
  for (let i = from; i <= to; i++) {
    const res = await publishWithRetry(nodeUrl, channel, { i }, { idempotencyKey: `${keyPrefix}-${i}` });
    assert.equal(res.body.seq, i, `publish of ${i} got seq ${res.body.seq}`);
    progress.published = i;
    if (res.attempts > 1) progress.retried = (progress.retried ?? 0) + 1;
    if (intervalMs > 0 && i < to) await delay(intervalMs);
  }
}

async function channelInfo(node, channel) {
  const res = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Waits (briefly: closed connections may still be unwinding) until the channel has `count` subscribers. */
async function assertSubscribers(node, channel, count, message) {
  let last;
  try {
    await waitFor(async () => (last = (await channelInfo(node, channel)).subscribers) === count, { timeoutMs: 10_000 });
  } catch {
    assert.equal(last, count, message);
  }
}

describe("3/6 Browsers: the JS client in Node", () => {
  test("5 clients get 1..n exactly once, in order, while the node is SIGKILLed and restarted twice", { timeout: 120_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "client-kill" });
    t.after(() => node.stop());
    const channel = uniqueName("kill");
    const n = 300;

    const clients = Array.from({ length: 5 }, () => startClient(t, node.wsUrl, channel));
    await allSubscribed(clients);

    const progress = { published: 0, retried: 0 };
    const publisher = publishRange(node.url, channel, 1, n, { progress });
    const crashes = (async () => {
      await waitFor(() => progress.published >= 100, { timeoutMs: 60_000, what: "100 published" });
      await node.kill();
      await node.start(); // same port, database and cache dir
      await waitFor(() => progress.published >= 200, { timeoutMs: 60_000, what: "200 published" });
      await node.kill();
      await node.start({ clearCache: true }); // same port and database, empty cache
    })();
    await Promise.all([publisher, crashes]);

    assert.ok(progress.retried >= 2, `the publisher ran into both outages (${progress.retried} retried publishes)`);

    await allReceived(clients, n);
    clients.forEach((c, k) => {
      assertExactly(c, 1, n, `client ${k}`);
      assert.ok(reconnects(c) >= 2, `client ${k} reconnected after both kills (states: ${c.states.join(" ")})`);
    });
    assert.equal((await channelInfo(node, channel)).last_seq, n, "retried publishes added nothing");
    await assertSubscribers(node, channel, clients.length, "every client is subscribed again, once");
  });

  test("a `since` handed over by the application resumes exactly after it", { timeout: 60_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "client-since" });
    t.after(() => node.stop());
    const channel = uniqueName("since");

    await publishRange(node.url, channel, 1, 20, { intervalMs: 0 });
    // What a backend renders into the page: the channel's head right now.
    const { last_seq: head, epoch } = await channelInfo(node, channel);
    assert.equal(head, 20);
    // Published between the render and the subscribe: must not be lost.
    await publishRange(node.url, channel, 21, 30, { intervalMs: 0 });

    const withEpoch = startClient(t, node.wsUrl, channel, { since: head, epoch });
    const withoutEpoch = startClient(t, node.wsUrl, channel, { since: head });
    const liveOnly = startClient(t, node.wsUrl, channel);
    await allSubscribed([withEpoch, withoutEpoch, liveOnly]);
    await publishRange(node.url, channel, 31, 40, { intervalMs: 0 });

    await allReceived([withEpoch, withoutEpoch], 20);
    await allReceived([liveOnly], 10);
    assertExactly(withEpoch, 21, 40, "since + epoch");
    assertExactly(withoutEpoch, 21, 40, "since without epoch");
    assert.deepEqual(withoutEpoch.sub.position, { epoch, seq: 40 }, "the epoch is pinned once known");
    // Without a since the render→subscribe gap (21..30) is lost: the contrast.
    assertExactly(liveOnly, 31, 40, "live only");
  });

  test("`reconnect` hints from a drain: clients come back to the same node and miss nothing", { timeout: 90_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "client-drain" });
    t.after(() => node.stop());
    const channel = uniqueName("drain");
    const n = 200;

    const clients = Array.from({ length: 5 }, () => startClient(t, node.wsUrl, channel));
    await allSubscribed(clients);

    const progress = { published: 0 };
    const publisher = publishRange(node.url, channel, 1, n, { progress });
    await waitFor(() => progress.published >= 50, { timeoutMs: 60_000, what: "50 published" });
    const drain = await fetch(`${node.url}/v1/admin/drain?window_seconds=1`, { method: "POST" });
    assert.equal(drain.status, 202, await drain.text());
    // Every client leaves on its hint and comes back once the node accepts again.
    await waitFor(() => clients.every((c) => reconnects(c) >= 1 && c.sc.state === "open"), {
      timeoutMs: 30_000,
      what: "every client to reconnect after the drain",
    });
    await publisher;

    await allReceived(clients, n);
    clients.forEach((c, k) => {
      assertExactly(c, 1, n, `client ${k}`);
      assert.equal(reconnects(c), 1, `client ${k} reconnected once (states: ${c.states.join(" ")})`);
    });
    assert.ok(node.alive, "a drain does not stop the node");
    const ready = await getJson(`${node.url}/readyz`);
    assert.equal(ready.status, 200, `ready again after the window: ${ready.text}`);
    await assertSubscribers(node, channel, clients.length, "every client is back on this node, once");
  });

  test("GET /v1/client.js serves this client byte for byte, loadable cross-origin", { timeout: 30_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "client-js" });
    t.after(() => node.stop());
    const res = await fetch(`${node.url}/v1/client.js`);
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /javascript/);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.ok(res.headers.get("cache-control"), "has caching headers");
    const source = fs.readFileSync(path.join(REPO, "client-js/src/seqcast.js"), "utf8");
    assert.ok(body === source, "the served client is client-js/src/seqcast.js (rebuild the binary?)");
  });
});
