// A/B of one decode token: the module forward (Tensors, tape checks, fresh buffers) against the
// allocation-free LlamaDecodeStep, interleaved in one process, on the shipped shape with random weights;
// a batched step of R rows against R single-row steps; and the step's two weight products, gemvRows
// (dot products on W) against gemvKMajor (fma chains on the transposed W), for one row and for R rows,
// same weights. Prints medians and ratios (noisy machines: read the ratios).
//   npm run bench:decode [-- --shape shipped --context 64 --rows 32 --rounds 7 --bf16]
import { parseArgs } from "node:util";
import { positiveInt } from "../src/cli/args.js";
import { setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { noGrad } from "../src/engine/tensor.js";
import { llamaConfig, KVCache, LlamaForCausalLM } from "../src/models/llama.js";
import { type DecodeKernel, LlamaDecodeStep } from "../src/models/llama_decode.js";
import { preset } from "../src/models/presets.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "shipped" },
    threads: { type: "string", default: "1" },
    context: { type: "string", default: "64" },
    rows: { type: "string", default: "32" },
    steps: { type: "string", default: "16" },
    rounds: { type: "string", default: "7" },
    bf16: { type: "boolean", default: false },
  },
});
setNumThreads(positiveInt("--threads", values.threads));
const ctx = positiveInt("--context", values.context);
const R = positiveInt("--rows", values.rows);
const steps = positiveInt("--steps", values.steps);
const rounds = positiveInt("--rounds", values.rounds);
const s = preset(values.shape);
const d = s.decoder;
const model = new LlamaForCausalLM(
  llamaConfig({
    vocab_size: s.vocab,
    hidden_size: d.hidden,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    intermediate_size: d.intermediate,
    max_position_embeddings: ctx + rounds * steps * 4 + 8,
  }),
  new Rng(1),
);
if (values.bf16) model.useBf16Weights();
const rng = new Rng(2);
const ids = (n: number) => Int32Array.from({ length: n }, () => rng.int(s.vocab));
const cap = ctx + rounds * steps * 4 + 8;
/** A cache holding ctx positions of a random prompt. */
function primed(): KVCache {
  const cache = new KVCache(model.config, cap);
  noGrad(() => model.model.forward(model.model.embed([{ ids: ids(ctx) }]), { cache }));
  return cache;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall and CPU milliseconds per step of `steps` calls of fn (CPU time: less disturbed by other jobs). */
function timed(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) fn();
  const wall = (performance.now() - t0) / steps;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1000 / steps];
}

const oneCache = primed();
const oneStep = {
  kmajor: new LlamaDecodeStep(model, 1, "kmajor"),
  gemvRows: new LlamaDecodeStep(model, 1, "gemvRows"),
};
const tok = Int32Array.of(5);
function viaForward(): [number, number] {
  const len = oneCache.length;
  const t = timed(() =>
    noGrad(() => model.logits(model.model.forward(model.model.embed([{ ids: tok }]), { cache: oneCache }))),
  );
  oneCache.truncate(len);
  return t;
}
function viaStep(kernel: DecodeKernel = "kmajor"): [number, number] {
  const len = oneCache.length;
  const t = timed(() => oneStep[kernel].step(tok, [oneCache]));
  oneCache.truncate(len);
  return t;
}
const caches = Array.from({ length: R }, primed);
const stepR = {
  kmajor: new LlamaDecodeStep(model, R, "kmajor"),
  gemvRows: new LlamaDecodeStep(model, R, "gemvRows"),
};
const toks = Int32Array.from({ length: R }, (_, i) => 5 + i);
function batched(kernel: DecodeKernel = "kmajor"): [number, number] {
  const t = timed(() => stepR[kernel].step(toks, caches));
  for (const c of caches) c.truncate(ctx);
  return t;
}
// Warm-up (the K-major step transposes each weight on first use), and the two products' largest logit
// difference on the same step.
const maxDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const logitsA = stepR.gemvRows.step(toks, caches).slice();
for (const c of caches) c.truncate(ctx);
const logitsB = stepR.kmajor.step(toks, caches);
for (const c of caches) c.truncate(ctx);
const diff = maxDiff(logitsA, logitsB);
viaStep("gemvRows");
viaStep("kmajor");
const runs: [number, number][][] = [[], [], [], [], []];
for (let r = 0; r < rounds; r++) {
  runs[0].push(viaForward());
  runs[1].push(viaStep("gemvRows"));
  runs[2].push(viaStep("kmajor"));
  runs[3].push(batched("gemvRows"));
  runs[4].push(batched("kmajor"));
}
console.log(
  `${s.name} decoder, context ${ctx}, ${values.bf16 ? "bf16" : "f32"} weights, ${values.threads} thread(s), medians of ${rounds} rounds × ${steps} steps`,
);
for (const [k, what] of [
  [0, "wall"],
  [1, "CPU"],
] as const) {
  const [fa, f1r, fb, fcr, fc] = runs.map((xs) => median(xs.map((x) => x[k])));
  console.log(`${what} time:`);
  console.log(`  one token, module forward:   ${fa.toFixed(3)} ms`);
  console.log(`  one token, LlamaDecodeStep:  ${fb.toFixed(3)} ms   (${(fa / fb).toFixed(2)}× faster)`);
  console.log(
    `  ${R} rows in one step:        ${fc.toFixed(3)} ms = ${(fc / R).toFixed(3)} ms/row   (${((fb * R) / fc).toFixed(2)}× the throughput of single-row steps)`,
  );
  console.log(`  products, gemvRows → gemvKMajor (same weights):`);
  console.log(`    one row:  ${f1r.toFixed(3)} → ${fb.toFixed(3)} ms   (${(f1r / fb).toFixed(2)}× faster)`);
  console.log(`    ${R} rows:  ${fcr.toFixed(3)} → ${fc.toFixed(3)} ms   (${(fcr / fc).toFixed(2)}× faster)`);
}
console.log(`largest |logit difference| gemvRows vs gemvKMajor, ${R} rows: ${diff.toExponential(2)}`);
