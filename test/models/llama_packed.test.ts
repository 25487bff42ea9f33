// Batched prefill: several prompts stacked along rows in one forward pass (the `packed` option), each with
// its own KV cache, give every prompt the same cache and hidden states, bit for bit, as its forward alone
// (the packed GEMM's rows do not depend on M ≥ 2 or on the row's place; attention runs per prompt).
import assert from "node:assert/strict";
import { test } from "node:test";
import { withThreads } from "../helpers.js";
import { concatRows, sliceRows } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad, Tensor } from "../../src/engine/tensor.js";
import { KVCache, llamaConfig, LlamaForCausalLM, type Segment } from "../../src/models/llama.js";

const config = llamaConfig({
  vocab_size: 300,
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 176, // K = 176 for down_proj: not a multiple of the GEMM's 16-wide vectors
  max_position_embeddings: 512,
});
const model = new LlamaForCausalLM(config, new Rng(3));
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

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

function alone(p: Segment[], past: Int32Array | null): { cache: KVCache; hidden: Tensor } {
  const cache = new KVCache(config, 400);
  return noGrad(() => {
    if (past !== null) model.model.forward(model.model.embed([{ ids: past }]), { cache });
    return { cache, hidden: model.model.forward(model.model.embed(p), { cache }) };
  });
}

function packed(ps: Segment[][], pasts: (Int32Array | null)[]): { caches: KVCache[]; hidden: Tensor } {
  const caches = ps.map(() => new KVCache(config, 400));
  return noGrad(() => {
    pasts.forEach((past, i) => {
      if (past !== null) model.model.forward(model.model.embed([{ ids: past }]), { cache: caches[i] });
    });
    const inputs = ps.map((p) => model.model.embed(p));
    const rows = inputs.map((x) => x.rows);
    return { caches, hidden: model.model.forward(concatRows(inputs), { packed: { rows, caches } }) };
  });
}

function check(lengths: number[], withPast: boolean, label: string): void {
  const rng = new Rng(lengths.length * 31 + lengths[0]);
  const ps = prompts(lengths, rng);
  const pasts = lengths.map((_, i) =>
    withPast && i % 3 === 1 ? Int32Array.from({ length: 5 + i }, () => rng.int(300)) : null,
  );
  const got = packed(ps, pasts);
  let start = 0;
  ps.forEach((p, i) => {
    const want = alone(p, pasts[i]);
    const n = want.hidden.rows;
    const mine = sliceRows(got.hidden, start, start + n);
    start += n;
    assert.ok(
      bits(mine.data).equals(bits(want.hidden.data)),
      `${label}: prompt ${i} (${n} rows): hidden states differ`,
    );
    const c = got.caches[i];
    assert.equal(c.length, want.cache.length, `${label}: prompt ${i}: cache length`);
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const used = c.length * 32;
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
  assert.equal(start, got.hidden.rows);
}

test("packed prefill: every prompt's hidden states and cache equal its forward alone, bit for bit", () => {
  // Lengths across the GEMM's 12-row tiles and 144-row blocks; 2 is the shortest that takes the GEMM.
  check([2, 3], false, "two short");
  check([17, 2, 40, 13, 150, 7, 64], false, "mixed");
  check([30, 25, 31, 12, 9], true, "after a cached prefix");
  withThreads(2, () => check([100, 90, 180, 33, 5], false, "two threads"));
});

test("packed prefill: mismatched rows, shared caches and full caches are refused", () => {
  const x = noGrad(() => model.model.embed([{ ids: new Int32Array(6) }]));
  const caches = [new KVCache(config, 10), new KVCache(config, 10)];
  noGrad(() => {
    assert.throws(() => model.model.forward(x, { packed: { rows: [3, 2], caches } }), /packed rows/);
    assert.throws(
      () => model.model.forward(x, { packed: { rows: [3, 3], caches: [caches[0], caches[0]] } }),
      /shares a cache/,
    );
    assert.throws(
      () => model.model.forward(x, { packed: { rows: [3, 3], caches: [caches[0], new KVCache(config, 2)] } }),
      /capacity/,
    );
  });
  assert.throws(() => model.model.forward(x, { packed: { rows: [3, 3], caches } }), /noGrad/);
});
