// End-to-end tests of a PostgreSQL failover (issue "R2 7/7"): a primary and a streaming
// standby, nodes on a multi-host URL naming both, the primary stopped and the standby
// promoted. Synchronous: every acknowledged publish is delivered once, in order, with no
// reset. Asynchronous, the standby certainly behind: every client at or below the head
// that survived goes on without a reset, every client that saw a lost message is told
// `rewound` first, and no two different messages are ever shown under one (epoch, seq).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  nodeForTest,
  openWs,
  publish,
  publishWithRetry,
  range,
  runSeqcast,
  seqsOf,
  uniqueName,
  waitFor,
  wsClient,
} from "./harness.mjs";
import { lsnCompare, startReplicatedPostgres } from "./replication.mjs";

/** A subscriber of `channel` on `node` from `since` (with `epoch`), collecting frames. */
async function subscriber(t, node, channel, since, epoch) {
  const ws = await openWs(t, node);
  const subscribed = await ws.subscribe(channel, { since, epoch });
  assert.equal(subscribed.type, "subscribed", JSON.stringify(subscribed));
  return ws;
}

/** The frames of `channel` a client got after its `subscribed`: messages and resets. */
function framesOf(ws, channel) {
  return ws.frames.filter((f) => (f.type === "message" || f.type === "reset") && f.channel === channel);
}

/** Fails if two frames anywhere showed different data under one (epoch, seq). */
function assertOneMessagePerPosition(clients, channel) {
  const seen = new Map();
  for (const ws of clients) {
    for (const f of ws.collect(channel)) {
      const key = `${f.epoch}/${f.seq}`;
      if (!seen.has(key)) seen.set(key, f.data);
      assert.equal(f.data, seen.get(key), `two messages under (${key})`);
    }
  }
}

describe("failover to a standby", () => {
  test("synchronous: every acknowledged publish arrives once, in order, no reset", async (t) => {
    const pg = await startReplicatedPostgres({ synchronous: true });
    t.after(() => pg.destroy());
    const url = await pg.createDatabase(uniqueName("fo_sync"));
    const a = await nodeForTest(t, url, "fo-sync-a");
    const b = await nodeForTest(t, url, "fo-sync-b");
    const channel = "orders";
    const clients = [];
    for (const node of [a, b, a, b]) clients.push(await subscriber(t, node, channel, 0));

    // One publisher, closed loop, retrying each message under its key until answered.
    const total = 120;
    const acked = [];
    let downAt = 0; // when the primary was gone
    let firstAfterMs = null; // … until the first 201 of a publish sent after that
    let retried = 0;
    const publisher = (async () => {
      for (let k = 1; k <= total; k++) {
        const node = k % 2 ? a : b;
        const began = Date.now();
        const res = await publishWithRetry(node.url, channel, `m${k}`, { idempotencyKey: `k${k}`, timeoutMs: 60_000 });
        retried += res.attempts - 1;
        if (downAt && began >= downAt && firstAfterMs === null) firstAfterMs = Date.now() - downAt;
        acked.push(res.body.seq);
      }
    })();
    await waitFor(() => acked.length >= 40, { timeoutMs: 30_000, what: "40 publishes before the failover" });
    await pg.stopPrimary({ immediate: true });
    downAt = Date.now();
    await pg.promote();
    const promotedMs = Date.now() - downAt;
    await publisher;

    assert.deepEqual(acked, range(1, total), "each publish got the next seq");
    for (const [i, ws] of clients.entries()) {
      const got = ws.collect(channel);
      await waitFor(() => got.length >= total, { timeoutMs: 30_000, what: `client ${i}: ${total} messages (has ${got.length})` });
      assert.deepEqual(seqsOf(got), range(1, total), `client ${i}: every seq once, in order`);
      assert.deepEqual(got.map((m) => m.data), range(1, total).map((k) => `m${k}`), `client ${i}: data`);
      assert.deepEqual(framesOf(ws, channel).filter((f) => f.type === "reset"), [], `client ${i}: no reset`);
    }
    assertOneMessagePerPosition(clients, channel);
    // Ready again on the new primary, and the CLI finds it through the same URL.
    for (const node of [a, b]) assert.equal((await fetch(`${node.url}/readyz`)).status, 200);
    const cli = await runSeqcast(["channels", "--database-url", url]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`${channel}\\s.*\\b${total}\\b`));
    t.diagnostic(`promoted ${promotedMs} ms after the primary was gone; the first 201 of a publish sent after that ${firstAfterMs} ms after; ${retried} retried attempts`);
  });

  test("asynchronous, behind: rewound beyond what survived, nothing else noticed", async (t) => {
    const pg = await startReplicatedPostgres();
    t.after(() => pg.destroy());
    const url = await pg.createDatabase(uniqueName("fo_async"));
    const a = await nodeForTest(t, url, "fo-async-a");
    const b = await nodeForTest(t, url, "fo-async-b");
    // A third node that sees 1..50 into its cache, then is down across the failover:
    // on its return, its cache must not serve the lost 21..50 as the new ones.
    const c = await nodeForTest(t, url, "fo-async-c");
    const channel = "room";
    const live = [];
    for (const node of [a, b, a, b, c]) live.push(await subscriber(t, node, channel, 0));

    for (let k = 1; k <= 20; k++) assert.equal((await publish(a.url, channel, `old${k}`)).status, 201);
    await pg.waitCaughtUp();
    await pg.detachStandby();
    for (let k = 21; k <= 50; k++) assert.equal((await publish(k % 2 ? a.url : b.url, channel, `old${k}`)).status, 201);
    for (const [i, ws] of live.entries()) {
      await waitFor(() => ws.collect(channel).length >= 50, { timeoutMs: 30_000, what: `live ${i}: 1..50` });
    }
    const e0 = live[0].collect(channel)[0].epoch;
    await live.pop().close(); // c's subscriber
    await c.stop();
    const lsn = await pg.lsns();
    assert.equal(lsnCompare(lsn.standbyReceived, lsn.primaryCurrent), -1, `the standby is behind: ${JSON.stringify(lsn)}`);

    await pg.stopPrimary();
    await pg.promote();
    // The first publishes after the failover: the channel continues after 20, in a new epoch.
    const fresh = [];
    for (let k = 21; k <= 25; k++) {
      const res = await publishWithRetry(a.url, channel, `new${k}`, { idempotencyKey: `new${k}` });
      fresh.push(res.body);
    }
    assert.deepEqual(fresh.map((r) => r.seq), range(21, 25));
    const e1 = fresh[0].epoch;
    assert.notEqual(e1, e0, "a new epoch");
    for (const r of fresh) assert.equal(r.epoch, e1);

    // Live subscribers held 50: rewound to 20, then 21..25 of the new epoch.
    for (const [i, ws] of live.entries()) {
      await waitFor(() => ws.collect(channel).length >= 55, { timeoutMs: 30_000, what: `live ${i}: 21..25 again` });
      const after = framesOf(ws, channel).slice(50);
      assert.deepEqual(after[0], {
        type: "reset", channel, epoch: e1, first_seq: 21, head: after[0].head,
        reason: "rewound", rewound_to: 20, missed: null,
      }, `live ${i}: the reset comes first`);
      assert.deepEqual(after.slice(1).map((m) => [m.epoch, m.seq, m.data]),
        range(21, 25).map((k) => [e1, k, `new${k}`]), `live ${i}: then the new messages`);
    }

    // Clients resuming from a position of the old epoch, on a node that was up and on
    // the one that was down (its cache emptied on start: filled on another timeline).
    await c.start();
    assert.match(c.output, /cache_dir held messages of another database or server timeline \(a failover\); emptied it/);
    const resumed = [];
    for (const node of [b, c]) {
      const cases = [[15, false], [20, false], [30, true], [50, true]];
      for (const [since, rewound] of cases) {
        const ws = await subscriber(t, node, channel, since, e0);
        resumed.push(ws);
        const from = rewound ? 20 : since; // a rewound position goes on after what survived
        const want = [...range(from + 1, 20).map((k) => [e1, k, `old${k}`]), ...range(Math.max(from, 20) + 1, 25).map((k) => [e1, k, `new${k}`])];
        await waitFor(() => ws.collect(channel).length >= want.length, { timeoutMs: 30_000, what: `resume from ${since}` });
        const frames = framesOf(ws, channel);
        if (rewound) {
          assert.equal(frames[0].type, "reset", `resume from ${since}: reset first`);
          assert.equal(frames[0].reason, "rewound");
          assert.equal(frames[0].rewound_to, 20);
          frames.shift();
        }
        assert.deepEqual(frames.map((m) => [m.type === "message" ? m.epoch : m.type, m.seq, m.data]), want, `resume from ${since} on ${node === c ? "the restarted node" : "a node that was up"}`);
      }
    }
    assertOneMessagePerPosition([...live, ...resumed], channel);

    // Action Cable clients with AnyCable's resume (ext-json) name positions the same way.
    const cable = await wsClient(`ws://127.0.0.1:${b.port}/cable`, { protocols: ["actioncable-v1-ext-json"] });
    t.after(() => cable.close());
    const cableSub = async (offset) => {
      const identifier = JSON.stringify({ channel: "$pubsub", stream_name: channel, n: offset });
      cable.send({ command: "subscribe", identifier, history: { since: 0, streams: { [channel]: { epoch: e0, offset } } } });
      await cable.next((f) => f.identifier === identifier && f.type === "confirm_subscription");
      return identifier;
    };
    const kept = await cableSub(15);
    await cable.next((f) => f.identifier === kept && f.type === "confirm_history");
    const keptMessages = cable.frames.filter((f) => f.identifier === kept && "message" in f);
    assert.deepEqual(keptMessages.map((f) => [f.epoch, f.offset, f.message]),
      [...range(16, 20).map((k) => [e1, k, `old${k}`]), ...range(21, 25).map((k) => [e1, k, `new${k}`])], "cable resume from 15");
    const lost = await cableSub(30);
    await cable.next((f) => f.identifier === lost && f.type === "reject_history");

    // What an operator sees: the node counted and logged what the failover took.
    const metrics = await a.metrics();
    assert.ok(metrics.seqcast_timeline_changes_total >= 1, "timeline change counted");
    assert.equal(metrics.seqcast_rewinds_total, 1);
    assert.equal(metrics.seqcast_rewound_messages_total, 30);
    assert.match(a.output, /channel rewound by a failover.*channel=room .*seen_head=50 rewound_to=20 lost=30/);
  });
});
