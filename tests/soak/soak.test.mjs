// The soak's short run, in every `scripts/test`: one fixed seed for 45 s of
// faults, then every seed that ever found a fault, each for as long as it
// took to find it. A longer run: node tests/soak/soak.mjs --minutes 30 --seed S.
//
// SEQCAST_SOAK_SECONDS overrides the fixed seed's length (the sanitizer
// builds use it); SEQCAST_SOAK_REGRESSIONS=0 skips the regression seeds.
import assert from "node:assert/strict";
import { test } from "node:test";

import { runSoak } from "./soak.mjs";

const SHORT_SEED = 20261205;
const SHORT_SECONDS = Number(process.env.SEQCAST_SOAK_SECONDS ?? 45);

// seed -> seconds of faults; each one found a hole that has since been closed
// (docs/reliability.md says which).
const REGRESSION_SEEDS = [];

function soakCase(seed, seconds) {
  test(`soak seed ${seed}, ${seconds} s of faults: nothing lost, every subscriber at the head`, { timeout: (seconds + 180) * 1000 }, async () => {
    const result = await runSoak({ seed, durationMs: seconds * 1000, log: () => {} });
    console.log(result.report);
    assert.ok(result.ok, result.report);
  });
}

soakCase(SHORT_SEED, SHORT_SECONDS);
if (process.env.SEQCAST_SOAK_REGRESSIONS !== "0") {
  for (const [seed, seconds] of REGRESSION_SEEDS) soakCase(seed, seconds);
}
