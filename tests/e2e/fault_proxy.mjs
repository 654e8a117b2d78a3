// A TCP proxy that plays the load balancer and injects network faults, for the
// end-to-end tests and the soak. It sits between clients and a seqcast node, or
// between a node and PostgreSQL (the node's --database-url points at the
// proxy's port), and forwards every connection to its current upstream;
// switching the upstream leaves open connections where they are, like a load
// balancer whose target group changed. Per proxy it can:
//
//   proxy.cut()                      destroy every open connection (both sides, at once)
//   proxy.stall(ms)                  stop forwarding both ways for `ms` without closing
//                                    anything (sockets paused; new connections are
//                                    accepted and held too); resolves when it ends
//   proxy.partition({mode})          until heal(): "refuse" (default) cuts every open
//                                    connection and resets each new one at once;
//                                    "blackhole" forwards nothing and connects nothing
//                                    (open connections hang, new ones wait unconnected),
//                                    like packets dropped on the floor
//   proxy.heal()                     ends a partition (a blackhole's held connections
//                                    then reach the upstream, its paused ones flow again)
//   proxy.setUpstream(port, host)    new connections go there; open ones stay
//   proxy.stats                      {accepted, refused, open, cuts, stalls, partitions}
//   await proxy.close()              stops accepting and cuts every connection
//
// Forwarding is done by hand, not with pipe(): a stall pauses a socket, and
// pipe() would resume it on the next 'drain'. Backpressure is kept (a side
// whose peer does not take more is paused until its peer drains). Closing is
// passed through: a FIN ends the other side once
// its pending writes are out; a reset or failure destroys the other side.
//
// Runnable on its own, for manual experiments:
//   node tests/e2e/fault_proxy.mjs LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]
// then commands on stdin, one a line:
//   cut | stall MS | partition [refuse|blackhole] | heal | upstream PORT [HOST] | stats
//   | open PORT (connections open to upstream PORT)
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Starts a fault proxy on `host:port` (port 0 = any free port) forwarding to
 * `upstreamHost:upstreamPort`. Resolves once it listens.
 */
export async function startFaultProxy({ upstreamPort, upstreamHost = "127.0.0.1", host = "127.0.0.1", port = 0, name = "proxy" } = {}) {
  if (!upstreamPort) throw new Error("startFaultProxy needs an upstreamPort");
  let upstream = { host: upstreamHost, port: upstreamPort };
  const pairs = new Set(); // live connection pairs
  const held = new Set(); // client sockets held unconnected by a blackhole partition
  let stalls = 0; // stalls in force (they may overlap)
  let partitioned = null; // null | "refuse" | "blackhole"
  const counts = { accepted: 0, refused: 0, cuts: 0, stalls: 0, partitions: 0, reset: 0 };

  const frozen = () => stalls > 0 || partitioned === "blackhole";

  function destroyHard(socket) {
    // A reset (RST) rather than a FIN where the runtime offers it (Node >= 18.3).
    if (typeof socket.resetAndDestroy === "function" && socket.readyState !== "closed" && !socket.destroyed) {
      try {
        socket.resetAndDestroy();
        return;
      } catch {
        // fall through
      }
    }
    socket.destroy();
  }

  // Bytes from `src` to `dst`, paused while frozen or while `dst` is full.
  function forward(pair, src, dst, dir) {
    src.on("data", (chunk) => {
      if (!dst.write(chunk)) {
        pair.full[dir] = true;
        src.pause();
        dst.once("drain", () => {
          pair.full[dir] = false;
          if (!frozen() && !src.destroyed) src.resume();
        });
      }
    });
    src.on("end", () => {
      if (!dst.destroyed) dst.end();
    });
  }

  function resumePair(pair) {
    if (!pair.full.up && !pair.client.destroyed) pair.client.resume();
    if (!pair.full.down && pair.server && !pair.server.destroyed) pair.server.resume();
  }

  function connectUpstream(client) {
    const target = upstream;
    const conn = net.connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    const pair = { client, server: conn, upstreamPort: target.port, openedAt: Date.now(), full: { up: false, down: false } };
    pairs.add(pair);
    let connected = false;
    conn.once("connect", () => {
      connected = true;
    });
    forward(pair, client, conn, "up");
    forward(pair, conn, client, "down");
    if (frozen()) {
      client.pause();
      conn.pause();
    }
    const forget = () => pairs.delete(pair);
    client.on("error", () => conn.destroy());
    conn.on("error", () => {
      if (!connected) counts.refused += 1;
      client.destroy();
    });
    client.on("close", (hadError) => {
      if (hadError || !client.readableEnded) conn.destroy();
      forget();
    });
    conn.on("close", (hadError) => {
      if (hadError || !conn.readableEnded) client.destroy();
      forget();
    });
  }

  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (client) => {
    counts.accepted += 1;
    client.on("error", () => {});
    if (partitioned === "refuse") {
      counts.reset += 1;
      destroyHard(client);
      return;
    }
    if (partitioned === "blackhole") {
      held.add(client);
      client.on("close", () => held.delete(client));
      return;
    }
    connectUpstream(client);
    if (!frozen()) client.resume();
  });
  server.on("error", () => {}); // accept errors (e.g. EMFILE) end only that connection
  server.listen(port, host);
  await once(server, "listening");
  const listenPort = server.address().port;

  function cutAll() {
    let n = 0;
    for (const pair of [...pairs]) {
      n += 1;
      destroyHard(pair.client);
      destroyHard(pair.server);
    }
    pairs.clear();
    return n;
  }

  function unfreeze() {
    if (frozen()) return;
    for (const pair of pairs) resumePair(pair);
  }

  const proxy = {
    name,
    port: listenPort,
    url: `http://${host}:${listenPort}`,
    wsUrl: `ws://${host}:${listenPort}/v1/ws`,
    get upstream() {
      return { ...upstream };
    },
    get partitioned() {
      return partitioned;
    },
    get stalled() {
      return stalls > 0;
    },
    get stats() {
      return { ...counts, open: pairs.size, held: held.size };
    },
    /** New connections go to `port` (on `host`) from now on; open ones stay. */
    setUpstream(newPort, newHost = upstream.host) {
      upstream = { host: newHost, port: newPort };
    },
    /** How many proxied connections are open to upstream `port` right now. */
    openTo(p) {
      let n = 0;
      for (const pair of pairs) if (pair.upstreamPort === p) n += 1;
      return n;
    },
    /** Destroys every open connection; returns how many there were. */
    cut() {
      counts.cuts += 1;
      return cutAll();
    },
    /** Starts a stall; returns the function that ends it (idempotent). */
    stallStart() {
      counts.stalls += 1;
      stalls += 1;
      for (const pair of pairs) {
        pair.client.pause();
        pair.server.pause();
      }
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        stalls -= 1;
        unfreeze();
      };
    },
    /** Stops forwarding both ways for `ms`; resolves once forwarding resumed. */
    async stall(ms) {
      const end = proxy.stallStart();
      await new Promise((resolve) => setTimeout(resolve, ms));
      end();
    },
    /** Partitions until heal(): mode "refuse" (cut + reset new) or "blackhole". */
    partition({ mode = "refuse" } = {}) {
      if (mode !== "refuse" && mode !== "blackhole") throw new Error(`unknown partition mode ${mode}`);
      counts.partitions += 1;
      partitioned = mode;
      if (mode === "refuse") {
        cutAll();
      } else {
        for (const pair of pairs) {
          pair.client.pause();
          pair.server.pause();
        }
      }
    },
    /** Ends a partition. */
    heal() {
      const was = partitioned;
      partitioned = null;
      if (was === "blackhole") {
        const waiting = [...held];
        held.clear();
        for (const client of waiting) {
          if (client.destroyed) continue;
          connectUpstream(client);
        }
      }
      unfreeze();
    },
    /** Stops accepting and destroys every open connection. */
    async close() {
      partitioned = null;
      stalls = 0;
      const closed = new Promise((resolve) => server.close(resolve));
      cutAll();
      for (const client of held) client.destroy();
      held.clear();
      await closed;
    },
  };
  return proxy;
}

// node tests/e2e/fault_proxy.mjs LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listenText, upstreamText, upstreamHost = "127.0.0.1"] = process.argv.slice(2);
  const listenPort = Number(listenText);
  const upstreamPort = Number(upstreamText);
  if (!Number.isInteger(listenPort) || !upstreamPort) {
    console.error("usage: node fault_proxy.mjs LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]");
    console.error("stdin: cut | stall MS | partition [refuse|blackhole] | heal | upstream PORT [HOST] | stats | open PORT");
    process.exit(2);
  }
  const proxy = await startFaultProxy({ port: listenPort, upstreamPort, upstreamHost });
  console.log(`fault proxy 127.0.0.1:${proxy.port} -> ${upstreamHost}:${upstreamPort}`);
  const say = (obj) => console.log(JSON.stringify(obj));
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (text) => {
    buffered += text;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const [command, ...args] = buffered.slice(0, nl).trim().split(/\s+/);
      buffered = buffered.slice(nl + 1);
      try {
        switch (command) {
          case "":
            break;
          case "cut":
            say({ cut: proxy.cut() });
            break;
          case "stall": {
            const ms = Number(args[0]);
            if (!(ms > 0)) throw new Error("stall MS");
            proxy.stall(ms).then(() => say({ stalled_ms: ms, resumed: true }));
            say({ stalling_ms: ms });
            break;
          }
          case "partition":
            proxy.partition({ mode: args[0] || "refuse" });
            say({ partitioned: proxy.partitioned });
            break;
          case "heal":
            proxy.heal();
            say({ healed: true });
            break;
          case "upstream": {
            const p = Number(args[0]);
            if (!p) throw new Error("upstream PORT [HOST]");
            proxy.setUpstream(p, args[1]);
            say({ upstream: proxy.upstream });
            break;
          }
          case "stats":
            say(proxy.stats);
            break;
          case "open": {
            const p = Number(args[0]);
            if (!p) throw new Error("open PORT");
            say({ open_to: p, open: proxy.openTo(p) });
            break;
          }
          default:
            throw new Error(`unknown command ${command}`);
        }
      } catch (err) {
        say({ error: err.message });
      }
    }
  });
  process.stdin.on("end", async () => {
    await proxy.close();
    process.exit(0);
  });
}
