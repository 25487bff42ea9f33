// Where the 32-stream serving run's time goes, engine only (no HTTP): the prompts bench:serve sends
// (5 README passages, every chunk compressed), prepared by the pipeline; each request's prefill alone and
// all of them packed in one forward (the engine's batched prefill); 32-row decode steps with every kernel
// call timed by family; one-row steps for comparison; GFLOP/s against the machine's peak (peakGflops).
// Wall and CPU milliseconds: run it with the machine's other jobs paused and read the wall figures.
//   npm run bench:serve-profile [-- --rows 32 --tokens 64 --kv-cache bf16]
import { parseArgs } from "node:util";
import { choice, positiveInt } from "../src/cli/args.js";
import { kernels } from "../src/engine/kernels/index.js";
import { peakGflops } from "../src/engine/kernels/gemm.js";
import { setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { noGrad } from "../src/engine/tensor.js";
import { sliceRows } from "../src/engine/ops.js";
import { RefragPipeline } from "../src/infer/pipeline.js";
import { KV_CACHE_DTYPES, KVCache, type Segment } from "../src/models/llama.js";
import { LlamaDecodeStep } from "../src/models/llama_decode.js";
import { LlamaPrefill } from "../src/models/llama_prefill.js";
import { preset, refragConfigFor } from "../src/models/presets.js";
import { RefragModel, segmentLength } from "../src/models/refrag.js";
import { vectorCacheFor } from "../src/rag/vectors.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { defaultTokenizerPath } from "../src/tokenizer/pipeline.js";
import { readmeParagraphs } from "./common.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "32" },
    tokens: { type: "string", default: "64" },
    "kv-cache": { type: "string", default: "bf16" },
  },
});
setNumThreads(1);
const R = positiveInt("--rows", values.rows);
const T = positiveInt("--tokens", values.tokens);
// The server's KV cache storage by default (RagServiceOptions.kvCache).
const kv = choice("--kv-cache", values["kv-cache"], KV_CACHE_DTYPES);
const shape = preset("shipped");
const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
const model = new RefragModel(
  refragConfigFor({ ...shape, vocab: tokenizer.vocabSize }, 16, 2048),
  new Rng(1),
);
const passages = readmeParagraphs(300, 1500)
  .slice(0, 5)
  .map((text, i) => ({ id: `readme#${i}`, text }));
const pipeline = new RefragPipeline(model, tokenizer, vectorCacheFor(model, null));
const d = model.decoder;
const c = d.config;

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const prompts: Segment[][] = [];
let t = cpu();
await pipeline.prepare({ question: "warm-up?", passages, selection: { mode: "none" } });
const warmPrepare = cpu() - t;
t = cpu();
for (let i = 0; i < R; i++) {
  const p = await pipeline.prepare({
    question: `Question ${i + 1}: what does passage ${(i % 5) + 1} say?`,
    passages,
    selection: { mode: "none" },
  });
  prompts.push(p.segments);
}
const prepareMs = (cpu() - t) / R;
const positions = prompts.map((p) => segmentLength(p));
const P = positions.reduce((a, b) => a + b, 0) / R;

// Per-family timing of kernel calls (wrapping the active kernels' functions).
const fam = new Map<string, { ms: number; calls: number }>();
let timing = false;
for (const [group, obj] of Object.entries(kernels) as [string, unknown][]) {
  if (typeof obj !== "object" || obj === null) continue;
  const o = obj as Record<string, unknown>;
  for (const [name, fn] of Object.entries(o)) {
    if (typeof fn !== "function") continue;
    const f = fn as (...a: unknown[]) => unknown;
    o[name] = (...a: unknown[]) => {
      if (!timing) return f(...a);
      const t0 = performance.now();
      const r = f(...a);
      const key = `${group}.${name}${name.startsWith("gemv") ? ` N=${String(a[1])}` : ""}`;
      const e = fam.get(key) ?? { ms: 0, calls: 0 };
      e.ms += performance.now() - t0;
      e.calls++;
      fam.set(key, e);
      return r;
    };
  }
}

const need = Math.max(...positions) + T + 1;
const prefill = (p: Segment[]) => {
  const cache = new KVCache(c, need, kv);
  const logits = noGrad(() => {
    const h = d.model.forward(d.model.embed(p), { cache });
    return d.logits(sliceRows(h, h.rows - 1, h.rows)).data;
  });
  return { cache, logits };
};
// Warm-up: one prefill, a few steps of each size.
{
  const w = prefill(prompts[0]);
  const s1 = new LlamaDecodeStep(d, 1);
  for (let i = 0; i < 4; i++) s1.step(Int32Array.of(5), [w.cache]);
}
const C = c.hidden_size;
const I = c.intermediate_size;
const V = c.vocab_size;
const kvDim = c.num_key_value_heads * (C / c.num_attention_heads);
const flopPos = 2 * c.num_hidden_layers * (C * C * 2 + C * kvDim * 2 + 3 * C * I); // per position, no head
const flopHead = 2 * C * V;

// Prefill each request alone (then again with its kernels timed).
t = cpu();
const wall0 = performance.now();
const runs = prompts.map(prefill);
const prefillMs = (cpu() - t) / R;
const prefillWall = (performance.now() - wall0) / R;
// All R prompts in one packed forward (what the engine does when they join together).
const prefillPass = new LlamaPrefill(d);
const packed = () =>
  noGrad(() =>
    prefillPass.run(
      prompts,
      prompts.map(() => new KVCache(c, need, kv)),
    ),
  );
packed();
t = cpu();
const wallP = performance.now();
packed();
const packedMs = (cpu() - t) / R;
const packedWall = (performance.now() - wallP) / R;
timing = true;
packed();
timing = false;
const famPacked = new Map(fam);
fam.clear();
timing = true;
for (let i = 0; i < 4; i++) prefill(prompts[i]);
timing = false;
const famP = new Map(fam);
fam.clear();

// Decode: T - 1 steps of R rows, kernels timed.
const stepR = new LlamaDecodeStep(d, R);
const caches = runs.map((r) => r.cache);
const tokens = Int32Array.from(runs, (r) => r.logits.indexOf(Math.max(...r.logits)));
timing = true;
t = cpu();
const w1 = performance.now();
for (let s = 0; s < T - 1; s++) {
  const lg = stepR.step(tokens, caches);
  for (let r = 0; r < R; r++) tokens[r] = kernels.pointwise.argmax(lg.subarray(r * V, (r + 1) * V));
}
const stepMs = (cpu() - t) / (T - 1);
const stepWall = (performance.now() - w1) / (T - 1);
timing = false;
const famR = new Map(fam);
fam.clear();

// One-row steps for the first request, from a fresh prefill.
const one = prefill(prompts[0]);
const step1 = new LlamaDecodeStep(d, 1);
t = cpu();
const w2 = performance.now();
let tok = 5;
for (let s = 0; s < T - 1; s++) {
  const lg = step1.step(Int32Array.of(tok), [one.cache]);
  tok = kernels.pointwise.argmax(lg);
}
const step1Ms = (cpu() - t) / (T - 1);
const step1Wall = (performance.now() - w2) / (T - 1);

const peak = peakGflops(1, 0.5);
const gf = (flop: number, ms: number) => (flop / ms / 1e6).toFixed(1);
console.log(
  `peak ${peak.toFixed(1)} GFLOP/s (1 thread); prompt positions mean ${P.toFixed(1)} (min ${Math.min(...positions)}, max ${Math.max(...positions)})`,
);
console.log(
  `prepare (pipeline, vectors cached) ${prepareMs.toFixed(2)} ms per request (first ${warmPrepare.toFixed(1)})`,
);
console.log(
  `prefill alone ${prefillMs.toFixed(2)} ms CPU (${prefillWall.toFixed(2)} wall), ${gf(P * flopPos + flopHead, prefillWall)} GFLOP/s of linear layers (wall)`,
);
console.log(
  `prefill packed (${R} prompts in one forward) ${packedMs.toFixed(2)} ms CPU (${packedWall.toFixed(2)} wall) per request, ${gf(P * flopPos + flopHead, packedWall)} GFLOP/s (wall)`,
);
console.log(
  `${R}-row step ${stepMs.toFixed(2)} ms CPU (${stepWall.toFixed(2)} wall), ${gf(R * (flopPos + flopHead), stepWall)} GFLOP/s; 1-row step ${step1Ms.toFixed(3)} ms CPU (${step1Wall.toFixed(3)} wall)`,
);
// Wall times: run it with the machine's other jobs paused (CPU time also counts V8's helper threads).
const alone = prefillWall + (T - 1) * step1Wall;
console.log(
  `per request (wall): alone ${prefillWall.toFixed(2)} prefill + ${((T - 1) * step1Wall).toFixed(2)} steps; at ${R} streams ${prefillWall.toFixed(2)} prefill alone or ${packedWall.toFixed(2)} packed + ${(((T - 1) * stepWall) / R).toFixed(2)} (${T - 1} steps / ${R})`,
);
console.log(
  `engine-only ratio, ${R} streams / 1: ${(alone / (prefillWall + ((T - 1) * stepWall) / R)).toFixed(2)}x with each prefill alone, ${(alone / (packedWall + ((T - 1) * stepWall) / R)).toFixed(2)}x packed`,
);
const table = (m: Map<string, { ms: number; calls: number }>, n: number, wall: number) => {
  let sum = 0;
  for (const [k, e] of [...m].sort((a, b) => b[1].ms - a[1].ms)) {
    sum += e.ms;
    console.log(`  ${(e.ms / n).toFixed(3).padStart(7)}  ${String(e.calls / n).padStart(4)}  ${k}`);
  }
  console.log(`  ${(sum / n).toFixed(3).padStart(7)}  total in kernels; wall ${wall.toFixed(3)}`);
};
console.log(`\nprefill by kernel (ms per request, calls per request):`);
table(famP, 4, prefillWall);
console.log(`\npacked prefill by kernel (ms per request, calls per request):`);
table(famPacked, R, packedWall);
console.log(`\n${R}-row step by kernel (ms per step, calls per step):`);
table(famR, T - 1, stepWall);
