// A small LLaMA stack learns a fixed task, and incremental decoding with the KV cache equals recomputing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freshRng, relErr } from "../helpers.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad, Tensor } from "../../src/engine/tensor.js";
import { KVCache, LlamaForCausalLM, llamaConfig } from "../../src/models/llama.js";
import { AdamW, clipGradNorm, cosineSchedule } from "../../src/train/optimizer.js";

test("a 2-layer LLaMA learns an affine-recurrence sequence task (loss falls from ln V to < 0.35)", () => {
  const V = 16;
  const cfg = llamaConfig({
    vocab_size: V,
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 64,
  });
  const model = new LlamaForCausalLM(cfg, new Rng(1));
  const opt = new AdamW(model.namedParameters(), { lr: 1e-2, weightDecay: 0.0 });
  const data = new Rng(2);
  const B = 8;
  const T = 16;
  const steps = 200;
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    // token[t+1] = (5·token[t] + 3) mod 16: predictable from the previous token only.
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) {
      let t0 = data.int(V);
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = t0;
        t0 = (5 * t0 + 3) % V;
        if (t < T - 1) targets[b * T + t] = t0;
      }
    }
    const { logits } = model.forward([{ ids }], { batch: B });
    const loss = crossEntropy(logits, targets);
    opt.zeroGrad();
    loss.backward();
    clipGradNorm(model.parameters(), 1.0);
    opt.stepAll(cosineSchedule(step, steps, 1e-2));
    losses.push(loss.item());
  }
  const first = losses[0];
  const last = losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
  assert.ok(
    Math.abs(first - Math.log(V)) < 0.5,
    `initial loss ${first} should be near ln ${V} = ${Math.log(V).toFixed(3)}`,
  );
  assert.ok(last < 0.35, `final loss ${last.toFixed(4)} (first ${first.toFixed(3)}) should fall below 0.35`);
});

test("decoding with the KV cache equals recomputing the whole sequence (mixed token/vector input)", () => {
  const { rng, seed } = freshRng();
  const cfg = llamaConfig({
    vocab_size: 50,
    hidden_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 96,
  });
  const model = new LlamaForCausalLM(cfg, rng);
  const q = Int32Array.from({ length: 5 }, () => rng.int(50));
  const vecs = new Tensor(rng.randn(3 * 48, 0.02), [3, 48]);
  const more = Int32Array.from({ length: 4 }, () => rng.int(50));
  noGrad(() => {
    const full = model.forward([{ ids: q }, { embeds: vecs }, { ids: more }]).logits;
    const cache = new KVCache(cfg, 32);
    model.forward([{ ids: q }, { embeds: vecs }], { cache });
    const step: Float32Array[] = [];
    for (const id of more) step.push(model.forward([{ ids: Int32Array.of(id) }], { cache }).logits.data);
    assert.equal(cache.length, 12);
    for (let i = 0; i < more.length; i++) {
      const row = full.data.subarray((8 + i) * 50, (9 + i) * 50);
      const e = relErr(step[i], row);
      assert.ok(e < 1e-4, `position ${8 + i}: cached vs full relative error ${e} (seed ${seed})`);
    }
    assert.throws(
      () => model.forward([{ ids: new Int32Array(30) }], { cache }),
      /exceed the cache capacity 32/,
    );
  });
});
