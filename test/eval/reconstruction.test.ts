// Reconstruction eval: the vectors mode reads the window's own chunk vectors, shuffled another window's,
// none no vectors; all three teacher-force the same tokens after <bos>.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { noGrad } from "../../src/engine/tensor.js";
import { continuationNll, continuationNlls } from "../../src/eval/perplexity.js";
import {
  doublingSpans,
  heldOutWindows,
  reconstructionMarkdown,
  reconstructionRow,
  reconstructionTable,
} from "../../src/eval/reconstruction.js";
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

test("reconstruction eval: the split by chunk and by offset inside a chunk is the per-token NLL's", () => {
  assert.deepEqual(doublingSpans(1), [[0, 1]]);
  assert.deepEqual(doublingSpans(6), [
    [0, 1],
    [1, 2],
    [2, 4],
    [4, 6],
  ]);
  assert.deepEqual(doublingSpans(8), [
    [0, 1],
    [1, 2],
    [2, 4],
    [4, 8],
  ]);
  const model = tinyRefrag(4, 256, 2);
  const k = model.chunkSize;
  const n = 5;
  const stream = Uint16Array.from({ length: 3000 }, (_, i) => 8 + ((i * 7919) % 50));
  const row = reconstructionRow(model, stream, n, 2);
  assert.deepEqual(
    row.byChunk.map((x) => [x.from, x.to]),
    [
      [0, 1],
      [1, 2],
      [2, 4],
      [4, 5],
    ],
  );
  assert.deepEqual(
    row.byOffset.map((x) => [x.from, x.to]),
    doublingSpans(k),
  );
  // By hand: the own vectors' per-token NLL of both windows; chunk 3–4 is tokens 2k … 4k − 1, offset 2–3 is
  // tokens t with t mod k in {2, 3}.
  const ws = heldOutWindows(stream, n * k, 2);
  const per = ws.map((w) =>
    continuationNlls(
      model,
      lmSegments(model, {
        chunks: chunkTokens(w, k),
        projected: noGrad(() => model.project(model.encodeChunks(chunkTokens(w, k)))),
      }),
      w,
    ),
  );
  const meanOf = (keep: (t: number) => boolean) => {
    const xs = per.flatMap((p) => [...p].filter((_, t) => keep(t)));
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
  close(
    row.byChunk[2].nll.vectors,
    meanOf((t) => t >= 2 * k && t < 4 * k),
    "chunks 3–4",
  );
  close(
    row.byChunk[0].nll.vectors,
    meanOf((t) => t < k),
    "chunk 1",
  );
  close(
    row.byOffset[0].nll.vectors,
    meanOf((t) => t % k === 0),
    "offset 0",
  );
  close(
    row.byOffset[2].nll.vectors,
    meanOf((t) => t % k >= 2 && t % k < 4),
    "offsets 2–3",
  );
  close(
    row.nll.vectors,
    meanOf(() => true),
    "all",
  );
  // The report shows the gains at the largest chunk count.
  const md = reconstructionMarkdown(reconstructionTable([{ name: "m", model }], stream, [1, n], 2), "t");
  assert.match(md, /### Where the vectors are read \(5 chunks\)/);
  const gain = (row.byChunk[3].nll.none - row.byChunk[3].nll.vectors).toFixed(3);
  assert.match(md, new RegExp(`\\| 5 \\| ${gain.replace(".", "\\.")} \\|`));
});
