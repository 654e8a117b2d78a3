// The soak test's subscribers, three kinds, all resuming across disconnects:
//   RawWsSubscriber  the `ws` package speaking /v1/ws itself (since/epoch of its
//                    last delivered message on every reconnect)
//   SseSubscriber    GET /v1/sse/{channel} over node:http (?since=&epoch= or
//                    Last-Event-ID), parsing message/reset/error events
//   ClientSubscriber the bundled JS client (client-js/src/seqcast.js) with its
//                    own reconnect and resume
// Each checks online what one stream must satisfy (contiguous seqs per epoch,
// every gap explained exactly by a reset, epochs change only with a reset) and
// records every delivery for the end-of-run checker, which compares payloads
// with the publishes and the log.
import http from "node:http";

import WebSocket from "ws";

import { Seqcast } from "../../client-js/src/seqcast.js";
import { md5, canonical } from "./lib.mjs";

class Track {
  constructor(channel) {
    this.channel = channel;
    this.epoch = null; // epoch of the last delivered message (or of a reset)
    this.seq = 0; // last delivered seq (or resume point after a reset)
    this.seg = 0; // bumped at every reset: deliveries in one segment share an epoch
    this.delivered = 0;
    this.catchUp = null; // {from, head, startedAt}
  }
}

class BaseSubscriber {
  constructor(world, id, kind, channels, rng) {
    this.world = world;
    this.id = id;
    this.kind = kind;
    this.rng = rng;
    this.channels = channels;
    this.tracks = new Map(channels.map((c) => [c, new Track(c)]));
    this.running = false;
    this.connections = 0;
    this.closeCodes = {};
    this.offlineUntil = 0;
  }

  async waitOnline() {
    while (this.running && Date.now() < this.offlineUntil) {
      await new Promise((r) => setTimeout(r, Math.min(200, this.offlineUntil - Date.now())));
    }
  }

  violate(message, details) {
    this.world.violate(`${this.id} (${this.kind})`, message, details);
  }

  position(channel) {
    const t = this.tracks.get(channel);
    return { epoch: t.epoch, seq: t.seq };
  }

  noteClose(code) {
    const k = String(code);
    this.closeCodes[k] = (this.closeCodes[k] ?? 0) + 1;
    this.world.stats.closeCodes[k] = (this.world.stats.closeCodes[k] ?? 0) + 1;
  }

  beginCatchUp(t, head) {
    if (head > t.seq) t.catchUp = { from: t.seq, head, startedAt: Date.now() };
    else t.catchUp = null;
  }

  endCatchUpIfDone(t) {
    if (!t.catchUp || t.seq < t.catchUp.head) return;
    const ms = Date.now() - t.catchUp.startedAt;
    const best = this.world.stats.longestCatchUp;
    if (!best || ms > best.ms) {
      this.world.stats.longestCatchUp = { ms, sub: this.id, channel: t.channel, messages: t.catchUp.head - t.catchUp.from };
    }
    t.catchUp = null;
  }

  /**
   * A reset for `channel`. `epochKnown` is false for SSE streams whose epoch
   * the subscriber never learnt (SSE message events carry no epoch).
   */
  onReset(channel, reset) {
    const t = this.tracks.get(channel);
    const { reason, first_seq: first, missed } = reset;
    this.world.stats.resets[reason] = (this.world.stats.resets[reason] ?? 0) + 1;
    this.world.resetLog.push({ sub: this.id, channel, t: this.world.t(), from: { epoch: t.epoch, seq: t.seq }, reset });
    if (!Number.isSafeInteger(first) || first < 1) this.violate(`reset of ${channel} with first_seq ${first}`, reset);
    if (reason === "truncated") {
      if (t.epoch !== null && reset.epoch !== t.epoch) {
        // Only a failover that kept the position explains another epoch here (the
        // checker decides, once it knows every channel's epochs).
        this.world.transitions.push({ sub: this.id, channel, from: t.epoch, to: reset.epoch, held: t.seq });
      }
      if (!Array.isArray(missed) || missed[0] !== t.seq + 1 || missed[1] !== first - 1 || missed[1] < missed[0]) {
        this.violate(
          `truncated reset of ${channel} does not explain the gap exactly: last delivered ${t.seq}, missed ${JSON.stringify(missed)}, first_seq ${first}`,
          reset,
        );
      }
    } else if (reason === "epoch_changed") {
      if (missed !== null) this.violate(`epoch_changed reset of ${channel} with missed ${JSON.stringify(missed)}`, reset);
      if (t.epoch !== null && reset.epoch === t.epoch) {
        this.violate(`epoch_changed reset of ${channel} names the stream's own epoch ${t.epoch}`, reset);
      }
    } else if (reason === "rewound") {
      // A failover: the soak's standby is synchronous, so nothing is lost and only an SSE
      // stream may get one (its events carry no epoch: one that crossed a failover live
      // resumes with the epoch it started in, beyond what that epoch kept). The checker
      // judges it; here only its shape.
      const R = reset.rewound_to;
      if (!Number.isSafeInteger(R) || missed !== null || first < R + 1) {
        this.violate(`rewound reset of ${channel} is malformed: rewound_to ${R}, first_seq ${first}, missed ${JSON.stringify(missed)}`, reset);
      }
    } else {
      this.violate(`reset of ${channel} with unexpected reason ${reason}`, reset);
    }
    t.epoch = reset.epoch ?? null;
    t.seq = first - 1;
    t.seg += 1;
    if (t.catchUp && Number.isSafeInteger(reset.head)) t.catchUp.head = reset.head;
  }

  /**
   * A delivered message. `epoch` is what the frame names (undefined for SSE).
   * `hash` is of the payload bytes as delivered; `canon` says it is of the
   * re-serialised JSON (the bundled client hands over parsed data).
   */
  onMessage(channel, { epoch, seq, key, hash, canon = false }) {
    const t = this.tracks.get(channel);
    if (epoch !== undefined) {
      if (t.epoch === null) t.epoch = epoch;
      else if (epoch !== t.epoch) {
        // Only a failover that kept the position explains it (the checker decides, once
        // it knows every channel's epochs).
        this.world.transitions.push({ sub: this.id, channel, from: t.epoch, to: epoch, held: t.seq });
        t.epoch = epoch;
        t.seg += 1;
      }
    } else if (t.epoch === null) {
      // SSE: learn the epoch from the publisher's answer for this payload, if it came.
      const ack = this.world.ackOf(key);
      if (ack && ack.channel === channel && ack.seq === seq) t.epoch = ack.epoch;
    }
    if (seq !== t.seq + 1) {
      const what = seq <= t.seq ? "duplicate or out of order" : "gap without a reset";
      this.violate(`${channel}: got seq ${seq} after ${t.seq} in epoch ${t.epoch} (${what})`);
    }
    this.world.deliveries.push({ sub: this.id, kind: this.kind, channel, epoch: t.epoch, framedEpoch: epoch, seg: t.seg, seq, key, hash, canon });
    t.seq = seq;
    t.delivered += 1;
    this.world.stats.delivered += 1;
    this.endCatchUpIfDone(t);
  }

  keyOf(data, channel, seq) {
    const key = data && typeof data === "object" ? data.k : undefined;
    if (typeof key !== "string") this.violate(`${channel}#${seq}: payload without a key: ${JSON.stringify(data).slice(0, 200)}`);
    return key;
  }
}

// ---------------------------------------------------------------------------

/**
 * A subscriber that owns one connection at a time and makes the next one
 * itself, after a short random pause; the subclass opens it (`_connectOnce`,
 * resolving when it ends), names the stream to pause and drops it.
 */
class ReconnectingSubscriber extends BaseSubscriber {
  start() {
    this.running = true;
    this.loop = this._loop();
  }

  async stop() {
    this.running = false;
    this._drop();
    await this.loop;
  }

  /** Stops reading for `ms` (the node's send queue fills). */
  pause(ms) {
    const stream = this._stream();
    if (!stream) return false;
    stream.pause();
    setTimeout(() => {
      if (!stream.destroyed) stream.resume();
    }, ms);
    return true;
  }

  /** Disconnects and stays away for `ms`, then resumes from its position. */
  goOffline(ms) {
    this.offlineUntil = Date.now() + ms;
    this._drop();
    return true;
  }

  async _loop() {
    while (this.running) {
      await this.waitOnline();
      if (!this.running) break;
      await this._connectOnce();
      if (!this.running) break;
      this.world.stats.reconnects[this.kind] += 1;
      await new Promise((r) => setTimeout(r, this.rng.int(50, 800)));
    }
  }
}

export class RawWsSubscriber extends ReconnectingSubscriber {
  constructor(world, id, channels, rng) {
    super(world, id, "ws", channels, rng);
    this.ws = null;
  }

  _stream() {
    return this.ws?._socket ?? null;
  }

  _drop() {
    if (this.ws) this.ws.terminate();
  }

  _connectOnce() {
    const proxy = this.world.pickClientProxy(this.rng);
    this.connections += 1;
    const conn = this.connections;
    return new Promise((resolve) => {
      const ws = new WebSocket(proxy.wsUrl, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024, handshakeTimeout: 5_000 });
      this.ws = ws;
      const subs = new Map(); // channel -> {state, expectReset, sawMessage}
      let welcomed = false;
      let watchdog = null;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ws.terminate(), this.world.silenceMs);
      };
      const subscribe = (channel) => {
        const t = this.tracks.get(channel);
        const op = { op: "subscribe", channel, since: t.seq };
        if (t.epoch !== null) op.epoch = t.epoch;
        subs.set(channel, { state: "subscribing", expectReset: false, sent: { ...op } });
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(op));
      };
      ws.on("open", arm);
      ws.on("message", (data, isBinary) => {
        arm();
        if (isBinary) return this.violate("binary frame from the server");
        const raw = data.toString("utf8");
        let frame;
        try {
          frame = JSON.parse(raw);
        } catch {
          return this.violate(`unparsable frame: ${raw.slice(0, 200)}`);
        }
        if (!welcomed) {
          if (frame.type !== "welcome") this.violate(`first frame is not welcome: ${raw.slice(0, 200)}`);
          welcomed = true;
          for (const channel of this.channels) subscribe(channel);
          return;
        }
        const s = frame.channel !== undefined ? subs.get(frame.channel) : undefined;
        switch (frame.type) {
          case "subscribed": {
            if (!s || s.state !== "subscribing") return this.violate(`unexpected subscribed for ${frame.channel}`, frame);
            s.state = "subscribed";
            const t = this.tracks.get(frame.channel);
            // The server resets a position of another epoch (or of a channel with no history).
            if ((t.epoch !== null && frame.epoch !== t.epoch) || (t.epoch === null && t.seq > 0 && frame.epoch === null)) {
              s.expectReset = true;
            } else if (t.epoch === null && frame.epoch !== null) {
              t.epoch = frame.epoch;
            }
            this.beginCatchUp(t, frame.head);
            return;
          }
          case "reset": {
            if (!s || s.state !== "subscribed") return this.violate(`reset for ${frame.channel} before subscribed`, frame);
            s.expectReset = false;
            return this.onReset(frame.channel, frame);
          }
          case "message": {
            if (!s || s.state !== "subscribed") return this.violate(`message for ${frame.channel} outside a subscription`, { seq: frame.seq });
            if (s.expectReset) {
              s.expectReset = false;
              // Another epoch without a reset: a failover may explain it (onMessage notes
              // the change for the checker); a position in a channel with no history cannot.
              if (this.tracks.get(frame.channel).epoch === null) {
                this.violate(`message ${frame.channel}#${frame.seq} (epoch ${frame.epoch}) where a reset was due: asked ${JSON.stringify(s.sent)}`);
              }
            }
            const at = raw.indexOf(',"data":');
            const payload = at >= 0 && raw.endsWith("}") ? raw.slice(at + 8, -1) : "";
            const key = this.keyOf(frame.data, frame.channel, frame.seq);
            return this.onMessage(frame.channel, { epoch: frame.epoch, seq: frame.seq, key, hash: md5(payload) });
          }
          case "error": {
            if (frame.code === "unavailable" && s) {
              // The node could not read the channel's head: subscribe again shortly.
              this.world.stats.subscribeErrors += 1;
              s.state = "retrying";
              setTimeout(() => {
                if (ws.readyState === WebSocket.OPEN && subs.get(frame.channel) === s) subscribe(frame.channel);
              }, this.rng.int(200, 800));
              return;
            }
            return this.violate(`error frame ${raw.slice(0, 300)}`);
          }
          case "reconnect": {
            const within = Number.isFinite(frame.within_ms) && frame.within_ms > 0 ? frame.within_ms : 1;
            setTimeout(() => ws.close(1000), Math.floor(this.rng() * within));
            return;
          }
          default:
            return; // ping, pong
        }
      });
      ws.on("error", () => {});
      ws.on("unexpected-response", (_req, res) => {
        this.noteClose(`http${res.statusCode}`);
        res.resume();
        ws.terminate();
      });
      ws.on("close", (code) => {
        clearTimeout(watchdog);
        this.noteClose(code);
        resolve();
      });
    });
  }
}

// ---------------------------------------------------------------------------

export class SseSubscriber extends ReconnectingSubscriber {
  constructor(world, id, channel, rng) {
    super(world, id, "sse", [channel], rng);
    this.channel = channel;
    this.req = null;
    this.res = null;
  }

  _stream() {
    return this.res;
  }

  _drop() {
    if (this.req) this.req.destroy();
  }

  _connectOnce() {
    const proxy = this.world.pickClientProxy(this.rng);
    const t = this.tracks.get(this.channel);
    this.connections += 1;
    const params = new URLSearchParams();
    const headers = {};
    if (this.rng.chance(0.5)) params.set("since", String(t.seq));
    else headers["Last-Event-ID"] = String(t.seq);
    if (t.epoch !== null) params.set("epoch", t.epoch);
    const url = `${proxy.url}/v1/sse/${encodeURIComponent(this.channel)}?${params}`;
    return new Promise((resolve) => {
      let done = false;
      let watchdog = null;
      const finish = (code) => {
        if (done) return;
        done = true;
        clearTimeout(watchdog);
        this.noteClose(code);
        this.res = null;
        req.destroy();
        resolve();
      };
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish("silence"), this.world.silenceMs);
      };
      const req = http.get(url, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          if (res.statusCode >= 400 && res.statusCode < 500) this.violate(`GET ${url} answered ${res.statusCode}`);
          res.resume();
          return finish(`http${res.statusCode}`);
        }
        this.res = res;
        arm();
        res.setEncoding("utf8");
        let buffer = "";
        let event = { type: "message", id: null, data: [] };
        res.on("data", (chunk) => {
          // A response this subscriber gave up on (silence while paused) may still
          // emit what it had buffered when the pause ends: not this connection's.
          if (done) return;
          arm();
          buffer += chunk;
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            let line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line.endsWith("\r")) line = line.slice(0, -1);
            if (line === "") {
              if (event.data.length > 0 || event.id !== null) this._event(event, finish);
              event = { type: "message", id: null, data: [] };
              continue;
            }
            if (line.startsWith(":")) continue; // ping
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) value = value.slice(1);
            if (field === "event") event.type = value;
            else if (field === "data") event.data.push(value);
            else if (field === "id") event.id = value;
          }
        });
        res.on("end", () => finish("end"));
        res.on("error", () => finish("error"));
        res.on("close", () => finish("closed"));
      });
      this.req = req;
      req.setTimeout(5_000, () => {
        if (!this.res) finish("connect-timeout");
      });
      req.on("error", () => finish("error"));
    });
  }

  _event(event, finish) {
    const data = event.data.join("\n");
    if (event.type === "message") {
      const seq = Number(event.id);
      if (!Number.isSafeInteger(seq)) return this.violate(`SSE message without a numeric id: ${event.id}`);
      let parsed;
      try {
        parsed = JSON.parse(data);
      } catch {
        return this.violate(`SSE message ${seq} with unparsable data: ${data.slice(0, 200)}`);
      }
      const key = this.keyOf(parsed, this.channel, seq);
      return this.onMessage(this.channel, { epoch: undefined, seq, key, hash: md5(data) });
    }
    if (event.type === "reset") {
      let reset;
      try {
        reset = JSON.parse(data);
      } catch {
        return this.violate(`SSE reset with unparsable data: ${data.slice(0, 200)}`);
      }
      return this.onReset(this.channel, reset);
    }
    if (event.type === "error") {
      let err = {};
      try {
        err = JSON.parse(data);
      } catch {
        // reported below
      }
      if (err.code === "unavailable") {
        this.world.stats.subscribeErrors += 1;
        return finish("unavailable");
      }
      return this.violate(`SSE error event: ${data.slice(0, 300)}`);
    }
    return this.violate(`SSE event of unknown type ${event.type}`);
  }
}

// ---------------------------------------------------------------------------

export class ClientSubscriber extends BaseSubscriber {
  constructor(world, id, channels, rng) {
    super(world, id, "client", channels, rng);
    this.sockets = new Set();
    this.sc = null;
  }

  start() {
    this.running = true;
    const self = this;
    // The client builds its sockets with `new WebSocket(url)`; this one keeps
    // a hand on them (to stop reading) and sets what `ws` needs for big frames.
    class TrackedWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024, handshakeTimeout: 5_000 });
        self.sockets.add(this);
        self.connections += 1;
        this.on("close", (code) => {
          self.sockets.delete(this);
          self.noteClose(code);
        });
      }
    }
    this.TrackedWebSocket = TrackedWebSocket;
    this._open((channel) => ({ since: this.tracks.get(channel).seq }));
  }

  // A new Seqcast subscribing to every channel with `optionsOf(channel)`.
  _open(optionsOf) {
    const TrackedWebSocket = this.TrackedWebSocket;
    this.sc = new Seqcast(() => this.world.pickClientProxy(this.rng).wsUrl, {
      WebSocket: TrackedWebSocket,
      minReconnectDelay: 100,
      maxReconnectDelay: 2_000,
    });
    this.sc.on("state", (state) => {
      if (state === "reconnecting") this.world.stats.reconnects.client += 1;
    });
    this.sc.on("error", (info) => {
      const k = `client:${info.code}`;
      this.world.stats.clientErrors[k] = (this.world.stats.clientErrors[k] ?? 0) + 1;
    });
    for (const channel of this.channels) this._subscribe(channel, optionsOf(channel));
  }

  /**
   * Closes the client and, after `ms`, opens a new one resuming every channel
   * from the position the application kept (like a page reload with storage).
   */
  goOffline(ms) {
    if (!this.sc || this.offlineUntil > Date.now()) return false;
    this.offlineUntil = Date.now() + ms;
    this.sc.close();
    this.sc = null;
    setTimeout(() => {
      if (!this.running) return;
      this.world.stats.reconnects.client += 1;
      this._open((channel) => {
        const t = this.tracks.get(channel);
        return t.epoch !== null ? { since: t.seq, epoch: t.epoch } : { since: t.seq };
      });
    }, ms);
    return true;
  }

  _subscribe(channel, options) {
    const sub = this.sc.subscribe(channel, options, (msg) => {
      const key = this.keyOf(msg.data, channel, msg.seq);
      this.onMessage(channel, { epoch: msg.epoch, seq: msg.seq, key, hash: md5(JSON.stringify(msg.data)), canon: true });
    });
    sub.on("subscribed", (info) => this.beginCatchUp(this.tracks.get(channel), info.head));
    sub.on("reset", (info) => this.onReset(channel, info));
    sub.on("gap", (info) => this.violate(`client reported a gap on ${channel}: ${JSON.stringify(info)}`));
    sub.on("error", (info) => {
      if (info.code !== "unavailable") return this.violate(`client error on ${channel}: ${JSON.stringify(info)}`);
      // The node could not read the channel's head; the client does not retry a
      // failed subscribe by itself: subscribe again from where it stands.
      this.world.stats.subscribeErrors += 1;
      const sc = this.sc;
      setTimeout(() => {
        if (!this.running || this.sc !== sc) return;
        const t = this.tracks.get(channel);
        sub.unsubscribe();
        const again = { since: t.seq };
        if (t.epoch !== null) again.epoch = t.epoch;
        this._subscribe(channel, again);
      }, this.rng.int(200, 800));
    });
  }

  pause(ms) {
    const raws = [...this.sockets].map((s) => s._socket).filter(Boolean);
    for (const raw of raws) raw.pause();
    setTimeout(() => {
      for (const raw of raws) if (!raw.destroyed) raw.resume();
    }, ms);
    return raws.length > 0;
  }

  async stop() {
    this.running = false;
    this.sc?.close();
  }
}

export { canonical };
