// Reconstruction eval: the vectors mode reads the window's own chunk vectors, shuffled another window's,
// none no vectors; all three teacher-force the same tokens after <bos>.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { noGrad } from "../../src/engine/tensor.js";
import { continuationNll } from "../../src/eval/perplexity.js";
import { heldOutWindows, reconstructionRow } from "../../src/eval/reconstruction.js";
import { lmSegments } from "../../src/infer/prompt.js";
import { chunkTokens } from "../../src/models/refrag.js";
import { tinyRefrag } from "../tiny_refrag.js";

test("reconstruction eval: each mode equals its hand-built sequence; fixed windows; clear length error", () => {
  const model = tinyRefrag(4, 256, 1);
  const k = model.chunkSize;
  const stream = Uint16Array.from({ length: 3000 }, (_, i) => 8 + ((i * 7919) % 50));
  const row = reconstructionRow(model, stream, 2, 3);
  const ws = heldOutWindows(stream, 2 * k, 3);
  assert.deepEqual(heldOutWindows(stream, 2 * k, 3), ws, "the same windows every time");
  const vec = (w: Int32Array) => noGrad(() => model.project(model.encodeChunks(chunkTokens(w, k))));
  let own = 0;
  let other = 0;
  for (let i = 0; i < 3; i++) {
    const chunks = chunkTokens(ws[i], k);
    own += continuationNll(model, lmSegments(model, { chunks, projected: vec(ws[i]) }), ws[i]);
    other += continuationNll(model, lmSegments(model, { chunks, projected: vec(ws[(i + 1) % 3]) }), ws[i]);
  }
  assert.ok(Math.abs(row.nll.vectors - own / 3) < 1e-6, `vectors ${row.nll.vectors} vs ${own / 3}`);
  assert.ok(Math.abs(row.nll.shuffled - other / 3) < 1e-6, `shuffled ${row.nll.shuffled} vs ${other / 3}`);
  assert.notEqual(row.nll.vectors, row.nll.shuffled);
  assert.notEqual(row.nll.vectors, row.nll.none);
  assert.throws(() => reconstructionRow(model, stream, 1000, 3), /positions; the decoder has/);
});
