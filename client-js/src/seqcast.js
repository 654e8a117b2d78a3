// seqcast client: subscribes to seqcast channels over one WebSocket and delivers every
// message once, in seq order, across reconnects, node drains and page reloads.
//
// This file is served verbatim at /v1/client.js, so it is one self-contained ES module
// with no imports. It is layered: pure helpers (codes, backoff,
// protocol) under a thin transport, per-channel Subscription state, and a Seqcast
// connection state machine on top. Data flows one way: socket → Seqcast → Subscription
// → application handler.

// ---------------------------------------------------------------------------------------
// codes: WebSocket close codes shared with the server, and which of them end the client.
// ---------------------------------------------------------------------------------------

/** Close codes the seqcast server uses. */
export const codes = Object.freeze({
  normal: 1000, // the client closed on purpose
  goingAway: 1001,
  abnormal: 1006, // no close frame: network loss, or a refused upgrade (HTTP 401/403)
  policy: 1008, // auth/policy
  tooBig: 1009, // a frame was too big
  draining: 1012, // the node is going away; a `reconnect` hint came first
  slowConsumer: 1013, // the server would not buffer without bound; resume elsewhere/later
});

/**
 * Whether a close code ends the client instead of reconnecting.
 *
 * 3500–3999 and 4500–4999 are terminal, everything else reconnects (a convention shared
 * with the server). 1008 is deliberately NOT terminal: a refused
 * token fails the HTTP upgrade (401), which a browser reports as 1006, so 1008 only
 * reaches an open connection, e.g. when a token expires mid-connection. Reconnecting
 * calls the `token` function again, which is what recovers; the capped backoff keeps a
 * persistent refusal cheap.
 */
export function isTerminalCloseCode(code) {
  return (code >= 3500 && code <= 3999) || (code >= 4500 && code <= 4999);
}

// ---------------------------------------------------------------------------------------
// backoff: exponential reconnect delay with full jitter, capped, with a small floor.
// ---------------------------------------------------------------------------------------

const defaultMinReconnectDelay = 250;
const defaultMaxReconnectDelay = 30000;
// The floor keeps a random() near 0 from turning into an immediate retry loop against a
// server that refuses us; a fifth of the minimum keeps most of the jitter.
const backoffFloorRatio = 0.2;
// 2 ** 31 × any sane minimum is far past any sane maximum; a bound keeps the math finite.
const maxBackoffExponent = 31;

/**
 * Delay in ms before reconnect attempt `attempt` (0 for the first retry).
 *
 * Returns an integer in [floor, cap) where cap = min(max, min × 2^attempt) and
 * floor = min(cap, min / 5). Full jitter spreads a crowd of clients that lost the same
 * node over the whole window instead of bunching them at its edges. Pure.
 */
export function backoffDelay(attempt, min, max, random = Math.random) {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), maxBackoffExponent);
  const cap = Math.min(max, min * 2 ** exponent);
  const floor = Math.min(cap, min * backoffFloorRatio);
  return Math.max(Math.ceil(floor), Math.floor(random() * cap));
}

// ---------------------------------------------------------------------------------------
// protocol: client frame encoding and server frame parsing (one JSON object per frame).
// ---------------------------------------------------------------------------------------

const channelPattern = /^[A-Za-z0-9_\-.:@=/]{1,1024}$/;

function isValidChannel(channel) {
  return typeof channel === "string" && channelPattern.test(channel);
}

function isThenable(value) {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof value.then === "function";
}

function isSeq(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

// `position` null means live only; otherwise resume after position.seq. The epoch goes
// out only when known, so the server can answer a destroyed history with a `reset`.
function encodeSubscribe(channel, position, signedName) {
  const frame = signedName ? { op: "subscribe", signed_stream_name: signedName } : { op: "subscribe", channel };
  if (position) {
    frame.since = position.seq;
    if (position.epoch !== null) frame.epoch = position.epoch;
  }
  return JSON.stringify(frame);
}

// The stream name inside a Rails-signed name (base64 of its JSON, then "--" and the
// signature). Read without the key: the server verifies it; this only names the channel
// its frames will carry. null when it is not of that form.
export function channelOfSignedName(signedName) {
  if (typeof signedName !== "string") return null;
  const at = signedName.lastIndexOf("--");
  if (at <= 0) return null;
  try {
    const binary = atob(signedName.slice(0, at));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const name = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return typeof name === "string" && isValidChannel(name) ? name : null;
  } catch {
    return null;
  }
}

function encodeUnsubscribe(channel) {
  return JSON.stringify({ op: "unsubscribe", channel });
}

function encodePing() {
  return JSON.stringify({ op: "ping" });
}

// Returns the frame object, or null when the text is not a JSON object with a `type`.
function parseFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return null;
  }
  const isObject = frame !== null && typeof frame === "object" && !Array.isArray(frame);
  return isObject && typeof frame.type === "string" ? frame : null;
}

// Appends ?token=… (URL-encoded) to a ws(s) URL; no token, no parameter.
function withToken(url, token) {
  if (token === undefined || token === null || token === "") return url;
  const separator = !url.includes("?") ? "?" : /[?&]$/.test(url) ? "" : "&";
  return `${url}${separator}token=${encodeURIComponent(String(token))}`;
}

// ---------------------------------------------------------------------------------------
// transport: a thin adapter over one WebSocket; each one carries the id of its attempt.
// ---------------------------------------------------------------------------------------

const socketOpen = 1;
const noop = () => {};

/**
 * One WebSocket. Every callback carries the transport id so that the owner can ignore a
 * socket it has already given up on (its close may arrive long after a heartbeat timeout).
 * Throws whatever the WebSocket constructor throws (e.g. SyntaxError for a bad URL).
 */
class Transport {
  constructor(id, WebSocketImpl, url, handlers) {
    this.id = id;
    this.socket = new WebSocketImpl(url);
    this.socket.onopen = () => handlers.onOpen(id);
    this.socket.onmessage = (event) => handlers.onFrame(id, event.data);
    this.socket.onerror = (event) => handlers.onError(id, event);
    this.socket.onclose = (event) => handlers.onClose(id, event.code, event.reason);
  }

  // Returns false when the socket cannot take the frame (not open yet, or closing).
  send(text) {
    if (this.socket.readyState !== socketOpen) return false;
    this.socket.send(text);
    return true;
  }

  // Handlers become no-ops rather than null: Node's `ws` throws on an `error` event that
  // has no listener, and closing a connecting socket emits one.
  close(code, reason) {
    this.socket.onopen = noop;
    this.socket.onmessage = noop;
    this.socket.onerror = noop;
    this.socket.onclose = noop;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed or never opened: nothing left to release.
    }
  }
}

// ---------------------------------------------------------------------------------------
// events: a minimal emitter; a throwing listener is reported, never breaks our state.
// ---------------------------------------------------------------------------------------

class Emitter {
  constructor(onListenerThrow) {
    this._listeners = new Map();
    this._onListenerThrow = onListenerThrow;
  }

  /** Adds a listener; returns this. */
  on(event, listener) {
    if (typeof listener !== "function") throw new TypeError("listener must be a function");
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(listener);
    return this;
  }

  /** Removes a listener added with on(); returns this. */
  off(event, listener) {
    const list = this._listeners.get(event);
    const index = list ? list.indexOf(listener) : -1;
    if (index >= 0) list.splice(index, 1);
    return this;
  }

  _emit(event, ...args) {
    // A copy, so listeners may add or remove listeners while we iterate.
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        this._onListenerThrow(event, err);
      }
    }
  }
}

// Error info for a thrown value; `cause` keeps the original for debugging.
function thrownError(code, err, channel) {
  const info = { code, message: String(err?.message ?? err), cause: err };
  if (channel !== undefined) info.channel = channel;
  return info;
}

// A throwing listener is reported as handler_error. One thrown by an "error" listener has
// nowhere left to go: it is rethrown outside our call stack, so that it reaches the
// console (or uncaughtException) instead of vanishing.
function listenerThrowHandler(report, channel) {
  return (event, err) => {
    if (event !== "error") return report(thrownError("handler_error", err, channel));
    queueMicrotask(() => {
      throw err;
    });
  };
}

// ---------------------------------------------------------------------------------------
// positions: per-channel {epoch, seq} persisted in a localStorage-like object.
// ---------------------------------------------------------------------------------------

const storageKeyPrefix = "seqcast:pos:";

function parsePosition(raw) {
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object" || !isSeq(value.seq)) return null;
  if (value.epoch !== null && typeof value.epoch !== "string") return null;
  return { epoch: value.epoch, seq: value.seq };
}

/** Reads and writes positions; storage failures (quota, private mode) are reported, not thrown. */
class PositionStore {
  constructor(storage, reportError) {
    this._storage = storage ?? null;
    this._reportError = reportError;
  }

  // Returns the stored position, or null. A corrupt entry is removed so it can't stick.
  load(channel) {
    if (!this._storage) return null;
    const key = storageKeyPrefix + channel;
    try {
      const raw = this._storage.getItem(key);
      if (raw === null || raw === undefined) return null;
      const position = parsePosition(raw);
      if (!position) this._storage.removeItem(key);
      return position;
    } catch (err) {
      this._failed(channel, err);
      return null;
    }
  }

  save(channel, position) {
    if (!this._storage) return;
    try {
      this._storage.setItem(storageKeyPrefix + channel, JSON.stringify(position));
    } catch (err) {
      this._failed(channel, err);
    }
  }

  _failed(channel, err) {
    this._reportError(thrownError("storage_error", err, channel));
  }
}

// ---------------------------------------------------------------------------------------
// Subscription: one channel's state, position (epoch + last delivered seq) and dedupe.
// ---------------------------------------------------------------------------------------

/**
 * One channel on one Seqcast. Created by Seqcast#subscribe only.
 *
 * States: "subscribing" (subscribe sent or waiting for a connection), "subscribed"
 * (the server answered `subscribed`), "unsubscribed" (final).
 * Events: "subscribed" {channel, epoch, head}; "reset" (the reset frame's fields);
 * "error" (error frames naming this channel, e.g. forbidden); "gap" {channel, epoch,
 * expected, seq} when a message skips seqs (delivered anyway; the server never should).
 */
export class Subscription extends Emitter {
  constructor(client, channel, position, handler, store, signedName = null) {
    super(listenerThrowHandler((info) => client._reportError(info), channel));
    this._client = client;
    this._channel = channel;
    this._handler = handler;
    this._store = store;
    this._signedName = signedName;
    this._saves = []; // positions waiting to be stored, oldest first (see _setPosition)
    this._state = "subscribing";
    // `_known` is false only for a live-only subscription before its first `subscribed`.
    this._known = position !== null;
    this._epoch = position ? position.epoch : null;
    this._seq = position ? position.seq : 0;
  }

  get channel() {
    return this._channel;
  }

  get state() {
    return this._state;
  }

  /** {epoch, seq} of the last message handed to the handler (or of the resume point). */
  get position() {
    return { epoch: this._epoch, seq: this._seq };
  }

  /** Stops delivery now and for good; it is not resubscribed after a reconnect. */
  unsubscribe() {
    if (this._state === "unsubscribed") return;
    this._state = "unsubscribed";
    this._client._removeSubscription(this);
  }

  _subscribeFrame() {
    return encodeSubscribe(this._channel, this._known ? this.position : null, this._signedName);
  }

  _onDisconnect() {
    if (this._state === "subscribed") this._state = "subscribing";
  }

  _onSubscribed(frame) {
    if (this._state === "unsubscribed") return;
    this._state = "subscribed";
    const epoch = typeof frame.epoch === "string" ? frame.epoch : null;
    if (!this._known) {
      // Live only: from now on we are at the head, so a reconnect resumes there, no gap.
      this._setPosition(epoch, isSeq(frame.head) ? frame.head : 0);
    } else if (this._epoch === null && epoch !== null) {
      // A `since` without epoch is read by the server in the current epoch; pin it, so a
      // later history wipe comes back as a reset instead of a silent jump.
      this._setPosition(epoch, this._seq);
    }
    this._emit("subscribed", { channel: this._channel, epoch, head: frame.head });
  }

  _onReset(frame) {
    if (this._state === "unsubscribed") return;
    const firstSeq =
      Number.isSafeInteger(frame.first_seq) && frame.first_seq >= 1 ? frame.first_seq : 1;
    const epoch = typeof frame.epoch === "string" ? frame.epoch : this._epoch;
    this._setPosition(epoch, firstSeq - 1);
    const { type, ...info } = frame;
    this._emit("reset", info);
  }

  _onMessage(frame) {
    // Before `subscribed`, frames of this channel belong to an earlier subscription on
    // this connection (unsubscribe + subscribe again): not ours to deliver.
    if (this._state !== "subscribed") return;
    if (!Number.isSafeInteger(frame.seq) || frame.seq < 1) {
      this._client._reportError({
        code: "bad_frame",
        message: "message without a valid seq",
        channel: this._channel,
      });
      return;
    }
    const epoch = typeof frame.epoch === "string" ? frame.epoch : this._epoch;
    // A different epoch without a reset first should not happen; deliver it and follow it.
    const sameEpoch = this._epoch === null || epoch === this._epoch;
    if (sameEpoch && frame.seq <= this._seq) return; // duplicate or older: already delivered
    if (sameEpoch && frame.seq > this._seq + 1) {
      this._emit("gap", { channel: this._channel, epoch, expected: this._seq + 1, seq: frame.seq });
    }
    this._deliver({
      channel: this._channel,
      epoch,
      seq: frame.seq,
      ts: frame.ts,
      data: frame.data,
    });
  }

  // The position advances only once the handler has returned, so a stored position never
  // claims a message the application did not get to see. A handler that throws still
  // consumed its message (it is reported, not redelivered). A handler that returns a
  // promise (e.g. "rendered") holds the *stored* position back until it settles: a page
  // that unloads first resumes at that message after the reload.
  _deliver(message) {
    let result;
    try {
      result = this._handler(message);
    } catch (err) {
      this._client._reportError(thrownError("handler_error", err, this._channel));
    }
    this._setPosition(message.epoch, message.seq, isThenable(result) ? result : null);
  }

  _onError(frame) {
    const { type, ...info } = frame;
    this._emit("error", info);
  }

  // In memory at once (dedupe, and where a reconnect of this page resumes); in storage
  // in delivery order, each position once every promise handed back before it settled.
  _setPosition(epoch, seq, pending = null) {
    this._known = true;
    this._epoch = epoch;
    this._seq = seq;
    const queue = this._saves;
    const last = queue[queue.length - 1];
    if (!pending && last?.settled) {
      last.position = { epoch, seq }; // consecutive settled positions: only the newest matters
    } else {
      const entry = { position: { epoch, seq }, settled: !pending };
      queue.push(entry);
      pending?.then(
        () => this._settle(entry),
        (err) => {
          this._client._reportError(thrownError("handler_error", err, this._channel));
          this._settle(entry);
        },
      );
    }
    this._flushSaves();
  }

  _settle(entry) {
    entry.settled = true;
    this._flushSaves();
  }

  _flushSaves() {
    let position = null;
    while (this._saves.length > 0 && this._saves[0].settled) position = this._saves.shift().position;
    if (position) this._store.save(this._channel, position);
  }
}

// ---------------------------------------------------------------------------------------
// Seqcast: the connection state machine, reconnects, heartbeat watchdog, frame routing.
// ---------------------------------------------------------------------------------------

// Until `welcome` names the real interval, assume the server default (25 s).
const defaultHeartbeatSeconds = 25;

function resolveOption(value) {
  return typeof value === "function" ? value() : value;
}

function urlText(value) {
  if (typeof value === "string" && value !== "") return value;
  // A URL object works too.
  if (typeof value?.href === "string") return value.href;
  throw new TypeError("url must be (or resolve to) a ws:// or wss:// URL string");
}

function checkDelay(value, fallback, name) {
  if (value === undefined || value === null) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a number of ms >= 0`);
  }
  return value;
}

// The resume point for a new subscription: an explicit `since` wins over storage.
function initialPosition(options, store, channel) {
  if (options.since === undefined || options.since === null) return store.load(channel);
  if (!isSeq(options.since)) throw new TypeError("since must be an integer >= 0");
  const epoch = options.epoch ?? null;
  if (epoch !== null && typeof epoch !== "string") throw new TypeError("epoch must be a string");
  return { epoch, seq: options.since };
}

/**
 * A connection to one seqcast server, shared by all of its subscriptions.
 *
 * Connects on construction. States: "connecting" (initial; no `state` event is emitted
 * for it — read `sc.state`), "open" (after `welcome`), "reconnecting" (lost; waiting or
 * dialling again), "closed" (close() or a terminal close code; final).
 * Events: "state" (state, previousState); "error" {code, message, channel?, closeCode?,
 * cause?} for anything that is not one channel's error frame.
 * Not thread-aware: like any browser object it lives on one event loop.
 */
export class Seqcast extends Emitter {
  constructor(url, options = {}) {
    super(listenerThrowHandler((info) => this._reportError(info)));
    if (typeof url !== "function") urlText(url);
    this._url = url;
    this._token = options.token;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TypeError(
        "no WebSocket implementation: pass options.WebSocket (e.g. the `ws` package)",
      );
    }
    this._minDelay = checkDelay(
      options.minReconnectDelay,
      defaultMinReconnectDelay,
      "minReconnectDelay",
    );
    this._maxDelay = Math.max(
      this._minDelay,
      checkDelay(options.maxReconnectDelay, defaultMaxReconnectDelay, "maxReconnectDelay"),
    );
    this._store = new PositionStore(options.storage, (info) => this._reportError(info));
    this._subs = new Map();
    this._signedInFlight = null; // {sub, channel}: the one signed subscribe awaiting its answer
    this._signedWaiting = []; // signed subscribes to send after it, oldest first
    this._state = "connecting";
    this._transport = null;
    this._transportId = 0; // id of the current attempt; any other id is stale
    this._welcomed = false;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._watchdogTimer = null;
    this._watchdogMs = 0;
    this._removeWakeListeners = this._addWakeListeners();
    this._connect();
  }

  /** "connecting" | "open" | "reconnecting" | "closed" */
  get state() {
    return this._state;
  }

  /**
   * Subscribes to `channel`: subscribe(channel, [options], handler).
   *
   * options.since resumes after that seq (options.epoch pins its epoch); without it the
   * position stored for the channel is used, and without that the subscription is live
   * only. Throws TypeError for a bad channel name, since or handler, and Error when this
   * Seqcast is closed or already has a subscription to `channel` (one per channel: it is
   * one subscription on the wire; unsubscribe first to subscribe again).
   */
  subscribe(channel, options, handler) {
    return this._add(channel, null, options, handler);
  }

  /**
   * Subscribes to the channel named by a Rails-signed stream name (what turbo-rails'
   * `signed_stream_name` renders): subscribeSigned(signedName, [options], handler). The
   * server verifies it with its streams_secret; a name that does not verify gets the
   * subscription's "error" event (code "forbidden"). Otherwise as subscribe().
   */
  subscribeSigned(signedName, options, handler) {
    const channel = channelOfSignedName(signedName);
    if (channel === null) throw new TypeError("not a signed stream name");
    return this._add(channel, signedName, options, handler);
  }

  _add(channel, signedName, options, handler) {
    if (typeof options === "function") [options, handler] = [{}, options];
    options = options ?? {};
    if (this._state === "closed") throw new Error("Seqcast is closed");
    if (!isValidChannel(channel)) {
      throw new TypeError(`invalid channel name: ${JSON.stringify(channel)}`);
    }
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    if (this._subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const sub = new Subscription(
      this,
      channel,
      initialPosition(options, this._store, channel),
      handler,
      this._store,
      signedName,
    );
    this._subs.set(channel, sub);
    if (this._state === "open") this._sendSubscribe(sub);
    return sub;
  }

  // A signed subscribe's error names no channel (the server could not verify one), and
  // the server answers a refusal at once but an acceptance only once the channel's head
  // is read: so one signed subscribe at a time is in flight, and an error that names no
  // channel is its answer.
  _sendSubscribe(sub) {
    if (!sub._signedName) return this._send(sub._subscribeFrame());
    if (this._signedInFlight) return this._signedWaiting.push(sub);
    this._signedInFlight = { sub, channel: sub.channel };
    this._send(sub._subscribeFrame());
  }

  _signedAnswered() {
    this._signedInFlight = null;
    while (this._signedWaiting.length > 0 && !this._signedInFlight) {
      const next = this._signedWaiting.shift();
      if (this._subs.get(next.channel) === next && this._state !== "closed") this._sendSubscribe(next);
    }
  }

  /** Closes the connection for good: no reconnect, no timers, no listeners left behind. */
  close() {
    if (this._state === "closed") return;
    this._clearReconnectTimer();
    this._dropTransport("client closed");
    this._removeWakeListeners();
    for (const sub of this._subs.values()) sub._state = "unsubscribed";
    this._subs.clear();
    this._setState("closed");
  }

  // --- connection lifecycle ------------------------------------------------------------

  // One attempt: resolve url and token (they may be async), then open a socket. The id
  // check after the await drops an attempt overtaken by close() or a timeout meanwhile.
  async _connect() {
    const id = ++this._transportId;
    this._welcomed = false;
    // A hung dial or token fetch times out too.
    this._watchdogMs = 2 * defaultHeartbeatSeconds * 1000;
    this._armWatchdog();
    let url;
    try {
      url = withToken(urlText(await resolveOption(this._url)), await resolveOption(this._token));
    } catch (err) {
      if (id === this._transportId) this._attemptFailed("url_error", err);
      return;
    }
    if (id !== this._transportId || this._state === "closed") return;
    try {
      this._transport = new Transport(id, this._WebSocket, url, this._transportHandlers());
    } catch (err) {
      this._attemptFailed("transport_error", err);
    }
  }

  _transportHandlers() {
    return {
      onOpen: () => {}, // the protocol is ready only at `welcome`
      onFrame: (id, data) => this._onFrame(id, data),
      onError: (id, event) => this._onTransportError(id, event),
      onClose: (id, code, reason) => this._onClose(id, code, reason),
    };
  }

  _attemptFailed(code, err) {
    this._reportError(thrownError(code, err));
    this._connectionLost("connect failed");
  }

  // A socket error is always followed by its close event, which decides what happens next.
  _onTransportError(id, event) {
    if (id !== this._transportId) return;
    const message = event?.message ?? event?.error?.message ?? "WebSocket error";
    this._reportError({ code: "transport_error", message: String(message), cause: event });
  }

  _onClose(id, code, reason) {
    if (id !== this._transportId) return;
    this._transport = null; // closed already; nothing to close again
    if (isTerminalCloseCode(code)) {
      this.close();
      this._reportError({
        code: "closed_by_server",
        message: reason || `closed with code ${code}`,
        closeCode: code,
      });
      return;
    }
    this._connectionLost(`closed with code ${code}`);
  }

  // Gives up the current connection (if any) and schedules the next attempt: after
  // `delay` ms when given (a server hint), else after the next backoff delay.
  _connectionLost(reason, delay) {
    if (this._state === "closed") return;
    this._dropTransport(reason);
    for (const sub of this._subs.values()) sub._onDisconnect();
    const wait = delay ?? backoffDelay(this._attempt++, this._minDelay, this._maxDelay);
    // Scheduled before the state event, so a listener that calls close() cancels it.
    this._scheduleReconnect(wait);
    this._setState("reconnecting");
  }

  // Bumping the id makes the old socket and any attempt still resolving its URL stale.
  _dropTransport(reason) {
    this._transportId++;
    this._clearWatchdog();
    if (this._transport) this._transport.close(codes.normal, reason);
    this._transport = null;
  }

  _scheduleReconnect(delay) {
    this._clearReconnectTimer();
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._connect();
    }, delay);
  }

  _clearReconnectTimer() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  // Browsers cannot see WebSocket ping frames, so silence is measured on our own frames.
  _armWatchdog() {
    this._clearWatchdog();
    if (this._watchdogMs <= 0) return;
    this._watchdogTimer = setTimeout(() => {
      this._watchdogTimer = null;
      this._reportError({ code: "timeout", message: `no frame for ${this._watchdogMs} ms` });
      this._connectionLost("heartbeat timeout");
    }, this._watchdogMs);
  }

  _clearWatchdog() {
    if (this._watchdogTimer !== null) clearTimeout(this._watchdogTimer);
    this._watchdogTimer = null;
  }

  // Only ever changed here; the state event carries the new and the previous state.
  _setState(next) {
    if (next === this._state || this._state === "closed") return;
    const previous = this._state;
    this._state = next;
    this._emit("state", next, previous);
  }

  // --- frames from the server ----------------------------------------------------------

  _onFrame(id, data) {
    if (id !== this._transportId) return;
    this._armWatchdog(); // any frame at all proves the connection is alive
    const frame = typeof data === "string" ? parseFrame(data) : null;
    if (!frame) {
      this._reportError({ code: "bad_frame", message: "not a JSON text frame with a type" });
      return;
    }
    switch (frame.type) {
      case "welcome":
        return this._onWelcome(frame);
      case "subscribed":
        if (this._signedInFlight?.channel === frame.channel) this._signedAnswered();
        return this._route(frame, (sub) => sub._onSubscribed(frame));
      case "message":
        return this._route(frame, (sub) => sub._onMessage(frame));
      case "reset":
        return this._route(frame, (sub) => sub._onReset(frame));
      case "error":
        return this._onServerError(frame);
      case "reconnect":
        return this._onReconnectHint(frame);
      default:
        return; // ping, pong (liveness only) and frame types added later
    }
  }

  _onWelcome(frame) {
    if (this._welcomed) return;
    this._welcomed = true;
    const heartbeat = frame.heartbeat_seconds;
    // No heartbeat announced (0 or missing) means the server sends no pings: no watchdog.
    this._watchdogMs = Number.isFinite(heartbeat) && heartbeat > 0 ? 2 * heartbeat * 1000 : 0;
    this._armWatchdog();
    this._attempt = 0;
    this._signedInFlight = null;
    this._signedWaiting = [];
    for (const sub of this._subs.values()) this._sendSubscribe(sub);
    this._setState("open");
  }

  // Frames for a channel we no longer hold (in flight across an unsubscribe) are dropped.
  _route(frame, apply) {
    const sub = this._subs.get(frame.channel);
    if (sub) apply(sub);
  }

  _onServerError(frame) {
    let sub = typeof frame.channel === "string" ? this._subs.get(frame.channel) : undefined;
    if (!sub && frame.channel === undefined && this._signedInFlight) {
      sub = this._signedInFlight.sub;
      this._signedAnswered();
      if (this._subs.get(sub.channel) !== sub) return; // unsubscribed meanwhile
      return sub._onError(frame);
    }
    if (sub) return sub._onError(frame);
    const { type, ...info } = frame;
    this._reportError({
      ...info,
      code: String(info.code ?? "error"),
      message: String(info.message ?? ""),
    });
  }

  // The node is draining: leave now and come back after a random share of its window,
  // so its clients do not all land on the remaining nodes in the same instant.
  _onReconnectHint(frame) {
    const within = frame.within_ms;
    const delay =
      Number.isFinite(within) && within > 0 ? Math.floor(Math.random() * within) : undefined;
    this._connectionLost("reconnect hint", delay);
  }

  // --- helpers for Subscription --------------------------------------------------------

  _send(text) {
    if (this._transport) this._transport.send(text);
  }

  _removeSubscription(sub) {
    if (this._subs.get(sub.channel) !== sub) return;
    this._subs.delete(sub.channel);
    // While not open there is nothing to undo: the next welcome just won't resubscribe it.
    if (this._state === "open") this._send(encodeUnsubscribe(sub.channel));
  }

  _reportError(info) {
    this._emit("error", info);
  }

  // --- browser wake-ups ----------------------------------------------------------------

  // Coming back online or to a visible tab is when a sleeping connection is found dead:
  // skip the rest of the backoff wait. Returns the function that removes the listeners.
  _addWakeListeners() {
    const onOnline = () => this._wake();
    const onVisibility = () => {
      if (document.visibilityState === "visible") this._wake();
    };
    const win =
      typeof window !== "undefined" && typeof window.addEventListener === "function"
        ? window
        : null;
    const doc =
      typeof document !== "undefined" && typeof document.addEventListener === "function"
        ? document
        : null;
    win?.addEventListener("online", onOnline);
    doc?.addEventListener("visibilitychange", onVisibility);
    return () => {
      win?.removeEventListener("online", onOnline);
      doc?.removeEventListener("visibilitychange", onVisibility);
    };
  }

  _wake() {
    if (this._state === "open") {
      // Probe: a connection that died during sleep fails the send or misses the pong.
      this._send(encodePing());
      return;
    }
    if (this._state === "closed" || this._reconnectTimer === null) return; // dialling already
    this._clearReconnectTimer();
    this._connect();
  }
}

// ---------------------------------------------------------------------------------------
// createConsumer: @rails/actioncable's consumer API over a Seqcast connection, so a Rails
// front end keeps its code and gains resume (with `storage`, across page reloads too).
// Receive-only, like seqcast: perform() and send() do nothing and say so.
// ---------------------------------------------------------------------------------------

// The stream an Action Cable identifier names: a signed one (Turbo::StreamsChannel or
// $pubsub) or $pubsub's plain stream_name (allowed by the token); null for other channels.
function streamOf(params) {
  if (params === null || typeof params !== "object") return null;
  const { channel, signed_stream_name: signed, stream_name: name } = params;
  if (channel !== "Turbo::StreamsChannel" && channel !== "$pubsub") return null;
  if (typeof signed === "string") {
    const resolved = channelOfSignedName(signed);
    return resolved === null ? null : { channel: resolved, signed, proof: `signed:${signed}` };
  }
  if (channel === "$pubsub" && isValidChannel(name)) return { channel: name, signed: null, proof: "name" };
  return null;
}

function defaultConsumerUrl() {
  if (typeof location === "undefined") throw new TypeError("createConsumer needs a url here");
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/ws`;
}

class CableSubscription {
  constructor(consumer, params, mixin) {
    Object.assign(this, mixin);
    this.consumer = consumer;
    this.identifier = JSON.stringify(params);
    this._params = params;
    this._connected = false;
  }

  /** Receive-only: there is no channel code on the server to perform actions. */
  perform() {
    return false;
  }

  send() {
    return false;
  }

  unsubscribe() {
    this.consumer.subscriptions.remove(this);
  }

  // Returns what the callback returned (undefined when it threw).
  _call(name, ...args) {
    const fn = this[name];
    if (typeof fn !== "function") return undefined;
    try {
      return fn.apply(this, args);
    } catch (err) {
      this.consumer._client._reportError(thrownError("handler_error", err));
      return undefined;
    }
  }
}

// One Seqcast subscription per channel, shared by every identifier naming it with the
// same proof (the same signed name, or the same plain $pubsub stream_name). The server
// verifies a proof once, when the stream opens; an identifier that names an open stream
// with another proof waits for that verdict and is then rejected if the stream was
// confirmed (two signatures of one name cannot both verify under the server's key), or
// opens its own stream if the stream was refused. So an identifier is never joined to a
// stream its own proof did not open.
class CableSubscriptions {
  constructor(consumer) {
    this.consumer = consumer;
    this.subscriptions = [];
    this._streams = new Map(); // channel → {channel, proof, sub, subscribed, members, contenders}
  }

  create(channelName, mixin = {}) {
    const params = typeof channelName === "object" ? channelName : { channel: channelName };
    const cs = new CableSubscription(this.consumer, params, mixin);
    this.subscriptions.push(cs);
    cs._call("initialized");
    this._attach(cs, streamOf(params));
    return cs;
  }

  findAll(identifier) {
    return this.subscriptions.filter((s) => s.identifier === identifier);
  }

  remove(cs) {
    this.subscriptions = this.subscriptions.filter((s) => s !== cs);
    const stream = cs._stream;
    if (!stream) return;
    cs._stream = null;
    stream.contenders.delete(cs);
    stream.members.delete(cs);
    if (stream.members.size === 0 && stream.contenders.size === 0) {
      stream.sub.unsubscribe();
      this._streams.delete(stream.channel);
    }
  }

  _attach(cs, target) {
    if (target === null || this.consumer._client.state === "closed") {
      queueMicrotask(() => this._reject(cs));
      return;
    }
    let stream = this._streams.get(target.channel);
    if (!stream) {
      stream = this._open(target);
      this._streams.set(target.channel, stream);
    }
    cs._stream = stream;
    if (stream.proof !== target.proof) {
      cs._target = target;
      if (stream.subscribed) {
        queueMicrotask(() => this._refuse(cs));
      } else {
        stream.contenders.add(cs);
      }
      return;
    }
    stream.members.add(cs);
    if (stream.subscribed) queueMicrotask(() => this._connect(cs));
  }

  _open(target) {
    const client = this.consumer._client;
    const stream = {
      channel: target.channel,
      proof: target.proof,
      sub: null,
      subscribed: false,
      members: new Set(),
      contenders: new Set(),
    };
    // A `received` that returns a promise holds the stored position back until it
    // settles (defineTurboStreamSource: until Turbo has rendered the message).
    const handler = (message) => {
      const pending = [];
      for (const cs of [...stream.members]) {
        const result = cs._call("received", message.data);
        if (isThenable(result)) pending.push(result);
      }
      return pending.length > 0 ? Promise.allSettled(pending) : undefined;
    };
    stream.sub = target.signed
      ? client.subscribeSigned(target.signed, handler)
      : client.subscribe(target.channel, handler);
    stream.sub.on("subscribed", () => {
      stream.subscribed = true;
      for (const cs of [...stream.contenders]) this._refuse(cs);
      for (const cs of [...stream.members]) this._connect(cs);
    });
    stream.sub.on("error", () => {
      stream.sub.unsubscribe();
      this._streams.delete(stream.channel);
      for (const cs of [...stream.members]) {
        cs._stream = null;
        this._reject(cs);
      }
      // The refused proof was not theirs: each contender gets a verdict of its own.
      for (const cs of [...stream.contenders]) {
        stream.contenders.delete(cs);
        this._attach(cs, cs._target);
      }
    });
    return stream;
  }

  // A contender whose stream was confirmed under another proof.
  _refuse(cs) {
    const stream = cs._stream;
    if (!stream) return;
    stream.contenders.delete(cs);
    cs._stream = null;
    this._reject(cs);
  }

  _connect(cs) {
    if (cs._connected || !cs._stream) return;
    const reconnected = cs._wasConnected === true;
    cs._connected = cs._wasConnected = true;
    cs._call("connected", { reconnected });
  }

  _reject(cs) {
    this.subscriptions = this.subscriptions.filter((s) => s !== cs);
    cs._call("rejected");
  }

  _onState(state) {
    if (state !== "reconnecting" && state !== "closed") return;
    for (const stream of this._streams.values()) stream.subscribed = false;
    for (const cs of this.subscriptions) {
      if (!cs._connected) continue;
      cs._connected = false;
      cs._call("disconnected", { willAttemptReconnect: state === "reconnecting" });
    }
  }
}

class CableConsumer {
  constructor(url, options) {
    this._client = new Seqcast(url ?? defaultConsumerUrl(), options);
    this.subscriptions = new CableSubscriptions(this);
    this._client.on("state", (state) => this.subscriptions._onState(state));
  }

  /** The underlying Seqcast connection (positions, state, errors). */
  get client() {
    return this._client;
  }

  /** Closes for good (every subscription is told `disconnected`). */
  disconnect() {
    this._client.close();
  }

  send() {
    return false;
  }
}

/**
 * @rails/actioncable's createConsumer over seqcast's own protocol, with resume:
 * `url` is the ws(s)://…/v1/ws URL (default: /v1/ws of this page's host); options are
 * Seqcast's ({token, storage, WebSocket, …}).
 */
export function createConsumer(url, options = {}) {
  return new CableConsumer(url, options);
}

// turbo-rails renders <turbo-cable-stream-source channel="Turbo::StreamsChannel"
// signed-stream-name="…" data-…>; its data-* attributes join the identifier, snake_cased.
function turboParams(element) {
  const params = {
    channel: element.getAttribute("channel"),
    signed_stream_name: element.getAttribute("signed-stream-name"),
  };
  for (const [key, value] of Object.entries(element.dataset ?? {})) {
    params[key.replace(/([A-Z])/g, "_$1").toLowerCase()] = value;
  }
  return params;
}

// Hands `html` to Turbo as its stream sources do (a "message" event on the element) and
// returns a promise that settles once Turbo has rendered every <turbo-stream> in it, or
// undefined when there is none. Turbo renders on the next repaint, not at once: the
// position a reload resumes from must not pass a message the page never showed. Turbo
// announces each element synchronously, as the message event is handled, with a
// cancelable turbo:before-stream-render whose detail.render may be replaced; this
// listener runs after the app's (added last) and wraps whatever render they left.
function dispatchToTurbo(element, html) {
  const rendered = [];
  const capture = (event) => {
    const render = event.detail?.render;
    if (event.defaultPrevented || typeof render !== "function") return;
    rendered.push(
      new Promise((resolve) => {
        event.detail.render = async (stream) => {
          try {
            return await render(stream);
          } finally {
            resolve();
          }
        };
      }),
    );
  };
  document.addEventListener("turbo:before-stream-render", capture);
  try {
    element.dispatchEvent(new MessageEvent("message", { data: html }));
  } finally {
    document.removeEventListener("turbo:before-stream-render", capture);
  }
  if (rendered.length === 0) return undefined;
  // A render that never ends (a listener after ours replaced or cancelled it) must
  // not hold the stored position back for the rest of the page's life.
  let timer;
  const gaveUp = new Promise((resolve) => {
    timer = setTimeout(resolve, renderPatienceMs);
  });
  return Promise.race([Promise.all(rendered), gaveUp]).finally(() => clearTimeout(timer));
}

// How long the stored position waits for Turbo to render a message.
const renderPatienceMs = 10_000;

/**
 * Defines <turbo-cable-stream-source> over `consumer` (createConsumer's), for pages that
 * import @hotwired/turbo: pass that module (or window.Turbo) as `turbo`. Call it before
 * the page's stream elements connect — i.e. instead of importing @hotwired/turbo-rails,
 * whose element would bind to its own consumer first. Returns false when the element is
 * already defined (by turbo-rails, or an earlier call).
 */
export function defineTurboStreamSource(consumer, turbo) {
  if (typeof turbo?.connectStreamSource !== "function") {
    throw new TypeError("pass @hotwired/turbo (connectStreamSource, disconnectStreamSource)");
  }
  if (customElements.get("turbo-cable-stream-source")) return false;
  class TurboCableStreamSource extends HTMLElement {
    connectedCallback() {
      turbo.connectStreamSource(this);
      this.subscription = consumer.subscriptions.create(turboParams(this), {
        received: (data) => dispatchToTurbo(this, data),
        connected: () => this.setAttribute("connected", ""),
        disconnected: () => this.removeAttribute("connected"),
      });
    }

    disconnectedCallback() {
      turbo.disconnectStreamSource(this);
      this.subscription?.unsubscribe();
      this.subscription = null;
    }
  }
  customElements.define("turbo-cable-stream-source", TurboCableStreamSource);
  return true;
}
