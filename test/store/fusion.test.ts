// Reciprocal rank fusion against a hand-computed example.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rrfFuse } from "../../src/store/batch.js";
import type { SearchHit } from "../../src/store/types.js";

const hit = (id: string): SearchHit => ({ id, doc_id: id, title: id, text: id, score: 0 });

test("rrf: scores are sums of 1 / (rrfK + rank) over the lists", () => {
  // text: a b c; dense: c a d; rrfK = 1:
  //   a = 1/2 + 1/3 = 0.8333, c = 1/4 + 1/2 = 0.75, b = 1/3, d = 1/4
  const fused = rrfFuse([["a", "b", "c"].map(hit), ["c", "a", "d"].map(hit)], 3, 1);
  assert.deepEqual(
    fused.map((h) => h.id),
    ["a", "c", "b"],
  );
  assert.ok(Math.abs(fused[0].score - 5 / 6) < 1e-12);
  assert.ok(Math.abs(fused[1].score - 0.75) < 1e-12);
  assert.ok(Math.abs(fused[2].score - 1 / 3) < 1e-12);
  // Default rrfK = 60; an empty list changes nothing.
  const d = rrfFuse([["x", "y"].map(hit), []], 5);
  assert.deepEqual(
    d.map((h) => [h.id, h.score]),
    [
      ["x", 1 / 61],
      ["y", 1 / 62],
    ],
  );
});

test("rrf: weights scale each list's share; weight 0 keeps the first list's order", () => {
  // text: a b c; dense: c a d; rrfK = 1, dense weight 0.5:
  //   a = 1/2 + 0.5/3 = 0.6667, c = 1/4 + 0.5/2 = 0.5, b = 1/3, d = 0.5/4
  const lists = [["a", "b", "c"].map(hit), ["c", "a", "d"].map(hit)];
  const fused = rrfFuse(lists, 4, 1, [1, 0.5]);
  assert.deepEqual(
    fused.map((h) => h.id),
    ["a", "c", "b", "d"],
  );
  assert.ok(Math.abs(fused[0].score - 2 / 3) < 1e-12);
  assert.ok(Math.abs(fused[1].score - 0.5) < 1e-12);
  assert.ok(Math.abs(fused[3].score - 0.125) < 1e-12);
  assert.deepEqual(
    rrfFuse(lists, 3, 60, [1, 0]).map((h) => h.id),
    ["a", "b", "c"],
  );
  assert.throws(() => rrfFuse(lists, 3, 60, [1]), /one finite weight >= 0 per list/);
  assert.throws(() => rrfFuse(lists, 3, 60, [1, -1]), /one finite weight/);
});
