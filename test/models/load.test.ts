// The checked weight loader: every path that reads a checkpoint into a module (loadRefrag, loadLlama,
// initRefrag, the training loop's resume) converts stored dtypes, checks shapes against the config before
// building anything, and refuses NaN / ±Inf naming the tensor.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.js";
import { parseRefragConfig, type JsonObject } from "../../src/io/config.js";
import { bf16ToF32, f32ToBf16 } from "../../src/io/half.js";
import type { StTensor } from "../../src/io/safetensors.js";
import { LlamaForCausalLM } from "../../src/models/llama.js";
import { loadLlama, loadRefrag, replaceDecoder } from "../../src/models/load.js";
import { RefragModel } from "../../src/models/refrag.js";
import {
  llamaShapes,
  policyShapes,
  projectorShapes,
  refragShapes,
  robertaMlmShapes,
} from "../../src/models/shapes.js";
import { RobertaForMaskedLM } from "../../src/models/roberta.js";
import { policyConfig } from "../../src/models/policy.js";
import { withPolicy } from "../../src/train/stages/policy.js";
import { initRefrag } from "../../src/train/stages/refrag.js";
import { trainLoop } from "../../src/train/loop.js";
import type { Module } from "../../src/nn/module.js";

const K = 4;
const shape = {
  ...SHAPES.shipped,
  vocab: 40,
  decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24 },
  encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
};
const config = refragConfigFor(shape, K, 64);

/** Round every parameter to bf16 in place (so a bf16 file holds exactly these values). */
function roundToBf16(m: Module): void {
  for (const p of m.parameters()) p.data.set(bf16ToF32(f32ToBf16(p.data)));
}

function tensorsOf(m: Module, dtype: "F32" | "BF16", prefix = ""): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const [n, p] of m.namedParameters())
    out.set(
      prefix + n,
      dtype === "F32"
        ? { dtype, shape: [...p.shape], data: p.data.slice() }
        : { dtype, shape: [...p.shape], data: f32ToBf16(p.data) },
    );
  return out;
}

function assertSameParams(a: Module, b: Module, what: string): void {
  const pb = b.namedParameters();
  for (const [n, p] of a.namedParameters()) assert.deepEqual(pb.get(n)!.data, p.data, `${what}: ${n}`);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refrag-load-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the shape tables match the modules the configs build", () => {
  const withPol = parseRefragConfig({ ...config, policy: policyConfig(8) });
  const cases: [Module, Map<string, number[]>][] = [
    [new RefragModel(config, new Rng(1)), refragShapes(config)],
    [new RefragModel(withPol, new Rng(1)), refragShapes(withPol)],
    [
      new LlamaForCausalLM({ ...config.decoder, tie_word_embeddings: true }, new Rng(1)),
      llamaShapes({ ...config.decoder, tie_word_embeddings: true }),
    ],
    [
      new LlamaForCausalLM({ ...config.decoder, attention_bias: true, mlp_bias: true }, new Rng(1)),
      llamaShapes({ ...config.decoder, attention_bias: true, mlp_bias: true }),
    ],
    [new RobertaForMaskedLM(config.encoder, new Rng(1)), robertaMlmShapes(config.encoder)],
  ];
  for (const [m, table] of cases)
    assert.deepEqual(new Map([...m.namedParameters()].map(([n, p]) => [n, p.shape])), table);
  assert.equal(projectorShapes(config.projector, "projector.").size, 4);
  assert.equal(policyShapes(policyConfig(8)).size, 2 + 1 + 2 * 16 + 2);
});

test("a bf16 checkpoint loads exactly through loadRefrag, loadLlama, initRefrag and the loop's resume", async () => {
  await withDir(async (dir) => {
    const model = new RefragModel(config, new Rng(3));
    roundToBf16(model);
    // loadRefrag
    await saveCheckpoint(join(dir, "refrag"), { config, tensors: tensorsOf(model, "BF16") });
    assertSameParams(model, await loadRefrag(join(dir, "refrag")), "loadRefrag");
    // loadLlama
    await saveCheckpoint(join(dir, "dec"), {
      config: config.decoder,
      tensors: tensorsOf(model.decoder, "BF16"),
    });
    assertSameParams(model.decoder, await loadLlama(join(dir, "dec")), "loadLlama");
    // initRefrag, with the encoder saved as RobertaForMaskedLM ("roberta." names)
    const mlm = new RobertaForMaskedLM(config.encoder, new Rng(4));
    for (const [n, p] of model.encoder.namedParameters())
      mlm.namedParameters().get(`roberta.${n}`)!.data.set(p.data);
    roundToBf16(mlm);
    await saveCheckpoint(join(dir, "enc"), { config: config.encoder, tensors: tensorsOf(mlm, "BF16") });
    const joined = await initRefrag(join(dir, "enc"), join(dir, "dec"), K);
    assertSameParams(model.encoder, joined.encoder, "initRefrag encoder");
    assertSameParams(model.decoder, joined.decoder, "initRefrag decoder");
    // The training loop's resume: a checkpoint of this stage at step 1 whose weights are stored as bf16.
    const lm = new LlamaForCausalLM(config.decoder, new Rng(5));
    const opts = (m: LlamaForCausalLM, seen: Float32Array[]) => ({
      stage: "lm",
      model: m,
      config: { steps: 2, lr: 1e-3, saveEvery: 1 },
      outDir: join(dir, "run"),
      modelConfig: config.decoder,
      loss: (_s: number, rng: Rng) => {
        seen.push(m.model.embed_tokens.weight.data.slice());
        const ids = Int32Array.from({ length: 5 }, () => rng.int(40));
        return crossEntropy(m.forward([{ ids: ids.subarray(0, 4) }]).logits, ids.subarray(1));
      },
    });
    let stop = 0;
    await trainLoop({ ...opts(lm, []), shouldStop: () => ++stop === 1 });
    const ck = await loadCheckpoint(join(dir, "run"), { optimizer: true });
    roundToBf16(lm);
    await saveCheckpoint(join(dir, "run"), {
      config: config.decoder,
      tensors: tensorsOf(lm, "BF16"),
      trainingState: ck.trainingState as JsonObject,
      optimizer: ck.optimizer!,
    });
    const seen: Float32Array[] = [];
    const resumed = new LlamaForCausalLM(config.decoder, new Rng(99));
    const state = await trainLoop(opts(resumed, seen));
    assert.equal(state.step, 2);
    assert.deepEqual(seen[0], lm.model.embed_tokens.weight.data, "resume read the bf16 weights as values");
  });
});

test("a REFRAG checkpoint's decoder loads alone, and another decoder replaces it only with the same architecture", async () => {
  await withDir(async (dir) => {
    const model = new RefragModel(config, new Rng(3));
    await saveCheckpoint(join(dir, "refrag"), { config, tensors: tensorsOf(model, "F32") });
    // loadLlama on a REFRAG checkpoint: its decoder, nothing else.
    assertSameParams(model.decoder, await loadLlama(join(dir, "refrag")), "loadLlama(refrag)");
    // replaceDecoder: the decoder's weights change, the encoder and projector stay.
    const other = new LlamaForCausalLM(config.decoder, new Rng(7));
    await saveCheckpoint(join(dir, "dec"), { config: config.decoder, tensors: tensorsOf(other, "F32") });
    const target = await loadRefrag(join(dir, "refrag"));
    await replaceDecoder(target, join(dir, "dec"));
    assertSameParams(other, target.decoder, "replaced decoder");
    assertSameParams(model.encoder, target.encoder, "encoder kept");
    assertSameParams(model.projector, target.projector, "projector kept");
    // A decoder of another architecture (here: RoPE base) is refused, naming the field, and changes nothing.
    await saveCheckpoint(join(dir, "dec2"), {
      config: { ...config.decoder, rope_theta: 500000 },
      tensors: tensorsOf(new LlamaForCausalLM(config.decoder, new Rng(8)), "F32"),
    });
    await assert.rejects(replaceDecoder(target, join(dir, "dec2")), /rope_theta is 500000/);
    assertSameParams(other, target.decoder, "a refused decoder changes nothing");
  });
});

test("weights of the wrong shape, with NaN, or a config asking for far more are refused before building", async () => {
  await withDir(async (dir) => {
    const model = new RefragModel(config, new Rng(3));
    const good = tensorsOf(model, "F32");
    // A transposed embed_tokens has the right element count: only the shape check catches it.
    const t = good.get("decoder.model.embed_tokens.weight")!;
    const transposed = new Map(good).set("decoder.model.embed_tokens.weight", {
      ...t,
      shape: [t.shape[1], t.shape[0]],
    });
    await saveCheckpoint(join(dir, "t"), { config, tensors: transposed });
    await assert.rejects(
      loadRefrag(join(dir, "t")),
      /checkpoint .*\/t: tensor decoder\.model\.embed_tokens\.weight is \[16, 40\], the config implies \[40, 16\]/,
    );
    // NaN in one weight: refused with its name, loaded when explicitly allowed.
    const bad = good.get("projector.linear_1.weight")!;
    const nanData = (bad.data as Float32Array).slice();
    nanData[5] = NaN;
    await saveCheckpoint(join(dir, "n"), {
      config,
      tensors: new Map(good).set("projector.linear_1.weight", { ...bad, data: nanData }),
    });
    await assert.rejects(
      loadRefrag(join(dir, "n")),
      /checkpoint .*\/n: tensor projector\.linear_1\.weight: value NaN at index 5 of \[16, 8\]; refusing non-finite weights/,
    );
    const allowed = await loadRefrag(join(dir, "n"), { allowNonFinite: true });
    assert.ok(Number.isNaN(allowed.projector.linear_1.weight.data[5]));
    // vocab_size 3e7 against a small file: a shape error at once, without allocating the embedding.
    const huge = { ...config, decoder: { ...config.decoder, vocab_size: 30_000_000 } };
    await saveCheckpoint(join(dir, "v"), { config: huge, tensors: good });
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    await assert.rejects(
      loadRefrag(join(dir, "v")),
      /tensor encoder\.embeddings\.word_embeddings\.weight is \[40, 8\], the config implies \[30000000, 8\]|tensor decoder\.model\.embed_tokens\.weight is \[40, 16\], the config implies \[30000000, 16\]/,
    );
    assert.ok(performance.now() - t0 < 5000, "refused quickly");
    // An option the model does not support (found by the fuzzer) names the config file too.
    const scaled = { ...config, decoder: { ...config.decoder, rope_scaling: {} } };
    await saveCheckpoint(join(dir, "s"), { config: scaled, tensors: good });
    await assert.rejects(
      loadRefrag(join(dir, "s")),
      /^Error: config .*\/s\/config\.json: LlamaConfig: rope_scaling/,
    );
    assert.ok(process.memoryUsage().rss - rss0 < 200 * 2 ** 20, "without allocating the model");
  });
});

test("a chunk size beyond the encoder's positions is a config error, not a failure per request", () => {
  assert.throws(
    () => parseRefragConfig({ ...config, chunk_size: 2 * K + 4 }, "cfg.json"),
    /config cfg\.json: chunk_size 12 does not fit the encoder: \[bos\] \+ 12 tokens from position 1 need max_position_embeddings >= 14, the encoder has 12/,
  );
  assert.throws(
    () =>
      parseRefragConfig({ ...config, encoder: { ...config.encoder, bos_token_id: 30_000_000 } }, "cfg.json"),
    /config cfg\.json: "encoder\.bos_token_id" 30000000 is not below vocab_size 40/,
  );
  // withPolicy keeps working (module-to-module copies are not checkpoint loads)
  assert.equal(withPolicy(new RefragModel(config, new Rng(1))).policy !== null, true);
});
