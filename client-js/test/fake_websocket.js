// A scripted stand-in for WebSocket: tests play the server by calling open/receive/serverClose.

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/**
 * Returns a fresh WebSocket class and the list of sockets it created, so that each test
 * has its own and nothing leaks between tests through static state.
 */
export function fakeWebSocket() {
  const sockets = [];

  class FakeWebSocket {
    static CONNECTING = CONNECTING;
    static OPEN = OPEN;
    static CLOSING = CLOSING;
    static CLOSED = CLOSED;

    constructor(url) {
      this.url = url;
      this.readyState = CONNECTING;
      this.sent = []; // parsed client frames, in order
      this.closedBy = null; // {code, reason} once the client called close()
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.onclose = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== OPEN) throw new Error("send on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }

    // Like a real socket whose peer is gone: no close event follows by itself, so a test
    // can still fire one later and check that the client ignores it.
    close(code, reason) {
      this.closedBy = { code, reason };
      this.readyState = CLOSING;
    }

    // --- the server's side ---

    open() {
      this.readyState = OPEN;
      this.onopen?.({ type: "open" });
    }

    receive(frame) {
      const data = typeof frame === "string" ? frame : JSON.stringify(frame);
      this.onmessage?.({ type: "message", data });
    }

    welcome(heartbeatSeconds = 25) {
      this.open();
      this.receive({ type: "welcome", version: "test", heartbeat_seconds: heartbeatSeconds });
    }

    serverClose(code, reason = "") {
      this.readyState = CLOSED;
      this.onclose?.({ type: "close", code, reason, wasClean: code !== 1006 });
    }

    // A refused or broken connection: error first, then close 1006, as browsers do.
    fail() {
      this.readyState = CLOSED;
      this.onerror?.({ type: "error", message: "connection refused" });
      this.onclose?.({ type: "close", code: 1006, reason: "", wasClean: false });
    }

    // Client frames of one op, e.g. subscribes("subscribe").
    ops(op) {
      return this.sent.filter((frame) => frame.op === op);
    }
  }

  return { WebSocket: FakeWebSocket, sockets };
}

/** A localStorage-shaped Map. */
export class MemoryStorage {
  constructor() {
    this.items = new Map();
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    this.items.set(key, String(value));
  }

  removeItem(key) {
    this.items.delete(key);
  }
}

/** Lets pending promise callbacks (async url/token resolution) run; no timers involved. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
