// The operator's console at / in a real browser (issue "R2 6/7 The operator's
// console"): Debian's chromium, headless, driven by playwright-core, against two
// seqcast nodes (blue and green) on one PostgreSQL, as an operator uses it:
//   - list and search channels by prefix, paging through a few hundred of them;
//   - page a channel's history from an offset (compared with the log API exactly),
//     and download a range as NDJSON (compared byte for byte);
//   - see the node's charts move while a publisher runs;
//   - see both nodes, drain blue from its console (with the confirmation), and
//     watch its clients — behind a switchable proxy, like a load balancer — move
//     to green, blue's state change to draining and back.
// Screenshots of each view go to tests/artifacts/browser/console-*.png (the ones in
// docs/console/ come from here).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { Seqcast } from "../../client-js/src/seqcast.js";
import {
  freshDatabase,
  getJson,
  publish,
  publishBatch,
  range,
  startNode,
  uniqueName,
  waitFor,
} from "../e2e/harness.mjs";
import { ARTIFACTS, CHROMIUM, LAUNCH_ARGS } from "./chromium.mjs";
import { startFaultProxy } from "../e2e/fault_proxy.mjs";

const ADMIN = "admin-console-browser-31f7";
const POLL = { polling: 100, timeout: 60_000 };
const bearer = { authorization: `Bearer ${ADMIN}` };

/** Uncaught exceptions of the page (browser-logged failed requests are expected: 401s, a drain's 503s). */
function watchPageErrors(page) {
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

/** Types the admin key into the page (it stays in this tab's sessionStorage). */
async function useKey(page, key) {
  await page.fill("#key", key);
  await page.click("#key-use");
}

/** The texts of `selector`'s elements. */
const texts = (page, selector) => page.$$eval(selector, (els) => els.map((e) => e.textContent));

describe("R2 6/7 The operator's console in a browser", () => {
  let browser;
  let blue;
  let green;
  let databaseUrl;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    databaseUrl = await freshDatabase();
    const args = ["--admin-key", ADMIN];
    blue = await startNode({ databaseUrl, name: "console-blue", args });
    green = await startNode({ databaseUrl, name: "console-green", args });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  after(async () => {
    await browser?.close();
    await blue?.stop();
    await green?.stop();
  });

  /** A fresh browser context (own storage) and page of 1280×860, closed after the test. */
  async function newPage(t) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
    t.after(() => context.close());
    return context.newPage();
  }

  const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true, animations: "disabled" });

  test("channels: a key refused is said so; search by prefix and page through a few hundred channels in byte order", { timeout: 120_000 }, async (t) => {
    // 300 channels under one prefix, 60 under another, and names whose byte order is not a locale's.
    const rooms = range(1, 300).map((i) => `ops:room:${String(i).padStart(3, "0")}`);
    const others = [...range(1, 60).map((i) => `ops:feed:${i}`), "ops:B", "ops:a", "ops:_", "ops:Z/1"];
    const all = [...rooms, ...others];
    for (let i = 0; i < all.length; i += 200) {
      const res = await publishBatch(blue.url, all.slice(i, i + 200).map((channel, k) => ({ channel, data: { k, note: "x".repeat(k % 7) } })), { headers: bearer });
      assert.equal(res.status, 201, res.text);
    }

    const page = await newPage(t);
    const errors = watchPageErrors(page);
    await page.goto(`${blue.url}/#/channels`);
    // Without a key the stats are refused, and the page says what to do.
    await page.waitForFunction(() => /needs a key/.test(document.querySelector("#banner").textContent), null, POLL);
    await useKey(page, "wrong-key");
    await page.waitForFunction(() => /key was refused \(401\)/.test(document.querySelector("#banner").textContent), null, POLL);
    await useKey(page, ADMIN);
    await page.waitForFunction(() => !/401/.test(document.querySelector("#banner").textContent), null, POLL);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("seqcast-console:key")), ADMIN, "the key is kept for the tab");
    assert.ok(!page.url().includes(ADMIN), "the key is never in the URL");

    // Byte order across the names of one prefix.
    await page.fill("#channels-prefix", "ops:");
    await page.selectOption("#channels-limit", "25");
    await page.click("#channels-search");
    await page.waitForFunction(() => document.querySelector("#channels-body tr")?.dataset.channel === "ops:B", null, POLL);
    assert.deepEqual((await texts(page, "#channels-body tr td:first-child")).slice(0, 5), ["ops:B", "ops:Z/1", "ops:_", "ops:a", "ops:feed:1"]);
    await shot(page, "channels");

    // 300 rooms, 100 a page: three pages forward, and back.
    await page.fill("#channels-prefix", "ops:room:");
    await page.selectOption("#channels-limit", "100");
    const pageOf = async (from) => {
      await page.waitForFunction((first) => document.querySelector("#channels-body tr")?.dataset.channel === first, from, POLL);
      return page.$$eval("#channels-body tr", (trs) => trs.map((tr) => tr.dataset.channel));
    };
    assert.deepEqual(await pageOf("ops:room:001"), rooms.slice(0, 100));
    const api = await getJson(`${blue.url}/v1/channels?prefix=ops:room:&limit=100`, { headers: bearer });
    const row = await page.$$eval("#channels-body tr:first-child td", (tds) => tds.map((td) => td.textContent));
    const c0 = api.body.channels[0];
    assert.deepEqual(row, [c0.channel, c0.epoch, "1", "1", "1", `${c0.bytes} B`, "0"], "the first row shows what the API says");
    await page.click("#channels-next");
    assert.deepEqual(await pageOf("ops:room:101"), rooms.slice(100, 200));
    await page.click("#channels-next");
    assert.deepEqual(await pageOf("ops:room:201"), rooms.slice(200, 300));
    assert.equal(await page.isDisabled("#channels-next"), true, "the last page has no next");
    assert.match(await page.textContent("#channels-page"), /page 3: .*\(last page\)/);
    await page.click("#channels-prev");
    assert.deepEqual(await pageOf("ops:room:101"), rooms.slice(100, 200));
    await page.click("#channels-first");
    assert.deepEqual(await pageOf("ops:room:001"), rooms.slice(0, 100));

    // A row opens its channel.
    await page.click('#channels-body tr[data-channel="ops:room:042"] a');
    await page.waitForFunction(() => document.body.dataset.view === "channel", null, POLL);
    assert.equal(await page.inputValue("#channel"), "ops:room:042");
    assert.deepEqual(errors, [], "no uncaught errors in the page");
  });

  test("channel history: read from an offset, page forward and back, equal to the log API; download a range as NDJSON", { timeout: 120_000 }, async (t) => {
    const channel = uniqueName("ops:history");
    const n = 350;
    const payload = (i) => ({ i, text: `message ${i} — é ✓`, nested: { even: i % 2 === 0, list: [i, `${i}`] } });
    for (let i = 1; i <= n; i += 175) {
      const res = await publishBatch(green.url, range(i, i + 174).map((k) => ({ channel, data: payload(k) })), { headers: bearer });
      assert.equal(res.status, 201, res.text);
    }
    const page = await newPage(t);
    const errors = watchPageErrors(page);
    await page.goto(`${blue.url}/#/channel/${encodeURIComponent(channel)}`);
    await useKey(page, ADMIN);
    await page.waitForSelector('#state[data-state="open"]', { timeout: 30_000 });
    // The newest page first.
    await page.waitForFunction(() => document.querySelector("#history-body tr")?.dataset.seq === "251", null, POLL);
    await page.waitForFunction(() => /messages\s*350\b/.test(document.querySelector("#info").innerText), null, POLL);

    const shown = () =>
      page.$$eval("#history-body tr", (trs) => trs.map((tr) => ({ seq: Number(tr.dataset.seq), ts: tr.dataset.ts, data: tr.dataset.json })));
    const fromApi = async (from, limit) => {
      const res = await getJson(`${blue.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=${from}&limit=${limit}`, { headers: bearer });
      assert.equal(res.status, 200, res.text);
      return res.body.messages.map((m) => ({ seq: m.seq, ts: m.ts, data: JSON.stringify(m.data) }));
    };
    const waitFirst = (seq) => page.waitForFunction((s) => document.querySelector("#history-body tr")?.dataset.seq === String(s), seq, POLL);

    await page.fill("#history-from", "120");
    await page.click("#history-load");
    await waitFirst(120);
    assert.deepEqual(await shown(), await fromApi(120, 100), "seq 120..219 as the log API gives them");
    assert.equal((await shown()).length, 100);
    await page.click("#history-next");
    await waitFirst(220);
    assert.deepEqual(await shown(), await fromApi(220, 100), "the next page: 220..319");
    await page.click("#history-prev");
    await waitFirst(120);
    assert.deepEqual(await shown(), await fromApi(120, 100), "back to 120..219");
    await page.selectOption("#history-limit", "20");
    await waitFirst(120);
    await page.waitForFunction(() => document.querySelectorAll("#history-body tr").length === 20, null, POLL);
    assert.deepEqual(await shown(), await fromApi(120, 20));
    assert.match(await page.textContent("#history-summary"), /seq 120–139 of 1–350/);
    await shot(page, "channel");

    // The operator's replay: a range as NDJSON, byte for byte what the API streams.
    await page.fill("#download-from", "120");
    await page.fill("#download-to", "300");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const file = await download.path();
    const got = fs.readFileSync(file);
    const res = await fetch(`${blue.url}/v1/channels/${encodeURIComponent(channel)}/messages?from=120&limit=181`, {
      headers: { ...bearer, accept: "application/x-ndjson" },
    });
    const want = Buffer.from(await res.arrayBuffer());
    assert.ok(got.equals(want), `the download equals the NDJSON the API streams (${got.length} vs ${want.length} bytes)`);
    const lines = got.toString("utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.seq), range(120, 300));
    assert.deepEqual(lines[0].data, payload(120));
    assert.equal(download.suggestedFilename(), `${channel.replace(/[/:]/g, "_")}-120-300.ndjson`);
    await page.waitForFunction(() => /181 messages/.test(document.querySelector("#download-hint").textContent), null, POLL);
    assert.deepEqual(errors, [], "no uncaught errors in the page");
  });

  test("this node: the publish and delivery charts move while a publisher runs", { timeout: 120_000 }, async (t) => {
    const page = await newPage(t);
    const errors = watchPageErrors(page);
    await page.goto(`${blue.url}/#/node`);
    await useKey(page, ADMIN);
    await page.waitForSelector('figure[data-chart="publishes"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-stat="readiness"] .value')?.textContent === "ready", null, POLL);

    // A subscriber on blue and a publisher to blue, about 20 messages a second.
    const channel = uniqueName("ops:rate");
    const sc = new Seqcast(blue.wsUrl, { WebSocket });
    t.after(() => sc.close());
    const got = [];
    sc.subscribe(channel, { since: 0 }, (m) => got.push(m.seq));
    let stop = false;
    let published = 0;
    const publisher = (async () => {
      while (!stop) {
        const res = await publish(blue.url, channel, { i: published + 1 }, { headers: bearer });
        assert.equal(res.status, 201, res.text);
        published += 1;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    t.after(async () => {
      stop = true;
      await publisher;
    });

    const moved = await page.waitForFunction(() => {
      const pub = document.querySelector('figure[data-chart="publishes"]');
      const del = document.querySelector('figure[data-chart="deliveries"]');
      return Number(pub?.dataset.last) > 1 && Number(del?.dataset.last) > 1 && Number(pub.dataset.points) >= 2
        ? { publishes: pub.dataset.last, deliveries: del.dataset.last, points: pub.dataset.points }
        : null;
    }, null, { polling: 250, timeout: 60_000 });
    t.diagnostic(`charts: ${JSON.stringify(await moved.jsonValue())} after ${published} publishes`);
    const points = await page.$eval('figure[data-chart="publishes"] polyline', (p) => p.getAttribute("points").split(" ").length);
    assert.ok(points >= 2, `the publish chart draws a line (${points} points)`);
    assert.notEqual(await page.textContent('[data-stat="publishes"] .value'), "0");
    assert.match(await page.textContent('[data-stat="connections"] .detail'), /websocket [1-9]/);
    stop = true;
    await publisher;
    await waitFor(() => got.length === published, { timeoutMs: 20_000, what: "the subscriber to get every message" });
    await shot(page, "node");
    assert.deepEqual(errors, [], "no uncaught errors in the page");
  });

  test("nodes: both listed; a drain of blue from its console moves blue's clients to green, and blue's state changes", { timeout: 180_000 }, async (t) => {
    const clients = 12;
    const channel = uniqueName("ops:move");
    const proxy = await startFaultProxy({ upstreamPort: blue.port });
    t.after(() => proxy.close());
    const subs = range(1, clients).map(() => {
      const c = { got: [] };
      c.sc = new Seqcast(proxy.wsUrl, { WebSocket });
      c.sub = c.sc.subscribe(channel, (m) => c.got.push(m.seq));
      c.subscribed = new Promise((resolve) => c.sub.on("subscribed", resolve));
      return c;
    });
    t.after(() => subs.forEach((c) => c.sc.close()));
    await Promise.all(subs.map((c) => c.subscribed));
    assert.equal(proxy.openTo(blue.port), clients);

    // The nodes panel on green: both nodes, blue with the clients.
    const watch = await newPage(t);
    const watchErrors = watchPageErrors(watch);
    await watch.goto(`${green.url}/#/nodes`);
    await useKey(watch, ADMIN);
    const blueName = (await getJson(`${blue.url}/v1/stats`, { headers: bearer })).body.node.name;
    const greenName = (await getJson(`${green.url}/v1/stats`, { headers: bearer })).body.node.name;
    const rowOf = (name) => `#nodes-body tr[data-node="${name}"]`;
    const countOf = async (name) => Number(await watch.getAttribute(rowOf(name), "data-websocket"));
    await watch.waitForFunction(
      ([b, g, n]) => Number(document.querySelector(`#nodes-body tr[data-node="${b}"]`)?.dataset.websocket) === n &&
        document.querySelector(`#nodes-body tr[data-node="${g}"]`) !== null,
      [blueName, greenName, clients],
      POLL,
    );
    assert.equal(await countOf(greenName), 0, "green has no client yet");
    await watch.waitForFunction((g) => /this node/.test(document.querySelector(`#nodes-body tr[data-node="${g}"]`)?.textContent), greenName, POLL);
    await shot(watch, "nodes-before");

    // The load balancer now sends new connections to green; then blue is drained
    // from its own console, with the confirmation.
    proxy.setUpstream(green.port);
    const page = await newPage(t);
    await page.goto(`${blue.url}/#/node`);
    await useKey(page, ADMIN);
    await page.waitForFunction(() => document.querySelector('[data-stat="drain"] .value')?.textContent === "serving", null, POLL);
    await page.click("#drain");
    await page.waitForSelector("#drain-dialog[open]");
    // Long enough for a refresh of blue's row (every 5 s) to catch it draining.
    await page.fill("#drain-window", "12");
    await shot(page, "drain-confirm");
    await page.click("#drain-confirm");
    await page.waitForFunction(() => document.querySelector("#ready").dataset.state === "draining", null, POLL);
    await page.waitForFunction(() => document.querySelector('[data-stat="drain"] .value')?.textContent === "draining", null, POLL);
    assert.match(await page.textContent("#banner"), /not ready — draining/);

    // Green's panel: blue shown draining while its clients go to green.
    await watch.waitForFunction((b) => document.querySelector(`#nodes-body tr[data-node="${b}"]`)?.dataset.draining === "true", blueName, POLL);
    await shot(watch, "nodes");
    await watch.waitForFunction(
      ([b, g, n]) => Number(document.querySelector(`#nodes-body tr[data-node="${b}"]`)?.dataset.websocket) === 0 &&
        Number(document.querySelector(`#nodes-body tr[data-node="${g}"]`)?.dataset.websocket) >= n,
      [blueName, greenName, clients],
      POLL,
    );
    await shot(watch, "nodes-after");
    assert.equal(proxy.openTo(green.port), clients, "every client reconnected through the proxy to green");
    assert.equal(proxy.openTo(blue.port), 0);

    // Every client still gets what is published, now through green.
    const res = await publish(blue.url, channel, { after: "drain" }, { headers: bearer });
    assert.equal(res.status, 201);
    await waitFor(() => subs.every((c) => c.got.at(-1) === res.body.seq), { timeoutMs: 30_000, what: "every client to get the message after the move" });

    // After the window blue is ready again (it was drained, not stopped).
    await page.waitForFunction(() => document.querySelector("#ready").dataset.state === "ready", null, POLL);
    await page.waitForFunction(() => document.querySelector('[data-stat="drain"] .value')?.textContent === "serving", null, POLL);
    await watch.waitForFunction((b) => document.querySelector(`#nodes-body tr[data-node="${b}"]`)?.dataset.draining === "false", blueName, POLL);
    assert.deepEqual(watchErrors, [], "no uncaught errors in the watching page");
  });
});
