// REFRAG stages on tiny models: the curriculum's shape, reconstruction trains only encoder + projector and
// lowers the loss, continual pre-training trains the decoder, checkpoints load back as a RefragModel.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { saveCheckpoint } from "../../src/io/checkpoint.js";
import { llamaConfig, LlamaForCausalLM } from "../../src/models/llama.js";
import { RobertaForMaskedLM, robertaConfig } from "../../src/models/roberta.js";
import { makeCurriculum, sampleChunks, stageOf, stageWeights } from "../../src/train/curriculum.js";
import {
  continualPretrain,
  initRefrag,
  loadRefrag,
  mixedInput,
  reconstruct,
} from "../../src/train/stages/refrag.js";
import type { Module } from "../../src/nn/module.js";
import type { StTensor } from "../../src/io/safetensors.js";

test("curriculum: levels 1, 2, 4 … L; mostly-easy first, mostly-hard last", () => {
  const c = makeCurriculum(24);
  assert.deepEqual(c.levels, [1, 2, 4, 8, 16, 24]);
  const first = stageWeights(c, 0);
  const last = stageWeights(c, 8);
  assert.ok(Math.abs(first.reduce((a, b) => a + b) - 1) < 1e-12);
  assert.ok(first[0] > first[1] && first[1] > first[5], `first ${first}`);
  assert.ok(last[5] > last[4] && last[4] > last[0], `last ${last}`);
  assert.ok(Math.abs(first[0] / first[1] - 2) < 1e-9, "geometric with ratio 2");
  assert.equal(stageOf(c, 0, 90), 0);
  assert.equal(stageOf(c, 89, 90), 8);
  const rng = new Rng(1);
  const early = Array.from({ length: 300 }, () => sampleChunks(c, 0, 90, rng));
  const late = Array.from({ length: 300 }, () => sampleChunks(c, 89, 90, rng));
  assert.ok(early.filter((n) => n === 1).length > late.filter((n) => n === 1).length * 4);
  assert.throws(() => makeCurriculum(0), /maxChunks must be a positive integer/);
});

function tensorsOf(m: Module): Map<string, StTensor> {
  return new Map(
    [...m.namedParameters()].map(([n, p]) => [
      n,
      { dtype: "F32", shape: [...p.shape], data: p.data } as StTensor,
    ]),
  );
}

test("reconstruction trains encoder + projector only and lowers the loss; cpt trains the decoder", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-stages-"));
  try {
    const dcfg = llamaConfig({
      vocab_size: 16,
      hidden_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 64,
      max_position_embeddings: 128,
    });
    const ecfg = robertaConfig({
      vocab_size: 16,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 16,
      pad_token_id: 0,
      bos_token_id: 1,
    });
    // A random decoder at init scale cannot express confident logits (|logit| < 1), so no encoder could teach
    // it to reconstruct; a larger output head stands in for a pre-trained one.
    const decoder = new LlamaForCausalLM(dcfg, new Rng(1));
    for (let i = 0; i < decoder.lm_head!.weight.size; i++) decoder.lm_head!.weight.data[i] *= 50;
    await saveCheckpoint(join(dir, "dec"), { config: dcfg, tensors: tensorsOf(decoder) });
    await saveCheckpoint(join(dir, "enc"), {
      config: ecfg,
      tensors: tensorsOf(new RobertaForMaskedLM(ecfg, new Rng(2))),
    });
    const model = await initRefrag(join(dir, "enc"), join(dir, "dec"), 4);
    const rng = new Rng(3);
    const stream = Uint16Array.from({ length: 4000 }, () => 2 + rng.int(14));
    const decBefore = model.decoder.model.layers[0].mlp.up_proj.weight.data.slice();
    const s = await reconstruct(
      model,
      stream,
      { steps: 80, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, saveEvery: 80 },
      { out: join(dir, "rec") },
    );
    assert.deepEqual(model.decoder.model.layers[0].mlp.up_proj.weight.data, decBefore, "decoder frozen");
    const first = s.history.slice(0, 10).reduce((a, h) => a + h.loss, 0) / 10;
    const last = s.history.slice(-10).reduce((a, h) => a + h.loss, 0) / 10;
    assert.ok(last < first - 0.3, `reconstruction loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    const loaded = await loadRefrag(join(dir, "rec"));
    assert.deepEqual(loaded.projector.linear_1.weight.data, model.projector.linear_1.weight.data);
    await continualPretrain(
      loaded,
      stream,
      { steps: 3, lr: 1e-3, maxChunks: 4, tokensPerStep: 64, continuation: 8 },
      { out: join(dir, "cpt") },
    );
    assert.notDeepEqual(
      loaded.decoder.model.layers[0].mlp.up_proj.weight.data,
      decBefore,
      "cpt trains the decoder",
    );
    // Mixed input: half of every context's chunks read as raw tokens; every step's loss is finite.
    const mixed = await mixedInput(
      loaded,
      stream,
      { steps: 20, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, continuation: 8, expandFraction: 0.5 },
      { out: join(dir, "mixed") },
    );
    assert.equal(mixed.step, 20);
    assert.ok(mixed.history.every((h) => Number.isFinite(h.loss)));
    await assert.rejects(
      () =>
        mixedInput(
          loaded,
          stream,
          { steps: 3, lr: 1e-3, maxChunks: 4, tokensPerStep: 64, continuation: 8, expandFraction: 2 },
          { out: join(dir, "y") },
        ),
      /expandFraction must be in \[0, 1\]/,
    );
    await assert.rejects(
      () =>
        continualPretrain(
          loaded,
          stream,
          { steps: 3, lr: 1e-3, maxChunks: 64, tokensPerStep: 64, continuation: 8 },
          { out: join(dir, "x") },
        ),
      /exceed the decoder's max_position_embeddings 128/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
