// End-to-end tests of the Rails adapter (integrations/rails, gem seqcast-rails)
// against live seqcast nodes. Ruby scripts (integrations/rails/test/e2e/*.rb)
// do what a Rails app does — ActionCable.server.broadcast with
// `adapter: seqcast`, Turbo-shaped broadcasts, Seqcast.batch, outbox-mode
// broadcasts inside Active Record transactions — and these tests check, byte
// for byte, what subscribers of seqcast receive. The gem's unit tests
// (minitest, no server) run here too, so that one `node --test` counts them.
//
// Needs Debian's ruby with ruby-actioncable, ruby-activerecord and ruby-pg
// (RUBY=/path/to/ruby to use another). Runs on Node 18 and later:
//   SEQCAST_BIN=build/seqcast node --test tests/rails/adapter.test.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  REPO,
  freePort,
  freshDatabase,
  getJson,
  psql,
  publish,
  range,
  signStreamName,
  startNode,
  startPostgres,
  turboDefaultKey,
  waitFor,
  withTimeout,
  wsClient,
} from "../e2e/harness.mjs";

const RUBY = process.env.RUBY || "ruby";
const GEM = path.join(REPO, "integrations/rails");
const SCRIPTS = path.join(GEM, "test/e2e");
const ADMIN = "rails-admin-5d1e";
const PUBLISH_KEY = "rails-publish-8c2a";
// The 64-byte key turbo-rails derives from secret_key_base by default; the
// node has it as hex:…, the Ruby side signs with its bytes.
const STREAMS_KEY = turboDefaultKey("rails-e2e-secret-key-base");
const NODE_ENV = {
  SEQCAST_ADMIN_KEY: ADMIN,
  SEQCAST_PUBLISH_KEYS: `other-key,${PUBLISH_KEY}`,
  SEQCAST_STREAMS_SECRET: `hex:${STREAMS_KEY.toString("hex")}`,
};
const ADMIN_HEADERS = { authorization: `Bearer ${ADMIN}` };
const HTML = '<turbo-stream action="append" target="log"><template><p>1</p></template></turbo-stream>';

let channelCounter = 0;
const newChannel = (prefix = "rails") => `${prefix}:${process.pid}:${Date.now()}:${++channelCounter}`;

/** The payload text of a `message` frame as received (data is its last member). */
function dataOf(raw) {
  const at = raw.indexOf(',"data":');
  assert.ok(at > 0 && raw.endsWith("}"), `not a message frame: ${raw.slice(0, 200)}`);
  return raw.slice(at + ',"data":'.length, -1);
}

/** The raw frames of `channel`'s messages on a harness wsClient. */
function rawMessages(ws, channel) {
  const out = [];
  ws.frames.forEach((f, i) => {
    if (f.type === "message" && f.channel === channel) out.push(ws.raws[i]);
  });
  return out;
}

/** What ActiveSupport::JSON makes of a String: JSON with < > & escaped as \u003c \u003e \u0026. */
function activeSupportJson(value) {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * Starts `ruby -I <gem>/lib <script> …args`. Returns {proc, stderr(), done}:
 * `done` resolves with {code, signal, stdout, stderr, result} once it exits
 * (`result`: the parsed "RESULT {…}" line, or null).
 */
function startRuby(script, args, env = {}, { timeoutMs = 60_000 } = {}) {
  const proc = spawn(RUBY, ["-I", path.join(GEM, "lib"), path.join(SCRIPTS, script), ...args.map(String)], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (c) => (stdout += c));
  proc.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (code, signal) => resolve({ code, signal }));
  });
  const done = withTimeout(exited, timeoutMs, `ruby ${script} ${args.join(" ")}`)
    .catch((err) => {
      proc.kill("SIGKILL");
      throw new Error(`${err.message}\n--- stderr ---\n${stderr.slice(-4000)}`);
    })
    .then(({ code, signal }) => {
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
      return { code, signal, stdout, stderr, result: line ? JSON.parse(line.slice("RESULT ".length)) : null };
    });
  return { proc, stderr: () => stderr, done };
}

/** Runs a script to completion and insists on exit 0 and a RESULT line. */
async function ruby(script, args, env = {}, options = {}) {
  const run = await startRuby(script, args, env, options).done;
  assert.equal(run.code, 0, `ruby ${script} ${args.join(" ")} exited ${run.code}\n--- stdout ---\n${run.stdout.slice(-4000)}\n--- stderr (its start: the exception) ---\n${run.stderr.slice(0, 3000)}`);
  assert.ok(run.result, `no RESULT line from ${script}\n${run.stdout}\n${run.stderr}`);
  return run;
}

/** The whole log of a channel: [{seq, data}] (admin key). */
async function logOf(node, channel) {
  const res = await getJson(`${node.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=1&limit=1000`, {
    headers: ADMIN_HEADERS,
  });
  if (res.status === 404) return [];
  assert.equal(res.status, 200, res.text);
  return res.body.messages;
}

/**
 * A TCP proxy to `upstreamPort` that loses the answer of the first `drop`
 * connections: it forwards the request, and when the answer starts to come
 * back it resets the client's connection instead — the request was handled,
 * the client cannot know.
 */
async function startLossyProxy(upstreamPort, { drop = 1 } = {}) {
  let toDrop = drop;
  const sockets = new Set();
  const stats = { connections: 0, dropped: 0 };
  const server = net.createServer((client) => {
    stats.connections += 1;
    const lose = toDrop > 0;
    if (lose) toDrop -= 1;
    const upstream = net.connect(upstreamPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.on("data", (chunk) => upstream.write(chunk));
    client.on("end", () => upstream.end());
    upstream.on("data", (chunk) => {
      if (lose) {
        stats.dropped += 1;
        if (typeof client.resetAndDestroy === "function") client.resetAndDestroy();
        else client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    upstream.on("end", () => client.end());
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stats,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

const httpEnv = (node, extra = {}) => ({
  SEQCAST_URL: node.url,
  SEQCAST_PUBLISH_KEY: PUBLISH_KEY,
  SEQCAST_TEST_MODE: "http",
  ...extra,
});

describe("Rails adapter: unit tests (minitest, no server)", () => {
  test("integrations/rails/test/*_test.rb pass", async () => {
    const proc = spawn(RUBY, ["-I", path.join(GEM, "lib"), "-I", path.join(GEM, "test"), path.join(GEM, "test/run.rb")], {
      cwd: GEM,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    proc.stdout.on("data", (c) => (out += c));
    proc.stderr.on("data", (c) => (out += c));
    const [code] = await withTimeout(once(proc, "exit"), 120_000, "the minitest suite");
    assert.equal(code, 0, out.slice(-6000));
    const summary = /(\d+) runs, (\d+) assertions, 0 failures, 0 errors/.exec(out);
    assert.ok(summary && Number(summary[1]) > 50, `unexpected minitest summary:\n${out.slice(-2000)}`);
  });
});

describe("Rails adapter, http mode (adapter: seqcast)", () => {
  let node;
  before(async () => {
    const databaseUrl = await freshDatabase();
    node = await startNode({ databaseUrl, env: NODE_ENV, name: "rails-http" });
  });
  after(() => node?.stop());

  test("ActionCable.server.broadcast: 50 messages and one of 100 KB arrive in order, byte for byte", async () => {
    const channel = newChannel();
    const ws = await wsClient(node.wsUrl);
    try {
      const sub = await ws.subscribe(channel, { since: 0 });
      assert.equal(sub.type, "subscribed", JSON.stringify(sub));
      const { result } = await ruby("http.rb", ["many", channel, 50, 100 * 1024], httpEnv(node));
      assert.equal(result.payloads.length, 51);
      assert.deepEqual(result.seqs, range(1, 51));
      assert.equal(result.stats.requests, 51, "one request per broadcast, no retries");
      assert.ok(result.payloads[50].length > 100 * 1024);
      // Action Cable's coder escaped what a browser must not see raw.
      assert.ok(result.payloads[0].includes("\\u003cb\\u003e1\\u003c/b\\u003e \\u0026"), result.payloads[0]);

      await waitFor(() => rawMessages(ws, channel).length >= 51, { what: "51 messages over WebSocket" });
      const raws = rawMessages(ws, channel);
      assert.equal(raws.length, 51);
      assert.deepEqual(ws.collect(channel).map((m) => m.seq), range(1, 51));
      raws.forEach((raw, i) => assert.equal(dataOf(raw), result.payloads[i], `payload ${i + 1}`));

      const log = await logOf(node, channel);
      assert.deepEqual(log.map((m) => m.seq), range(1, 51));
      log.forEach((m, i) => assert.deepEqual(m.data, JSON.parse(result.payloads[i])));
    } finally {
      await ws.close();
    }
  });

  test("a Turbo Streams broadcast arrives as Action Cable's coder encoded it, on /cable and /v1/ws", async () => {
    const channel = newChannel("turbo");
    // The Ruby helper signs as turbo-rails does; the node verifies with the same (binary) key.
    const { result: signing } = await ruby("http.rb", ["sign", channel, STREAMS_KEY.toString("hex")], {});
    assert.equal(signing.signed, signStreamName(channel, STREAMS_KEY));

    const cable = await wsClient(`ws://127.0.0.1:${node.port}/cable`, { protocols: ["actioncable-v1-json"] });
    const ws = await wsClient(node.wsUrl);
    try {
      await cable.next((f) => f.type === "welcome");
      const identifier = JSON.stringify({ channel: "Turbo::StreamsChannel", signed_stream_name: signing.signed });
      cable.send({ command: "subscribe", identifier });
      const answer = await cable.next((f) => f.identifier === identifier && f.type);
      assert.equal(answer.type, "confirm_subscription");
      await ws.subscribe(channel, { since: 0 });

      const { result } = await ruby("http.rb", ["turbo", channel], httpEnv(node));
      const expected = activeSupportJson(HTML);
      assert.equal(result.payload, expected);
      assert.ok(expected.startsWith('"\\u003cturbo-stream action=\\"append\\"'), expected);
      assert.equal(result.answer.seq, 1);

      const { frame, raw } = await cable.nextFrame((f) => f.identifier === identifier && "message" in f);
      assert.equal(frame.message, HTML);
      assert.equal(raw, `{"identifier":${JSON.stringify(identifier)},"message":${expected}}`);
      await waitFor(() => rawMessages(ws, channel).length === 1, { what: "the Turbo message over /v1/ws" });
      assert.equal(dataOf(rawMessages(ws, channel)[0]), expected);
    } finally {
      await cable.close();
      await ws.close();
    }
  });

  test("a broadcast made while the node restarts arrives exactly once, and the caller sees no error", async () => {
    const channel = newChannel("restart");
    await node.stop();
    const run = startRuby("http.rb", ["one", channel], httpEnv(node, { SEQCAST_TEST_RETRY_WINDOW: "60" }));
    try {
      // The first attempt was refused: the adapter says it is retrying.
      await waitFor(() => run.stderr().includes("retrying"), { timeoutMs: 20_000, what: "the adapter to retry" });
      await node.start();
      const { code, result, stderr } = await run.done;
      assert.equal(code, 0, stderr);
      assert.equal(result.answer.seq, 1);
      assert.ok(result.stats.retries >= 1, JSON.stringify(result.stats));
      assert.equal(result.stats.failed, 0);
      assert.match(stderr, /broadcast to .* failed \(Errno::ECONNREFUSED/);
    } finally {
      if (!node.alive) await node.start();
    }
    const log = await logOf(node, channel);
    assert.equal(log.length, 1, JSON.stringify(log));
    assert.deepEqual(log[0].data, { during: "restart", n: 1 });
  });

  test("a broadcast whose answer is lost is retried and published once (idempotency key)", async () => {
    const channel = newChannel("lost");
    const proxy = await startLossyProxy(node.port, { drop: 1 });
    try {
      const { result, stderr } = await ruby("http.rb", ["one", channel], httpEnv(node, { SEQCAST_URL: proxy.url }));
      assert.equal(proxy.stats.dropped, 1, "the first answer was lost");
      assert.equal(result.stats.requests, 2, stderr);
      assert.equal(result.answer.seq, 1, "the retry got the original seq");
      assert.match(stderr, /retrying/);
    } finally {
      await proxy.close();
    }
    const log = await logOf(node, channel);
    assert.deepEqual(log.map((m) => m.seq), [1]);
    assert.deepEqual(log[0].data, { during: "restart", n: 1 });
  });

  test("a batch whose answer is lost is retried and published once", async () => {
    const a = newChannel("lost-batch-a");
    const b = newChannel("lost-batch-b");
    const proxy = await startLossyProxy(node.port, { drop: 1 });
    try {
      const { result, stderr } = await ruby("http.rb", ["batch", a, b, 10], httpEnv(node, { SEQCAST_URL: proxy.url }));
      assert.equal(proxy.stats.dropped, 1, "the first answer was lost");
      assert.equal(result.requests, 2, stderr);
      assert.equal(result.published, 10);
    } finally {
      await proxy.close();
    }
    assert.deepEqual((await logOf(node, a)).map((m) => m.data.i), [1, 3, 5, 7, 9]);
    assert.deepEqual((await logOf(node, b)).map((m) => m.data.i), [2, 4, 6, 8, 10]);
  });

  test("a channel name outside seqcast's alphabet raises ArgumentError before any request", async () => {
    const channel = newChannel("bad");
    const { result } = await ruby("errors.rb", ["bad_name", channel], httpEnv(node));
    assert.ok(result.outcome.ancestors.includes("ArgumentError"), JSON.stringify(result.outcome));
    assert.match(result.outcome.message, /1-1024 characters of A-Z a-z 0-9 _ - \. : @ = \//);
    assert.equal(result.stats.requests, 0);
  });

  test("a payload over max_payload_bytes raises PublishError 413 payload_too_large at once", async () => {
    const channel = newChannel("big");
    const { result } = await ruby("errors.rb", ["too_big", channel], httpEnv(node));
    assert.equal(result.outcome.error, "Seqcast::PublishError", JSON.stringify(result.outcome));
    assert.equal(result.outcome.status, 413);
    assert.equal(result.outcome.code, "payload_too_large");
    assert.equal(result.outcome.attempts, 1);
    assert.ok(result.outcome.seconds < 5, `took ${result.outcome.seconds} s`);
    assert.deepEqual(await logOf(node, channel), []);
  });

  test("a wrong publish key raises PublishError 401 unauthorized at once", async () => {
    const channel = newChannel("key");
    const { result } = await ruby("errors.rb", ["wrong_key", channel], httpEnv(node, { SEQCAST_PUBLISH_KEY: "not-a-key" }));
    assert.equal(result.outcome.error, "Seqcast::PublishError", JSON.stringify(result.outcome));
    assert.equal(result.outcome.status, 401);
    assert.equal(result.outcome.code, "unauthorized");
    assert.equal(result.outcome.attempts, 1);
    assert.deepEqual(await logOf(node, channel), []);
  });

  test("a node that stays down raises PublishError once the retry window has passed", async () => {
    const channel = newChannel("down");
    const port = await freePort();
    const { result, stderr } = await ruby(
      "errors.rb",
      ["down", channel],
      httpEnv(node, { SEQCAST_URL: `http://127.0.0.1:${port}`, SEQCAST_TEST_RETRY_WINDOW: "1.5" }),
    );
    assert.equal(result.outcome.error, "Seqcast::PublishError", JSON.stringify(result.outcome));
    assert.equal(result.outcome.code, "connection_failed");
    assert.equal(result.outcome.status, null);
    assert.ok(result.outcome.attempts > 2, `attempts: ${result.outcome.attempts}`);
    assert.ok(result.outcome.seconds >= 1.5 && result.outcome.seconds < 6, `took ${result.outcome.seconds} s`);
    assert.match(result.outcome.message, /within 1.5 s/);
    assert.match(stderr, /retrying/);
  });

  test("subscribe raises NotImplementedError that sends browsers to seqcast", async () => {
    const { result } = await ruby("errors.rb", ["subscribe", newChannel()], httpEnv(node));
    assert.equal(result.outcome.error, "NotImplementedError");
    assert.match(result.outcome.message, /mount_path = nil/);
  });

  test("Seqcast.batch publishes every broadcast of the block in one request, in order", async () => {
    const a = newChannel("batch-a");
    const b = newChannel("batch-b");
    const n = 40;
    const before = await node.metrics();
    const { result } = await ruby("http.rb", ["batch", a, b, n], httpEnv(node));
    const afterMetrics = await node.metrics();
    assert.equal(result.requests, 1);
    assert.equal(result.published, n);
    assert.deepEqual(result.inner, new Array(n).fill(null), "broadcasts inside the block return nil");
    assert.equal(afterMetrics.seqcast_publish_seconds_count - before.seqcast_publish_seconds_count, 1);
    assert.equal(afterMetrics.seqcast_publish_ok_total - before.seqcast_publish_ok_total, n);

    const logA = await logOf(node, a);
    const logB = await logOf(node, b);
    assert.deepEqual(logA.map((m) => m.seq), range(1, n / 2));
    assert.deepEqual(logB.map((m) => m.seq), range(1, n / 2));
    assert.deepEqual(logA.map((m) => m.data.i), range(1, n).filter((i) => i % 2 === 1));
    assert.deepEqual(logB.map((m) => m.data.i), range(1, n).filter((i) => i % 2 === 0));
    assert.equal(logA[0].data.html, "<p>1</p>");
    // One transaction: every message of the batch carries the same commit timestamp.
    assert.equal(new Set([...logA, ...logB].map((m) => m.ts)).size, 1);
  });
});

describe("Rails adapter, http mode, while PostgreSQL is down", () => {
  let pg;
  let node;
  before(async () => {
    pg = await startPostgres();
    node = await startNode({ databaseUrl: await freshDatabase(pg.url), env: NODE_ENV, name: "rails-pgdown" });
  });
  after(async () => {
    await node?.stop();
    await pg?.destroy();
  });

  test("a broadcast answered 503 is retried and arrives once when PostgreSQL is back", async () => {
    const channel = newChannel("pgdown");
    await pg.stop();
    const run = startRuby("http.rb", ["one", channel], httpEnv(node, { SEQCAST_TEST_RETRY_WINDOW: "60" }));
    try {
      await waitFor(() => /failed \(503 unavailable\); retrying/.test(run.stderr()), {
        timeoutMs: 20_000,
        what: "the adapter to retry a 503",
      });
    } finally {
      await pg.start();
    }
    const { code, result, stderr } = await run.done;
    assert.equal(code, 0, stderr);
    assert.equal(result.answer.seq, 1);
    assert.ok(result.stats.retries >= 1);
    const log = await waitFor(async () => {
      const messages = await logOf(node, channel);
      return messages.length > 0 && messages;
    }, { what: "the log to be readable" });
    assert.deepEqual(log.map((m) => m.seq), [1]);
    assert.deepEqual(log[0].data, { during: "restart", n: 1 });
  });
});

// Outbox mode: the app's transaction calls seqcast.publish (CONTRACT.md,
// "Transactional publish"). These need a server that ships that function.
describe("Rails adapter, outbox mode (seqcast.publish in the app's transaction)", () => {
  let node;
  let databaseUrl;
  before(async () => {
    databaseUrl = await freshDatabase();
    node = await startNode({ databaseUrl, env: NODE_ENV, name: "rails-outbox" });
  });
  after(() => node?.stop());

  const outboxEnv = () => ({ DATABASE_URL: databaseUrl, SEQCAST_TEST_MODE: "outbox", SEQCAST_URL: "" });

  test("a broadcast in a transaction that rolls back never arrives; one that commits arrives once", async () => {
    const channel = newChannel("outbox");
    const ws = await wsClient(node.wsUrl);
    try {
      await ws.subscribe(channel, { since: 0 });
      await ruby("outbox.rb", ["rollback_then_commit", channel], outboxEnv());
      await waitFor(() => ws.collect(channel).length >= 1, { what: "the committed broadcast" });
      // A marker published after it: whatever arrives in between would be a message too many.
      const marker = await publish(node.url, channel, { marker: true }, { headers: ADMIN_HEADERS });
      assert.equal(marker.status, 201, marker.text);
      await waitFor(() => ws.collect(channel).length >= 2, { what: "the marker" });
      const got = ws.collect(channel);
      assert.deepEqual(got.map((m) => m.seq), [1, 2]);
      assert.deepEqual(got.map((m) => m.data), [{ state: "committed" }, { marker: true }]);
    } finally {
      await ws.close();
    }
  });

  test("N broadcasts in one committed transaction arrive once each, in order, byte for byte", async () => {
    const channel = newChannel("outbox");
    const ws = await wsClient(node.wsUrl);
    try {
      await ws.subscribe(channel, { since: 0 });
      const { result } = await ruby("outbox.rb", ["commit", channel, 20], outboxEnv());
      await waitFor(() => rawMessages(ws, channel).length >= 20, { what: "20 messages" });
      const marker = await publish(node.url, channel, { marker: true }, { headers: ADMIN_HEADERS });
      assert.equal(marker.status, 201, marker.text);
      await waitFor(() => rawMessages(ws, channel).length >= 21, { what: "the marker" });
      assert.deepEqual(ws.collect(channel).map((m) => m.seq), range(1, 21));
      rawMessages(ws, channel)
        .slice(0, 20)
        .forEach((raw, i) => assert.equal(dataOf(raw), result.payloads[i], `payload ${i + 1}`));
    } finally {
      await ws.close();
    }
  });

  test("broadcasts committed while every node is down are delivered when a node comes back", async () => {
    const channel = newChannel("outbox-down");
    await node.stop();
    let result;
    try {
      ({ result } = await ruby("outbox.rb", ["commit", channel, 5], outboxEnv()));
    } finally {
      await node.start();
    }
    const ws = await wsClient(node.wsUrl);
    try {
      await ws.subscribe(channel, { since: 0 });
      await waitFor(() => rawMessages(ws, channel).length >= 5, { timeoutMs: 20_000, what: "the 5 messages" });
      const marker = await publish(node.url, channel, { marker: true }, { headers: ADMIN_HEADERS });
      assert.equal(marker.status, 201, marker.text);
      await waitFor(() => rawMessages(ws, channel).length >= 6, { what: "the marker" });
      assert.deepEqual(ws.collect(channel).map((m) => m.seq), range(1, 6));
      rawMessages(ws, channel)
        .slice(0, 5)
        .forEach((raw, i) => assert.equal(dataOf(raw), result.payloads[i], `payload ${i + 1}`));
    } finally {
      await ws.close();
    }
  });

  test("outbox errors raise as in http mode, and roll the transaction back", async () => {
    const channel = newChannel("outbox-errors");
    const { result } = await ruby("outbox.rb", ["errors", channel], outboxEnv());
    const { bad_name: badName, too_big: tooBig, not_json: notJson } = result.outcomes;
    assert.ok(badName.ancestors.includes("ArgumentError"), JSON.stringify(badName));
    assert.deepEqual([tooBig.error, tooBig.status, tooBig.code], ["Seqcast::PublishError", 413, "payload_too_large"], JSON.stringify(tooBig));
    assert.deepEqual([notJson.error, notJson.status, notJson.code], ["Seqcast::PublishError", 400, "invalid_json"], JSON.stringify(notJson));
    await waitFor(async () => (await logOf(node, channel)).length >= 1, { what: "the broadcast after the errors" });
    const log = await logOf(node, channel);
    assert.deepEqual(log.map((m) => m.data), [{ after: "errors" }]);
  });
});

// The Ruby half of outbox mode, checked now against a stand-in for
// seqcast.publish (a plain PostgreSQL function that records its calls and
// raises the contract's errors): the broadcast runs on the app's own
// connection, inside its transaction, and PostgreSQL's errors map to the
// adapter's. No seqcast node is involved.
describe("Rails adapter, outbox mode against a stand-in seqcast.publish (no node)", () => {
  let databaseUrl;
  before(async () => {
    databaseUrl = await freshDatabase();
    await psql(
      databaseUrl,
      `CREATE SCHEMA seqcast_standin;
       CREATE TABLE seqcast_standin.calls (id bigserial PRIMARY KEY, channel text, payload text, idempotency_key text);
       CREATE FUNCTION seqcast_standin.publish(channel text, payload text, idempotency_key text DEFAULT NULL)
       RETURNS void LANGUAGE plpgsql AS $f$
       BEGIN
         IF length($1) NOT BETWEEN 1 AND 1024 OR $1 !~ '^[A-Za-z0-9_.:@=/-]+$' THEN
           RAISE EXCEPTION 'invalid_channel: channel must be 1-1024 of A-Z a-z 0-9 _ - . : @ = /';
         END IF;
         IF octet_length($2) > 1048576 THEN
           RAISE EXCEPTION 'payload_too_large: payload exceeds 1048576 bytes';
         END IF;
         BEGIN
           PERFORM $2::jsonb;
         EXCEPTION WHEN others THEN
           RAISE EXCEPTION 'invalid_json: %', SQLERRM;
         END;
         INSERT INTO seqcast_standin.calls (channel, payload, idempotency_key) VALUES ($1, $2, $3);
       END
       $f$;`,
    );
  });

  const standinEnv = () => ({ DATABASE_URL: databaseUrl, SEQCAST_TEST_MODE: "outbox", SEQCAST_TEST_SCHEMA: "seqcast_standin" });
  const calls = async (channel) =>
    (await psql(databaseUrl, `SELECT payload FROM seqcast_standin.calls WHERE channel = '${channel}' ORDER BY id`))
      .split("\n")
      .filter(Boolean);

  test("rolled back: no call survives; committed: exactly one", async () => {
    const channel = newChannel("standin");
    await ruby("outbox.rb", ["rollback_then_commit", channel], standinEnv());
    assert.deepEqual(await calls(channel), ['{"state":"committed"}']);
  });

  test("a committed transaction's broadcasts, in order, byte for byte", async () => {
    const channel = newChannel("standin");
    const { result } = await ruby("outbox.rb", ["commit", channel, 7], standinEnv());
    assert.deepEqual(await calls(channel), result.payloads);
    assert.ok(result.payloads[0].includes("\\u003cp\\u003e1\\u003c/p\\u003e"), result.payloads[0]);
  });

  test("PostgreSQL errors map to the http mode's errors", async () => {
    const channel = newChannel("standin");
    const { result } = await ruby("outbox.rb", ["errors", channel], standinEnv());
    const { bad_name: badName, too_big: tooBig, not_json: notJson } = result.outcomes;
    assert.ok(badName.ancestors.includes("ArgumentError"), JSON.stringify(badName));
    assert.deepEqual([tooBig.error, tooBig.status, tooBig.code], ["Seqcast::PublishError", 413, "payload_too_large"]);
    assert.deepEqual([notJson.error, notJson.status, notJson.code], ["Seqcast::PublishError", 400, "invalid_json"]);
    assert.deepEqual(await calls(channel), ['{"after":"errors"}']);
  });

  test("a schema without the function says what to check", async () => {
    const channel = newChannel("standin");
    const run = await startRuby("outbox.rb", ["commit", channel, 1], { ...standinEnv(), SEQCAST_TEST_SCHEMA: "no_such_schema" }).done;
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /Seqcast::ConfigurationError/);
    assert.match(run.stderr, /database_schema/);
  });
});
