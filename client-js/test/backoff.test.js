// Tests for the pure helpers: backoffDelay and the close-code policy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, codes, isTerminalCloseCode } from "../src/seqcast.js";

const min = 250;
const max = 30000;

test("backoff stays within [floor, min(max, min*2^attempt)) for any random input", () => {
  const randoms = [0, 1e-9, 0.1, 0.25, 0.5, 0.75, 0.999999999];
  for (let attempt = 0; attempt < 80; attempt++) {
    const cap = Math.min(max, min * 2 ** attempt);
    for (const r of randoms) {
      const delay = backoffDelay(attempt, min, max, () => r);
      assert.ok(Number.isInteger(delay), `integer delay, got ${delay}`);
      assert.ok(delay >= min / 5, `attempt ${attempt}: ${delay} below the floor`);
      assert.ok(
        delay < cap || delay === Math.ceil(min / 5),
        `attempt ${attempt}: ${delay} not below ${cap}`,
      );
      assert.ok(delay <= max, `attempt ${attempt}: ${delay} above max`);
    }
  }
});

test("backoff is jittered: different random inputs give different delays", () => {
  const delays = [0.1, 0.3, 0.5, 0.7, 0.9].map((r) => backoffDelay(4, min, max, () => r));
  assert.equal(new Set(delays).size, delays.length);
  assert.deepEqual(delays, [400, 1200, 2000, 2800, 3600]);
});

test("backoff grows exponentially and is capped at max", () => {
  const nearOne = () => 0.999999;
  assert.equal(backoffDelay(0, min, max, nearOne), 249);
  assert.equal(backoffDelay(1, min, max, nearOne), 499);
  assert.equal(backoffDelay(2, min, max, nearOne), 999);
  assert.equal(backoffDelay(7, min, max, nearOne), 29999);
  assert.equal(backoffDelay(1000, min, max, nearOne), 29999);
  assert.equal(backoffDelay(1e9, min, max, nearOne), 29999);
});

test("backoff never drops below a fifth of the minimum", () => {
  assert.equal(
    backoffDelay(0, min, max, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(10, min, max, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(3, 0, max, () => 0.5),
    0,
  );
});

test("backoff uses Math.random by default and stays in bounds", () => {
  for (let i = 0; i < 1000; i++) {
    const delay = backoffDelay(i % 12, min, max);
    assert.ok(delay >= 50 && delay < max);
  }
});

test("close codes 3500-3999 and 4500-4999 are terminal, the rest reconnect", () => {
  for (const code of [3500, 3700, 3999, 4500, 4750, 4999])
    assert.equal(isTerminalCloseCode(code), true, String(code));
  for (const code of [
    1000, 1001, 1006, 1008, 1009, 1011, 1012, 1013, 3000, 3499, 4000, 4499, 5000,
  ]) {
    assert.equal(isTerminalCloseCode(code), false, String(code));
  }
});

test("codes names the server's close codes", () => {
  assert.equal(codes.policy, 1008);
  assert.equal(codes.tooBig, 1009);
  assert.equal(codes.draining, 1012);
  assert.equal(codes.slowConsumer, 1013);
  assert.ok(Object.isFrozen(codes));
});
