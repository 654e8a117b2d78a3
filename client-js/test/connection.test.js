// Tests for the connection state machine: reconnects, resume, heartbeat, hints, close.
import { afterEach, beforeEach, mock, test } from "node:test";
import assert from "node:assert/strict";
import { Seqcast } from "../src/seqcast.js";
import { fakeWebSocket, settle } from "./fake_websocket.js";
import { advance, startClient, testUrl } from "./harness.js";
import { clock } from "./fake_clock.js";

beforeEach(() => {
  clock.enable();
  // 0.5 makes the first backoff delay 125 ms (half of 250), the next 250, then 500 …
  mock.method(Math, "random", () => 0.5);
});
afterEach(() => {
  clock.reset();
  mock.restoreAll();
});

function message(seq, epoch = "e1", channel = "room:1") {
  return { type: "message", channel, epoch, seq, ts: "2024-01-01T00:00:00Z", data: seq };
}

test("states go connecting → open → reconnecting → open → closed, each emitted once", async () => {
  const { sc, last, states } = await startClient();
  assert.equal(sc.state, "connecting");
  last().open();
  assert.equal(sc.state, "connecting", "open only at welcome");
  last().receive({ type: "welcome", version: "1", heartbeat_seconds: 25 });
  assert.equal(sc.state, "open");
  last().serverClose(1006);
  assert.equal(sc.state, "reconnecting");
  await advance(clock, 125);
  last().welcome();
  sc.close();
  sc.close();
  assert.deepEqual(states, ["open", "reconnecting", "open", "closed"]);
});

test("the state event carries the previous state too", async () => {
  const fake = fakeWebSocket();
  const sc = new Seqcast(testUrl, { WebSocket: fake.WebSocket });
  const seen = [];
  sc.on("state", (state, previous) => seen.push(`${previous}>${state}`));
  await settle();
  fake.sockets[0].welcome();
  sc.close();
  assert.deepEqual(seen, ["connecting>open", "open>closed"]);
});

test("after a reconnect every subscription resumes from its last delivered seq and epoch", async () => {
  const { sc, last, sockets } = await startClient();
  last().welcome();
  const got = [];
  sc.subscribe("room:1", (msg) => got.push(msg.seq));
  sc.subscribe("room:2", { since: 5, epoch: "x" }, () => {});
  sc.subscribe("room:3", () => {});
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 10 });
  last().receive({ type: "subscribed", channel: "room:3", epoch: null, head: 0 });
  last().receive(message(11));
  last().receive(message(12));
  last().serverClose(1013);

  await advance(clock, 125);
  assert.equal(sockets.length, 2);
  last().welcome();
  assert.deepEqual(last().ops("subscribe"), [
    { op: "subscribe", channel: "room:1", since: 12, epoch: "e1" },
    { op: "subscribe", channel: "room:2", since: 5, epoch: "x" },
    { op: "subscribe", channel: "room:3", since: 0 },
  ]);
  // The replay after resubscribe repeats nothing already delivered.
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 14 });
  for (const seq of [12, 13, 14]) last().receive(message(seq));
  assert.deepEqual(got, [11, 12, 13, 14]);
});

test("a resubscribe before the first subscribed answer stays live only", async () => {
  const { sc, last } = await startClient();
  last().welcome();
  sc.subscribe("room:1", () => {});
  last().serverClose(1006);
  await advance(clock, 125);
  last().welcome();
  assert.deepEqual(last().ops("subscribe"), [{ op: "subscribe", channel: "room:1" }]);
});

test("2 × heartbeat_seconds of silence closes the socket and reconnects; any frame restarts the clock", async () => {
  const { sc, last, sockets, errors } = await startClient();
  last().welcome(10);
  clock.tick(19_999);
  last().receive({ type: "ping" });
  clock.tick(19_999);
  last().receive({ type: "pong" });
  clock.tick(19_999);
  assert.equal(sc.state, "open");
  assert.equal(last().closedBy, null);

  clock.tick(1);
  assert.equal(sc.state, "reconnecting");
  assert.equal(sockets[0].closedBy.code, 1000);
  assert.deepEqual(
    errors.map((e) => e.code),
    ["timeout"],
  );
  await advance(clock, 125);
  assert.equal(sockets.length, 2);
});

test("before welcome the watchdog assumes the default 25 s heartbeat", async () => {
  const { sc, sockets } = await startClient();
  clock.tick(49_999);
  assert.equal(sc.state, "connecting");
  clock.tick(1);
  assert.equal(sc.state, "reconnecting");
  assert.ok(sockets[0].closedBy);
});

test("a welcome without heartbeat disables the watchdog", async () => {
  const { sc, last } = await startClient();
  last().welcome(0);
  clock.tick(10 * 60_000);
  assert.equal(sc.state, "open");
  sc.close();
});

test("a reconnect hint closes the socket and reconnects after a random delay in [0, within_ms)", async () => {
  for (const [random, expected] of [
    [0, 0],
    [0.5, 500],
    [0.9999999, 999],
  ]) {
    Math.random.mock.mockImplementation(() => random);
    const { sc, last, sockets, states } = await startClient();
    sc.subscribe("room:1", () => {});
    last().welcome();
    last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 3 });
    last().receive({ type: "reconnect", reason: "draining", within_ms: 1000 });
    assert.equal(sockets[0].closedBy.code, 1000);
    assert.equal(sc.state, "reconnecting");

    // The server's own 1012 close arrives later on the old socket and changes nothing.
    sockets[0].serverClose(1012);
    if (expected > 0) {
      await advance(clock, expected - 1);
      assert.equal(sockets.length, 1, `random ${random}: not before ${expected} ms`);
    }
    await advance(clock, expected > 0 ? 1 : 0);
    assert.equal(sockets.length, 2, `random ${random}: reconnected at ${expected} ms`);
    last().welcome();
    assert.deepEqual(last().ops("subscribe"), [
      { op: "subscribe", channel: "room:1", since: 3, epoch: "e1" },
    ]);
    assert.deepEqual(states, ["open", "reconnecting", "open"]);
    sc.close();
  }
});

test("the hint delay is always below within_ms", async () => {
  Math.random.mock.mockImplementation(() => 1 - Number.EPSILON);
  const { last, sockets } = await startClient();
  last().welcome();
  last().receive({ type: "reconnect", reason: "draining", within_ms: 3 });
  await advance(clock, 2);
  assert.equal(sockets.length, 2);
});

test("unsubscribe while reconnecting: not resubscribed after the reconnect", async () => {
  const { sc, last } = await startClient();
  last().welcome();
  const gone = sc.subscribe("room:1", () => {});
  sc.subscribe("room:2", () => {});
  last().serverClose(1006);
  gone.unsubscribe();
  await advance(clock, 125);
  last().welcome();
  assert.deepEqual(last().sent, [{ op: "subscribe", channel: "room:2" }]);
  assert.equal(gone.state, "unsubscribed");
});

test("url and token functions (async) are called on every (re)connect", async () => {
  const fake = fakeWebSocket();
  let urlCalls = 0;
  let tokenCalls = 0;
  const sc = new Seqcast(async () => `ws://node${++urlCalls}.test/v1/ws`, {
    WebSocket: fake.WebSocket,
    token: async () => `t ${++tokenCalls}/+&=`,
  });
  await settle();
  fake.sockets[0].serverClose(1006);
  await advance(clock, 125);
  fake.sockets[1].serverClose(1006);
  await advance(clock, 250);
  assert.equal(urlCalls, 3);
  assert.equal(tokenCalls, 3);
  assert.deepEqual(
    fake.sockets.map((s) => s.url),
    [1, 2, 3].map((n) => `ws://node${n}.test/v1/ws?token=t%20${n}%2F%2B%26%3D`),
  );
  sc.close();
});

test("a string token is appended with & when the URL has a query already", async () => {
  const { sc, last } = await startClient({ token: "abc.def" }, `${testUrl}?x=1`);
  assert.equal(last().url, `${testUrl}?x=1&token=abc.def`);
  sc.close();
  const plain = await startClient({ token: () => null });
  assert.equal(plain.last().url, testUrl);
  plain.sc.close();
});

test("a url or token function that throws is reported and retried with backoff", async () => {
  const fake = fakeWebSocket();
  let calls = 0;
  const errors = [];
  const sc = new Seqcast(testUrl, {
    WebSocket: fake.WebSocket,
    token: async () => {
      if (++calls === 1) throw new Error("token service down");
      return "ok";
    },
  });
  sc.on("error", (info) => errors.push(info.code));
  await settle();
  assert.equal(fake.sockets.length, 0);
  assert.equal(sc.state, "reconnecting");
  await advance(clock, 125);
  assert.equal(fake.sockets.length, 1);
  assert.equal(fake.sockets[0].url, `${testUrl}?token=ok`);
  assert.deepEqual(errors, ["url_error"]);
  sc.close();
});

test("backoff grows while attempts fail and starts over after a welcome", async () => {
  const { sc, last, sockets } = await startClient();
  const expectDial = async (delay) => {
    const before = sockets.length;
    await advance(clock, delay - 1);
    assert.equal(sockets.length, before, `no dial before ${delay} ms`);
    await advance(clock, 1);
    assert.equal(sockets.length, before + 1, `dial at ${delay} ms`);
  };
  last().fail();
  await expectDial(125);
  last().fail();
  await expectDial(250);
  last().fail();
  await expectDial(500);
  last().welcome();
  last().serverClose(1012);
  await expectDial(125);
  sc.close();
});

test("terminal close codes stop reconnecting; the others reconnect (1008 included)", async () => {
  for (const code of [3500, 3999, 4500, 4999]) {
    const { sc, last, sockets, errors } = await startClient();
    last().welcome();
    last().serverClose(code, "banned");
    assert.equal(sc.state, "closed", String(code));
    clock.runAll();
    await settle();
    assert.equal(sockets.length, 1, String(code));
    assert.deepEqual(errors, [{ code: "closed_by_server", message: "banned", closeCode: code }]);
  }
  for (const code of [1000, 1001, 1006, 1008, 1009, 1011, 1012, 1013, 4000, 4499]) {
    const { sc, last, sockets } = await startClient();
    last().welcome();
    last().serverClose(code);
    assert.equal(sc.state, "reconnecting", String(code));
    await advance(clock, 125);
    assert.equal(sockets.length, 2, String(code));
    sc.close();
  }
});

test("close() ends everything: state closed, socket closed, no reconnect, no timers", async () => {
  const { sc, last, sockets, states } = await startClient();
  sc.subscribe("room:1", () => {});
  last().welcome();
  sc.close();
  assert.equal(sc.state, "closed");
  assert.deepEqual(sockets[0].closedBy, { code: 1000, reason: "client closed" });
  sockets[0].serverClose(1006);
  clock.runAll();
  await settle();
  assert.equal(sockets.length, 1);
  assert.deepEqual(states, ["open", "closed"]);
});

test("close() while waiting to reconnect cancels the pending attempt", async () => {
  const { sc, last, sockets } = await startClient();
  last().fail();
  sc.close();
  clock.runAll();
  await settle();
  assert.equal(sockets.length, 1);
});

test("close() while the url is still resolving opens no socket", async () => {
  const fake = fakeWebSocket();
  let release;
  const sc = new Seqcast(() => new Promise((resolve) => (release = resolve)), {
    WebSocket: fake.WebSocket,
  });
  await settle();
  sc.close();
  release(testUrl);
  await settle();
  assert.equal(fake.sockets.length, 0);
});

test("close() from a state listener stops the reconnect that triggered it", async () => {
  const { sc, last, sockets } = await startClient();
  sc.on("state", (state) => {
    if (state === "reconnecting") sc.close();
  });
  last().welcome();
  last().serverClose(1006);
  clock.runAll();
  await settle();
  assert.equal(sc.state, "closed");
  assert.equal(sockets.length, 1);
});

test("callbacks from a socket already given up on are ignored", async () => {
  const { sc, last, sockets, errors } = await startClient();
  const got = [];
  sc.subscribe("room:1", (msg) => got.push(msg.seq));
  last().welcome(1);
  last().receive({ type: "subscribed", channel: "room:1", epoch: "e1", head: 0 });
  // Keep the socket's callbacks as an event already queued by the browser would.
  const { onmessage, onclose } = sockets[0];
  clock.tick(2000); // heartbeat timeout
  onmessage({ data: JSON.stringify(message(1)) });
  onmessage({
    data: JSON.stringify({ type: "error", code: "late", message: "from the dead socket" }),
  });
  onclose({ code: 4500, reason: "" });
  assert.equal(sc.state, "reconnecting");
  await advance(clock, 125);
  assert.equal(sockets.length, 2);
  assert.deepEqual(got, []);
  assert.deepEqual(
    errors.map((e) => e.code),
    ["timeout"],
  );
  sc.close();
});

test("an unparseable frame is reported and the connection stays up", async () => {
  const { sc, last, errors } = await startClient();
  last().welcome();
  last().receive("not json");
  last().receive("[1,2]");
  last().receive({ no: "type" });
  last().receive({ type: "something_new" });
  assert.equal(sc.state, "open");
  assert.deepEqual(
    errors.map((e) => e.code),
    ["bad_frame", "bad_frame", "bad_frame"],
  );
  sc.close();
});

test("a WebSocket constructor that throws is reported and retried", async () => {
  let calls = 0;
  class Throwing {
    constructor() {
      if (++calls === 1) throw new SyntaxError("bad url");
    }
  }
  const sc = new Seqcast(testUrl, { WebSocket: Throwing });
  const errors = [];
  sc.on("error", (info) => errors.push(info.code));
  await settle();
  assert.equal(sc.state, "reconnecting");
  await advance(clock, 125);
  assert.equal(calls, 2);
  sc.close();
});

test("without any WebSocket implementation the constructor throws", () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    assert.throws(() => new Seqcast(testUrl), TypeError);
    assert.throws(() => new Seqcast(testUrl, { WebSocket: {} }), TypeError);
  } finally {
    if (saved !== undefined) globalThis.WebSocket = saved;
  }
  const fake = fakeWebSocket();
  assert.throws(() => new Seqcast("", { WebSocket: fake.WebSocket }), TypeError);
  assert.throws(
    () => new Seqcast(testUrl, { WebSocket: fake.WebSocket, minReconnectDelay: -1 }),
    TypeError,
  );
});

test("reconnect delays follow minReconnectDelay and maxReconnectDelay", async () => {
  const { sc, last, sockets } = await startClient({
    minReconnectDelay: 1000,
    maxReconnectDelay: 1500,
  });
  last().fail();
  await advance(clock, 499);
  assert.equal(sockets.length, 1);
  await advance(clock, 1);
  assert.equal(sockets.length, 2);
  for (let i = 0; i < 5; i++) {
    last().fail();
    await advance(clock, 750); // half of the 1500 ms cap
  }
  assert.equal(sockets.length, 7);
  sc.close();
});

// Records which listeners were added and removed, so a test can check nothing is left.
function listenerLog(target) {
  target.added = [];
  target.removed = [];
  const add = target.addEventListener.bind(target);
  const remove = target.removeEventListener.bind(target);
  target.addEventListener = (type, fn) => (target.added.push([type, fn]), add(type, fn));
  target.removeEventListener = (type, fn) => (target.removed.push([type, fn]), remove(type, fn));
  return target;
}

test("online and visible-again wake a waiting client at once; close() removes the listeners", async () => {
  const win = listenerLog(new EventTarget());
  const doc = Object.assign(listenerLog(new EventTarget()), { visibilityState: "hidden" });
  globalThis.window = win;
  globalThis.document = doc;
  try {
    const { sc, last, sockets } = await startClient({ minReconnectDelay: 10_000 });
    last().fail();
    win.dispatchEvent(new Event("online"));
    await settle();
    assert.equal(sockets.length, 2, "online: dialled without waiting");

    last().fail();
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    assert.equal(sockets.length, 2, "still hidden: keep waiting");
    doc.visibilityState = "visible";
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    assert.equal(sockets.length, 3, "visible: dialled without waiting");

    // While dialling, a wake-up does not start a second attempt.
    win.dispatchEvent(new Event("online"));
    await settle();
    assert.equal(sockets.length, 3);

    // While open, a wake-up sends a ping to probe the connection.
    last().welcome();
    win.dispatchEvent(new Event("online"));
    assert.deepEqual(last().sent, [{ op: "ping" }]);

    sc.close();
    win.dispatchEvent(new Event("online"));
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    assert.equal(sockets.length, 3);
    assert.deepEqual(win.added, win.removed);
    assert.deepEqual(doc.added, doc.removed);
  } finally {
    delete globalThis.window;
    delete globalThis.document;
  }
});
