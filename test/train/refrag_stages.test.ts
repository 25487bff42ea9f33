// REFRAG stages on tiny models: sequences laid out as the evaluation reads them (<bos> first), contexts cut
// into passages with short chunks, mixed input at the expansion rule's rate; reconstruction trains only
// encoder + projector and lowers the loss (training and validation), continual pre-training trains the
// decoder, checkpoints load back as a RefragModel, lengths are checked at the start.
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
import { sliceRows } from "../../src/engine/ops.js";
import { noGrad } from "../../src/engine/tensor.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import { continuationNll } from "../../src/eval/perplexity.js";
import type { Segment } from "../../src/models/llama.js";
import { RefragModel } from "../../src/models/refrag.js";
import {
  batchLoss,
  continualPretrain,
  initRefrag,
  loadRefrag,
  mixedInput,
  passageLengths,
  reconstruct,
  sampleBatch,
  withChunkSize,
} from "../../src/train/stages/refrag.js";
import type { Module } from "../../src/nn/module.js";
import type { StTensor } from "../../src/io/safetensors.js";

const tinyShape = {
  ...SHAPES.shipped,
  vocab: 32,
  decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32 },
  encoder: { hidden: 16, layers: 1, heads: 2, intermediate: 32 },
};

/** The segments the perplexity evaluation reads, built by hand: <bos>, then each chunk as its vector or raw. */
function byHand(model: RefragModel, chunks: Int32Array[], expand: boolean[]): Segment[] {
  const projected = model.project(model.encodeChunks(chunks));
  return [
    { ids: Int32Array.of(model.config.decoder.bos_token_id!) },
    ...chunks.map((c, j) => (expand[j] ? { ids: c } : { embeds: sliceRows(projected, j, j + 1) })),
  ];
}

test("training sequences are read as the evaluation reads them: <bos> first, chunks, then the predicted tokens", () => {
  const model = new RefragModel(refragConfigFor(tinyShape, 4, 256), new Rng(1));
  const rng = new Rng(2);
  const stream = Uint16Array.from({ length: 3000 }, () => 2 + rng.int(30));
  for (const [stage, p] of [
    ["cpt", 0],
    ["mixed", 0.5],
    ["reconstruct", 0],
  ] as const) {
    const batch = sampleBatch(
      stream,
      { stage, n: 6, k: 4, B: 1, continuation: 7, expandFraction: p },
      new Rng(3),
    );
    const chunks = batch.chunks[0];
    const predicted = batch.predicted[0];
    if (stage === "reconstruct")
      assert.deepEqual(
        [...predicted],
        chunks.flatMap((c) => [...c]),
      );
    else assert.equal(predicted.length, 7);
    if (stage === "mixed") assert.equal(batch.expand.filter(Boolean).length, 3);
    const got = noGrad(() => batchLoss(model, batch).item());
    const want = continuationNll(
      model,
      noGrad(() => byHand(model, chunks, batch.expand)),
      predicted,
    );
    assert.ok(Math.abs(got - want) < 1e-5, `${stage}: training loss ${got} vs the evaluation's ${want}`);
  }
});

test("training contexts look like retrieved passages: n chunks in all, passages ending in short chunks", () => {
  const rng = new Rng(4);
  const counts = new Set<number>();
  let partial = 0;
  for (let d = 0; d < 300; d++) {
    const n = 1 + rng.int(40);
    const lengths = passageLengths(n, 16, rng);
    counts.add(lengths.length);
    assert.ok(lengths.length >= 1 && lengths.length <= Math.min(n, 8));
    assert.equal(
      lengths.reduce((a, l) => a + Math.ceil(l / 16), 0),
      n,
      "the curriculum's chunk count",
    );
    if (lengths.some((l) => l % 16 !== 0)) partial++;
  }
  assert.ok(partial > 270, `${partial} of 300 contexts hold a short chunk`);
  assert.ok(counts.size >= 6, `passage counts seen: ${[...counts]}`);
  // What the stage batches hold: short chunks, also at one chunk; every sequence of a batch the same shape.
  const stream = Uint16Array.from({ length: 5000 }, () => 2 + rng.int(30));
  let short = 0;
  for (let d = 0; d < 50; d++) {
    const b = sampleBatch(
      stream,
      { stage: "cpt", n: 1 + (d % 4), k: 16, B: 3, continuation: 5, expandFraction: 0 },
      rng,
    );
    assert.deepEqual(
      b.chunks.map((cs) => cs.map((c) => c.length)),
      [0, 1, 2].map(() => b.chunks[0].map((c) => c.length)),
    );
    if (b.chunks[0].some((c) => c.length < 16)) short++;
  }
  assert.ok(short > 40, `${short} of 50 batches hold a short chunk`);
});

test("mixed input expands p of the chunks on average, at every chunk count (the rule inference uses)", () => {
  const rng = new Rng(5);
  const stream = Uint16Array.from({ length: 5000 }, () => 2 + rng.int(30));
  for (const n of [1, 3, 8, 17]) {
    let expanded = 0;
    const draws = 2000;
    for (let d = 0; d < draws; d++)
      expanded += sampleBatch(
        stream,
        { stage: "mixed", n, k: 4, B: 1, continuation: 2, expandFraction: 0.1 },
        rng,
      ).expand.filter(Boolean).length;
    const mean = expanded / (draws * n);
    assert.ok(Math.abs(mean - 0.1) < 0.015, `n = ${n}: mean expanded fraction ${mean}`);
  }
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
    // Another chunk size, the same weights (REFRAG8/32 started from REFRAG16's stages).
    const k2 = withChunkSize(model, 2);
    assert.equal(k2.chunkSize, 2);
    assert.equal(model.chunkSize, 4, "the original is untouched");
    assert.deepEqual(k2.projector.linear_1.weight.data, model.projector.linear_1.weight.data);
    assert.deepEqual(
      k2.encoder.embeddings.word_embeddings.weight.data,
      model.encoder.embeddings.word_embeddings.weight.data,
    );
    assert.throws(() => withChunkSize(model, 15), /chunk_size 15 does not fit the encoder/);
    // A new encoder of a given shape starts from the decoder's word embeddings (rescaled), nothing else.
    const fresh = await initRefrag({ config: { ...ecfg, hidden_size: 32 } }, join(dir, "dec"), 4);
    const we = fresh.encoder.embeddings.word_embeddings.weight.data;
    const de = decoder.model.embed_tokens.weight.data;
    assert.equal(we.length, de.length);
    const ratio = we[5] / de[5];
    assert.ok(ratio > 0 && Math.abs(ratio - 1) > 1e-3, `rescaled, ratio ${ratio}`);
    for (let i = 0; i < de.length; i++) assert.ok(Math.abs(we[i] - ratio * de[i]) < 1e-6, `embedding ${i}`);
    await assert.rejects(
      () => initRefrag({ config: { ...ecfg } }, join(dir, "dec"), 4),
      /its width must be the decoder's \(32\), got 16/,
    );
    const rng = new Rng(3);
    const stream = Uint16Array.from({ length: 4000 }, () => 2 + rng.int(14));
    const decBefore = model.decoder.model.layers[0].mlp.up_proj.weight.data.slice();
    const valid = Uint16Array.from({ length: 1000 }, () => 2 + rng.int(14));
    const s = await reconstruct(
      model,
      stream,
      { steps: 80, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, saveEvery: 80, evalEvery: 40 },
      { out: join(dir, "rec") },
      { stream: valid },
    );
    assert.deepEqual(model.decoder.model.layers[0].mlp.up_proj.weight.data, decBefore, "decoder frozen");
    const first = s.history.slice(0, 10).reduce((a, h) => a + h.loss, 0) / 10;
    const last = s.history.slice(-10).reduce((a, h) => a + h.loss, 0) / 10;
    assert.ok(last < first - 0.3, `reconstruction loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    // Validation: held-out sequences at the largest level, measured at steps 40 and 80, and falling.
    assert.deepEqual(
      s.validation?.map((v) => v.step),
      [40, 80],
    );
    assert.ok(s.validation![1].loss < s.validation![0].loss, `validation ${JSON.stringify(s.validation)}`);
    const loaded = await loadRefrag(join(dir, "rec"));
    assert.deepEqual(loaded.projector.linear_1.weight.data, model.projector.linear_1.weight.data);
    // --train-decoder: the same stage with the decoder trainable moves it.
    const both = await initRefrag(join(dir, "enc"), join(dir, "dec"), 4);
    const bothBefore = both.decoder.model.layers[0].mlp.up_proj.weight.data.slice();
    await reconstruct(
      both,
      stream,
      { steps: 2, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, trainDecoder: true },
      { out: join(dir, "rec-both") },
    );
    assert.notDeepEqual(both.decoder.model.layers[0].mlp.up_proj.weight.data, bothBefore, "decoder trained");
    // --freeze-encoder: the encoder keeps its weights, the projector and the decoder still learn.
    const fz = await initRefrag(join(dir, "enc"), join(dir, "dec"), 4);
    const encW = () => fz.encoder.encoder.layer[0].intermediate.dense.weight.data;
    const [fzEnc, fzEmb, fzProj, fzDec] = [
      encW().slice(),
      fz.encoder.embeddings.word_embeddings.weight.data.slice(),
      fz.projector.linear_1.weight.data.slice(),
      fz.decoder.model.layers[0].mlp.up_proj.weight.data.slice(),
    ];
    await reconstruct(
      fz,
      stream,
      { steps: 2, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, trainDecoder: true, freezeEncoder: true },
      { out: join(dir, "rec-fz") },
    );
    assert.deepEqual(encW(), fzEnc, "encoder layers frozen");
    assert.deepEqual(fz.encoder.embeddings.word_embeddings.weight.data, fzEmb, "encoder embeddings frozen");
    assert.notDeepEqual(fz.projector.linear_1.weight.data, fzProj, "projector trained");
    assert.notDeepEqual(fz.decoder.model.layers[0].mlp.up_proj.weight.data, fzDec, "decoder trained");
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
    const mixed = await mixedInput(
      loaded,
      stream,
      { steps: 4, lr: 3e-3, maxChunks: 4, tokensPerStep: 64, continuation: 8, expandFraction: 0.5 },
      { out: join(dir, "mixed") },
    );
    assert.equal(mixed.step, 4);
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
          { steps: 3, lr: 1e-3, maxChunks: 200, tokensPerStep: 64, continuation: 8 },
          { out: join(dir, "x") },
        ),
      /exceed the decoder's max_position_embeddings 128/,
    );
    // The defaults are the evaluated lengths (128 chunks, 256 continuation tokens): too long for this decoder.
    await assert.rejects(
      () =>
        continualPretrain(loaded, stream, { steps: 3, lr: 1e-3, tokensPerStep: 64 }, { out: join(dir, "z") }),
      /up to 384 positions \(<bos>, 128 chunks of k = 4, 256 tokens predicted\) exceed the decoder's max_position_embeddings 128/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
