// A small switchable TCP proxy that plays the load balancer in the end-to-end
// tests. It accepts on one port and forwards each NEW connection to its current
// upstream; switching the upstream leaves existing connections where they are,
// like a load balancer whose target group changed (or an Elastic Beanstalk
// CNAME swap): old connections stay on blue until blue closes them.
//
//   const proxy = await startTcpProxy({ upstreamPort: blue.port });
//   proxy.url / proxy.wsUrl       what clients connect to
//   proxy.setUpstream(green.port) new connections go to green from now on
//   proxy.openTo(blue.port)       connections currently open to an upstream
//   await proxy.close()           stops accepting and cuts every connection
//
// Closing is passed through: an upstream that ends (FIN) ends the client side
// once what it sent has been written; an upstream that fails (reset, refused,
// killed) destroys the client side at once, as a load balancer would. The same
// holds the other way round.
//
// Runnable on its own for manual experiments:
//   node tests/e2e/tcp_proxy.mjs LISTEN_PORT UPSTREAM_PORT
//   (then type a port number + Enter on stdin to switch the upstream)
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Starts the proxy on `host:port` (port 0 = any free port) forwarding to
 * `upstreamHost:upstreamPort`. Resolves once it listens.
 */
export async function startTcpProxy({ upstreamPort, upstreamHost = "127.0.0.1", host = "127.0.0.1", port = 0 } = {}) {
  if (!upstreamPort) throw new Error("startTcpProxy needs an upstreamPort");
  let upstream = { host: upstreamHost, port: upstreamPort };
  const pairs = new Set(); // {client, server, upstreamPort, openedAt}
  let accepted = 0;
  let refused = 0; // connections whose upstream could not be reached

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    accepted += 1;
    const target = upstream;
    const conn = net.connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    const pair = { client, server: conn, upstreamPort: target.port, openedAt: Date.now() };
    pairs.add(pair);
    let connected = false;
    conn.once("connect", () => {
      connected = true;
    });

    // Bytes both ways with backpressure; a FIN from one side ends the other
    // side after its pending writes (pipe's default `end: true`). Half-open is
    // allowed, so the side that has not finished yet can still send.
    client.pipe(conn);
    conn.pipe(client);

    const forget = () => pairs.delete(pair);
    client.on("error", () => conn.destroy());
    conn.on("error", () => {
      if (!connected) refused += 1;
      client.destroy();
    });
    // A side that is gone for good (reset, or destroyed) takes the other one with
    // it; a clean close (after both FINs) has already been passed on by pipe.
    client.on("close", (hadError) => {
      if (hadError || !client.readableEnded) conn.destroy();
      forget();
    });
    conn.on("close", (hadError) => {
      if (hadError || !conn.readableEnded) client.destroy();
      forget();
    });
  });
  server.on("error", () => {}); // accept errors (e.g. EMFILE) end only that connection
  server.listen(port, host);
  await once(server, "listening");
  const listenPort = server.address().port;

  return {
    port: listenPort,
    url: `http://${host}:${listenPort}`,
    wsUrl: `ws://${host}:${listenPort}/v1/ws`,
    /** Where new connections go now: {host, port}. */
    get upstream() {
      return { ...upstream };
    },
    /** Connections accepted since start, and those whose upstream refused them. */
    get stats() {
      return { accepted, refused, open: pairs.size };
    },
    /** New connections go to `port` (on `host`) from now on; open ones stay. */
    setUpstream(newPort, newHost = upstream.host) {
      upstream = { host: newHost, port: newPort };
    },
    /** How many proxied connections are open to upstream `port` right now. */
    openTo(port) {
      let n = 0;
      for (const pair of pairs) if (pair.upstreamPort === port) n += 1;
      return n;
    },
    /** Stops accepting and destroys every open connection. */
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      pairs.clear();
      await closed;
    },
  };
}

// node tests/e2e/tcp_proxy.mjs LISTEN_PORT UPSTREAM_PORT
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
  if (!listenPort || !upstreamPort) {
    console.error("usage: node tcp_proxy.mjs LISTEN_PORT UPSTREAM_PORT   (stdin: a port number switches the upstream)");
    process.exit(2);
  }
  const proxy = await startTcpProxy({ port: listenPort, upstreamPort });
  console.log(`proxy 127.0.0.1:${proxy.port} -> 127.0.0.1:${upstreamPort}`);
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (text) => {
    const next = Number(text.trim());
    if (!Number.isInteger(next) || next <= 0) return console.error("type a port number");
    console.log(`new connections -> 127.0.0.1:${next} (${proxy.openTo(proxy.upstream.port)} stay on ${proxy.upstream.port})`);
    proxy.setUpstream(next);
  });
}
