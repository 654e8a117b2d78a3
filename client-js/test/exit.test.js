// close() must leave nothing that keeps a Node process alive (checked with real timers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Seqcast } from "../src/seqcast.js";
import { fakeWebSocket, settle } from "./fake_websocket.js";

function timeouts() {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

test("after close() no timer of the client is left running", async () => {
  const before = timeouts();
  const fake = fakeWebSocket();
  const sc = new Seqcast("ws://seqcast.test/v1/ws", { WebSocket: fake.WebSocket });
  await settle();
  fake.sockets[0].welcome();
  sc.subscribe("room:1", () => {});
  assert.ok(timeouts() > before, "the heartbeat watchdog is armed while open");
  fake.sockets[0].serverClose(1006);
  assert.ok(timeouts() > before, "a reconnect is pending");
  sc.close();
  assert.equal(timeouts(), before);
});
