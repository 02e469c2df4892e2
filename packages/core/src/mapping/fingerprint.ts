import type { Row, Value } from '../contracts.js';

// The fingerprint is a non-cryptographic 64-bit hash in two independent 32-bit lanes
// (murmur3-style rounds with different constants), fed the values themselves: strings by
// their UTF-16 code units, numbers by their float64 bits, every value behind a type tag and
// every string behind its length, so "1", 1 and true differ and ("ab", "c") ≠ ("a", "bc").
// Objects combine the hashes of their (key, value) pairs by addition, which makes them
// independent of key order without sorting.
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_NUMBER = 4;
const T_NAN = 5;
const T_STRING = 6;
const T_BIGINT = 7;
const T_ARRAY = 8;
const T_OBJECT = 9;
const T_KEY = 10;
const T_FIELDS = 11;
const T_MATCH = 12;
const SEED1 = 0x2f6b_9c3d;
const SEED2 = 0x5bd1_e995 | 0;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
let lane1 = 0;
let lane2 = 0;

function word(k: number): void {
  let a = Math.imul(k, 0xcc9e2d51);
  a = Math.imul((a << 15) | (a >>> 17), 0x1b873593);
  lane1 ^= a;
  lane1 = (Math.imul((lane1 << 13) | (lane1 >>> 19), 5) + 0xe6546b64) | 0;
  let b = Math.imul(k, 0x85ebca77);
  b = Math.imul((b << 13) | (b >>> 19), 0xc2b2ae3d);
  lane2 ^= b;
  lane2 = (Math.imul((lane2 << 17) | (lane2 >>> 15), 9) + 0x27d4eb2f) | 0;
}

function avalanche1(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function avalanche2(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return h ^ (h >>> 16);
}

function text(tag: number, s: string): void {
  const n = s.length;
  word((n << 4) | tag);
  let i = 0;
  for (; i + 1 < n; i += 2) word(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) word(s.charCodeAt(i));
}

function value(v: Value | undefined): void {
  if (v === null || v === undefined) return word(T_NULL);
  switch (typeof v) {
    case 'string':
      return text(T_STRING, v);
    case 'number':
      if (v !== v) return word(T_NAN);
      f64[0] = v === 0 ? 0 : v; // -0 is 0, as in JSON
      word(T_NUMBER);
      word(u32[0]!);
      return word(u32[1]!);
    case 'boolean':
      return word(v ? T_TRUE : T_FALSE);
    case 'bigint':
      return text(T_BIGINT, (v as bigint).toString());
    case 'object':
      if (!Array.isArray(v)) return object(T_OBJECT, v);
      word(T_ARRAY);
      word(v.length);
      for (let i = 0; i < v.length; i++) value(v[i]);
      return;
    default:
      return text(T_STRING, String(v));
  }
}

function object(tag: number, o: { [key: string]: Value }): void {
  const outer1 = lane1;
  const outer2 = lane2;
  let sum1 = 0;
  let sum2 = 0;
  let n = 0;
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    lane1 = SEED1;
    lane2 = SEED2;
    text(T_KEY, k);
    value(o[k]);
    sum1 = (sum1 + avalanche1(lane1)) | 0;
    sum2 = (sum2 + avalanche2(lane2)) | 0;
    n++;
  }
  lane1 = outer1;
  lane2 = outer2;
  word(tag);
  word(n);
  word(sum1);
  word(sum2);
}

/**
 * The fingerprint of what is sent for a row: a 64-bit hash of the mapped fields and match
 * key, independent of key order and stable across runs, processes and platforms. It is an
 * unsigned integer in decimal, the form diff stores keep fingerprints in. Not
 * cryptographic: it tells versions of one record apart; it does not resist forgery.
 */
export function fingerprint(fields: Row, match: Row | undefined): string {
  lane1 = SEED1;
  lane2 = SEED2;
  object(T_FIELDS, fields);
  if (match !== undefined) object(T_MATCH, match);
  const h1 = avalanche1((lane1 + lane2) | 0);
  const h2 = avalanche2((lane2 + h1) | 0);
  return ((BigInt(h1 >>> 0) << 32n) | BigInt(h2 >>> 0)).toString();
}
