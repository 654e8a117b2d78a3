// A seqcast node as a child process for the soak test: like startNode() of
// tests/e2e/harness.mjs (same port across restarts, same cache directory), plus
// what the soak needs: its log in a file of the soak's artifacts directory,
// SIGSTOP/SIGCONT, and a start that keeps trying while PostgreSQL is away (a
// node exits at start when it cannot reach PostgreSQL to migrate, so start()
// respawns it until it is ready or the deadline passes, as a supervisor would).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { BIN, freePort, withTimeout } from "../e2e/harness.mjs";

const running = new Set();
process.on("exit", () => {
  for (const proc of running) {
    try {
      proc.kill("SIGCONT");
      proc.kill("SIGKILL");
    } catch {
      // gone already
    }
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Prepares (does not start) a node: `await node.start()` runs it.
 * `databaseUrl` is what the node connects to (e.g. a fault proxy in front of
 * PostgreSQL); `args` are extra flags; `logPath` receives all its output.
 */
export async function soakNode({ name, databaseUrl, args = [], env = {}, logPath, cacheDir }) {
  if (!fs.existsSync(BIN)) throw new Error(`no seqcast binary at ${BIN} (run scripts/build)`);
  const port = await freePort();
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.mkdirSync(path.dirname(logPath), { recursive: true });
  const log = fs.createWriteStream(logPath, { flags: "a" });
  const url = `http://127.0.0.1:${port}`;
  let tail = "";

  const node = {
    name,
    port,
    url,
    cacheDir,
    logPath,
    proc: null,
    exited: null,
    paused: false,
    spawns: 0,
    get alive() {
      return node.proc !== null && node.proc.exitCode === null && node.proc.signalCode === null;
    },
    tail(lines = 30) {
      return tail.split("\n").slice(-lines).join("\n");
    },
    note(text) {
      log.write(`=== soak ${new Date().toISOString()} ${text}\n`);
    },
    async readyz(timeoutMs = 2_000) {
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        return res.status;
      } catch {
        return 0;
      }
    },
    _spawn() {
      node.spawns += 1;
      node.note(`spawn #${node.spawns}`);
      const proc = spawn(
        BIN,
        ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", databaseUrl, "--cache-dir", cacheDir, ...args],
        { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
      );
      node.proc = proc;
      node.paused = false;
      running.add(proc);
      const onData = (chunk) => {
        log.write(chunk);
        tail += chunk.toString("utf8");
        if (tail.length > 128 * 1024) tail = tail.slice(-64 * 1024);
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
      node.exited = new Promise((resolve) => {
        proc.on("exit", (code, signal) => {
          running.delete(proc);
          node.note(`exited code=${code} signal=${signal}`);
          resolve({ code, signal });
        });
      });
      return proc;
    },
    /**
     * Starts the node and waits for /readyz 200; respawns it when it exits
     * before that (PostgreSQL unreachable at start). `clearCache` empties the
     * cache directory first.
     */
    async start({ clearCache = false, timeoutMs = 90_000 } = {}) {
      if (node.alive) throw new Error(`${name} is still running`);
      if (clearCache) {
        fs.rmSync(cacheDir, { recursive: true, force: true });
        fs.mkdirSync(cacheDir, { recursive: true });
      }
      const deadline = Date.now() + timeoutMs;
      let attempts = 0;
      for (;;) {
        attempts += 1;
        const proc = node._spawn();
        for (;;) {
          if (proc.exitCode !== null || proc.signalCode !== null) break;
          if ((await node.readyz()) === 200) return { attempts };
          if (Date.now() >= deadline) {
            proc.kill("SIGKILL");
            await node.exited;
            throw new Error(`${name} not ready within ${timeoutMs} ms (${attempts} spawns)\n${node.tail()}`);
          }
          await sleep(100);
        }
        if (Date.now() >= deadline) {
          throw new Error(`${name} kept exiting at start (${attempts} spawns)\n${node.tail()}`);
        }
        await sleep(250);
      }
    },
    async signal(sig, timeoutMs = 30_000) {
      const proc = node.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return node.exited;
      if (node.paused) {
        proc.kill("SIGCONT");
        node.paused = false;
      }
      proc.kill(sig);
      try {
        return await withTimeout(node.exited, timeoutMs, `${name} exiting after ${sig}`);
      } catch (err) {
        proc.kill("SIGKILL");
        const exit = await node.exited;
        return { ...exit, timedOut: true, error: err.message };
      }
    },
    kill() {
      return node.signal("SIGKILL", 10_000);
    },
    /** SIGTERM (drain) and wait for the exit; SIGKILL after `timeoutMs`. */
    term(timeoutMs = 30_000) {
      return node.signal("SIGTERM", timeoutMs);
    },
    pause() {
      if (!node.alive || node.paused) return false;
      node.proc.kill("SIGSTOP");
      node.paused = true;
      node.note("SIGSTOP");
      return true;
    },
    resume() {
      if (!node.alive || !node.paused) return false;
      node.proc.kill("SIGCONT");
      node.paused = false;
      node.note("SIGCONT");
      return true;
    },
    async close() {
      if (node.alive) await node.term(20_000);
      await new Promise((resolve) => log.end(resolve));
    },
  };
  return node;
}
