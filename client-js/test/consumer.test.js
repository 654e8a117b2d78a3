// Tests for createConsumer: @rails/actioncable's consumer API over seqcast's protocol.
import { afterEach, beforeEach, mock, test } from "node:test";
import assert from "node:assert/strict";
import { channelOfSignedName, createConsumer } from "../src/seqcast.js";
import { fakeWebSocket, settle } from "./fake_websocket.js";
import { clock } from "./fake_clock.js";

beforeEach(() => clock.enable());
afterEach(() => {
  clock.reset();
  mock.restoreAll();
});

// The client never verifies a signature (the server does): any hex after "--" will do.
const signed = (name, sig = "ab".repeat(32)) => `${btoa(JSON.stringify(name))}--${sig}`;
const turbo = (name, extra = {}) => ({ channel: "Turbo::StreamsChannel", signed_stream_name: signed(name), ...extra });

async function startConsumer() {
  const fake = fakeWebSocket();
  const consumer = createConsumer("ws://seqcast.test/v1/ws", { WebSocket: fake.WebSocket });
  await settle();
  const last = () => fake.sockets.at(-1);
  last().welcome();
  return { consumer, last };
}

// Records every callback of a subscription, in order.
function recorder() {
  const calls = [];
  const mixin = {
    connected: (d) => calls.push(["connected", d]),
    disconnected: (d) => calls.push(["disconnected", d]),
    received: (data) => calls.push(["received", data]),
    rejected: () => calls.push(["rejected"]),
  };
  return { calls, mixin };
}

const message = (channel, seq) => ({ type: "message", channel, epoch: "e1", seq, ts: "2024-01-01T00:00:00Z", data: `<p>${seq}</p>` });

test("channelOfSignedName reads the name inside a signed name, and null for anything else", () => {
  assert.equal(channelOfSignedName(signed("room:1")), "room:1");
  assert.equal(channelOfSignedName(signed("a/b:Z2lk")), "a/b:Z2lk");
  for (const bad of ["room:1", "--ab", `${btoa("42")}--ab`, `${btoa('"bad name"')}--ab`, "!!--ab", null]) {
    assert.equal(channelOfSignedName(bad), null, String(bad));
  }
});

test("identifiers of one signed stream share one wire subscription; each gets every message", async () => {
  const { consumer, last } = await startConsumer();
  const a = recorder();
  const b = recorder();
  const subA = consumer.subscriptions.create(turbo("room:1"), a.mixin);
  consumer.subscriptions.create(turbo("room:1", { data_x: "1" }), b.mixin);
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", signed_stream_name: signed("room:1") }]);
  assert.equal(subA.identifier, JSON.stringify(turbo("room:1")));

  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  last().receive(message("room:1", 1));
  last().receive(message("room:1", 1)); // a duplicate never reaches the app
  last().receive(message("room:1", 2));
  const expected = [["connected", { reconnected: false }], ["received", "<p>1</p>"], ["received", "<p>2</p>"]];
  assert.deepEqual(a.calls, expected);
  assert.deepEqual(b.calls, expected);
});

test("a reconnect says disconnected, resubscribes from the last seq, then connected with reconnected", async () => {
  const { consumer, last } = await startConsumer();
  const a = recorder();
  consumer.subscriptions.create(turbo("room:1"), a.mixin);
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 4 });
  last().receive(message("room:1", 5));
  last().serverClose(1012);
  assert.deepEqual(a.calls.at(-1), ["disconnected", { willAttemptReconnect: true }]);
  clock.tick(60_000);
  await settle();
  last().welcome();
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", signed_stream_name: signed("room:1"), since: 5, epoch: "e1" }]);
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 6 });
  last().receive(message("room:1", 6));
  assert.deepEqual(a.calls.slice(-2), [["connected", { reconnected: true }], ["received", "<p>6</p>"]]);
  consumer.disconnect();
  assert.deepEqual(a.calls.at(-1), ["disconnected", { willAttemptReconnect: false }]);
});

test("an identifier that names no stream is rejected, and is not kept", async () => {
  const { consumer, last } = await startConsumer();
  const r = recorder();
  consumer.subscriptions.create({ channel: "ChatChannel", room: 1 }, r.mixin);
  consumer.subscriptions.create("ChatChannel", r.mixin);
  consumer.subscriptions.create({ channel: "$pubsub", stream_name: "bad name" }, r.mixin);
  await settle();
  assert.deepEqual(r.calls, [["rejected"], ["rejected"], ["rejected"]]);
  assert.deepEqual(consumer.subscriptions.subscriptions, []);
  assert.deepEqual(last().ops("subscribe"), []);
});

test("a refused signature rejects every identifier of that stream", async () => {
  const { consumer, last } = await startConsumer();
  const r = recorder();
  consumer.subscriptions.create(turbo("room:1"), r.mixin);
  consumer.subscriptions.create(turbo("room:1", { data_x: "1" }), r.mixin);
  last().receive({ type: "error", code: "forbidden", message: "the signature does not verify" });
  assert.deepEqual(r.calls, [["rejected"], ["rejected"]]);
  assert.deepEqual(consumer.subscriptions.subscriptions, []);
});

test("another signature of an open stream never joins it: rejected once the stream is confirmed", async () => {
  const { consumer, last } = await startConsumer();
  const real = recorder();
  const forged = recorder();
  consumer.subscriptions.create(turbo("room:1"), real.mixin);
  const early = { channel: "Turbo::StreamsChannel", signed_stream_name: signed("room:1", "cd".repeat(32)) };
  consumer.subscriptions.create(early, forged.mixin); // waits for the stream's verdict
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  consumer.subscriptions.create(early, forged.mixin); // the stream is confirmed already
  await settle();
  last().receive(message("room:1", 1));
  assert.deepEqual(forged.calls, [["rejected"], ["rejected"]]);
  assert.deepEqual(real.calls, [["connected", { reconnected: false }], ["received", "<p>1</p>"]]);
  assert.equal(last().ops("subscribe").length, 1);
});

test("when the stream's own signature is refused, a waiting identifier is tried on its own", async () => {
  const { consumer, last } = await startConsumer();
  const forged = recorder();
  const real = recorder();
  consumer.subscriptions.create({ channel: "Turbo::StreamsChannel", signed_stream_name: signed("room:1", "cd".repeat(32)) }, forged.mixin);
  consumer.subscriptions.create(turbo("room:1"), real.mixin);
  last().receive({ type: "error", code: "forbidden", message: "the signature does not verify" });
  assert.deepEqual(forged.calls, [["rejected"]]);
  assert.deepEqual(last().ops("subscribe").at(-1), { op: "subscribe", signed_stream_name: signed("room:1") });
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  assert.deepEqual(real.calls, [["connected", { reconnected: false }]]);
});

test("unsubscribe leaves the wire subscription until the stream's last identifier goes", async () => {
  const { consumer, last } = await startConsumer();
  const one = consumer.subscriptions.create(turbo("room:1"), {});
  const two = consumer.subscriptions.create(turbo("room:1", { data_x: "1" }), {});
  const plain = consumer.subscriptions.create({ channel: "$pubsub", stream_name: "news" }, {});
  assert.deepEqual(last().ops("subscribe").at(-1), { op: "subscribe", channel: "news" });
  one.unsubscribe();
  assert.deepEqual(last().ops("unsubscribe"), []);
  two.unsubscribe();
  plain.unsubscribe();
  assert.deepEqual(last().ops("unsubscribe"), [
    { op: "unsubscribe", channel: "room:1" },
    { op: "unsubscribe", channel: "news" },
  ]);
  assert.deepEqual(consumer.subscriptions.subscriptions, []);
});

test("receive-only: perform and send do nothing and return false; findAll matches identifiers", async () => {
  const { consumer, last } = await startConsumer();
  const sub = consumer.subscriptions.create(turbo("room:1"), {});
  assert.equal(sub.perform("speak", { text: "hi" }), false);
  assert.equal(sub.send({ text: "hi" }), false);
  assert.equal(consumer.send({}), false);
  assert.deepEqual(consumer.subscriptions.findAll(sub.identifier), [sub]);
  assert.equal(last().sent.filter((f) => f.op !== "subscribe").length, 0);
});

test("a throwing callback is reported as an error of the client, and the others still run", async () => {
  const { consumer, last } = await startConsumer();
  const errors = [];
  consumer.client.on("error", (info) => errors.push(info.code));
  const seen = [];
  consumer.subscriptions.create(turbo("room:1"), { received: () => { throw new Error("app bug"); } });
  consumer.subscriptions.create(turbo("room:1", { data_x: "1" }), { received: (d) => seen.push(d) });
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  last().receive(message("room:1", 1));
  assert.deepEqual(seen, ["<p>1</p>"]);
  assert.deepEqual(errors, ["handler_error"]);
});

test("signed subscribes go one at a time, so a refusal (which names no channel) is never misread", async () => {
  const { consumer, last } = await startConsumer();
  const sc = consumer.client;
  const verdicts = [];
  const good = sc.subscribeSigned(signed("room:1"), () => {});
  const bad = sc.subscribeSigned(signed("room:2", "cd".repeat(32)), () => {});
  good.on("subscribed", () => verdicts.push("good subscribed"));
  good.on("error", () => verdicts.push("good refused"));
  bad.on("error", (e) => verdicts.push(`bad ${e.code}`));
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", signed_stream_name: signed("room:1") }]);
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  assert.deepEqual(last().ops("subscribe").at(-1), { op: "subscribe", signed_stream_name: signed("room:2", "cd".repeat(32)) });
  last().receive({ type: "error", code: "forbidden", message: "the signature does not verify" });
  assert.deepEqual(verdicts, ["good subscribed", "bad forbidden"]);
  // After a reconnect they go out one at a time again, in order.
  last().serverClose(1012);
  clock.tick(60_000);
  await settle();
  last().welcome();
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", signed_stream_name: signed("room:1"), since: 0, epoch: "e1" }]);
});
