// End-to-end tests of issue "4/6 Blue/green without loss": two nodes (blue and
// green) on one PostgreSQL behind a switchable TCP proxy that plays the load
// balancer. Clients using the bundled JS client sit on blue; a publisher posts
// to green; the proxy switches to green and blue is stopped (SIGTERM drain,
// SIGKILL, or an operator-triggered `seqcast drain`). Every client must end
// with every seq exactly once, in order. Also: /metrics checked by a strict
// Prometheus text parser, heartbeats, and dead peers closed by the server.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import { Seqcast } from "../../client-js/src/seqcast.js";
import {
  freshDatabase,
  getJson,
  publish,
  range,
  runSeqcast,
  startNode,
  uniqueName,
  waitFor,
  withTimeout,
  wsClient,
} from "./harness.mjs";
import { startFaultProxy } from "./fault_proxy.mjs";

const CLIENTS = 50;
const DRAIN_DELAY_S = 1;
const DRAIN_WINDOW_S = 3;
const EXIT_MARGIN_MS = 3_000;

// ---------------------------------------------------------------------------
// Prometheus text exposition (version 0.0.4), parsed strictly

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseNumber(text, where) {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

// `{a="x",b="y\"z"}` starting at text[i] === "{": [labels, index after "}"].
function parseLabels(text, i, where) {
  const labels = {};
  i += 1;
  for (;;) {
    if (text[i] === "}") return [labels, i + 1];
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`${where}: label without '='`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value of ${name} not quoted`);
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      if (j >= text.length) throw new Error(`${where}: unterminated label value`);
      const c = text[j];
      if (c === "\\") {
        const e = text[++j];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else throw new Error(`${where}: bad escape \\${e}`);
      } else if (c === '"') break;
      else if (c === "\n") throw new Error(`${where}: newline in label value`);
      else value += c;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i += 1;
    else if (text[i] !== "}") throw new Error(`${where}: expected ',' or '}' after label ${name}`);
  }
}

/**
 * Parses Prometheus text exposition and checks it: HELP/TYPE lines name valid
 * metrics, each family's TYPE comes once and before its samples, a family's
 * samples are contiguous, no sample (name + labels) repeats, values parse;
 * counters are finite and ≥ 0; a histogram has `le` buckets in increasing
 * order with cumulative counts, ending in `+Inf` equal to its `_count`, and a
 * `_sum`. Throws on any violation. Returns
 *   {families: Map(name → {type, help, samples: [{name, labels, value}]}),
 *    value(name, labels?)  the value of one sample (throws if absent),
 *    histogram(name)       {buckets: [[le, count]], sum, count}}.
 */
function parsePrometheus(text) {
  if (!text.endsWith("\n")) throw new Error("exposition does not end with a newline");
  const families = new Map();
  const family = (name) => {
    if (!families.has(name)) families.set(name, { name, type: "untyped", help: null, typed: false, samples: [] });
    return families.get(name);
  };
  const seen = new Set();
  const finished = new Set(); // families whose samples are over
  let current = null;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, index) => {
    const where = `line ${index + 1} ${JSON.stringify(line.slice(0, 120))}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) return; // any other comment is allowed and ignored
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const f = family(name);
      if (kind === "HELP") {
        if (f.help !== null) throw new Error(`${where}: second HELP for ${name}`);
        f.help = rest;
      } else {
        if (f.typed) throw new Error(`${where}: second TYPE for ${name}`);
        if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest.trim())) throw new Error(`${where}: unknown type ${JSON.stringify(rest)}`);
        f.type = rest.trim();
        f.typed = true;
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`${where}: sample without a metric name`);
    const name = nameMatch[0];
    let i = name.length;
    let labels = {};
    if (line[i] === "{") [labels, i] = parseLabels(line, i, where);
    const rest = line.slice(i);
    const vm = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
    if (!vm) throw new Error(`${where}: expected ' value [timestamp]' after the name and labels`);
    const value = parseNumber(vm[1], where);
    // The family: a histogram's or summary's samples carry suffixes.
    let familyName = name;
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && families.has(base) && ["histogram", "summary"].includes(families.get(base).type)) {
        familyName = base;
      }
    }
    const f = family(familyName);
    if (current !== familyName) {
      if (finished.has(familyName)) throw new Error(`${where}: samples of ${familyName} are not contiguous`);
      if (current !== null) finished.add(current);
      current = familyName;
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`${where}: duplicate sample`);
    seen.add(key);
    f.samples.push({ name, labels, value });
  });

  for (const f of families.values()) {
    if (!f.samples.length) throw new Error(`${f.name}: HELP/TYPE without samples`);
    if (f.type === "counter") {
      for (const s of f.samples) {
        if (!Number.isFinite(s.value) || s.value < 0) throw new Error(`counter ${s.name} = ${s.value}`);
      }
    }
    if (f.type === "histogram") checkHistogram(f);
  }

  const labelKey = (labels) => JSON.stringify(Object.entries(labels).sort());
  return {
    families,
    value(name, labels = {}) {
      for (const f of families.values()) {
        for (const s of f.samples) if (s.name === name && labelKey(s.labels) === labelKey(labels)) return s.value;
      }
      throw new Error(`no sample ${name}${labelKey(labels)}`);
    },
    histogram(name) {
      const f = families.get(name);
      if (!f || f.type !== "histogram") throw new Error(`no histogram ${name}`);
      return f.histogram;
    },
  };
}

function checkHistogram(f) {
  // Grouped by the labels other than `le` (seqcast's histograms have none).
  const groups = new Map();
  const group = (labels) => {
    const { le, ...rest } = labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!groups.has(key)) groups.set(key, { buckets: [], sum: undefined, count: undefined });
    return groups.get(key);
  };
  for (const s of f.samples) {
    const g = group(s.labels);
    if (s.name === `${f.name}_bucket`) {
      if (!("le" in s.labels)) throw new Error(`${s.name} without le`);
      g.buckets.push([parseNumber(s.labels.le, `${s.name} le`), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`histogram ${f.name} has a sample ${s.name}`);
  }
  for (const g of groups.values()) {
    if (g.buckets.length === 0) throw new Error(`histogram ${f.name} has no buckets`);
    if (g.sum === undefined || g.count === undefined) throw new Error(`histogram ${f.name} lacks _sum or _count`);
    for (let k = 1; k < g.buckets.length; k++) {
      const [le0, c0] = g.buckets[k - 1];
      const [le1, c1] = g.buckets[k];
      if (!(le1 > le0)) throw new Error(`histogram ${f.name}: le ${le1} after ${le0}`);
      if (c1 < c0) throw new Error(`histogram ${f.name}: bucket le=${le1} (${c1}) < le=${le0} (${c0}): not cumulative`);
    }
    const [lastLe, lastCount] = g.buckets.at(-1);
    if (lastLe !== Infinity) throw new Error(`histogram ${f.name} does not end with le="+Inf"`);
    if (lastCount !== g.count) throw new Error(`histogram ${f.name}: +Inf bucket ${lastCount} != _count ${g.count}`);
    if (!Number.isInteger(g.count) || g.count < 0) throw new Error(`histogram ${f.name}: _count ${g.count}`);
  }
  f.histogram = groups.values().next().value;
}

/** GET /metrics, checked and parsed by parsePrometheus (plus the Content-Type). */
async function scrape(nodeUrl) {
  const res = await fetch(`${nodeUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${nodeUrl}/metrics: ${text.slice(0, 200)}`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain(;|$)/, "Content-Type of /metrics");
  return parsePrometheus(text);
}

// ---------------------------------------------------------------------------
// Clients, publisher, nodes

/**
 * A bundled-JS-client subscriber that records everything, with timestamps:
 *   got       messages handed to the handler, in order
 *   states    [{state, at}] connection state changes
 *   hints     [{at, within_ms}] `reconnect` frames received (tapped off the socket)
 *   events    reset/gap/error events of the subscription; errors: client errors
 */
function startClient(t, wsUrl, channel) {
  const client = { got: [], states: [], hints: [], events: [], errors: [] };
  // The same `ws` WebSocket, with a tap on its frames to time the hints.
  class TappedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.on("message", (data, isBinary) => {
        if (isBinary) return;
        const text = data.toString("utf8");
        if (!text.includes('"reconnect"')) return;
        const frame = JSON.parse(text);
        if (frame.type === "reconnect") client.hints.push({ at: Date.now(), within_ms: frame.within_ms, reason: frame.reason });
      });
    }
  }
  const sc = new Seqcast(wsUrl, { WebSocket: TappedWebSocket });
  client.sc = sc;
  sc.on("state", (state) => client.states.push({ state, at: Date.now() }));
  sc.on("error", (err) => client.errors.push(err));
  client.sub = sc.subscribe(channel, (msg) => client.got.push(msg));
  for (const name of ["reset", "gap", "error"]) client.sub.on(name, (info) => client.events.push({ [name]: info }));
  client.subscribed = new Promise((resolve) => client.sub.on("subscribed", resolve));
  t.after(() => sc.close());
  return client;
}

/** Times a client went from "open" to "reconnecting" / from "reconnecting" to "open", after `since`. */
const drops = (c, since = 0) => c.states.filter((s, k) => s.at >= since && s.state === "reconnecting" && c.states[k - 1]?.state === "open").map((s) => s.at);
const reopens = (c, since = 0) => c.states.filter((s) => s.at >= since && s.state === "open").map((s) => s.at);

/**
 * Posts {i} for i = 1, 2, … to `channel` on `nodeUrl` at `rate` msg/s over
 * HTTP keep-alive (at most `maxInFlight` requests at once) until stop().
 *   acked     Map seq → i of every 201
 *   failures  every other answer or error
 *   sockets   TCP connections the publisher opened
 */
function startPublisher(nodeUrl, channel, { rate = 200, maxInFlight = 8 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const target = new URL(`${nodeUrl}/v1/channels/${encodeURIComponent(channel)}/messages`);
  const pub = { acked: new Map(), failures: [], sockets: 0, sent: 0, startedAt: Date.now(), stoppedAt: null };
  let stopping = false;
  const inFlight = new Set();

  const post = (i) =>
    new Promise((resolve) => {
      const body = JSON.stringify({ i });
      const req = http.request(
        target,
        { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (text += c));
          res.on("end", () => {
            if (res.statusCode === 201) pub.acked.set(JSON.parse(text).seq, i);
            else pub.failures.push(`${i}: ${res.statusCode} ${text.slice(0, 200)}`);
            resolve();
          });
          res.on("error", (err) => {
            pub.failures.push(`${i}: ${err.message}`);
            resolve();
          });
        },
      );
      req.on("socket", () => {
        if (!req.reusedSocket) pub.sockets += 1;
      });
      req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
      req.on("error", (err) => {
        pub.failures.push(`${i}: ${err.message}`);
        resolve();
      });
      req.end(body);
    });

  const loop = (async () => {
    for (let i = 1; !stopping; i++) {
      // Pacing (not synchronisation): message i is due at start + (i-1)/rate.
      const wait = pub.startedAt + ((i - 1) * 1000) / rate - Date.now();
      if (wait > 0) await delay(wait);
      while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      if (stopping) break;
      const p = post(i).finally(() => inFlight.delete(p));
      inFlight.add(p);
      pub.sent = i;
    }
    await Promise.all(inFlight);
    agent.destroy();
  })();

  pub.stop = async () => {
    stopping = true;
    await loop;
    pub.stoppedAt = Date.now();
    return pub;
  };
  return pub;
}

async function nodePair(t, { blueArgs = [] } = {}) {
  const databaseUrl = await freshDatabase();
  // One after the other: the first applies the migrations.
  const blue = await startNode({ databaseUrl, name: "blue", args: blueArgs });
  t.after(() => blue.stop());
  const green = await startNode({ databaseUrl, name: "green" });
  t.after(() => green.stop());
  const proxy = await startFaultProxy({ upstreamPort: blue.port });
  t.after(() => proxy.close());
  return { databaseUrl, blue, green, proxy };
}

const pgCounters = (m) => ({
  pg_queries: m.value("seqcast_pg_queries_total"),
  replay_pg_queries: m.value("seqcast_replay_pg_queries_total"),
  replay_pg_messages: m.value("seqcast_replay_pg_messages_total"),
  replay_cache_messages: m.value("seqcast_replay_cache_messages_total"),
  replay_memory_messages: m.value("seqcast_replay_memory_messages_total"),
  ingest_fetches: m.value("seqcast_ingest_fetches_total"),
});
const minus = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

/**
 * The part every blue/green variant shares. Clients on blue through the proxy,
 * a publisher on green, then `move()` (after the proxy switched to green) makes
 * the clients leave blue. Checks that every client ends with 1..n exactly
 * once, in order, n = the last acknowledged seq. Returns what was measured.
 */
async function blueGreenRun(t, { blue, green, proxy }, move, { waitBlueGone = false } = {}) {
  const channel = uniqueName("bg");
  const clients = Array.from({ length: CLIENTS }, () => startClient(t, proxy.wsUrl, channel));
  await withTimeout(Promise.all(clients.map((c) => c.subscribed)), 60_000, "every client's `subscribed`");
  await waitFor(async () => (await scrape(blue.url)).value("seqcast_connections") === CLIENTS, {
    timeoutMs: 10_000,
    what: `${CLIENTS} WebSocket connections on blue`,
  });
  assert.equal(proxy.openTo(blue.port), CLIENTS, "every client went through the proxy to blue");
  assert.equal((await scrape(green.url)).value("seqcast_connections"), 0, "green has no client yet");

  const publisher = startPublisher(green.url, channel, { rate: 200 });
  t.after(() => publisher.stop());
  // Messages published on green reach the clients through blue.
  await waitFor(() => publisher.acked.size >= 200 && clients.every((c) => c.got.length >= 100), {
    timeoutMs: 60_000,
    what: `200 acknowledged and 100 delivered through blue (acked ${publisher.acked.size}, delivered min ${Math.min(...clients.map((c) => c.got.length))})`,
  });

  const greenBefore = pgCounters(await scrape(green.url));
  proxy.setUpstream(green.port);
  const switchedAt = Date.now();
  const ackedAtSwitch = publisher.acked.size;
  const measured = await move({ clients, switchedAt });

  // Every client left blue and is open again, on green.
  await waitFor(() => clients.every((c) => drops(c, switchedAt).length >= 1 && c.sc.state === "open"), {
    timeoutMs: 60_000,
    what: `every client to leave blue and open again (${clients.filter((c) => c.sc.state === "open" && drops(c, switchedAt).length).length}/${CLIENTS})`,
  });
  if (waitBlueGone) await blue.exited;
  await waitFor(() => proxy.openTo(green.port) === CLIENTS && proxy.openTo(blue.port) === 0, {
    timeoutMs: 30_000,
    what: `${CLIENTS} proxied connections to green, none to blue (green ${proxy.openTo(green.port)}, blue ${proxy.openTo(blue.port)})`,
  });
  await waitFor(async () => (await scrape(green.url)).value("seqcast_connections") === CLIENTS, {
    timeoutMs: 30_000,
    what: `${CLIENTS} WebSocket connections on green`,
  });
  const settledAt = Date.now();
  const greenAfter = pgCounters(await scrape(green.url));

  // Keep publishing a while on green with everyone there, then stop.
  const ackedAtSettle = publisher.acked.size;
  await waitFor(() => publisher.acked.size >= ackedAtSettle + 200, { timeoutMs: 60_000, what: "200 more acknowledged after the move" });
  await publisher.stop();

  assert.deepEqual(publisher.failures, [], "every publish was answered 201");
  const n = Math.max(...publisher.acked.keys());
  assert.equal(publisher.acked.size, n, `201s (${publisher.acked.size}) = the last acknowledged seq (${n})`);
  assert.deepEqual([...publisher.acked.keys()].sort((a, b) => a - b), range(1, n), "acknowledged seqs are 1..n");
  assert.ok(publisher.acked.size - ackedAtSwitch >= 200, "publishing went on through the switch");

  await waitFor(() => clients.every((c) => c.got.length >= n), {
    timeoutMs: 60_000,
    what: `every client to receive ${n} (min ${Math.min(...clients.map((c) => c.got.length))})`,
  });
  const epoch = clients[0].got[0].epoch;
  clients.forEach((c, k) => {
    assert.deepEqual(c.got.map((m) => m.seq), range(1, n), `client ${k}: every seq once, in order`);
    assert.ok(c.got.every((m) => m.data.i === publisher.acked.get(m.seq) && m.epoch === epoch), `client ${k}: payloads and epoch`);
    assert.deepEqual(c.events, [], `client ${k}: no reset, gap or subscription error`);
    const unexpected = c.errors.filter((e) => e.code !== "transport_error");
    assert.deepEqual(unexpected.map((e) => `${e.code}: ${e.message}`), [], `client ${k}: client errors`);
  });
  for (const c of clients) c.sc.close(); // before the nodes stop, so that nobody reconnects
  const elapsed = (publisher.stoppedAt - publisher.startedAt) / 1000;
  return {
    ...measured,
    n,
    clients,
    switchedAt,
    settledAt,
    publishRate: Math.round(n / elapsed),
    publisherSockets: publisher.sockets,
    greenPgDuringSwitch: minus(greenAfter, greenBefore),
  };
}

/** The largest number of `times` (ms) inside any interval of `widthMs`. */
function densest(times, widthMs) {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; j < sorted.length; j++) {
    while (sorted[j] - sorted[i] >= widthMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

/** Polls GET /readyz every ~25 ms until the node stops answering: [{at, status}]. */
function pollReadyz(node, stop) {
  const samples = [];
  const done = (async () => {
    while (!stop()) {
      try {
        const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        samples.push({ at: Date.now(), status: res.status });
      } catch {
        if (!node.alive) break; // gone: nothing more to poll
      }
      await delay(25);
    }
  })();
  return { samples, done };
}

/** A WebSocket upgrade straight to a node: resolves with the HTTP status it got (101 = accepted). */
function upgradeStatus(wsUrl) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.once("open", () => {
      ws.terminate();
      resolve(101);
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode);
      res.resume();
      ws.terminate();
    });
    ws.once("error", reject);
  });
}

const spanMs = (times) => Math.max(...times) - Math.min(...times);
const fmtMs = (ms) => `${Math.round(ms)} ms`;

// ---------------------------------------------------------------------------

describe("4/6 Blue/green without loss", () => {
  test(`blue/green with SIGTERM: ${CLIENTS} clients move to green, every seq once, in order; readyz 503, hints spread over the window, exit 0`, { timeout: 150_000 }, async (t) => {
    const pair = await nodePair(t, {
      blueArgs: ["--drain-delay-seconds", String(DRAIN_DELAY_S), "--drain-window-seconds", String(DRAIN_WINDOW_S)],
    });
    const { blue } = pair;
    let upgradeDuringDrain;
    let readyz;
    let sigtermAt;
    const result = await blueGreenRun(t, pair, async ({ clients }) => {
      sigtermAt = Date.now();
      blue.proc.kill("SIGTERM");
      let exitedAt = null;
      const exited = blue.exited.then((status) => ((exitedAt = Date.now()), status));
      readyz = pollReadyz(blue, () => exitedAt !== null);
      // After drain_delay new upgrades are refused; try one straight to blue
      // once the first client has its hint.
      await waitFor(() => clients.some((c) => c.hints.length), { timeoutMs: 30_000, what: "the first reconnect hint" });
      upgradeDuringDrain = await upgradeStatus(blue.wsUrl);
      const status = await withTimeout(exited, 60_000, "blue exiting after SIGTERM");
      await readyz.done;
      return { exit: status, exitMs: exitedAt - sigtermAt };
    }, { waitBlueGone: true });

    const { clients } = result;
    // /readyz: 503 at once (long before drain_delay), and never 200 again.
    const first503 = readyz.samples.find((s) => s.status === 503);
    assert.ok(first503, `blue's /readyz answered 503 during the drain (samples: ${readyz.samples.map((s) => s.status).join(",")})`);
    const readyz503Ms = first503.at - sigtermAt;
    assert.ok(readyz503Ms < DRAIN_DELAY_S * 1000, `readyz 503 ${fmtMs(readyz503Ms)} after SIGTERM, before drain_delay`);
    const after = readyz.samples.filter((s) => s.at >= first503.at);
    assert.ok(after.every((s) => s.status === 503), "readyz stayed 503 until blue exited");
    assert.ok(after.length >= 10, `readyz polled through the drain (${after.length} samples)`);
    assert.equal(upgradeDuringDrain, 503, "a new WebSocket upgrade on blue after drain_delay is refused with 503");

    // Exit 0 within drain_delay + drain_window + margin.
    assert.deepEqual(result.exit, { code: 0, signal: null }, "blue exited with status 0");
    const limit = (DRAIN_DELAY_S + DRAIN_WINDOW_S) * 1000 + EXIT_MARGIN_MS;
    assert.ok(result.exitMs <= limit, `blue exited ${fmtMs(result.exitMs)} after SIGTERM (limit ${limit} ms)`);

    // Every client got exactly one hint, after drain_delay, spread over the window.
    const hintTimes = clients.map((c, k) => {
      assert.equal(c.hints.length, 1, `client ${k} got one reconnect hint`);
      assert.equal(c.hints[0].reason, "draining", `client ${k}: hint reason`);
      assert.ok(c.hints[0].within_ms > 0 && c.hints[0].within_ms <= DRAIN_WINDOW_S * 1000, `client ${k}: within_ms ${c.hints[0].within_ms}`);
      assert.equal(drops(c, sigtermAt).length, 1, `client ${k} left blue once`);
      return c.hints[0].at;
    });
    const reopenTimes = clients.map((c) => reopens(c, sigtermAt)[0]);
    const firstHintMs = Math.min(...hintTimes) - sigtermAt;
    const lastHintMs = Math.max(...hintTimes) - sigtermAt;
    assert.ok(firstHintMs >= DRAIN_DELAY_S * 1000 - 50, `first hint ${fmtMs(firstHintMs)} after SIGTERM, not before drain_delay`);
    const windowMs = DRAIN_WINDOW_S * 1000;
    assert.ok(spanMs(hintTimes) >= windowMs / 2, `hints span ${fmtMs(spanMs(hintTimes))}, ≥ half the ${windowMs} ms window`);
    const peak = densest(hintTimes, 100);
    assert.ok(peak <= Math.ceil(CLIENTS * 0.3), `at most 30% of the hints within any 100 ms (peak ${peak})`);
    // …and so were the reconnections that landed on green.
    const reopenPeak = densest(reopenTimes, 100);
    assert.ok(spanMs(reopenTimes) >= windowMs / 2, `reconnections span ${fmtMs(spanMs(reopenTimes))}, ≥ half the window`);
    assert.ok(reopenPeak <= Math.ceil(CLIENTS * 0.3), `at most 30% of the reconnections within any 100 ms (peak ${reopenPeak})`);

    t.diagnostic(
      `SIGTERM drain: readyz 503 after ${fmtMs(readyz503Ms)}; hints ${fmtMs(firstHintMs)} … ${fmtMs(lastHintMs)} after SIGTERM ` +
        `(span ${fmtMs(spanMs(hintTimes))}, peak ${peak}/100 ms, within_ms ${clients[0].hints[0].within_ms}); ` +
        `reconnected on green ${fmtMs(Math.min(...reopenTimes) - sigtermAt)} … ${fmtMs(Math.max(...reopenTimes) - sigtermAt)} (peak ${reopenPeak}/100 ms); ` +
        `exit ${JSON.stringify(result.exit)} after ${fmtMs(result.exitMs)}; direct upgrade during drain ${upgradeDuringDrain}`,
    );
    t.diagnostic(
      `n=${result.n} at ${result.publishRate} msg/s over ${result.publisherSockets} keep-alive connection(s); ` +
        `green PostgreSQL during the switch: ${JSON.stringify(result.greenPgDuringSwitch)}`,
    );
    // A reconnect storm of one channel costs O(1) replay reads, not one per client.
    assert.ok(result.greenPgDuringSwitch.replay_pg_queries < CLIENTS / 5, `replay reads on green during the switch: ${result.greenPgDuringSwitch.replay_pg_queries}`);
  });

  test(`blue/green with SIGKILL: ${CLIENTS} clients detect the drop and resume on green, every seq once, in order`, { timeout: 150_000 }, async (t) => {
    const pair = await nodePair(t);
    const { blue } = pair;
    let killedAt;
    const result = await blueGreenRun(t, pair, async () => {
      killedAt = Date.now();
      blue.proc.kill("SIGKILL");
      const status = await withTimeout(blue.exited, 30_000, "blue dying after SIGKILL");
      return { exit: status };
    });
    assert.deepEqual(result.exit, { code: null, signal: "SIGKILL" });
    const { clients } = result;
    clients.forEach((c, k) => {
      assert.equal(c.hints.length, 0, `client ${k} got no hint from a killed node`);
      assert.equal(drops(c, killedAt).length, 1, `client ${k} lost its connection once`);
    });
    const dropTimes = clients.map((c) => drops(c, killedAt)[0]);
    const reopenTimes = clients.map((c) => reopens(c, killedAt)[0]);
    t.diagnostic(
      `SIGKILL: clients noticed ${fmtMs(Math.min(...dropTimes) - killedAt)} … ${fmtMs(Math.max(...dropTimes) - killedAt)} after the kill, ` +
        `reconnected on green ${fmtMs(Math.min(...reopenTimes) - killedAt)} … ${fmtMs(Math.max(...reopenTimes) - killedAt)}; ` +
        `n=${result.n} at ${result.publishRate} msg/s; green PostgreSQL during the switch: ${JSON.stringify(result.greenPgDuringSwitch)}`,
    );
    assert.ok(result.greenPgDuringSwitch.replay_pg_queries < CLIENTS / 5, `replay reads on green during the switch: ${result.greenPgDuringSwitch.replay_pg_queries}`);
  });

  test(`operator-triggered migration: \`seqcast drain --url blue --window-seconds 2\` moves ${CLIENTS} clients to green without loss; blue keeps running with 0 connections`, { timeout: 150_000 }, async (t) => {
    const pair = await nodePair(t);
    const { blue } = pair;
    const windowS = 2;
    let drainCmd;
    let readyzDuring;
    let drainAt;
    const result = await blueGreenRun(t, pair, async ({ clients }) => {
      drainAt = Date.now();
      drainCmd = await runSeqcast(["drain", "--url", blue.url, "--window-seconds", String(windowS)], { timeoutMs: 30_000 });
      readyzDuring = (await getJson(`${blue.url}/readyz`)).status;
      await waitFor(() => clients.every((c) => c.hints.length >= 1), { timeoutMs: 30_000, what: "every client's reconnect hint" });
      return {};
    });
    assert.equal(drainCmd.code, 0, `seqcast drain exit status (stderr: ${drainCmd.stderr})`);
    assert.equal(readyzDuring, 503, "blue's /readyz is 503 while it drains");
    const { clients } = result;
    const hintTimes = clients.map((c, k) => {
      assert.equal(c.hints.length, 1, `client ${k} got one reconnect hint`);
      return c.hints[0].at;
    });
    assert.ok(spanMs(hintTimes) >= (windowS * 1000) / 2, `hints span ${fmtMs(spanMs(hintTimes))} of the ${windowS} s window`);
    assert.ok(densest(hintTimes, 100) <= Math.ceil(CLIENTS * 0.3), `hints not bunched (peak ${densest(hintTimes, 100)}/100 ms)`);

    assert.ok(blue.alive, "blue still runs after the drain");
    await waitFor(async () => (await scrape(blue.url)).value("seqcast_connections") === 0, {
      timeoutMs: 30_000,
      what: "0 WebSocket connections on blue",
    });
    // Once its clients are gone, blue is ready again (it was only draining).
    await waitFor(async () => (await getJson(`${blue.url}/readyz`)).status === 200, { timeoutMs: 30_000, what: "blue ready again after the drain" });
    const blueMetrics = await scrape(blue.url);
    assert.equal(blueMetrics.value("seqcast_connections"), 0, "blue has no WebSocket connection");
    assert.equal(blueMetrics.value("seqcast_draining"), 0, "blue is no longer draining");
    t.diagnostic(
      `operator drain: \`seqcast drain\` printed ${JSON.stringify(drainCmd.stdout.trim())}; hints ` +
        `${fmtMs(Math.min(...hintTimes) - drainAt)} … ${fmtMs(Math.max(...hintTimes) - drainAt)} after the command started; n=${result.n}; ` +
        `green PostgreSQL during the switch: ${JSON.stringify(result.greenPgDuringSwitch)}`,
    );
  });

  test("/metrics is valid Prometheus text and its counters move with publishes and deliveries", { timeout: 60_000 }, async (t) => {
    // The parser itself rejects what it should.
    const good = "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"0.1\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.3\nh_seconds_count 2\n# TYPE c_total counter\nc_total 3\n";
    assert.equal(parsePrometheus(good).histogram("h_seconds").count, 2);
    const bad = {
      "not cumulative": good.replace('le="+Inf"} 2', 'le="+Inf"} 0').replace("count 2", "count 0"),
      "+Inf differs from _count": good.replace("count 2", "count 3"),
      "no +Inf": good.replace('h_seconds_bucket{le="+Inf"} 2\n', ""),
      "bad value": good.replace("c_total 3", "c_total three"),
      "negative counter": good.replace("c_total 3", "c_total -1"),
      "second TYPE": `${good}# TYPE c_total counter\n`,
      "split family": `${good}h_seconds_sum 1\n`,
      "unquoted label": good.replace('le="0.1"', "le=0.1"),
      "no final newline": good.slice(0, -1),
    };
    for (const [why, text] of Object.entries(bad)) assert.throws(() => parsePrometheus(text), undefined, `parser accepts: ${why}`);

    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "metrics" });
    t.after(() => node.stop());
    const channel = uniqueName("metrics");
    const subscribers = await Promise.all([wsClient(node.wsUrl), wsClient(node.wsUrl)]);
    t.after(() => Promise.all(subscribers.map((ws) => ws.close())));
    for (const ws of subscribers) assert.equal((await ws.subscribe(channel)).type, "subscribed");

    const before = await scrape(node.url);
    assert.equal(before.value("seqcast_connections"), 2);
    assert.equal(before.value("seqcast_subscriptions"), 2);
    assert.equal(before.value("seqcast_channels"), 1);
    assert.equal(before.value("seqcast_draining"), 0);
    for (const name of ["seqcast_publish_seconds", "seqcast_commit_batch_messages", "seqcast_delivery_lag_seconds"]) {
      assert.ok(before.histogram(name), `${name} is a histogram`);
    }
    for (const name of ["seqcast_publish_ok_total", "seqcast_deliveries_total", "seqcast_pg_queries_total", "seqcast_replay_pg_queries_total"]) {
      assert.equal(before.families.get(name)?.type, "counter", `${name} is a counter`);
    }

    const k = 40;
    // Half one by one, half concurrently (group commit may batch them).
    for (let i = 1; i <= k / 2; i++) assert.equal((await publish(node.url, channel, { i })).status, 201);
    const rest = await Promise.all(range(k / 2 + 1, k).map((i) => publish(node.url, channel, { i })));
    assert.deepEqual(rest.map((r) => r.status), new Array(k / 2).fill(201));
    await waitFor(() => subscribers.every((ws) => ws.collect(channel).length >= k), { timeoutMs: 30_000, what: `both subscribers to get ${k}` });
    await waitFor(async () => (await scrape(node.url)).value("seqcast_deliveries_total") >= before.value("seqcast_deliveries_total") + 2 * k, {
      timeoutMs: 10_000,
      what: "deliveries counted",
    });

    const after = await scrape(node.url);
    const delta = (name) => after.value(name) - before.value(name);
    const hdelta = (name, field) => after.histogram(name)[field] - before.histogram(name)[field];
    assert.equal(delta("seqcast_publish_ok_total"), k, "publish_ok_total moved by the publishes");
    assert.equal(delta("seqcast_deliveries_total"), 2 * k, "deliveries_total moved by messages × subscribers");
    assert.equal(hdelta("seqcast_publish_seconds", "count"), k, "publish latency observed once per publish");
    assert.ok(hdelta("seqcast_publish_seconds", "sum") > 0, "publish latency sum grew");
    assert.equal(hdelta("seqcast_commit_batch_messages", "sum"), k, "batch sizes add up to the messages committed");
    const batches = hdelta("seqcast_commit_batch_messages", "count");
    assert.ok(batches >= 1 && batches <= k, `commit batches: ${batches}`);
    assert.ok(hdelta("seqcast_delivery_lag_seconds", "count") >= 1, "delivery lag observed");
    assert.equal(delta("seqcast_publish_rejected_total"), 0);
    assert.equal(delta("seqcast_publish_unavailable_total"), 0);
    t.diagnostic(
      `metrics: ${after.families.size} families; ${k} publishes in ${batches} commit batches; ` +
        `delivery lag observations +${hdelta("seqcast_delivery_lag_seconds", "count")}`,
    );
  });

  test("heartbeats: an idle client behind the proxy gets pings every second; a peer that stops answering WebSocket pings is closed by the server", { timeout: 90_000 }, async (t) => {
    const heartbeatS = 1;
    const idleLimitMs = (2 * heartbeatS + 5) * 1000;
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "heartbeat", args: ["--heartbeat-seconds", String(heartbeatS)] });
    t.after(() => node.stop());
    const proxy = await startFaultProxy({ upstreamPort: node.port });
    t.after(() => proxy.close());
    const channel = uniqueName("hb");

    // An idle subscriber: its `ws` answers WebSocket pings by itself.
    const idle = await wsClient(proxy.wsUrl);
    t.after(() => idle.close());
    const welcome = await idle.next((f) => f.type === "welcome");
    assert.equal(welcome.heartbeat_seconds, heartbeatS);
    assert.equal((await idle.subscribe(channel)).type, "subscribed");
    const pingsFrom = idle.frames.length;
    const pings = () => idle.frames.slice(pingsFrom).filter((f) => f.type === "ping").length;
    const idleAt = Date.now();
    await waitFor(() => pings() >= 2, { timeoutMs: 3_000, what: `2 pings within 3 s (got ${pings()})` });
    const twoPingsMs = Date.now() - idleAt;

    // Dead peer 1: a `ws` client behind the proxy whose socket stops reading,
    // so it never answers the server's ping frames.
    const paused = await wsClient(proxy.wsUrl);
    t.after(() => paused.socket.terminate());
    assert.equal((await paused.subscribe(channel)).type, "subscribed");
    // Dead peer 2: a raw TCP client straight to the node that completes the
    // upgrade, then never reads or writes again.
    const raw = await rawUpgrade(node.port);
    t.after(() => raw.socket.destroy());
    assert.equal(raw.status, 101, "the raw client's upgrade is accepted");
    await waitFor(async () => (await scrape(node.url)).value("seqcast_connections") === 3, { timeoutMs: 10_000, what: "3 connections" });
    paused.socket._socket.pause();
    raw.socket.pause();
    const deadAt = Date.now();

    // The server closes both: their TCP connections leave ESTABLISHED (the
    // FIN reaches the client's kernel even though nobody reads).
    const pausedLocal = paused.socket._socket.localPort;
    const limitMs = idleLimitMs + 4_000;
    const closedAt = {};
    await waitFor(
      () => {
        if (!closedAt.paused && !tcpEstablished(pausedLocal, proxy.port)) closedAt.paused = Date.now();
        if (!closedAt.raw && !tcpEstablished(raw.localPort, node.port)) closedAt.raw = Date.now();
        return closedAt.paused && closedAt.raw;
      },
      { timeoutMs: limitMs, intervalMs: 50, what: `the server to close both silent peers within ${limitMs} ms (${JSON.stringify(closedAt)})` },
    );
    await waitFor(async () => (await scrape(node.url)).value("seqcast_connections") === 1, { timeoutMs: 5_000, what: "only the idle connection left" });
    // Reading again shows the end of both streams.
    raw.socket.resume();
    paused.socket._socket.resume();
    await withTimeout(raw.ended, 5_000, "the raw client's stream to end");
    await withTimeout(paused.closed, 5_000, "the paused client's close");

    // The idle client that answers pings is untouched and still gets pings.
    assert.ok(idle.isOpen, "the idle client that answers pings is still connected");
    const pingsNow = pings();
    await waitFor(() => pings() > pingsNow, { timeoutMs: 3_000, what: "another ping to the idle client" });
    t.diagnostic(
      `heartbeat ${heartbeatS} s: 2 pings after ${fmtMs(twoPingsMs)}; ${pings()} pings in ${fmtMs(Date.now() - idleAt)}; ` +
        `silent peers closed after ${fmtMs(closedAt.paused - deadAt)} (ws behind the proxy) and ${fmtMs(closedAt.raw - deadAt)} (raw TCP) ` +
        `(2×heartbeat+5 s = ${idleLimitMs} ms)`,
    );
  });
});

// ---------------------------------------------------------------------------
// Raw TCP helpers for the dead-peer test

/** Completes a WebSocket upgrade on a raw TCP socket: {socket, status, localPort, ended}. */
async function rawUpgrade(port) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 10_000, "raw connect");
  const key = crypto.randomBytes(16).toString("base64");
  socket.write(
    "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = Buffer.alloc(0);
  const ended = new Promise((resolve) => {
    socket.once("end", resolve);
    socket.once("close", resolve);
  });
  await withTimeout(
    new Promise((resolve) => {
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        if (head.includes("\r\n\r\n")) {
          socket.off("data", onData);
          resolve();
        }
      };
      socket.on("data", onData);
    }),
    10_000,
    "the upgrade answer",
  );
  socket.on("data", () => {}); // once resumed, whatever comes is dropped
  const status = Number(head.toString("latin1").split(" ")[1]);
  return { socket, status, localPort: socket.localPort, ended };
}

/** Whether a TCP connection 127.0.0.1:localPort → 127.0.0.1:remotePort is ESTABLISHED (from /proc/net/tcp). */
function tcpEstablished(localPort, remotePort) {
  const hex = (p) => p.toString(16).toUpperCase().padStart(4, "0");
  const local = `0100007F:${hex(localPort)}`;
  const remote = `0100007F:${hex(remotePort)}`;
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local && cols[2] === remote) return cols[3] === "01";
  }
  return false;
}
