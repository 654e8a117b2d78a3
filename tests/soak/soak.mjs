// The random-fault soak test of seqcast.
//
//   node tests/soak/soak.mjs --seed S --minutes M [--short]
//   (--short: 45 s of faults; --seconds N also works; exit 0 = every invariant held)
//   node tests/soak/soak.mjs --scale   the scale profile (tests/soak/scale.mjs); --help says more
//
// One private PostgreSQL, one database, 3 nodes, each reaching PostgreSQL
// through its own fault proxy and fronted by a client-side fault proxy.
// Publishers POST to random nodes with a unique Idempotency-Key per message
// and retry until 200/201; subscribers of three kinds (raw WebSocket, SSE,
// the bundled JS client) resume across disconnects. A seeded PRNG chooses the
// fault schedule, the payloads, the targets. When the faults stop and
// everything has healed, the checker compares what was acknowledged, what is
// in the log and what every subscriber received (see checkRun below).
// On failure: the seed, the schedule, the first violated invariant, and the
// node logs kept in tests/artifacts/soak/<seed>/.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { REPO, freshDatabase, waitFor } from "../e2e/harness.mjs";
import { startFaultProxy } from "../e2e/fault_proxy.mjs";
import { startReplicatedPostgres } from "../e2e/replication.mjs";
import { rngFor, sleep, md5, makePayload, canonical, fmtMs } from "./lib.mjs";
import { soakNode } from "./node_process.mjs";
import { ClientSubscriber, RawWsSubscriber, SseSubscriber } from "./subscribers.mjs";

const execFileP = promisify(execFile);

export const ARTIFACTS_ROOT = path.join(REPO, "tests/artifacts/soak");
const MAX_PAYLOAD = 262_144;
const SEND_QUEUE = 2 * 1024 * 1024; // 8 × the largest payload
const RETENTION_MESSAGES = 60;
const HEARTBEAT_SECONDS = 2;
// soak.quiet gets a message only now and then (and right after a node's
// backends are terminated, through another node): a node that misses a NOTIFY
// there has no later message to notice the gap by.
const CHANNELS = ["soak.hot", "soak.big", "soak.mix", "soak.del", "soak.quiet"];
const BUSY_CHANNELS = CHANNELS.filter((c) => c !== "soak.quiet");
const NODES = 3;
const SANITIZER_REPORT = /ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:/;

async function psqlRows(url, sql) {
  const { stdout } = await execFileP("psql", [url, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql], {
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

// ---------------------------------------------------------------------------
// Publishing

function payloadSize(rng, channel) {
  if (channel === "soak.big") {
    return rng.weighted([
      [rng.int(30, 2_000), 3],
      [rng.int(20_000, MAX_PAYLOAD - 1), 5],
      [MAX_PAYLOAD, 1],
    ]);
  }
  return rng.weighted([
    [rng.int(30, 300), 60],
    [rng.int(300, 8_192), 25],
    [rng.int(8_192, 65_536), 10],
    [rng.int(65_536, MAX_PAYLOAD - 1), 4],
    [MAX_PAYLOAD, 1],
  ]);
}

class Publishers {
  constructor(world, seed, count) {
    this.world = world;
    this.seed = seed;
    this.count = count;
    this.serial = 0;
    this.inFlight = new Set();
    this.loops = [];
  }

  newAttempt(channel, rng, size) {
    this.serial += 1;
    const key = `s${this.seed}-${this.serial}-${rng.int(0, 1e9).toString(36)}`;
    const text = makePayload(rng, key, size);
    const attempt = { key, channel, text, md5: md5(text), canonMd5: md5(canonical(text)), bytes: Buffer.byteLength(text), tFirst: this.world.t(), tries: 0, ack: null, gaveUp: false };
    this.world.attempts.set(key, attempt);
    this.world.stats.published += 1;
    this.world.stats.publishedBytes += attempt.bytes;
    return attempt;
  }

  /**
   * POSTs until 200/201, or until the world's publish deadline: through random
   * client proxies, or through random ones of `via` ([{url}], e.g. nodes).
   */
  async deliver(attempt, rng, via = null) {
    const world = this.world;
    const p = (async () => {
      for (;;) {
        attempt.tries += 1;
        const proxy = via ? rng.pick(via) : world.pickClientProxy(rng);
        let status;
        let text = "";
        let why = "";
        try {
          const res = await fetch(`${proxy.url}/v1/channels/${encodeURIComponent(attempt.channel)}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": attempt.key },
            body: attempt.text,
            signal: AbortSignal.timeout(6_000),
          });
          text = await res.text();
          status = res.status;
        } catch (err) {
          why = err.cause?.code ?? err.name ?? String(err);
        }
        if (status === 200 || status === 201) {
          let body = null;
          try {
            body = JSON.parse(text);
          } catch {
            // reported below
          }
          if (!body || body.channel !== attempt.channel || !Number.isSafeInteger(body.seq) || typeof body.epoch !== "string") {
            world.violate("publisher", `publish of ${attempt.key} answered ${status} with a bad body: ${text.slice(0, 200)}`);
            return;
          }
          if (status === 200 && attempt.tries === 1) {
            world.violate("publisher", `first publish of the fresh key ${attempt.key} answered 200 (a retry) at ${attempt.channel}#${body.seq}`);
          }
          world.recordAck(attempt, { status, epoch: body.epoch, seq: body.seq, t: world.t(), tries: attempt.tries });
          return;
        }
        if (status !== undefined && status !== 503) {
          world.violate("publisher", `publish of ${attempt.key} (${attempt.bytes} bytes) to ${attempt.channel} answered ${status}: ${text.slice(0, 300)}`);
          return;
        }
        world.stats.publishRetries += 1;
        const reason = status === 503 ? "503" : why;
        world.stats.publishRetryReasons[reason] = (world.stats.publishRetryReasons[reason] ?? 0) + 1;
        if (Date.now() > world.publishDeadline) {
          attempt.gaveUp = true;
          world.stats.publishGaveUp += 1;
          return;
        }
        await sleep(rng.int(30, 300));
      }
    })();
    this.inFlight.add(p);
    try {
      await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  async burst(rng, channel, n, sizeOf) {
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push(this.deliver(this.newAttempt(channel, rng, sizeOf()), rng));
    await Promise.all(jobs);
  }

  /** A burst of big messages on soak.big, more bytes than one send queue. */
  bigBurst(rng) {
    const n = rng.int(9, 14);
    this.world.stats.bigBursts += 1;
    return this.burst(rng, "soak.big", n, () => rng.int(180_000, MAX_PAYLOAD));
  }

  /** One message on soak.quiet, through `via` (default: the client proxies). */
  quiet(rng, via = null) {
    this.world.stats.quietPublishes += 1;
    return this.deliver(this.newAttempt("soak.quiet", rng, rng.int(30, 2_000)), rng, via);
  }

  start() {
    const qrng = rngFor(this.seed, "publisher-quiet");
    this.loops.push(
      (async () => {
        while (this.world.loadRunning) {
          await sleep(qrng.int(4_000, 12_000));
          if (this.world.loadRunning) await this.quiet(qrng);
        }
      })(),
    );
    for (let i = 0; i < this.count; i++) {
      const rng = rngFor(this.seed, `publisher-${i}`);
      this.loops.push(
        (async () => {
          while (this.world.loadRunning) {
            const kind = rng.weighted([["one", 90], ["burst", 7], ["big", 3]]);
            if (kind === "one") {
              const channel = rng.weighted([["soak.hot", 45], ["soak.mix", 25], ["soak.big", 12], ["soak.del", 18]]);
              await this.deliver(this.newAttempt(channel, rng, payloadSize(rng, channel)), rng);
            } else if (kind === "burst") {
              const channel = rng.pick(BUSY_CHANNELS);
              await this.burst(rng, channel, rng.int(5, 25), () => payloadSize(rng, channel === "soak.big" ? "soak.mix" : channel));
            } else {
              await this.bigBurst(rng);
            }
            await sleep(rng.int(20, 250));
          }
        })(),
      );
    }
  }

  async stop(timeoutMs) {
    this.world.loadRunning = false;
    this.world.publishDeadline = Date.now() + timeoutMs;
    await Promise.all(this.loops);
    await Promise.all([...this.inFlight]);
  }
}

// ---------------------------------------------------------------------------
// Faults

export const FAULT_WEIGHTS = [
  ["node_kill", 10],
  ["node_term", 6],
  ["node_stop", 8],
  ["pg_restart", 3],
  ["pg_terminate", 8],
  ["pg_partition", 7],
  ["pg_stall", 5],
  ["client_cut", 8],
  ["client_stall", 6],
  ["client_switch", 3],
  ["slow_consumer", 7],
  ["sub_offline", 6],
  ["channel_delete", 5],
  ["admin_drain", 3],
  ["pg_failover", 2],
];
const NODE_DOWN_FAULTS = new Set(["node_kill", "node_term", "node_stop"]);

/** Draws one fault: {kind, target, params, resources}. */
function drawFault(rng, subscriberIds, weights = FAULT_WEIGHTS) {
  const kind = rng.weighted(weights);
  const node = rng.int(0, NODES - 1);
  switch (kind) {
    case "node_kill":
      return { kind, target: node, params: { restartAfterMs: rng.int(200, 3_000), clearCache: rng.chance(0.5) }, resources: [`node${node}`] };
    case "node_term":
      return { kind, target: node, params: { restartAfterMs: rng.int(0, 2_000), clearCache: rng.chance(0.3) }, resources: [`node${node}`] };
    case "node_stop":
      return { kind, target: node, params: { ms: rng.int(1_000, 6_000) }, resources: [`node${node}`] };
    case "pg_restart":
      return { kind, target: "pg", params: { downMs: rng.int(300, 4_000) }, resources: ["pg"] };
    case "pg_terminate":
      return { kind, target: rng.chance(0.7) ? node : "all", params: {}, resources: [] };
    case "pg_partition":
      return { kind, target: node, params: { ms: rng.int(1_000, 6_000), mode: rng.chance(0.6) ? "refuse" : "blackhole" }, resources: [`pgproxy${node}`] };
    case "pg_stall":
      return { kind, target: node, params: { ms: rng.int(1_000, 4_000) }, resources: [`pgproxy${node}`] };
    case "client_cut":
      return { kind, target: rng.chance(0.75) ? node : "all", params: {}, resources: [] };
    case "client_stall":
      return { kind, target: node, params: { ms: rng.int(1_000, 6_000) }, resources: [`clientproxy${node}`] };
    case "client_switch": {
      const to = (node + rng.int(1, NODES - 1)) % NODES;
      return { kind, target: node, params: { to, ms: rng.int(2_000, 8_000) }, resources: [`clientproxy${node}`] };
    }
    case "slow_consumer": {
      const sub = rng.pick(subscriberIds);
      return { kind, target: sub, params: { ms: rng.int(2_000, 8_000), bigBurst: rng.chance(0.7) }, resources: [`sub:${sub}`] };
    }
    case "sub_offline": {
      const sub = rng.pick(subscriberIds);
      return { kind, target: sub, params: { ms: rng.int(3_000, 14_000) }, resources: [`sub:${sub}`] };
    }
    case "channel_delete":
      // Never beside a failover: its bookkeeping reads the epochs a DELETE would take.
      return { kind, target: rng.chance(0.5) ? "soak.del" : rng.pick(CHANNELS), params: {}, resources: ["epochs"] };
    case "admin_drain":
      return { kind, target: node, params: { windowSeconds: 1 }, resources: [`node${node}`] };
    case "pg_failover":
      // PostgreSQL itself changes hands: nothing else may stop, stall or cut it meanwhile.
      return { kind, target: "pg", params: {}, resources: ["pg", "epochs", ...Array.from({ length: NODES }, (_, i) => `pgproxy${i}`)] };
    default:
      throw new Error(kind);
  }
}

async function deleteChannel(world, rng, channel) {
  const entry = { channel, tStart: world.t(), tDone: Infinity, status: null };
  world.deletes.push(entry);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const proxy = world.pickClientProxy(rng);
    try {
      const res = await fetch(`${proxy.url}/v1/channels/${encodeURIComponent(channel)}`, { method: "DELETE", signal: AbortSignal.timeout(6_000) });
      const text = await res.text();
      if (res.status === 204) {
        entry.status = 204;
        entry.tDone = world.t();
        return entry;
      }
      if (res.status !== 503) {
        world.violate("admin", `DELETE ${channel} answered ${res.status}: ${text.slice(0, 200)}`);
        entry.status = res.status;
        return entry;
      }
    } catch {
      // retried
    }
    await sleep(rng.int(100, 400));
  }
  entry.status = "gave up";
  return entry;
}

class FaultScheduler {
  constructor(world, cluster, seed, { gapMs, weights = FAULT_WEIGHTS }) {
    this.weights = weights;
    this.world = world;
    this.cluster = cluster;
    this.rng = rngFor(seed, "faults");
    this.gapMs = gapMs;
    this.busy = new Set();
    this.running = new Set();
    this.schedule = [];
    this.downNodes = 0;
  }

  available(f) {
    if (f.resources.some((r) => this.busy.has(r))) return false;
    // Never all nodes down: at most NODES - 1 in a kill, stop or drain at once.
    if (NODE_DOWN_FAULTS.has(f.kind) && this.downNodes >= NODES - 1) return false;
    return true;
  }

  async execute(f) {
    const { cluster, world } = this;
    const node = typeof f.target === "number" ? cluster.nodes[f.target] : null;
    switch (f.kind) {
      case "node_kill":
        await node.kill();
        await sleep(f.params.restartAfterMs);
        return this.restart(node, f.params.clearCache);
      case "node_term": {
        const exit = await node.term(20_000);
        if (exit?.timedOut) world.violate(node.name, `did not exit within 20 s of SIGTERM (drain)`);
        else if (exit && exit.code !== 0) world.violate(node.name, `exited with code ${exit.code} signal ${exit.signal} after SIGTERM`);
        await sleep(f.params.restartAfterMs);
        return this.restart(node, f.params.clearCache);
      }
      case "node_stop":
        node.pause();
        await sleep(f.params.ms);
        node.resume();
        return;
      case "pg_restart":
        await cluster.pg.stop();
        await sleep(f.params.downMs);
        await cluster.pg.start();
        return;
      case "pg_failover": {
        // The primary dies, its synchronous standby is promoted; the proxies in front of
        // PostgreSQL now lead there (as a multi-host URL or a leader endpoint would).
        const tookMs = await cluster.pgPair.failover();
        for (const proxy of cluster.pgProxies) proxy.setUpstream(cluster.pgPair.primary.port);
        f.result = `promoted in ${tookMs} ms`;
        // Every channel is rebased at its first touch on the new timeline; touch each
        // now and note how its epochs map, so the checker knows which epoch changes a
        // failover explains (a later DELETE takes the table's rows with it).
        await touchChannels(world, cluster);
        await noteLineage(world, cluster);
        return;
      }
      case "pg_terminate": {
        const where = f.target === "all" ? `application_name LIKE 'seqcast%'` : `application_name = '${cluster.nodes[f.target].appName}'`;
        const rows = await psqlRows(cluster.pgAdminUrl, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE ${where}`).catch((err) => [[`error: ${err.message.split("\n")[0]}`]]);
        f.result = `terminated ${rows[0]?.[0]}`;
        // A message committed by another node while this one reconnects.
        if (f.target !== "all") {
          const others = cluster.nodes.filter((_, i) => i !== f.target);
          await cluster.publishers.quiet(rngFor(world.seed, `probe-${this.schedule.length}`), others);
        }
        return;
      }
      case "pg_partition": {
        const proxy = cluster.pgProxies[f.target];
        proxy.partition({ mode: f.params.mode });
        await sleep(f.params.ms);
        proxy.heal();
        return;
      }
      case "pg_stall":
        return cluster.pgProxies[f.target].stall(f.params.ms);
      case "client_cut": {
        const targets = f.target === "all" ? cluster.clientProxies : [cluster.clientProxies[f.target]];
        f.result = `cut ${targets.reduce((n, p) => n + p.cut(), 0)}`;
        return;
      }
      case "client_stall":
        return cluster.clientProxies[f.target].stall(f.params.ms);
      case "client_switch": {
        const proxy = cluster.clientProxies[f.target];
        proxy.setUpstream(cluster.nodes[f.params.to].port);
        await sleep(f.params.ms);
        proxy.setUpstream(cluster.nodes[f.target].port);
        return;
      }
      case "slow_consumer": {
        const sub = cluster.subscribers.find((s) => s.id === f.target);
        const paused = sub.pause(f.params.ms);
        f.result = paused ? "paused" : "not connected";
        const burst = f.params.bigBurst ? cluster.publishers.bigBurst(rngFor(world.seed, `burst-${this.schedule.length}`)) : null;
        await sleep(f.params.ms);
        if (burst) await burst;
        return;
      }
      case "sub_offline": {
        const sub = cluster.subscribers.find((s) => s.id === f.target);
        f.result = sub.goOffline(f.params.ms) ? "offline" : "not connected";
        await sleep(f.params.ms);
        return;
      }
      case "channel_delete": {
        // The DELETE takes the channel's `rewinds` rows with it: note them first.
        await noteLineage(world, cluster);
        const entry = await deleteChannel(world, this.rng, f.target);
        f.result = `status ${entry.status}`;
        return;
      }
      case "admin_drain": {
        try {
          const res = await fetch(`${node.url}/v1/admin/drain?window_seconds=${f.params.windowSeconds}`, { method: "POST", signal: AbortSignal.timeout(5_000) });
          await res.text();
          f.result = `status ${res.status}`;
          if (res.status !== 202) world.violate(node.name, `POST /v1/admin/drain answered ${res.status}`);
        } catch (err) {
          f.result = `failed: ${err.message}`;
        }
        await sleep(f.params.windowSeconds * 1000 + 500);
        return;
      }
      default:
        throw new Error(f.kind);
    }
  }

  async restart(node, clearCache) {
    try {
      await node.start({ clearCache, timeoutMs: 90_000 });
    } catch (err) {
      this.world.violate(node.name, `did not come back after a restart: ${err.message.split("\n")[0]}`);
    }
  }

  async run(durationMs) {
    const { world } = this;
    const subscriberIds = this.cluster.subscribers.map((s) => s.id);
    const end = world.t() + durationMs;
    while (world.t() < end && !world.stopFaults) {
      await sleep(this.rng.int(this.gapMs[0], this.gapMs[1]));
      if (world.t() >= end || world.stopFaults) break;
      const f = drawFault(this.rng, subscriberIds, this.weights);
      const entry = { t: world.t(), kind: f.kind, target: f.target, params: f.params };
      this.schedule.push(entry);
      if (!this.available(f)) {
        entry.skipped = true;
        continue;
      }
      for (const r of f.resources) this.busy.add(r);
      const down = NODE_DOWN_FAULTS.has(f.kind);
      if (down) this.downNodes += 1;
      world.stats.faults[f.kind] = (world.stats.faults[f.kind] ?? 0) + 1;
      const p = this.execute(f)
        .catch((err) => {
          entry.error = err.message.split("\n")[0];
        })
        .finally(() => {
          entry.end = world.t();
          if (f.result) entry.result = f.result;
          for (const r of f.resources) this.busy.delete(r);
          if (down) this.downNodes -= 1;
          this.running.delete(p);
        });
      this.running.add(p);
    }
    await Promise.all([...this.running]);
  }
}

// ---------------------------------------------------------------------------
// The run

function makeWorld(seed) {
  const t0 = Date.now();
  const world = {
    seed,
    t0,
    t: () => Date.now() - t0,
    violations: [],
    attempts: new Map(),
    acks: new Map(),
    positions: new Map(), // "channel|epoch|seq" -> key acked there
    deliveries: [],
    resetLog: [],
    deletes: [],
    // Failovers: "channel|epoch" -> {to, R}: seqs 1..R of `epoch` are the same
    // messages in epoch `to` (the channel was rebased onto a new timeline).
    lineage: new Map(),
    // Epoch changes a subscriber saw without a reset, checked against `lineage` at the end.
    transitions: [],
    loadRunning: true,
    publishDeadline: Infinity,
    stopFaults: false,
    silenceMs: 3 * HEARTBEAT_SECONDS * 1000,
    clientProxies: [],
    stats: {
      faults: {},
      published: 0,
      publishedBytes: 0,
      acked: 0,
      publishRetries: 0,
      publishRetryReasons: {},
      publishGaveUp: 0,
      bigBursts: 0,
      quietPublishes: 0,
      delivered: 0,
      reconnects: { ws: 0, sse: 0, client: 0 },
      resets: {},
      closeCodes: {},
      clientErrors: {},
      subscribeErrors: 0,
      longestCatchUp: null,
    },
    violate(who, message, details) {
      const v = { t: world.t(), who, message };
      if (details !== undefined) v.details = details;
      world.violations.push(v);
      if (world.violations.length === 1) {
        world.onFirstViolation?.(v);
      }
    },
    /** The epoch `epoch`'s message `seq` of `channel` is in now, following failovers. */
    canon(channel, epoch, seq) {
      for (let hops = 0; epoch !== null && hops < 100; hops++) {
        const next = world.lineage.get(`${channel}|${epoch}`);
        if (!next || seq > next.R) break;
        epoch = next.to;
      }
      return epoch;
    },
    /** Whether epoch `b` of `channel` continues `a` through failovers (or is `a`). */
    related(channel, a, b) {
      for (let hops = 0; a !== undefined && hops < 100; hops++) {
        if (a === b) return true;
        a = world.lineage.get(`${channel}|${a}`)?.to;
      }
      return false;
    },
    pickClientProxy(rng) {
      return rng.pick(world.clientProxies);
    },
    ackOf(key) {
      return world.acks.get(key);
    },
    recordAck(attempt, ack) {
      attempt.ack = ack;
      world.acks.set(attempt.key, { key: attempt.key, channel: attempt.channel, ...ack });
      world.stats.acked += 1;
      const pos = `${attempt.channel}|${ack.epoch}|${ack.seq}`;
      const owner = world.positions.get(pos);
      if (owner !== undefined && owner !== attempt.key) {
        world.violate("publisher", `two publishes acknowledged at ${attempt.channel}#${ack.seq} epoch ${ack.epoch}: ${owner} and ${attempt.key}`);
      }
      world.positions.set(pos, attempt.key);
    },
  };
  return world;
}

/**
 * Runs one soak: `durationMs` of faults, then heal, then check. Resolves with
 * {ok, seed, violations, schedule, summary, artifacts, report}; never throws
 * for a violated invariant (only for a broken setup).
 */
export async function runSoak({ seed, durationMs, log = (line) => console.log(line), keepArtifacts = false, headDeadlineMs, publishers = 3, weights } = {}) {
  if (!Number.isInteger(seed)) throw new Error("runSoak needs an integer seed");
  const world = makeWorld(seed);
  const artifacts = path.join(ARTIFACTS_ROOT, String(seed));
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `seqcast-soak-${seed}-`));
  const say = (line) => log(`[soak ${seed} ${fmtMs(world.t())}] ${line}`);
  world.onFirstViolation = (v) => {
    say(`VIOLATION ${v.who}: ${v.message}`);
    world.stopFaults = true; // no point in more faults: heal and collect the end state
  };
  headDeadlineMs ??= durationMs <= 60_000 ? 30_000 : 60_000;

  const cluster = { nodes: [], pgProxies: [], clientProxies: [], subscribers: [], publishers: null, pg: null };
  let scheduler = null;
  let summary = null;
  try {
    // --- setup -------------------------------------------------------------
    // A primary with a synchronous standby: the failover fault promotes it (and makes a
    // new standby). Everything else reads the primary of the moment.
    const pair = await startReplicatedPostgres({ synchronous: true });
    cluster.pgPair = pair;
    cluster.pg = {
      get url() { return pair.primary.url; },
      get dir() { return pair.primary.dir; },
      start: () => pair.startPrimary(),
      stop: () => pair.stopPrimary(),
      destroy: () => pair.destroy(),
    };
    const dbName = new URL(await freshDatabase(pair.primary.url)).pathname.slice(1);
    Object.defineProperty(cluster, "pgAdminUrl", { get: () => pair.primary.url });
    Object.defineProperty(cluster, "dbUrl", {
      get: () => {
        const u = new URL(pair.primary.url);
        u.pathname = `/${dbName}`;
        return u.toString();
      },
    });
    const pgPort = pair.primary.port;
    for (let i = 0; i < NODES; i++) {
      const pgProxy = await startFaultProxy({ upstreamPort: pgPort, name: `pg${i}` });
      cluster.pgProxies.push(pgProxy);
      const appName = `seqcast-n${i}`;
      const node = await soakNode({
        name: `n${i}`,
        databaseUrl: `postgresql://postgres@127.0.0.1:${pgProxy.port}/${dbName}?application_name=${appName}`,
        logPath: path.join(artifacts, `n${i}.log`),
        cacheDir: path.join(scratch, `cache-n${i}`),
        args: [
          "--max-payload-bytes", String(MAX_PAYLOAD),
          "--send-queue-bytes", String(SEND_QUEUE),
          "--retention-messages", String(RETENTION_MESSAGES),
          "--retention-check-seconds", "1",
          "--heartbeat-seconds", String(HEARTBEAT_SECONDS),
          "--drain-delay-seconds", "0",
          "--drain-window-seconds", "1",
          "--threads", "1",
        ],
      });
      node.appName = appName;
      cluster.nodes.push(node);
    }
    // The first node migrates; the others start once the schema exists.
    await cluster.nodes[0].start();
    await Promise.all(cluster.nodes.slice(1).map((n) => n.start()));
    for (let i = 0; i < NODES; i++) {
      cluster.clientProxies.push(await startFaultProxy({ upstreamPort: cluster.nodes[i].port, name: `client${i}` }));
    }
    world.clientProxies = cluster.clientProxies;
    say(`cluster up: PostgreSQL ${cluster.pg.url}, nodes ${cluster.nodes.map((n) => n.port).join(", ")}`);

    cluster.publishers = new Publishers(world, seed, publishers);
    // One message per channel, so that every channel has an epoch to resume in.
    await Promise.all(CHANNELS.map((c) => cluster.publishers.deliver(cluster.publishers.newAttempt(c, rngFor(seed, `seed-${c}`), 64), rngFor(seed, `seed-${c}`))));
    if (world.violations.length) throw new Error(`setup publish failed: ${world.violations[0].message}`);

    const srng = (label) => rngFor(seed, label);
    cluster.subscribers.push(new RawWsSubscriber(world, "ws0", CHANNELS, srng("ws0")));
    cluster.subscribers.push(new RawWsSubscriber(world, "ws1", CHANNELS, srng("ws1")));
    cluster.subscribers.push(new ClientSubscriber(world, "js0", CHANNELS, srng("js0")));
    cluster.subscribers.push(new ClientSubscriber(world, "js1", CHANNELS, srng("js1")));
    for (const c of CHANNELS) cluster.subscribers.push(new SseSubscriber(world, `sse:${c}`, c, srng(`sse-${c}`)));
    world.subscribers = cluster.subscribers;
    for (const s of cluster.subscribers) s.start();
    await waitFor(() => cluster.subscribers.every((s) => s.channels.every((c) => s.tracks.get(c).seq >= 1)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: "every subscriber to receive the first message of each channel",
    });
    say(`${cluster.subscribers.length} subscribers caught up; load and faults for ${fmtMs(durationMs)}`);

    // --- load and faults ------------------------------------------------------
    cluster.publishers.start();
    scheduler = new FaultScheduler(world, cluster, seed, { gapMs: [1_000, 3_500], weights });
    await scheduler.run(durationMs);
    say(`faults over (${scheduler.schedule.filter((f) => !f.skipped).length} injected); healing`);

    // --- heal -------------------------------------------------------------------
    for (const p of [...cluster.pgProxies, ...cluster.clientProxies]) p.heal();
    cluster.clientProxies.forEach((p, i) => p.setUpstream(cluster.nodes[i].port));
    await cluster.pg.start();
    for (const n of cluster.nodes) n.resume();
    await Promise.all(
      cluster.nodes.map(async (n) => {
        if (!n.alive) {
          try {
            await n.start();
          } catch (err) {
            world.violate(n.name, `did not start after the faults: ${err.message.split("\n")[0]}`);
          }
        }
      }),
    );
    await cluster.publishers.stop(60_000);
    say(`load stopped: ${world.stats.acked}/${world.stats.published} publishes acknowledged`);

    // A last probe of a quiet channel: one node's backends are terminated and
    // another node commits a message meanwhile.
    {
      const prng = rngFor(seed, "final-probe");
      const victim = prng.int(0, NODES - 1);
      await psqlRows(cluster.pgAdminUrl, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '${cluster.nodes[victim].appName}'`).catch(() => {});
      world.publishDeadline = Date.now() + 30_000;
      await cluster.publishers.quiet(prng, cluster.nodes.filter((_, i) => i !== victim));
    }

    // Every subscriber reaches the head of every channel (as the log has it) with
    // no further message to help: a node that missed one must notice by itself.
    const reachedAll = (s, heads) =>
      s.channels.every((c) => {
        const h = heads[c];
        if (!h) return true;
        const t = s.tracks.get(c);
        if (t.seq !== h.seq) return false;
        // An SSE stream's epoch is inferred (its events carry none): any epoch of the
        // channel's incarnation will do.
        if (s.kind === "sse") return t.epoch === null || world.related(c, t.epoch, h.epoch);
        return world.canon(c, t.epoch, t.seq) === h.epoch;
      });
    const waitHeads = async (heads, label) => {
      const started = Date.now();
      try {
        await waitFor(() => cluster.subscribers.every((s) => reachedAll(s, heads)), { timeoutMs: headDeadlineMs, intervalMs: 200, what: label });
        return Date.now() - started;
      } catch {
        for (const s of cluster.subscribers) {
          for (const c of s.channels) {
            const h = heads[c];
            const t = s.tracks.get(c);
            if (h && !reachedAll({ ...s, channels: [c] }, heads)) {
              world.violate(
                `${s.id} (${s.kind})`,
                `did not reach the head of ${c} (${label}) within ${fmtMs(headDeadlineMs)}: at ${t.epoch}#${t.seq}, head ${h.epoch}#${h.seq}; ${s.connections} connections, close codes ${JSON.stringify(s.closeCodes)}`,
              );
            }
          }
        }
        return null;
      }
    };
    const heads = {};
    await noteLineage(world, cluster);
    for (const [name, epoch, last] of await psqlRows(cluster.dbUrl, `SELECT name, epoch, last_seq FROM ${await tableSchema(cluster.dbUrl)}.channels`)) {
      heads[name] = { epoch, seq: Number(last) };
    }
    world.stats.quietCatchUpMs = await waitHeads(heads, "after the faults, before any further message");

    // One last message per channel: every subscriber must reach it.
    const markers = {};
    world.publishDeadline = Date.now() + 30_000;
    await Promise.all(
      CHANNELS.map(async (c) => {
        const rng = rngFor(seed, `marker-${c}`);
        const attempt = cluster.publishers.newAttempt(c, rng, 48);
        await cluster.publishers.deliver(attempt, rng);
        if (attempt.ack) markers[c] = attempt.ack;
        else world.violate("publisher", `the final message of ${c} was not accepted within 30 s`);
      }),
    );
    if (world.violations.length === 0) world.stats.finalCatchUpMs = await waitHeads(markers, "the final message of each channel");
    await checkRun(world, cluster, markers);
    summary = summarize(world, scheduler);
  } catch (err) {
    world.violate("soak", `run aborted: ${err.stack ?? err}`);
  } finally {
    await Promise.all(cluster.subscribers.map((s) => s.stop().catch(() => {})));
    for (const n of cluster.nodes) n.resume();
    await Promise.all(cluster.nodes.map((n) => n.close().catch(() => {})));
    await Promise.all([...cluster.clientProxies, ...cluster.pgProxies].map((p) => p.close().catch(() => {})));
    if (cluster.pg) {
      try {
        fs.copyFileSync(path.join(cluster.pg.dir, "postgresql.log"), path.join(artifacts, "postgresql.log"));
      } catch {
        // no log
      }
      await cluster.pg.destroy().catch(() => {});
    }
    fs.rmSync(scratch, { recursive: true, force: true });
  }

  // A node built with a sanitizer reports into its log and may keep running.
  for (const n of cluster.nodes) {
    const text = fs.existsSync(n.logPath) ? fs.readFileSync(n.logPath, "utf8") : "";
    const hit = text.match(SANITIZER_REPORT);
    if (hit) world.violate(n.name, `sanitizer report in ${n.logPath}: ${text.slice(hit.index, hit.index + 300)}`);
  }

  const ok = world.violations.length === 0;
  const schedule = scheduler?.schedule ?? [];
  summary ??= summarize(world, scheduler);
  const report = ok ? formatSummary(seed, summary) : formatFailure(seed, world, schedule, artifacts);
  fs.writeFileSync(path.join(artifacts, "report.txt"), report + "\n");
  fs.writeFileSync(path.join(artifacts, "schedule.json"), JSON.stringify(schedule, null, 1) + "\n");
  if (ok && !keepArtifacts) fs.rmSync(artifacts, { recursive: true, force: true });
  return { ok, seed, violations: world.violations, schedule, summary, artifacts, report };
}

// ---------------------------------------------------------------------------
// Failover bookkeeping

/** Reads each channel once through a node (its head read rebases it after a failover). */
async function touchChannels(world, cluster) {
  const rng = rngFor(world.seed, `touch-${world.t()}`);
  for (const c of CHANNELS) {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const proxy = world.pickClientProxy(rng);
      try {
        const res = await fetch(`${proxy.url}/v1/channels/${encodeURIComponent(c)}`, { signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 404) break;
      } catch {
        // a node down or cut off: another try, maybe elsewhere
      }
      await sleep(200);
    }
  }
}

/** Adds the epochs the channels left behind at failovers (table `rewinds`) to world.lineage. */
async function noteLineage(world, cluster) {
  const schema = await tableSchema(cluster.dbUrl);
  const rows = await psqlRows(
    cluster.dbUrl,
    `SELECT c.name, c.epoch, r.epoch, r.rewound_to FROM ${schema}.rewinds r JOIN ${schema}.channels c ON c.id = r.channel_id ORDER BY c.name, r.n`,
  ).catch(() => []);
  // Oldest first per channel: each epoch's successor is the next row's, or the current one.
  for (let i = 0; i < rows.length; i++) {
    const [name, current, epoch, R] = rows[i];
    const to = i + 1 < rows.length && rows[i + 1][0] === name ? rows[i + 1][2] : current;
    world.lineage.set(`${name}|${epoch}`, { to, R: Number(R) });
  }
}

// ---------------------------------------------------------------------------
// The checker

/**
 * After the faults, with everything healed and quiet:
 * - the log (one snapshot of PostgreSQL) is gapless from first_seq to last_seq
 *   per channel, every row is a message we published, with its exact bytes,
 *   and no key is in the log at another seq than the one acknowledged;
 * - every acknowledged publish is in the log at its seq with its exact bytes,
 *   unless trimmed (seq < first_seq) or its epoch was destroyed by a DELETE
 *   answered after the publish began;
 * - every delivered message is a published one, delivered byte for byte (the
 *   bundled client: the same JSON), at the position it was acknowledged at;
 *   an SSE stream (no epochs on its events) stays in one epoch between resets;
 * - a truncated reset only claimed what retention really removed;
 * - every node is alive, /readyz 200, and its API agrees with the log.
 * (Per-stream order, gaps explained by resets, and reaching the head are
 * checked online and just before.)
 */
// The schema of seqcast's tables: `seqcast` (setting database_schema), or
// `public` for a build from before that setting.
async function tableSchema(dbUrl) {
  const schemas = (await psqlRows(dbUrl, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'messages'`)).map((r) => r[0]);
  return schemas.includes("seqcast") ? "seqcast" : schemas[0] ?? "seqcast";
}

async function checkRun(world, cluster, markers) {
  const v = (message, details) => world.violate("checker", message, details);
  await noteLineage(world, cluster);
  const schema = await tableSchema(cluster.dbUrl);
  const rows = await psqlRows(
    cluster.dbUrl,
    `SELECT c.name, c.epoch, c.first_seq, c.last_seq, coalesce(m.seq::text, ''), coalesce(m.idempotency_key, ''), coalesce(md5(m.payload), '')
       FROM ${schema}.channels c LEFT JOIN ${schema}.messages m ON m.channel_id = c.id AND m.seq >= c.first_seq
      ORDER BY c.name, m.seq`,
  );
  const log = new Map(); // channel -> {epoch, first, last, bySeq: Map seq -> {key, md5}}
  for (const [name, epoch, first, last, seq, key, hash] of rows) {
    if (!log.has(name)) log.set(name, { epoch, first: Number(first), last: Number(last), bySeq: new Map() });
    if (seq !== "") log.get(name).bySeq.set(Number(seq), { key, md5: hash });
  }
  const check = (world.stats.check = { logRows: 0, acksChecked: 0, acksTrimmed: 0, acksDeleted: 0, deliveriesChecked: 0 });

  // The log itself.
  for (const [name, ch] of log) {
    let missing = [];
    for (let s = ch.first; s <= ch.last; s++) if (!ch.bySeq.has(s)) missing.push(s);
    if (missing.length) v(`the log of ${name} (epoch ${ch.epoch}) has gaps between first_seq ${ch.first} and last_seq ${ch.last}: missing ${missing.slice(0, 20).join(",")}${missing.length > 20 ? "…" : ""}`);
    for (const [seq, row] of ch.bySeq) {
      check.logRows += 1;
      if (seq > ch.last) v(`the log of ${name} has seq ${seq} beyond last_seq ${ch.last}`);
      const attempt = world.attempts.get(row.key);
      if (!attempt) {
        v(`log row ${name}#${seq} has idempotency key ${JSON.stringify(row.key)} that no publisher sent`);
        continue;
      }
      if (attempt.channel !== name) v(`log row ${name}#${seq} holds ${row.key}, published to ${attempt.channel}`);
      if (attempt.md5 !== row.md5) v(`log row ${name}#${seq} (${row.key}): payload differs from the published bytes`);
      const ack = attempt.ack;
      if (ack && world.canon(name, ack.epoch, ack.seq) === ch.epoch && ack.seq !== seq) v(`${row.key} is in the log at ${name}#${seq} but was acknowledged at #${ack.seq} (published twice?)`);
    }
  }

  const deletedAfter = (channel, t) => world.deletes.some((d) => d.channel === channel && d.tDone >= t);

  // Every acknowledged publish.
  for (const attempt of world.attempts.values()) {
    const ack = attempt.ack;
    if (!ack) continue;
    check.acksChecked += 1;
    const ch = log.get(attempt.channel);
    if (!ch || ch.epoch !== world.canon(attempt.channel, ack.epoch, ack.seq)) {
      if (deletedAfter(attempt.channel, attempt.tFirst)) {
        check.acksDeleted += 1;
        continue;
      }
      v(`acknowledged ${attempt.key} at ${attempt.channel}#${ack.seq} epoch ${ack.epoch}, but the channel is in epoch ${ch?.epoch ?? "(none)"} and no DELETE explains it`);
      continue;
    }
    if (ack.seq < ch.first) {
      check.acksTrimmed += 1;
      continue;
    }
    if (ack.seq > ch.last) {
      v(`acknowledged ${attempt.key} at ${attempt.channel}#${ack.seq} is beyond the log's last_seq ${ch.last}`);
      continue;
    }
    const row = ch.bySeq.get(ack.seq);
    if (!row || row.key !== attempt.key) v(`acknowledged ${attempt.key} (${ack.status}) at ${attempt.channel}#${ack.seq} is not in the log there (found ${row ? row.key : "nothing"})`);
  }

  // Every delivery.
  const segments = new Map(); // sub|channel|seg -> epoch (SSE)
  for (const d of world.deliveries) {
    check.deliveriesChecked += 1;
    const attempt = world.attempts.get(d.key);
    if (!attempt) {
      v(`${d.sub} received ${d.channel}#${d.seq} with key ${d.key} that no publisher sent`);
      continue;
    }
    if (attempt.channel !== d.channel) {
      v(`${d.sub} received ${d.key} (published to ${attempt.channel}) on ${d.channel}#${d.seq}`);
      continue;
    }
    const expected = d.canon ? attempt.canonMd5 : attempt.md5;
    if (d.hash !== expected) v(`${d.sub} received ${d.channel}#${d.seq} (${d.key}) with a payload that differs from the published ${d.canon ? "JSON" : "bytes"}`);
    const ack = attempt.ack;
    let epoch = d.epoch;
    // SSE events carry no epoch: the publisher's answer for it says which it is.
    if (d.kind === "sse" && ack && ack.seq === d.seq) epoch = ack.epoch;
    epoch = world.canon(d.channel, epoch, d.seq);
    if (d.kind === "sse" && epoch !== null) {
      const segKey = `${d.sub}|${d.channel}|${d.seg}`;
      const seen = segments.get(segKey);
      if (seen === undefined) segments.set(segKey, epoch);
      else if (seen !== epoch) v(`${d.sub}: ${d.channel}#${d.seq} is of epoch ${epoch}, the messages before it (no reset between) of ${seen}`);
    }
    const ch = log.get(d.channel);
    if (ch && epoch === ch.epoch) {
      const row = ch.bySeq.get(d.seq);
      if (row && row.key !== d.key) v(`${d.sub} received ${d.key} at ${d.channel}#${d.seq}, the log has ${row.key} there`);
      if (d.seq > ch.last) v(`${d.sub} received ${d.channel}#${d.seq}, beyond the log's last_seq ${ch.last}`);
    }
    if (ack && epoch !== null) {
      const ackEpoch = world.canon(d.channel, ack.epoch, ack.seq);
      if (ackEpoch === epoch && ack.seq !== d.seq) v(`${d.sub} received ${d.key} at ${d.channel}#${d.seq}, acknowledged at #${ack.seq}`);
      if (ackEpoch !== epoch && !deletedAfter(d.channel, attempt.tFirst)) v(`${d.sub} received ${d.key} in epoch ${epoch}, acknowledged in ${ack.epoch}, and no DELETE explains it`);
    }
  }

  // Epoch changes without a reset: only a failover that kept the position explains one.
  for (const tr of world.transitions) {
    // An SSE stream's epoch is inferred from acknowledgements (its events carry none):
    // for it, any later epoch of the same incarnation will do.
    if (tr.sub.startsWith("sse:") && world.related(tr.channel, tr.from, tr.to)) continue;
    if (world.canon(tr.channel, tr.from, tr.held) !== world.canon(tr.channel, tr.to, tr.held)) {
      v(`${tr.sub}: ${tr.channel} went from epoch ${tr.from} (at #${tr.held}) to ${tr.to} without a reset, and no failover explains it`);
    }
  }

  // A synchronous standby loses nothing: a client that knows its epoch (WebSocket, the
  // bundled client) is never told `rewound`; an SSE stream may be (see onReset).
  for (const r of world.resetLog) {
    if (r.reset.reason === "rewound" && !r.sub.startsWith("sse:")) v(`${r.sub} got a rewound reset of ${r.channel} at ${fmtMs(r.t)}, but the standby was synchronous`, r.reset);
  }

  // Truncated resets claimed that seqs below first_seq were gone.
  for (const r of world.resetLog) {
    if (r.reset.reason !== "truncated") continue;
    const ch = log.get(r.channel);
    if (ch && world.canon(r.channel, r.reset.epoch, r.reset.first_seq - 1) === ch.epoch && ch.first < r.reset.first_seq) {
      v(`${r.sub} got a truncated reset of ${r.channel} at ${fmtMs(r.t)} claiming seqs below ${r.reset.first_seq} were trimmed, but the log still starts at ${ch.first}`, r.reset);
    }
  }

  // Markers match the log's heads.
  for (const [c, m] of Object.entries(markers)) {
    const ch = log.get(c);
    if (!ch || ch.epoch !== world.canon(c, m.epoch, m.seq) || ch.last !== m.seq) v(`the final message of ${c} was acknowledged at ${m.epoch}#${m.seq}, the log ends at ${ch?.epoch}#${ch?.last}`);
  }

  // Nodes: alive, ready, and their API agrees with the log.
  for (const node of cluster.nodes) {
    if (!node.alive) {
      v(`${node.name} is not running at the end`);
      continue;
    }
    try {
      await waitFor(async () => (await node.readyz()) === 200, { timeoutMs: 15_000, intervalMs: 200, what: `${node.name} /readyz 200` });
    } catch {
      v(`${node.name} /readyz is not 200 at the end (${await node.readyz()})`);
      continue;
    }
    for (const [c, ch] of log) {
      try {
        const res = await fetch(`${node.url}/v1/channels/${encodeURIComponent(c)}/messages?from=${Math.max(ch.first, ch.last - 30)}&limit=100`, { signal: AbortSignal.timeout(10_000) });
        const body = await res.json();
        if (res.status !== 200) {
          v(`${node.name}: GET messages of ${c} answered ${res.status}`);
          continue;
        }
        if (body.epoch !== ch.epoch || body.last_seq !== ch.last) v(`${node.name}: ${c} is at ${body.epoch}#${body.last_seq} by its API, ${ch.epoch}#${ch.last} in the log`);
        for (const m of body.messages) {
          const row = ch.bySeq.get(m.seq);
          if (row && row.key !== m.data?.k) v(`${node.name}: GET messages of ${c} gives ${m.data?.k} at #${m.seq}, the log has ${row.key}`);
        }
      } catch (err) {
        v(`${node.name}: reading ${c} failed: ${err.message}`);
      }
    }
  }
}

function summarize(world, scheduler) {
  const schedule = scheduler?.schedule ?? [];
  return {
    durationMs: world.t(),
    faultsInjected: schedule.filter((f) => !f.skipped).length,
    faultsSkipped: schedule.filter((f) => f.skipped).length,
    faultsByKind: world.stats.faults,
    published: world.stats.published,
    acked: world.stats.acked,
    publishedMiB: +(world.stats.publishedBytes / 1048576).toFixed(1),
    publishRetries: world.stats.publishRetries,
    publishRetryReasons: world.stats.publishRetryReasons,
    publishGaveUp: world.stats.publishGaveUp,
    bigBursts: world.stats.bigBursts,
    deletes: world.deletes.length,
    delivered: world.stats.delivered,
    check: world.stats.check,
    reconnects: world.stats.reconnects,
    closeCodes: world.stats.closeCodes,
    subscribeErrors: world.stats.subscribeErrors,
    resetsByReason: world.stats.resets,
    longestCatchUp: world.stats.longestCatchUp,
    quietCatchUpMs: world.stats.quietCatchUpMs,
    finalCatchUpMs: world.stats.finalCatchUpMs,
    quietPublishes: world.stats.quietPublishes,
    subscribers: Object.fromEntries((world.subscribers ?? []).map((x) => [x.id, { connections: x.connections, delivered: [...x.tracks.values()].reduce((n, t) => n + t.delivered, 0), closeCodes: x.closeCodes }])),
  };
}

function formatSummary(seed, s) {
  const kinds = Object.entries(s.faultsByKind).sort().map(([k, n]) => `${k}=${n}`).join(" ");
  const lc = s.longestCatchUp ? `${s.longestCatchUp.ms} ms (${s.longestCatchUp.sub} on ${s.longestCatchUp.channel}, ${s.longestCatchUp.messages} messages)` : "none";
  return [
    `soak seed ${seed}: OK in ${fmtMs(s.durationMs)}`,
    `  faults: ${s.faultsInjected} injected (${s.faultsSkipped} skipped as unsafe/busy): ${kinds}`,
    `  publishes: ${s.acked}/${s.published} acknowledged (${s.publishedMiB} MiB), ${s.publishRetries} retries ${JSON.stringify(s.publishRetryReasons)}, ${s.bigBursts} big bursts, ${s.deletes} channel DELETEs`,
    `  checked: ${s.check?.logRows} log rows, ${s.check?.acksChecked} acks (${s.check?.acksTrimmed} trimmed, ${s.check?.acksDeleted} deleted), ${s.check?.deliveriesChecked} deliveries`,
    `  reconnects: ${JSON.stringify(s.reconnects)}; close codes ${JSON.stringify(s.closeCodes)}; subscribe 'unavailable' errors ${s.subscribeErrors}`,
    `  resets by reason: ${JSON.stringify(s.resetsByReason)}`,
    `  longest catch-up: ${lc}; after the faults: heads reached in ${s.quietCatchUpMs ?? "?"} ms, final messages in ${s.finalCatchUpMs ?? "?"} ms`,
  ].join("\n");
}

function formatFailure(seed, world, schedule, artifacts) {
  const lines = [`soak seed ${seed}: FAILED (${world.violations.length} violations)`];
  const first = world.violations[0];
  lines.push(`first violated invariant at ${fmtMs(first.t)}: [${first.who}] ${first.message}`);
  if (first.details) lines.push(`  details: ${JSON.stringify(first.details).slice(0, 600)}`);
  if (world.violations.length > 1) {
    lines.push("next violations:");
    for (const x of world.violations.slice(1, 10)) lines.push(`  ${fmtMs(x.t)} [${x.who}] ${x.message.slice(0, 400)}`);
  }
  lines.push("fault schedule:");
  for (const f of schedule) {
    const span = f.skipped ? "skipped" : `${fmtMs(f.t)}..${f.end !== undefined ? fmtMs(f.end) : "?"}`;
    lines.push(`  ${fmtMs(f.t).padStart(7)} ${f.kind} target=${f.target} ${JSON.stringify(f.params)} ${span}${f.result ? ` ${f.result}` : ""}${f.error ? ` ERROR ${f.error}` : ""}`);
  }
  lines.push(`node and PostgreSQL logs: ${artifacts}`);
  lines.push(`rerun: node tests/soak/soak.mjs --seed ${seed} --seconds ${Math.round(world.t() / 1000)}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// CLI

const USAGE = `usage: node tests/soak/soak.mjs [--seed S] (--minutes M | --seconds N | --short) [--weight KIND=W]… [--keep-artifacts]
       node tests/soak/soak.mjs --scale [--seed S] [--connections C] [--channels K] [--messages N] [--rate R]
  --short        45 s of faults (the run in scripts/test); without a length, 60 s
  --weight K=W   draw fault kind K with weight W (0: never), e.g. --weight pg_failover=30
                 (kinds and default weights: ${FAULT_WEIGHTS.map(([k, w]) => `${k}=${w}`).join(" ")})
  --scale        the scale profile (tests/soak/scale.mjs): C subscribers (8000) over K channels (50),
                 N messages per channel (240) at R per second (200), a blue/green swap and a SIGKILL
  exit status 0 = every invariant held`;

function parseArgs(argv) {
  const out = {};
  const number = (i) => {
    const v = Number(argv[i]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${argv[i - 1]} needs a positive number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") out.help = true;
    else if (a === "--short") out.short = true;
    else if (a === "--scale") out.scale = true;
    else if (a === "--seed") out.seed = number(++i);
    else if (a === "--minutes") out.minutes = number(++i);
    else if (a === "--seconds") out.seconds = number(++i);
    else if (a === "--connections") out.connections = number(++i);
    else if (a === "--channels") out.channels = number(++i);
    else if (a === "--messages") out.messages = number(++i);
    else if (a === "--rate") out.rate = number(++i);
    else if (a === "--keep-artifacts") out.keep = true;
    else if (a === "--weight") {
      const [kind, w] = String(argv[++i]).split("=");
      if (!FAULT_WEIGHTS.some(([k]) => k === kind) || !(Number(w) >= 0)) throw new Error(`--weight needs KIND=W with a known kind: ${argv[i]}`);
      out.weights = (out.weights ?? FAULT_WEIGHTS).map(([k, x]) => [k, k === kind ? Number(w) : x]);
    }
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const seed = Number.isInteger(args.seed) ? args.seed : Math.floor(Math.random() * 2 ** 31);
  if (args.scale) {
    const { runScale } = await import("./scale.mjs");
    const { connections, channels, messages, rate } = args;
    const result = await runScale({ seed, connections, channels, messages, rate });
    console.log(result.report);
    process.exit(result.ok ? 0 : 1);
  }
  const durationMs = args.seconds ? args.seconds * 1000 : args.minutes ? args.minutes * 60_000 : args.short ? 45_000 : 60_000;
  const result = await runSoak({ seed, durationMs, keepArtifacts: args.keep, weights: args.weights });
  console.log(result.report);
  process.exit(result.ok ? 0 : 1);
}
