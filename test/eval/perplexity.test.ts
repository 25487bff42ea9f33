// Log-perplexity of a continuation under the four ways of reading the context.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad } from "../../src/engine/tensor.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import {
  checkLengths,
  contextSegments,
  continuationNll,
  perplexityTable,
} from "../../src/eval/perplexity.js";
import { RefragModel, segmentLength } from "../../src/models/refrag.js";

const shape = {
  ...SHAPES.shipped,
  vocab: 40,
  decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32 },
  encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
};

test("continuation NLL equals the cross-entropy of the continuation rows of one forward pass", () => {
  const model = new RefragModel(refragConfigFor(shape, 4, 128), new Rng(1));
  const rng = new Rng(2);
  const ctx = Int32Array.from({ length: 16 }, () => 4 + rng.int(36));
  const cont = Int32Array.from({ length: 6 }, () => 4 + rng.int(36));
  const got = continuationNll(model, [{ ids: ctx }], cont);
  const all = Int32Array.from([...ctx, ...cont]);
  const targets = new Int32Array(all.length).fill(-100);
  for (let t = 0; t < 6; t++) targets[15 + t] = cont[t];
  const want = noGrad(() =>
    crossEntropy(
      model.decoder.forward([{ ids: all.subarray(0, all.length - 1) }]).logits,
      targets.subarray(0, all.length - 1),
    ).item(),
  );
  assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
});

test("modes read the right number of positions; the table covers every domain and mode", () => {
  const model = new RefragModel(refragConfigFor(shape, 4, 128), new Rng(3));
  const rng = new Rng(4);
  const w = {
    context: Array.from({ length: 32 }, () => 4 + rng.int(36)),
    continuation: Array.from({ length: 8 }, () => 4 + rng.int(36)),
  };
  const bos = model.config.decoder.bos_token_id === null ? 0 : 1;
  assert.equal(segmentLength(contextSegments(model, w, "full")), bos + 32);
  assert.equal(segmentLength(contextSegments(model, w, "refrag")), bos + 8);
  assert.equal(segmentLength(contextSegments(model, w, "last")), bos + 8);
  assert.equal(segmentLength(contextSegments(model, w, "refrag", { mode: "all" })), bos + 32);
  // A second window, so a domain's mean is over distinct values.
  const w2 = {
    context: Array.from({ length: 32 }, () => 4 + rng.int(36)),
    continuation: Array.from({ length: 8 }, () => 4 + rng.int(36)),
  };
  const rows = perplexityTable(
    model,
    new Map([
      ["a", [w]],
      ["b", [w, w2]],
    ]),
    [
      { name: "full", mode: "full" },
      { name: "refrag", mode: "refrag" },
      { name: "last", mode: "last" },
    ],
  );
  assert.deepEqual(
    rows.map((r) => `${r.domain}/${r.mode}/${r.windows}`),
    ["a/full/1", "a/refrag/1", "a/last/1", "b/full/2", "b/refrag/2", "b/last/2"],
  );
  // Full context, computed here from one forward pass over <bos> + context + continuation: the table's
  // value is the mean over the domain's windows of the continuation's mean NLL.
  const bosId = model.config.decoder.bos_token_id!;
  const fullNll = (x: typeof w) => {
    const all = Int32Array.from([bosId, ...x.context, ...x.continuation]);
    const targets = new Int32Array(all.length - 1).fill(-100);
    for (let t = 0; t < 8; t++) targets[all.length - 9 + t] = x.continuation[t];
    return noGrad(() =>
      crossEntropy(model.decoder.forward([{ ids: all.subarray(0, all.length - 1) }]).logits, targets).item(),
    );
  };
  const a = fullNll(w);
  const b = fullNll(w2);
  assert.ok(Math.abs(a - b) > 1e-3, "the two windows differ");
  assert.ok(Math.abs(rows[0].logPpl - a) < 1e-5, `a/full ${rows[0].logPpl} vs ${a}`);
  assert.ok(Math.abs(rows[3].logPpl - (a + b) / 2) < 1e-5, `b/full ${rows[3].logPpl} vs ${(a + b) / 2}`);
  // Expanding every chunk is the full context (same tokens, same positions).
  const full = continuationNll(model, contextSegments(model, w, "full"), w.continuation);
  const expanded = continuationNll(
    model,
    contextSegments(model, w, "refrag", { mode: "all" }),
    w.continuation,
  );
  assert.ok(Math.abs(full - expanded) < 1e-5);
});

test("lengths are checked before an evaluation reads anything: each mode against the decoder's window", () => {
  const model = new RefragModel(refragConfigFor(shape, 16, 512), new Rng(5));
  // s = 2048, o = 256: compressed it is 1 + 128 + 255 = 384 positions; read in full 2304.
  assert.doesNotThrow(() => checkLengths(model, 2048, 256, ["refrag", "last", "none"]));
  assert.throws(
    () => checkLengths(model, 2048, 256, ["refrag", "full"]),
    /mode full reads 2304 positions \(s = 2048, o = 256, k = 16\), beyond the decoder's max_position_embeddings 512/,
  );
  assert.throws(() => checkLengths(model, 2048, 512, ["refrag"]), /mode refrag reads 640 positions/);
  const w = { context: new Array<number>(600).fill(5), continuation: [5, 6] };
  assert.throws(
    () => perplexityTable(model, new Map([["d", [w]]]), [{ name: "full", mode: "full" }]),
    /mode full reads 602 positions/,
  );
});
