// Training throughput of every stage, measured before choosing model sizes and step counts: one optimizer
// step's worth of work (forward, backward, AdamW on the trainable parameters) at the shapes each stage runs,
// for the shipped decoder and several encoder sizes. Reports ms per step and context tokens per second.
//   npm run bench:stages [-- --threads 1 --steps 3 --encoders 128x2,256x2,256x4]
import { parseArgs } from "node:util";
import { concatRows, crossEntropy, sliceRows } from "../src/engine/ops.js";
import { setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { noGrad, type Tensor } from "../src/engine/tensor.js";
import { parseRefragConfig } from "../src/io/config.js";
import { SHAPES } from "../src/models/presets.js";
import { policyConfig } from "../src/models/policy.js";
import { chunkTokens, RefragModel } from "../src/models/refrag.js";
import { AdamW, clipGradNorm } from "../src/train/optimizer.js";
import { positiveInt } from "../src/cli/args.js";
import { writeJson } from "./common.js";

interface StageRow {
  stage: string;
  shape: string;
  threads: number;
  /** Median ms per optimizer step. */
  ms: number;
  /** Tokens of text the step reads (context + continuation) per second. */
  tokensPerSecond: number;
  tokensPerStep: number;
}

const V = 8192;
const K = 16;

function model(
  enc: { hidden: number; layers: number },
  maxPositions: number,
  withPolicy = false,
): RefragModel {
  const d = SHAPES.shipped.decoder;
  const config = parseRefragConfig({
    model_type: "refrag",
    chunk_size: K,
    decoder: {
      model_type: "llama",
      vocab_size: V,
      hidden_size: d.hidden,
      num_hidden_layers: d.layers,
      num_attention_heads: d.heads,
      num_key_value_heads: d.kvHeads,
      intermediate_size: d.intermediate,
      max_position_embeddings: maxPositions,
      tie_word_embeddings: true,
    },
    encoder: {
      model_type: "roberta",
      vocab_size: V,
      hidden_size: enc.hidden,
      num_hidden_layers: enc.layers,
      num_attention_heads: Math.max(1, enc.hidden / 64),
      intermediate_size: 4 * enc.hidden,
      max_position_embeddings: 2 * K + 4,
      type_vocab_size: 1,
      pad_token_id: 0,
      bos_token_id: 1,
    },
    projector: {
      model_type: "refrag_projector",
      input_size: enc.hidden,
      hidden_size: d.hidden,
      output_size: d.hidden,
      hidden_act: "gelu",
    },
    policy: withPolicy ? policyConfig(enc.hidden) : null,
  });
  return new RefragModel(config, new Rng(0));
}

/** Median ms of `steps` optimizer steps (after one warm-up step) of `loss` over the trainable parameters. */
function timeSteps(
  m: RefragModel,
  trainable: (n: string) => boolean,
  loss: (rng: Rng) => Tensor,
  steps: number,
) {
  const params = new Map([...m.namedParameters()].filter(([n]) => trainable(n)));
  for (const [n, p] of m.namedParameters()) p.requiresGrad = params.has(n);
  const opt = new AdamW(params, { lr: 1e-5 });
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const l = loss(new Rng(s));
    opt.zeroGrad();
    l.backward();
    clipGradNorm(params.values(), 1);
    opt.stepAll(1e-5);
    if (s > 0) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const randomIds = (n: number, rng: Rng) => Int32Array.from({ length: n }, () => 16 + rng.int(V - 16));

/** REFRAG input for B sequences of n chunks (+ m predicted tokens): the loss on the predicted/reconstructed tokens. */
function refragLoss(m: RefragModel, B: number, n: number, predict: number) {
  return (rng: Rng) => {
    const ctx = Array.from({ length: B }, () => randomIds(n * K, rng));
    const chunks = ctx.flatMap((c) => chunkTokens(c, K));
    const vectors = m.project(m.encodeChunks(chunks));
    const parts: Tensor[] = [];
    let rows = 0;
    for (let b = 0; b < B; b++) {
      parts.push(sliceRows(vectors, b * n, (b + 1) * n));
      parts.push(m.decoder.model.embed([{ ids: randomIds(predict - 1, rng) }]));
      rows = n + predict - 1;
    }
    const hidden = m.decoder.model.forward(concatRows(parts), { batch: B });
    const targets = new Int32Array(B * rows).fill(-100);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < predict; t++) targets[b * rows + n - 1 + t] = 16 + rng.int(V - 16);
    return crossEntropy(m.decoder.logits(hidden), targets);
  };
}

function run(threads: number, steps: number, encoders: { hidden: number; layers: number }[]): StageRow[] {
  setNumThreads(threads);
  const rows: StageRow[] = [];
  const add = (stage: string, shape: string, ms: number, tokensPerStep: number) => {
    const row = { stage, shape, threads, ms, tokensPerSecond: (tokensPerStep / ms) * 1000, tokensPerStep };
    rows.push(row);
    console.log(
      `${stage.padEnd(22)} ${shape.padEnd(34)} ${threads}T ${ms.toFixed(0).padStart(7)} ms/step ${row.tokensPerSecond.toFixed(0).padStart(6)} tok/s`,
    );
  };
  const base = encoders[0];
  // Decoder pre-training: 4,096 tokens per step at the short window and at the long one.
  for (const [T, B] of [
    [512, 8],
    [2560, 2],
  ]) {
    const m = model(base, 4096);
    const ms = timeSteps(
      m,
      (n) => n.startsWith("decoder."),
      (rng) => {
        const ids = randomIds(B * T, rng);
        return crossEntropy(m.decoder.forward([{ ids }], { batch: B }).logits, randomIds(B * T, rng));
      },
      steps,
    );
    add("pretrain-decoder", `T=${T} B=${B}`, ms, B * T);
  }
  // Reconstruction (decoder frozen) at the curriculum's short and long levels, per encoder size.
  for (const enc of encoders)
    for (const [n, B] of [
      [16, 16],
      [128, 2],
    ]) {
      const m = model(enc, 4096);
      const ms = timeSteps(
        m,
        (x) => x.startsWith("encoder.") || x.startsWith("projector."),
        refragLoss(m, B, n, n * K),
        steps,
      );
      add("reconstruct", `enc ${enc.hidden}x${enc.layers} n=${n} B=${B}`, ms, B * n * K);
    }
  // Continual pre-training (everything trains): 128 chunks + 256 continuation tokens.
  for (const enc of encoders) {
    const m = model(enc, 4096);
    const ms = timeSteps(m, (x) => !x.startsWith("policy."), refragLoss(m, 2, 128, 256), steps);
    add("cpt", `enc ${enc.hidden}x${enc.layers} n=128 o=256 B=2`, ms, 2 * (128 * K + 256));
  }
  // Policy: one rollout = G = 4 forward passes of the frozen model per context (the reward), 8 contexts.
  {
    const m = model(base, 4096, true);
    const n = 128;
    const o = 256;
    const times: number[] = [];
    for (let s = 0; s <= steps; s++) {
      const rng = new Rng(s);
      const t0 = performance.now();
      noGrad(() => {
        for (let c = 0; c < 8; c++) {
          const chunks = chunkTokens(randomIds(n * K, rng), K);
          const projected = m.project(m.encodeChunks(chunks));
          for (let g = 0; g < 4; g++) {
            const expand = Array.from({ length: n }, () => rng.uniform() < 1 / 16);
            const segs = m.buildSegments({ chunks, projected, expand, after: randomIds(o - 1, rng) });
            m.decoder.logits(m.decoder.model.forward(m.decoder.model.embed(segs)));
          }
        }
      });
      if (s > 0) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    add(
      "policy (rollout)",
      `8 contexts x G=4, n=128 o=256`,
      times[Math.floor(times.length / 2)],
      8 * (n * K + o),
    );
  }
  // Fine-tuning: 8 examples of 8 passages (~ 8 x 128 tokens, compressed) + question + answer.
  {
    const m = model(base, 4096);
    const ms = timeSteps(m, (x) => !x.startsWith("policy."), refragLoss(m, 8, 64, 48), steps);
    add("finetune", `8 examples, 64 chunks + 48 tokens`, ms, 8 * (64 * K + 48));
  }
  return rows;
}

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "1" },
    steps: { type: "string", default: "3" },
    encoders: { type: "string", default: "128x2,256x2,256x4" },
    out: { type: "string", default: "bench/results/stages.json" },
  },
});
const encoders = values.encoders.split(",").map((s) => {
  const [hidden, layers] = s.split("x").map(Number);
  if (!(hidden > 0 && layers > 0 && hidden % 64 === 0))
    throw new Error(`--encoders: bad shape "${s}" (WIDTHxLAYERS, width a multiple of 64)`);
  return { hidden, layers };
});
const rows: StageRow[] = [];
const steps = positiveInt("--steps", values.steps);
for (const t of values.threads.split(",")) rows.push(...run(positiveInt("--threads", t), steps, encoders));
writeJson(values.out, { rows, date: new Date().toISOString() });
console.log(`wrote ${values.out}`);
