// Run a GGUF in llama.cpp's CPU backend (node-llama-cpp's prebuilt binary) on a fixed token-id prompt.
// Prints JSON: next-token top-k probabilities (softmax of llama.cpp's raw logits, in float64), and timing:
// prefill tokens/s for the prompt and decode tokens/s for greedy steps, at a given thread count.
//
// Usage:
//   node logits.mjs --model m.gguf --tokens 0,15,200,77 [--threads 1] [--decode 16] [--top 10] [--out r.json]
//                   [--kv-type F32|F16] (KV cache type; F32 by default for exact comparisons, llama.cpp's own default is F16)
//   node logits.mjs --model m.gguf --prompt-len 1024 --seed 1 --threads 2 --decode 64 --repeats 3
// --prompt-len draws random ids (seeded) in [0, vocab) instead of --tokens.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    tokens: { type: "string" },
    "prompt-len": { type: "string" },
    seed: { type: "string", default: "1" },
    threads: { type: "string", default: "1" },
    decode: { type: "string", default: "16" },
    top: { type: "string", default: "10" },
    repeats: { type: "string", default: "1" },
    ctx: { type: "string" },
    "kv-type": { type: "string", default: "F32" },
    batch: { type: "string" },
    "full-probs": { type: "boolean", default: false },
    out: { type: "string" },
  },
});
if (args.model === undefined || (args.tokens === undefined && args["prompt-len"] === undefined)) {
  console.error(
    "usage: node logits.mjs --model FILE.gguf (--tokens 1,2,3 | --prompt-len N) [--threads T] [--decode M] [--top K] [--repeats R] [--out FILE]",
  );
  process.exit(2);
}

const threads = Number(args.threads);
const nDecode = Number(args.decode);
const topN = Number(args.top);
const repeats = Math.max(1, Number(args.repeats));

const llama = await getLlama({
  gpu: false,
  build: "never",
  usePrebuiltBinaries: true,
  progressLogs: false,
  logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0, useMmap: true });

function promptIds() {
  if (args.tokens !== undefined) return args.tokens.split(",").map((s) => Number(s.trim()));
  // xorshift32 for a reproducible random prompt (ids 3.. to skip the usual specials)
  let x = Number(args.seed) >>> 0 || 1;
  const n = Number(args["prompt-len"]);
  const V = vocabSize();
  const ids = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    ids.push(3 + (x % (V - 3)));
  }
  return ids;
}

function vocabSize() {
  const md = model.fileInfo.metadata;
  const n = md?.[md?.general?.architecture]?.vocab_size ?? md?.tokenizer?.ggml?.tokens?.length;
  if (typeof n !== "number") throw new Error("cannot tell the vocabulary size from the GGUF metadata");
  return n;
}

const ids = promptIds();
const ctxSize = Number(args.ctx ?? Math.max(256, ids.length + nDecode + 16));
const batchSize = Number(args.batch ?? Math.min(ctxSize, Math.max(ids.length, 1)));

const runs = [];
let first = null;
for (let r = 0; r < repeats; r++) {
  const context = await model.createContext({
    contextSize: ctxSize,
    batchSize,
    threads,
    sequences: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: args["kv-type"],
    experimentalKvCacheValueType: args["kv-type"],
  });
  const seq = context.getSequence();
  const input = ids.map((id, i) =>
    i === ids.length - 1 ? [id, { generateNext: { logits: true, token: true } }] : id,
  );
  const t0 = performance.now();
  const res = await seq.controlledEvaluate(input);
  const t1 = performance.now();
  const last = res[ids.length - 1];
  if (last?.next?.logits === undefined)
    throw new Error("llama.cpp returned no logits for the last prompt token");
  if (first === null) first = last.next;
  // Greedy decode, one token per call.
  let tok = last.next.token;
  const decoded = [];
  const t2 = performance.now();
  for (let i = 0; i < nDecode && tok !== null && tok !== undefined; i++) {
    decoded.push(tok);
    const out = await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]);
    tok = out[0]?.next?.token;
  }
  const t3 = performance.now();
  runs.push({ prefillMs: t1 - t0, decodeMs: t3 - t2, decoded: decoded.length, decodedIds: decoded });
  await context.dispose();
}

// Softmax over the full raw logit vector, in float64.
const logits = new Float64Array(vocabSize());
for (const [id, v] of first.logits) logits[id] = v;
if (first.logits.size !== logits.length)
  throw new Error(`llama.cpp returned ${first.logits.size} logits, vocab has ${logits.length}`);
let m = -Infinity;
for (const v of logits) m = Math.max(m, v);
let z = 0;
const probs = Array.from(logits, (v) => {
  const e = Math.exp(v - m);
  z += e;
  return e;
}).map((e) => e / z);
const top = probs
  .map((p, id) => ({ id, p }))
  .sort((a, b) => b.p - a.p)
  .slice(0, topN);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const prefillMs = median(runs.map((r) => r.prefillMs));
const decodeMs = median(runs.map((r) => r.decodeMs / Math.max(1, r.decoded)));
const result = {
  engine: "llama.cpp via node-llama-cpp",
  model: args.model,
  threads,
  kvCacheType: args["kv-type"],
  promptTokens: ids.length,
  prompt: ids.length <= 64 ? ids : undefined,
  top,
  greedy: runs[0].decodedIds,
  probs: args["full-probs"] ? probs : undefined,
  timing: {
    repeats,
    prefillMs,
    prefillTokensPerSec: (ids.length / prefillMs) * 1000,
    decodeMsPerToken: decodeMs,
    decodeTokensPerSec: 1000 / decodeMs,
    decodeSteps: runs[0].decoded,
    runs: runs.map(({ prefillMs: p, decodeMs: d, decoded }) => ({ prefillMs: p, decodeMs: d, decoded })),
  },
};
const text = JSON.stringify(result, null, 2);
if (args.out !== undefined) await writeFile(args.out, text + "\n");
console.log(text);
await model.dispose();
await llama.dispose();
