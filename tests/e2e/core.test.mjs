// End-to-end tests of the core promises (issue "1/6 Core"): gapless seqs under
// concurrent publishers on two nodes, byte-exact 1 MiB payloads, bad input,
// a PostgreSQL outage, idempotency, migrations and channel info.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import os from "node:os";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
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
  rawHttp,
  runSeqcast,
  seqsOf,
  startNode,
  startPostgres,
  waitFor,
  withTimeout,
} from "./harness.mjs";

const MiB = 1024 * 1024;

/** Asserts an error answer: `status` and {"error":{"code","message"}}. */
function assertError(res, status, code, context = "") {
  const where = `${context} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, where);
  assert.ok(res.body && typeof res.body.error === "object", `error body expected: ${where}`);
  assert.equal(res.body.error.code, code, where);
  assert.equal(typeof res.body.error.message, "string", where);
}

/** Starts a node on a fresh database and stops it when the test ends. */
const nodeOnFreshDatabase = async (t, name, options = {}) =>
  nodeForTest(t, await freshDatabase(), name, options);

/**
 * Writes `requests` to one connection in a single write (HTTP/1.1 pipelining) and
 * reads `count` answers off it: [{status, headers, body}], in the order they came.
 */
async function pipelined(port, requests, count, timeoutMs = 30_000) {
  const socket = net.connect(port, "127.0.0.1");
  let data = Buffer.alloc(0);
  const answers = [];
  const done = new Promise((resolve, reject) => {
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      for (;;) {
        const headEnd = data.indexOf("\r\n\r\n");
        if (headEnd < 0) break;
        const [statusLine, ...lines] = data.subarray(0, headEnd).toString("latin1").split("\r\n");
        const headers = {};
        for (const line of lines) {
          const colon = line.indexOf(":");
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers["content-length"] ?? 0);
        if (data.length < headEnd + 4 + length) break;
        const text = data.subarray(headEnd + 4, headEnd + 4 + length).toString("utf8");
        answers.push({ status: Number(statusLine.split(" ")[1]), headers, body: text ? JSON.parse(text) : null });
        data = data.subarray(headEnd + 4 + length);
      }
      if (answers.length >= count) resolve();
    });
    socket.on("error", reject);
    socket.on("close", () => (answers.length >= count ? resolve() : reject(new Error(`closed after ${answers.length} of ${count} answers`))));
  });
  socket.write(requests.join(""));
  try {
    await withTimeout(done, timeoutMs, "pipelined answers");
  } finally {
    socket.destroy();
  }
  return answers;
}

/** Any frame but the server's heartbeat. */
const notPing = (f) => f.type !== "ping";

async function pingPong(ws, context) {
  ws.send({ op: "ping" });
  const pong = await ws.next((f) => f.type === "pong" || f.type === "error", 5_000);
  assert.deepEqual(pong, { type: "pong" }, `ping after ${context}`);
}

describe("1/6 Core", () => {
  test("seqs stay gapless with concurrent publishers on two nodes", { timeout: 240_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const a = await startNode({ databaseUrl, name: "gapless-a" });
    t.after(() => a.stop());
    const b = await startNode({ databaseUrl, name: "gapless-b" });
    t.after(() => b.stop());

    const HOT = "hot";
    const HOT_COUNT = 2000;
    const OTHER_CHANNELS = 24;
    const PER_OTHER = 20;
    const PUBLISHERS = 8;

    const subscribers = [await openWs(t, a), await openWs(t, b)];
    for (const ws of subscribers) {
      const subscribed = await ws.subscribe(HOT);
      assert.equal(subscribed.type, "subscribed", JSON.stringify(subscribed));
      assert.equal(subscribed.head, 0);
      assert.equal(subscribed.epoch, null);
    }
    const received = subscribers.map((ws) => ws.collect(HOT));

    // Hot-channel messages interleaved with messages to the other channels.
    const jobs = [];
    let other = 0;
    for (let i = 0; i < HOT_COUNT; i++) {
      jobs.push({ channel: HOT, data: { hot: i, text: `message ${i}` } });
      if (i % 4 === 0 && other < OTHER_CHANNELS * PER_OTHER) {
        jobs.push({ channel: `other.${other % OTHER_CHANNELS}`, data: { other } });
        other += 1;
      }
    }
    assert.equal(other, OTHER_CHANNELS * PER_OTHER);

    const results = [];
    let nextJob = 0;
    const publishers = range(0, PUBLISHERS - 1).map(async (w) => {
      const node = w % 2 === 0 ? a : b;
      while (nextJob < jobs.length) {
        const job = jobs[nextJob++];
        const res = await publish(node.url, job.channel, job.data);
        results.push({ job, res });
      }
    });
    const publishStarted = Date.now();
    await Promise.all(publishers);
    t.diagnostic(`${jobs.length} publishes by ${PUBLISHERS} publishers in ${Date.now() - publishStarted} ms`);

    const bad = results.filter((r) => r.res.status !== 201);
    assert.equal(bad.length, 0, `non-201 answers, first: ${bad[0]?.res.status} ${bad[0]?.res.text}`);

    // Per channel: the 201 answers carry exactly seqs 1..n, one epoch.
    const byChannel = new Map();
    for (const { job, res } of results) {
      assert.equal(res.body.channel, job.channel);
      if (!byChannel.has(job.channel)) byChannel.set(job.channel, []);
      byChannel.get(job.channel).push({ seq: res.body.seq, epoch: res.body.epoch, data: job.data });
    }
    assert.equal(byChannel.size, OTHER_CHANNELS + 1);
    for (const [channel, acks] of byChannel) {
      const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
      assert.deepEqual(seqs, range(1, acks.length), `seqs of ${channel}`);
      assert.equal(new Set(acks.map((x) => x.epoch)).size, 1, `one epoch for ${channel}`);
    }
    const hotAcks = byChannel.get(HOT);
    assert.equal(hotAcks.length, HOT_COUNT);
    const hotEpoch = hotAcks[0].epoch;
    assert.equal(typeof hotEpoch, "string");
    const dataBySeq = new Map(hotAcks.map((x) => [x.seq, JSON.stringify(x.data)]));

    // A last message marks the end: a duplicate or stray frame would have come before it.
    const last = await publish(a.url, HOT, { last: true });
    assert.equal(last.status, 201, last.text);
    assert.equal(last.body.seq, HOT_COUNT + 1);
    dataBySeq.set(HOT_COUNT + 1, JSON.stringify({ last: true }));

    for (const [i, messages] of received.entries()) {
      await waitFor(() => messages.some((m) => m.seq === HOT_COUNT + 1), {
        timeoutMs: 60_000,
        what: `subscriber ${i} to receive seq ${HOT_COUNT + 1} (has ${messages.length})`,
      });
      assert.deepEqual(seqsOf(messages), range(1, HOT_COUNT + 1), `subscriber ${i}: seqs in order, no gap or duplicate`);
      for (const m of messages) {
        assert.equal(m.channel, HOT);
        assert.equal(m.epoch, hotEpoch);
        assert.equal(typeof m.ts, "string");
        assert.equal(JSON.stringify(m.data), dataBySeq.get(m.seq), `subscriber ${i}: data of seq ${m.seq}`);
      }
    }
    assert.deepEqual(
      received[0].map((m) => [m.seq, JSON.stringify(m.data)]),
      received[1].map((m) => [m.seq, JSON.stringify(m.data)]),
    );

    for (let c = 0; c < OTHER_CHANNELS; c++) {
      const info = await getJson(`${a.url}/v1/channels/other.${c}`);
      assert.equal(info.status, 200, info.text);
      assert.equal(info.body.first_seq, 1);
      assert.equal(info.body.last_seq, PER_OTHER);
    }
  });

  test("a 1 MiB payload arrives byte for byte; one byte more is refused", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "big");
    const ws = await openWs(t, node);
    const subscribed = await ws.subscribe("big");
    assert.equal(subscribed.head, 0);

    // Odd spacing, escapes and multi-byte characters: nothing may be re-encoded.
    const prefix = '{"b":1,  "a":[1,2] ,\n\t"pad" : "';
    const suffix = '"  }';
    const unit = 'abc é€𝄞 \\u00e9 \\" \\\\ \\n \\/ ';
    const room = MiB - Buffer.byteLength(prefix + suffix);
    let pad = unit.repeat(Math.floor(room / Buffer.byteLength(unit)));
    pad += "x".repeat(room - Buffer.byteLength(pad));
    const body = prefix + pad + suffix;
    assert.equal(Buffer.byteLength(body), MiB);
    JSON.parse(body); // the test's own body is valid JSON

    const res = await publish(node.url, "big", undefined, { raw: body });
    assert.equal(res.status, 201, res.text.slice(0, 300));
    assert.equal(res.body.seq, 1);

    const { frame, raw } = await ws.nextFrame((f) => f.type === "message" && f.channel === "big", 30_000);
    assert.equal(frame.seq, 1);
    assert.ok(raw.includes(`"data":${body}`), "the frame holds the published bytes right after \"data\":");
    assert.deepEqual(frame.data, JSON.parse(body));

    const tooBig = body.slice(0, -1) + " }"; // still valid JSON, one byte longer
    assert.equal(Buffer.byteLength(tooBig), MiB + 1);
    const refused = await publish(node.url, "big", undefined, { raw: tooBig });
    assertError(refused, 413, "payload_too_large", "1048577-byte body");

    const info = await getJson(`${node.url}/v1/channels/big`);
    assert.equal(info.body.last_seq, 1, "the refused message was not stored");
    assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
  });

  test("a Rails-shaped name of 1024 characters with '/' works on every path", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "long-name");
    // gid params joined by ':' as turbo-rails builds stream names, padded to the limit.
    const gid = Buffer.from("gid://app/Room/1").toString("base64url");
    let name = `${gid}:messages/list:`;
    name += "x".repeat(1024 - name.length);
    assert.equal(name.length, 1024);
    const path = encodeURIComponent(name); // '/' as %2F
    assert.ok(path.includes("%2F"));

    const ws = await openWs(t, node);
    const subscribed = await ws.subscribe(name, { since: 0 });
    assert.equal(subscribed.channel, name);
    for (const i of [1, 2]) {
      const res = await publish(node.url, name, { i });
      assert.equal(res.status, 201, res.text.slice(0, 200));
      assert.equal(res.body.channel, name);
      assert.equal(res.body.seq, i);
    }
    const batch = await publishBatch(node.url, [{ channel: name, data: { i: 3 } }]);
    assert.equal(batch.status, 201, batch.text.slice(0, 200));
    assert.deepEqual(batch.body.results.map((r) => [r.channel, r.seq]), [[name, 3]]);

    const live = [];
    while (live.length < 3) live.push(await ws.next((f) => f.type === "message", 10_000));
    assert.deepEqual(live.map((f) => [f.channel, f.seq, f.data.i]), [[name, 1, 1], [name, 2, 2], [name, 3, 3]]);

    const log = await getJson(`${node.url}/v1/channels/${path}/messages?from=1`);
    assert.equal(log.status, 200, log.text.slice(0, 200));
    assert.deepEqual(log.body.messages.map((m) => m.seq), [1, 2, 3]);
    const info = await getJson(`${node.url}/v1/channels/${path}`);
    assert.equal(info.body.channel, name);
    assert.equal(info.body.last_seq, 3);

    const sse = await httpGetStream(`${node.url}/v1/sse/${path}?since=1`, { until: (text) => text.includes("id: 3\n") });
    assert.equal(sse.status, 200);
    assert.deepEqual([...sse.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), [2, 3]);

    const other = await publish(node.url, name + "y", { i: 0 });
    assert.equal(other.status, 400, "1025 characters is one too many");
  });

  test("bad input gets a 400 or an error frame, never a crash", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "bad-input");

    for (const body of ['{"a":', "{'a':1}", '{"a":1} x', "", "[1,2,]", "nul", '{"a":01}']) {
      assertError(await publish(node.url, "c", undefined, { raw: body }), 400, "invalid_json", `body ${JSON.stringify(body)}`);
    }
    const invalidUtf8 = [
      [0xff, 0xfe], // never valid
      [0xc3], // truncated two-byte sequence
      [0xe2, 0x82], // truncated three-byte sequence
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // a UTF-16 surrogate
      [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    ];
    for (const bytes of invalidUtf8) {
      const raw = Buffer.concat([Buffer.from('{"s":"a'), Buffer.from(bytes), Buffer.from('b"}')]);
      assertError(await publish(node.url, "c", undefined, { raw }), 400, "invalid_json", `bytes ${Buffer.from(bytes).toString("hex")}`);
    }

    const badNames = ["a%20b", "%20", "x".repeat(1025), "bad%5Cname", "caf%C3%A9", "a%00b", "a+b", "star*", "a,b", "a%zz"];
    for (const segment of badNames) {
      const label = `channel segment ${segment.slice(0, 40)}`;
      assertError(await publish(node.url, segment, { x: 1 }, { encode: false }), 400, "invalid_channel", `publish to ${label}`);
      assertError(await getJson(`${node.url}/v1/channels/${segment}`), 400, "invalid_channel", `info of ${label}`);
    }
    // Boundaries and percent-decoding of good names.
    for (const [segment, name] of [
      ["x".repeat(1024), "x".repeat(1024)],
      ["gid%2Fa%2Fb:Z2lk", "gid/a/b:Z2lk"],
      ["Az09_-.:@=", "Az09_-.:@="],
      ["room%3A1", "room:1"],
    ]) {
      const res = await publish(node.url, segment, { ok: true }, { encode: false });
      assert.equal(res.status, 201, `${segment.slice(0, 40)} → ${res.status} ${res.text}`);
      assert.equal(res.body.channel, name);
    }

    const ws = await openWs(t, node);
    const welcome = await ws.next(notPing, 5_000);
    assert.equal(welcome.type, "welcome", "the first frame is welcome");
    assert.equal(typeof welcome.version, "string");
    assert.equal(welcome.heartbeat_seconds, 25);

    const badFrames = [
      ["unknown op", { op: "dance" }],
      ["text that is not JSON", "hello {"],
      ["a JSON array", "[1,2]"],
      ["a JSON number", "42"],
      ["subscribe without channel", { op: "subscribe" }],
    ];
    for (const [label, frame] of badFrames) {
      ws.send(frame);
      const answer = await ws.next(notPing, 5_000);
      assert.equal(answer.type, "error", `${label} → ${JSON.stringify(answer)}`);
      assert.equal(typeof answer.code, "string", label);
      assert.equal(typeof answer.message, "string", label);
      await pingPong(ws, label);
    }
    const invalid = await ws.subscribe("a b");
    assert.equal(invalid.type, "error", JSON.stringify(invalid));
    assert.equal(invalid.code, "invalid_channel");
    await pingPong(ws, "subscribe to a bad channel");

    ws.sendBinary(Buffer.from([1, 2, 3]));
    const binaryAnswer = await ws.next(notPing, 5_000);
    assert.equal(binaryAnswer.type, "error", JSON.stringify(binaryAnswer));
    await pingPong(ws, "a binary frame");
    assert.ok(ws.isOpen, "the connection stays open");

    assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
    assert.ok(node.alive);
  });

  test("PostgreSQL stopped mid-stream: 503 meanwhile, nothing lost after", { timeout: 180_000 }, async (t) => {
    const pg = await startPostgres();
    t.after(() => pg.destroy());
    const a = await startNode({ databaseUrl: pg.url, name: "outage-a" });
    t.after(() => a.stop());
    const b = await startNode({ databaseUrl: pg.url, name: "outage-b" });
    t.after(() => b.stop());
    const CHANNEL = "c";
    const ANSWER_LIMIT_MS = 10_000;

    const ws = await openWs(t, a);
    const subscribed = await ws.subscribe(CHANNEL);
    assert.equal(subscribed.head, 0);
    const received = ws.collect(CHANNEL);

    // One publisher, mostly on A, every third message on B, until told to stop.
    const outcomes = [];
    let phase = "before";
    let running = true;
    const publisher = (async () => {
      for (let i = 0; running; i++) {
        const node = i % 3 === 2 ? b : a;
        const started = Date.now();
        const outcome = { i, node: node === a ? "A" : "B", phase };
        try {
          const res = await publish(node.url, CHANNEL, { i }, { timeoutMs: ANSWER_LIMIT_MS });
          Object.assign(outcome, { status: res.status, code: res.body?.error?.code, seq: res.body?.seq, text: res.text.slice(0, 200) });
        } catch (err) {
          Object.assign(outcome, { status: "no answer", text: String(err) });
        }
        outcome.ms = Date.now() - started;
        outcomes.push(outcome);
        await delay(10); // pacing, about 100 publishes/s at most
      }
    })();
    const count = (pred) => outcomes.filter(pred).length;

    await waitFor(() => count((o) => o.status === 201) >= 30, { timeoutMs: 30_000, what: "30 publishes before the outage" });

    phase = "down";
    await pg.stop();
    const stoppedAt = Date.now();
    await waitFor(() => count((o) => o.phase === "down" && o.status === 503) >= 5, {
      timeoutMs: 60_000,
      what: "503 answers while PostgreSQL is down",
    });
    await waitFor(async () => (await getJson(`${a.url}/readyz`)).status === 503, { timeoutMs: 30_000, what: "/readyz 503 while PostgreSQL is down" });
    assert.equal((await getJson(`${a.url}/healthz`)).status, 200, "the node stays up");
    await waitFor(() => Date.now() - stoppedAt >= 3_000, { timeoutMs: 10_000, what: "a few seconds of outage" });

    phase = "restarting";
    await pg.start();
    await waitFor(() => count((o) => o.phase === "restarting" && o.status === 201) >= 1, { timeoutMs: 60_000, what: "a 201 after PostgreSQL is back" });
    phase = "after";
    await waitFor(() => count((o) => o.phase === "after" && o.status === 201 && o.node === "B") >= 5 && count((o) => o.phase === "after" && o.status === 201) >= 20, {
      timeoutMs: 60_000,
      what: "20 publishes after the outage",
    });
    running = false;
    await publisher;
    await waitFor(async () => (await getJson(`${a.url}/readyz`)).status === 200, { timeoutMs: 30_000, what: "/readyz 200 again" });

    const summary = {};
    for (const o of outcomes) summary[`${o.phase} ${o.status}`] = (summary[`${o.phase} ${o.status}`] ?? 0) + 1;
    t.diagnostic(`publish answers by phase: ${JSON.stringify(summary)}; slowest ${Math.max(...outcomes.map((o) => o.ms))} ms`);
    const slow = outcomes.filter((o) => o.status === "no answer" || o.ms > ANSWER_LIMIT_MS);
    assert.deepEqual(slow, [], "every publish is answered within 10 s");
    const unexpected = outcomes.filter((o) => o.status !== 201 && !(o.status === 503 && o.code === "unavailable"));
    assert.deepEqual(unexpected, [], "publishes answer 201, or 503 unavailable");
    assert.ok(count((o) => o.phase === "before" && o.status !== 201) === 0, "no failure before the outage");

    // Published on B, received on A: A's listener listens again by itself.
    const last = await publish(b.url, CHANNEL, { last: true });
    assert.equal(last.status, 201, last.text);
    await waitFor(() => received.some((m) => m.seq === last.body.seq), {
      timeoutMs: 30_000,
      what: `the subscriber on A to receive seq ${last.body.seq} published on B (has ${received.length})`,
    });

    const info = await getJson(`${a.url}/v1/channels/${CHANNEL}`);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.body.last_seq, last.body.seq);
    assert.equal(ws.closeInfo, null, "the server did not close the subscriber's connection");
    assert.deepEqual(seqsOf(received), range(1, info.body.last_seq), "the subscriber has every seq, in order, once");

    const acknowledged = outcomes.filter((o) => o.status === 201);
    const bySeq = new Map(received.map((m) => [m.seq, m]));
    for (const o of acknowledged) {
      assert.ok(bySeq.has(o.seq), `acknowledged seq ${o.seq} was delivered`);
      assert.deepEqual(bySeq.get(o.seq).data, { i: o.i }, `data of seq ${o.seq}`);
    }
    assert.equal(new Set(received.map((m) => m.epoch)).size, 1, "one epoch throughout");
  });

  test("Idempotency-Key: retries, conflicts and bad keys", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "idempotency");

    const first = await publish(node.url, "idem", { x: 1 }, { idempotencyKey: "key-1" });
    assert.equal(first.status, 201, first.text);
    const again = await publish(node.url, "idem", { x: 1 }, { idempotencyKey: "key-1" });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, first.body, "a retry returns the original answer");
    let info = await getJson(`${node.url}/v1/channels/idem`);
    assert.equal(info.body.last_seq, 1, "the retry published nothing");

    assertError(await publish(node.url, "idem", { x: 2 }, { idempotencyKey: "key-1" }), 409, "idempotency_key_reused", "same key, other body");
    const elsewhere = await publish(node.url, "idem-other", { x: 1 }, { idempotencyKey: "key-1" });
    assert.equal(elsewhere.status, 201, "keys are scoped to their channel");

    const longest = await publish(node.url, "idem", { x: 3 }, { idempotencyKey: "k".repeat(128) });
    assert.equal(longest.status, 201, `a 128-character key → ${longest.status} ${longest.text}`);
    assert.equal(longest.body.seq, 2);
    const printable = await publish(node.url, "idem", { x: 4 }, { idempotencyKey: "ab~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}" });
    assert.equal(printable.status, 201, `printable ASCII key → ${printable.status} ${printable.text}`);

    assertError(await publish(node.url, "idem", { x: 5 }, { idempotencyKey: "k".repeat(129) }), 400, "invalid_idempotency_key", "129-character key");
    const rawPublish = (keyBytes) => {
      const body = Buffer.from('{"x":6}');
      return rawHttp(
        node.port,
        Buffer.concat([
          Buffer.from(
            `POST /v1/channels/idem/messages HTTP/1.1\r\nHost: 127.0.0.1:${node.port}\r\n` +
              `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\nIdempotency-Key: `,
          ),
          keyBytes,
          Buffer.from("\r\n\r\n"),
          body,
        ]),
      );
    };
    for (const [label, bytes] of [
      ["empty key", Buffer.from("")],
      ["non-ASCII key", Buffer.from("clé", "utf8")],
      ["key with a tab", Buffer.from("a\tb")],
    ]) {
      assertError(await rawPublish(bytes), 400, "invalid_idempotency_key", label);
    }
    for (const [label, bytes] of [
      ["key with a control byte", Buffer.from("a\x01b")],
      ["key with DEL", Buffer.from("a\x7fb")],
    ]) {
      // The HTTP parser may refuse these bytes itself; either way a 400.
      const res = await rawPublish(bytes);
      assert.equal(res.status, 400, `${label} → ${res.status} ${res.text}`);
      // The parser answers bad_request for bytes HTTP forbids in a header value.
      assert.ok(["invalid_idempotency_key", "bad_request"].includes(res.body?.error?.code), label);
    }
    info = await getJson(`${node.url}/v1/channels/idem`);
    assert.equal(info.body.last_seq, 3, "refused keys published nothing");
    assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
  });

  test("pipelined requests on one connection: every answer, in request order; publishes keep it in their seqs", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "pipelined");
    const post = (path, body, extra = "") =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const get = (path, extra = "") => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
    const requests = [];
    // More publishes than are dispatched ahead at once (16), on two channels.
    for (let i = 1; i <= 20; i++) requests.push(post(`/v1/channels/pipe-${i % 2}/messages`, JSON.stringify({ i })));
    // A read waits for the publishes before it: it sees all of them.
    requests.push(get("/v1/channels/pipe-0"));
    requests.push(post("/v1/channels/pipe-0/messages", "{bad"));  // 400, the connection goes on
    requests.push(post("/v1/publish", JSON.stringify({ messages: [{ channel: "pipe-1", data: "b1" }, { channel: "pipe-1", data: "b2" }] })));
    requests.push(post("/v1/channels/pipe-0/messages", JSON.stringify({ i: 21 })));
    requests.push(get("/healthz", "Connection: close\r\n"));
    const answers = await pipelined(node.port, requests, requests.length);
    assert.equal(answers.length, requests.length);
    const seen = { "pipe-0": 0, "pipe-1": 0 };
    for (let i = 1; i <= 20; i++) {
      const a = answers[i - 1];
      assert.equal(a.status, 201, `publish ${i}: ${JSON.stringify(a.body)}`);
      const channel = `pipe-${i % 2}`;
      assert.equal(a.body.channel, channel);
      assert.equal(a.body.seq, ++seen[channel], `publish ${i} keeps its place in ${channel}`);
    }
    assert.equal(answers[20].status, 200);
    assert.equal(answers[20].body.last_seq, 10, "the read saw the ten publishes to pipe-0 before it");
    assert.equal(answers[21].status, 400);
    assert.equal(answers[21].body.error.code, "invalid_json");
    assert.equal(answers[22].status, 201, JSON.stringify(answers[22].body));
    assert.deepEqual(answers[22].body.results.map((m) => m.seq), [11, 12]);
    assert.equal(answers[23].status, 201);
    assert.equal(answers[23].body.seq, 11);
    assert.equal(answers[24].status, 200);
    assert.equal(answers[24].headers.connection, "close");
    // What the log holds agrees.
    const log = await getJson(`${node.url}/v1/channels/pipe-0/messages?from=1&limit=100`);
    assert.deepEqual(log.body.messages.map((m) => m.data.i), [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21]);
  });

  test("batch publish: in order, all or none, retried as a whole", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "batch");

    // Results in order, seqs contiguous per channel.
    const plain = await publishBatch(node.url, [
      { channel: "batch-a", data: { n: 1 } },
      { channel: "batch-b", data: { n: 2 } },
      { channel: "batch-a", data: { n: 3 } },
    ]);
    assert.equal(plain.status, 201, plain.text);
    assert.deepEqual(
      plain.body.results.map((r) => [r.channel, r.seq]),
      [["batch-a", 1], ["batch-b", 1], ["batch-a", 2]],
    );
    for (const r of plain.body.results) {
      assert.equal(typeof r.epoch, "string");
      assert.equal(typeof r.ts, "string");
    }

    const keyed = [
      { channel: "batch-a", data: { n: 4 }, idempotency_key: "b-1" },
      { channel: "batch-b", data: { n: 5 }, idempotency_key: "b-2" },
      { channel: "batch-a", data: { n: 6 }, idempotency_key: "b-3" },
    ];
    const keyedFirst = await publishBatch(node.url, keyed);
    assert.equal(keyedFirst.status, 201, keyedFirst.text);
    assert.deepEqual(
      keyedFirst.body.results.map((r) => [r.channel, r.seq]),
      [["batch-a", 3], ["batch-b", 2], ["batch-a", 4]],
    );
    const keyedAgain = await publishBatch(node.url, keyed);
    assert.equal(keyedAgain.status, 200, keyedAgain.text);
    assert.deepEqual(keyedAgain.body, keyedFirst.body, "a retried batch returns the original results");
    let info = await getJson(`${node.url}/v1/channels/batch-a`);
    assert.equal(info.body.last_seq, 4);

    // One bad item: the whole batch is refused and nothing is published.
    const mixed = await publishBatch(node.url, [
      { channel: "batch-a", data: { n: 7 } },
      { channel: "bad name", data: { n: 8 } },
    ]);
    assertError(mixed, 400, "invalid_channel", "batch with a bad channel");
    info = await getJson(`${node.url}/v1/channels/batch-a`);
    assert.equal(info.body.last_seq, 4, "a refused batch published nothing");
  });

  test("migrate is idempotent; serve migrates a fresh database by itself", { timeout: 120_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const elsewhere = os.tmpdir(); // migrations are inside the binary
    const dump = () => psqlDump(databaseUrl);

    const first = await runSeqcast(["migrate", "--database-url", databaseUrl], { cwd: elsewhere });
    assert.equal(first.code, 0, `first migrate: ${first.stderr}`);
    const tables = await psql(
      databaseUrl,
      "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables " +
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_name ~* '(migration|version)' ORDER BY 1",
    );
    assert.ok(tables.length > 0, "a table records the applied migration versions");
    const versionTable = tables.split("\n")[0];
    const versionsBefore = await psql(databaseUrl, `SELECT * FROM ${versionTable} ORDER BY 1`);
    assert.ok(versionsBefore.length > 0, `${versionTable} lists the applied versions`);
    const before = await dump();

    const second = await runSeqcast(["migrate"], { cwd: elsewhere, env: { SEQCAST_DATABASE_URL: databaseUrl } });
    assert.equal(second.code, 0, `second migrate: ${second.stderr}`);
    assert.equal(await psql(databaseUrl, `SELECT * FROM ${versionTable} ORDER BY 1`), versionsBefore);
    assertSameText(await dump(), before, "the second migrate changed nothing");

    // serve on the migrated database, and on a database nobody migrated.
    const migrated = await startNode({ databaseUrl, name: "migrated" });
    t.after(() => migrated.stop());
    const freshUrl = await freshDatabase();
    const fresh = await startNode({ databaseUrl: freshUrl, name: "unmigrated" });
    t.after(() => fresh.stop());
    for (const node of [migrated, fresh]) {
      assert.equal((await getJson(`${node.url}/readyz`)).status, 200);
      const res = await publish(node.url, "m", { ok: 1 });
      assert.equal(res.status, 201, res.text);
    }
  });

  test("channel info, /healthz and /readyz", { timeout: 60_000 }, async (t) => {
    const node = await nodeOnFreshDatabase(t, "info");
    assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
    assert.equal((await getJson(`${node.url}/readyz`)).status, 200);
    assertError(await getJson(`${node.url}/v1/channels/nobody.here`), 404, "channel_not_found", "unknown channel");

    let epoch;
    for (let i = 1; i <= 3; i++) {
      const res = await publish(node.url, "info:1", { i });
      assert.equal(res.status, 201, res.text);
      epoch = res.body.epoch;
    }
    const info = await getJson(`${node.url}/v1/channels/info:1`);
    assert.equal(info.status, 200, info.text);
    assert.deepEqual(Object.keys(info.body).sort(), ["channel", "epoch", "first_seq", "last_seq", "subscribers"]);
    assert.deepEqual(info.body, { channel: "info:1", epoch, first_seq: 1, last_seq: 3, subscribers: 0 });

    const ws = await openWs(t, node);
    const subscribed = await ws.subscribe("info:1");
    assert.equal(subscribed.type, "subscribed", JSON.stringify(subscribed));
    assert.equal(subscribed.epoch, epoch);
    assert.equal(subscribed.head, 3);
    await waitFor(async () => (await getJson(`${node.url}/v1/channels/info:1`)).body?.subscribers === 1, {
      timeoutMs: 10_000,
      what: "subscribers to count the WebSocket subscriber",
    });
    ws.send({ op: "unsubscribe", channel: "info:1" });
    await waitFor(async () => (await getJson(`${node.url}/v1/channels/info:1`)).body?.subscribers === 0, {
      timeoutMs: 10_000,
      what: "subscribers to drop to 0 after unsubscribe",
    });
  });
});

/**
 * The schema and data of a database, as pg_dump prints them (less the
 * \restrict lines, whose key pg_dump draws at random on every run).
 */
async function psqlDump(databaseUrl) {
  const { stdout } = await promisify(execFile)("pg_dump", ["--no-owner", "--no-privileges", databaseUrl], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
  });
  return stdout
    .split("\n")
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .join("\n");
}

/** Asserts two texts are equal, showing only the lines that differ. */
function assertSameText(actual, expected, message) {
  if (actual === expected) return;
  const a = actual.split("\n");
  const e = expected.split("\n");
  const diffs = [];
  for (let i = 0; i < Math.max(a.length, e.length) && diffs.length < 10; i++) {
    if (a[i] !== e[i]) diffs.push(`line ${i + 1}:\n  before: ${e[i]}\n  after:  ${a[i]}`);
  }
  assert.fail(`${message}\n${diffs.join("\n")}`);
}
