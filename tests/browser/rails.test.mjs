// Real-browser tests of the Rails front-end clients (Debian's chromium, headless,
// driven by playwright-core) against seqcast nodes started by the e2e harness:
//   1. stock @rails/actioncable on /cable (through a fault proxy, blue and green
//      nodes on one database): confirm, every message in order, rejected for a
//      tampered signature, another key, a malformed name and an unknown channel
//      class; blue drains and the stock client comes back by itself to green;
//   2. @anycable/web on actioncable-v1-ext-json: every message exactly once and in
//      order across a SIGKILL of its node, then history_not_found (reject_history)
//      for a stale epoch and live messages after it;
//   3. Turbo Streams with @hotwired/turbo + @anycable/turbo-stream on an ext-json
//      cable: the DOM gains every <p data-i> once, in order, across a SIGKILL;
//   4. the same page with the bundled client (createConsumer on /v1/ws with
//      storage: localStorage + defineTurboStreamSource): once and in order across
//      a SIGKILL and a page reload mid-stream;
//   5. stock @hotwired/turbo-rails (the importmap bundle) with the
//      action-cable-url meta tag on /cable: live updates reach the DOM;
//   6. the same page gets Turbo broadcasts made by Rails through the seqcast
//      adapter (integrations/rails), in http mode and in outbox mode.
// Pages come from a tiny page server on its own origin, which also serves
// node_modules (bare imports through an import map). Screenshots of each page at
// its end go to tests/artifacts/browser/.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import { once } from "node:events";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { chromium } from "playwright-core";
import { startFaultProxy } from "../e2e/fault_proxy.mjs";
import { REPO, freshDatabase, publish, range, signJwt, signStreamName, startNode, waitFor } from "../e2e/harness.mjs";
import { ARTIFACTS, CHROMIUM, LAUNCH_ARGS } from "./chromium.mjs";


// The node environment of tests/e2e/cable.test.mjs.
const STREAMS_SECRET = "rails-browser-streams-secret-3c8d";
const JWT_SECRET = "rails-browser-jwt-secret-71fa";
const ADMIN = "rails-browser-admin-5e20";
const ENV = {
  SEQCAST_STREAMS_SECRET: STREAMS_SECRET,
  SEQCAST_JWT_SECRET: JWT_SECRET,
  SEQCAST_ADMIN_KEY: ADMIN,
  SEQCAST_DRAIN_DELAY_SECONDS: "0",
  SEQCAST_DRAIN_WINDOW_SECONDS: "1",
};
const ADMIN_HEADERS = { authorization: `Bearer ${ADMIN}` };

let channelCounter = 0;
const newChannel = (prefix) => `${prefix}:${process.pid}:${Date.now()}:${++channelCounter}`;
/** A Turbo Stream broadcast as turbo-rails renders one: appends <p data-i="i">i</p> to #log. */
const html = (i) => `<turbo-stream action="append" target="log"><template><p data-i="${i}">${i}</p></template></turbo-stream>`;
const signed = (name, key = STREAMS_SECRET) => signStreamName(name, key);
const cableUrl = (port) => `ws://127.0.0.1:${port}/cable`;
const jwt = () => signJwt({ sub: "browser", channels: [], exp: Math.floor(Date.now() / 1000) + 3600 }, JWT_SECRET);

/** Publishes html(from..to) to `channel` over REST, one by one, with the admin key. */
async function publishAll(nodeUrl, channel, from, to) {
  for (let i = from; i <= to; i++) {
    const res = await publish(nodeUrl, channel, html(i), { headers: ADMIN_HEADERS });
    assert.equal(res.status, 201, `publish ${i}: ${res.status} ${res.text}`);
  }
}

/** Like publishAll, pacing the messages `intervalMs` apart and noting progress. */
async function publishPaced(nodeUrl, channel, from, to, progress, intervalMs = 15) {
  for (let i = from; i <= to; i++) {
    const res = await publish(nodeUrl, channel, html(i), { headers: ADMIN_HEADERS });
    assert.equal(res.status, 201, `publish ${i}: ${res.status} ${res.text}`);
    progress.published = i;
    if (i < to) await delay(intervalMs);
  }
}

// ---------------------------------------------------------------------------
// Test pages

// Bare specifiers of the npm clients, resolved to the files the page server
// serves from node_modules.
const IMPORT_MAP = {
  imports: {
    "@anycable/web": "/node_modules/@anycable/web/index.js",
    "@anycable/core": "/node_modules/@anycable/core/index.js",
    "@anycable/turbo-stream": "/node_modules/@anycable/turbo-stream/index.js",
    "@hotwired/turbo": "/node_modules/@hotwired/turbo/dist/turbo.es2017-esm.js",
    "@rails/actioncable": "/node_modules/@rails/actioncable/app/assets/javascripts/actioncable.esm.js",
    nanoevents: "/node_modules/nanoevents/index.js",
  },
};

const scriptJson = (value) => JSON.stringify(value).replace(/</g, "\\u003c");

/**
 * A test page: the import map, `config` (read by the page as window.config),
 * `body` (e.g. a <turbo-cable-stream-source>), the #log target, a recorder and
 * the module `script`. The recorder notes every <p data-i> added to #log, in
 * the same task, in localStorage: the log survives a reload and holds
 * everything the page ever showed, over all loads (a <p> shown again after a
 * reload would be in it twice).
 */
function testPage({ title, config = {}, head = "", body = "", script = "" }) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<link rel="icon" href="data:,">
${head}
<script type="importmap">${scriptJson(IMPORT_MAP)}</script>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; }
#log p { display: inline-block; margin: 2px; padding: 2px 6px; background: #e8f0fe; border-radius: 4px; }
turbo-cable-stream-source[connected]::after { content: "stream source connected"; color: #137333; }
</style>
</head>
<body>
<h1>${title}</h1>
<p>state: <span id="state">loading</span></p>
${body}
<div id="log"></div>
<script>
window.config = ${scriptJson(config)};
(() => {
  const key = "test:shown";
  const shown = JSON.parse(localStorage.getItem(key) || "[]");
  const log = document.getElementById("log");
  const test = (window.test = { shownBeforeLoad: shown.length });
  new MutationObserver((records) => {
    let added = false;
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === 1 && node.hasAttribute("data-i")) {
          shown.push(Number(node.getAttribute("data-i")));
          added = true;
        }
      }
    }
    if (added) localStorage.setItem(key, JSON.stringify(shown));
  }).observe(log, { childList: true });
  // Turbo Streams handed to Turbo (it renders each on the next animation frame).
  const deliveredKey = "test:delivered";
  const delivered = JSON.parse(localStorage.getItem(deliveredKey) || "[]");
  document.addEventListener("turbo:before-stream-render", (event) => {
    const p = event.target.querySelector("template")?.content.querySelector("[data-i]");
    if (!p) return;
    delivered.push(Number(p.getAttribute("data-i")));
    localStorage.setItem(deliveredKey, JSON.stringify(delivered));
  });
  test.delivered = () => JSON.parse(localStorage.getItem(deliveredKey) || "[]");
  test.shown = () => JSON.parse(localStorage.getItem(key) || "[]");
  test.dom = () => [...log.querySelectorAll("p[data-i]")].map((p) => Number(p.getAttribute("data-i")));
  test.state = (text) => { document.getElementById("state").textContent = text; };
  // Shows a received Turbo Stream's <template> content in #log (pages without Turbo).
  test.show = (data) => {
    const outer = document.createElement("template");
    outer.innerHTML = String(data);
    const inner = outer.content.querySelector("template");
    if (inner) log.append(inner.content.cloneNode(true));
  };
})();
</script>
<script type="module">
${script}
</script>
</body>
</html>
`;
}

const streamSource = (signedName) =>
  `<turbo-cable-stream-source channel="Turbo::StreamsChannel" signed-stream-name="${signedName}"></turbo-cable-stream-source>`;

// 1. Stock @rails/actioncable: one good subscription and four that must be rejected.
const ACTIONCABLE_SCRIPT = `
import { createConsumer } from "@rails/actioncable";
const { url, good, refused } = window.config;
const test = window.test;
Object.assign(test, { received: [], connected: [], disconnected: [], rejected: [], wrong: [] });
const consumer = createConsumer(url);
consumer.subscriptions.create(good, {
  connected(info) { test.connected.push({ at: Date.now(), reconnected: info?.reconnected }); test.state("connected"); },
  disconnected(info) { test.disconnected.push({ at: Date.now(), willAttemptReconnect: info?.willAttemptReconnect }); test.state("disconnected"); },
  received(data) { test.received.push(data); test.show(data); },
});
for (const [name, params] of Object.entries(refused)) {
  consumer.subscriptions.create(params, {
    rejected() { test.rejected.push(name); },
    connected() { test.wrong.push(name + " connected"); },
    received() { test.wrong.push(name + " received"); },
  });
}
test.ready = true;
`;

// 2. @anycable/web on ext-json, streamFromSigned ($pubsub).
const ANYCABLE_SCRIPT = `
import { createCable } from "@anycable/web";
const test = window.test;
Object.assign(test, { received: [], infos: [], connects: 0 });
const cable = createCable(window.config.url, { protocol: "actioncable-v1-ext-json", logLevel: "error" });
cable.on("connect", () => { test.connects += 1; test.state("connected"); });
cable.on("disconnect", () => test.state("disconnected"));
const sub = cable.streamFromSigned(window.config.signed);
sub.on("message", (data) => { test.received.push(data); test.show(data); });
sub.on("info", (info) => test.infos.push(info.type));
await sub.ensureSubscribed();
test.subscribed = true;
`;

// 3. @hotwired/turbo + @anycable/turbo-stream on an ext-json cable.
const ANYCABLE_TURBO_SCRIPT = `
import "@hotwired/turbo";
import { createCable } from "@anycable/web";
import { start } from "@anycable/turbo-stream";
const test = window.test;
test.connects = 0;
const cable = createCable(window.config.url, { protocol: "actioncable-v1-ext-json", logLevel: "error" });
cable.on("connect", () => { test.connects += 1; test.state("connected"); });
cable.on("disconnect", () => test.state("disconnected"));
start(cable);
`;

// 4. @hotwired/turbo + the bundled client's createConsumer / defineTurboStreamSource.
const SEQCAST_TURBO_SCRIPT = `
import * as Turbo from "@hotwired/turbo";
const test = window.test;
Object.assign(test, { states: [], errors: [] });
const { createConsumer, defineTurboStreamSource } = await import(window.config.clientUrl);
const consumer = createConsumer(window.config.wsUrl, { storage: localStorage, token: window.config.token });
consumer.client.on("state", (s) => { test.states.push(s); test.state(s); });
consumer.client.on("error", (e) => test.errors.push(String(e?.code ?? e)));
test.defined = defineTurboStreamSource(consumer, Turbo);
`;

// 5. Stock @hotwired/turbo-rails, the importmap bundle (Turbo and Action Cable inside).
const TURBO_RAILS_SCRIPT = `
import { Turbo, cable } from "/node_modules/@hotwired/turbo-rails/app/assets/javascripts/turbo.js";
window.test.loaded = Boolean(Turbo && cable);
window.test.state("turbo-rails loaded");
`;

/** A tiny HTTP server on its own origin: test pages by path, and node_modules. */
async function startPageServer() {
  const pages = new Map();
  const modules = path.join(REPO, "node_modules");
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    if (pages.has(pathname)) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(pages.get(pathname));
      return;
    }
    if (pathname.startsWith("/node_modules/")) {
      const file = path.join(modules, decodeURIComponent(pathname.slice("/node_modules/".length)));
      if (file.startsWith(modules + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
        const type = /\.m?js$/.test(file) ? "text/javascript; charset=utf-8" : "application/octet-stream";
        res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(fs.readFileSync(file));
        return;
      }
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${server.address().port}`;
  let n = 0;
  return {
    url,
    /** Serves `html` at a new path and returns its URL. */
    add(name, html) {
      const pathname = `/${++n}-${name}.html`;
      pages.set(pathname, html);
      return url + pathname;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------

const POLL = { polling: 100, timeout: 30_000 };

describe("Rails front ends in a real browser", () => {
  let browser;
  let pages;
  let db;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    db = await freshDatabase();
    pages = await startPageServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
  });

  /**
   * A fresh browser context (own localStorage) and page, closed after the test.
   * `shoot()` saves the page as tests/artifacts/browser/<shot>.png; a test that
   * fails before it shot is saved as it was when the test ended. Uncaught page
   * errors are collected in `errors`. Call it before starting nodes, so that the
   * page is saved and closed before they stop.
   */
  async function newPage(t, shot) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (err) => errors.push(err.message));
    let shotTaken = false;
    const shoot = async () => {
      shotTaken = true;
      await page.screenshot({ path: path.join(ARTIFACTS, `${shot}.png`), fullPage: true, animations: "disabled" });
    };
    t.after(async () => {
      if (!shotTaken) await shoot().catch(() => {});
      await context.close();
    });
    return { page, errors, shoot };
  }

  /** Waits until `fn(arg)` is truthy in the page; on timeout says `what` and shows window.test. */
  async function until(page, fn, arg, what, timeout = POLL.timeout) {
    try {
      await page.waitForFunction(fn, arg, { polling: POLL.polling, timeout });
    } catch (err) {
      const state = await page
        .evaluate(() => JSON.stringify({ ...window.test, shown: window.test?.shown?.(), dom: window.test?.dom?.() }))
        .catch((e) => `(page state unavailable: ${e.message})`);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${err.message.split("\n")[0]}\npage: ${state}`);
    }
  }

  /** Two nodes on the shared database and a fault proxy leading to the first; all closed after `t`. */
  async function twoNodesBehindProxy(t, names) {
    const a = await startNode({ databaseUrl: db, env: ENV, name: names[0] });
    const b = await startNode({ databaseUrl: db, env: ENV, name: names[1] });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    const proxy = await startFaultProxy({ upstreamPort: a.port });
    t.after(() => proxy.close());
    return { a, b, proxy };
  }

  test("stock @rails/actioncable: confirm, every message in order, rejects, reconnects by itself after a drain", { timeout: 90_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-actioncable");
    const { a: blue, b: green, proxy } = await twoNodesBehindProxy(t, ["rails-blue", "rails-green"]);
    const channel = newChannel("stock");
    const good = signed(channel);
    const tampered = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
    const config = {
      url: cableUrl(proxy.port),
      good: { channel: "Turbo::StreamsChannel", signed_stream_name: good },
      refused: {
        tampered: { channel: "Turbo::StreamsChannel", signed_stream_name: tampered },
        "other key": { channel: "Turbo::StreamsChannel", signed_stream_name: signed(channel, "some-other-key") },
        malformed: { channel: "Turbo::StreamsChannel", signed_stream_name: "not-a-signed-name" },
        "unknown channel": { channel: "ChatChannel" },
      },
    };
    await page.goto(pages.add("actioncable", testPage({ title: "@rails/actioncable on /cable", config, script: ACTIONCABLE_SCRIPT })));
    await until(page, () => window.test.connected?.length === 1 && window.test.rejected.length === 4, null, "connected and four rejected");
    const snapshot = () => page.evaluate(() => ({ ...window.test, dom: window.test.dom() }));
    let s = await snapshot();
    assert.deepEqual([...s.rejected].sort(), Object.keys(config.refused).sort(), "each bad identifier rejected");

    await publishAll(blue.url, channel, 1, 20);
    await until(page, (last) => window.test.received.includes(last), html(20), "1..20");
    s = await snapshot();
    assert.deepEqual(s.received, range(1, 20).map(html), "every message in order, as published");
    assert.deepEqual(s.dom, range(1, 20));

    // Blue drains (disconnect server_restart, reconnect:true, close 1012); the
    // proxy already leads to green; the stock client comes back by itself.
    proxy.setUpstream(green.port);
    const drainedAt = Date.now();
    await blue.stop();
    await until(page, () => window.test.connected.length === 2, null, "the stock client to reconnect by itself", 45_000);
    s = await snapshot();
    const reconnectedAfterMs = s.connected[1].at - drainedAt;
    t.diagnostic(`stock client reconnected ${reconnectedAfterMs} ms after the drain began`);
    assert.deepEqual(s.disconnected.map((d) => d.willAttemptReconnect), [true], "told disconnected once, will reconnect");
    assert.equal(s.connected[1].reconnected, true, "connected({reconnected: true})");
    assert.ok(proxy.openTo(green.port) >= 1, "its connection leads to green");

    await publishAll(green.url, channel, 21, 25);
    await until(page, (last) => window.test.received.includes(last), html(25), "21..25 after the reconnect");
    s = await snapshot();
    assert.deepEqual(s.received, range(1, 25).map(html), "live again after the reconnect (no resume: stock client)");
    assert.deepEqual(s.dom, range(1, 25));
    assert.equal(s.rejected.length, 4, "no rejected subscription came back");
    assert.deepEqual(s.wrong, [], "no rejected subscription was connected or received anything");
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });

  test("@anycable/web on ext-json: once and in order across a SIGKILL; history_not_found for a stale epoch", { timeout: 90_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-anycable-web");
    const { a, b, proxy } = await twoNodesBehindProxy(t, ["rails-anycable-a", "rails-anycable-b"]);
    const channel = newChannel("anycable");
    const config = { url: cableUrl(proxy.port), signed: signed(channel) };
    await page.goto(pages.add("anycable", testPage({ title: "@anycable/web, actioncable-v1-ext-json", config, script: ANYCABLE_SCRIPT })));
    await until(page, () => window.test.subscribed === true, null, "subscribed");
    const snapshot = () => page.evaluate(() => ({ ...window.test, dom: window.test.dom() }));

    await publishAll(b.url, channel, 1, 40);
    await until(page, (last) => window.test.received.includes(last), html(40), "1..40 live");

    // Its node dies mid-stream; the proxy now leads to the other node, where it resumes.
    await a.kill();
    proxy.setUpstream(b.port);
    await publishAll(b.url, channel, 41, 120);
    await until(page, (last) => window.test.received.includes(last), html(120), "1..120 after the SIGKILL", 40_000);
    let s = await snapshot();
    assert.deepEqual(s.received, range(1, 120).map(html), "every message exactly once, in order");
    assert.deepEqual(s.dom, range(1, 120));
    assert.ok(s.connects >= 2, `reconnected (${s.connects} connects)`);
    assert.ok(s.infos.includes("history_received"), `history confirmed after the resume: ${s.infos}`);
    assert.ok(!s.infos.includes("history_not_found"), `no history refused: ${s.infos}`);

    // The channel is deleted and begins again while the client is away: its
    // position is of another epoch, so the resume is refused and it goes on live.
    const infosBefore = s.infos.length;
    proxy.partition({ mode: "refuse" });
    const del = await fetch(`${b.url}/v1/channels/${encodeURIComponent(channel)}`, { method: "DELETE", headers: ADMIN_HEADERS });
    assert.equal(del.status, 204, await del.text());
    proxy.heal();
    await until(page, (k) => window.test.infos.slice(k).includes("history_not_found"), infosBefore, "history_not_found", 40_000);
    await publishAll(b.url, channel, 1, 3);
    await until(page, (last) => window.test.received.slice(120).includes(last), html(3), "live 1..3 of the new epoch");
    s = await snapshot();
    assert.deepEqual(s.received, [...range(1, 120), ...range(1, 3)].map(html), "nothing replayed after history_not_found, then live");
    assert.ok(!s.infos.slice(infosBefore).includes("history_received"), `the stale position was not resumed: ${s.infos}`);
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });

  test("Turbo Streams with @anycable/turbo-stream on ext-json: every <p> once, in order, across a SIGKILL", { timeout: 90_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-anycable-turbo-stream");
    const { a, b, proxy } = await twoNodesBehindProxy(t, ["rails-anyturbo-a", "rails-anyturbo-b"]);
    const channel = newChannel("anyturbo");
    const pageHtml = testPage({
      title: "@hotwired/turbo + @anycable/turbo-stream",
      config: { url: cableUrl(proxy.port) },
      body: streamSource(signed(channel)),
      script: ANYCABLE_TURBO_SCRIPT,
    });
    await page.goto(pages.add("anycable-turbo", pageHtml));
    await until(page, () => document.querySelector("turbo-cable-stream-source")?.hasAttribute("connected"), null, "the stream source connected");

    await publishAll(b.url, channel, 1, 40);
    await until(page, () => window.test.dom().includes(40), null, "1..40 in the DOM");
    await a.kill();
    proxy.setUpstream(b.port);
    await publishAll(b.url, channel, 41, 120);
    await until(page, () => window.test.dom().includes(120), null, "1..120 in the DOM after the SIGKILL", 40_000);
    await until(page, () => document.querySelector("turbo-cable-stream-source").hasAttribute("connected"), null, "connected again");
    const s = await page.evaluate(() => ({ dom: window.test.dom(), shown: window.test.shown(), connects: window.test.connects }));
    assert.deepEqual(s.dom, range(1, 120), "the DOM holds every <p data-i> once, in order");
    assert.deepEqual(s.shown, range(1, 120), "and nothing was added and removed again");
    assert.ok(s.connects >= 2, `reconnected (${s.connects} connects)`);
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });

  test("Turbo Streams with the bundled createConsumer + defineTurboStreamSource: once, in order, across a SIGKILL and a reload", { timeout: 90_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-seqcast-turbo");
    const { a, b, proxy } = await twoNodesBehindProxy(t, ["rails-ours-a", "rails-ours-b"]);
    const channel = newChannel("ours");
    const n = 150;
    const config = { clientUrl: `${proxy.url}/v1/client.js`, wsUrl: proxy.wsUrl, token: jwt() };
    const pageHtml = testPage({
      title: "@hotwired/turbo + seqcast createConsumer / defineTurboStreamSource",
      config,
      body: streamSource(signed(channel)),
      script: SEQCAST_TURBO_SCRIPT,
    });
    await page.goto(pages.add("seqcast-turbo", pageHtml));
    await until(page, () => document.querySelector("turbo-cable-stream-source")?.hasAttribute("connected"), null, "the stream source connected");
    assert.equal(await page.evaluate(() => window.test.defined), true, "defineTurboStreamSource defined the element");

    const progress = { published: 0 };
    const publisher = publishPaced(b.url, channel, 1, n, progress);
    publisher.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile

    // Its node dies mid-stream; the proxy now leads to the other node.
    await waitFor(() => progress.published >= 40, { timeoutMs: 30_000, what: "40 published" });
    await a.kill();
    proxy.setUpstream(b.port);
    await until(page, () => window.test.states.includes("reconnecting") && window.test.states.at(-1) === "open", null, "reopened after the SIGKILL");

    // The page is reloaded mid-stream, after it has shown messages from after the SIGKILL.
    await waitFor(() => progress.published >= 90, { timeoutMs: 30_000, what: "90 published" });
    await until(page, () => window.test.shown().length > 60, null, "more than 60 shown");
    const beforeReload = await page.evaluate(() => ({ dom: window.test.dom(), shown: window.test.shown() }));
    assert.deepEqual(beforeReload.dom, beforeReload.shown, "before the reload the DOM shows everything logged");
    assert.deepEqual(beforeReload.shown, range(1, beforeReload.shown.length), "before the reload: 1..k in order");
    const publishedAtReload = progress.published;
    await page.reload();
    await until(page, () => document.querySelector("turbo-cable-stream-source")?.hasAttribute("connected"), null, "connected after the reload");
    assert.ok(publishedAtReload < n, `publishing went on across the reload (${publishedAtReload} of ${n} published when it began)`);

    await publisher;
    await until(page, (last) => window.test.shown().includes(last), n, `${n} shown`);
    const end = await page.evaluate(() => ({
      dom: window.test.dom(),
      shown: window.test.shown(),
      delivered: window.test.delivered(),
      k: window.test.shownBeforeLoad,
      errors: window.test.errors,
    }));
    const neverShown = end.delivered.filter((i) => !end.shown.includes(i));
    // A message handed to Turbo but not yet rendered when the page unloaded is handed over
    // again after the reload (the stored position waits for the render): never one shown.
    const again = end.delivered.filter((i, at) => end.delivered.indexOf(i) !== at);
    assert.deepEqual([...new Set(end.delivered)], range(1, n), "the client handed Turbo every message, in order, over both loads");
    assert.ok(again.every((i) => i > end.k), `handed over again only if the first load never showed it: [${again}]`);
    assert.deepEqual(
      end.shown,
      range(1, n),
      `every <p data-i> shown exactly once over both page loads, in order (the first load showed 1..${end.k}; ` +
        `handed to Turbo, so the client's stored position passed them, but never shown: [${neverShown}])`,
    );
    assert.ok(end.k >= beforeReload.shown.length && end.k < n, `the reload happened mid-stream (after ${end.k} of ${n})`);
    assert.deepEqual(end.dom, range(end.k + 1, n), "after the reload the page shows exactly the rest");
    assert.deepEqual(end.errors, [], "no client errors");
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });

  test("stock @hotwired/turbo-rails (importmap bundle) with action-cable-url on /cable: live updates in the DOM", { timeout: 60_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-turbo-rails");
    const node = await startNode({ databaseUrl: db, env: ENV, name: "rails-turbo-rails" });
    t.after(() => node.stop());
    const channel = newChannel("turbo_rails");
    const pageHtml = testPage({
      title: "@hotwired/turbo-rails (importmap bundle)",
      head: `<meta name="action-cable-url" content="${cableUrl(node.port)}">`,
      body: streamSource(signed(channel)),
      script: TURBO_RAILS_SCRIPT,
    });
    await page.goto(pages.add("turbo-rails", pageHtml));
    await until(page, () => document.querySelector("turbo-cable-stream-source")?.hasAttribute("connected"), null, "the stream source connected");
    await publishAll(node.url, channel, 1, 30);
    await until(page, () => window.test.dom().includes(30), null, "1..30 in the DOM");
    const s = await page.evaluate(() => ({ dom: window.test.dom(), shown: window.test.shown(), loaded: window.test.loaded }));
    assert.equal(s.loaded, true);
    assert.deepEqual(s.dom, range(1, 30), "the DOM holds every <p data-i> once, in order");
    assert.deepEqual(s.shown, range(1, 30));
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });

  test("Turbo broadcasts from Rails through the seqcast adapter (http and outbox) render in the page", { timeout: 60_000 }, async (t) => {
    const { page, errors, shoot } = await newPage(t, "rails-adapter-turbo");
    const node = await startNode({ databaseUrl: db, env: ENV, name: "rails-adapter-turbo" });
    t.after(() => node.stop());
    const channel = newChannel("adapter");
    const pageHtml = testPage({
      title: "@hotwired/turbo-rails, broadcasts from Rails' seqcast adapter",
      head: `<meta name="action-cable-url" content="${cableUrl(node.port)}">`,
      body: streamSource(signed(channel)),
      script: TURBO_RAILS_SCRIPT,
    });
    await page.goto(pages.add("adapter-turbo", pageHtml));
    await until(page, () => document.querySelector("turbo-cable-stream-source")?.hasAttribute("connected"), null, "the stream source connected");
    // What broadcast_append_to does: ActionCable.server.broadcast(stream, html). Through the
    // adapter in http mode (1..10), then in outbox mode inside Active Record transactions
    // (11..20), one of them rolled back (999: never shown).
    for (const [mode, from, to] of [["http", 1, 10], ["outbox", 11, 20]]) {
      await runRuby(RAILS_BROADCAST_SCRIPT, {
        MODE: mode, CHANNEL: channel, FROM: String(from), TO: String(to),
        SEQCAST_URL: node.url, KEY: ADMIN, DATABASE_URL: db,
      });
    }
    await until(page, () => window.test.dom().includes(20), null, "1..20 in the DOM");
    const s = await page.evaluate(() => ({ dom: window.test.dom(), shown: window.test.shown() }));
    assert.deepEqual(s.dom, range(1, 20), "every broadcast once, in order; the rolled-back one never");
    assert.deepEqual(s.shown, range(1, 20));
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    await shoot();
  });
});

// Broadcasts FROM..TO as a Rails app does, with `adapter: seqcast` in MODE (http or
// outbox); in outbox mode each in its own transaction, plus one rolled back.
const RAILS_BROADCAST_SCRIPT = `
$LOAD_PATH.unshift File.join(ENV.fetch("REPO"), "integrations/rails/lib")
require "logger"
require "active_record"
require "action_cable"
ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
ActiveRecord::Base.logger = nil
ActionCable.server.config.logger = Logger.new(nil)
ActionCable.server.config.cable = { "adapter" => "seqcast", "mode" => ENV.fetch("MODE"),
                                    "url" => ENV.fetch("SEQCAST_URL"), "key" => ENV.fetch("KEY") }
channel = ENV.fetch("CHANNEL")
html = ->(i) { %(<turbo-stream action="append" target="log"><template><p data-i="#{i}">#{i}</p></template></turbo-stream>) }
(Integer(ENV.fetch("FROM"))..Integer(ENV.fetch("TO"))).each do |i|
  if ENV["MODE"] == "outbox"
    ActiveRecord::Base.transaction { ActionCable.server.broadcast(channel, html.(i)) }
    ActiveRecord::Base.transaction do
      ActionCable.server.broadcast(channel, html.(999))
      raise ActiveRecord::Rollback
    end if i == 15
  else
    ActionCable.server.broadcast(channel, html.(i))
  end
end
`;

/** Runs a Ruby script with Debian's ruby; rejects with its stderr when it fails. */
function runRuby(script, env) {
  return new Promise((resolve, reject) => {
    execFile(process.env.RUBY || "ruby", ["-e", script], { env: { ...process.env, ...env, REPO }, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`ruby failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}
