// The RL policy stage: with a reward that pays for expanding chunk 0, GRPO with PPO clipping learns to pick
// it; only the policy trains; bad settings fail clearly.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad } from "../../src/engine/tensor.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import { crossEntropy, sliceRows } from "../../src/engine/ops.js";
import { chunkTokens, RefragModel } from "../../src/models/refrag.js";
import { policyConfig } from "../../src/models/policy.js";
import { continuationReward, trainPolicy, withPolicy } from "../../src/train/stages/policy.js";

const shape = {
  ...SHAPES.shipped,
  vocab: 32,
  decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32 },
  encoder: { hidden: 16, layers: 1, heads: 2, intermediate: 32 },
};

test("GRPO learns to expand the chunk its reward pays for, and trains only the policy", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-policy-"));
  try {
    const base = new RefragModel(refragConfigFor(shape, 4, 256), new Rng(1));
    const model = withPolicy(base, policyConfig(16, 16, 1, 2), 3);
    assert.deepEqual(
      model.decoder.model.norm.weight.data,
      base.decoder.model.norm.weight.data,
      "weights carried over",
    );
    const rng = new Rng(2);
    const stream = Uint16Array.from({ length: 3000 }, () => 2 + rng.int(30));
    const encBefore = model.encoder.embeddings.word_embeddings.weight.data.slice();
    const firstChunkProb = () => {
      const chunks = Array.from({ length: 6 }, (_, i) => Int32Array.from(stream.subarray(i * 4, i * 4 + 4)));
      const logits = noGrad(() => model.policy!.forward(model.encodeChunks(chunks))).data;
      const mx = Math.max(...logits);
      const z = logits.reduce((a, l) => a + Math.exp(l - mx), 0);
      return Math.exp(logits[0] - mx) / z;
    };
    const before = firstChunkProb();
    const s = await trainPolicy(
      model,
      stream,
      {
        steps: 60,
        lr: 1e-2,
        contextChunks: 6,
        continuation: 4,
        expandFraction: 1 / 6,
        contexts: 4,
        saveEvery: 60,
        weightDecay: 0,
      },
      { out: join(dir, "p") },
      (x) => (x.expand[0] ? 1 : 0),
    );
    const after = firstChunkProb();
    assert.ok(
      after > 0.6 && after > 2 * before,
      `P(expand chunk 0): ${before.toFixed(3)} → ${after.toFixed(3)}`,
    );
    assert.ok(
      s.rewards[s.rewards.length - 1] > s.rewards[0],
      `mean reward ${s.rewards[0]} → ${s.rewards[s.rewards.length - 1]}`,
    );
    assert.deepEqual(model.encoder.embeddings.word_embeddings.weight.data, encBefore, "encoder frozen");
    await assert.rejects(
      () =>
        trainPolicy(
          base,
          stream,
          { steps: 2, lr: 1e-3, contextChunks: 4, continuation: 4, expandFraction: 0.25, contexts: 1 },
          { out: join(dir, "x") },
        ),
      /has no policy/,
    );
    await assert.rejects(
      () =>
        trainPolicy(
          model,
          stream,
          {
            steps: 2,
            lr: 1e-3,
            contextChunks: 4,
            continuation: 4,
            expandFraction: 0.25,
            contexts: 1,
            group: 1,
          },
          { out: join(dir, "y") },
        ),
      /group must be at least 2/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the default reward is minus the evaluation's log-perplexity after <bos> and the mixed input", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-policy-"));
  try {
    const model = withPolicy(
      new RefragModel(refragConfigFor(shape, 4, 256), new Rng(4)),
      policyConfig(16, 16, 1, 2),
    );
    const rng = new Rng(5);
    const stream = Uint16Array.from({ length: 2000 }, () => 2 + rng.int(30));
    const chunks = chunkTokens(stream.subarray(0, 14), 4); // 4 chunks, the last one short
    const continuation = Int32Array.from(stream.subarray(14, 22));
    const projected = noGrad(() => model.project(model.encodeChunks(chunks)));
    // Computed here: one forward pass over <bos>, chunk 0 raw, chunks 1–3 as vectors, the continuation.
    const expand = [true, false, false, false];
    const bos = Int32Array.of(model.config.decoder.bos_token_id!);
    const embeds = noGrad(() =>
      model.decoder.model.embed([
        { ids: bos },
        { ids: chunks[0] },
        { embeds: sliceRows(projected, 1, 4) },
        { ids: continuation.subarray(0, 7) },
      ]),
    );
    const logits = noGrad(() => model.decoder.logits(model.decoder.model.forward(embeds)));
    const targets = new Int32Array(logits.rows).fill(-100);
    for (let t = 0; t < 8; t++) targets[logits.rows - 8 + t] = continuation[t];
    const want = -noGrad(() => crossEntropy(logits, targets).item());
    const got = continuationReward(model, { chunks, projected, expand, continuation });
    assert.ok(Math.abs(got - want) < 1e-5, `reward ${got} vs ${want}`);
    const other = continuationReward(model, {
      chunks,
      projected,
      expand: [false, false, true, false],
      continuation,
    });
    assert.ok(Math.abs(other - got) > 1e-6, "another selection, another reward");
    // The stage runs with it: one rollout batch, one mean reward.
    const s = await trainPolicy(
      model,
      stream,
      {
        steps: 2,
        lr: 1e-3,
        contextChunks: 4,
        continuation: 8,
        expandFraction: 0.25,
        contexts: 2,
        saveEvery: 2,
      },
      { out: join(dir, "p") },
    );
    assert.equal(s.rewards.length, 1);
    await assert.rejects(
      () =>
        trainPolicy(
          model,
          stream,
          { steps: 2, lr: 1e-3, expandFraction: 0.25, contexts: 1, saveEvery: 2 },
          { out: join(dir, "q") },
        ),
      /rewards read up to 480 positions .* beyond the decoder's max_position_embeddings 256/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
