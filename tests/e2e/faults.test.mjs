// End-to-end tests of the two holes of issue "R2 1/7 Nothing lost under faults":
// a resume of big messages (a backlog larger than the send queue) completes at the
// client's pace, over WebSocket, SSE and the NDJSON log; and a node whose PostgreSQL
// connections are all cut answers its next reads and catches up on what it missed,
// on a quiet channel too.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  freshDatabase,
  getJson,
  httpGetStream,
  nodeForTest,
  openWs,
  psql,
  publish,
  publishBatch,
  range,
  runSeqcast,
  seqsOf,
  waitFor,
} from "./harness.mjs";
import { startFaultProxy } from "./fault_proxy.mjs";

const KiB = 1024;
const MiB = 1024 * KiB;

/** A JSON string payload of about `bytes` bytes that names its index. */
function bigData(k, bytes) {
  return `${k}:` + String.fromCharCode(97 + (k % 26)).repeat(bytes - 10);
}

/** Publishes `count` messages of ~`bytes` each, `perBatch` per request; data = bigData(k). */
async function publishBig(node, channel, count, bytes, perBatch) {
  for (let start = 0; start < count; start += perBatch) {
    const items = range(start, Math.min(count, start + perBatch) - 1).map((k) => ({ channel, data: bigData(k, bytes) }));
    const res = await publishBatch(node.url, items, { timeoutMs: 60_000 });
    assert.equal(res.status, 201, `batch at ${start}: ${res.status} ${res.text.slice(0, 200)}`);
  }
}

/** Waits until the client has every seq 1..n of `channel`, then checks order and data. */
async function expectAll(ws, channel, n, bytes, what, timeoutMs = 60_000) {
  const got = ws.collect(channel);
  await waitFor(() => got.length >= n || ws.closeInfo, {
    timeoutMs,
    what: `${what}: ${n} messages (has ${got.length})`,
  });
  assert.equal(ws.closeInfo, null, `${what}: the connection stayed open (closed ${JSON.stringify(ws.closeInfo)})`);
  assert.deepEqual(seqsOf(got), range(1, n), `${what}: every seq once, in order`);
  for (const m of got) assert.equal(m.data, bigData(m.seq - 1, bytes), `${what}: data of seq ${m.seq}`);
}

describe("a backlog of big messages resumes", () => {
  test("200 x 100 KB from 0 and from a stale position, cache and PostgreSQL, WebSocket and SSE", async (t) => {
    const db = await freshDatabase();
    const node = await nodeForTest(t, db, "big");
    const channel = "big:1";
    await publishBig(node, channel, 200, 100 * KiB, 20);

    // 20 MB of history against an 8 MiB send queue: paged by bytes.
    const ws = await openWs(t, node);
    const sub = await ws.subscribe(channel, { since: 0 });
    assert.equal(sub.head, 200);
    await expectAll(ws, channel, 200, 100 * KiB, "resume from 0");

    // From PostgreSQL (empty cache after a restart), from a stale position, with a
    // client that stops reading for a while.
    await node.stop();
    await node.start({ clearCache: true });
    const slow = await openWs(t, node);
    slow.socket.pause();
    slow.send({ op: "subscribe", channel, since: 50 });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the pause under test, not a wait for a condition
    slow.socket.resume();
    const got = slow.collect(channel);
    await waitFor(() => got.length >= 150 || slow.closeInfo, { timeoutMs: 60_000, what: `stale resume (has ${got.length})` });
    assert.equal(slow.closeInfo, null, `the paused client stayed open (closed ${JSON.stringify(slow.closeInfo)})`);
    assert.deepEqual(seqsOf(got), range(51, 200));

    // SSE follows the same pacing.
    const sse = await httpGetStream(`${node.url}/v1/sse/${encodeURIComponent(channel)}?since=0`, {
      until: (text) => text.includes("id: 200\n"),
      timeoutMs: 60_000,
    });
    assert.equal(sse.status, 200);
    const ids = [...sse.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(ids, range(1, 200), "SSE: every id once, in order");

    // The NDJSON log read of all of it.
    const res = await fetch(`${node.url}/v1/channels/${encodeURIComponent(channel)}/messages`, {
      headers: { Accept: "application/x-ndjson" },
    });
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.seq), range(1, 200));
    // A JSON page of big messages ends early and says where to go on.
    const page = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=1&limit=1000`);
    assert.equal(page.status, 200);
    assert.ok(page.body.messages.length < 200 && page.body.messages.length > 0, `a page bounded by bytes (${page.body.messages.length})`);
    assert.equal(page.body.next, page.body.messages.length + 1);
  });

  test("messages of max_payload_bytes resume with bounded node memory", async (t) => {
    const db = await freshDatabase();
    const node = await nodeForTest(t, db, "max");
    const channel = "max:1";
    const size = MiB - 64; // the JSON string of bigData stays under the 1 MiB default
    await publishBig(node, channel, 60, size, 4);
    await node.stop();
    await node.start({ clearCache: true });
    const ws = await openWs(t, node);
    ws.send({ op: "subscribe", channel, since: 0 });
    let peak = 0;
    const got = ws.collect(channel);
    await waitFor(
      () => {
        peak = Math.max(peak, node.rssBytes());
        return got.length >= 60 || ws.closeInfo;
      },
      { timeoutMs: 120_000, intervalMs: 20, what: `60 messages of 1 MiB (has ${got.length})` },
    );
    assert.equal(ws.closeInfo, null, `stayed open (closed ${JSON.stringify(ws.closeInfo)})`);
    assert.deepEqual(seqsOf(got), range(1, 60));
    // 60 MiB replayed; the node holds a few pages at a time.
    assert.ok(peak < 250 * MiB, `node RSS stayed bounded: peak ${Math.round(peak / MiB)} MiB`);
  });

  test("a node refuses a send queue that cannot hold two of the largest messages", async () => {
    const db = await freshDatabase();
    const run = await runSeqcast(["serve", "--database-url", db, "--send-queue-bytes", "1048576"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /send_queue_bytes \(1048576\) must hold two of the largest messages/);
  });
});

describe("a node whose PostgreSQL connections are cut", () => {
  test("answers its next reads and catches up on a quiet channel by itself", async (t) => {
    const db = await freshDatabase();
    const pgPort = Number(new URL(db).port);
    let proxy = await startFaultProxy({ upstreamPort: pgPort });
    const proxyPort = proxy.port;
    t.after(() => proxy.close());
    const viaProxy = new URL(db);
    viaProxy.port = String(proxyPort);
    // A: reaches PostgreSQL through the proxy; B: directly.
    const a = await nodeForTest(t, db, "cut-a", { args: ["--database-url", viaProxy.toString()] });
    const b = await nodeForTest(t, db, "cut-b");
    const channel = "quiet:1";
    for (const k of range(1, 3)) assert.equal((await publish(b.url, channel, { k })).status, 201);
    const ws = await openWs(t, a);
    await ws.subscribe(channel, { since: 0 });
    const got = ws.collect(channel);
    await waitFor(() => got.length === 3, { what: "the first 3 messages on A" });

    // Every connection of A is cut and none can be opened; B publishes meanwhile.
    await proxy.close();
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 503, { what: "A to notice" });
    for (const k of range(4, 8)) assert.equal((await publish(b.url, channel, { k })).status, 201);
    proxy = await startFaultProxy({ upstreamPort: pgPort, port: proxyPort });

    // No further publish: A must find 4..8 by itself.
    await waitFor(() => got.length >= 8, { timeoutMs: 30_000, what: `A's subscriber to get 4..8 (has ${seqsOf(got)})` });
    assert.deepEqual(seqsOf(got), range(1, 8));
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 200, { what: "A ready again" });

    // A backend kill is invisible to readers: every pooled connection is cut at once.
    await psql(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'seqcast'");
    for (const k of range(1, 6)) {
      const log = await getJson(`${a.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=1`);
      assert.equal(log.status, 200, `log read ${k} after the kill: ${log.text}`);
      assert.deepEqual(log.body.messages.map((m) => m.seq), range(1, 8));
      const info = await getJson(`${a.url}/v1/channels/${encodeURIComponent(channel)}`);
      assert.equal(info.status, 200, `channel info ${k} after the kill: ${info.text}`);
    }
    // And a publish right after one is answered 201, not 503.
    await psql(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'seqcast'");
    assert.equal((await publish(a.url, channel, { k: 9 })).status, 201);
    await waitFor(() => got.length >= 9, { what: "seq 9 live" });
    assert.deepEqual(seqsOf(got), range(1, 9));
  });
});
