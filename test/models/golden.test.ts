// Golden tests: our LLaMA and RoBERTa reproduce an independent PyTorch implementation on fixed small
// weights (fixtures from scripts/golden/make_fixtures.py, loaded through our checkpoint reader).
import assert from "node:assert/strict";
import { test } from "node:test";
import { join } from "node:path";
import { assertClose } from "../helpers.js";
import { loadCheckpoint } from "../../src/io/checkpoint.js";
import { readSafetensors, type StTensor } from "../../src/io/safetensors.js";
import { packageRoot } from "../../src/engine/native.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad, Tensor } from "../../src/engine/tensor.js";
import { LlamaForCausalLM } from "../../src/models/llama.js";
import { RobertaModel, type EncoderBatch } from "../../src/models/roberta.js";
import type { LlamaConfig, RobertaConfig } from "../../src/io/config.js";

const dir = (name: string) => join(packageRoot(), "test", "fixtures", "golden", name);

function f32(t: StTensor | undefined, what: string): Float32Array {
  assert.ok(t !== undefined && t.data instanceof Float32Array, `${what}: missing F32 tensor`);
  return t.data as Float32Array;
}
function i32(t: StTensor | undefined, what: string): Int32Array {
  assert.ok(t !== undefined && t.data instanceof Int32Array, `${what}: missing I32 tensor`);
  return t.data as Int32Array;
}

function weights(tensors: Map<string, StTensor>): Map<string, Float32Array> {
  return new Map([...tensors].map(([k, v]) => [k, f32(v, k)]));
}

for (const name of ["llama_gqa", "llama_tied"]) {
  test(`LLaMA matches PyTorch: ${name} (tokens and mixed token/vector input)`, async () => {
    const ckpt = await loadCheckpoint(dir(name));
    const model = new LlamaForCausalLM(ckpt.config as LlamaConfig, new Rng(0));
    model.loadStateDict(weights(ckpt.tensors));
    const io = (await readSafetensors(join(dir(name), "io.safetensors"))).tensors;
    noGrad(() => {
      const { logits, hidden } = model.forward([{ ids: i32(io.get("ids"), "ids") }]);
      assertClose(hidden.data, f32(io.get("out_hidden"), "hidden"), 1e-4, `${name} hidden`);
      assertClose(logits.data, f32(io.get("out_logits"), "logits"), 1e-4, `${name} logits`);
      const vecs = f32(io.get("mixed_vectors"), "vectors");
      const mixed = model.forward([
        { ids: i32(io.get("mixed_q_ids"), "q") },
        { embeds: new Tensor(vecs, [vecs.length / model.config.hidden_size, model.config.hidden_size]) },
        { ids: i32(io.get("mixed_t_ids"), "t") },
      ]);
      assertClose(mixed.logits.data, f32(io.get("out_mixed_logits"), "mixed"), 1e-4, `${name} mixed logits`);
    });
  });
}

test("RoBERTa matches PyTorch: padded batch, last hidden states, CLS and mean pooling", async () => {
  const ckpt = await loadCheckpoint(dir("roberta"));
  const cfg = ckpt.config as RobertaConfig;
  const model = new RobertaModel(cfg, new Rng(0));
  model.loadStateDict(weights(ckpt.tensors));
  const io = (await readSafetensors(join(dir("roberta"), "io.safetensors"))).tensors;
  const lengths = i32(io.get("lengths"), "lengths");
  const ids = i32(io.get("ids"), "ids");
  const batch: EncoderBatch = { ids, lengths, B: lengths.length, T: ids.length / lengths.length };
  noGrad(() => {
    const hidden = model.forward(batch);
    // Compare valid rows only: padded rows are never read (PyTorch computes them differently masked).
    const C = cfg.hidden_size;
    const expected = f32(io.get("out_hidden"), "hidden");
    const got: number[] = [];
    const want: number[] = [];
    for (let b = 0; b < batch.B; b++)
      for (let t = 0; t < lengths[b]; t++)
        for (let c = 0; c < C; c++) {
          got.push(hidden.data[(b * batch.T + t) * C + c]);
          want.push(expected[(b * batch.T + t) * C + c]);
        }
    assertClose(got, want, 1e-4, "roberta hidden");
    assertClose(model.pool(hidden, batch, "cls").data, f32(io.get("out_cls"), "cls"), 1e-4, "roberta cls");
    assertClose(
      model.pool(hidden, batch, "mean").data,
      f32(io.get("out_mean"), "mean"),
      1e-4,
      "roberta mean",
    );
  });
});

test("bf16 weights for inference stay close to f32 and leave training on f32", async () => {
  const ckpt = await loadCheckpoint(dir("llama_gqa"));
  const model = new LlamaForCausalLM(ckpt.config as LlamaConfig, new Rng(0));
  model.loadStateDict(weights(ckpt.tensors));
  const io = (await readSafetensors(join(dir("llama_gqa"), "io.safetensors"))).tensors;
  const ids = i32(io.get("ids"), "ids");
  model.useBf16Weights();
  const logits = noGrad(() => model.forward([{ ids }]).logits);
  assertClose(logits.data, f32(io.get("out_logits"), "logits"), 3e-2, "bf16 logits");
  // Under the tape the f32 weights are used, so the result is the f32 one.
  const taped = model.forward([{ ids }]).logits;
  assertClose(taped.data, f32(io.get("out_logits"), "logits"), 1e-4, "taped logits with bf16 copies present");
  model.useBf16Weights(false);
  assert.ok(model.parameters().every((p) => p.bf16 === null));
});
