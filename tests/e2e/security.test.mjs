// End-to-end tests of auth and origins (issue "5/6 Security and hostile
// input"): publish and admin keys with rotation, subscriber JWTs on WebSocket,
// SSE and log reads, allowed origins, and what a node without any auth allows.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  freshDatabase,
  getJson,
  httpGetStream,
  publish,
  publishBatch,
  runSeqcast,
  signJwt,
  signStreamName,
  startNode,
  turboDefaultKey,
  waitFor,
  wsClient,
  wsUpgradeStatus,
} from "./harness.mjs";

const PUBLISH_OLD = "pk-old-3f9a1c";
const PUBLISH_NEW = "pk-new-8d2e77";
const ADMIN = "admin-5b6c0e91";
const SECRET = "jwt-secret-for-tests-4c1d";
const ORIGINS = "https://app.example.com,https://*.example.org";

const nowS = () => Math.floor(Date.now() / 1000);
const bearer = (key) => ({ authorization: `Bearer ${key}` });

/** A token valid for an hour that may read `channels`. */
function token(channels, extra = {}) {
  return signJwt({ sub: "tester", channels, exp: nowS() + 3600, ...extra }, SECRET);
}

/** Asserts an error answer: `status` and {"error":{"code","message"}}. */
function assertError(res, status, code, context = "") {
  const where = `${context} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, where);
  assert.equal(res.body?.error?.code, code, where);
  assert.equal(typeof res.body.error.message, "string", where);
}

const withToken = (url, t) => `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}`;

describe("5/6 Security: keys, tokens and origins", () => {
  let databaseUrl;
  let node;

  before(async () => {
    databaseUrl = await freshDatabase();
    node = await startNode({
      databaseUrl,
      name: "security",
      args: [
        "--publish-keys", `${PUBLISH_OLD},${PUBLISH_NEW}`,
        "--admin-key", ADMIN,
        "--jwt-secret", SECRET,
        "--allowed-origins", ORIGINS,
      ],
    });
  });
  after(() => node?.stop());

  test("publish needs a publish key (or the admin key); DELETE and drain need the admin key", { timeout: 60_000 }, async () => {
    const c = "keys";
    assertError(await publish(node.url, c, { n: 0 }), 401, "unauthorized", "publish without a key");
    const noKey = await publish(node.url, c, { n: 0 });
    assert.equal(noKey.headers.get("www-authenticate"), "Bearer", "401 names the scheme");
    assertError(await publish(node.url, c, { n: 0 }, { headers: bearer("wrong") }), 401, "unauthorized", "wrong key");
    assertError(await publish(node.url, c, { n: 0 }, { headers: bearer(`${PUBLISH_OLD}x`) }), 401, "unauthorized", "a key with a suffix");
    assertError(await publish(node.url, c, { n: 0 }, { headers: bearer(PUBLISH_OLD.slice(0, -1)) }), 401, "unauthorized", "a prefix of a key");
    assertError(await publish(node.url, c, { n: 0 }, { headers: { authorization: PUBLISH_OLD } }), 401, "unauthorized", "a key without Bearer");
    assertError(await publish(node.url, c, { n: 0 }, { headers: { authorization: `Basic ${PUBLISH_OLD}` } }), 401, "unauthorized", "Basic scheme");
    assertError(await publish(node.url, c, { n: 0 }, { headers: { authorization: "Bearer " } }), 401, "unauthorized", "empty Bearer");
    assertError(await publish(node.url, c, { n: 0 }, { headers: bearer(token(["*"])) }), 401, "unauthorized", "a subscriber JWT");
    assertError(await publishBatch(node.url, [{ channel: c, data: 1 }]), 401, "unauthorized", "batch without a key");
    assertError(await publishBatch(node.url, [{ channel: c, data: 1 }], { headers: bearer("wrong") }), 401, "unauthorized", "batch with a wrong key");

    // Nothing was published by the refused requests.
    const info = await getJson(`${node.url}/v1/channels/${c}`, { headers: bearer(ADMIN) });
    assertError(info, 404, "channel_not_found", "after refused publishes only");

    // Key rotation: both keys of --publish-keys are valid at once; so is the admin key.
    let seq = 0;
    for (const [key, why] of [[PUBLISH_OLD, "old key"], [PUBLISH_NEW, "new key"], [ADMIN, "admin key"]]) {
      const res = await publish(node.url, c, { why }, { headers: bearer(key) });
      assert.equal(res.status, 201, `${why}: ${res.text}`);
      assert.equal(res.body.seq, ++seq, why);
    }
    const lower = await publish(node.url, c, { why: "lower-case scheme" }, { headers: { authorization: `bearer ${PUBLISH_NEW}` } });
    assert.equal(lower.status, 201, `the auth scheme is case-insensitive: ${lower.text}`);
    const batch = await publishBatch(node.url, [{ channel: c, data: "b1" }, { channel: c, data: "b2" }], { headers: bearer(PUBLISH_OLD) });
    assert.equal(batch.status, 201, batch.text);
    assert.deepEqual(batch.body.results.map((r) => r.seq), [5, 6]);

    // DELETE: no key 401, wrong key 401, a publish key 403, the admin key 204.
    const del = (headers) =>
      fetch(`${node.url}/v1/channels/${c}`, { method: "DELETE", headers, signal: AbortSignal.timeout(30_000) });
    const asResult = async (res) => {
      const text = await res.text();
      return { status: res.status, text, body: text ? JSON.parse(text) : null };
    };
    assertError(await asResult(await del({})), 401, "unauthorized", "DELETE without a key");
    assertError(await asResult(await del(bearer("wrong"))), 401, "unauthorized", "DELETE with a wrong key");
    assertError(await asResult(await del(bearer(PUBLISH_OLD))), 403, "forbidden", "DELETE with the old publish key");
    assertError(await asResult(await del(bearer(PUBLISH_NEW))), 403, "forbidden", "DELETE with the new publish key");
    const stillThere = await getJson(`${node.url}/v1/channels/${c}`, { headers: bearer(ADMIN) });
    assert.equal(stillThere.status, 200, stillThere.text);
    assert.equal(stillThere.body.last_seq, 6, "the refused DELETEs destroyed nothing");

    // Drain: the same rules. (The admin key is not tried here: it would drain this node.)
    const drain = async (headers) =>
      asResult(await fetch(`${node.url}/v1/admin/drain?window_seconds=1`, { method: "POST", headers, signal: AbortSignal.timeout(30_000) }));
    assertError(await drain({}), 401, "unauthorized", "drain without a key");
    assertError(await drain(bearer("wrong")), 401, "unauthorized", "drain with a wrong key");
    assertError(await drain(bearer(PUBLISH_OLD)), 403, "forbidden", "drain with a publish key");
    assertError(await drain(bearer(token(["*"]))), 401, "unauthorized", "drain with a subscriber JWT");
    const ready = await getJson(`${node.url}/readyz`);
    assert.equal(ready.status, 200, `the refused drains did not drain: ${ready.text}`);

    const ok = await asResult(await del(bearer(ADMIN)));
    assert.equal(ok.status, 204, `DELETE with the admin key: ${ok.text}`);
    assertError(await getJson(`${node.url}/v1/channels/${c}`, { headers: bearer(ADMIN) }), 404, "channel_not_found", "after DELETE");
  });

  test("key rotation end to end: a node started with only the new key refuses the old one", { timeout: 60_000 }, async (t) => {
    const c = "rotation";
    const first = await publish(node.url, c, "with the old key", { headers: bearer(PUBLISH_OLD) });
    assert.equal(first.status, 201, first.text);
    // Step 3 of a rotation: the old key is removed from the configuration.
    const rotated = await startNode({ databaseUrl, name: "security-rotated", args: ["--publish-keys", PUBLISH_NEW, "--admin-key", ADMIN, "--jwt-secret", SECRET] });
    t.after(() => rotated.stop());
    assertError(await publish(rotated.url, c, "old key after removal", { headers: bearer(PUBLISH_OLD) }), 401, "unauthorized", "old key on the rotated node");
    const second = await publish(rotated.url, c, "with the new key", { headers: bearer(PUBLISH_NEW) });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.seq, first.body.seq + 1, "the channel continues across the rotation");
    // The admin key may drain (tried on this node, which the test throws away).
    const drain = await fetch(`${rotated.url}/v1/admin/drain?window_seconds=1`, { method: "POST", headers: bearer(ADMIN), signal: AbortSignal.timeout(30_000) });
    assert.equal(drain.status, 202, await drain.text());
  });

  test("a JWT with channels [\"room:*\"] may subscribe room:1, gets forbidden for other, and the connection stays open", { timeout: 60_000 }, async (t) => {
    const ws = await wsClient(withToken(node.wsUrl, token(["room:*"])));
    t.after(() => ws.close());
    const welcome = await ws.next((f) => f.type === "welcome");
    assert.equal(typeof welcome.version, "string");

    const ok = await ws.subscribe("room:1");
    assert.equal(ok.type, "subscribed", JSON.stringify(ok));
    assert.equal(ok.channel, "room:1");

    const denied = await ws.subscribe("other");
    assert.equal(denied.type, "error", JSON.stringify(denied));
    assert.equal(denied.code, "forbidden", JSON.stringify(denied));
    assert.equal(denied.channel, "other");
    // A prefix pattern is a prefix, not a substring: "xroom:1" and "room" are not "room:*".
    for (const channel of ["xroom:1", "room", "Room:1"]) {
      const f = await ws.subscribe(channel);
      assert.deepEqual([f.type, f.code], ["error", "forbidden"], `${channel}: ${JSON.stringify(f)}`);
    }

    assert.ok(ws.isOpen, "still open after the forbidden subscribes");
    ws.send({ op: "ping" });
    const pong = await ws.next((f) => f.type === "pong" || f.type === "error");
    assert.deepEqual(pong, { type: "pong" });

    // The allowed subscription works: it receives what is published.
    const res = await publish(node.url, "room:1", { hello: 1 }, { headers: bearer(PUBLISH_NEW) });
    assert.equal(res.status, 201, res.text);
    const msg = await ws.next((f) => f.type === "message");
    assert.deepEqual([msg.channel, msg.seq, msg.data], ["room:1", res.body.seq, { hello: 1 }]);
    // …and the forbidden one receives nothing.
    const other = await publish(node.url, "other", { secret: true }, { headers: bearer(PUBLISH_NEW) });
    assert.equal(other.status, 201, other.text);
    const again = await publish(node.url, "room:1", { hello: 2 }, { headers: bearer(PUBLISH_NEW) });
    const next = await ws.next((f) => f.type === "message");
    assert.deepEqual([next.channel, next.data], ["room:1", { hello: 2 }], "nothing of other arrived in between");
    assert.equal(again.status, 201);
  });

  test("tokens: exact names, the Authorization header, nbf, and the admin key as a token", { timeout: 60_000 }, async (t) => {
    // An exact name allows that name only.
    const exact = await wsClient(withToken(node.wsUrl, token(["news", "room:7"])));
    t.after(() => exact.close());
    assert.equal((await exact.subscribe("news")).type, "subscribed");
    assert.equal((await exact.subscribe("room:7")).type, "subscribed");
    for (const channel of ["news2", "room:8", "new"]) {
      const f = await exact.subscribe(channel);
      assert.deepEqual([f.type, f.code], ["error", "forbidden"], `${channel}: ${JSON.stringify(f)}`);
    }
    // A token without a channels claim is valid but may read nothing.
    const none = await wsClient(withToken(node.wsUrl, token(undefined)));
    t.after(() => none.close());
    const f = await none.subscribe("room:1");
    assert.deepEqual([f.type, f.code], ["error", "forbidden"], JSON.stringify(f));

    // The token in the Authorization header instead of ?token=.
    const header = await wsClient(node.wsUrl, { headers: bearer(token(["room:*"])) });
    t.after(() => header.close());
    assert.equal((await header.subscribe("room:2")).type, "subscribed");
    assert.equal((await header.subscribe("other")).code, "forbidden");

    // nbf in the past is fine.
    const nbfPast = await wsUpgradeStatus(withToken(node.wsUrl, token(["room:*"], { nbf: nowS() - 60 })));
    assert.equal(nbfPast.status, 101);

    // The admin key may subscribe to anything.
    const admin = await wsClient(withToken(node.wsUrl, ADMIN));
    t.after(() => admin.close());
    assert.equal((await admin.subscribe("other")).type, "subscribed");
    assert.equal((await admin.subscribe("anything-at-all")).type, "subscribed");
  });

  test("an expired, unsigned, wrongly signed, tampered or malformed token gets HTTP 401 at the upgrade", { timeout: 60_000 }, async () => {
    const valid = token(["room:*"]);
    const [h, p] = valid.split(".");
    const tampered = `${h}.${Buffer.from(JSON.stringify({ channels: ["*"], exp: nowS() + 3600 })).toString("base64url")}.${valid.split(".")[2]}`;
    const bad = {
      "no token": null,
      "empty token": "",
      expired: signJwt({ channels: ["room:*"], exp: nowS() - 10 }, SECRET),
      "not yet valid (nbf)": signJwt({ channels: ["room:*"], nbf: nowS() + 3600, exp: nowS() + 7200 }, SECRET),
      "alg none, no signature": signJwt({ channels: ["room:*"], exp: nowS() + 3600 }, SECRET, { header: { alg: "none", typ: "JWT" } }),
      "alg none, with the valid signature": `${base64urlJson({ alg: "none", typ: "JWT" })}.${p}.${valid.split(".")[2]}`,
      "alg HS512 header": signJwt({ channels: ["room:*"], exp: nowS() + 3600 }, SECRET, { header: { alg: "HS512", typ: "JWT" } }),
      "signed with another secret": signJwt({ channels: ["room:*"], exp: nowS() + 3600 }, `${SECRET}-other`),
      "payload changed after signing": tampered,
      "signature cut short": valid.slice(0, -4),
      "two parts": `${h}.${p}`,
      "four parts": `${valid}.x`,
      "not a JWT": "hello",
      "garbage base64": "@@@.###.$$$",
      "header not JSON": `${Buffer.from("nope").toString("base64url")}.${p}.${valid.split(".")[2]}`,
      "exp not a number": signJwt({ channels: ["room:*"], exp: "tomorrow" }, SECRET),
      "channels not a list": signJwt({ channels: "room:*", exp: nowS() + 3600 }, SECRET),
      "a publish key": PUBLISH_NEW,
      // Over the server's 8 KiB token limit, under the 16 KiB header limit (past that: 431).
      "12 KiB token": "a".repeat(12 * 1024),
    };
    for (const [why, t] of Object.entries(bad)) {
      const url = t === null ? node.wsUrl : withToken(node.wsUrl, t);
      const res = await wsUpgradeStatus(url);
      assert.equal(res.status, 401, `${why}: upgrade answered ${res.status} ${res.body}`);
    }
    // The same bad tokens in the Authorization header.
    for (const why of ["expired", "alg none, no signature", "signed with another secret", "not a JWT"]) {
      const res = await wsUpgradeStatus(node.wsUrl, { headers: bearer(bad[why]) });
      assert.equal(res.status, 401, `${why} (header): upgrade answered ${res.status} ${res.body}`);
    }
    // The server is fine afterwards.
    assert.equal((await wsUpgradeStatus(withToken(node.wsUrl, valid))).status, 101);
  });

  test("a token whose nbf lies far in the future (beyond 64-bit seconds) is not yet valid: 401", { timeout: 60_000 }, async () => {
    // Raw payloads, so that the numbers are exactly these JSON texts.
    const h = base64urlJson({ alg: "HS256", typ: "JWT" });
    const sign = (payloadJson) => {
      const input = `${h}.${Buffer.from(payloadJson).toString("base64url")}`;
      return `${input}.${crypto.createHmac("sha256", SECRET).update(input).digest("base64url")}`;
    };
    for (const nbf of ["1e300", "18446744073709551615", "9300000000000000000", `${nowS() + 3600}.5`]) {
      const res = await wsUpgradeStatus(withToken(node.wsUrl, sign(`{"channels":["room:*"],"nbf":${nbf}}`)));
      assert.equal(res.status, 401, `nbf ${nbf}: upgrade answered ${res.status}`);
    }
  });

  test("log reads, channel info and SSE follow the same rules", { timeout: 60_000 }, async () => {
    for (const [channel, data] of [["room:1", "r"], ["other", "o"]]) {
      const res = await publish(node.url, channel, data, { headers: bearer(PUBLISH_OLD) });
      assert.equal(res.status, 201, res.text);
    }
    const roomToken = token(["room:*"]);
    for (const path of ["/v1/channels/room:1/messages", "/v1/channels/room:1"]) {
      const url = `${node.url}${path}`;
      assertError(await getJson(url), 401, "unauthorized", `${path} without a token`);
      assertError(await getJson(withToken(url, signJwt({ channels: ["room:*"], exp: nowS() - 1 }, SECRET))), 401, "unauthorized", `${path} expired`);
      assertError(await getJson(withToken(url, signJwt({ channels: ["room:*"] }, "wrong"))), 401, "unauthorized", `${path} wrongly signed`);
      assertError(await getJson(withToken(url, signJwt({ channels: ["room:*"] }, SECRET, { header: { alg: "none" } }))), 401, "unauthorized", `${path} alg none`);
      assertError(await getJson(withToken(url, token(["other"]))), 403, "forbidden", `${path} with a token for other`);
      assertError(await getJson(url, { headers: bearer(PUBLISH_OLD) }), 401, "unauthorized", `${path} with a publish key`);
      for (const [why, res] of [
        ["?token=", await getJson(withToken(url, roomToken))],
        ["Authorization", await getJson(url, { headers: bearer(roomToken) })],
        ["admin key", await getJson(url, { headers: bearer(ADMIN) })],
        ["admin key as ?token=", await getJson(withToken(url, ADMIN))],
      ]) {
        assert.equal(res.status, 200, `${path} ${why}: ${res.text}`);
        assert.equal(res.body.channel, "room:1");
      }
    }
    // The admin key reads any channel; the room token reads only rooms.
    const otherLog = `${node.url}/v1/channels/other/messages`;
    assertError(await getJson(withToken(otherLog, roomToken)), 403, "forbidden", "other with a room token");
    const adminRead = await getJson(otherLog, { headers: bearer(ADMIN) });
    assert.equal(adminRead.status, 200, adminRead.text);
    assert.deepEqual(adminRead.body.messages.at(-1).data, "o");
    // NDJSON streams are log reads too.
    const nd = await getJson(otherLog, { headers: { accept: "application/x-ndjson" } });
    assertError(nd, 401, "unauthorized", "NDJSON without a token");

    // SSE: no token 401, a token without the channel 403, with it 200.
    const sse = `${node.url}/v1/sse/room:1?since=0`;
    assert.equal((await httpGetStream(sse)).status, 401, "SSE without a token");
    assert.equal((await httpGetStream(withToken(sse, signJwt({ channels: ["room:*"] }, "wrong")))).status, 401, "SSE wrongly signed");
    assert.equal((await httpGetStream(withToken(sse, token(["other"])))).status, 403, "SSE with a token for other");
    for (const [why, opts] of [
      ["?token=", { url: withToken(sse, roomToken) }],
      ["Authorization", { url: sse, headers: bearer(roomToken) }],
      ["admin key", { url: `${node.url}/v1/sse/other?since=0`, headers: bearer(ADMIN) }],
    ]) {
      const res = await httpGetStream(opts.url, { headers: opts.headers, until: (text) => text.includes("event: message") });
      assert.equal(res.status, 200, `SSE ${why}: ${res.text}`);
      assert.match(res.headers["content-type"], /^text\/event-stream/, why);
      assert.match(res.text, /event: message\ndata: "[ro]"/, `SSE ${why} replays the log`);
    }
  });

  test("a WebSocket or SSE upgrade with a foreign Origin gets 403; allowed, wildcard-subdomain and absent Origins pass", { timeout: 60_000 }, async () => {
    const wsUrl = withToken(node.wsUrl, token(["room:*"]));
    const sseUrl = withToken(`${node.url}/v1/sse/room:1`, token(["room:*"]));
    const cases = [
      ["https://app.example.com", 101],
      ["https://a.example.org", 101],
      ["https://deep.sub.example.org", 101],
      [undefined, 101],
      ["https://evil.example.net", 403],
      ["https://app.example.com.evil.net", 403],
      ["https://evilexample.org", 403],
      ["https://example.org", 403], // the wildcard needs a subdomain
      ["http://a.example.org", 403], // another scheme
      ["http://app.example.com", 403],
      ["https://app.example.com:8443", 403],
      ["null", 403],
      ["", 403],
    ];
    for (const [origin, expected] of cases) {
      const headers = origin === undefined ? {} : { origin };
      const res = await wsUpgradeStatus(wsUrl, { headers });
      assert.equal(res.status, expected, `WebSocket with Origin ${JSON.stringify(origin)}: ${res.status} ${res.body}`);
      const sse = await httpGetStream(sseUrl, { headers });
      assert.equal(sse.status, expected === 101 ? 200 : 403, `SSE with Origin ${JSON.stringify(origin)}: ${sse.status} ${sse.text}`);
      if (expected === 403) {
        assert.equal(JSON.parse(res.body).error.code, "forbidden");
        assert.equal(JSON.parse(sse.text).error.code, "forbidden");
      }
    }
    // The Origin is checked before the token: a foreign page learns nothing about tokens.
    assert.equal((await wsUpgradeStatus(node.wsUrl, { origin: "https://evil.example.net" })).status, 403);
    // Plain HTTP API calls (server-to-server publishes) are not subject to Origin.
    const res = await publish(node.url, "room:1", "from a backend", { headers: { ...bearer(PUBLISH_NEW), origin: "https://evil.example.net" } });
    assert.equal(res.status, 201, res.text);
  });
});

describe("5/6 Security: Rails-signed stream names (signed_stream_name)", () => {
  let databaseUrl;
  before(async () => {
    databaseUrl = await freshDatabase();
  });

  // One node per form of streams_secret: text, hex of turbo-rails' derived key, unset.
  async function nodeWith(t, name, args) {
    const node = await startNode({ databaseUrl, name, args });
    t.after(() => node.stop());
    return node;
  }

  async function subscribeSigned(node, signed, since) {
    const ws = await wsClient(node.wsUrl);
    await ws.next((f) => f.type === "welcome");
    ws.send({ op: "subscribe", signed_stream_name: signed, ...(since === undefined ? {} : { since }) });
    return { ws, first: await ws.next((f) => f.type !== "ping") };
  }

  test("the contract's worked example subscribes room:1; every frame names the verified channel", { timeout: 60_000 }, async (t) => {
    const node = await nodeWith(t, "signed-text", ["--streams-secret", "secret"]);
    const signed = "InJvb206MSI=--bff11d45b76e9b980cb31b0eda13d83a55e9f5689a5b7b9fd8fc7936c27123e9";
    assert.equal(signStreamName("room:1", "secret"), signed, "the test's signer agrees with the contract");
    assert.equal((await publish(node.url, "room:1", { n: 1 })).status, 201);
    const { ws, first } = await subscribeSigned(node, signed, 0);
    t.after(() => ws.close());
    assert.deepEqual([first.type, first.channel, first.head], ["subscribed", "room:1", 1]);
    assert.equal((await publish(node.url, "room:1", { n: 2 })).status, 201);
    const got = [await ws.next((f) => f.type === "message"), await ws.next((f) => f.type === "message")];
    assert.deepEqual(got.map((f) => [f.channel, f.seq, f.data.n]), [["room:1", 1, 1], ["room:1", 2, 2]]);

    // Forgeries get forbidden and the connection stays open.
    const tampered = signed.slice(0, -1) + (signed.endsWith("9") ? "8" : "9");
    for (const [what, bad] of [
      ["a tampered digest", tampered],
      ["another key's signature", signStreamName("room:1", "other")],
      ["another name under this digest", "InJvb206MiI=" + signed.slice(12)],
      ["no digest", "InJvb206MSI="],
    ]) {
      ws.send({ op: "subscribe", signed_stream_name: bad });
      const f = await ws.next((x) => x.type === "error");
      assert.equal(f.code, "forbidden", `${what}: ${JSON.stringify(f)}`);
    }
    ws.send({ op: "subscribe", signed_stream_name: 42 });
    assert.equal((await ws.next((x) => x.type === "error")).code, "invalid_op");
    // A signed name that is no channel name.
    ws.send({ op: "subscribe", signed_stream_name: signStreamName("room 1#x", "secret") });
    assert.equal((await ws.next((x) => x.type === "error")).code, "invalid_channel");
    ws.send({ op: "ping" });
    assert.deepEqual(await ws.next((f) => f.type === "pong" || f.type === "error"), { type: "pong" });
  });

  test("hex:<key> takes the 64-byte key turbo-rails derives by default; without streams_secret signed names are refused", { timeout: 60_000 }, async (t) => {
    const key = turboDefaultKey("secret");
    assert.equal(key.toString("hex").slice(0, 16), "823ead24c9c15d2e", "RAILS.md's SHA1 key for secret_key_base 'secret'");
    const hexNode = await nodeWith(t, "signed-hex", ["--streams-secret", `hex:${key.toString("hex")}`]);
    // Signed by ActiveSupport 6.1 with that key (RAILS.md §3.2).
    const railsSigned = "InJvb206MSI=--b956ba5a8b0168008ead60e89341d0dc90efd5e0443c50b42532908f844ed793";
    assert.equal(signStreamName("room:1", key), railsSigned);
    const a = await subscribeSigned(hexNode, railsSigned);
    t.after(() => a.ws.close());
    assert.deepEqual([a.first.type, a.first.channel], ["subscribed", "room:1"]);
    const gid = `${Buffer.from("gid://app/Room/1").toString("base64url")}:messages`;
    const b = await subscribeSigned(hexNode, signStreamName(gid, key));
    t.after(() => b.ws.close());
    assert.deepEqual([b.first.type, b.first.channel], ["subscribed", gid]);

    const plain = await nodeWith(t, "signed-unset", []);
    const c = await subscribeSigned(plain, railsSigned);
    t.after(() => c.ws.close());
    assert.deepEqual([c.first.type, c.first.code], ["error", "forbidden"]);
  });

  test("a bad hex: streams_secret refuses to start with a clear message", { timeout: 60_000 }, async () => {
    const res = await runSeqcast(["serve", "--database-url", databaseUrl, "--streams-secret", "hex:abc"]);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /streams_secret/);
  });
});

describe("5/6 Security: a node without any auth configured", () => {
  test("is open to everyone and says so loudly at start", { timeout: 60_000 }, async (t) => {
    const node = await startNode({ databaseUrl: await freshDatabase(), name: "security-open" });
    t.after(() => node.stop());
    await waitFor(() => /ANYONE CAN PUBLISH/.test(node.output) && /ANYONE CAN SUBSCRIBE/.test(node.output), {
      timeoutMs: 10_000,
      what: "the open-node warnings",
    });
    const res = await publish(node.url, "open", 1);
    assert.equal(res.status, 201, res.text);
    const read = await getJson(`${node.url}/v1/channels/open/messages`);
    assert.equal(read.status, 200, read.text);
    const ws = await wsClient(node.wsUrl, { origin: "https://anyone.example" });
    t.after(() => ws.close());
    assert.equal((await ws.subscribe("open")).type, "subscribed");
  });

  test("tokens and keys never appear in the node's log", { timeout: 60_000 }, async (t) => {
    const node = await startNode({
      databaseUrl: await freshDatabase(),
      name: "security-logs",
      args: ["--publish-keys", PUBLISH_OLD, "--admin-key", ADMIN, "--jwt-secret", SECRET, "--log-level", "debug"],
    });
    t.after(() => node.stop());
    const tok = token(["room:*"]);
    await publish(node.url, "room:1", 1, { headers: bearer(PUBLISH_OLD) });
    await publish(node.url, "room:1", 1, { headers: bearer(`${PUBLISH_OLD}-wrong`) });
    await getJson(withToken(`${node.url}/v1/channels/room:1/messages`, tok));
    await wsUpgradeStatus(withToken(node.wsUrl, `${tok}x`));
    const ws = await wsClient(withToken(node.wsUrl, tok));
    await ws.subscribe("other");
    await ws.close();
    await node.stop();
    const [, payload, signature] = tok.split(".");
    for (const secret of [PUBLISH_OLD, ADMIN, SECRET, payload, signature]) {
      assert.ok(!node.output.includes(secret), `the log contains ${secret.slice(0, 12)}…:\n${node.tail()}`);
    }
  });
});

function base64urlJson(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}
