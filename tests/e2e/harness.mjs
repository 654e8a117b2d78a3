// Helpers for the end-to-end tests: private PostgreSQL clusters and databases,
// seqcast nodes as child processes, HTTP and WebSocket clients, and polling
// with deadlines. Tests never sleep to synchronise: they wait for a condition.
import { spawn, execFile, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import WebSocket from "ws";

const execFileP = promisify(execFile);

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = process.env.SEQCAST_BIN || path.join(REPO, "build/seqcast");
export const ARTIFACTS = path.join(REPO, "tests/artifacts/e2e");
const PG_TEMP = path.join(REPO, "scripts/pg-temp");

let uniqueCounter = 0;
/** A name no other test of any process uses: `prefix_<pid>_<n>_<random>`. */
export function uniqueName(prefix = "t") {
  uniqueCounter += 1;
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}_${process.pid}_${uniqueCounter}_${random}`;
}

// ---------------------------------------------------------------------------
// Waiting

/**
 * Calls `fn` (sync or async) until it returns a truthy value, and returns that
 * value. Throws when `timeoutMs` passes; the message names `what` and the last
 * error `fn` threw, if any.
 */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? `; last error: ${lastError.message ?? lastError}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves with `promise`'s value, or rejects once `timeoutMs` has passed. */
export function withTimeout(promise, timeoutMs, what = "operation") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

// ---------------------------------------------------------------------------
// PostgreSQL

/**
 * Starts a private PostgreSQL cluster (scripts/pg-temp) in a fresh temporary
 * directory. `stop()` shuts it down cleanly, `kill()` like a crash, `start()`
 * brings it back on the same port; `destroy()` stops it and removes its files.
 */
export async function startPostgres() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "seqcast-e2e-pg-"));
  const run = async (command) => {
    const { stdout } = await execFileP(PG_TEMP, [command, dir], { timeout: 120_000 });
    return stdout.trim();
  };
  const url = await run("start");
  return {
    url,
    dir,
    start: () => run("start"),
    stop: () => run("stop"),
    kill: () => run("kill"),
    async destroy() {
      await run("kill");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let sharedCluster;
/**
 * The URL of the cluster the tests share: SEQCAST_TEST_DATABASE_URL (as set by
 * scripts/test), or else one private cluster for this process, removed at exit.
 */
export async function adminDatabaseUrl() {
  if (process.env.SEQCAST_TEST_DATABASE_URL) return process.env.SEQCAST_TEST_DATABASE_URL;
  if (!sharedCluster) {
    sharedCluster = startPostgres();
    const { dir } = await sharedCluster;
    process.on("exit", () => {
      spawnSync(PG_TEMP, ["kill", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  }
  return (await sharedCluster).url;
}

/** Runs SQL through psql and returns its unaligned, tuples-only output. */
export async function psql(databaseUrl, sql) {
  const { stdout } = await execFileP(
    "psql",
    [databaseUrl, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
    { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout.trim();
}

/** Creates an empty database with a unique name and returns its URL. */
export async function freshDatabase(adminUrl) {
  const admin = adminUrl ?? (await adminDatabaseUrl());
  const name = uniqueName("e2e");
  await psql(admin, `CREATE DATABASE "${name}"`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

// ---------------------------------------------------------------------------
// seqcast nodes

const LOG_TAIL_BYTES = 64 * 1024;

// Nodes still running when the test process exits (a test that failed before
// its cleanup) are killed with it.
// Their cache directories go when the test process ends.
const runningProcs = new Set();
const cacheDirs = new Set();
process.on("exit", () => {
  for (const proc of runningProcs) proc.kill("SIGKILL");
  for (const dir of cacheDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts `seqcast serve` on a free port with its own cache directory, and waits
 * until GET /readyz answers 200. `env` adds variables; `args` adds flags.
 * `cacheDir` reuses a given cache directory (e.g. another node's, after that
 * node stopped) instead of a fresh one; it is removed at exit all the same.
 * Its output is kept (the tail in memory, all of it in tests/artifacts/e2e/).
 */
export async function startNode({ databaseUrl, env = {}, args = [], name = "node", readyTimeoutMs = 30_000, cacheDir: givenCacheDir } = {}) {
  if (!databaseUrl) throw new Error("startNode needs a databaseUrl");
  if (!fs.existsSync(BIN)) throw new Error(`no seqcast binary at ${BIN} (run scripts/build)`);
  const port = await freePort();
  const cacheDir = givenCacheDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "seqcast-e2e-cache-"));
  cacheDirs.add(cacheDir);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${uniqueName(name)}.log`);
  const url = `http://127.0.0.1:${port}`;

  const node = {
    url,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    port,
    cacheDir,
    logPath,
    proc: null,
    output: "",
    exited: null, // a promise of {code, signal}, set at each spawn
    /** The last lines the node printed, for failure messages. */
    tail(lines = 40) {
      return node.output.split("\n").slice(-lines).join("\n");
    },
    async stop({ timeoutMs = 30_000 } = {}) {
      return node._signal("SIGTERM", timeoutMs);
    },
    async kill() {
      return node._signal("SIGKILL", 10_000);
    },
    async restart(opts = {}) {
      await node.stop(opts);
      await node._spawn();
    },
    /** The resident set size of the node process in bytes (VmRSS), from /proc. */
    rssBytes() {
      if (!node.alive) throw new Error(`node ${url} is not running`);
      const status = fs.readFileSync(`/proc/${node.proc.pid}/status`, "utf8");
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!match) throw new Error(`no VmRSS in /proc/${node.proc.pid}/status`);
      return Number(match[1]) * 1024;
    },
    /** GET /metrics, parsed: {name: value} for every unlabelled sample. */
    async metrics() {
      return fetchMetrics(url);
    },
    /**
     * Starts the node again after stop() or kill(): the same port (clients
     * reconnect to the same URL), database, flags and cache directory, and waits
     * until it is ready. `clearCache: true` deletes the cache directory first,
     * so the node starts with an empty replay cache.
     */
    async start({ clearCache = false } = {}) {
      if (node.alive) throw new Error(`node ${url} is still running`);
      if (clearCache) {
        fs.rmSync(cacheDir, { recursive: true, force: true });
        fs.mkdirSync(cacheDir, { recursive: true });
      }
      await node._spawn();
    },
    async _signal(signal, timeoutMs) {
      const proc = node.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return node.exited;
      proc.kill(signal);
      try {
        return await withTimeout(node.exited, timeoutMs, `node ${url} exiting after ${signal}`);
      } catch (err) {
        proc.kill("SIGKILL");
        await node.exited;
        throw new Error(`${err.message}\n--- node output ---\n${node.tail()}`);
      }
    },
    async _spawn() {
      const log = fs.createWriteStream(logPath, { flags: "a" });
      const proc = spawn(
        BIN,
        ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", databaseUrl, "--cache-dir", cacheDir, ...args],
        {
          env: {
            ...process.env,
            // Tests stop nodes often: no drain pauses unless a test asks for them.
            SEQCAST_DRAIN_DELAY_SECONDS: "0",
            SEQCAST_DRAIN_WINDOW_SECONDS: "0",
            ...env,
          },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      node.proc = proc;
      runningProcs.add(proc);
      const onData = (chunk) => {
        log.write(chunk);
        node.output += chunk.toString("utf8");
        if (node.output.length > 2 * LOG_TAIL_BYTES) node.output = node.output.slice(-LOG_TAIL_BYTES);
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
      node.exited = new Promise((resolve) => {
        proc.on("exit", (code, signal) => {
          runningProcs.delete(proc);
          log.end();
          resolve({ code, signal });
        });
      });
      const ready = waitFor(
        async () => {
          if (proc.exitCode !== null || proc.signalCode !== null) {
            throw new Error(`exited early (code ${proc.exitCode}, signal ${proc.signalCode})`);
          }
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
          await res.arrayBuffer();
          return res.status === 200;
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 50, what: `${url}/readyz to answer 200` },
      );
      try {
        await ready;
      } catch (err) {
        proc.kill("SIGKILL");
        throw new Error(`seqcast node did not become ready: ${err.message}\n--- node output ---\n${node.tail()}`);
      }
    },
    /** True while the process runs. */
    get alive() {
      return node.proc !== null && node.proc.exitCode === null && node.proc.signalCode === null;
    },
  };
  await node._spawn();
  return node;
}

/** Starts a node on `databaseUrl` that stops when test `t` ends. */
export async function nodeForTest(t, databaseUrl, name, options = {}) {
  const node = await startNode({ databaseUrl, name, ...options });
  t.after(() => node.stop());
  return node;
}

/** A WebSocket client of `node` that closes when test `t` ends. */
export async function openWs(t, node) {
  const ws = await wsClient(node.wsUrl);
  t.after(() => ws.close());
  return ws;
}

/**
 * GET /metrics of a node and parses the Prometheus text: {name: number} for
 * every sample without labels (labelled samples keep their labels in the name).
 */
export async function fetchMetrics(nodeUrl, { timeoutMs = 10_000 } = {}) {
  const res = await fetch(`${nodeUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${nodeUrl}/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^(\S+?(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (match) out[match[1]] = Number(match[2]);
  }
  return out;
}

/** Runs the seqcast binary to completion: {code, stdout, stderr}. */
export async function runSeqcast(args, { env = {}, cwd = REPO, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, args, { env: { ...process.env, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c) => (stdout += c));
    proc.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`seqcast ${args.join(" ")} took longer than ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    proc.on("error", reject);
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------
// HTTP

async function toResult(res) {
  const text = await res.text();
  let body = null;
  try {
    body = text.length ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/**
 * Publishes one message. `data` is serialised with JSON.stringify unless `raw`
 * (a string or Buffer) gives the exact body. The channel is percent-encoded
 * unless `encode: false` (then it goes into the path as given).
 * Resolves with {status, headers, text, body (parsed JSON or null)}.
 */
export async function publish(nodeUrl, channel, data, { idempotencyKey, raw, encode = true, headers = {}, timeoutMs = 30_000 } = {}) {
  const segment = encode ? encodeURIComponent(channel) : channel;
  const allHeaders = { "content-type": "application/json", ...headers };
  if (idempotencyKey !== undefined) allHeaders["idempotency-key"] = idempotencyKey;
  const res = await fetch(`${nodeUrl}/v1/channels/${segment}/messages`, {
    method: "POST",
    headers: allHeaders,
    body: raw !== undefined ? raw : JSON.stringify(data),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return toResult(res);
}

/**
 * Publishes one message under `idempotencyKey` and retries while the node
 * cannot answer (connection refused or reset, timeout, 503) until `timeoutMs`
 * passes: a retry of a publish whose answer was lost is answered with the
 * original seq and publishes nothing new. Resolves with the 200/201 result;
 * any other status throws.
 */
export async function publishWithRetry(nodeUrl, channel, data, { idempotencyKey, timeoutMs = 60_000, retryIntervalMs = 50 } = {}) {
  if (idempotencyKey === undefined) throw new Error("publishWithRetry needs an idempotencyKey");
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    let res = null;
    let why = "503";
    try {
      res = await publish(nodeUrl, channel, data, { idempotencyKey, timeoutMs: 10_000 });
    } catch (err) {
      why = err.cause?.code ?? err.name ?? String(err); // refused, reset, timed out
    }
    if (res && (res.status === 200 || res.status === 201)) return { ...res, attempts: attempt };
    if (res && res.status !== 503) {
      throw new Error(`publish of ${JSON.stringify(data)} answered ${res.status} ${res.text.slice(0, 300)}`);
    }
    if (Date.now() >= deadline) {
      throw new Error(`publish of ${JSON.stringify(data)} not accepted within ${timeoutMs} ms (last: ${why})`);
    }
    await new Promise((resolve) => setTimeout(resolve, retryIntervalMs));
  }
}

/** POST /v1/publish with {"messages": items}. */
export async function publishBatch(nodeUrl, items, { headers = {}, timeoutMs = 30_000 } = {}) {
  const res = await fetch(`${nodeUrl}/v1/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ messages: items }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return toResult(res);
}

/** GET a URL: {status, headers, text, body (parsed JSON or null)}. */
export async function getJson(url, { headers = {}, timeoutMs = 30_000 } = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  return toResult(res);
}

/**
 * Sends bytes over a fresh TCP connection and reads the answer until the
 * server closes it; for requests fetch refuses to send (odd header bytes).
 * `request` must ask for `Connection: close`.
 * Resolves with {status, headers (lower-case names), text, body}.
 */
export async function rawHttp(port, request, { timeoutMs = 10_000 } = {}) {
  const socket = net.connect(port, "127.0.0.1");
  const chunks = [];
  socket.on("data", (c) => chunks.push(c));
  const ended = new Promise((resolve, reject) => {
    socket.on("end", resolve);
    socket.on("close", resolve);
    socket.on("error", reject);
  });
  socket.write(request);
  await withTimeout(ended, timeoutMs, "raw HTTP request");
  socket.destroy();
  const response = Buffer.concat(chunks).toString("latin1");
  const headEnd = response.indexOf("\r\n\r\n");
  const head = headEnd >= 0 ? response.slice(0, headEnd) : response;
  let rest = headEnd >= 0 ? response.slice(headEnd + 4) : "";
  const [statusLine, ...headerLines] = head.split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if ((headers["transfer-encoding"] || "").toLowerCase() === "chunked") {
    let decoded = "";
    for (;;) {
      const lineEnd = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, lineEnd), 16);
      if (!size) break;
      decoded += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 2 + size + 2);
    }
    rest = decoded;
  }
  const text = Buffer.from(rest, "latin1").toString("utf8");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status, headers, text, body };
}

// ---------------------------------------------------------------------------
// WebSocket

/**
 * Opens a WebSocket and records every frame. Resolves once it is open.
 *   ws.frames           every text frame, parsed: [{type, …}] (unparsable: {raw})
 *   ws.raws             the same frames as received text
 *   ws.next(pred, ms)   the next frame (after the last one `next` returned)
 *                       that matches pred(frame, raw); waits up to ms for it
 *   ws.nextFrame(…)     the same, resolving with {frame, raw}
 *   ws.collect(channel) a live array of that channel's `message` frames
 *   ws.send(obj)        sends JSON (a string or Buffer is sent as it is)
 *   ws.subscribe(channel, {since, epoch}) sends subscribe, resolves with `subscribed`
 *   ws.closed           a promise of {code, reason} once the connection closes
 */
export async function wsClient(wsUrl, { headers = {}, origin, protocols = [], timeoutMs = 10_000 } = {}) {
  const socket = new WebSocket(wsUrl, protocols, { headers, origin, maxPayload: 256 * 1024 * 1024 });
  const frames = [];
  const raws = [];
  const waiters = new Set();
  const collectors = new Map();
  let cursor = 0;
  let closeInfo = null;

  const client = {
    socket,
    frames,
    raws,
    get isOpen() {
      return socket.readyState === WebSocket.OPEN;
    },
    get closeInfo() {
      return closeInfo;
    },
    closed: null,
    send(obj) {
      socket.send(typeof obj === "string" || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj));
    },
    sendBinary(bytes) {
      socket.send(bytes, { binary: true });
    },
    nextFrame(pred = () => true, ms = 10_000) {
      for (let i = cursor; i < frames.length; i++) {
        if (pred(frames[i], raws[i])) {
          cursor = i + 1;
          return Promise.resolve({ frame: frames[i], raw: raws[i] });
        }
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          check(i) {
            if (!pred(frames[i], raws[i])) return false;
            cursor = i + 1;
            clearTimeout(waiter.timer);
            waiters.delete(waiter);
            resolve({ frame: frames[i], raw: raws[i] });
            return true;
          },
          fail(err) {
            clearTimeout(waiter.timer);
            waiters.delete(waiter);
            reject(err);
          },
        };
        waiter.timer = setTimeout(() => {
          const last = frames.slice(-5).map((f) => JSON.stringify(f).slice(0, 200)).join("\n  ");
          waiter.fail(new Error(`no matching WebSocket frame within ${ms} ms; last frames:\n  ${last}`));
        }, ms);
        waiters.add(waiter);
      });
    },
    async next(pred, ms) {
      return (await client.nextFrame(pred, ms)).frame;
    },
    collect(channel) {
      if (!collectors.has(channel)) {
        collectors.set(
          channel,
          frames.filter((f) => f.type === "message" && f.channel === channel),
        );
      }
      return collectors.get(channel);
    },
    async subscribe(channel, { since, epoch, timeoutMs: ms = 10_000 } = {}) {
      const op = { op: "subscribe", channel };
      if (since !== undefined) op.since = since;
      if (epoch !== undefined) op.epoch = epoch;
      client.send(op);
      return client.next(
        (f) =>
          (f.type === "subscribed" && f.channel === channel) ||
          (f.type === "error" && (f.channel === channel || f.channel === undefined)),
        ms,
      );
    },
    close(code = 1000) {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(code);
      return client.closed;
    },
  };

  client.closed = new Promise((resolve) => {
    socket.on("close", (code, reason) => {
      closeInfo = { code, reason: reason.toString("utf8") };
      for (const waiter of [...waiters]) waiter.fail(new Error(`WebSocket closed (${code} ${closeInfo.reason}) while waiting for a frame`));
      resolve(closeInfo);
    });
  });

  socket.on("message", (data, isBinary) => {
    const raw = isBinary ? `<binary ${data.length} bytes>` : data.toString("utf8");
    let frame;
    try {
      frame = isBinary ? { binary: true } : JSON.parse(raw);
    } catch {
      frame = { unparsable: true };
    }
    frames.push(frame);
    raws.push(raw);
    if (frame.type === "message" && collectors.has(frame.channel)) collectors.get(frame.channel).push(frame);
    const index = frames.length - 1;
    for (const waiter of [...waiters]) {
      if (index >= cursor) waiter.check(index);
    }
  });

  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
      socket.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket upgrade answered HTTP ${res.statusCode}`)));
    }),
    timeoutMs,
    `opening ${wsUrl}`,
  );
  socket.on("error", () => {}); // reported through `closed`
  return client;
}

// ---------------------------------------------------------------------------
// Assertions on sequences

/** The seqs of `messages` ([{seq}]), e.g. for deepEqual against range(1, n). */
export function seqsOf(messages) {
  return messages.map((m) => m.seq);
}

/** [from, from + 1, …, to] */
export function range(from, to) {
  const out = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

// ---------------------------------------------------------------------------
// Auth and upgrades (security tests)

/** base64url of a string or Buffer, without padding. */
export function base64url(bytes) {
  return Buffer.from(bytes).toString("base64url");
}

/**
 * A JSON Web Token for `payload`, signed with HMAC-SHA256 under `secret`.
 * `header` replaces the default {"alg":"HS256","typ":"JWT"}; `alg: "none"`
 * (in `header`) gives an unsigned token with an empty signature.
 */
export function signJwt(payload, secret, { header = { alg: "HS256", typ: "JWT" } } = {}) {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  if (header.alg === "none") return `${input}.`;
  const signature = crypto.createHmac("sha256", secret).update(input).digest();
  return `${input}.${base64url(signature)}`;
}

/**
 * A stream name signed as turbo-rails signs it (Active Support MessageVerifier,
 * SHA256, JSON): base64(JSON(name)) + "--" + hex(HMAC-SHA256(key, base64 part)).
 * `key` is a string or a Buffer (the 64-byte key turbo-rails derives).
 */
export function signStreamName(name, key) {
  const data = Buffer.from(JSON.stringify(name)).toString("base64");
  return `${data}--${crypto.createHmac("sha256", key).update(data).digest("hex")}`;
}

/** turbo-rails' default key for `secretKeyBase` on Rails 6.1 (PBKDF2-HMAC-SHA1, 1000 rounds, 64 bytes). */
export function turboDefaultKey(secretKeyBase, digest = "sha1") {
  return crypto.pbkdf2Sync(secretKeyBase, "turbo/signed_stream_verifier_key", 1000, 64, digest);
}

/**
 * Attempts a WebSocket upgrade and reports how it went, then closes:
 * {status: 101} when it opened, else {status, body} of the HTTP answer.
 */
export async function wsUpgradeStatus(wsUrl, { headers = {}, origin, timeoutMs = 10_000 } = {}) {
  const socket = new WebSocket(wsUrl, { headers, origin });
  try {
    return await withTimeout(
      new Promise((resolve, reject) => {
        socket.once("open", () => resolve({ status: 101, body: "" }));
        socket.once("unexpected-response", (_req, res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode, body }));
          res.on("error", () => resolve({ status: res.statusCode, body }));
        });
        socket.once("error", reject);
      }),
      timeoutMs,
      `WebSocket upgrade of ${wsUrl}`,
    );
  } finally {
    socket.on("error", () => {});
    if (socket.readyState === WebSocket.OPEN) socket.close(1000);
    else socket.terminate();
  }
}

/**
 * Opens GET `url` (an SSE stream or any other) with node:http, which lets a
 * test set any header (Origin included). Resolves with {status, headers,
 * text} once `until(text)` holds for the body read so far (default: at once
 * for a 200 event stream) or the body ends, then drops the connection.
 */
export async function httpGetStream(url, { headers = {}, until = () => true, timeoutMs = 10_000 } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.get(url, { headers, agent: false }, (res) => {
        let text = "";
        const done = () => {
          resolve({ status: res.statusCode, headers: res.headers, text });
          req.destroy();
        };
        res.setEncoding("utf8");
        res.on("data", (c) => {
          text += c;
          if (until(text)) done();
        });
        res.on("end", done);
        res.on("error", done);
      });
      req.on("error", reject);
    }),
    timeoutMs,
    `GET ${url}`,
  );
}
