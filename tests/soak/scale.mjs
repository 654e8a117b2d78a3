// The soak's scale profile: the deployment seqcast is for, at size.
//
//   node tests/soak/soak.mjs --scale [--seed S] [--connections C] [--channels K] [--messages N]
//
// 8,000 resuming subscribers (two bench/ load generator processes) over 50
// channels reach the nodes through a switchable proxy in a process of its own
// (the load balancer; one process holds at most ~20,000 descriptors). A
// publisher posts N messages per channel through a second proxy that switches
// with the first (so that the first counts only subscribers), each with an
// Idempotency-Key, retried until acknowledged. While it publishes:
//
//   1. blue/green swap: the proxy sends new connections to green, blue gets
//      SIGTERM and drains (its clients are told to reconnect, spread over the
//      drain window, then closed) and must exit 0;
//   2. blue comes back, the proxy sends new connections to blue, and green is
//      killed with SIGKILL (its clients find out by themselves and back off).
//
// Then every subscriber must hold exactly 1..N of its channel, once, in order,
// with no reset, and the log must hold exactly 1..N per channel. The report
// gives the reconnects per second around each switch and what each switch cost
// the node taking the clients in PostgreSQL reads (its own counters), which
// must grow with channels, not with clients.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

import { REPO, adminDatabaseUrl, fetchMetrics, freePort, freshDatabase, psql, waitFor } from "../e2e/harness.mjs";
import { startFaultProxy } from "../e2e/fault_proxy.mjs";
import { rngFor, sleep } from "./lib.mjs";
import { soakNode } from "./node_process.mjs";

const LOADGEN = process.env.SEQCAST_LOADGEN || path.join(REPO, "build-bench/bench/seqcast-loadgen");
const PROXY = path.join(REPO, "tests/e2e/fault_proxy.mjs");
const DRAIN_WINDOW_SECONDS = 10;
const LOADGEN_PROCESSES = 2;
const PUBLISHERS = 16; // concurrent publish requests

// Reads that a switch costs the node taking the clients: the read pool's
// round trips, less those live ingest makes for the messages published meanwhile.
const COUNTERS = [
  "seqcast_pg_queries_total",
  "seqcast_ingest_fetches_total",
  "seqcast_replay_pg_queries_total",
  "seqcast_replay_pg_messages_total",
  "seqcast_replay_cache_messages_total",
  "seqcast_replay_memory_messages_total",
  "seqcast_hub_read_retries_total",
];

const monoSeconds = () => Number(process.hrtime.bigint()) / 1e9; // CLOCK_MONOTONIC, as the load generator's

/** The proxy as a child process, driven by its stdin commands. */
async function startProxyProcess(upstreamPort, logPath) {
  const port = await freePort();
  const proc = spawn(process.execPath, [PROXY, String(port), String(upstreamPort)], { stdio: ["pipe", "pipe", "pipe"] });
  const log = fs.createWriteStream(logPath);
  proc.stderr.pipe(log);
  const waiting = [];
  let started;
  const up = new Promise((resolve) => (started = resolve));
  readline.createInterface({ input: proc.stdout }).on("line", (line) => {
    log.write(line + "\n");
    if (line.startsWith("fault proxy")) return started();
    const next = waiting.shift();
    if (next) next(JSON.parse(line));
  });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  await Promise.race([up, exited.then((code) => Promise.reject(new Error(`proxy exited (${code}) at start`)))]);
  const command = (text) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      proc.stdin.write(text + "\n");
    });
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    url: `http://127.0.0.1:${port}`,
    setUpstream: (p) => command(`upstream ${p}`),
    openTo: async (p) => (await command(`open ${p}`)).open,
    async close() {
      proc.stdin.end();
      await exited;
      log.end();
    },
  };
}

function startLoadgen(args, logPath) {
  const proc = spawn(LOADGEN, ["resume", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.pipe(fs.createWriteStream(logPath));
  const done = new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (code, signal) => {
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()));
      } catch {
        reject(new Error(`load generator exited (${code ?? signal}) without a result: ${stdout.slice(0, 300)}`));
      }
    });
  });
  return { proc, done };
}

async function counters(node) {
  const m = await fetchMetrics(node.url);
  return Object.fromEntries(COUNTERS.map((k) => [k, m[k] ?? 0]));
}

function delta(after, before) {
  return Object.fromEntries(COUNTERS.map((k) => [k, after[k] - before[k]]));
}

/**
 * Publishes `messages` per channel, `rate` per second in all, through `url`,
 * each under its own Idempotency-Key and retried until 200/201. Resolves with
 * {acked, retries, seqs: Map(channel -> Set of seqs)}; `stats` shows the
 * progress meanwhile.
 */
async function publishAll({ url, channelNames, messages, rate, seed, stopped, stats }) {
  const jobs = [];
  for (let i = 1; i <= messages; i++) for (const c of channelNames) jobs.push({ channel: c, i });
  const seqs = new Map(channelNames.map((c) => [c, new Set()]));
  Object.assign(stats, { acked: 0, retries: 0, why: {}, done: false });
  const t0 = Date.now();
  let next = 0;
  async function worker() {
    while (next < jobs.length && !stopped()) {
      const n = next++;
      const due = t0 + (n * 1000) / rate;
      if (due > Date.now()) await sleep(due - Date.now());
      const { channel, i } = jobs[n];
      const key = `scale-${seed}-${channel}-${i}`;
      const body = JSON.stringify({ i, channel, pad: "x".repeat(64) });
      for (;;) {
        let why;
        try {
          const res = await fetch(`${url}/v1/channels/${encodeURIComponent(channel)}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          const text = await res.text();
          if (res.status === 200 || res.status === 201) {
            const seq = JSON.parse(text).seq;
            if (seqs.get(channel).has(seq)) throw new Error(`${channel}: seq ${seq} acknowledged twice`);
            seqs.get(channel).add(seq);
            stats.acked += 1;
            break;
          }
          if (res.status !== 503) throw new Error(`publish to ${channel} answered ${res.status}: ${text.slice(0, 200)}`);
          why = "503";
        } catch (err) {
          if (err.message.startsWith("publish to") || err.message.includes("acknowledged twice")) throw err;
          why = err.cause?.code ?? err.name;
        }
        stats.retries += 1;
        stats.why[why] = (stats.why[why] ?? 0) + 1;
        if (stopped()) return;
        await sleep(50);
      }
    }
  }
  await Promise.all(Array.from({ length: PUBLISHERS }, worker));
  stats.done = true;
  return { ...stats, seqs, jobs: jobs.length };
}

function histogram(perSecond, from, to) {
  const rows = [];
  for (let s = Math.floor(from); s <= Math.floor(to); s++) rows.push([s - Math.floor(from), perSecond.get(s) ?? 0]);
  return rows;
}

export async function runScale({ seed = 1, connections = 8000, channels = 50, messages = 240, rate = 200, log = console.log } = {}) {
  if (!fs.existsSync(LOADGEN)) {
    throw new Error(`no load generator at ${LOADGEN}: cmake -S . -B build-bench -DSEQCAST_BENCH=ON -DSEQCAST_BUILD_TESTS=OFF && cmake --build build-bench --target seqcast-loadgen`);
  }
  const t0 = Date.now();
  const say = (text) => log(`[scale ${seed} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${text}`);
  const artifacts = path.join(REPO, "tests/artifacts/soak", `scale-${seed}`);
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const rng = rngFor(seed, "scale");
  const prefix = `scale-${seed}-${Math.floor(rng() * 1e6)}-`;
  const channelNames = Array.from({ length: channels }, (_, i) => `${prefix}${i}`);
  const databaseUrl = await freshDatabase(await adminDatabaseUrl());

  const nodeArgs = ["--drain-delay-seconds", "0", "--drain-window-seconds", String(DRAIN_WINDOW_SECONDS), "--max-connections", "19000"];
  const make = (name) =>
    soakNode({ name, databaseUrl, args: nodeArgs, logPath: path.join(artifacts, `${name}.log`), cacheDir: path.join(artifacts, `${name}-cache`) });
  const blue = await make("blue");
  const green = await make("green");
  let proxy;
  let publishProxy;
  const loadgens = [];
  let publishing;
  let stopPublishing = false;
  try {
    await blue.start();
    await green.start();
    proxy = await startProxyProcess(blue.port, path.join(artifacts, "proxy.log"));
    publishProxy = await startFaultProxy({ upstreamPort: blue.port });
    say(`blue :${blue.port}, green :${green.port}, proxy :${proxy.port}; ${connections} subscribers over ${channels} channels`);

    const per = Math.ceil(connections / LOADGEN_PROCESSES);
    const expectedTimeout = Math.ceil((channels * messages) / rate) + 240;
    for (let k = 0; k < LOADGEN_PROCESSES; k++) {
      const count = Math.min(per, connections - k * per);
      const ready = path.join(artifacts, `loadgen-${k}.ready`);
      const args = ["--ws", proxy.wsUrl, "--connections", String(count), "--channels", String(channels), "--prefix", prefix,
        "--first-index", String(k * per), "--expect", String(messages), "--timeout", String(expectedTimeout),
        "--seed", String(seed * 10 + k), "--ready-file", ready];
      loadgens.push({ ready, count, ...startLoadgen(args, path.join(artifacts, `loadgen-${k}.log`)) });
    }
    await waitFor(() => loadgens.every((g) => fs.existsSync(g.ready)), { timeoutMs: 180_000, intervalMs: 200, what: "every subscriber subscribed" });
    const subscribedAll = loadgens.reduce((n, g) => n + Number(fs.readFileSync(g.ready, "utf8")), 0);
    if (subscribedAll !== connections) throw new Error(`only ${subscribedAll} of ${connections} subscribed`);
    await waitFor(async () => (await proxy.openTo(blue.port)) === connections, { timeoutMs: 30_000, what: `${connections} connections open to blue` });
    say(`${connections} subscribed through the proxy to blue; publishing ${messages} per channel at ${rate}/s`);

    const progress = {};
    publishing = publishAll({ url: publishProxy.url, channelNames, messages, rate, seed, stopped: () => stopPublishing, stats: progress });
    // Every client open to `port`, or (a run too short for its switches) the
    // publishing over and the complete subscribers gone: then the run fails.
    const everyClientOn = async (port, what) => {
      await waitFor(async () => progress.done || (await proxy.openTo(port)) === connections, { timeoutMs: 60_000, intervalMs: 200, what });
      if (progress.done) throw new Error(`publishing ended before ${what}: give the run more --messages or a lower --rate`);
    };
    const switches = [];
    await sleep(8_000);

    // 1. Swap to green, drain blue.
    {
      const before = await counters(green);
      const at = monoSeconds();
      await proxy.setUpstream(green.port);
      publishProxy.setUpstream(green.port);
      const exit = await blue.term(DRAIN_WINDOW_SECONDS * 1000 + 30_000);
      await everyClientOn(green.port, "every client was on green");
      const moved = monoSeconds();
      const cost = delta(await counters(green), before);
      switches.push({ name: "blue/green swap, blue drained (SIGTERM)", at, moved, exit, cost });
      say(`swap: blue exited ${JSON.stringify({ code: exit.code, signal: exit.signal })} after ${(moved - at).toFixed(1)} s; green: ${JSON.stringify(cost)}`);
      if (exit.code !== 0) throw new Error(`blue did not exit 0 after its drain: ${JSON.stringify(exit)}\n${blue.tail()}`);
    }

    // 2. Blue back, swap to it, SIGKILL green.
    {
      await blue.start();
      await sleep(3_000); // apart from the first switch's reconnects
      const before = await counters(blue);
      const at = monoSeconds();
      await proxy.setUpstream(blue.port);
      publishProxy.setUpstream(blue.port);
      const exit = await green.kill();
      await everyClientOn(blue.port, "every client was back on blue");
      const moved = monoSeconds();
      const cost = delta(await counters(blue), before);
      switches.push({ name: "swap back to blue, green killed (SIGKILL)", at, moved, exit, cost });
      say(`kill: every client back on blue after ${(moved - at).toFixed(1)} s; blue: ${JSON.stringify(cost)}`);
    }

    const published = await publishing;
    say(`published ${published.acked}/${published.jobs} (${published.retries} retries ${JSON.stringify(published.why)})`);
    const results = await Promise.all(loadgens.map((g) => g.done));
    const sum = (k) => results.reduce((n, r) => n + r[k], 0);
    const perSecond = new Map();
    for (const r of results) for (const [s, n] of Object.entries(r.reconnects_per_second)) perSecond.set(Number(s), (perSecond.get(Number(s)) ?? 0) + n);
    const endedBy = {};
    for (const r of results) for (const [k, n] of Object.entries(r.ended_by)) endedBy[k] = (endedBy[k] ?? 0) + n;

    // The log: exactly 1..N per channel.
    const rows = await psql(databaseUrl, `SELECT c.name, count(*), min(m.seq), max(m.seq) FROM seqcast.messages m JOIN seqcast.channels c ON c.id = m.channel_id GROUP BY c.name`);
    const logProblems = [];
    const byChannel = new Map(rows.split("\n").filter(Boolean).map((l) => {
      const [c, n, lo, hi] = l.split("|");
      return [c, { n: Number(n), lo: Number(lo), hi: Number(hi) }];
    }));
    for (const c of channelNames) {
      const r = byChannel.get(c);
      if (!r || r.n !== messages || r.lo !== 1 || r.hi !== messages) logProblems.push(`${c}: ${JSON.stringify(r ?? null)}`);
      const s = published.seqs.get(c);
      if (s.size !== messages) logProblems.push(`${c}: ${s.size} distinct seqs acknowledged`);
    }

    const failures = [];
    if (published.acked !== channels * messages) failures.push(`${published.acked} of ${channels * messages} publishes acknowledged`);
    if (logProblems.length) failures.push(`log: ${logProblems.slice(0, 5).join("; ")}`);
    if (sum("complete") !== connections) failures.push(`${sum("complete")} of ${connections} subscribers hold 1..${messages}`);
    for (const k of ["gaps", "duplicates", "resets"]) if (sum(k) !== 0) failures.push(`${sum(k)} ${k}`);
    const errors = results.flatMap((r) => r.first_errors);
    // PostgreSQL reads a switch costs beyond live ingest: per channel, not per client.
    const readBound = 10 * channels;
    for (const s of switches) {
      s.reads = s.cost.seqcast_pg_queries_total - s.cost.seqcast_ingest_fetches_total;
      if (s.reads > readBound) failures.push(`${s.name}: ${s.reads} PostgreSQL reads beyond live ingest (bound ${readBound}, ${channels} channels, ${connections} clients)`);
    }

    const lines = [
      `scale profile seed ${seed}: ${failures.length ? "FAILED" : "OK"} in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
      `  ${connections} subscribers over ${channels} channels; ${published.acked}/${channels * messages} publishes acknowledged (${published.retries} retries ${JSON.stringify(published.why)})`,
      `  subscribers holding exactly 1..${messages}: ${sum("complete")}; deliveries ${sum("deliveries")}; gaps ${sum("gaps")}, duplicates ${sum("duplicates")}, resets ${sum("resets")}; reconnects ${sum("reconnects")}; connections ended by ${JSON.stringify(endedBy)}`,
    ];
    for (const s of switches) {
      const h = histogram(perSecond, s.at, s.moved);
      lines.push(`  ${s.name}: every client moved in ${(s.moved - s.at).toFixed(1)} s`);
      lines.push(`    reconnects per second after the switch: ${h.map(([t, n]) => `${t}:${n}`).join(" ")}`);
      lines.push(`    PostgreSQL reads on the node taking them: ${s.reads} beyond live ingest (${s.cost.seqcast_pg_queries_total} read-pool round trips, ${s.cost.seqcast_ingest_fetches_total} by live ingest); replay: ${s.cost.seqcast_replay_pg_queries_total} range reads of ${s.cost.seqcast_replay_pg_messages_total} rows, ${s.cost.seqcast_replay_cache_messages_total} messages from the cache, ${s.cost.seqcast_replay_memory_messages_total} from memory`);
    }
    if (errors.length) lines.push(`  first errors: ${errors.slice(0, 5).join(" | ")}`);
    for (const f of failures) lines.push(`  FAILED: ${f}`);
    lines.push(`  logs: ${artifacts}`);
    const report = lines.join("\n");
    fs.writeFileSync(path.join(artifacts, "report.txt"), report + "\n");
    fs.writeFileSync(path.join(artifacts, "result.json"), JSON.stringify({ switches, results, published: { ...published, seqs: undefined } }, null, 1) + "\n");
    return { ok: failures.length === 0, report };
  } catch (err) {
    const report = `scale profile seed ${seed}: FAILED in ${((Date.now() - t0) / 1000).toFixed(1)}s\n  ${err.stack ?? err}\n  logs: ${artifacts}`;
    fs.writeFileSync(path.join(artifacts, "report.txt"), report + "\n");
    return { ok: false, report };
  } finally {
    stopPublishing = true;
    await publishing?.catch(() => {});
    for (const g of loadgens) if (g.proc.exitCode === null) g.proc.kill("SIGKILL");
    await proxy?.close();
    await publishProxy?.close();
    await blue.close();
    await green.close();
  }
}
