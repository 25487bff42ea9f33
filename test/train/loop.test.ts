// The training loop: an interrupted run resumes exactly, frozen parameters stay frozen, bad settings and
// divergence fail clearly without damaging the last checkpoint.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { crossEntropy, scale } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { loadCheckpoint } from "../../src/io/checkpoint.js";
import { LlamaForCausalLM, llamaConfig } from "../../src/models/llama.js";
import { trainLoop, type LoopOptions } from "../../src/train/loop.js";

const cfg = llamaConfig({
  vocab_size: 32,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 32,
});

function options(model: LlamaForCausalLM, outDir: string, extra: Partial<LoopOptions> = {}): LoopOptions {
  return {
    stage: "lm",
    model,
    config: { steps: 8, lr: 1e-2, saveEvery: 3, seed: 7 },
    outDir,
    modelConfig: cfg,
    loss: (_step, rng: Rng) => {
      const ids = Int32Array.from({ length: 2 * 9 }, () => rng.int(32));
      const inputs = new Int32Array(16);
      const targets = new Int32Array(16);
      for (let b = 0; b < 2; b++)
        for (let t = 0; t < 8; t++) {
          inputs[b * 8 + t] = ids[b * 9 + t];
          targets[b * 8 + t] = ids[b * 9 + t + 1];
        }
      return crossEntropy(model.forward([{ ids: inputs }], { batch: 2 }).logits, targets);
    },
    ...extra,
  };
}

test("a run stopped half-way and resumed from its checkpoint equals an unbroken run, bit for bit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-loop-"));
  try {
    const a = new LlamaForCausalLM(cfg, new Rng(1));
    const sa = await trainLoop(options(a, join(dir, "a")));
    assert.equal(sa.step, 8);
    const b = new LlamaForCausalLM(cfg, new Rng(1));
    let calls = 0;
    const sb = await trainLoop(options(b, join(dir, "b"), { shouldStop: () => ++calls === 4 }));
    assert.equal(sb.step, 4, "stopped after step 4 (between saves), with a checkpoint");
    const b2 = new LlamaForCausalLM(cfg, new Rng(99)); // a new process: different init, replaced by the checkpoint
    const sb2 = await trainLoop(options(b2, join(dir, "b")));
    assert.equal(sb2.step, 8);
    for (const [name, p] of a.namedParameters())
      assert.deepEqual(b2.namedParameters().get(name)!.data, p.data, name);
    assert.deepEqual(
      sb2.history.map((h) => h.loss),
      sa.history.map((h) => h.loss),
    );
    const saved = await loadCheckpoint(join(dir, "a"), { optimizer: true });
    assert.equal(saved.trainingState?.step, 8);
    assert.ok(saved.optimizer?.has("m.model.norm.weight"));
    // A different run configuration refuses to resume from it.
    await assert.rejects(
      () =>
        trainLoop(
          options(new LlamaForCausalLM(cfg, new Rng(1)), join(dir, "a"), {
            config: { steps: 20, lr: 1e-2, seed: 7 },
          }),
        ),
      /holds a run with steps=8/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stop request that arrives as an event (a signal handler) is seen after the current step", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-loop-"));
  try {
    let stop = false;
    const model = new LlamaForCausalLM(cfg, new Rng(1));
    const state = await trainLoop(
      options(model, join(dir, "s"), {
        config: { steps: 8, lr: 1e-2, saveEvery: 100, seed: 7, logEvery: 1 },
        // Queued like a SIGINT handler: it only runs when the loop yields to the event loop.
        log: (i) => {
          if (i.step === 1) setImmediate(() => (stop = true));
        },
        shouldStop: () => stop,
      }),
    );
    assert.equal(state.step, 2, "stopped right after the step during which the request arrived");
    const saved = await loadCheckpoint(join(dir, "s"), { optimizer: true });
    assert.equal(saved.trainingState?.step, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("frozen parameters do not move; divergence stops with a clear error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-loop-"));
  try {
    const m = new LlamaForCausalLM(cfg, new Rng(2));
    const before = m.model.embed_tokens.weight.data.slice();
    await trainLoop(options(m, join(dir, "f"), { trainable: (n) => !n.includes("embed_tokens") }));
    assert.deepEqual(m.model.embed_tokens.weight.data, before);
    const n = new LlamaForCausalLM(cfg, new Rng(3));
    const good = options(n, join(dir, "nan"));
    await assert.rejects(
      () => trainLoop({ ...good, loss: (step, rng) => scale(good.loss(step, rng), NaN) }),
      /step 0: loss NaN.*last checkpoint is intact/,
    );
    await assert.rejects(
      () => trainLoop(options(n, join(dir, "x"), { config: { steps: 0, lr: 1 } })),
      /steps must be a positive integer/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("validation: measured every evalEvery steps without gradients, recorded in the saved state", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-loop-"));
  try {
    const model = new LlamaForCausalLM(cfg, new Rng(1));
    const seen: number[] = [];
    const ids = Int32Array.from({ length: 8 }, (_, i) => (i * 5) % 32);
    const validate = () => {
      const loss = crossEntropy(model.forward([{ ids }], { batch: 1 }).logits, ids);
      assert.equal(loss.requiresGrad, false, "validation runs without recording a graph");
      return loss.item();
    };
    const o = options(model, join(dir, "v"), { validate, logValidation: (step) => seen.push(step) });
    const s = await trainLoop({ ...o, config: { ...o.config, evalEvery: 3 } });
    assert.deepEqual(seen, [3, 6, 8]);
    assert.deepEqual(
      s.validation?.map((v) => v.step),
      [3, 6, 8],
    );
    const saved = (await loadCheckpoint(join(dir, "v"))).trainingState as { validation: { loss: number }[] };
    assert.equal(saved.validation.length, 3);
    assert.ok(saved.validation.every((v) => Number.isFinite(v.loss)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
