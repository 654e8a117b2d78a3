// End-to-end tests of hostile input (issue "5/6 Security and hostile input"):
// garbage, oversized and malformed WebSocket frames, a half-open connection,
// a client that never reads, slowloris HTTP, thousands of idle connections,
// SQL-shaped names and invalid UTF-8 — all against one node, while a
// well-behaved subscriber on another connection must receive every message of
// a steady publisher, in order, without a gap, and the node must stay up.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  fetchMetrics,
  freshDatabase,
  getJson,
  publish,
  publishBatch,
  range,
  rawHttp,
  seqsOf,
  startNode,
  waitFor,
  withTimeout,
  wsClient,
} from "./harness.mjs";

const KiB = 1024;
const MiB = 1024 * 1024;
const HEARTBEAT_SECONDS = 2;
const HTTP_BODY_SECONDS = 2;
const HTTP_IDLE_SECONDS = 6;
const MAX_FRAME_BYTES = 64 * KiB; // the default
const MAX_SUBSCRIPTIONS = 1000; // the default
const SEND_QUEUE_BYTES = 8 * MiB; // the default
const RSS_BOUND_BYTES = 200 * MiB;

/** Asserts an error answer: `status` and {"error":{"code","message"}}. */
function assertError(res, status, code, context = "") {
  const where = `${context} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, where);
  assert.equal(res.body?.error?.code, code, where);
  assert.equal(typeof res.body.error.message, "string", where);
}

const notPing = (f) => f.type !== "ping";

// ---------------------------------------------------------------------------
// A raw WebSocket client on a plain TCP socket: it does only what a test tells
// it to (no automatic pong, no reading when paused), and may send frames no
// conforming client would.

/** One client-to-server frame: masked unless `mask: false`. */
function encodeFrame(opcode, payload, { fin = true, mask = true } = {}) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([header, key, masked]);
}

/**
 * Connects, sends the upgrade request and waits for the 101. Then records the
 * server's frames: {opcode, payload (Buffer), text (for text frames), json}.
 *   raw.frames, raw.closeCode (of a close frame received, else null)
 *   raw.ended     a promise of {ms: since the 101, error} once the socket ends or closes
 *   raw.sendText(s) / raw.sendFrame(opcode, payload, opts) / raw.socket (pause() to stop reading)
 * `replyToClose` echoes a close frame, as a conforming client would.
 */
async function rawWs(port, { replyToClose = true, timeoutMs = 10_000 } = {}) {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await withTimeout(once(socket, "connect"), timeoutMs, "TCP connect");
  const key = crypto.randomBytes(16).toString("base64");
  socket.write(
    `GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const raw = {
    socket,
    status: 0,
    frames: [],
    closeCode: null,
    bytes: 0,
    openedAt: 0,
    ended: null,
    sendText(text) {
      socket.write(encodeFrame(0x1, Buffer.from(text, "utf8")));
    },
    sendFrame(opcode, payload, opts) {
      socket.write(encodeFrame(opcode, payload, opts));
    },
    texts() {
      return raw.frames.filter((f) => f.opcode === 0x1).map((f) => f.json ?? { unparsable: f.text });
    },
  };
  let buffer = Buffer.alloc(0);
  let handshakeDone = false;
  let partial = null; // a fragmented message being reassembled
  let resolveOpen;
  let rejectOpen;
  const opened = new Promise((resolve, reject) => {
    resolveOpen = resolve;
    rejectOpen = reject;
  });
  const parseFrames = () => {
    for (;;) {
      if (buffer.length < 2) return;
      let opcode = buffer[0] & 0x0f;
      let len = buffer[1] & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buffer.length < 4) return;
        len = buffer.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buffer.length < 10) return;
        len = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + len) return;
      const fin = (buffer[0] & 0x80) !== 0;
      let payload = buffer.subarray(offset, offset + len);
      buffer = buffer.subarray(offset + len);
      // Data messages may come in fragments (continuation frames): reassemble them.
      if (opcode === 0x0 || ((opcode === 0x1 || opcode === 0x2) && !fin)) {
        if (opcode !== 0x0) partial = { opcode, chunks: [] };
        if (!partial) throw new Error("continuation frame without a start");
        partial.chunks.push(Buffer.from(payload));
        if (!fin) continue;
        payload = Buffer.concat(partial.chunks);
        opcode = partial.opcode;
        partial = null;
      }
      const frame = { opcode, length: payload.length };
      if (opcode === 0x1) {
        frame.text = payload.toString("utf8");
        try {
          frame.json = JSON.parse(frame.text);
        } catch {
          frame.json = null;
        }
        // Big message frames: keep what the tests look at, not the payload.
        if (payload.length > 4 * KiB && frame.json?.type === "message") {
          frame.json = { type: "message", channel: frame.json.channel, seq: frame.json.seq };
          frame.text = null;
        }
      } else if (opcode === 0x8) {
        frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        frame.reason = payload.subarray(2).toString("utf8");
        if (raw.closeCode === null) raw.closeCode = frame.code;
        if (replyToClose && !socket.destroyed) socket.write(encodeFrame(0x8, Buffer.from(payload)));
      }
      raw.frames.push(frame);
    }
  };
  socket.on("data", (chunk) => {
    raw.bytes += chunk.length;
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    if (!handshakeDone) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString("latin1");
      raw.status = Number(head.split(" ")[1]);
      buffer = buffer.subarray(end + 4);
      handshakeDone = true;
      raw.openedAt = Date.now();
      resolveOpen();
    }
    parseFrames();
  });
  raw.ended = new Promise((resolve) => {
    let error = null;
    socket.on("error", (err) => (error = err.code ?? String(err)));
    socket.on("end", () => resolve({ ms: Date.now() - raw.openedAt, error: null, how: "end" }));
    socket.on("close", () => {
      rejectOpen(new Error(`closed before the upgrade answer (${error})`));
      resolve({ ms: Date.now() - raw.openedAt, error, how: "close" });
    });
  });
  await withTimeout(opened, timeoutMs, "WebSocket upgrade (raw)");
  if (raw.status !== 101) throw new Error(`raw upgrade answered ${raw.status}`);
  return raw;
}

/** Waits until `raw` received a text frame matching pred. */
function rawNext(raw, pred, what, timeoutMs = 10_000) {
  return waitFor(() => raw.texts().find(pred), { timeoutMs, intervalMs: 10, what });
}

// ---------------------------------------------------------------------------
// The well-behaved pair: one publisher at a steady 20 messages a second, one
// subscriber on its own connection.

function startSteady(node, channel) {
  const state = { published: 0, failures: [], stopped: false, done: null, latencies: [] };
  state.done = (async () => {
    const start = Date.now();
    for (let i = 1; !state.stopped; i++) {
      const wait = start + i * 50 - Date.now();
      if (wait > 0) await delay(wait);
      const t0 = Date.now();
      try {
        const res = await publish(node.url, channel, { i }, { timeoutMs: 30_000 });
        if (res.status === 201 && res.body.seq === state.published + 1) state.published += 1;
        else state.failures.push(`#${i}: ${res.status} ${res.text.slice(0, 200)}`);
      } catch (err) {
        state.failures.push(`#${i}: ${err.cause?.code ?? err.message}`);
      }
      state.latencies.push(Date.now() - t0);
    }
  })();
  state.stop = async () => {
    state.stopped = true;
    await state.done;
  };
  return state;
}

/** Pair of hostile answers, for the test output. */
function note(t, what, answer) {
  t.diagnostic(`${what} → ${answer}`);
}

describe("5/6 Hostile input against one node, while a good client keeps receiving", () => {
  let node;
  let steady;
  let good;
  const STEADY = "steady";

  before(async () => {
    node = await startNode({
      databaseUrl: await freshDatabase(),
      name: "hostile",
      args: [
        "--heartbeat-seconds", String(HEARTBEAT_SECONDS),
        "--http-body-seconds", String(HTTP_BODY_SECONDS),
        "--http-idle-seconds", String(HTTP_IDLE_SECONDS),
      ],
    });
    good = await wsClient(node.wsUrl);
    good.collect(STEADY);
    const subscribed = await good.subscribe(STEADY);
    assert.equal(subscribed.type, "subscribed", JSON.stringify(subscribed));
    steady = startSteady(node, STEADY);
  });

  after(async () => {
    await steady?.stop();
    await good?.close();
    await node?.stop();
  });

  test("garbage on one WebSocket connection gets error frames; the connection survives until a frame over the limit (1009)", { timeout: 90_000 }, async (t) => {
    const ws = await wsClient(node.wsUrl);
    t.after(() => ws.close());
    await ws.next((f) => f.type === "welcome");

    const expectError = async (what, send, code) => {
      send();
      const f = await ws.next(notPing, 10_000);
      assert.equal(f.type, "error", `${what}: ${JSON.stringify(f)}`);
      assert.equal(f.code, code, `${what}: ${JSON.stringify(f)}`);
      note(t, what, `error ${f.code}${f.channel !== undefined ? ` (channel ${JSON.stringify(f.channel).slice(0, 60)})` : ""}`);
      return f;
    };
    const text = (what, s, code) => expectError(what, () => ws.send(s), code);

    await text("non-JSON text 'hello'", "hello", "invalid_json");
    await text("empty text frame", "", "invalid_json");
    await text("truncated JSON '{'", "{", "invalid_json");
    await text("JSON followed by garbage", '{"op":"ping"} x', "invalid_json");
    await text("30 KiB of random printable garbage", crypto.randomBytes(15 * KiB).toString("hex"), "invalid_json");
    await text("JSON array", "[1,2]", "invalid_op");
    await text("JSON number", "42", "invalid_op");
    await text("JSON null", "null", "invalid_op");
    await text("JSON string", '"subscribe"', "invalid_op");
    await text("empty object", "{}", "invalid_op");
    await text("unknown op", '{"op":"fly"}', "invalid_op");
    await text("op of another case", '{"op":"SUBSCRIBE","channel":"a"}', "invalid_op");
    await text("op not a string", '{"op":123}', "invalid_op");
    await text("op an object", '{"op":{"op":"ping"}}', "invalid_op");
    await text("subscribe without channel", '{"op":"subscribe"}', "invalid_channel");
    await text("channel a number", '{"op":"subscribe","channel":7}', "invalid_channel");
    await text("channel of 1025 characters", JSON.stringify({ op: "subscribe", channel: "a".repeat(1025) }), "invalid_channel");
    const sql = await text("SQL-shaped channel", JSON.stringify({ op: "subscribe", channel: "a';DROP TABLE messages;--" }), "invalid_channel");
    assert.equal(sql.channel, "a';DROP TABLE messages;--", "the channel is echoed as a JSON string");
    await text("channel with a NUL, newline and quote", JSON.stringify({ op: "subscribe", channel: 'a\u0000b\n"c' }), "invalid_channel");
    await text("channel with non-ASCII", JSON.stringify({ op: "subscribe", channel: "räum" }), "invalid_channel");
    await text("unsubscribe of an invalid channel", JSON.stringify({ op: "unsubscribe", channel: "..\\..\\etc" }), "invalid_channel");
    await text("since negative", '{"op":"subscribe","channel":"a","since":-1}', "invalid_since");
    await text("since a string", '{"op":"subscribe","channel":"a","since":"1"}', "invalid_since");
    await text("since fractional", '{"op":"subscribe","channel":"a","since":1.5}', "invalid_since");
    await text("since 2^64", '{"op":"subscribe","channel":"a","since":18446744073709551616}', "invalid_since");
    await text("since 1e400", '{"op":"subscribe","channel":"a","since":1e400}', "invalid_since");
    await text("epoch a number", '{"op":"subscribe","channel":"a","epoch":5}', "invalid_epoch");
    await text("epoch of 100 characters", JSON.stringify({ op: "subscribe", channel: "a", epoch: "e".repeat(100) }), "invalid_epoch");
    await text("invalid escape in a string", '{"op":"subscribe","channel":"\\q"}', "invalid_json");
    await text("lone surrogate escape", '{"op":"subscribe","channel":"\\ud800"}', "invalid_json");
    await text("deeply nested JSON (10 000 arrays)", `{"op":"subscribe","channel":"a","since":${"[".repeat(10_000)}${"]".repeat(10_000)}}`, "invalid_json");
    await text("deeply nested JSON (10 000 objects)", `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`, "invalid_json");
    await text("nested 17 deep (over the op parser's 16)", `{"op":"ping","x":${"[".repeat(16)}${"]".repeat(16)}}`, "invalid_json");
    await expectError("binary frame", () => ws.sendBinary(Buffer.from('{"op":"ping"}')), "invalid_frame");
    await expectError("30 KiB binary garbage", () => ws.sendBinary(crypto.randomBytes(30 * KiB)), "invalid_frame");
    // Nested within the limit is fine, unknown fields are ignored.
    ws.send(`{"op":"ping","x":${"[".repeat(14)}${"]".repeat(14)},"y":{"z":null}}`);
    assert.deepEqual(await ws.next(notPing), { type: "pong" });
    note(t, "ping nested 15 deep with unknown fields", "pong");

    // 10 000 subscribe requests for distinct channels, sent at once.
    const N = 10_000;
    const first = ws.frames.length;
    for (let i = 0; i < N; i++) ws.send({ op: "subscribe", channel: `many.${i}` });
    // The refusals come from the connection at once, the `subscribed` answers from the
    // hub once each head is read: wait for all of them, not for a pong.
    const answersOf = () => ws.frames.slice(first).filter((f) => f.type === "subscribed" || f.type === "error");
    await waitFor(() => answersOf().length >= N, { timeoutMs: 120_000, what: `${N} answers` });
    ws.send({ op: "ping" });
    await ws.next((f) => f.type === "pong", 120_000);
    const answers = answersOf();
    const subscribed = answers.filter((f) => f.type === "subscribed");
    const refused = answers.filter((f) => f.type === "error");
    assert.equal(answers.length, N, "one answer per subscribe");
    assert.equal(subscribed.length, MAX_SUBSCRIPTIONS);
    // Answers to different channels may come in any order; which were accepted may not.
    const sortedChannels = (frames) => frames.map((f) => Number(f.channel.split(".")[1])).sort((a, b) => a - b);
    assert.deepEqual(sortedChannels(subscribed), range(0, MAX_SUBSCRIPTIONS - 1), "the first 1000 are accepted");
    assert.ok(refused.every((f) => f.code === "too_many_subscriptions"), JSON.stringify(refused.find((f) => f.code !== "too_many_subscriptions")));
    assert.deepEqual(sortedChannels(refused), range(MAX_SUBSCRIPTIONS, N - 1));
    note(t, `${N} subscribes for distinct channels`, `${subscribed.length} subscribed, ${refused.length} error too_many_subscriptions; connection open`);
    // Still usable: an unsubscribe frees a place; a repeated subscribe replaces, it does not count twice.
    ws.send({ op: "unsubscribe", channel: "many.0" });
    assert.equal((await ws.subscribe("many.extra")).type, "subscribed");
    assert.equal((await ws.subscribe("many.1")).type, "subscribed", "re-subscribing a channel already held");
    assert.equal((await ws.subscribe("many.extra2")).code, "too_many_subscriptions");
    const m = await fetchMetrics(node.url);
    assert.ok(m.seqcast_subscriptions >= MAX_SUBSCRIPTIONS, `subscriptions gauge ${m.seqcast_subscriptions}`);

    // Finally 100 KB of garbage in one binary message: over the 64 KiB frame limit → close 1009.
    ws.sendBinary(crypto.randomBytes(100 * 1000));
    const closed = await withTimeout(ws.closed, 20_000, "close after 100 KB of garbage");
    assert.equal(closed.code, 1009, JSON.stringify(closed));
    note(t, "100 KB random binary message", `close ${closed.code} "${closed.reason}"`);
    await waitFor(async () => (await fetchMetrics(node.url)).seqcast_subscriptions < MAX_SUBSCRIPTIONS, {
      timeoutMs: 20_000,
      what: "the closed connection's 1000 subscriptions to be released",
    });
  });

  test("the frame limit: exactly 64 KiB is accepted, one byte more closes with 1009, so does a fragmented message over it", { timeout: 60_000 }, async (t) => {
    const padded = (size) => {
      const base = '{"op":"ping","pad":""}';
      return `{"op":"ping","pad":"${"x".repeat(size - base.length)}"}`;
    };
    const ws = await wsClient(node.wsUrl);
    t.after(() => ws.close());
    ws.send(padded(MAX_FRAME_BYTES));
    assert.deepEqual(await ws.next((f) => f.type === "pong" || f.type === "error"), { type: "pong" });
    note(t, `text message of exactly ${MAX_FRAME_BYTES} bytes`, "pong");
    ws.send(padded(MAX_FRAME_BYTES + 1));
    const closed = await withTimeout(ws.closed, 20_000, "close after a frame one byte over");
    assert.equal(closed.code, 1009, JSON.stringify(closed));
    note(t, `text message of ${MAX_FRAME_BYTES + 1} bytes`, `close ${closed.code}`);

    // Two fragments of 40 000 bytes: each under the limit, the message over it.
    const frag = await wsClient(node.wsUrl);
    t.after(() => frag.close());
    frag.socket.send(Buffer.from(`{"op":"ping","pad":"${"x".repeat(40_000)}`), { binary: false, fin: false });
    frag.socket.send(Buffer.from(`${"x".repeat(40_000)}"}`), { binary: false, fin: true });
    const fragClosed = await withTimeout(frag.closed, 20_000, "close after a fragmented 80 KB message");
    assert.equal(fragClosed.code, 1009, JSON.stringify(fragClosed));
    note(t, "fragmented text message, 2 × 40 000 bytes", `close ${fragClosed.code}`);
  });

  test("WebSocket protocol violations close that connection with a protocol close code", { timeout: 60_000 }, async (t) => {
    const cases = [
      ["invalid UTF-8 in a text frame", (raw) => raw.sendFrame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 1007],
      ["an unmasked client frame", (raw) => raw.sendFrame(0x1, Buffer.from('{"op":"ping"}'), { mask: false }), 1002],
      ["a reserved opcode (0x3)", (raw) => raw.sendFrame(0x3, Buffer.from("x")), 1002],
      ["a fragmented ping (control frame without FIN)", (raw) => raw.sendFrame(0x9, Buffer.from("x"), { fin: false }), 1002],
      ["a ping with a 200-byte payload (control frames are ≤ 125)", (raw) => raw.sendFrame(0x9, Buffer.alloc(200, 0x61)), 1002],
      ["a continuation frame with nothing to continue", (raw) => raw.sendFrame(0x0, Buffer.from("x")), 1002],
      ["a frame declaring a 2^62-byte payload", (raw) => {
        const header = Buffer.alloc(14);
        header[0] = 0x81;
        header[1] = 0x80 | 127;
        header.writeBigUInt64BE(1n << 62n, 2);
        raw.socket.write(header);
      }, 1009],
    ];
    for (const [what, send, code] of cases) {
      const raw = await rawWs(node.port);
      await rawNext(raw, (f) => f.type === "welcome", "welcome");
      send(raw);
      const ended = await withTimeout(raw.ended, 30_000, `the server to close after ${what}`);
      raw.socket.destroy();
      assert.equal(raw.closeCode, code, `${what}: close code ${raw.closeCode}, ended ${JSON.stringify(ended)}`);
      note(t, what, `close ${raw.closeCode}`);
    }
  });

  test(`a half-open connection (upgrade, then silence) is closed within 2 × heartbeat + 5 s = ${2 * HEARTBEAT_SECONDS + 5} s`, { timeout: 60_000 }, async (t) => {
    // Reads what the server sends, but never answers: no pong, no close, nothing.
    const raw = await rawWs(node.port, { replyToClose: false });
    const ended = await withTimeout(raw.ended, 60_000, "the server to drop the silent connection");
    raw.socket.destroy();
    const bound = (2 * HEARTBEAT_SECONDS + 5) * 1000;
    const pings = raw.frames.filter((f) => f.opcode === 0x9).length;
    const appPings = raw.texts().filter((f) => f.type === "ping").length;
    note(t, "half-open TCP connection after the upgrade", `closed after ${ended.ms} ms (${ended.how}${ended.error ? ` ${ended.error}` : ""}); ${pings} WebSocket pings and ${appPings} app pings sent to it meanwhile`);
    // A little scheduling slack on a loaded machine; never before a heartbeat or two.
    assert.ok(ended.ms <= bound + 3_000, `closed after ${ended.ms} ms, bound ${bound} ms`);
    assert.ok(ended.ms >= 2 * HEARTBEAT_SECONDS * 1000, `closed too early: ${ended.ms} ms`);
    assert.ok(appPings >= 1, "app-level pings went out");
  });

  test("a client that never reads is closed as a slow consumer while ≥ 20 MB is published; RSS stays bounded; others get everything", { timeout: 150_000 }, async (t) => {
    const FLOOD = "flood";
    const MESSAGES = 300;
    const BATCH = 10;
    const SIZE = 100 * 1000;

    const before = await fetchMetrics(node.url);
    const baselineRss = node.rssBytes();

    // The slow one: subscribes, then stops reading from its socket.
    const slow = await rawWs(node.port);
    slow.sendText(JSON.stringify({ op: "subscribe", channel: FLOOD }));
    await rawNext(slow, (f) => f.type === "subscribed", "subscribed (slow)");
    slow.socket.pause();
    // The same over SSE: reads the response header, then nothing more.
    const slowSse = net.connect(node.port, "127.0.0.1");
    slowSse.on("error", () => {});
    let sseText = "";
    slowSse.setEncoding("utf8");
    slowSse.on("data", (c) => (sseText += c));
    const sseEnded = new Promise((resolve) => slowSse.on("close", resolve));
    slowSse.write(`GET /v1/sse/${FLOOD} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await waitFor(() => sseText.includes("retry:"), { what: "the SSE stream to start" });
    slowSse.pause();
    // A good one on the same channel.
    const fast = await wsClient(node.wsUrl);
    t.after(() => fast.close());
    const fastMessages = fast.collect(FLOOD);
    assert.equal((await fast.subscribe(FLOOD)).type, "subscribed");

    let peakRss = baselineRss;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, node.rssBytes());
        await delay(20);
      }
    })();

    const payload = "x".repeat(SIZE - 20);
    let published = 0;
    for (let b = 0; b < MESSAGES / BATCH; b++) {
      const items = [];
      for (let i = 0; i < BATCH; i++) items.push({ channel: FLOOD, data: { n: b * BATCH + i + 1, payload } });
      const res = await publishBatch(node.url, items, { timeoutMs: 60_000 });
      assert.equal(res.status, 201, res.text.slice(0, 300));
      published += BATCH;
    }
    const publishedBytes = published * SIZE;
    await waitFor(async () => (await fetchMetrics(node.url)).seqcast_slow_consumer_closes_total >= before.seqcast_slow_consumer_closes_total + 2, {
      timeoutMs: 60_000,
      what: "seqcast_slow_consumer_closes_total to rise by 2 (WebSocket and SSE)",
    });
    const closedAt = Date.now();
    // The good subscriber on the same channel got all of it, in order.
    await waitFor(() => fastMessages.length >= MESSAGES, { timeoutMs: 90_000, what: `the fast subscriber to get ${MESSAGES} messages (has ${fastMessages.length})` });
    sampling = false;
    await sampler;
    assert.deepEqual(seqsOf(fastMessages), range(1, MESSAGES));
    const after = await fetchMetrics(node.url);
    // The server frees both sessions by itself, though neither client has read a byte since.
    await waitFor(async () => (await fetchMetrics(node.url)).seqcast_connections <= before.seqcast_connections + 1, {
      timeoutMs: 60_000,
      what: `the slow sessions to be released (connections gauge back to ${before.seqcast_connections} + the fast one)`,
    });
    const releaseMs = Date.now() - closedAt;

    // Now read what the kernel buffers held: the messages are in order without a gap, then the server's close.
    slow.socket.resume();
    const ended = await withTimeout(slow.ended, 60_000, "the slow consumer's socket to end");
    slow.socket.destroy();
    const seqs = slow.texts().filter((f) => f.type === "message").map((f) => f.seq);
    assert.deepEqual(seqs, range(1, seqs.length), "what the slow consumer got is a gapless prefix");
    assert.ok(seqs.length > 0 && seqs.length < MESSAGES, `the slow consumer got ${seqs.length} of ${MESSAGES}`);
    if (slow.closeCode !== null) assert.equal(slow.closeCode, 1013, "the close frame, when readable, says 1013");
    slowSse.resume();
    await withTimeout(sseEnded, 60_000, "the slow SSE consumer's socket to end");
    const sseIds = [...sseText.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(sseIds, range(1, sseIds.length), "what the slow SSE consumer got is a gapless prefix");
    assert.ok(sseIds.length < MESSAGES, `the slow SSE consumer got ${sseIds.length} of ${MESSAGES}`);

    await waitFor(async () => (await fetchMetrics(node.url)).seqcast_send_queue_bytes < SEND_QUEUE_BYTES / 4, {
      timeoutMs: 30_000,
      what: "the send queues to drain after the close",
    });
    note(t, `client that never reads, ${published} × ${SIZE / 1000} KB = ${(publishedBytes / MiB).toFixed(1)} MiB published to its channel`,
      `closed as a slow consumer (seqcast_slow_consumer_closes_total ${before.seqcast_slow_consumer_closes_total} → ${after.seqcast_slow_consumer_closes_total}); ` +
      `it had received ${seqs.length} messages (${(slow.bytes / MiB).toFixed(1)} MiB incl. kernel buffers) then ${slow.closeCode !== null ? `close ${slow.closeCode}` : "no close frame"} and socket ${ended.how}; ` +
      `an SSE client that never reads: closed too (it had ${sseIds.length} events); both sessions released ${releaseMs} ms after the slow-consumer close without the clients reading`);
    note(t, "server RSS during the flood", `baseline ${(baselineRss / MiB).toFixed(1)} MiB, peak ${(peakRss / MiB).toFixed(1)} MiB (bound ${RSS_BOUND_BYTES / MiB} MiB)`);
    assert.ok(publishedBytes >= 20 * 1000 * 1000);
    assert.ok(peakRss < RSS_BOUND_BYTES, `peak RSS ${(peakRss / MiB).toFixed(1)} MiB over the ${RSS_BOUND_BYTES / MiB} MiB bound`);
  });

  test("oversized request headers get 431; malformed upgrades get 426 or 400", { timeout: 60_000 }, async (t) => {
    const big = await rawHttp(node.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ${"a".repeat(20 * KiB)}\r\nConnection: close\r\n\r\n`);
    assertError(big, 431, "headers_too_large", "one 20 KiB header");
    note(t, "one 20 KiB header", `${big.status} ${big.body.error.code}`);
    let many = "";
    for (let i = 0; i < 2000; i++) many += `X-H${i}: v\r\n`;
    const lots = await rawHttp(node.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}Connection: close\r\n\r\n`);
    assertError(lots, 431, "headers_too_large", "2000 small headers");
    note(t, "2000 small headers (~20 KiB)", `${lots.status} ${lots.body.error.code}`);
    const longTarget = await rawHttp(node.port, `GET /v1/channels/${"a".repeat(20 * KiB)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assertError(longTarget, 431, "headers_too_large", "a 20 KiB request target");
    note(t, "a 20 KiB request target", `${longTarget.status} ${longTarget.body.error.code}`);
    const upgrade = await rawHttp(node.port, `GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nX-Junk: ${"a".repeat(20 * KiB)}\r\n\r\n`);
    assertError(upgrade, 431, "headers_too_large", "a WebSocket upgrade with 20 KiB of headers");
    note(t, "a WebSocket upgrade with a 20 KiB header", `${upgrade.status}`);
    const upgradeOf = (headers) => `GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}\r\n`;
    const oldVersion = await rawHttp(node.port, upgradeOf(`Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 8\r\n`));
    assertError(oldVersion, 426, "upgrade_required", "a WebSocket upgrade of version 8");
    assert.equal(oldVersion.headers["sec-websocket-version"], "13", "426 names the version spoken");
    const noKey = await rawHttp(node.port, upgradeOf("Sec-WebSocket-Version: 13\r\n"));
    assertError(noKey, 400, "bad_request", "a WebSocket upgrade without Sec-WebSocket-Key");
    const shortKey = await rawHttp(node.port, upgradeOf(`Sec-WebSocket-Key: ${crypto.randomBytes(8).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n`));
    assertError(shortKey, 400, "bad_request", "a Sec-WebSocket-Key of 8 bytes");
    note(t, "WebSocket upgrade: version 8 / no key / an 8-byte key", `${oldVersion.status} / ${noKey.status} / ${shortKey.status}`);
    const fine = await rawHttp(node.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ${"a".repeat(8 * KiB)}\r\nConnection: close\r\n\r\n`);
    assert.equal(fine.status, 200, "8 KiB of headers are fine");
    const garbage = await rawHttp(node.port, "\x00\x01\x02 not http at all\r\n\r\n");
    assertError(garbage, 400, "bad_request", "binary garbage instead of a request line");
    note(t, "binary garbage instead of a request line", `${garbage.status} ${garbage.body.error.code}`);
    const badHeader = await rawHttp(node.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: v\r\nConnection: close\r\n\r\n");
    assertError(badHeader, 400, "bad_request", "a header name with a space");
    note(t, "a header name with a space", `${badHeader.status} ${badHeader.body.error.code}`);
    const smuggle = await rawHttp(node.port, "POST /v1/channels/smuggle/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\nConnection: close\r\n\r\n123");
    assert.equal(smuggle.status, 400, `two different Content-Lengths: ${smuggle.status} ${smuggle.text}`);
    note(t, "two different Content-Length headers", `${smuggle.status} ${smuggle.body?.error?.code}`);
    const huge = await rawHttp(node.port, "POST /v1/channels/huge/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n");
    assertError(huge, 413, "payload_too_large", "a declared 10 GB body");
    note(t, "Content-Length: 10000000000", `${huge.status} ${huge.body.error.code} at once`);
  });

  test(`a body that never finishes is dropped after --http-body-seconds (${HTTP_BODY_SECONDS} s); a header sent a byte at a time after --http-idle-seconds`, { timeout: 60_000 }, async (t) => {
    const socket = net.connect(node.port, "127.0.0.1");
    await once(socket, "connect");
    const chunks = [];
    socket.on("data", (c) => chunks.push(c));
    const ended = new Promise((resolve) => {
      socket.on("end", resolve);
      socket.on("close", resolve);
      socket.on("error", () => {});
    });
    const start = Date.now();
    socket.write("POST /v1/channels/slowbody/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
    socket.write('{"a":"1234');
    await withTimeout(ended, 30_000, "the server to drop the unfinished body");
    const ms = Date.now() - start;
    socket.destroy();
    const answer = Buffer.concat(chunks).toString("latin1");
    note(t, "Content-Length 1000, 10 bytes sent, then silence", `connection closed after ${ms} ms${answer ? `, answer ${JSON.stringify(answer.slice(0, 80))}` : ", no answer"}`);
    assert.ok(ms >= HTTP_BODY_SECONDS * 1000 - 100 && ms <= HTTP_BODY_SECONDS * 1000 + 3_000, `closed after ${ms} ms`);
    assertError(await getJson(`${node.url}/v1/channels/slowbody`), 404, "channel_not_found", "nothing was published");

    // Slowloris: a header that trickles in forever, one line every 500 ms.
    const slow = net.connect(node.port, "127.0.0.1");
    await once(slow, "connect");
    let slowEnded = false;
    const slowDone = new Promise((resolve) => {
      slow.on("close", () => {
        slowEnded = true;
        resolve();
      });
      slow.on("error", () => {});
    });
    const slowStart = Date.now();
    slow.write("GET /healthz HTTP/1.1\r\n");
    const trickle = (async () => {
      for (let i = 0; !slowEnded && Date.now() - slowStart < 30_000; i++) {
        if (!slow.destroyed) slow.write(`X-${i}: y\r\n`);
        await delay(500);
      }
    })();
    await withTimeout(slowDone, 30_000, "the server to drop the trickling header");
    await trickle;
    const slowMs = Date.now() - slowStart;
    note(t, "header trickled one line per 500 ms", `closed after ${slowMs} ms`);
    assert.ok(slowMs >= HTTP_IDLE_SECONDS * 1000 - 100 && slowMs <= HTTP_IDLE_SECONDS * 1000 + 3_000, `closed after ${slowMs} ms`);
  });

  test("2000 idle connections are closed after --http-idle-seconds while publishing goes on", { timeout: 90_000 }, async (t) => {
    const COUNT = 2000;
    const sockets = [];
    const closedAt = new Array(COUNT).fill(0);
    const lastActivity = new Array(COUNT).fill(0);
    const start = Date.now();
    const opened = [];
    for (let i = 0; i < COUNT; i++) {
      // Idleness is measured from a moment the server's timer cannot precede:
      // before connecting, or before sending the one request.
      lastActivity[i] = Date.now();
      const s = net.connect(node.port, "127.0.0.1");
      s.on("error", () => {});
      s.on("close", () => (closedAt[i] = Date.now()));
      sockets.push(s);
      opened.push(
        once(s, "connect").then(async () => {
          // Half of them make one keep-alive request first, then idle.
          if (i % 2 === 1) {
            lastActivity[i] = Date.now();
            s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let got = "";
            await new Promise((resolve) => {
              s.on("data", function onData(c) {
                got += c;
                if (got.includes('{"status":"ok"}')) {
                  s.off("data", onData);
                  resolve();
                }
              });
            });
          }
          s.on("data", () => {});
        }),
      );
    }
    await withTimeout(Promise.all(opened), 60_000, `opening ${COUNT} connections`);
    const openMs = Date.now() - start;
    const m = await fetchMetrics(node.url);
    assert.ok(m.seqcast_http_connections >= COUNT, `http connections gauge ${m.seqcast_http_connections}`);
    // Meanwhile publishing works, and promptly.
    const t0 = Date.now();
    const res = await publish(node.url, "idle-check", { ok: true });
    assert.equal(res.status, 201, res.text);
    const publishMs = Date.now() - t0;

    await waitFor(() => closedAt.every((x) => x > 0), { timeoutMs: 60_000, intervalMs: 100, what: `all ${COUNT} idle connections to be closed by the server` });
    for (const s of sockets) s.destroy();
    const idleMs = closedAt.map((c, i) => c - lastActivity[i]);
    const min = Math.min(...idleMs);
    const max = Math.max(...idleMs);
    note(t, `${COUNT} idle connections (1000 silent, 1000 after one keep-alive request)`,
      `opened in ${openMs} ms; a publish meanwhile took ${publishMs} ms (201); closed after ${min}–${max} ms of idleness`);
    assert.ok(min >= HTTP_IDLE_SECONDS * 1000, `one was closed after only ${min} ms`);
    assert.ok(max <= HTTP_IDLE_SECONDS * 1000 + 15_000, `one was closed only after ${max} ms`);
    await waitFor(async () => (await fetchMetrics(node.url)).seqcast_http_connections < 50, { timeoutMs: 20_000, what: "the http connections gauge to fall" });
  });

  test("SQL-shaped channel names and idempotency keys are plain data", { timeout: 60_000 }, async (t) => {
    const sqlChannel = "a';DROP TABLE messages;--";
    const r1 = await publish(node.url, sqlChannel, 1);
    assertError(r1, 400, "invalid_channel", "publish to a SQL-shaped channel");
    note(t, `publish to channel ${JSON.stringify(sqlChannel)}`, `${r1.status} ${r1.body.error.code}`);
    const r2 = await publishBatch(node.url, [{ channel: sqlChannel, data: 1 }]);
    assertError(r2, 400, "invalid_channel", "batch to a SQL-shaped channel");
    note(t, "the same in a batch", `${r2.status} ${r2.body.error.code}`);
    const r3 = await getJson(`${node.url}/v1/channels/${encodeURIComponent(sqlChannel)}/messages`);
    assertError(r3, 400, "invalid_channel", "log read of a SQL-shaped channel");
    const r4 = await getJson(`${node.url}/v1/sse/${encodeURIComponent(sqlChannel)}`);
    assertError(r4, 400, "invalid_channel", "SSE of a SQL-shaped channel");
    for (const [what, segment] of [
      ["percent-encoded NUL", "a%00b"],
      ["encoded backslash", "a%5Cb"],
      ["dot-dot path", ".."],
      ["broken percent escape", "a%zz"],
      ["1025 characters", "a".repeat(1025)],
      ["percent-encoded UTF-8", "r%C3%A4um"],
      ["percent-encoded invalid UTF-8", "a%FF"],
    ]) {
      const res = await publish(node.url, segment, 1, { encode: false });
      const code = res.status === 400 ? res.body?.error?.code : undefined;
      note(t, `publish to channel segment ${what} (${segment.slice(0, 20)})`, `${res.status} ${code ?? res.text.slice(0, 60)}`);
      assert.ok(res.status === 400 || res.status === 404, `${what}: ${res.status} ${res.text}`);
      if (res.status === 400) assert.equal(code, "invalid_channel", what);
    }

    const key = "'; DROP TABLE x;--";
    const c = "sql-key";
    const first = await publish(node.url, c, { q: "'); DELETE FROM messages; --" }, { idempotencyKey: key });
    assert.equal(first.status, 201, first.text);
    const retry = await publish(node.url, c, { q: "'); DELETE FROM messages; --" }, { idempotencyKey: key });
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.body.seq, first.body.seq, "the retry is recognised");
    note(t, `Idempotency-Key ${JSON.stringify(key)}`, `201 seq ${first.body.seq}; retry 200 seq ${retry.body.seq}`);
    const batchKey = "\" OR 1=1; --";
    const b = await publishBatch(node.url, [{ channel: c, data: 2, idempotency_key: batchKey }]);
    assert.equal(b.status, 201, b.text);
    note(t, `batch idempotency_key ${JSON.stringify(batchKey)}`, `201 seq ${b.body.results[0].seq}`);
    const next = await publish(node.url, c, 3);
    assert.equal(next.status, 201, next.text);
    const log = await getJson(`${node.url}/v1/channels/${c}/messages`);
    assert.equal(log.status, 200, log.text);
    assert.deepEqual(log.body.messages.map((x) => x.data), [{ q: "'); DELETE FROM messages; --" }, 2, 3], "the table still works and the payload is data");
    for (const [what, k] of [["a key with a newline", "a\nb"], ["a 129-character key", "k".repeat(129)], ["a key with DEL", "a\x7fb"]]) {
      const res = await rawHttp(node.port, `POST /v1/channels/${c}/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: ${k}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1`);
      note(t, `Idempotency-Key: ${what}`, `${res.status} ${res.body?.error?.code}`);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
    }
    const unicodeKey = await publish(node.url, c, 4, { headers: { "idempotency-key": Buffer.from("clé", "utf8").toString("latin1") } });
    assertError(unicodeKey, 400, "invalid_idempotency_key", "a non-ASCII key");
    note(t, "Idempotency-Key with UTF-8 bytes", `${unicodeKey.status} ${unicodeKey.body.error.code}`);
  });

  test("invalid UTF-8 and other malformed bodies get 400 invalid_json", { timeout: 60_000 }, async (t) => {
    const c = "utf8";
    const cases = [
      ["a lone 0xFF byte in a string", Buffer.from([0x22, 0xff, 0x22])],
      ["0xFE 0xFF in an object", Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xfe, 0xff]), Buffer.from('"}')])],
      ["an overlong '/' (C0 AF)", Buffer.from([0x22, 0xc0, 0xaf, 0x22])],
      ["an encoded surrogate (ED A0 80)", Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])],
      ["a truncated 3-byte sequence", Buffer.from([0x22, 0xe2, 0x82, 0x22])],
      ["a code point over U+10FFFF (F4 90 80 80)", Buffer.from([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22])],
      ["Latin-1 'é' (0xE9)", Buffer.from([0x22, 0xe9, 0x22])],
      ["a raw control character in a string", Buffer.from('"a\u0001b"')],
      ["not JSON", Buffer.from("hello")],
      ["an empty body", Buffer.alloc(0)],
      ["two JSON values", Buffer.from("1 2")],
      ["a trailing comma", Buffer.from("[1,]")],
      ["NaN", Buffer.from("NaN")],
      ["a lone surrogate escape", Buffer.from('"\\ud800"')],
      ["nesting 65 deep (over --max-json-depth 64)", Buffer.from(`${"[".repeat(65)}${"]".repeat(65)}`)],
      ["nesting 100 000 deep", Buffer.from(`${"[".repeat(100_000)}${"]".repeat(100_000)}`)],
    ];
    for (const [what, body] of cases) {
      const res = await publish(node.url, c, undefined, { raw: body });
      note(t, `publish body: ${what}`, `${res.status} ${res.body?.error?.code}${res.body?.error?.message ? ` (${res.body.error.message})` : ""}`);
      assertError(res, 400, "invalid_json", what);
    }
    const batch = await fetch(`${node.url}/v1/publish`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Buffer.concat([Buffer.from('{"messages":[{"channel":"utf8","data":"'), Buffer.from([0xff]), Buffer.from('"}]}')]),
    });
    const batchBody = await batch.json();
    assert.equal(batch.status, 400);
    assert.equal(batchBody.error.code, "invalid_json");
    note(t, "batch with invalid UTF-8 in data", `${batch.status} ${batchBody.error.code}`);
    const deep = await publish(node.url, c, undefined, { raw: `${"[".repeat(64)}${"]".repeat(64)}` });
    assert.equal(deep.status, 201, `nesting exactly 64 deep is accepted: ${deep.text}`);
    const ok = await publish(node.url, c, undefined, { raw: Buffer.from('"snow ☃ and 𝄞"') });
    assert.equal(ok.status, 201, ok.text);
  });

  test("the well-behaved subscriber received every message of the steady publisher, in order, and the node is alive", { timeout: 120_000 }, async (t) => {
    await steady.stop();
    assert.deepEqual(steady.failures, [], "every steady publish was accepted");
    const n = steady.published;
    assert.ok(n >= 100, `only ${n} steady publishes`);
    const messages = good.collect(STEADY);
    await waitFor(() => messages.length >= n, { timeoutMs: 60_000, what: `the good subscriber to receive ${n} messages (has ${messages.length})` });
    assert.deepEqual(seqsOf(messages), range(1, n), "exactly 1..n, in order, no gap, no duplicate");
    assert.deepEqual(messages.map((m) => m.data.i), range(1, n));
    assert.ok(good.isOpen, "the good subscriber was never disconnected");
    const lat = [...steady.latencies].sort((a, b) => a - b);
    note(t, "steady publisher", `${n} messages at 20/s; publish latency p50 ${lat[Math.floor(lat.length / 2)]} ms, max ${lat.at(-1)} ms; subscriber got 1..${n}`);
    assert.ok(node.alive, "the node is still running");
    const health = await getJson(`${node.url}/healthz`);
    assert.equal(health.status, 200);
    const exit = await node.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `a clean exit after all that:\n${node.tail()}`);
  });
});
