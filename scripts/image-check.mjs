// The client side of scripts/test-image: subscribes over WebSocket, publishes
// over HTTP, checks that every subscriber receives every message in order; then,
// with --drain, keeps a WebSocket open on that node and waits for its drain.
//
//   node scripts/image-check.mjs --publish http://127.0.0.1:P \
//     --subscribe ws://127.0.0.1:P/v1/ws [--subscribe ws://…]… [--drain ws://…] [--count N]
//
// Prints one line per step; with --drain it prints "ready for the drain" and
// then waits (up to 120 s) for {"type":"reconnect","reason":"draining"} and the
// close code 1012. Exits non-zero on the first failure. Needs the `ws` package
// (npm ci, or scripts/install-deps --test).
import WebSocket from "ws";

function parseArgs(argv) {
  const options = { subscribe: [], count: 20 };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--publish") options.publish = value;
    else if (flag === "--subscribe") options.subscribe.push(value);
    else if (flag === "--drain") options.drain = value;
    else if (flag === "--count") options.count = Number(value);
    else throw new Error(`unknown argument ${flag}`);
    i += 1;
  }
  if (!options.publish || options.subscribe.length === 0) {
    throw new Error("usage: image-check.mjs --publish URL --subscribe WS_URL… [--drain WS_URL] [--count N]");
  }
  return options;
}

function fail(message) {
  console.error(`image-check: FAILED: ${message}`);
  process.exit(1);
}

/** A WebSocket with its frames queued; next(pred, ms) resolves with the first match. */
function connect(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const frames = [];
    let waiter = null;
    const client = {
      socket,
      closed: new Promise((resolveClosed) => socket.on("close", (code) => resolveClosed(code))),
      send: (frame) => socket.send(JSON.stringify(frame)),
      next(predicate, timeoutMs, what) {
        return new Promise((resolveNext, rejectNext) => {
          const check = () => {
            const index = frames.findIndex(predicate);
            if (index < 0) return false;
            const [frame] = frames.splice(index, 1);
            clearTimeout(timer);
            waiter = null;
            resolveNext(frame);
            return true;
          };
          const timer = setTimeout(() => {
            waiter = null;
            rejectNext(new Error(`${url}: no ${what} within ${timeoutMs} ms`));
          }, timeoutMs);
          if (!check()) waiter = check;
        });
      },
    };
    socket.on("message", (data) => {
      frames.push(JSON.parse(data.toString("utf8")));
      if (waiter) waiter();
    });
    socket.once("open", () => resolve(client));
    socket.once("error", reject);
  });
}

async function subscribe(url, channel) {
  const client = await connect(url);
  await client.next((f) => f.type === "welcome", 10_000, "welcome");
  client.send({ op: "subscribe", channel, since: 0 });
  const subscribed = await client.next((f) => f.type === "subscribed" || f.type === "error", 10_000, "subscribed");
  if (subscribed.type !== "subscribed") throw new Error(`${url}: ${JSON.stringify(subscribed)}`);
  return client;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const channel = `image-check:${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

  const subscribers = [];
  for (const url of options.subscribe) subscribers.push({ url, client: await subscribe(url, channel) });
  console.log(`image-check: ${subscribers.length} WebSocket subscriber(s) on ${channel}`);

  for (let seq = 1; seq <= options.count; seq += 1) {
    const res = await fetch(`${options.publish}/v1/channels/${encodeURIComponent(channel)}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ n: seq }),
    });
    const body = await res.json();
    if (res.status !== 201 || body.seq !== seq) fail(`publish ${seq}: ${res.status} ${JSON.stringify(body)}`);
  }
  console.log(`image-check: published ${options.count} messages through ${options.publish}: 201, seq 1..${options.count}`);

  for (const { url, client } of subscribers) {
    for (let seq = 1; seq <= options.count; seq += 1) {
      const frame = await client.next((f) => f.type === "message" || f.type === "reset", 10_000, `message ${seq}`);
      if (frame.type !== "message" || frame.seq !== seq || frame.data?.n !== seq) {
        fail(`${url}: expected message ${seq}, got ${JSON.stringify(frame)}`);
      }
    }
    console.log(`image-check: ${url} received seq 1..${options.count} in order`);
  }
  for (const { client } of subscribers) client.socket.close();

  if (options.drain) {
    const client = await subscribe(options.drain, channel);
    console.log(`image-check: ready for the drain (subscribed on ${options.drain})`);
    const hint = await client.next((f) => f.type === "reconnect", 120_000, "reconnect hint");
    if (hint.reason !== "draining") fail(`reconnect hint: ${JSON.stringify(hint)}`);
    const code = await Promise.race([client.closed, new Promise((r) => setTimeout(() => r("none"), 30_000))]);
    if (code !== 1012) fail(`close code after the reconnect hint: ${code}, expected 1012`);
    console.log(`image-check: drain seen: ${JSON.stringify(hint)}, then close 1012`);
  }
  process.exit(0);
}

main().catch((error) => fail(error.stack ?? String(error)));
