// Real-browser tests (issue "3/6 Browsers"): Debian's chromium, headless,
// driven by playwright-core, against a seqcast node started by the e2e harness.
//   - a page using the bundled client with `storage: localStorage` shows every
//     seq exactly once, in order, across a server restart and a page reload;
//   - a page using the browser's own EventSource on /v1/sse/… does the same
//     across a server restart;
//   - the console page at / loads cleanly, publishes, shows the message and
//     says where it resumed after a reload (screenshots in tests/artifacts/browser/).
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import { once } from "node:events";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { chromium } from "playwright-core";
import {
  freshDatabase,
  publishWithRetry,
  range,
  startNode,
  uniqueName,
  waitFor,
} from "../e2e/harness.mjs";
import { ARTIFACTS, CHROMIUM, LAUNCH_ARGS } from "./chromium.mjs";


// ---------------------------------------------------------------------------
// Test pages

// Subscribes with the client served by the node (?node=http://host:port) and
// `storage: localStorage`. Each seq it shows is appended to the page's list and
// to a log in localStorage in the same handler call, so the log survives a
// reload and holds everything this page ever showed, over all loads: a seq
// delivered again after a reload would appear in it twice.
const RELOAD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>seqcast reload test</title>
<link rel="icon" href="data:,">
</head>
<body>
<p>state: <span id="state">loading</span></p>
<ol id="seqs"></ol>
<script type="module">
const params = new URLSearchParams(location.search);
const nodeUrl = params.get("node");
const channel = params.get("channel");
const logKey = "test:shown:" + channel;
const shown = JSON.parse(localStorage.getItem(logKey) ?? "[]");
const test = (window.test = { shownBeforeLoad: shown.length, states: [], events: [], subscribed: [] });

const { Seqcast } = await import(nodeUrl + "/v1/client.js");
const sc = new Seqcast(nodeUrl.replace(/^http/, "ws") + "/v1/ws", { storage: localStorage });
const stateEl = document.getElementById("state");
stateEl.textContent = sc.state;
sc.on("state", (state) => {
  test.states.push(state);
  stateEl.textContent = state;
});
const list = document.getElementById("seqs");
const sub = sc.subscribe(channel, (msg) => {
  const li = document.createElement("li");
  li.dataset.seq = String(msg.seq);
  li.textContent = "#" + msg.seq + " " + JSON.stringify(msg.data);
  list.append(li);
  shown.push(msg.seq);
  localStorage.setItem(logKey, JSON.stringify(shown));
});
test.resumedFrom = sub.position;
sub.on("subscribed", (info) => test.subscribed.push(info));
for (const name of ["reset", "gap", "error"]) sub.on(name, (info) => test.events.push({ [name]: info }));
test.snapshot = () => ({
  dom: [...list.querySelectorAll("li")].map((li) => Number(li.dataset.seq)),
  shown: JSON.parse(localStorage.getItem(logKey) ?? "[]"),
  shownBeforeLoad: test.shownBeforeLoad,
  state: sc.state,
  states: test.states,
  events: test.events,
  subscribed: test.subscribed.length,
  resumedFrom: test.resumedFrom,
});
</script>
</body>
</html>
`;

// `count` (default 1) of the browser's own EventSource on
// /v1/sse/{channel}?since=0. The page must come from the node's origin: the
// SSE endpoint sends no CORS headers.
const SSE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>seqcast EventSource test</title>
<link rel="icon" href="data:,">
</head>
<body>
<ol id="seqs"></ol>
<script>
const params = new URLSearchParams(location.search);
const channel = params.get("channel");
const count = Number(params.get("count") ?? 1);
const list = document.getElementById("seqs");
const sources = [];
for (let k = 0; k < count; k++) {
  const es = new EventSource("/v1/sse/" + encodeURIComponent(channel) + "?since=0");
  const record = { seqs: [], payloads: [], resets: [], opens: 0, errors: 0 };
  es.onopen = () => { record.opens += 1; };
  es.onerror = () => { record.errors += 1; };
  es.onmessage = (event) => {
    record.seqs.push(Number(event.lastEventId));
    record.payloads.push(JSON.parse(event.data));
    if (k === 0) {
      const li = document.createElement("li");
      li.textContent = "#" + event.lastEventId + " " + event.data;
      list.append(li);
    }
  };
  es.addEventListener("reset", (event) => record.resets.push(event.data));
  sources.push({ es, record });
}
window.test = {
  snapshot: () => sources.map(({ es, record }) => ({ ...record, readyState: es.readyState })),
};
</script>
</body>
</html>
`;

/** A tiny HTTP server for the test pages, on its own origin. */
async function startPageServer(pages) {
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    const body = pages[pathname];
    if (body === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------
// Helpers

/**
 * Publishes {i} for i = from..to every `intervalMs`, retried while the node is
 * restarting (idempotency keys: a retry never adds a message). Asserts seq == i.
 */
async function publishRange(nodeUrl, channel, from, to, progress, intervalMs = 15) {
  for (let i = from; i <= to; i++) {
    const res = await publishWithRetry(nodeUrl, channel, { i }, { idempotencyKey: `m-${i}` });
    assert.equal(res.body.seq, i, `publish of ${i} got seq ${res.body.seq}`);
    progress.published = i;
    if (i < to) await delay(intervalMs);
  }
}

/** Records console errors and warnings and uncaught page errors. */
function watchConsole(page) {
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      problems.push(`console.${msg.type()}: ${msg.text()} (${msg.location().url})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

/** Uncaught exceptions only: WebSocket/EventSource failures while a node is down are logged by the browser and expected. */
function watchPageErrors(page) {
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

const POLL = { polling: 100, timeout: 60_000 };

// ---------------------------------------------------------------------------

describe("3/6 Browsers: real browser", () => {
  let browser;
  let node;
  let pages;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    node = await startNode({ databaseUrl: await freshDatabase(), name: "browser" });
    pages = await startPageServer({ "/reload.html": RELOAD_PAGE });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    await node?.stop();
  });

  /** A fresh browser context (own localStorage) and page, closed after the test. */
  async function newPage(t) {
    const context = await browser.newContext();
    t.after(() => context.close());
    return context.newPage();
  }

  test("a page with storage shows every seq once, in order, across a server restart and a reload", { timeout: 120_000 }, async (t) => {
    const page = await newPage(t);
    const pageErrors = watchPageErrors(page);
    const channel = uniqueName("reload");
    const n = 200;
    const pageUrl = `${pages.url}/reload.html?node=${encodeURIComponent(node.url)}&channel=${channel}`;

    await page.goto(pageUrl);
    await page.waitForFunction(() => window.test?.subscribed.length >= 1, null, POLL);

    const progress = { published: 0 };
    const publisher = publishRange(node.url, channel, 1, n, progress);

    // The server restarts mid-stream (SIGTERM, then a new process on the same port).
    await waitFor(() => progress.published >= 60, { timeoutMs: 60_000, what: "60 published" });
    await node.restart();
    await page.waitForFunction(
      () => window.test.states.includes("reconnecting") && window.test.snapshot().state === "open",
      null,
      POLL,
    );

    // The page is reloaded mid-stream, after it has shown part of the stream.
    await waitFor(() => progress.published >= 130, { timeoutMs: 60_000, what: "130 published" });
    const beforeReload = await page.evaluate(() => window.test.snapshot());
    assert.deepEqual(beforeReload.events, [], "no reset, gap or error before the reload");
    assert.deepEqual(beforeReload.dom, beforeReload.shown, "before the reload the page shows everything it logged");
    assert.deepEqual(beforeReload.shown, range(1, beforeReload.shown.length), "before the reload: 1..k in order");
    assert.ok(beforeReload.shown.length > 60, `the page showed messages from after the restart (${beforeReload.shown.length})`);
    await page.reload();
    await page.waitForFunction(() => window.test?.subscribed.length >= 1, null, POLL);

    await publisher;
    await page.waitForFunction((count) => window.test.snapshot().shown.length >= count, n, POLL);
    const end = await page.evaluate(() => window.test.snapshot());

    // Every seq shown exactly once over both page loads, in order: a seq shown
    // before the reload and again after it would be in `shown` twice.
    assert.deepEqual(end.shown, range(1, n), "every seq shown exactly once over both page loads, in order");
    const k = end.shownBeforeLoad;
    assert.ok(k >= beforeReload.shown.length && k < n, `the reload happened mid-stream (after ${k} of ${n})`);
    assert.equal(end.resumedFrom.seq, k, "after the reload the client resumed from the stored position");
    assert.deepEqual(end.dom, range(k + 1, n), "after the reload the page shows exactly the rest");
    assert.deepEqual(end.events, [], "no reset, gap or error after the reload");
    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  });

  /**
   * Opens the EventSource page on `node`'s origin. The node does not serve it:
   * the browser is handed it for this one URL and then talks to the node alone.
   */
  async function openSsePage(t, onNode, channel, count = 1) {
    const page = await newPage(t);
    const pageErrors = watchPageErrors(page);
    const isTestPage = (url) => url.pathname === "/__test/sse.html";
    await page.route(isTestPage, (route) =>
      route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: SSE_PAGE }),
    );
    await page.goto(`${onNode.url}/__test/sse.html?channel=${channel}&count=${count}`);
    await page.unrouteAll();
    await page.waitForFunction(() => window.test?.snapshot().every((s) => s.opens >= 1), null, POLL);
    return { page, pageErrors, snapshot: () => page.evaluate(() => window.test.snapshot()) };
  }

  /** Asserts every EventSource got 1..n once, in order, reconnected by itself and is open. */
  function assertEventSources(sources, n) {
    sources.forEach((s, k) => {
      const label = `EventSource ${k} (opens ${s.opens}, errors ${s.errors}, readyState ${s.readyState})`;
      assert.equal(s.readyState, 1, `${label}: open at the end (2 = closed for good)`);
      assert.deepEqual(s.seqs, range(1, n), `${label}: every seq (the event id) once, in order`);
      assert.deepEqual(s.payloads.map((p) => p.i), range(1, n), `${label}: payloads match their seqs`);
      assert.deepEqual(s.resets, [], `${label}: no reset`);
      assert.ok(s.opens >= 2, `${label}: reconnected by itself`);
    });
  }

  test("native EventSource on /v1/sse/… gets every seq once, in order, across a server restart", { timeout: 120_000 }, async (t) => {
    const channel = uniqueName("sse");
    const n = 150;
    const { pageErrors, snapshot } = await openSsePage(t, node, channel);

    const progress = { published: 0 };
    const publisher = publishRange(node.url, channel, 1, n, progress);
    await waitFor(() => progress.published >= 60, { timeoutMs: 60_000, what: "60 published" });
    const [beforeRestart] = await snapshot();
    assert.ok(beforeRestart.seqs.length > 0, "messages arrived before the restart");
    await node.restart();
    await publisher;

    await waitFor(async () => (await snapshot()).every((s) => s.seqs.length >= n), {
      timeoutMs: 60_000,
      what: `the EventSource to receive ${n} messages`,
    });
    assertEventSources(await snapshot(), n);
    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  });

  // With a drain window (the defaults are 5 s + 10 s), the node closes each
  // SSE stream at a random moment of the window; EventSource comes back after
  // `retry: 1000` while the node still drains and gets 503 "draining", and a
  // non-200 answer makes EventSource give up for good (readyState 2).
  test(
    "native EventSource survives a restart with a drain window (SIGTERM, 3 s window)",
    { timeout: 120_000 },
    async (t) => {
      const drainingNode = await startNode({
        databaseUrl: await freshDatabase(),
        name: "browser-sse-drain",
        env: { SEQCAST_DRAIN_WINDOW_SECONDS: "3" },
      });
      t.after(() => drainingNode.kill());
      const channel = uniqueName("sse_drain");
      const n = 100;
      const { snapshot } = await openSsePage(t, drainingNode, channel, 5);

      // Published before, during (a draining node still accepts publishes) and after the restart.
      const progress = { published: 0 };
      await publishRange(drainingNode.url, channel, 1, 30, progress);
      const restarted = drainingNode.restart();
      await publishRange(drainingNode.url, channel, 31, 60, progress);
      await restarted;
      await publishRange(drainingNode.url, channel, 61, n, progress);

      // Done when every source has everything, or one has given up for good.
      await waitFor(async () => (await snapshot()).every((s) => s.seqs.length >= n || s.readyState === 2), {
        timeoutMs: 60_000,
        what: `every EventSource to receive ${n} messages or close`,
      });
      assertEventSources(await snapshot(), n);
    },
  );

  test("the console page at / loads cleanly, publishes, shows the message and says where it resumed", { timeout: 90_000 }, async (t) => {
    const page = await newPage(t);
    await page.setViewportSize({ width: 1200, height: 800 });
    const problems = watchConsole(page);
    const channel = uniqueName("console");

    await page.goto(`${node.url}/?channel=${channel}`);
    await page.waitForSelector('#state[data-state="open"]', { timeout: 30_000 });
    await page.waitForFunction(() => /live from head 0/.test(document.querySelector("#notice").textContent), null, POLL);
    assert.equal(await page.inputValue("#channel"), channel);

    const payload = '{"hello": "from the browser test", "n": 1}';
    await page.fill("#payload", payload);
    await page.click("#publish");
    await page.waitForFunction(() => /^201\b/.test(document.querySelector("#publish-result").textContent), null, POLL);
    const result = JSON.parse((await page.textContent("#publish-result")).split("\n").slice(1).join("\n"));
    assert.equal(result.seq, 1);
    assert.equal(result.channel, channel);

    const row = await page.waitForSelector('#messages li.msg[data-seq="1"]', { timeout: 30_000 });
    assert.match(await row.textContent(), /from the browser test/);
    assert.deepEqual(await page.$$eval("#messages li.msg", (lis) => lis.map((li) => li.dataset.seq)), ["1"]);
    // Channel info refreshes after the publish.
    await page.waitForFunction(() => /last_seq\s*1\b/.test(document.querySelector("#info").innerText), null, POLL);
    await page.screenshot({ path: path.join(ARTIFACTS, "console.png"), fullPage: true, animations: "disabled" });

    // A reload resumes from the stored position instead of starting live.
    await page.reload();
    await page.waitForSelector('#state[data-state="open"]', { timeout: 30_000 });
    await page.waitForFunction(() => /resumed from 1\b/.test(document.querySelector("#notice").textContent), null, POLL);
    assert.equal(await page.$$eval("#messages li.msg", (lis) => lis.length), 0, "nothing replayed: seq 1 was shown already");
    await page.fill("#payload", '{"hello": "after the reload", "n": 2}');
    await page.click("#publish");
    await page.waitForSelector('#messages li.msg[data-seq="2"]', { timeout: 30_000 });
    assert.deepEqual(await page.$$eval("#messages li.msg", (lis) => lis.map((li) => li.dataset.seq)), ["2"]);
    await page.screenshot({ path: path.join(ARTIFACTS, "console-reloaded.png"), fullPage: true, animations: "disabled" });

    assert.deepEqual(problems, [], "no console errors or warnings");
  });
});
