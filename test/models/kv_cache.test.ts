// KVCache storage types: a bf16 cache holds the rounded f32 rows and reads them back widened; the decode
// step refuses caches of two types in one step; unknown types and rows of the wrong type are refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { kernels } from "../../src/engine/kernels/index.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad } from "../../src/engine/tensor.js";
import { KVCache, llamaConfig, LlamaForCausalLM, type KVCacheDtype } from "../../src/models/llama.js";
import { LlamaDecodeStep } from "../../src/models/llama_decode.js";

const config = llamaConfig({
  vocab_size: 64,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 48,
  max_position_embeddings: 64,
});

test("KVCache: bf16 rows are the rounded f32 rows, read back widened; half the bytes", () => {
  const rng = new Rng(1);
  const k = rng.randn(3 * 32);
  const v = rng.randn(3 * 32);
  const f32 = new KVCache(config, 8);
  const bf16 = new KVCache(config, 8, "bf16");
  for (const c of [f32, bf16]) {
    c.write(1, 2, k, v);
    c.length = 5;
  }
  const [fk] = f32.read(1, 5);
  const [bk, bv] = bf16.read(1, 5);
  assert.deepEqual(fk.subarray(2 * 32, 5 * 32), k);
  const rounded = new Uint16Array(k.length);
  kernels.gemm.f32ToBf16(v, rounded);
  assert.deepEqual(
    bv.subarray(2 * 32, 5 * 32),
    new Float32Array(Uint32Array.from(rounded, (b) => b << 16).buffer),
  );
  assert.notDeepEqual(bk.subarray(2 * 32, 5 * 32), k, "bf16 rows were not rounded");
  assert.equal(bf16.bytesUsed() * 2, f32.bytesUsed());
  // Widened into a caller's scratch when it is long enough: the same values, in the scratch's memory.
  const scratch: [Float32Array, Float32Array] = [new Float32Array(8 * 32), new Float32Array(8 * 32)];
  const [sk, sv] = bf16.read(1, 5, scratch);
  assert.equal(sk.buffer, scratch[0].buffer);
  assert.deepEqual([sk, sv], [bk, bv]);
});

test("KVCache and the decode step refuse what they cannot store", () => {
  assert.throws(() => new KVCache(config, 8, "f16" as KVCacheDtype), /dtype must be one of f32, bf16/);
  const c = new KVCache(config, 8, "bf16");
  assert.throws(
    () => c.store(0, 0, new Float32Array(32), new Float32Array(32)),
    /bf16 cache must be Uint16Array/,
  );
  const model = new LlamaForCausalLM(config, new Rng(2));
  const step = new LlamaDecodeStep(model, 2);
  const caches = [new KVCache(config, 8), new KVCache(config, 8, "bf16")];
  noGrad(() =>
    assert.throws(() => step.step(Int32Array.of(1, 2), caches), /must share a dtype \(bf16, f32\)/),
  );
});
