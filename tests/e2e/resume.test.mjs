// End-to-end tests of issue "2/6 Resume without loss": subscribe with
// since/epoch, reset with the exact missed range, resume across nodes and
// restarts (RocksDB cache kept or deleted), a reconnect storm served with O(1)
// PostgreSQL reads, retention, log reads (pages, NDJSON), `seqcast replay`,
// and a cache that must not outlive its database.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import {
  BIN,
  freshDatabase,
  getJson,
  nodeForTest,
  openWs,
  publish,
  publishBatch,
  range,
  runSeqcast,
  seqsOf,
  waitFor,
  withTimeout,
  wsClient,
} from "./harness.mjs";

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Helpers

const nodeOn = nodeForTest;

/** Frames that are not heartbeats or the greeting. */
const significant = (frames) => frames.filter((f) => f.type !== "ping" && f.type !== "welcome");

/**
 * Publishes `count` messages to `channel` through POST /v1/publish, `perBatch`
 * a request, `concurrency` requests at a time; data = dataOf(k) for k = 0….
 * Returns the results in publish order, and asserts they are 201s with
 * contiguous seqs.
 */
async function publishMany(nodeUrl, channel, count, { dataOf = (k) => ({ k }), perBatch = 100, concurrency = 1 } = {}) {
  const batches = [];
  for (let start = 0; start < count; start += perBatch) {
    batches.push(range(start, Math.min(count, start + perBatch) - 1));
  }
  const resultsByBatch = new Array(batches.length);
  let next = 0;
  await Promise.all(
    range(1, concurrency).map(async () => {
      while (next < batches.length) {
        const b = next++;
        const res = await publishBatch(
          nodeUrl,
          batches[b].map((k) => ({ channel, data: dataOf(k) })),
          { timeoutMs: 60_000 },
        );
        assert.equal(res.status, 201, `batch ${b}: ${res.status} ${res.text.slice(0, 300)}`);
        resultsByBatch[b] = res.body.results.map((r, i) => ({ ...r, data: dataOf(batches[b][i]) }));
      }
    }),
  );
  const results = resultsByBatch.flat();
  const seqs = results.map((r) => r.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, range(seqs[0], seqs[0] + seqs.length - 1), "published seqs are contiguous");
  return results;
}

/** Waits until `messages` (a live array of message frames) holds seq `seq`. */
function waitForSeq(messages, seq, what, timeoutMs = 30_000) {
  return waitFor(() => messages.some((m) => m.seq === seq), {
    timeoutMs,
    what: `${what} to receive seq ${seq} (has ${messages.length}, last ${messages.at(-1)?.seq})`,
  });
}

async function channelInfo(node, channel) {
  const res = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}`);
  assert.equal(res.status, 200, `channel info of ${channel}: ${res.text}`);
  return res.body;
}

/** Asserts each message's data is `{k: seq - 1 + offset}` style: dataOf(seq). */
function assertData(messages, expectedDataOf, context) {
  for (const m of messages) {
    assert.deepEqual(m.data, expectedDataOf(m.seq), `${context}: data of seq ${m.seq}`);
  }
}

// Raw JSON spans: the exact text of a member's value, so that payload bytes can
// be compared without re-serialising them.

function stringEnd(s, i) {
  for (i += 1; s[i] !== '"'; i++) {
    if (s[i] === "\\") i++;
    if (i >= s.length) throw new Error("unterminated JSON string");
  }
  return i + 1;
}

function skipSpace(s, i) {
  while (i < s.length && " \t\r\n".includes(s[i])) i++;
  return i;
}

function valueEnd(s, i) {
  const c = s[i];
  if (c === '"') return stringEnd(s, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    while (i < s.length) {
      const d = s[i];
      if (d === '"') {
        i = stringEnd(s, i);
        continue;
      }
      if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw new Error("unterminated JSON container");
  }
  while (i < s.length && !",}] \t\r\n".includes(s[i])) i++;
  return i;
}

/** The members of the JSON object at s[i]: Map key → raw value text. */
function rawMembers(s, i = skipSpace(s, 0)) {
  assert.equal(s[i], "{", "a JSON object");
  const out = new Map();
  i = skipSpace(s, i + 1);
  if (s[i] === "}") return out;
  for (;;) {
    const keyEnd = stringEnd(s, i);
    const key = JSON.parse(s.slice(i, keyEnd));
    i = skipSpace(s, keyEnd);
    assert.equal(s[i], ":");
    i = skipSpace(s, i + 1);
    const end = valueEnd(s, i);
    out.set(key, { start: i, raw: s.slice(i, end) });
    i = skipSpace(s, end);
    if (s[i] === ",") {
      i = skipSpace(s, i + 1);
      continue;
    }
    assert.equal(s[i], "}");
    return out;
  }
}

/** The elements of the JSON array at s[i]: [{start, raw}]. */
function rawElements(s, i) {
  assert.equal(s[i], "[", "a JSON array");
  const out = [];
  i = skipSpace(s, i + 1);
  if (s[i] === "]") return out;
  for (;;) {
    const end = valueEnd(s, i);
    out.push({ start: i, raw: s.slice(i, end) });
    i = skipSpace(s, end);
    if (s[i] === ",") {
      i = skipSpace(s, i + 1);
      continue;
    }
    assert.equal(s[i], "]");
    return out;
  }
}

/** A log page's messages as [{seq, ts, dataRaw}], from the page's exact text. */
function pageMessagesRaw(text) {
  const messages = rawMembers(text).get("messages");
  return rawElements(text, messages.start).map((el) => {
    const members = rawMembers(text, el.start);
    return { seq: JSON.parse(members.get("seq").raw), ts: JSON.parse(members.get("ts").raw), dataRaw: members.get("data").raw };
  });
}

/** An NDJSON line as {channel, seq, ts, dataRaw}. */
function lineRaw(line) {
  const members = rawMembers(line);
  return {
    channel: JSON.parse(members.get("channel").raw),
    seq: JSON.parse(members.get("seq").raw),
    ts: JSON.parse(members.get("ts").raw),
    dataRaw: members.get("data").raw,
  };
}

/**
 * A bare WebSocket client for the storm test (a thousand of them in one
 * process): keeps only seqs and unexpected frames. `opened` resolves once the
 * subscribe is sent, `complete` once seq `lastSeq` arrived.
 */
function stormClient(wsUrl, { channel, since, epoch, lastSeq }) {
  const socket = new WebSocket(wsUrl);
  const state = { socket, seqs: [], subscribed: null, unexpected: [], badData: 0, closeCode: null };
  let finish;
  let fail;
  state.complete = new Promise((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  state.complete.catch(() => {}); // observed through Promise.all later
  state.opened = new Promise((resolve, reject) => {
    socket.once("open", () => {
      socket.send(JSON.stringify({ op: "subscribe", channel, since, epoch }));
      resolve();
    });
    socket.once("error", reject);
    socket.once("unexpected-response", (_req, res) => reject(new Error(`upgrade answered HTTP ${res.statusCode}`)));
  });
  socket.on("error", () => {});
  socket.on("message", (data) => {
    const f = JSON.parse(data.toString("utf8"));
    if (f.type === "message") {
      state.seqs.push(f.seq);
      if (f.data?.k !== f.seq - 1) state.badData += 1;
      if (f.seq === lastSeq) finish();
    } else if (f.type === "subscribed" && state.subscribed === null) {
      state.subscribed = f;
    } else if (f.type !== "welcome" && f.type !== "ping") {
      state.unexpected.push(f);
    }
  });
  socket.on("close", (code) => {
    state.closeCode = code;
    fail(new Error(`closed with ${code} after ${state.seqs.length} messages`));
  });
  return state;
}

/** Spawns `seqcast replay … --follow` and collects its stdout lines. */
function spawnFollow(args) {
  const proc = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const follower = { proc, lines: [], stderr: "" };
  let partial = "";
  proc.stdout.on("data", (chunk) => {
    partial += chunk.toString("utf8");
    const parts = partial.split("\n");
    partial = parts.pop();
    for (const line of parts) if (line.length) follower.lines.push(line);
  });
  proc.stderr.on("data", (chunk) => (follower.stderr += chunk));
  follower.exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  return follower;
}

// ---------------------------------------------------------------------------

describe("2/6 Resume without loss", () => {
  test("resume since=5 after 20 more publishes gets exactly 6..25; live-only head=26, then resume since=26 gets 27..40", { timeout: 60_000 }, async (t) => {
    const node = await nodeOn(t, await freshDatabase(), "resume");
    const CHANNEL = "resume:1";
    const dataOf = (seq) => ({ n: seq, text: `message ${seq}` });

    const first = await wsClient(node.wsUrl);
    const subscribed = await first.subscribe(CHANNEL);
    assert.deepEqual(subscribed, { type: "subscribed", channel: CHANNEL, epoch: null, head: 0 });
    const firstReceived = first.collect(CHANNEL);
    let epoch;
    for (let seq = 1; seq <= 5; seq++) {
      const res = await publish(node.url, CHANNEL, dataOf(seq));
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.seq, seq);
      epoch = res.body.epoch;
    }
    await waitForSeq(firstReceived, 5, "the first connection");
    assert.deepEqual(seqsOf(firstReceived), range(1, 5));
    assert.ok(firstReceived.every((m) => m.epoch === epoch), "messages name the epoch");
    await first.close();

    const published = await publishMany(node.url, CHANNEL, 20, { dataOf: (k) => dataOf(6 + k), perBatch: 5 });
    assert.deepEqual(seqsOf(published), range(6, 25));

    const resumed = await openWs(t, node);
    const again = await resumed.subscribe(CHANNEL, { since: 5, epoch });
    assert.deepEqual(again, { type: "subscribed", channel: CHANNEL, epoch, head: 25 });
    const resumedReceived = resumed.collect(CHANNEL);
    await waitForSeq(resumedReceived, 25, "the resumed connection");
    // A live message marks the end: a duplicate would have come before it.
    const live = await publish(node.url, CHANNEL, dataOf(26));
    assert.equal(live.body.seq, 26);
    await waitForSeq(resumedReceived, 26, "the resumed connection");
    assert.deepEqual(seqsOf(resumedReceived), range(6, 26), "exactly 6..25 replayed, then 26 live, once each, in order");
    assertData(resumedReceived, dataOf, "resumed");
    assert.ok(resumedReceived.every((m) => m.epoch === epoch && m.channel === CHANNEL));
    assert.deepEqual(significant(resumed.frames).filter((f) => f.type !== "message" && f.type !== "subscribed"), [], "no reset or error");

    // Live only: `head` is the current last seq, and resuming from it later misses nothing.
    const liveOnly = await wsClient(node.wsUrl);
    const liveSubscribed = await liveOnly.subscribe(CHANNEL);
    assert.deepEqual(liveSubscribed, { type: "subscribed", channel: CHANNEL, epoch, head: 26 });
    const liveReceived = liveOnly.collect(CHANNEL);
    await publishMany(node.url, CHANNEL, 7, { dataOf: (k) => dataOf(27 + k), perBatch: 1 });
    await waitForSeq(liveReceived, 33, "the live-only connection");
    assert.deepEqual(seqsOf(liveReceived), range(27, 33), "live only: nothing at or below head 26");
    await liveOnly.close();
    await publishMany(node.url, CHANNEL, 7, { dataOf: (k) => dataOf(34 + k), perBatch: 7 });

    const fromHead = await openWs(t, node);
    const headSubscribed = await fromHead.subscribe(CHANNEL, { since: liveSubscribed.head, epoch });
    assert.equal(headSubscribed.head, 40);
    const fromHeadReceived = fromHead.collect(CHANNEL);
    await waitForSeq(fromHeadReceived, 40, "the connection resumed from head 26");
    const sentinel = await publish(node.url, CHANNEL, dataOf(41));
    assert.equal(sentinel.body.seq, 41);
    await waitForSeq(fromHeadReceived, 41, "the connection resumed from head 26");
    assert.deepEqual(seqsOf(fromHeadReceived), range(27, 41), "resume since=head: 27..40, then 41 live");
    assertData(fromHeadReceived, dataOf, "resumed from head");
  });

  test("resume on another node: 5 received on A, 20 published on A and B, resume since=5 on B gets exactly 6..25", { timeout: 60_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const a = await nodeOn(t, databaseUrl, "other-node-a");
    const b = await nodeOn(t, databaseUrl, "other-node-b");
    const CHANNEL = "moved";
    const dataOf = (seq) => ({ seq });

    const onA = await wsClient(a.wsUrl);
    await onA.subscribe(CHANNEL);
    const receivedOnA = onA.collect(CHANNEL);
    const firstFive = await publishMany(a.url, CHANNEL, 5, { dataOf: (k) => dataOf(1 + k), perBatch: 1 });
    const epoch = firstFive[0].epoch;
    await waitForSeq(receivedOnA, 5, "the subscriber on A");
    assert.deepEqual(seqsOf(receivedOnA), range(1, 5));
    await onA.close();

    // The next 20 alternate between the nodes.
    for (let seq = 6; seq <= 25; seq++) {
      const res = await publish((seq % 2 ? a : b).url, CHANNEL, dataOf(seq));
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.seq, seq);
    }

    const onB = await openWs(t, b);
    const subscribed = await onB.subscribe(CHANNEL, { since: 5, epoch });
    assert.deepEqual(subscribed, { type: "subscribed", channel: CHANNEL, epoch, head: 25 });
    const receivedOnB = onB.collect(CHANNEL);
    await waitForSeq(receivedOnB, 25, "the subscriber resumed on B");
    const sentinel = await publish(a.url, CHANNEL, dataOf(26)); // published on A, delivered on B
    assert.equal(sentinel.body.seq, 26);
    await waitForSeq(receivedOnB, 26, "the subscriber resumed on B");
    assert.deepEqual(seqsOf(receivedOnB), range(6, 26), "B replays exactly 6..25, then 26 live");
    assertData(receivedOnB, dataOf, "on B");
    assert.ok(receivedOnB.every((m) => m.epoch === epoch));
    assert.equal(significant(onB.frames).filter((f) => f.type === "reset" || f.type === "error").length, 0, "no reset or error");
  });

  test("resume racing ≥ 500 msg/s of live publishes: 4 clients resuming at S=0, 700, head-10, head get exactly S+1..n", { timeout: 120_000 }, async (t) => {
    const node = await nodeOn(t, await freshDatabase(), "race");
    const CHANNEL = "race";

    // A backlog longer than the in-memory ring (1024), so the deep resume reads the cache.
    const backlog = await publishMany(node.url, CHANNEL, 1500, { dataOf: (k) => ({ k }), perBatch: 100, concurrency: 2 });
    const epoch = backlog[0].epoch;
    // What was published as which seq (batches in flight together commit in either order).
    const kBySeq = new Map(backlog.map((r) => [r.seq, r.data.k]));

    // Publishers: batches of 20, several in flight, paced to about 1500 msg/s.
    const WORKERS = 4;
    const PER_BATCH = 20;
    const TARGET_RATE = 1500;
    const RUN_MS = 4_000;
    let running = true;
    let published = 0;
    let nextK = 1500;
    const failures = [];
    const started = Date.now();
    const publishers = range(1, WORKERS).map(async () => {
      while (running) {
        const items = range(0, PER_BATCH - 1).map(() => ({ channel: CHANNEL, data: { k: nextK++ } }));
        const res = await publishBatch(node.url, items, { timeoutMs: 30_000 });
        if (res.status !== 201) {
          failures.push(`${res.status} ${res.text.slice(0, 200)}`);
          return;
        }
        for (const [i, r] of res.body.results.entries()) kBySeq.set(r.seq, items[i].data.k);
        published += PER_BATCH;
        const ahead = (published / TARGET_RATE) * 1000 - (Date.now() - started);
        if (ahead > 0) await delay(ahead); // pacing only
      }
    });

    // Resume while publishes keep arriving, at different depths.
    const clients = [];
    const resumeAt = async (label, since) => {
      const ws = await openWs(t, node);
      const subscribed = await ws.subscribe(CHANNEL, { since, epoch, timeoutMs: 30_000 });
      assert.equal(subscribed.type, "subscribed", JSON.stringify(subscribed));
      assert.equal(subscribed.epoch, epoch);
      assert.ok(subscribed.head >= since, `${label}: head ${subscribed.head} ≥ since ${since}`);
      clients.push({ label, since, ws, received: ws.collect(CHANNEL) });
    };
    await waitFor(() => published >= 600 || failures.length, { timeoutMs: 30_000, what: "600 live publishes" });
    await resumeAt("S=0", 0);
    await resumeAt("S=700", 700);
    await waitFor(() => published >= 2500 || failures.length, { timeoutMs: 30_000, what: "2500 live publishes" });
    const head1 = (await channelInfo(node, CHANNEL)).last_seq;
    await resumeAt(`S=head-10 (${head1 - 10})`, head1 - 10);
    const head2 = (await channelInfo(node, CHANNEL)).last_seq;
    await resumeAt(`S=head (${head2})`, head2);
    await waitFor(() => Date.now() - started >= RUN_MS || failures.length, { timeoutMs: 30_000, what: "the publishing period" });
    running = false;
    await Promise.all(publishers);
    const elapsedS = (Date.now() - started) / 1000;
    assert.deepEqual(failures, [], "every batch publish answered 201");
    const rate = published / elapsedS;
    t.diagnostic(`published ${published} messages in ${elapsedS.toFixed(2)} s: ${Math.round(rate)} msg/s`);
    assert.ok(rate >= 500, `publish rate ${Math.round(rate)} msg/s ≥ 500`);

    const sentinel = await publish(node.url, CHANNEL, { k: "end" });
    assert.equal(sentinel.status, 201, sentinel.text);
    const n = sentinel.body.seq;
    assert.equal(n, 1500 + published + 1);
    assert.equal((await channelInfo(node, CHANNEL)).last_seq, n);
    for (const c of clients) {
      await waitForSeq(c.received, n, `client ${c.label}`, 60_000);
      assert.deepEqual(seqsOf(c.received), range(c.since + 1, n), `client ${c.label}: exactly ${c.since + 1}..${n}`);
      for (const m of c.received) {
        const want = m.seq === n ? "end" : kBySeq.get(m.seq);
        if (m.data.k !== want) assert.fail(`client ${c.label}: seq ${m.seq} data ${JSON.stringify(m.data)}, expected k=${want}`);
      }
      assert.equal(significant(c.ws.frames).filter((f) => f.type === "reset" || f.type === "error").length, 0, `client ${c.label}: no reset or error`);
    }
    t.diagnostic(`clients resumed at ${clients.map((c) => c.since).join(", ")}; n = ${n}`);
  });

  test("node restarted with its cache: resume since=0 and since=250 of 300 (+5) use no PostgreSQL replay read; with the cache deleted they still get 1..305", { timeout: 90_000 }, async (t) => {
    const node = await nodeOn(t, await freshDatabase(), "restart-cache");
    const CHANNEL = "warm";
    const dataOf = (seq) => ({ k: seq - 1 });

    // A subscriber on the node while 300 are published: the node serves the channel.
    const before = await wsClient(node.wsUrl);
    await before.subscribe(CHANNEL);
    const beforeReceived = before.collect(CHANNEL);
    const results = await publishMany(node.url, CHANNEL, 300, { perBatch: 50 });
    const epoch = results[0].epoch;
    await waitForSeq(beforeReceived, 300, "the subscriber before the restart");

    await node.restart();
    await before.closed;
    // Five more after the restart, published on the restarted node.
    await publishMany(node.url, CHANNEL, 5, { dataOf: (k) => ({ k: 300 + k }), perBatch: 1 });

    const resumeAndCheck = async (label, since) => {
      const ws = await openWs(t, node);
      const subscribed = await ws.subscribe(CHANNEL, { since, epoch });
      assert.deepEqual(subscribed, { type: "subscribed", channel: CHANNEL, epoch, head: 305 }, label);
      const received = ws.collect(CHANNEL);
      await waitForSeq(received, 305, label);
      await ws.close();
      assert.deepEqual(seqsOf(received), range(since + 1, 305), `${label}: exactly ${since + 1}..305`);
      assertData(received, dataOf, label);
      assert.equal(significant(ws.frames).filter((f) => f.type === "reset" || f.type === "error").length, 0, `${label}: no reset`);
    };
    await resumeAndCheck("cache kept, since=0", 0);
    await resumeAndCheck("cache kept, since=250", 250);
    const metrics1 = await node.metrics();
    t.diagnostic(
      `cache kept: replay from memory ${metrics1.seqcast_replay_memory_messages_total}, cache ${metrics1.seqcast_replay_cache_messages_total}, ` +
        `PostgreSQL ${metrics1.seqcast_replay_pg_messages_total} messages in ${metrics1.seqcast_replay_pg_queries_total} reads`,
    );
    assert.equal(metrics1.seqcast_replay_pg_queries_total, 0, "no PostgreSQL replay read after a restart with the cache kept");
    assert.equal(metrics1.seqcast_replay_pg_messages_total, 0);
    assert.ok(metrics1.seqcast_replay_cache_messages_total > 0, "replays came from the cache");

    // The same with the cache directory deleted: everything still comes back, from PostgreSQL.
    await node.stop();
    await node.start({ clearCache: true });
    await resumeAndCheck("cache deleted, since=0", 0);
    await resumeAndCheck("cache deleted, since=250", 250);
    const metrics2 = await node.metrics();
    t.diagnostic(
      `cache deleted: replay from memory ${metrics2.seqcast_replay_memory_messages_total}, cache ${metrics2.seqcast_replay_cache_messages_total}, ` +
        `PostgreSQL ${metrics2.seqcast_replay_pg_messages_total} messages in ${metrics2.seqcast_replay_pg_queries_total} reads`,
    );
    assert.ok(metrics2.seqcast_replay_pg_queries_total > 0, "with no cache, PostgreSQL was read");
    assert.ok(metrics2.seqcast_replay_pg_messages_total >= 300, "the replayed history came from PostgreSQL");
  });

  test("reconnect storm: 1000 clients resume 500 back (since=100 of 600) on a restarted node with no cache: all get exactly 101..600, ≤ 5 PostgreSQL replay reads", { timeout: 180_000 }, async (t) => {
    const node = await nodeOn(t, await freshDatabase(), "storm");
    const CHANNEL = "storm";
    const CLIENTS = 1000;
    const BATCH = 100;
    const results = await publishMany(node.url, CHANNEL, 600, { perBatch: 100 });
    const epoch = results[0].epoch;

    await node.stop();
    await node.start({ clearCache: true });
    const before = await node.metrics();
    assert.equal(before.seqcast_replay_pg_queries_total, 0);

    const clients = [];
    t.after(() => {
      for (const c of clients) c.socket.terminate();
    });
    const started = Date.now();
    for (let i = 0; i < CLIENTS; i += BATCH) {
      const batch = range(1, BATCH).map(() => stormClient(node.wsUrl, { channel: CHANNEL, since: 100, epoch, lastSeq: 600 }));
      clients.push(...batch);
      await withTimeout(Promise.all(batch.map((c) => c.opened)), 60_000, `opening clients ${i + 1}..${i + BATCH}`);
    }
    const openedMs = Date.now() - started;
    await withTimeout(Promise.all(clients.map((c) => c.complete)), 120_000, "every client to receive seq 600").catch((err) => {
      const done = clients.filter((c) => c.seqs.at(-1) === 600).length;
      const closed = clients.filter((c) => c.closeCode !== null).map((c) => c.closeCode);
      throw new Error(`${err.message}: ${done}/${CLIENTS} complete; close codes ${JSON.stringify(closed.slice(0, 10))}`);
    });
    const stormMs = Date.now() - started;
    const after = await node.metrics();
    const replayReads = after.seqcast_replay_pg_queries_total - before.seqcast_replay_pg_queries_total;
    const allReads = after.seqcast_pg_queries_total - before.seqcast_pg_queries_total;
    t.diagnostic(
      `storm: ${CLIENTS} clients opened in ${openedMs} ms, all complete after ${stormMs} ms; ` +
        `PostgreSQL replay reads ${replayReads} (${after.seqcast_replay_pg_messages_total - before.seqcast_replay_pg_messages_total} messages), ` +
        `all read-pool queries ${allReads}; from cache ${after.seqcast_replay_cache_messages_total - before.seqcast_replay_cache_messages_total}, ` +
        `from memory ${after.seqcast_replay_memory_messages_total - before.seqcast_replay_memory_messages_total} messages`,
    );

    const expected = range(101, 600);
    const wrong = clients.map((c, i) => ({ i, c })).filter(({ c }) => c.seqs.length !== 500 || c.seqs.some((s, j) => s !== expected[j]));
    assert.equal(wrong.length, 0, `clients without exactly 101..600: ${wrong.length}; first #${wrong[0]?.i}: ${JSON.stringify(wrong[0]?.c.seqs.slice(0, 20))}…`);
    assert.equal(clients.filter((c) => c.badData).length, 0, "every message carries its data");
    const unexpected = clients.flatMap((c) => c.unexpected);
    assert.deepEqual(unexpected.slice(0, 3), [], "no reset or error frames");
    for (const c of clients) assert.deepEqual(c.subscribed, { type: "subscribed", channel: CHANNEL, epoch, head: 600 });
    assert.ok(replayReads >= 1, "the history was read from PostgreSQL (the cache was deleted)");
    assert.ok(replayReads <= 5, `PostgreSQL replay reads for 1000 resumes: ${replayReads} ≤ 5`);
  });

  test("retention 10: publish 50, resume since=1 → reset truncated missed [2,40] then 41..50; DELETE → new epoch; old epoch → reset epoch_changed, then 1..3", { timeout: 90_000 }, async (t) => {
    const node = await nodeOn(t, await freshDatabase(), "retention", {
      args: ["--retention-messages", "10", "--retention-check-seconds", "1"],
    });
    const CHANNEL = "kept";
    const results = await publishMany(node.url, CHANNEL, 50, { dataOf: (k) => ({ k }), perBatch: 50 });
    const epoch = results[0].epoch;
    await waitFor(async () => (await channelInfo(node, CHANNEL)).first_seq === 41, { timeoutMs: 30_000, what: "first_seq 41 after trimming" });
    const info = await channelInfo(node, CHANNEL);
    assert.equal(info.last_seq, 50);
    assert.equal(info.epoch, epoch);

    const ws = await openWs(t, node);
    const subscribed = await ws.subscribe(CHANNEL, { since: 1, epoch });
    assert.deepEqual(subscribed, { type: "subscribed", channel: CHANNEL, epoch, head: 50 });
    const received = ws.collect(CHANNEL);
    await waitForSeq(received, 50, "the truncated resume");
    const frames = significant(ws.frames);
    assert.deepEqual(
      frames.slice(0, 2),
      [subscribed, { type: "reset", channel: CHANNEL, epoch, first_seq: 41, head: 50, reason: "truncated", missed: [2, 40] }],
      "subscribed, then the reset naming exactly 2..40, before any message",
    );
    assert.deepEqual(seqsOf(received), range(41, 50), "then exactly 41..50");
    assert.deepEqual(seqsOf(frames.slice(2)), range(41, 50), "nothing else between");
    assertData(received, (seq) => ({ k: seq - 1 }), "after the reset");

    // since=0 misses 1..40; since=45 misses nothing.
    const fromZero = await openWs(t, node);
    await fromZero.subscribe(CHANNEL, { since: 0, epoch });
    const reset0 = await fromZero.next((f) => f.type === "reset" || f.type === "message", 10_000);
    assert.deepEqual(reset0, { type: "reset", channel: CHANNEL, epoch, first_seq: 41, head: 50, reason: "truncated", missed: [1, 40] });
    await waitForSeq(fromZero.collect(CHANNEL), 50, "the since=0 resume");
    assert.deepEqual(seqsOf(fromZero.collect(CHANNEL)), range(41, 50));
    const from45 = await openWs(t, node);
    await from45.subscribe(CHANNEL, { since: 45, epoch });
    await waitForSeq(from45.collect(CHANNEL), 50, "the since=45 resume");
    assert.deepEqual(seqsOf(from45.collect(CHANNEL)), range(46, 50));
    assert.equal(from45.frames.filter((f) => f.type === "reset").length, 0, "since=45 is retained: no reset");

    // DELETE: 404 until the next publish, which starts a new epoch at seq 1.
    const deleted = await fetch(`${node.url}/v1/channels/${CHANNEL}`, { method: "DELETE", signal: AbortSignal.timeout(30_000) });
    assert.equal(deleted.status, 204, await deleted.text());
    const gone = await getJson(`${node.url}/v1/channels/${CHANNEL}`);
    assert.equal(gone.status, 404, gone.text);
    assert.equal(gone.body?.error?.code, "channel_not_found");
    const fresh = await publishMany(node.url, CHANNEL, 3, { dataOf: (k) => ({ fresh: k + 1 }), perBatch: 1 });
    const newEpoch = fresh[0].epoch;
    assert.deepEqual(seqsOf(fresh), [1, 2, 3], "the new epoch starts at seq 1");
    assert.equal(typeof newEpoch, "string");
    assert.notEqual(newEpoch, epoch, "a new epoch");
    assert.ok(fresh.every((r) => r.epoch === newEpoch));

    const oldPosition = await openWs(t, node);
    const resubscribed = await oldPosition.subscribe(CHANNEL, { since: 50, epoch });
    assert.deepEqual(resubscribed, { type: "subscribed", channel: CHANNEL, epoch: newEpoch, head: 3 });
    const newReceived = oldPosition.collect(CHANNEL);
    await waitForSeq(newReceived, 3, "the resume with the old epoch");
    const newFrames = significant(oldPosition.frames);
    assert.deepEqual(
      newFrames[1],
      { type: "reset", channel: CHANNEL, epoch: newEpoch, first_seq: 1, head: 3, reason: "epoch_changed", missed: null },
      "reset epoch_changed before any message",
    );
    assert.deepEqual(seqsOf(newFrames.slice(2)), [1, 2, 3], "then the new epoch's 1..3");
    assert.ok(newReceived.every((m) => m.epoch === newEpoch));
    assertData(newReceived, (seq) => ({ fresh: seq }), "new epoch");
  });

  test("log reads: pages of 100 cover 1..250 (immutable below the head), replay --from 20 --to 180 equals the HTTP log, --follow prints a later publish, NDJSON streams 10000 with bounded RSS", { timeout: 150_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await nodeOn(t, databaseUrl, "log-reads");
    const CHANNEL = "log";
    const N = 250;

    // Payloads with odd spacing, escapes and non-ASCII text, sent as raw batch bodies.
    const payloadText = (i) => `{ "i" : ${i},"s":"caf\\u00e9 \u00e9 \u{1D11E} \\"q\\"" , "n" :[1, 2.50, -0e0 ] }`;
    for (let start = 1; start <= N; start += 50) {
      const items = range(start, Math.min(N, start + 49)).map((i) => `{"channel":"${CHANNEL}","data":${payloadText(i)}}`);
      const res = await fetch(`${node.url}/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: `{"messages":[${items.join(",")}]}`,
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(res.status, 201, await res.text());
    }
    const { epoch } = await channelInfo(node, CHANNEL);

    // Paging with `next`.
    const pages = [];
    for (let from = 1; from !== null; ) {
      const page = await getJson(`${node.url}/v1/channels/${CHANNEL}/messages?from=${from}&limit=100`);
      assert.equal(page.status, 200, page.text);
      pages.push(page);
      assert.ok(pages.length <= 4, "paging ends");
      from = page.body.next;
    }
    assert.deepEqual(
      pages.map((p) => [p.body.messages[0].seq, p.body.messages.at(-1).seq, p.body.next]),
      [[1, 100, 101], [101, 200, 201], [201, 250, null]],
    );
    assert.deepEqual(pages.flatMap((p) => seqsOf(p.body.messages)), range(1, N), "the pages cover 1..250 exactly");
    for (const p of pages) {
      assert.equal(p.body.channel, CHANNEL);
      assert.equal(p.body.epoch, epoch);
      assert.equal(p.body.first_seq, 1);
      assert.equal(p.body.last_seq, N);
      for (const m of p.body.messages) assert.equal(m.data.i, m.seq);
    }
    for (const p of pages.slice(0, 2)) {
      const cacheControl = p.headers.get("cache-control") ?? "";
      assert.match(cacheControl, /\bimmutable\b/, "a full page below the head is immutable");
      assert.match(cacheControl, /\bpublic\b/);
      assert.match(cacheControl, /\bmax-age=31536000\b/);
      assert.ok(p.headers.get("etag"), "a full page below the head has an ETag");
    }
    assert.notEqual(pages[0].headers.get("etag"), pages[1].headers.get("etag"), "ETags name the range");
    const headPage = pages[2];
    assert.doesNotMatch(headPage.headers.get("cache-control") ?? "", /immutable|max-age=31536000/, "the head page is not immutable");
    assert.equal(headPage.headers.get("etag"), null, "the head page has no ETag");
    // Byte-exact payloads in the log.
    for (const m of pageMessagesRaw(pages[0].text)) assert.equal(m.dataRaw, payloadText(m.seq), `log bytes of seq ${m.seq}`);

    // `seqcast replay --from 20 --to 180` prints what the HTTP log returns for 20..180.
    const httpRange = await getJson(`${node.url}/v1/channels/${CHANNEL}/messages?from=20&limit=161`);
    assert.equal(httpRange.status, 200, httpRange.text);
    const httpMessages = pageMessagesRaw(httpRange.text);
    assert.deepEqual(seqsOf(httpMessages), range(20, 180));
    const replay = await runSeqcast(["replay", "--database-url", databaseUrl, "--channel", CHANNEL, "--from", "20", "--to", "180"]);
    assert.equal(replay.code, 0, `replay exited ${replay.code}: ${replay.stderr}`);
    const replayLines = replay.stdout.split("\n").filter((l) => l.length);
    const replayMessages = replayLines.map(lineRaw);
    assert.ok(replayMessages.every((m) => m.channel === CHANNEL), "every line names the channel");
    assert.deepEqual(
      replayMessages.map(({ seq, ts, dataRaw }) => ({ seq, ts, dataRaw })),
      httpMessages,
      "replay --from 20 --to 180: the same seqs, ts and data bytes as the HTTP log",
    );
    assert.deepEqual(
      replayLines.map((l) => JSON.parse(l)),
      httpRange.body.messages.map((m) => ({ channel: CHANNEL, ...m })),
      "the same parsed objects",
    );

    // `--follow`: the backlog from 240, then a message published after it started.
    const follower = spawnFollow(["replay", "--database-url", databaseUrl, "--channel", CHANNEL, "--from", "240", "--follow"]);
    t.after(() => {
      if (follower.proc.exitCode === null && follower.proc.signalCode === null) follower.proc.kill("SIGKILL");
    });
    const followedSeqs = () => follower.lines.map((l) => JSON.parse(l).seq);
    await waitFor(() => followedSeqs().includes(N), { timeoutMs: 30_000, what: `replay --follow to print the backlog up to ${N} (stderr: ${follower.stderr})` });
    const later = await publish(node.url, CHANNEL, { later: true });
    assert.equal(later.status, 201, later.text);
    assert.equal(later.body.seq, N + 1);
    await waitFor(() => followedSeqs().includes(N + 1), { timeoutMs: 30_000, what: `replay --follow to print seq ${N + 1}` });
    follower.proc.kill("SIGTERM");
    await withTimeout(follower.exited, 10_000, "replay --follow exiting on SIGTERM").catch(() => follower.proc.kill("SIGKILL"));
    assert.deepEqual(followedSeqs(), range(240, N + 1), "--follow: 240..250 from the log, then 251 live, once each");
    assert.deepEqual(JSON.parse(follower.lines.at(-1)).data, { later: true });
    assert.equal(lineRaw(follower.lines[0]).dataRaw, payloadText(240));

    // NDJSON: 10 000 messages of ~8 KiB (≈ 80 MiB, more than the RSS bound), streamed.
    const BULK = "bulk";
    const COUNT = 10_000;
    const pad = "x".repeat(8 * 1024);
    const publishStarted = Date.now();
    const bulkResults = await publishMany(node.url, BULK, COUNT, { dataOf: (k) => ({ i: k + 1, pad }), perBatch: 100, concurrency: 2 });
    // Two batches in flight: the seq of each item follows commit order.
    const bulkI = new Int32Array(COUNT + 1);
    for (const r of bulkResults) bulkI[r.seq] = r.data.i;
    t.diagnostic(`published ${COUNT} messages of 8 KiB in ${Date.now() - publishStarted} ms`);

    // The baseline: RSS once it stops moving after the bulk publish (background
    // cache work settles); on a busy machine, whatever it is after 10 s.
    let lastRss = node.rssBytes();
    await waitFor(
      () => {
        const now = node.rssBytes();
        const settled = Math.abs(now - lastRss) < MiB;
        lastRss = now;
        return settled;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: "the node's RSS to settle" },
    ).catch(() => {});
    const rssBefore = node.rssBytes();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, node.rssBytes());
      } catch {
        // the node exited: the checks below report it
      }
    }, 20);
    let count = 0;
    let bytes = 0;
    let outOfOrder = null;
    const streamStarted = Date.now();
    try {
      const res = await fetch(`${node.url}/v1/channels/${BULK}/messages?from=1`, {
        headers: { accept: "application/x-ndjson" },
        signal: AbortSignal.timeout(120_000),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /application\/x-ndjson/);
      const decoder = new TextDecoder();
      let partial = "";
      const onLine = (line) => {
        const m = JSON.parse(line);
        count += 1;
        if (outOfOrder === null && (m.seq !== count || m.channel !== BULK || m.data.i !== bulkI[count] || m.data.pad !== pad)) {
          outOfOrder = `line ${count}: seq ${m.seq}, channel ${m.channel}, data.i ${m.data.i}`;
        }
      };
      for await (const chunk of res.body) {
        bytes += chunk.length;
        partial += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = partial.indexOf("\n")) >= 0) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          if (line.length) onLine(line);
        }
      }
      partial += decoder.decode();
      if (partial.trim().length) onLine(partial);
    } finally {
      clearInterval(sampler);
    }
    const rssAfter = node.rssBytes();
    rssPeak = Math.max(rssPeak, rssAfter);
    const growth = rssPeak - rssBefore;
    t.diagnostic(
      `NDJSON: ${count} lines, ${(bytes / MiB).toFixed(1)} MiB in ${Date.now() - streamStarted} ms; node RSS ` +
        `${(rssBefore / MiB).toFixed(1)} MiB before, peak ${(rssPeak / MiB).toFixed(1)} MiB, after ${(rssAfter / MiB).toFixed(1)} MiB: growth ${(growth / MiB).toFixed(1)} MiB`,
    );
    assert.equal(outOfOrder, null, "every line in order with its data");
    assert.equal(count, COUNT, "all 10000 lines");
    assert.ok(bytes > 80 * 1000 * 1000, "the stream is larger than the RSS bound");
    assert.ok(growth < 64 * MiB, `RSS growth ${(growth / MiB).toFixed(1)} MiB < 64 MiB while streaming ${(bytes / MiB).toFixed(0)} MiB`);
  });

  test("a cache written on database A (seqs 1..10) is not served after the node moves to fresh database B: resume since=0 gets exactly B's 1..3", { timeout: 90_000 }, async (t) => {
    const CHANNEL = "c";
    const databaseA = await freshDatabase();
    const onA = await nodeOn(t, databaseA, "cache-db-a");
    const wsA = await wsClient(onA.wsUrl);
    await wsA.subscribe(CHANNEL);
    await publishMany(onA.url, CHANNEL, 10, { dataOf: (k) => ({ db: "A", i: k + 1 }), perBatch: 10 });
    await waitForSeq(wsA.collect(CHANNEL), 10, "the subscriber on database A");
    // The cache holds A's 1..10 now: a resume on A after a restart is served from it.
    await onA.restart();
    const probe = await wsClient(onA.wsUrl);
    await probe.subscribe(CHANNEL, { since: 0 });
    await waitForSeq(probe.collect(CHANNEL), 10, "the resume on database A");
    await probe.close();
    assert.ok((await onA.metrics()).seqcast_replay_cache_messages_total >= 10, "A's cache holds the channel");
    await onA.stop();

    // The same cache directory, pointed at a fresh database B.
    const databaseB = await freshDatabase();
    const onB = await nodeOn(t, databaseB, "cache-db-b", { cacheDir: onA.cacheDir });
    await waitFor(() => onB.output.includes("cache_dir held messages of another database or server timeline (a failover); emptied it"), {
      timeoutMs: 10_000,
      what: "the log line about emptying another database's cache",
    });
    // B's messages are published through another node, so the node on D learns
    // of them only when asked to replay: its memory holds nothing of them.
    const publisherB = await nodeOn(t, databaseB, "cache-db-b-publisher");
    const resultsB = await publishMany(publisherB.url, CHANNEL, 3, { dataOf: (k) => ({ db: "B", i: k + 1 }), perBatch: 1 });
    const epochB = resultsB[0].epoch;
    assert.deepEqual(seqsOf(resultsB), [1, 2, 3]);
    let headB = 3;

    for (const [label, options] of [
      ["since=0", { since: 0 }],
      ["since=0 with B's epoch", { since: 0, epoch: epochB }],
    ]) {
      const ws = await openWs(t, onB);
      const subscribed = await ws.subscribe(CHANNEL, options);
      assert.deepEqual(subscribed, { type: "subscribed", channel: CHANNEL, epoch: epochB, head: headB }, label);
      const received = ws.collect(CHANNEL);
      await waitForSeq(received, 3, `the resume on B (${label})`);
      const sentinel = await publish(publisherB.url, CHANNEL, { db: "B", i: "end" });
      await waitForSeq(received, sentinel.body.seq, `the resume on B (${label})`);
      const upTo3 = received.filter((m) => m.seq <= 3);
      assert.deepEqual(
        upTo3.map((m) => [m.seq, m.epoch, m.data]),
        [1, 2, 3].map((i) => [i, epochB, { db: "B", i }]),
        `${label}: exactly B's 1..3, never A's`,
      );
      assert.deepEqual(seqsOf(received), range(1, sentinel.body.seq), `${label}: nothing else`);
      assert.ok(received.every((m) => m.data.db === "B"), `${label}: no message of database A`);
      await ws.close();
      headB = sentinel.body.seq; // the sentinel is part of B's history from now on
    }
  });
});
