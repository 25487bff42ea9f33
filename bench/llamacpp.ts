// Side-by-side with llama.cpp on the same decoder weights: prefill tokens/s at 1k and 4k prompt tokens and
// decode tokens/s, at the same thread count, f32 weights (and our bf16-weight decode). llama.cpp runs from
// the prebuilt CPU binary of the npm package node-llama-cpp, installed into tools/llamacpp on the first run:
//   npm run bench:llamacpp [-- --shape shipped --threads 1,2 --prompts 1024,4096]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot, setNumThreads } from "../src/engine/native.js";
import { sliceRows } from "../src/engine/ops.js";
import { Rng } from "../src/engine/random.js";
import { noGrad } from "../src/engine/tensor.js";
import { argmax } from "../src/infer/sampling.js";
import { loadCheckpoint } from "../src/io/checkpoint.js";
import type { LlamaConfig } from "../src/io/config.js";
import { KVCache, LlamaForCausalLM } from "../src/models/llama.js";
import { LlamaDecodeStep } from "../src/models/llama_decode.js";
import { SHAPES } from "../src/models/presets.js";
import { writeJson } from "./common.js";

interface Timing {
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Our decoder: prefill of n random tokens through the KV cache, then greedy decode steps (as generate()). */
function timeOurs(model: LlamaForCausalLM, n: number, decode: number, repeats: number): Timing {
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: n }, () => rng.int(model.config.vocab_size));
  const prefill: number[] = [];
  const step: number[] = [];
  for (let r = 0; r < repeats; r++)
    noGrad(() => {
      const cache = new KVCache(model.config, n + decode + 1);
      const t0 = performance.now();
      const h = model.model.forward(model.model.embed([{ ids }]), { cache });
      let tok = argmax(model.logits(sliceRows(h, h.rows - 1, h.rows)).data);
      const t1 = performance.now();
      // Decode as generate() does: the allocation-free step on the same cache.
      const decoder = new LlamaDecodeStep(model);
      const token = new Int32Array(1);
      for (let i = 0; i < decode; i++) {
        token[0] = tok;
        tok = argmax(decoder.step(token, [cache]));
      }
      const t2 = performance.now();
      prefill.push(t1 - t0);
      step.push((t2 - t1) / decode);
    });
  return { prefillTokensPerSec: (n / median(prefill)) * 1000, decodeTokensPerSec: 1000 / median(step) };
}

function timeLlamaCpp(gguf: string, n: number, decode: number, repeats: number, threads: number): Timing {
  const out = execFileSync(
    process.execPath,
    [
      join(packageRoot(), "tools", "llamacpp", "logits.mjs"),
      "--model",
      gguf,
      "--prompt-len",
      String(n),
      "--decode",
      String(decode),
      "--repeats",
      String(repeats),
      "--threads",
      String(threads),
      "--ctx",
      String(n + decode + 8),
      "--batch",
      String(n),
    ],
    { encoding: "utf8", maxBuffer: 256 << 20 },
  );
  const r = JSON.parse(out) as { timing: Timing };
  return r.timing;
}

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "shipped" },
    threads: { type: "string", default: "1,2" },
    prompts: { type: "string", default: "1024,4096" },
    decode: { type: "string", default: "32" },
    repeats: { type: "string", default: "3" },
    out: { type: "string", default: "bench/results/llamacpp.json" },
  },
});
const root = packageRoot();
// A fresh machine: install the harness's own package (pinned versions; llama.cpp's prebuilt CPU binary
// comes from the npm registry, nothing is compiled). `npm install`, not `npm ci`: the lock lists only the
// linux-x64 binary, which newer npm versions refuse under `ci`.
const harness = join(root, "tools", "llamacpp");
if (!existsSync(join(harness, "node_modules", "node-llama-cpp"))) {
  console.error("installing tools/llamacpp (node-llama-cpp, once)…");
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["install", "--no-audit", "--no-fund"], {
    cwd: harness,
    stdio: "inherit",
  });
}
const shape = SHAPES[values.shape];
if (shape === undefined) throw new Error(`unknown shape ${values.shape}`);
const prompts = values.prompts.split(",").map(Number);
const decode = Number(values.decode);
const repeats = Number(values.repeats);
const dir = join(root, "bench", "results", `llamacpp-${shape.name}`);
mkdirSync(dir, { recursive: true });
const d = shape.decoder;
execFileSync(
  process.execPath,
  [
    join(root, "tools", "llamacpp", "random_llama.mjs"),
    "--out",
    dir,
    "--hidden",
    String(d.hidden),
    "--layers",
    String(d.layers),
    "--heads",
    String(d.heads),
    "--kv-heads",
    String(d.kvHeads),
    "--ff",
    String(d.intermediate),
    "--vocab",
    String(shape.vocab),
    "--ctx",
    String(Math.max(...prompts) + decode + 16),
    "--types",
    "f32",
  ],
  { stdio: "inherit" },
);
const ckpt = await loadCheckpoint(join(dir, "checkpoint"));
const model = new LlamaForCausalLM(ckpt.config as LlamaConfig, new Rng(0));
model.loadStateDict(new Map([...ckpt.tensors].map(([k, v]) => [k, v.data as Float32Array])));

interface Row {
  threads: number;
  prompt: number;
  llamaPrefill: number;
  oursPrefill: number;
  llamaDecode: number;
  oursDecode: number;
  oursDecodeBf16: number;
}
const rows: Row[] = [];
for (const threads of values.threads.split(",").map(Number)) {
  setNumThreads(threads);
  for (const n of prompts) {
    const cpp = timeLlamaCpp(join(dir, "model-f32.gguf"), n, decode, repeats, threads);
    model.useBf16Weights(false);
    const ours = timeOurs(model, n, decode, repeats);
    model.useBf16Weights(true);
    const bf16 = timeOurs(model, n, decode, repeats); // decode after the same prompt: the same cache length
    model.useBf16Weights(false);
    const row = {
      threads,
      prompt: n,
      llamaPrefill: cpp.prefillTokensPerSec,
      oursPrefill: ours.prefillTokensPerSec,
      llamaDecode: cpp.decodeTokensPerSec,
      oursDecode: ours.decodeTokensPerSec,
      oursDecodeBf16: bf16.decodeTokensPerSec,
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
}
const f = (x: number) => x.toFixed(1);
console.log(
  `\nrefrag vs llama.cpp, ${shape.name} decoder (C=${d.hidden}, ${d.layers} layers, vocab ${shape.vocab}), f32 weights, batch 1\n`,
);
console.log(
  "threads  prompt  prefill tok/s: llama.cpp  refrag  ratio  |  decode tok/s: llama.cpp  refrag f32  ratio  refrag bf16  bf16/f32",
);
for (const r of rows)
  console.log(
    `${String(r.threads).padStart(7)}  ${String(r.prompt).padStart(6)}  ${f(r.llamaPrefill).padStart(24)}  ${f(r.oursPrefill).padStart(6)}  ${(r.oursPrefill / r.llamaPrefill).toFixed(2).padStart(5)}  |  ${f(r.llamaDecode).padStart(22)}  ${f(r.oursDecode).padStart(10)}  ${(r.oursDecode / r.llamaDecode).toFixed(2).padStart(5)}  ${f(r.oursDecodeBf16).padStart(11)}  ${(r.oursDecodeBf16 / r.oursDecode).toFixed(2).padStart(8)}`,
  );
writeJson(values.out, { date: new Date().toISOString(), shape, decode, repeats, rows });
console.log(`\nwrote ${values.out}`);
