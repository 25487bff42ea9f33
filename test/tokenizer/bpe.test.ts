// Merge application: the linear scan (short words) and the heap (long words) give identical results.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freshRng } from "../helpers.js";
import { MergeTable, PairMap } from "../../src/tokenizer/bpe.js";

test("PairMap agrees with a Map on random pairs", () => {
  const { rng, seed } = freshRng();
  const pm = new PairMap(4);
  const ref = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    const a = rng.int(i % 2 === 0 ? 50 : 1 << 20);
    const b = rng.int(50);
    const v = rng.int(1000);
    pm.set(a, b, v);
    ref.set(`${a},${b}`, v);
  }
  assert.equal(pm.size, ref.size, `seed ${seed}`);
  for (const [k, v] of ref) {
    const [a, b] = k.split(",").map(Number);
    assert.equal(pm.get(a, b), v, `seed ${seed}: (${a}, ${b})`);
  }
  assert.equal(pm.get(1 << 21, 3), -1);
});

/** Reference: merge the lowest-rank adjacent pair, leftmost on ties, one at a time. */
function refApply(merges: [number, number, number][], word: number[]): number[] {
  const w = [...word];
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i + 1 < w.length; i++) {
      const r = merges.findIndex(([a, b]) => a === w[i] && b === w[i + 1]);
      if (r >= 0 && r < best) [best, at] = [r, i];
    }
    if (at < 0) return w;
    w.splice(at, 2, merges[best][2]);
  }
}

test("MergeTable (scan and heap paths) equals the one-merge-at-a-time reference", () => {
  const { rng, seed } = freshRng();
  // Symbols 0..3; merged ids from 4 on, built only from existing symbols, as a trained table is.
  const merges: [number, number, number][] = [];
  let next = 4;
  while (merges.length < 40) {
    const a = rng.int(next);
    const b = rng.int(next);
    if (merges.some(([x, y]) => x === a && y === b)) continue;
    merges.push([a, b, next++]);
  }
  const table = new MergeTable(merges);
  for (const n of [1, 2, 3, 7, 33, 48, 49, 100, 257]) {
    for (let k = 0; k < 20; k++) {
      const word = Array.from({ length: n }, () => rng.int(4));
      const sym = Int32Array.from(word);
      const m = table.apply(sym, n);
      assert.deepEqual(Array.from(sym.subarray(0, m)), refApply(merges, word), `seed ${seed}, n ${n}`);
    }
  }
});
