// End-to-end check of the GGUF exporter against llama.cpp:
// 1. build a tiny random LLaMA (width 64, 2 layers, 4 heads, 2 kv heads) in Hugging Face layout with a
//    small byte-level BPE tokenizer.json, saved as a checkpoint folder by src/io;
// 2. export it to GGUF (f32, and f16 / bf16 weights);
// 3. run llama.cpp (logits.mjs) and the plain-JS reference forward (ref_forward.mjs) on a fixed prompt;
// 4. require top-10 ids equal and every probability within the tolerance (1e-3); exit 1 otherwise.
// Needs `npm run build` (tsc) in the repository root and `npm install` here.
//
// Usage: node check.mjs [--keep DIR] [--types f32,f16,bf16,f32-tied] [--seed N]
// "-tied": tied embeddings (no lm_head, no output.weight) and rope_theta 500000, to cover those paths.
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Rng } from "../../dist/src/engine/random.js";
import { saveCheckpoint } from "../../dist/src/io/checkpoint.js";
import { parseLlamaConfig } from "../../dist/src/io/config.js";
import { exportCheckpointToGguf, bytesToUnicode } from "../../dist/src/io/gguf_llama.js";
import { tinyTokenizerJson, TINY_TOKENIZER_SIZE } from "../../dist/test/io/tiny_llama.js";
import { referenceNextToken, topK } from "./ref_forward.mjs";
import { loadCheckpoint } from "../../dist/src/io/checkpoint.js";
import { LlamaForCausalLM } from "../../dist/src/models/llama.js";
import { noGrad } from "../../dist/src/engine/tensor.js";
import { randomLlamaTensors } from "./random_llama.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    keep: { type: "string" },
    types: { type: "string", default: "f32,f16,bf16,f32-tied" },
    seed: { type: "string", default: "1234" },
    tol: { type: "string", default: "1e-3" },
  },
});
const tol = Number(args.tol);

const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  vocab_size: TINY_TOKENIZER_SIZE + 21, // 300: the tokenizer's 279 tokens plus padded rows
  tie_word_embeddings: false,
  bos_token_id: 0,
  eos_token_id: 1,
  pad_token_id: 2,
  torch_dtype: "float32",
};
const PROMPT = [0, 15, 200, 77, 3, 150, 260, 42, 9, 101, 278, 5, 33];

async function runLlamaCpp(gguf, ids) {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(here, "logits.mjs"),
      "--model",
      gguf,
      "--tokens",
      ids.join(","),
      "--threads",
      "1",
      "--decode",
      "8",
      "--full-probs",
    ],
    {
      maxBuffer: 64 << 20,
    },
  );
  return JSON.parse(stdout);
}

// Next-token probabilities from refrag's own decoder (src/models/llama.ts) on the f32 checkpoint.
async function refragNextToken(ck, ids) {
  const { config, tensors } = await loadCheckpoint(ck);
  const model = new LlamaForCausalLM(config, new Rng(0));
  model.loadStateDict(new Map([...tensors].map(([k, v]) => [k, v.data])));
  const logits = noGrad(() => model.forward([{ ids: Int32Array.from(ids) }]).logits);
  const V = config.vocab_size;
  const last = logits.data.subarray(logits.data.length - V);
  const mx = Math.max(...last);
  const e = Array.from(last, (x) => Math.exp(x - mx));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

const dir = args.keep ?? (await mkdtemp(join(tmpdir(), "refrag-llamacpp-")));
await mkdir(dir, { recursive: true });
let failed = false;
const rows = [];
try {
  for (const variant of args.types.split(",")) {
    const [type, tied] = variant.split("-");
    const dtype = { f32: "F32", f16: "F16", bf16: "BF16" }[type];
    if (dtype === undefined || (tied !== undefined && tied !== "tied"))
      throw new Error(`unknown type ${variant}`);
    const config = tied === undefined ? CONFIG : { ...CONFIG, tie_word_embeddings: true, rope_theta: 500000 };
    const cfg = parseLlamaConfig(config);
    const rng = new Rng(Number(args.seed));
    const ck = join(dir, `tiny-${variant}`);
    await saveCheckpoint(ck, {
      config,
      tensors: randomLlamaTensors(cfg, rng, dtype),
      tokenizerJson: tinyTokenizerJson(bytesToUnicode()),
    });
    const gguf = join(dir, `tiny-${variant}.gguf`);
    await exportCheckpointToGguf(ck, gguf, { weightType: type, name: `refrag-tiny-${variant}` });
    const ours = await referenceNextToken(ck, PROMPT, { emulateGgml: true });
    const theirs = await runLlamaCpp(gguf, PROMPT);
    const refTop = topK(ours, 10).map((x) => x.id);
    const cppTop = theirs.top.map((x) => x.id);
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs.probs[i]));
    const topEqual = refTop.length === 10 && refTop.every((id, i) => id === cppTop[i]);
    // refrag's decoder against llama.cpp (f32 weights: both compute in f32 from identical weights).
    let oursTopEqual = null;
    let oursMaxDiff = null;
    if (type === "f32") {
      const mine = await refragNextToken(ck, PROMPT);
      const mineTop = topK(mine, 10).map((x) => x.id);
      oursTopEqual = mineTop.every((id, i) => id === cppTop[i]);
      oursMaxDiff = 0;
      for (let i = 0; i < mine.length; i++)
        oursMaxDiff = Math.max(oursMaxDiff, Math.abs(mine[i] - theirs.probs[i]));
    }
    const ok = topEqual && maxDiff <= tol && (oursTopEqual === null || (oursTopEqual && oursMaxDiff <= tol));
    failed ||= !ok;
    rows.push({
      type: variant,
      ok,
      topEqual,
      maxAbsProbDiff: maxDiff,
      refragTopEqual: oursTopEqual,
      refragMaxAbsProbDiff: oursMaxDiff,
      top1: [refTop[0], ours[refTop[0]]],
      refTop10: refTop,
      llamaTop10: cppTop,
      llamaGreedy: theirs.greedy,
    });
  }
} finally {
  if (args.keep === undefined) await rm(dir, { recursive: true, force: true });
}
console.log(
  "type      top-10 equal  max |p_ref - p_llama.cpp|   top-1 (id, p)        refrag decoder vs llama.cpp   result",
);
for (const r of rows) {
  console.log(
    `${r.type.padEnd(9)} ${String(r.topEqual).padEnd(13)} ${r.maxAbsProbDiff.toExponential(3).padEnd(27)} ${`${r.top1[0]}, ${r.top1[1].toFixed(4)}`.padEnd(20)} ${(r.refragTopEqual === null ? "-" : `top-10 ${r.refragTopEqual ? "equal" : "DIFFER"}, max ${r.refragMaxAbsProbDiff.toExponential(2)}`).padEnd(29)} ${r.ok ? "ok" : "FAIL"}`,
  );
  if (!r.topEqual)
    console.log(`  ours:      ${r.refTop10.join(" ")}\n  llama.cpp: ${r.llamaTop10.join(" ")}`);
}
console.log(JSON.stringify({ tolerance: tol, prompt: PROMPT, results: rows }));
console.log(`${rows.filter((r) => r.ok).length} passed, ${rows.filter((r) => !r.ok).length} failed`);
process.exit(failed ? 1 : 0);
