// End-to-end tests of the two endpoints the operator's console adds to the contract
// (issue "R2 6/7 The operator's console"), and of the stats endpoint it reads:
//   GET /v1/channels?prefix=P&after=NAME&limit=N   channels in byte order, paged with `next`
//   GET /v1/nodes                                  the nodes seen in the last 30 s
//   GET /v1/stats                                  this node's metrics and their history
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import {
  adminDatabaseUrl,
  fetchMetrics,
  freshDatabase,
  getJson,
  psql,
  publish,
  publishBatch,
  range,
  runSeqcast,
  signJwt,
  startNode,
  uniqueName,
  waitFor,
  wsClient,
} from "./harness.mjs";

const ADMIN = "admin-console-7e21";
const PUBLISHER = "pk-console-19ab";
const SECRET = "jwt-secret-console-55c2";
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

const nowS = () => Math.floor(Date.now() / 1000);
const bearer = (key) => ({ authorization: `Bearer ${key}` });
const token = (channels, extra = {}) => signJwt({ sub: "operator", channels, exp: nowS() + 3600, ...extra }, SECRET);

/** Asserts an error answer: `status` and {"error":{"code","message"}}. */
function assertError(res, status, code, context = "") {
  const where = `${context} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, where);
  assert.equal(res.body?.error?.code, code, where);
  assert.equal(typeof res.body.error.message, "string", where);
}

/** GET /v1/channels with these query parameters. */
function listChannels(node, params = {}, headers = {}) {
  const query = new URLSearchParams(params).toString();
  return getJson(`${node.url}/v1/channels${query ? `?${query}` : ""}`, { headers });
}

/** Every page of GET /v1/channels, following `next`: [pages, all channels]. */
async function allPages(node, params, headers = {}) {
  const pages = [];
  let afterName;
  for (;;) {
    const res = await listChannels(node, { ...params, ...(afterName ? { after: afterName } : {}) }, headers);
    assert.equal(res.status, 200, res.text);
    pages.push(res.body);
    if (res.body.next === null) break;
    assert.equal(res.body.next, res.body.channels.at(-1).channel, "next is the last name of the page");
    afterName = res.body.next;
    assert.ok(pages.length < 1000, "paging ends");
  }
  return [pages, pages.flatMap((p) => p.channels)];
}

/** Byte order of UTF-8 strings (what the contract promises), not a locale's. */
const byteOrder = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * A fresh database whose default collation is not byte order (ICU en-US), so that a
 * listing ordered by the database's collation would come out wrong. Falls back to a
 * plain database when the server has no ICU (then byte order is only checked, not
 * contrasted).
 */
async function databaseWithLocaleCollation(t) {
  const admin = await adminDatabaseUrl();
  const name = uniqueName("e2e_icu");
  try {
    await psql(admin, `CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`);
  } catch (err) {
    t.diagnostic(`no ICU collation here (${String(err.message).split("\n")[0]}); using a C database`);
    return { url: await freshDatabase(), icu: false };
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), icu: true };
}

// ---------------------------------------------------------------------------

describe("R2 6/7 console API: GET /v1/channels", () => {
  let node;
  let databaseUrl;
  let icu;

  before(async () => {
    const t = { diagnostic: (m) => console.log(`# ${m}`) };
    ({ url: databaseUrl, icu } = await databaseWithLocaleCollation(t));
    node = await startNode({
      databaseUrl,
      name: "console-list",
      args: ["--admin-key", ADMIN, "--publish-keys", PUBLISHER, "--jwt-secret", SECRET],
    });
  });
  after(() => node?.stop());

  const adminHeaders = bearer(ADMIN);
  const pub = (channel, data, opts = {}) => publish(node.url, channel, data, { headers: bearer(PUBLISHER), ...opts });

  test("names come in byte order whatever the database's collation, paged with next across page boundaries", async () => {
    // Byte order: "-" < "." < "/"... < digits < ":" < "=" < "@" < upper case < "_" < lower case.
    const names = ["B", "a", "_", "Z/1", "Z/10", "Z/2", "=eq", "@at", "9", "-dash", ".dot", "b", "A_", "a_", "aB", "ab"];
    const res = await publishBatch(node.url, names.map((channel, i) => ({ channel, data: { i } })), { headers: bearer(PUBLISHER) });
    assert.equal(res.status, 201, res.text);
    const expected = [...names].sort(byteOrder);
    assert.deepEqual(expected, ["-dash", ".dot", "9", "=eq", "@at", "A_", "B", "Z/1", "Z/10", "Z/2", "_", "a", "aB", "a_", "ab", "b"]);
    if (icu) {
      const dbOrder = (await psql(databaseUrl, `SELECT string_agg(n, ' ' ORDER BY n) FROM unnest(ARRAY[${names.map((n) => `'${n}'`).join(",")}]) AS n`)).split(" ");
      assert.notDeepEqual(dbOrder, expected, "the database's own collation is not byte order (else this test shows nothing)");
    }

    for (const limit of [1, 3, 5, 16, 100]) {
      const [pages, all] = await allPages(node, { limit: String(limit) }, adminHeaders);
      assert.deepEqual(all.map((c) => c.channel), expected, `limit ${limit}: every channel once, in byte order`);
      assert.equal(pages.length, Math.ceil(names.length / limit), `limit ${limit}: full pages, and none empty`);
      for (const p of pages.slice(0, -1)) assert.equal(p.channels.length, limit);
    }
    // `after` is exclusive and need not name a channel.
    assert.deepEqual((await listChannels(node, { after: "Z/10", limit: "3" }, adminHeaders)).body.channels.map((c) => c.channel), ["Z/2", "_", "a"]);
    assert.deepEqual((await listChannels(node, { after: "Z/0", limit: "2" }, adminHeaders)).body.channels.map((c) => c.channel), ["Z/1", "Z/10"]);
    // Prefixes, with paging inside them.
    const [, zs] = await allPages(node, { prefix: "Z/", limit: "2" }, adminHeaders);
    assert.deepEqual(zs.map((c) => c.channel), ["Z/1", "Z/10", "Z/2"]);
    const [, as] = await allPages(node, { prefix: "a", limit: "2" }, adminHeaders);
    assert.deepEqual(as.map((c) => c.channel), ["a", "aB", "a_", "ab"]);
    assert.deepEqual((await listChannels(node, { prefix: "Z/1", after: "Z/1" }, adminHeaders)).body, {
      channels: [(await listChannels(node, { prefix: "Z/10" }, adminHeaders)).body.channels[0]],
      next: null,
    });
    assert.deepEqual((await listChannels(node, { prefix: "zzz" }, adminHeaders)).body, { channels: [], next: null });
  });

  test("exact JSON: epoch, first/last seq, messages, bytes (payload bytes as published) and this node's subscribers", async () => {
    const channel = uniqueName("exact");
    const bodies = ['{"a":1}', '"caf\u00e9"', "[1, 2,   3]", "\"\\u00e9\"", "null"];
    let epoch;
    for (const raw of bodies) {
      const res = await pub(channel, undefined, { raw });
      assert.equal(res.status, 201, res.text);
      epoch = res.body.epoch;
    }
    // An idempotent retry adds nothing.
    assert.equal((await pub(channel, undefined, { raw: "null", idempotencyKey: "k1" })).status, 201);
    assert.equal((await pub(channel, undefined, { raw: "null", idempotencyKey: "k1" })).status, 200);
    const ws = await wsClient(`${node.wsUrl}?token=${token([channel])}`);
    try {
      assert.equal((await ws.subscribe(channel)).type, "subscribed");
      const res = await listChannels(node, { prefix: channel }, adminHeaders);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get("content-type"), "application/json");
      const bytes = [...bodies, "null"].reduce((n, b) => n + Buffer.byteLength(b), 0);
      assert.equal(
        res.text,
        `{"channels":[{"channel":"${channel}","epoch":"${epoch}","first_seq":1,"last_seq":6,"messages":6,"bytes":${bytes},"subscribers":1}],"next":null}`,
      );
    } finally {
      await ws.close();
    }
  });

  test("auth: the admin key or a JWT whose channels entry X* covers the prefix; 401 without credentials, 403 otherwise", async () => {
    const p = { prefix: "room:" };
    assertError(await listChannels(node, p), 401, "unauthorized", "no credentials");
    assertError(await listChannels(node, p, bearer("not-a-key")), 401, "unauthorized", "a wrong key");
    assertError(await listChannels(node, p, bearer(signJwt({ channels: ["*"], exp: nowS() - 10 }, SECRET))), 401, "unauthorized", "an expired token");
    assertError(await listChannels(node, p, bearer(signJwt({ channels: ["*"] }, "another-secret"))), 401, "unauthorized", "a forged token");

    assert.equal((await listChannels(node, p, bearer(ADMIN))).status, 200, "admin key");
    assert.equal((await listChannels(node, {}, bearer(ADMIN))).status, 200, "admin key, no prefix");
    const room = token(["room:*"]);
    assert.equal((await listChannels(node, p, bearer(room))).status, 200, "room:* covers room:");
    assert.equal((await listChannels(node, { prefix: "room:12" }, bearer(room))).status, 200, "room:* covers room:12");
    assert.equal((await listChannels(node, { ...p, token: room })).status, 200, "the token as ?token=");
    assertError(await listChannels(node, { prefix: "room" }, bearer(room)), 403, "forbidden", "room:* does not cover room");
    assertError(await listChannels(node, {}, bearer(room)), 403, "forbidden", "no prefix needs *");
    assertError(await listChannels(node, { prefix: "room:1" }, bearer(token(["room:1", "room:10"]))), 403, "forbidden", "names are not prefixes");
    assertError(await listChannels(node, { prefix: "other:" }, bearer(room)), 403, "forbidden", "another prefix");
    const all = token(["*"]);
    assert.equal((await listChannels(node, {}, bearer(all))).status, 200, "* covers everything");
    assert.equal((await listChannels(node, { prefix: "x" }, bearer(all))).status, 200, "* covers any prefix");
  });

  test("bad input is a clear 400: limit above 1000 or not a positive integer, names outside the alphabet", async () => {
    for (const limit of ["1001", "0", "-1", "abc", "1e3", "", "99999999999999999999"]) {
      assertError(await listChannels(node, { limit }, bearer(ADMIN)), 400, "invalid_request", `limit=${limit}`);
    }
    assert.equal((await listChannels(node, { limit: "1000" }, bearer(ADMIN))).status, 200);
    // A limit that cannot be decoded at all is refused too, not read as the default.
    assertError(await getJson(`${node.url}/v1/channels?limit=%zz`, { headers: bearer(ADMIN) }), 400, "invalid_request", "limit=%zz");
    for (const [what, params] of [
      ["prefix ~", { prefix: "~" }],
      ["prefix with a space", { prefix: "a b" }],
      ["after ~", { after: "~" }],
      ["a 1025-character prefix", { prefix: "p".repeat(1025) }],
      ["an undecodable prefix", null],
    ]) {
      const res = params
        ? await listChannels(node, params, bearer(ADMIN))
        : await getJson(`${node.url}/v1/channels?prefix=%zz`, { headers: bearer(ADMIN) });
      assertError(res, 400, "invalid_request", what);
    }
    const post = await fetch(`${node.url}/v1/channels`, { method: "POST", headers: bearer(ADMIN) });
    assert.equal(post.status, 405);
    assert.equal(node.alive, true);
  });
});

describe("R2 6/7 console API: bytes and messages through publishes and retention", () => {
  test("messages = last_seq - first_seq + 1 and bytes = retained payload bytes, after publishes and after a trim", { timeout: 60_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({
      databaseUrl,
      name: "console-retention",
      args: ["--retention-messages", "3", "--retention-check-seconds", "1"],
    });
    t.after(() => node.stop());
    const channel = uniqueName("trim");
    const sizes = [10, 200, 30, 4000, 50];
    const body = (n, i) => JSON.stringify("x".repeat(n - 2 - String(i).length) + i);
    for (const [i, n] of sizes.slice(0, 2).entries()) assert.equal((await publish(node.url, channel, undefined, { raw: body(n, i) })).status, 201);
    const stats = async () => (await listChannels(node, { prefix: channel })).body.channels[0];
    let s = await stats();
    assert.deepEqual([s.first_seq, s.last_seq, s.messages, s.bytes], [1, 2, 2, 210]);

    // A batch of three more: five in all, three kept.
    const res = await publishBatch(node.url, sizes.slice(2).map((n, k) => ({ channel, data: JSON.parse(body(n, k + 2)) })));
    assert.equal(res.status, 201, res.text);
    // A trim raises first_seq first (readers stop serving below it), then deletes the
    // rows and takes their bytes off in a statement of its own: wait for both.
    s = await waitFor(async () => {
      const now = await stats();
      return now.first_seq === 3 && now.bytes === 30 + 4000 + 50 ? now : null;
    }, { timeoutMs: 20_000, what: "the trim to raise first_seq to 3 and take the trimmed bytes off" });
    assert.deepEqual([s.first_seq, s.last_seq, s.messages, s.bytes], [3, 5, 3, 30 + 4000 + 50]);
    const retained = await psql(
      databaseUrl,
      `SELECT sum(octet_length(m.payload)) FROM seqcast.messages m JOIN seqcast.channels c ON c.id = m.channel_id WHERE c.name = '${channel}'`,
    );
    assert.equal(Number(retained), s.bytes, "bytes = what the log holds");
  });
});

describe("R2 6/7 console API: GET /v1/nodes", () => {
  test("lists both nodes of a database with their connections and drain state; a node that stops refreshing goes after 30 s", { timeout: 120_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const args = ["--admin-key", ADMIN, "--publish-keys", PUBLISHER];
    const a = await startNode({ databaseUrl, name: "nodes-a", args });
    t.after(() => a.stop());
    const b = await startNode({ databaseUrl, name: "nodes-b", args });
    t.after(() => b.kill());
    const started = Date.now();

    assertError(await getJson(`${a.url}/v1/nodes`), 401, "unauthorized", "no key");
    assertError(await getJson(`${a.url}/v1/nodes`, { headers: bearer(PUBLISHER) }), 403, "forbidden", "a publish key");
    assert.equal((await fetch(`${a.url}/v1/nodes`, { method: "POST", headers: bearer(ADMIN) })).status, 405);

    // Two WebSocket clients and one Action Cable client on b, one SSE stream on a.
    const clients = await Promise.all([wsClient(b.wsUrl), wsClient(b.wsUrl), wsClient(`ws://127.0.0.1:${b.port}/cable`, { protocols: ["actioncable-v1-json"] })]);
    t.after(() => Promise.all(clients.map((c) => c.close())));
    const sse = http.get(`${a.url}/v1/sse/${uniqueName("sse")}`);
    sse.on("error", () => {});
    t.after(() => sse.destroy());

    const nodesOf = async (node) => {
      const res = await getJson(`${node.url}/v1/nodes`, { headers: bearer(ADMIN) });
      assert.equal(res.status, 200, res.text);
      return res.body.nodes;
    };
    const host = (await nodesOf(a)).find((n) => n.address === a.url)?.name.replace(/:\d+$/, "");
    assert.ok(host, "a lists itself by its address");
    const nameOf = (node) => `${host}:${node.port}`;
    const want = (node, connections) => ({
      name: nameOf(node),
      address: node.url,
      version: "0.1.0",
      connections,
      draining: false,
    });
    const listed = await waitFor(async () => {
      const nodes = await nodesOf(a);
      const shape = nodes.map(({ started_at, last_seen, ...rest }) => rest);
      const expected = [want(a, { websocket: 0, cable: 0, sse: 1 }), want(b, { websocket: 2, cable: 1, sse: 0 })].sort((x, y) => byteOrder(x.name, y.name));
      try {
        assert.deepEqual(shape, expected);
        return nodes;
      } catch {
        return null;
      }
    }, { timeoutMs: 20_000, what: "a's /v1/nodes to show both nodes with their connections" });
    for (const n of listed) {
      assert.deepEqual(Object.keys(n), ["name", "address", "version", "started_at", "last_seen", "connections", "draining"]);
      assert.deepEqual(Object.keys(n.connections), ["websocket", "cable", "sse"]);
      assert.match(n.started_at, RFC3339);
      assert.match(n.last_seen, RFC3339);
      const startedAt = Date.parse(n.started_at);
      assert.ok(startedAt >= started - 60_000 && startedAt <= Date.now(), `started_at ${n.started_at}`);
      assert.ok(Date.parse(n.last_seen) >= startedAt, "seen after it started");
    }
    assert.deepEqual((await nodesOf(b)).map((n) => n.name), listed.map((n) => n.name), "b sees the same nodes");

    // b drains (without stopping): its row says so within a refresh.
    assert.equal((await fetch(`${b.url}/v1/admin/drain?window_seconds=30`, { method: "POST", headers: bearer(ADMIN) })).status, 202);
    await waitFor(async () => (await nodesOf(a)).find((n) => n.name === nameOf(b))?.draining === true, { timeoutMs: 15_000, what: "b shown draining" });

    // b stops refreshing (killed): listed until 30 s after it was last seen, then gone.
    const lastSeenBeforeKill = Date.parse((await nodesOf(a)).find((n) => n.name === nameOf(b)).last_seen);
    await b.kill();
    assert.ok((await nodesOf(a)).some((n) => n.name === nameOf(b)), "b still listed right after it died");
    const lastSeen = Date.parse((await nodesOf(a)).find((n) => n.name === nameOf(b)).last_seen);
    assert.ok(lastSeen >= lastSeenBeforeKill);
    await waitFor(async () => !(await nodesOf(a)).some((n) => n.name === nameOf(b)), { timeoutMs: 60_000, intervalMs: 250, what: "b to drop out of /v1/nodes" });
    const goneAfter = Date.now() - lastSeen;
    t.diagnostic(`b dropped out ${goneAfter} ms after it was last seen`);
    assert.ok(goneAfter >= 29_000 && goneAfter <= 40_000, `dropped ${goneAfter} ms after last_seen: the window is 30 s`);
    assert.deepEqual((await nodesOf(a)).map((n) => n.name), [nameOf(a)]);
  });
});

describe("R2 6/7 console API: GET /v1/stats", () => {
  test("the same numbers as /metrics (one registry), and a history of rates sampled every 5 s", { timeout: 90_000 }, async (t) => {
    const node = await startNode({ databaseUrl: await freshDatabase(), name: "console-stats", args: ["--admin-key", ADMIN] });
    t.after(() => node.stop());
    assertError(await getJson(`${node.url}/v1/stats`), 401, "unauthorized", "no key");

    const channel = uniqueName("stats");
    const ws = await wsClient(node.wsUrl);
    t.after(() => ws.close());
    assert.equal((await ws.subscribe(channel)).type, "subscribed");
    const stats = async () => {
      const res = await getJson(`${node.url}/v1/stats`, { headers: bearer(ADMIN) });
      assert.equal(res.status, 200, res.text);
      return res.body;
    };

    const first = await stats();
    assert.deepEqual(Object.keys(first), ["node", "readiness", "metrics", "history"]);
    assert.equal(first.node.address, node.url);
    assert.equal(first.node.version, "0.1.0");
    assert.match(first.node.started_at, RFC3339);
    assert.deepEqual(first.readiness, { status: "ready", database: true, schema: true, draining: false });

    // Quiet node: every sample of /metrics has the same value in /v1/stats.
    const prom = await fetchMetrics(node.url);
    const again = await stats();
    for (const [sample, value] of Object.entries(prom)) {
      const m = /^([a-z_]+?)(_bucket|_sum|_count)?(?:\{(\w+)="([^"]*)"\})?$/.exec(sample);
      assert.ok(m, sample);
      const [, base, suffix, label, labelValue] = m;
      if (suffix === "_bucket") continue;
      if (suffix && again.metrics[base] && typeof again.metrics[base] === "object" && "count" in again.metrics[base]) {
        if (suffix === "_count") assert.equal(again.metrics[base].count, value, sample);
        continue;
      }
      const name = suffix ? base + suffix : base;
      const got = label ? again.metrics[name]?.[labelValue] : again.metrics[name];
      if (["seqcast_pg_queries_total", "seqcast_http_connections"].includes(name)) continue; // moves with the requests themselves
      assert.equal(got, value, `${sample} in /v1/stats`);
    }
    assert.deepEqual(again.metrics.seqcast_connections_by_kind, { websocket: 1, cable: 0, sse: 0 });
    assert.equal(again.metrics.seqcast_connections, 1);
    for (const name of ["seqcast_publish_ok_total", "seqcast_deliveries_total", "seqcast_replay_cache_messages_total", "seqcast_replay_pg_messages_total", "seqcast_slow_consumer_closes_total", "seqcast_pg_errors_total", "seqcast_draining", "seqcast_database_up", "seqcast_cache_bytes"]) {
      assert.equal(typeof again.metrics[name], "number", name);
    }
    assert.deepEqual(Object.keys(again.metrics.seqcast_commit_seconds), ["count", "sum"]);

    // Publish for a while: the history's publish rate and deliveries move.
    const n = 60;
    for (let i = 1; i <= n; i++) {
      assert.equal((await publish(node.url, channel, { i }, { headers: bearer(ADMIN) })).status, 201);
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(() => ws.collect(channel).length >= n, { timeoutMs: 20_000, what: "the subscriber to get every message" });
    const h = (await waitFor(async () => {
      const s = await stats();
      const rates = s.history.series.seqcast_publish_ok_total.values;
      return rates.reduce((x, y) => x + y, 0) > 0 && s.history.t.length >= 2 ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 500, what: "a publish rate in the history" })).history;
    assert.equal(h.interval_seconds, 5);
    const len = h.t.length;
    for (const [name, series] of Object.entries(h.series)) {
      assert.ok(["rate", "value", "mean"].includes(series.kind), name);
      const lists = Array.isArray(series.values) ? [series.values] : Object.values(series.values);
      for (const list of lists) assert.equal(list.length, len, `${name}: one value per interval`);
    }
    assert.equal(h.series.seqcast_publish_ok_total.kind, "rate");
    assert.equal(h.series.seqcast_connections_by_kind.values.websocket.at(-1), 1);
    assert.ok(h.series.seqcast_deliveries_total.values.some((v) => v > 0), "deliveries per second moved");
    const commitMeans = h.series.seqcast_commit_seconds.values.filter((v) => v !== null);
    assert.ok(commitMeans.length >= 1 && commitMeans.every((v) => v > 0 && v < 5), `commit latency means ${commitMeans}`);
    // The rates add up to the publishes (within the intervals the history covers).
    const total = h.series.seqcast_publish_ok_total.values.reduce((sum, rate, i) => sum + rate * (i === 0 ? 5 : (h.t[i] - h.t[i - 1]) / 1000), 0);
    assert.ok(total <= n + 0.5, `rates × intervals ≤ publishes: ${total}`);
  });
});

describe("R2 6/7 console API: seqcast channels", () => {
  test("the CLI lists the same numbers, paged in byte order", { timeout: 60_000 }, async (t) => {
    const databaseUrl = await freshDatabase();
    const node = await startNode({ databaseUrl, name: "console-cli" });
    t.after(() => node.stop());
    const names = range(1, 1205).map((i) => `cli:${String(i).padStart(5, "0")}`);
    for (let i = 0; i < names.length; i += 500) {
      const res = await publishBatch(node.url, names.slice(i, i + 500).map((channel) => ({ channel, data: 1 })));
      assert.equal(res.status, 201, res.text);
    }
    const out = await runSeqcast(["channels", "--database-url", databaseUrl]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n");
    assert.match(lines[0], /^CHANNEL\s+EPOCH\s+FIRST_SEQ\s+LAST_SEQ\s+MESSAGES\s+BYTES$/);
    assert.equal(lines.length, 1 + names.length, "every channel, over more than one page of 1000");
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]), names);
    assert.deepEqual(lines[1].split(/\s+/).slice(2), ["1", "1", "1", "1"]);
  });
});
