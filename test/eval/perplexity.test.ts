// Log-perplexity of a continuation under the four ways of reading the context.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad } from "../../src/engine/tensor.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import { contextSegments, continuationNll, perplexityTable } from "../../src/eval/perplexity.js";
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
  const rows = perplexityTable(
    model,
    new Map([
      ["a", [w]],
      ["b", [w, w]],
    ]),
    [
      { name: "full", mode: "full" },
      { name: "refrag", mode: "refrag" },
      { name: "last", mode: "last" },
    ],
  );
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => Number.isFinite(r.logPpl) && r.logPpl > 0));
  // Expanding every chunk is the full context (same tokens, same positions).
  const full = continuationNll(model, contextSegments(model, w, "full"), w.continuation);
  const expanded = continuationNll(
    model,
    contextSegments(model, w, "refrag", { mode: "all" }),
    w.continuation,
  );
  assert.ok(Math.abs(full - expanded) < 1e-5);
});
