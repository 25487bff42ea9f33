// Batched prefill (LlamaPrefill): several prompts stacked along rows in one forward pass, each with its own
// KV cache, give every prompt the same cache and next-token logits, bit for bit, as its prefill alone
// through LlamaModel.forward and LlamaForCausalLM.logits (generate()'s prefill): the packed GEMM's rows do
// not depend on M ≥ 2 or on the row's place, attention runs per prompt, and the LM head's rows are the
// one-row product's. The buffers are reused, so calls of other sizes in between must not leak into a call.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withThreads } from "../helpers.js";
import { kernels } from "../../src/engine/kernels/index.js";
import { sliceRows } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad, Tensor } from "../../src/engine/tensor.js";
import {
  KVCache,
  llamaConfig,
  LlamaForCausalLM,
  type KVCacheDtype,
  type Segment,
} from "../../src/models/llama.js";
import { LlamaPrefill } from "../../src/models/llama_prefill.js";

const config = llamaConfig({
  vocab_size: 300,
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 176, // K = 176 for down_proj: not a multiple of the GEMM's 16-wide vectors
  max_position_embeddings: 512,
});
const kvDim = 32;
const model = new LlamaForCausalLM(config, new Rng(3));
// Tied embedding and biases everywhere: the LM head is the embedding table, every product adds a bias.
const tied = new LlamaForCausalLM(
  { ...config, tie_word_embeddings: true, attention_bias: true, mlp_bias: true },
  new Rng(4),
);
for (const p of tied.parameters())
  if (p.shape.length === 1) p.data.forEach((_, i) => (p.data[i] = 0.01 * (i % 7) - 0.03));
const bits = (a: Float32Array | Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Prompts of the given lengths: token ids, some with a block of ready vectors (REFRAG's chunk embeddings). */
function prompts(lengths: number[], rng: Rng): Segment[][] {
  return lengths.map((n, i) => {
    const ids = Int32Array.from({ length: n }, () => rng.int(config.vocab_size));
    if (i % 2 === 0 || n < 3) return [{ ids }];
    const v = 1 + rng.int(n - 2);
    const embeds = new Tensor(
      Float32Array.from({ length: v * 64 }, () => rng.normal()),
      [v, 64],
    );
    return [{ ids: ids.subarray(0, 1) }, { embeds }, { ids: ids.subarray(v + 1) }];
  });
}

/** A cache with the prefix `past` already prefilled (alone), or an empty one. */
function cacheWith(m: LlamaForCausalLM, past: Int32Array | null, dtype: KVCacheDtype): KVCache {
  const cache = new KVCache(config, 400, dtype);
  if (past !== null) noGrad(() => m.model.forward(m.model.embed([{ ids: past }]), { cache }));
  return cache;
}

/** generate()'s prefill of one prompt: its cache and the logits of its last position. */
function alone(m: LlamaForCausalLM, p: Segment[], past: Int32Array | null, dtype: KVCacheDtype) {
  const cache = cacheWith(m, past, dtype);
  const logits = noGrad(() => {
    const h = m.model.forward(m.model.embed(p), { cache });
    return m.logits(sliceRows(h, h.rows - 1, h.rows)).data;
  });
  return { cache, logits };
}

function check(
  m: LlamaForCausalLM,
  pass: LlamaPrefill,
  lengths: number[],
  withPast: boolean,
  label: string,
  dtype: KVCacheDtype = "f32",
) {
  const rng = new Rng(lengths.length * 31 + lengths[0]);
  const ps = prompts(lengths, rng);
  const pasts = lengths.map((_, i) =>
    withPast && i % 3 === 1 ? Int32Array.from({ length: 5 + i }, () => rng.int(300)) : null,
  );
  const caches = pasts.map((past) => cacheWith(m, past, dtype));
  const logits = noGrad(() => pass.run(ps, caches)).slice();
  const V = config.vocab_size;
  assert.equal(logits.length, ps.length * V, `${label}: logits rows`);
  ps.forEach((p, i) => {
    const want = alone(m, p, pasts[i], dtype);
    assert.ok(
      bits(logits.subarray(i * V, (i + 1) * V)).equals(bits(want.logits)),
      `${label}: prompt ${i} (${lengths[i]} positions): logits differ`,
    );
    const c = caches[i];
    assert.equal(c.length, want.cache.length, `${label}: prompt ${i}: cache length`);
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const used = c.length * kvDim;
      assert.ok(
        bits(c.keys[l].subarray(0, used)).equals(bits(want.cache.keys[l].subarray(0, used))),
        `${label}: prompt ${i}: keys of layer ${l}`,
      );
      assert.ok(
        bits(c.values[l].subarray(0, used)).equals(bits(want.cache.values[l].subarray(0, used))),
        `${label}: prompt ${i}: values of layer ${l}`,
      );
    }
  });
}

test("LlamaPrefill: every prompt's cache and logits equal its prefill alone, bit for bit", () => {
  const pass = new LlamaPrefill(model);
  // Lengths across the GEMM's 12-row tiles and 144-row blocks; 2 is the shortest that takes the GEMM.
  check(model, pass, [17, 2, 40, 13, 150, 7, 64], false, "mixed");
  // Smaller calls after a larger one run in the same (larger) buffers.
  check(model, pass, [2, 3], false, "two short");
  check(model, pass, [30, 25, 31, 12, 9], true, "after a cached prefix");
  check(model, pass, [1], false, "one position alone"); // M = 1: the GEMV, as alone
  check(model, pass, [5], true, "one prompt after a prefix");
  withThreads(2, () => check(model, pass, [100, 90, 180, 33, 5], false, "two threads"));
});

test("LlamaPrefill: tied LM head, biases and bf16 weights", () => {
  check(tied, new LlamaPrefill(tied), [9, 2, 33, 20], true, "tied, biases");
  model.useBf16Weights();
  try {
    check(model, new LlamaPrefill(model), [9, 2, 33, 20], false, "bf16");
  } finally {
    model.useBf16Weights(false);
  }
});

test("LlamaPrefill: bf16 KV caches get the bits of their prefill alone, and hold the rounded f32 cache", () => {
  const pass = new LlamaPrefill(model);
  check(model, pass, [17, 2, 40, 13], false, "bf16 cache");
  check(model, pass, [30, 25, 3], true, "bf16 cache after a cached prefix");
  // The first layer's keys and values are the f32 cache's rounded to bf16 (later layers read rounded values).
  const [p] = prompts([40], new Rng(5));
  const f32 = alone(model, p, null, "f32");
  const bf16 = alone(model, p, null, "bf16");
  const used = 40 * kvDim;
  const rounded = new Uint16Array(used);
  kernels.gemm.f32ToBf16(f32.cache.keys[0].subarray(0, used) as Float32Array, rounded);
  assert.ok(
    bits(rounded).equals(bits(bf16.cache.keys[0].subarray(0, used))),
    "layer 0 keys: rounded f32 keys",
  );
  assert.equal(bf16.cache.bytesUsed() * 2, f32.cache.bytesUsed());
  let diff = 0;
  f32.logits.forEach((x, i) => (diff = Math.max(diff, Math.abs(x - bf16.logits[i]))));
  assert.ok(diff > 0 && diff < 0.05, `logits with a bf16 cache differ by ${diff} from f32's`);
});

test("LlamaPrefill: mismatched prompts, shared caches, full caches and the tape are refused", () => {
  const pass = new LlamaPrefill(model);
  const p = [{ ids: new Int32Array(3) }];
  const caches = [new KVCache(config, 10), new KVCache(config, 10)];
  noGrad(() => {
    assert.throws(() => pass.run([p], caches), /1 prompts for 2 caches/);
    assert.throws(() => pass.run([p, p], [caches[0], caches[0]]), /shares a cache/);
    assert.throws(() => pass.run([p, p], [caches[0], new KVCache(config, 2)]), /capacity/);
    assert.throws(() => pass.run([p, [{ ids: new Int32Array(0) }]], caches), /0 new positions/);
    const wide = new Tensor(new Float32Array(2 * 65), [2, 65]);
    assert.throws(() => pass.run([p, [{ embeds: wide }]], caches), /must be \[n, 64\]/);
  });
  assert.throws(() => pass.run([p], [caches[0]]), /noGrad/);
  assert.equal(caches[0].length, 0, "a refused call appends nothing");
});
