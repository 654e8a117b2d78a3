// Small helpers of the soak test: a seeded PRNG, payloads, hashes.
import crypto from "node:crypto";

/** mulberry32: a fast 32-bit seeded PRNG; returns () => float in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * An independent PRNG stream per purpose (`label`), so that e.g. the fault
 * schedule drawn for a seed does not depend on how many payloads were drawn.
 * Returned with helpers: int(lo, hi) inclusive, pick(array), chance(p),
 * weighted([[value, weight], …]).
 */
export function rngFor(seed, label) {
  const next = mulberry32((seed ^ fnv1a(label)) >>> 0);
  const r = () => next();
  r.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  r.pick = (items) => items[Math.floor(next() * items.length)];
  r.chance = (p) => next() < p;
  r.weighted = (pairs) => {
    const total = pairs.reduce((s, [, w]) => s + w, 0);
    let x = next() * total;
    for (const [value, w] of pairs) {
      x -= w;
      if (x < 0) return value;
    }
    return pairs[pairs.length - 1][0];
  };
  return r;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function md5(text) {
  return crypto.createHash("md5").update(text, "utf8").digest("hex");
}

const PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/**
 * A JSON payload of exactly `size` bytes (or the smallest its shape allows)
 * that names `key` in "k". Shapes vary so that byte-for-byte delivery is
 * tested: extra whitespace, a line break (SSE splits it into two data lines),
 * multi-byte UTF-8, numbers a re-serialiser would rewrite (2.50, -0e0).
 */
export function makePayload(rng, key, size) {
  const shape = rng.int(0, 3);
  let head;
  if (shape === 0) head = `{"k":"${key}","p":"`;
  else if (shape === 1) head = `{ "k" : "${key}" ,  "p" : "`;
  else if (shape === 2) head = `{"k":"${key}",\n "u":"\u00e9\u2713\ud83d\ude00","p":"`;
  else head = `{"k":"${key}","a":[1,2.50,-0e0,true,null,1E3],"p":"`;
  const tail = shape === 1 ? `" }` : `"}`;
  const fixed = Buffer.byteLength(head + tail, "utf8");
  const padLength = Math.max(0, size - fixed);
  const offset = rng.int(0, PAD.length - 1);
  let pad = PAD.slice(offset) + PAD;
  while (pad.length < padLength) pad += pad;
  return head + pad.slice(0, padLength) + tail;
}

/** The payload as the bundled client hands it over: parsed, here re-serialised. */
export function canonical(text) {
  return JSON.stringify(JSON.parse(text));
}

export function fmtMs(ms) {
  return `${(ms / 1000).toFixed(1)}s`;
}
