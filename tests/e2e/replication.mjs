// A PostgreSQL primary and its streaming standby (scripts/pg-temp), for
// failover tests: stop the primary, promote the standby, and check what the
// standby kept. Like the rest of the harness, it waits for conditions with a
// deadline and never sleeps to synchronise.
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { REPO, psql, waitFor } from "./harness.mjs";

const execFileP = promisify(execFile);
const PG_TEMP = path.join(REPO, "scripts/pg-temp");

async function pgTemp(...args) {
  const { stdout } = await execFileP(PG_TEMP, args, { timeout: 120_000 });
  return stdout.trim();
}

// Clusters still running when the test process exits (a test that failed
// before destroy()) are killed with it.
const liveDirs = new Set();
process.on("exit", () => {
  for (const dir of liveDirs) {
    spawnSync(PG_TEMP, ["kill", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function lsnValue(lsn) {
  const match = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(lsn ?? "");
  if (!match) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Compares two LSNs ('X/Y', hexadecimal halves): -1, 0 or 1, as for sort(). */
export function lsnCompare(a, b) {
  const x = lsnValue(a);
  const y = lsnValue(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const quoteIdent = (name) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (text) => `'${text.replace(/'/g, "''")}'`;

// psql's complaint when no server answers (stopped, or on its way down).
const isUnreachable = (err) => /connection to server .* failed/.test(`${err.stderr ?? err.message}`);

/** {url, port, dir} of the cluster pg-temp started in `dir`, printed as `url`. */
function cluster(dir, url) {
  return { url, port: Number(new URL(url).port), dir };
}

/**
 * Starts a primary and a streaming standby of it, each in a fresh temporary
 * directory. With `synchronous`, the primary waits for the standby at every
 * commit (synchronous_standby_names = 'standby'): what committed is on the
 * standby, and commits hang while it does not answer (e.g. once detached).
 *
 *   primary, standby        {url, port, dir} (url: database `postgres`)
 *   url(dbname)             a libpq URL naming both, primary first, with
 *                           target_session_attrs=read-write: it reaches
 *                           whichever of them takes writes
 *   createDatabase(name)    creates it on the primary, waits until the standby
 *                           has it; resolves with url(name)
 *   detachStandby()         stops the standby's WAL receiver (it stays up): it
 *                           gets nothing the primary writes from then on
 *   lsns()                  {primaryCurrent (null while the primary is down),
 *                           standbyReceived, standbyReplayed}, 'X/Y' strings;
 *                           the standby's stay readable after promotion
 *   waitCaughtUp()          until the standby has replayed all the primary had
 *                           written when called; resolves with that LSN
 *   stopPrimary({immediate}) fast shutdown, or immediate (like a crash)
 *   startPrimary()          starts it again
 *   failover()              kill the primary, promote the standby, give it a new
 *                           standby: `primary` and `standby` name the new pair
 *   promote()               the standby becomes a primary; resolves once it
 *                           accepts writes
 *   destroy()               kills both and removes their files
 */
export async function startReplicatedPostgres({ synchronous = false } = {}) {
  // `let`: a failover() swaps them, and a new standby gets a new directory.
  let primaryDir = fs.mkdtempSync(path.join(os.tmpdir(), "seqcast-e2e-pg-primary-"));
  let standbyDir = fs.mkdtempSync(path.join(os.tmpdir(), "seqcast-e2e-pg-standby-"));
  liveDirs.add(primaryDir);
  liveDirs.add(standbyDir);

  // Makes the standby synchronous: the primary waits for it at every commit.
  const makeSynchronous = async () => {
    // Two statements: ALTER SYSTEM cannot share a transaction.
    await psql(pair.primary.url, "ALTER SYSTEM SET synchronous_standby_names = 'standby'");
    await psql(pair.primary.url, "SELECT pg_reload_conf()");
    await waitFor(
      async () =>
        (await psql(pair.primary.url, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")) === "sync",
      { timeoutMs: 30_000, what: "the standby to become synchronous" },
    );
  };

  const pair = {
    primary: null,
    standby: null,
    url(dbname) {
      const hosts = [pair.primary, pair.standby].map((c) => `127.0.0.1:${c.port}`).join(",");
      return `postgresql://postgres@${hosts}/${encodeURIComponent(dbname)}?target_session_attrs=read-write`;
    },
    async createDatabase(name) {
      await psql(pair.primary.url, `CREATE DATABASE ${quoteIdent(name)}`);
      await waitFor(
        async () => (await psql(pair.standby.url, `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(name)}`)) === "1",
        { timeoutMs: 30_000, what: `database ${name} on the standby` },
      );
      return pair.url(name);
    },
    async detachStandby() {
      await pgTemp("detach", standbyDir);
    },
    async lsns() {
      let primaryCurrent = null;
      try {
        primaryCurrent = await psql(pair.primary.url, "SELECT pg_current_wal_lsn()");
      } catch (err) {
        if (!isUnreachable(err)) throw err;
      }
      const row = await psql(pair.standby.url, "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()");
      const [standbyReceived, standbyReplayed] = row.split("|").map((lsn) => lsn || null);
      return { primaryCurrent, standbyReceived, standbyReplayed };
    },
    async waitCaughtUp({ timeoutMs = 30_000 } = {}) {
      const target = await psql(pair.primary.url, "SELECT pg_current_wal_lsn()");
      await waitFor(
        async () => {
          const replayed = await psql(pair.standby.url, "SELECT pg_last_wal_replay_lsn()");
          return replayed !== "" && lsnCompare(replayed, target) >= 0;
        },
        { timeoutMs, what: `the standby to replay up to ${target}` },
      );
      return target;
    },
    async stopPrimary({ immediate = false } = {}) {
      await pgTemp(immediate ? "kill" : "stop", primaryDir);
    },
    /** Starts the primary again after stopPrimary() (same port). */
    async startPrimary() {
      await pgTemp("start", primaryDir);
    },
    /**
     * A whole failover, as a failover manager does it: the primary dies (immediate
     * shutdown), the standby is promoted and becomes `primary`, and a new standby of it
     * (a fresh base backup; synchronous again if the pair was) becomes `standby`.
     * Resolves with the milliseconds from the kill until the new primary took writes.
     */
    async failover() {
      const started = Date.now();
      await pgTemp("kill", primaryDir);
      await pgTemp("promote", standbyDir);
      const promotedAfterMs = Date.now() - started;
      const oldDir = primaryDir;
      primaryDir = standbyDir;
      pair.primary = pair.standby;
      fs.rmSync(oldDir, { recursive: true, force: true });
      liveDirs.delete(oldDir);
      standbyDir = fs.mkdtempSync(path.join(os.tmpdir(), "seqcast-e2e-pg-standby-"));
      liveDirs.add(standbyDir);
      pair.standby = cluster(standbyDir, await pgTemp("standby", standbyDir, primaryDir));
      if (synchronous) await makeSynchronous();
      return promotedAfterMs;
    },
    async promote() {
      await pgTemp("promote", standbyDir);
    },
    async destroy() {
      await Promise.all(
        [primaryDir, standbyDir].map(async (dir) => {
          await pgTemp("kill", dir);
          fs.rmSync(dir, { recursive: true, force: true });
          liveDirs.delete(dir);
        }),
      );
    },
  };

  try {
    pair.primary = cluster(primaryDir, await pgTemp("start", primaryDir));
    pair.standby = cluster(standbyDir, await pgTemp("standby", standbyDir, primaryDir));
    if (synchronous) await makeSynchronous();
  } catch (err) {
    await pair.destroy().catch(() => {});
    throw err;
  }
  return pair;
}
