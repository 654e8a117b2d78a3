// Makes the screenshots of docs/console.md: two nodes (blue, green) on a fresh
// database with a few hundred channels, clients of all three kinds, and a publisher
// running for a few minutes so that the charts have something to show; then each
// view of the console, and blue drained from its console while green's nodes panel
// watches its clients arrive. Not a test (scripts/test runs *.test.mjs only):
//   node tests/browser/console_screenshots.mjs [--minutes M] [--out DIR]
// (defaults: 3 minutes of traffic, docs/console/). Needs build/seqcast and Chromium
// like the browser tests (SEQCAST_BIN, SEQCAST_CHROMIUM, SEQCAST_TEST_DATABASE_URL).
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { Seqcast } from "../../client-js/src/seqcast.js";
import { REPO, freshDatabase, publish, publishBatch, range, startNode, waitFor } from "../e2e/harness.mjs";
import { startFaultProxy } from "../e2e/fault_proxy.mjs";

const { values: opts } = parseArgs({ options: { minutes: { type: "string", default: "3" }, out: { type: "string", default: "docs/console" } } });
const OUT = path.resolve(REPO, opts.out);
const ADMIN = "admin-screenshots";
const bearer = { authorization: `Bearer ${ADMIN}` };
const CHROMIUM = process.env.SEQCAST_CHROMIUM || "/usr/bin/chromium";
const POLL = { polling: 200, timeout: 120_000 };
const log = (m) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

fs.mkdirSync(OUT, { recursive: true });
const databaseUrl = await freshDatabase();
const args = ["--admin-key", ADMIN, "--retention-messages", "5000"];
const blue = await startNode({ databaseUrl, name: "shots-blue", args, env: { SEQCAST_NODE_NAME: "blue-1" } });
const green = await startNode({ databaseUrl, name: "shots-green", args, env: { SEQCAST_NODE_NAME: "green-1" } });
const proxy = await startFaultProxy({ upstreamPort: blue.port });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"] });
const closers = [];
let stop = false;
try {
  // Channels: rooms, feeds, and one busy channel with a long history.
  const names = [...range(1, 240).map((i) => `room:${i}`), ...range(1, 60).map((i) => `feed:eu:${i}`), "orders:eu", "orders:us", "Z/1", "_internal"];
  for (let i = 0; i < names.length; i += 100) {
    await publishBatch(blue.url, names.slice(i, i + 100).map((channel, k) => ({ channel, data: { hello: channel, k } })), { headers: bearer });
  }
  for (let i = 1; i < 1500; i += 250) {
    await publishBatch(green.url, range(i, i + 249).map((n) => ({ channel: "orders:eu", data: { order: 10_000 + n, sku: `SKU-${n % 37}`, qty: 1 + (n % 5), eur: Number(((n % 97) * 1.25).toFixed(2)) } })), { headers: bearer });
  }
  log("channels published");

  // Clients: 24 WebSocket on blue behind the proxy, 2 Action Cable and 3 SSE on green.
  const clients = range(1, 24).map((k) => {
    const sc = new Seqcast(proxy.wsUrl, { WebSocket });
    sc.subscribe(k % 3 ? "orders:eu" : `room:${k}`, { since: 0 }, () => {});
    closers.push(() => sc.close());
    return sc;
  });
  for (let k = 0; k < 2; k++) {
    const ws = new WebSocket(`ws://127.0.0.1:${green.port}/cable`, ["actioncable-v1-json"]);
    ws.on("open", () => ws.send(JSON.stringify({ command: "subscribe", identifier: JSON.stringify({ channel: "$pubsub", stream_name: "orders:us" }) })));
    ws.on("error", () => {});
    closers.push(() => ws.close());
  }
  for (let k = 0; k < 3; k++) {
    const req = http.get(`${green.url}/v1/sse/orders:eu`);
    req.on("error", () => {});
    closers.push(() => req.destroy());
  }
  await waitFor(() => clients.every((c) => c.state === "open"), { timeoutMs: 30_000, what: "clients open" });

  // A publisher: about 15 messages a second, in bursts.
  let n = 0;
  const publisher = (async () => {
    while (!stop) {
      const burst = 1 + (n % 7 === 0 ? 10 : 0);
      await Promise.all(range(1, burst).map(() => publish(blue.url, n % 4 ? "orders:eu" : "orders:us", { order: 20_000 + ++n }, { headers: bearer }).catch(() => {})));
      await new Promise((r) => setTimeout(r, 120));
    }
  })();
  log(`traffic for ${opts.minutes} min`);
  await new Promise((r) => setTimeout(r, Number(opts.minutes) * 60_000));

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  let page = await context.newPage();
  const shot = (p, name) => p.screenshot({ path: path.join(OUT, `console-${name}.png`), fullPage: true, animations: "disabled" });
  const useKey = async (p) => {
    await p.fill("#key", ADMIN);
    await p.click("#key-use");
  };

  await page.goto(`${blue.url}/#/channels`);
  await useKey(page);
  await page.fill("#channels-prefix", "room:");
  await page.selectOption("#channels-limit", "25");
  await page.waitForFunction(() => document.querySelector("#channels-body tr")?.dataset.channel === "room:1", null, POLL);
  await shot(page, "channels");
  log("channels");

  await page.goto(`${blue.url}/#/channel/${encodeURIComponent("orders:eu")}`);
  await page.waitForSelector('#state[data-state="open"]');
  await page.selectOption("#history-limit", "20");
  await page.fill("#history-from", "1200");
  await page.click("#history-load");
  await page.waitForFunction(() => document.querySelector("#history-body tr")?.dataset.seq === "1200", null, POLL);
  await page.fill("#download-from", "1200");
  await page.fill("#download-to", "1300");
  await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  await page.waitForFunction(() => /101 messages/.test(document.querySelector("#download-hint").textContent), null, POLL);
  await page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 5, null, POLL);
  await shot(page, "channel");
  log("channel");

  // A page of its own: the channel page's live tail would count on blue through the drain.
  await page.close();
  page = await context.newPage();
  await page.goto(`${blue.url}/#/node`);
  await useKey(page);
  await page.waitForFunction(() => Number(document.querySelector('figure[data-chart="publishes"]')?.dataset.points) >= 10, null, POLL);
  await new Promise((r) => setTimeout(r, 1500));
  await shot(page, "node");
  log("node");

  const watch = await context.newPage();
  await watch.goto(`${green.url}/#/nodes`);
  await useKey(watch); // sessionStorage: per tab and per origin
  await waitFor(() => watch.evaluate(() => document.querySelectorAll("#nodes-body tr").length === 2), { timeoutMs: 30_000, what: "two nodes" });
  await new Promise((r) => setTimeout(r, 1000));
  await shot(watch, "nodes-before");
  proxy.setUpstream(green.port);
  await page.click("#drain");
  await page.fill("#drain-window", "30");
  await shot(page, "drain-confirm");
  await page.click("#drain-confirm");
  await watch.waitForFunction(() => document.querySelector('#nodes-body tr[data-node="blue-1"]')?.dataset.draining === "true" &&
    Number(document.querySelector('#nodes-body tr[data-node="green-1"]')?.dataset.websocket) >= 6, null, POLL);
  await shot(watch, "nodes");
  await page.waitForFunction(() => document.querySelector("#ready").dataset.state === "draining", null, POLL);
  await shot(page, "node-draining");
  await watch.waitForFunction(() => Number(document.querySelector('#nodes-body tr[data-node="blue-1"]')?.dataset.websocket) === 0 &&
    Number(document.querySelector('#nodes-body tr[data-node="green-1"]')?.dataset.websocket) >= 24, null, POLL);
  await shot(watch, "nodes-after");
  log("nodes");
  stop = true;
  await publisher;
} finally {
  stop = true;
  for (const close of closers) close();
  await browser.close();
  await proxy.close();
  await blue.stop();
  await green.stop();
}
log(`screenshots in ${OUT}`);
process.exit(0);
