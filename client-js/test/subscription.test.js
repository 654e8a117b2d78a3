// Tests for per-channel state: frames sent, dedupe, position bookkeeping, reset, gap.
import { afterEach, beforeEach, mock, test } from "node:test";
import assert from "node:assert/strict";
import { Subscription } from "../src/seqcast.js";
import { startClient } from "./harness.js";
import { clock } from "./fake_clock.js";

beforeEach(() => clock.enable());
afterEach(() => {
  clock.reset();
  mock.restoreAll();
});

function message(seq, epoch = "e1", channel = "room:1") {
  return { type: "message", channel, epoch, seq, ts: "2024-01-01T00:00:00Z", data: { n: seq } };
}

// An open client with one subscription, answered by `subscribed`.
async function subscribed({ head = 0, epoch = "e1", options, channel = "room:1" } = {}) {
  const client = await startClient();
  client.last().welcome();
  const received = [];
  const sub = client.sc.subscribe(channel, options, (msg) => received.push(msg));
  client.last().receive({ type: "subscribed", channel, epoch, head });
  return { ...client, sub, received, seqs: () => received.map((m) => m.seq) };
}

test("a live-only subscribe sends no since; subscribed moves the position to the head", async () => {
  const { sc, last } = await startClient();
  last().welcome();
  const sub = sc.subscribe("room:1", {}, () => {});
  assert.ok(sub instanceof Subscription);
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", channel: "room:1" }]);
  assert.deepEqual(sub.position, { epoch: null, seq: 0 });
  assert.equal(sub.state, "subscribing");

  const infos = [];
  sub.on("subscribed", (info) => infos.push(info));
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 41 });
  assert.deepEqual(infos, [{ channel: "room:1", epoch: "e1", head: 41 }]);
  assert.deepEqual(sub.position, { epoch: "e1", seq: 41 });
  assert.equal(sub.state, "subscribed");
});

test("subscribe with since sends since and epoch; epoch is left out when unknown", async () => {
  const { sc, last } = await startClient();
  last().welcome();
  sc.subscribe("a", { since: 10, epoch: "e7" }, () => {});
  sc.subscribe("b", { since: 0 }, () => {});
  sc.subscribe("c", () => {});
  assert.deepEqual(last().ops("subscribe"), [
    { op: "subscribe", channel: "a", since: 10, epoch: "e7" },
    { op: "subscribe", channel: "b", since: 0 },
    { op: "subscribe", channel: "c" },
  ]);
});

test("subscriptions made before welcome are sent right after it", async () => {
  const { sc, last } = await startClient();
  sc.subscribe("a", () => {});
  sc.subscribe("b", { since: 3, epoch: "x" }, () => {});
  last().open();
  assert.deepEqual(last().sent, [], "nothing goes out before welcome");
  last().receive({ type: "welcome", version: "1", heartbeat_seconds: 25 });
  assert.deepEqual(last().ops("subscribe"), [
    { op: "subscribe", channel: "a" },
    { op: "subscribe", channel: "b", since: 3, epoch: "x" },
  ]);
});

test("dedupe: duplicate and older seqs never reach the handler", async () => {
  const { last, sub, seqs, received } = await subscribed({ head: 7 });
  for (const seq of [8, 9, 9, 8, 10, 7, 3, 10, 11]) last().receive(message(seq));
  assert.deepEqual(seqs(), [8, 9, 10, 11]);
  assert.deepEqual(received[0], {
    channel: "room:1",
    epoch: "e1",
    seq: 8,
    ts: "2024-01-01T00:00:00Z",
    data: { n: 8 },
  });
  assert.deepEqual(sub.position, { epoch: "e1", seq: 11 });
});

test("messages at or below the head of a live-only subscribe are dropped", async () => {
  const { last, seqs } = await subscribed({ head: 5 });
  last().receive(message(5));
  last().receive(message(6));
  assert.deepEqual(seqs(), [6]);
});

test("the position advances only after the handler returns", async () => {
  const client = await startClient();
  client.last().welcome();
  const seen = [];
  const sub = client.sc.subscribe("room:1", (msg) => seen.push([msg.seq, sub.position.seq]));
  client.last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 2 });
  client.last().receive(message(3));
  client.last().receive(message(4));
  assert.deepEqual(seen, [
    [3, 2],
    [4, 3],
  ]);
  assert.deepEqual(sub.position, { epoch: "e1", seq: 4 });
});

test("a handler that throws is reported; its message counts as delivered", async () => {
  const client = await startClient();
  client.last().welcome();
  const boom = new Error("boom");
  const sub = client.sc.subscribe("room:1", (msg) => {
    if (msg.seq === 2) throw boom;
  });
  client.last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 1 });
  client.last().receive(message(2));
  client.last().receive(message(2));
  assert.deepEqual(sub.position, { epoch: "e1", seq: 2 });
  assert.equal(client.errors.length, 1);
  assert.equal(client.errors[0].code, "handler_error");
  assert.equal(client.errors[0].channel, "room:1");
  assert.equal(client.errors[0].cause, boom);
});

test("messages that arrive before subscribed belong to an earlier subscription and are dropped", async () => {
  const { sc, last } = await startClient();
  last().welcome();
  const received = [];
  sc.subscribe("room:1", (msg) => received.push(msg.seq));
  last().receive(message(4));
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 4 });
  last().receive(message(5));
  assert.deepEqual(received, [5]);
});

test("reset moves the position to first_seq - 1 of its epoch and emits its fields", async () => {
  const { last, sub, seqs } = await subscribed({ head: 100, options: { since: 10, epoch: "e1" } });
  const resets = [];
  sub.on("reset", (info) => resets.push(info));
  last().receive({
    type: "reset",
    channel: "room:1",
    epoch: "e1",
    first_seq: 40,
    head: 100,
    reason: "truncated",
    missed: [11, 39],
  });
  assert.deepEqual(resets, [
    {
      channel: "room:1",
      epoch: "e1",
      first_seq: 40,
      head: 100,
      reason: "truncated",
      missed: [11, 39],
    },
  ]);
  assert.deepEqual(sub.position, { epoch: "e1", seq: 39 });
  last().receive(message(40));
  last().receive(message(41));
  assert.deepEqual(seqs(), [40, 41]);
});

test("an epoch_changed reset restarts the position in the new epoch", async () => {
  const { last, sub, seqs } = await subscribed({
    epoch: "e2",
    head: 3,
    options: { since: 50, epoch: "e1" },
  });
  last().receive({
    type: "reset",
    channel: "room:1",
    epoch: "e2",
    first_seq: 1,
    head: 3,
    reason: "epoch_changed",
    missed: null,
  });
  assert.deepEqual(sub.position, { epoch: "e2", seq: 0 });
  for (const seq of [1, 2, 3]) last().receive(message(seq, "e2"));
  assert.deepEqual(seqs(), [1, 2, 3]);
  assert.deepEqual(sub.position, { epoch: "e2", seq: 3 });
});

test("a rewound reset goes on right after what survived, in the new epoch", async () => {
  // The database failed over to a standby that had this channel only up to 20; the
  // subscription held 30 of e1. 1..20 are the same messages in e2.
  const { last, sub, seqs } = await subscribed({
    epoch: "e2",
    head: 22,
    options: { since: 30, epoch: "e1" },
  });
  const resets = [];
  sub.on("reset", (info) => resets.push(info));
  const info = { channel: "room:1", epoch: "e2", first_seq: 21, head: 22, reason: "rewound", rewound_to: 20, missed: null };
  last().receive({ type: "reset", ...info });
  assert.deepEqual(resets, [info]);
  assert.deepEqual(sub.position, { epoch: "e2", seq: 20 });
  for (const seq of [21, 22]) last().receive(message(seq, "e2"));
  assert.deepEqual(seqs(), [21, 22]);
  assert.deepEqual(sub.position, { epoch: "e2", seq: 22 });
});

test("a message of another epoch without a reset is delivered and the epoch followed", async () => {
  const { last, sub, seqs } = await subscribed({ head: 9 });
  last().receive(message(10));
  last().receive(message(1, "e2"));
  last().receive(message(1, "e2"));
  last().receive(message(2, "e2"));
  assert.deepEqual(seqs(), [10, 1, 2]);
  assert.deepEqual(sub.position, { epoch: "e2", seq: 2 });
});

test("a gap in the same epoch is delivered and reported as a gap event", async () => {
  const { last, sub, seqs } = await subscribed({ head: 1 });
  const gaps = [];
  sub.on("gap", (info) => gaps.push(info));
  last().receive(message(2));
  last().receive(message(5));
  assert.deepEqual(seqs(), [2, 5]);
  assert.deepEqual(gaps, [{ channel: "room:1", epoch: "e1", expected: 3, seq: 5 }]);
  assert.deepEqual(sub.position, { epoch: "e1", seq: 5 });
});

test("an empty channel: position {null, 0} until the first message names the epoch", async () => {
  const { last, sub, seqs } = await subscribed({ epoch: null, head: 0 });
  assert.deepEqual(sub.position, { epoch: null, seq: 0 });
  last().receive(message(1, "e9"));
  assert.deepEqual(seqs(), [1]);
  assert.deepEqual(sub.position, { epoch: "e9", seq: 1 });
});

test("a since without epoch takes the epoch named by subscribed", async () => {
  const { sub } = await subscribed({ epoch: "e3", head: 20, options: { since: 12 } });
  assert.deepEqual(sub.position, { epoch: "e3", seq: 12 });
});

test("error frames naming the channel go to the subscription, others to the client", async () => {
  const { sub, errors, last } = await subscribed();
  const subErrors = [];
  sub.on("error", (info) => subErrors.push(info));
  last().receive({ type: "error", code: "forbidden", message: "not allowed", channel: "room:1" });
  last().receive({ type: "error", code: "bad_op", message: "unknown op" });
  assert.deepEqual(subErrors, [{ code: "forbidden", message: "not allowed", channel: "room:1" }]);
  assert.deepEqual(errors, [{ code: "bad_op", message: "unknown op" }]);
});

test("unsubscribe sends unsubscribe once and stops delivery", async () => {
  const { sc, sub, last, seqs } = await subscribed({ head: 0 });
  last().receive(message(1));
  sub.unsubscribe();
  sub.unsubscribe();
  last().receive(message(2));
  assert.deepEqual(seqs(), [1]);
  assert.deepEqual(last().ops("unsubscribe"), [{ op: "unsubscribe", channel: "room:1" }]);
  assert.equal(sub.state, "unsubscribed");
  // The channel is free again.
  sc.subscribe("room:1", () => {});
});

test("subscribe validates its arguments and allows one subscription per channel", async () => {
  const { sc } = await startClient();
  sc.subscribe("room:1", () => {});
  assert.throws(() => sc.subscribe("room:1", () => {}), {
    name: "Error",
    message: /already subscribed/,
  });
  assert.throws(() => sc.subscribe("bad channel", () => {}), TypeError);
  assert.throws(() => sc.subscribe("", () => {}), TypeError);
  assert.throws(() => sc.subscribe("x".repeat(1025), () => {}), TypeError);
  sc.subscribe("x".repeat(1024), () => {});
  sc.subscribe("gid/a/b:Z2lk", () => {});
  assert.throws(() => sc.subscribe("ok", {}), TypeError);
  assert.throws(() => sc.subscribe("ok", { since: -1 }, () => {}), TypeError);
  assert.throws(() => sc.subscribe("ok", { since: 1.5 }, () => {}), TypeError);
  assert.throws(() => sc.subscribe("ok", { since: 1, epoch: 5 }, () => {}), TypeError);
  sc.subscribe("A-z_0.9:@=", () => {});
  sc.close();
  assert.throws(() => sc.subscribe("later", () => {}), /closed/);
});

test("a throwing event listener is reported and does not break delivery", async () => {
  const { last, sub, seqs, errors } = await subscribed({ head: 0 });
  sub.on("gap", () => {
    throw new Error("listener bug");
  });
  last().receive(message(3));
  last().receive(message(4));
  assert.deepEqual(seqs(), [3, 4]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "handler_error");
});
