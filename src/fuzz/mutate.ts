// Mutations of valid inputs: bytes (flips, truncation, splices, u64 fields) and JSON (values of other
// types, extreme numbers, deleted or duplicated members). Each returns the mutated input and a label; a
// mutation known to make the input invalid says so, so a loader that accepts it is counted as accepting
// garbage.
import { Rng } from "../engine/random.js";

export interface Mutated<T> {
  value: T;
  /** What was done, for reports ("flip byte 812", "model.vocab.a = 2147483647"). */
  label: string;
  /** True when the result is certainly invalid (accepting it is a bug); false when it may still be valid. */
  invalid: boolean;
}

/** Numbers that break size arithmetic: zero, negatives, fractions, int32/uint32/2^53 edges, NaN-like. */
export const EXTREME_NUMBERS = [
  0,
  -1,
  1.5,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 62,
  1e8,
  3e7,
  -(2 ** 31),
  1e308,
  -1e308,
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** A byte-level mutation of buf; `region` [start, end) focuses some mutations (e.g. on a header). */
export function mutateBytes(
  rng: Rng,
  buf: Uint8Array,
  region: [number, number] = [0, buf.length],
): Mutated<Uint8Array> {
  const out = buf.slice();
  const [r0, r1] = region;
  const at = r0 + rng.int(Math.max(1, r1 - r0));
  switch (rng.int(7)) {
    case 0: {
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) out[r0 + rng.int(Math.max(1, r1 - r0))] ^= 1 << rng.int(8);
      return { value: out, label: `flip ${n} bits in [${r0}, ${r1})`, invalid: false };
    }
    case 1:
      out[at] = rng.int(256);
      return { value: out, label: `byte ${at} = ${out[at]}`, invalid: false };
    case 2: {
      const len = rng.int(buf.length);
      return { value: buf.slice(0, len), label: `truncate to ${len} bytes`, invalid: len < buf.length };
    }
    case 3: {
      const junk = Uint8Array.from({ length: 1 + rng.int(64) }, () => rng.int(256));
      const value = new Uint8Array(buf.length + junk.length);
      value.set(buf.subarray(0, at));
      value.set(junk, at);
      value.set(buf.subarray(at), at + junk.length);
      return { value, label: `insert ${junk.length} bytes at ${at}`, invalid: false };
    }
    case 4: {
      const n = 1 + rng.int(64);
      const value = new Uint8Array(buf.length - Math.min(n, buf.length - at));
      value.set(buf.subarray(0, at));
      value.set(buf.subarray(at + n), at);
      return { value, label: `delete ${n} bytes at ${at}`, invalid: false };
    }
    case 5: {
      // A little-endian u64 field (counts, lengths, offsets) set to an extreme value.
      const pos = Math.min(at - (at % 8), out.length - 8);
      const v = pick(rng, [
        0n,
        1n,
        0xffffffffn,
        0x7fffffffffffffffn,
        0xffffffffffffffffn,
        BigInt(buf.length),
      ]);
      if (pos >= 0) new DataView(out.buffer).setBigUint64(pos, v, true);
      return { value: out, label: `u64 at ${pos} = ${v}`, invalid: false };
    }
    default: {
      const n = 1 + rng.int(16);
      out.fill(pick(rng, [0, 0xff, 0x20, 0x7b]), at, at + n);
      return { value: out, label: `fill ${n} bytes at ${at}`, invalid: false };
    }
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Paths to every member of a JSON value (arrays sampled), for picking a place to mutate. */
function paths(
  v: Json,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
  rng?: Rng,
): (string | number)[][] {
  if (Array.isArray(v)) {
    // Long arrays (merges, vocab lists): a few members only.
    const idx =
      v.length <= 8 || rng === undefined ? v.map((_, i) => i) : [0, 1, v.length - 1, rng.int(v.length)];
    for (const i of idx) {
      out.push([...prefix, i]);
      paths(v[i], [...prefix, i], out, rng);
    }
  } else if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    const sample =
      keys.length <= 32 || rng === undefined
        ? keys
        : Array.from({ length: 8 }, () => keys[rng.int(keys.length)]);
    for (const k of sample) {
      out.push([...prefix, k]);
      paths(v[k], [...prefix, k], out, rng);
    }
  }
  return out;
}

const REPLACEMENTS: (() => Json)[] = [
  () => null,
  () => true,
  () => "",
  () => "x".repeat(1000),
  () => [],
  () => ({}),
  () => [1, 2, 3],
  () => "\u0000\ud800",
];

/**
 * A JSON-level mutation: one member replaced (another type, an extreme number), deleted, or duplicated.
 * `invalidIf(path, old, new)` tells which replacements are certainly invalid for this format.
 */
export function mutateJson(
  rng: Rng,
  value: unknown,
  invalidIf: (path: (string | number)[], old: unknown, next: unknown) => boolean = () => false,
): Mutated<unknown> {
  const root = structuredClone(value) as Json;
  const all = paths(root, [], [], rng);
  if (all.length === 0) return { value: root, label: "no members", invalid: false };
  const path = pick(rng, all);
  let parent: Json = root;
  for (const p of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[p];
  const key = path[path.length - 1];
  const holder = parent as Record<string | number, Json>;
  const old = holder[key];
  const name = path.join(".");
  const op = rng.int(10);
  if (op === 0) {
    if (Array.isArray(holder)) holder.splice(key as number, 1);
    else delete holder[key];
    return { value: root, label: `delete ${name}`, invalid: invalidIf(path, old, undefined) };
  }
  let next: Json;
  if (typeof old === "number" || op <= 5) {
    const base = typeof old === "number" ? old : 1;
    next = pick(rng, [...EXTREME_NUMBERS, base + 1, base - 1, base * 2, -base, base * 1000]);
  } else next = pick(rng, REPLACEMENTS)();
  holder[key] = next;
  return {
    value: root,
    label: `${name} = ${JSON.stringify(next).slice(0, 40)}`,
    invalid: invalidIf(path, old, next),
  };
}
