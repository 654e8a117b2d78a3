// The README's "Try it" examples, run as written against a live node: each
// `curl` command of its sh block (with the node's address for
// 127.0.0.1:8080) must print what the `# → …` lines under it say ("…" stands
// for any string), and its js block, in Chromium, must log the message.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import { once } from "node:events";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { REPO, freshDatabase, startNode, waitFor } from "../e2e/harness.mjs";

const execFileP = promisify(execFile);
const CHROMIUM = process.env.SEQCAST_CHROMIUM || "/usr/bin/chromium";
const README_ADDRESS = "127.0.0.1:8080";

/** The fenced block of `lang` in the README's "## Try it" section. */
function tryItBlock(lang) {
  const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Try it"));
  assert.ok(section, 'README.md has a "## Try it" section');
  const block = section.match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"));
  assert.ok(block, `"Try it" has a \`\`\`${lang} block`);
  return block[1];
}

/** [{command, expected: [lines]}] from the sh block. */
function shExamples() {
  const examples = [];
  let current = null;
  let continued = false;
  for (const line of tryItBlock("sh").split("\n")) {
    const arrow = line.match(/^# → (.*)$/);
    if (continued) {
      current.command += "\n" + line;
    } else if (arrow) {
      assert.ok(current, `an expected output line before any command: ${line}`);
      current.expected.push(arrow[1]);
    } else if (line.trim() !== "" && !line.startsWith("#")) {
      current = { command: line, expected: [] };
      examples.push(current);
    }
    continued = /\\$/.test(line);
  }
  return examples;
}

/** Does `actual` (a JSON value) match `expected`, where the string "…" matches any string? */
function matches(actual, expected) {
  if (expected === "…") return typeof actual === "string";
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    const keys = Object.keys(expected);
    return keys.length === Object.keys(actual).length && keys.every((k) => k in actual && matches(actual[k], expected[k]));
  }
  return actual === expected;
}

/** Runs a README command with bash; a streaming one (curl -N) until its expected lines are out. */
async function runExample({ command, expected }, nodeAddress) {
  const script = command.replaceAll(README_ADDRESS, nodeAddress);
  if (!/\bcurl\b[^\n]*\s-\w*N/.test(command)) {
    const { stdout } = await execFileP("bash", ["-c", script], { timeout: 15_000 });
    return stdout;
  }
  const child = spawn("bash", ["-c", `exec ${script}`], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  try {
    await waitFor(() => expected.every((line) => out.split("\n").includes(line)), { timeoutMs: 10_000, what: `${command}: ${expected.join(" / ")}` });
  } finally {
    child.kill("SIGINT");
  }
  return out;
}

describe("the README's Try it examples", () => {
  let node;

  before(async () => {
    node = await startNode({ databaseUrl: await freshDatabase(), name: "readme" });
  });
  after(async () => node?.stop());

  test("every curl command prints what the README says, in order", { timeout: 60_000 }, async () => {
    const examples = shExamples();
    assert.ok(examples.length >= 4, `the sh block has its commands (found ${examples.length})`);
    const address = new URL(node.url).host;
    for (const example of examples) {
      assert.ok(example.expected.length > 0, `the README says what \`${example.command}\` prints`);
      const out = await runExample(example, address);
      const first = example.expected[0];
      if (first.startsWith("{")) {
        const want = JSON.parse(first);
        const got = JSON.parse(out);
        assert.ok(matches(got, want), `\`${example.command}\` printed ${out.trim()}, the README says ${first}`);
      } else {
        // Lines of text (an event stream): each README line appears, in that order.
        const lines = out.split("\n");
        let at = -1;
        for (const line of example.expected) {
          const found = lines.indexOf(line, at + 1);
          assert.ok(found > at, `\`${example.command}\` printed ${JSON.stringify(out)}, without the line ${JSON.stringify(line)} (in the README's order)`);
          at = found;
        }
      }
    }
  });

  test("the js snippet, in Chromium, logs the message", { timeout: 60_000 }, async (t) => {
    const snippet = tryItBlock("js")
      .replaceAll(`http://${README_ADDRESS}`, node.url)
      .replaceAll(`ws://${README_ADDRESS}`, node.url.replace(/^http/, "ws"));
    const page = `<!doctype html><meta charset="utf-8"><title>readme</title><link rel="icon" href="data:,"><script type="module">${snippet}</script>`;
    const server = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/html" }).end(page));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    t.after(() => new Promise((resolve) => server.close(resolve)));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    t.after(() => browser.close());
    const tab = await browser.newPage();
    const logged = [];
    const errors = [];
    tab.on("console", (msg) => (msg.type() === "log" ? logged.push(msg.text()) : msg.type() === "error" && errors.push(msg.text())));
    tab.on("pageerror", (err) => errors.push(err.message));
    await tab.goto(`http://127.0.0.1:${server.address().port}/`);
    // The sh examples published {"text":"hello"} as room:1#1.
    await waitFor(() => logged.length > 0 || errors.length > 0, { timeoutMs: 15_000, what: "the snippet to log a message" });
    assert.deepEqual(errors, []);
    assert.equal(logged[0], "1 {text: hello}");
  });
});
