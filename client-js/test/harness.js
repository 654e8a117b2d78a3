// Shared test setup: a Seqcast on a fake WebSocket, with its state and error events recorded.
import { Seqcast } from "../src/seqcast.js";
import { fakeWebSocket, settle } from "./fake_websocket.js";

export const testUrl = "ws://seqcast.test/v1/ws";

/**
 * Starts a client and lets its first dial happen. `last()` is the newest socket.
 * Tests must enable the fake clock (fake_clock.js) first, so that no real timer is ever armed.
 */
export async function startClient(options = {}, url = testUrl) {
  const fake = fakeWebSocket();
  const sc = new Seqcast(url, { WebSocket: fake.WebSocket, ...options });
  const states = [];
  const errors = [];
  sc.on("state", (state) => states.push(state));
  sc.on("error", (info) => errors.push(info));
  await settle();
  return { sc, sockets: fake.sockets, states, errors, last: () => fake.sockets.at(-1) };
}

/** Advances fake time by `ms`, then lets the reconnect's async dial finish. */
export async function advance(clock, ms) {
  clock.tick(ms);
  await settle();
}
