// Tests for positions kept in a localStorage-like storage across Seqcast instances.
import { afterEach, beforeEach, mock, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStorage } from "./fake_websocket.js";
import { startClient } from "./harness.js";
import { clock } from "./fake_clock.js";

beforeEach(() => clock.enable());
afterEach(() => {
  clock.reset();
  mock.restoreAll();
});

function message(seq, epoch = "e1", channel = "room:1") {
  return { type: "message", channel, epoch, seq, ts: "2024-01-01T00:00:00Z", data: seq };
}

test("a new Seqcast with the same storage resumes with since = the stored seq", async () => {
  const storage = new MemoryStorage();
  const first = await startClient({ storage });
  first.last().welcome();
  first.sc.subscribe("room:1", () => {});
  first.last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 10 });
  first.last().receive(message(11));
  first.last().receive(message(12));
  first.sc.close();
  assert.equal(storage.getItem("seqcast:pos:room:1"), JSON.stringify({ epoch: "e1", seq: 12 }));

  const second = await startClient({ storage });
  const sub = second.sc.subscribe("room:1", () => {});
  assert.deepEqual(sub.position, { epoch: "e1", seq: 12 });
  second.last().welcome();
  assert.deepEqual(second.last().ops("subscribe"), [
    { op: "subscribe", channel: "room:1", since: 12, epoch: "e1" },
  ]);
  second.sc.close();
});

test("the head from subscribed is stored, so a reload resumes from there without a gap", async () => {
  const storage = new MemoryStorage();
  const first = await startClient({ storage });
  first.last().welcome();
  first.sc.subscribe("room:1", () => {});
  first.last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 30 });
  first.sc.close();

  const second = await startClient({ storage });
  second.sc.subscribe("room:1", () => {});
  second.last().welcome();
  assert.deepEqual(second.last().ops("subscribe"), [
    { op: "subscribe", channel: "room:1", since: 30, epoch: "e1" },
  ]);
  second.sc.close();
});

test("a reset is stored as the new position", async () => {
  const storage = new MemoryStorage();
  const { sc, last } = await startClient({ storage });
  last().welcome();
  sc.subscribe("room:1", { since: 5, epoch: "e1" }, () => {});
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e2", head: 9 });
  last().receive({
    type: "reset",
    channel: "room:1",
    epoch: "e2",
    first_seq: 1,
    head: 9,
    reason: "epoch_changed",
    missed: null,
  });
  assert.equal(storage.getItem("seqcast:pos:room:1"), JSON.stringify({ epoch: "e2", seq: 0 }));
  sc.close();
});

test("an explicit since overrides the stored position", async () => {
  const storage = new MemoryStorage();
  storage.setItem("seqcast:pos:room:1", JSON.stringify({ epoch: "e1", seq: 99 }));
  const { sc, last } = await startClient({ storage });
  last().welcome();
  const sub = sc.subscribe("room:1", { since: 40, epoch: "e1" }, () => {});
  assert.deepEqual(sub.position, { epoch: "e1", seq: 40 });
  assert.deepEqual(last().ops("subscribe"), [
    { op: "subscribe", channel: "room:1", since: 40, epoch: "e1" },
  ]);
  sc.close();
});

test("positions are kept per channel", async () => {
  const storage = new MemoryStorage();
  const { sc, last } = await startClient({ storage });
  last().welcome();
  sc.subscribe("a", () => {});
  sc.subscribe("b", () => {});
  last().receive({ type: "subscribed", channel: "a", epoch: "ea", head: 1 });
  last().receive({ type: "subscribed", channel: "b", epoch: null, head: 0 });
  assert.equal(storage.getItem("seqcast:pos:a"), JSON.stringify({ epoch: "ea", seq: 1 }));
  assert.equal(storage.getItem("seqcast:pos:b"), JSON.stringify({ epoch: null, seq: 0 }));
  sc.close();
});

test("a corrupt stored entry is removed and the subscription starts live", async () => {
  for (const raw of [
    "{not json",
    "null",
    JSON.stringify({ epoch: 5, seq: 1 }),
    JSON.stringify({ epoch: "e", seq: -2 }),
  ]) {
    const storage = new MemoryStorage();
    storage.setItem("seqcast:pos:room:1", raw);
    const { sc, last } = await startClient({ storage });
    last().welcome();
    sc.subscribe("room:1", () => {});
    assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", channel: "room:1" }], raw);
    assert.equal(storage.getItem("seqcast:pos:room:1"), null, raw);
    sc.close();
  }
});

test("a storage that throws is reported and delivery goes on", async () => {
  const storage = {
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("QuotaExceededError");
    },
    removeItem() {},
  };
  const { sc, last, errors } = await startClient({ storage });
  last().welcome();
  const got = [];
  const sub = sc.subscribe("room:1", (msg) => got.push(msg.seq));
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  last().receive(message(1));
  assert.deepEqual(got, [1]);
  assert.deepEqual(sub.position, { epoch: "e1", seq: 1 });
  assert.deepEqual(
    errors.map((e) => e.code),
    ["storage_error", "storage_error", "storage_error"],
  );
  sc.close();
});

test("a handler's promise holds the stored position back until it settles, in order", async () => {
  const storage = new MemoryStorage();
  const { sc, last, errors } = await startClient({ storage });
  last().welcome();
  const settle = new Map(); // seq → [resolve, reject]
  const sub = sc.subscribe("room:1", (msg) => {
    if (msg.seq === 12 || msg.seq === 14) {
      return new Promise((resolve, reject) => settle.set(msg.seq, [resolve, reject]));
    }
    return undefined;
  });
  const stored = () => JSON.parse(storage.getItem("seqcast:pos:room:1")).seq;
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 10 });
  for (const seq of [11, 12, 13, 14, 15]) last().receive(message(seq));
  assert.deepEqual(sub.position, { epoch: "e1", seq: 15 }, "in memory: every message handed over");
  assert.equal(stored(), 11, "stored: not past the unsettled 12");
  settle.get(14)[0]();
  await Promise.resolve();
  assert.equal(stored(), 11, "14 settled, but 12 still holds the position");
  settle.get(12)[1](new Error("render failed"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stored(), 15, "once 12 settled (even rejected) the newest position is stored");
  assert.deepEqual(errors.map((e) => e.code), ["handler_error"]);
  // A reconnect of the same page resumes from what it was handed, not from storage.
  last().serverClose(1012);
  clock.tick(60_000);
  await new Promise((resolve) => setImmediate(resolve));
  last().welcome();
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", channel: "room:1", since: 15, epoch: "e1" }]);
  sc.close();
});
