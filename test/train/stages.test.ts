// Pre-training stages on tiny models and synthetic streams: the loss falls, masking follows BERT's recipe,
// token streams round-trip and reject truncated files.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { llamaConfig } from "../../src/models/llama.js";
import { robertaConfig } from "../../src/models/roberta.js";
import {
  maskTokens,
  pretrainDecoder,
  pretrainEncoder,
  setScaledEmbeddings,
} from "../../src/train/stages/pretrain.js";
import { readSafetensors, toFloat32 } from "../../src/io/safetensors.js";
import { loadTokenStream, sampleWindows, saveTokenStream } from "../../src/train/tokens.js";

/** A periodic stream (period 7 over ids 4..10) that a small model can learn quickly. */
function periodicStream(n: number): Uint16Array {
  return Uint16Array.from({ length: n }, (_, i) => 4 + ((i * 3) % 7));
}

test("decoder pre-training lowers the loss on a learnable stream", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-stage-"));
  try {
    const cfg = llamaConfig({
      vocab_size: 16,
      hidden_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 64,
      max_position_embeddings: 64,
    });
    const s = await pretrainDecoder(
      cfg,
      periodicStream(5000),
      { steps: 60, lr: 1e-2, batch: 4, seqLen: 16, saveEvery: 60 },
      { out: dir },
    );
    const first = s.history[0].loss;
    const last = s.history.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
    assert.ok(last < 0.3 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("encoder masked-LM pre-training lowers the loss", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-stage-"));
  try {
    const cfg = robertaConfig({
      vocab_size: 16,
      hidden_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 64,
      max_position_embeddings: 40,
      pad_token_id: 0,
      bos_token_id: 1,
    });
    const s = await pretrainEncoder(
      cfg,
      periodicStream(5000),
      3,
      4,
      { steps: 400, lr: 3e-3, batch: 16, seqLen: 16, maskProb: 0.15, saveEvery: 400 },
      { out: dir },
    );
    const first = s.history.slice(0, 5).reduce((a, h) => a + h.loss, 0) / 5;
    const last = s.history.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
    assert.ok(last < 0.6 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("masking: about p of the non-first positions are targets; 80/10/10 replacement; padding untouched", () => {
  const rng = new Rng(5);
  const T = 50;
  const B = 200;
  const ids = Int32Array.from({ length: B * T }, () => 20 + rng.int(80));
  const lengths = Int32Array.from({ length: B }, (_, b) => 10 + (b % 41));
  const { inputs, targets } = maskTokens(ids, lengths, T, 3, 100, 14, 0.15, rng);
  let chosen = 0;
  let masked = 0;
  let kept = 0;
  let eligible = 0;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (t === 0 || t >= lengths[b]) {
        assert.equal(targets[i], -100);
        assert.equal(inputs[i], ids[i]);
        continue;
      }
      eligible++;
      if (targets[i] === -100) continue;
      chosen++;
      if (inputs[i] === 3) masked++;
      else if (inputs[i] === ids[i]) kept++;
    }
  assert.ok(Math.abs(chosen / eligible - 0.15) < 0.02, `chosen ${chosen / eligible}`);
  assert.ok(Math.abs(masked / chosen - 0.8) < 0.05, `masked ${masked / chosen}`);
  assert.ok(kept / chosen > 0.07 && kept / chosen < 0.15, `kept ${kept / chosen}`);
});

test("token streams round-trip, windows shift by one, truncated files are rejected", () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-stream-"));
  try {
    const tokens = Uint16Array.from({ length: 1000 }, (_, i) => i % 500);
    const path = join(dir, "s.u16");
    saveTokenStream(path, {
      tokens,
      info: {
        split: "train",
        tokens: 1000,
        documents: 1,
        sources: { x: 1 },
        tokenizerSha256: "0",
        files: [],
      },
    });
    assert.deepEqual(loadTokenStream(path).tokens, tokens);
    const { inputs, targets } = sampleWindows(tokens, 3, 20, new Rng(1));
    for (let i = 0; i < 60; i++) if (i % 20 !== 19) assert.equal(targets[i], inputs[i + 1]);
    // With <bos>, every window starts with it and the targets are the stream itself from the window start.
    const w = sampleWindows(tokens, 3, 20, new Rng(1), { bos: 777 });
    for (let b = 0; b < 3; b++) {
      assert.equal(w.inputs[b * 20], 777, "window starts with <bos>");
      for (let t = 1; t < 20; t++) assert.equal(w.inputs[b * 20 + t], w.targets[b * 20 + t - 1]);
      // The first target is a stream token that follows its predecessor in the stream (i % 500 counts up).
      const first = w.targets[b * 20];
      assert.equal(w.targets[b * 20 + 1], (first + 1) % 500);
    }
    truncateSync(path, 1999);
    assert.throws(() => loadTokenStream(path), /1999 bytes, expected 2000 .*truncated/);
    assert.throws(() => sampleWindows(tokens.subarray(0, 10), 1, 20, new Rng(1)), /shorter than a window/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("encoder word embeddings start from a decoder's: same directions, the encoder's init std", async () => {
  const rng = new Rng(3);
  const V = 16;
  const C = 32;
  const source = Float32Array.from({ length: V * C }, () => 0.5 * rng.normal() + 0.1);
  const target = new Float32Array(V * C);
  setScaledEmbeddings(target, source, 0.02);
  let sum = 0;
  let sq = 0;
  for (const v of target) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / target.length;
  assert.ok(Math.abs(Math.sqrt(sq / target.length - mean * mean) - 0.02) < 1e-6, "std is the encoder's");
  const ratio = target[7] / source[7];
  for (let i = 0; i < source.length; i++)
    assert.ok(Math.abs(target[i] - ratio * source[i]) < 1e-7, `value ${i}`);
  assert.throws(() => setScaledEmbeddings(new Float32Array(V * C - 1), source, 0.02), /must match/);
  assert.throws(() => setScaledEmbeddings(target, new Float32Array(V * C).fill(1), 0.02), /constant/);

  // Through the stage: the saved encoder starts from them (one step at a negligible learning rate).
  const dir = mkdtempSync(join(tmpdir(), "refrag-stage-"));
  try {
    const cfg = robertaConfig({
      vocab_size: V,
      hidden_size: C,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 64,
      max_position_embeddings: 40,
      pad_token_id: 0,
      bos_token_id: 1,
    });
    await pretrainEncoder(
      cfg,
      periodicStream(500),
      3,
      4,
      { steps: 1, lr: 1e-12, batch: 2, seqLen: 8, saveEvery: 1 },
      { out: dir },
      { embeddings: source },
    );
    const saved = toFloat32(
      (await readSafetensors(join(dir, "model.safetensors"))).tensors.get(
        "roberta.embeddings.word_embeddings.weight",
      )!,
      "word embeddings",
    );
    for (let i = 0; i < source.length; i++)
      assert.ok(Math.abs(saved[i] - target[i]) < 1e-6, `saved value ${i}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
