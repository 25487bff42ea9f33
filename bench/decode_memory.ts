// The single-row decode step against the memory it must read: one thread's measured read bandwidth, each
// of the step's weight products (gemvKMajor, R = 1) and one layer's attention (attentionDecodeRows, R = 1)
// with its operands in cache ("hot") and streamed from memory ("cold": the calls cycle over copies
// totalling 4× the last-level cache), the sum of the cold kernels for one token, and the token-rate
// ceiling the bandwidth sets for the bytes a token reads (every weight once, plus K and V of every cached
// position). Prints a table, writes bench/results/decode_memory.json.
//   npm run bench:decode-memory [-- --shape shipped --contexts 1024,4096 --threads 1]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { positiveInt } from "../src/cli/args.js";
import { nativeGemm, readGBps } from "../src/engine/kernels/gemm.js";
import { kernels } from "../src/engine/kernels/index.js";
import { packageRoot, setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { preset } from "../src/models/presets.js";
import { type BenchRow, printTable, timeMedian, writeJson } from "./common.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "shipped" },
    contexts: { type: "string", default: "1024,4096" },
    threads: { type: "string", default: "1" },
    out: { type: "string", default: join(packageRoot(), "bench", "results", "decode_memory.json") },
  },
});
const k = nativeGemm;
if (k === null) throw new Error("bench decode-memory: native addon unavailable (run `npm run build:native`)");
const threads = positiveInt("--threads", values.threads);
setNumThreads(threads);
const s = preset(values.shape);
const d = s.decoder;
const C = d.hidden;
const kvDim = d.kvHeads * (C / d.heads);
const COLD_BYTES = 128 << 20; // 4× a 32 MiB L3
const rng = new Rng(3);

const big = new Float32Array(COLD_BYTES / 2).fill(1); // filled: untouched pages would all read as one zero page
const gbps = readGBps(big, 5);
const rows: BenchRow[] = [{ name: `memory read ${big.byteLength >> 20} MiB`, threads, ms: 0, gbps }];

// The step's products, y[N] = x[K] · Wt[K, N]: [N, K, products per token].
const products: [string, number, number, number][] = [
  ["q/k/v/o", C, C, 4 * d.layers],
  ["gate/up", d.intermediate, C, 2 * d.layers],
  ["down", C, d.intermediate, d.layers],
  ["lm head", s.vocab, C, 1],
];
let productMs = 0;
for (const [name, N, K, perToken] of products)
  for (const dtype of ["f32", "bf16"] as const) {
    const bytes = N * K * (dtype === "f32" ? 4 : 2);
    const copies = Math.ceil(COLD_BYTES / bytes);
    const f32 = Array.from({ length: copies }, () => rng.randn(K * N, 0.02));
    const weights =
      dtype === "f32"
        ? f32
        : f32.map((w) => {
            const b = new Uint16Array(K * N);
            k.f32ToBf16(w, b);
            return b;
          });
    const x = rng.randn(K);
    const y = new Float32Array(N);
    const call = (w: Float32Array | Uint16Array) =>
      w instanceof Uint16Array
        ? k.gemvKMajorBf16(1, N, K, 1, x, w, 0, y)
        : k.gemvKMajor(1, N, K, 1, x, w, 0, y);
    for (const cold of [false, true]) {
      let i = 0;
      // One sample = one pass over the copies (cold) or as many calls on the first copy (hot).
      const ms =
        timeMedian(() => {
          for (let c = 0; c < copies; c++) call(weights[cold ? i++ % copies : 0]);
        }, 7) / copies;
      if (cold && dtype === "f32") productMs += ms * perToken;
      rows.push({
        name: `${name} ${N}x${K} ${dtype} ${cold ? "cold" : "hot"}`,
        threads,
        ms,
        gflops: (2 * N * K) / ms / 1e6,
        gbps: bytes / ms / 1e6,
        ofPeak: cold ? bytes / ms / 1e6 / gbps : undefined,
        note: cold ? `${copies} copies; ${perToken} per token` : `${perToken} per token`,
      });
    }
  }

// Attention of one query row (attentionDecodeRows, R = 1) over one layer's cache of `context` positions.
const H = d.heads;
const D = C / H;
const attentionMs = new Map<number, number>();
for (const c of values.contexts.split(",")) {
  const context = positiveInt("--contexts", c);
  const bytes = context * kvDim * 2 * 4;
  const copies = Math.ceil(COLD_BYTES / bytes);
  const keys = Array.from({ length: copies }, () => rng.randn(context * kvDim));
  const vals = Array.from({ length: copies }, () => rng.randn(context * kvDim));
  const q = rng.randn(H * D);
  const out = new Float32Array(H * D);
  const lengths = Int32Array.of(context);
  for (const cold of [false, true]) {
    let i = 0;
    const ms =
      timeMedian(() => {
        for (let n = 0; n < copies; n++) {
          const j = cold ? i++ % copies : 0;
          kernels.attention.attentionDecodeRows(
            1,
            H,
            d.kvHeads,
            D,
            1 / Math.sqrt(D),
            q,
            [keys[j]],
            [vals[j]],
            lengths,
            out,
          );
        }
      }, 7) / copies;
    if (cold) attentionMs.set(context, ms);
    rows.push({
      name: `attention ${context} positions ${cold ? "cold" : "hot"}`,
      threads,
      ms,
      gbps: bytes / ms / 1e6,
      ofPeak: cold ? bytes / ms / 1e6 / gbps : undefined,
      note: `K and V f32, ${(bytes / 2 ** 20).toFixed(1)} MiB; ${d.layers} per token`,
    });
  }
}

// What one token reads with f32 weights: every product's weight once and K, V of each cached position.
const weightBytes = products.reduce((sum, [, N, K, per]) => sum + N * K * 4 * per, 0);
const floors = values.contexts.split(",").map((c) => {
  const context = positiveInt("--contexts", c);
  const kvBytes = context * kvDim * 2 * 4 * d.layers;
  const ms = ((weightBytes + kvBytes) / gbps) * 1e-6;
  const measured = productMs + d.layers * (attentionMs.get(context) ?? 0);
  return { context, weightBytes, kvBytes, ms, tokensPerSec: 1000 / ms, measuredMs: measured };
});
rows.push({
  name: "f32 products cold, one token",
  threads,
  ms: productMs,
  gbps: weightBytes / productMs / 1e6,
  ofPeak: weightBytes / productMs / 1e6 / gbps,
  note: `${(weightBytes / 2 ** 20).toFixed(1)} MiB of weights`,
});
for (const f of floors) {
  rows.push({
    name: `products + attention cold at ${f.context}`,
    threads,
    ms: f.measuredMs,
    gbps: (f.weightBytes + f.kvBytes) / f.measuredMs / 1e6,
    ofPeak: f.ms / f.measuredMs,
    note: `the kernels of one token, each from memory; ≤ ${(1000 / f.measuredMs).toFixed(0)} tok/s`,
  });
  rows.push({
    name: `token floor at ${f.context} cached positions`,
    threads,
    ms: f.ms,
    gbps,
    note: `${((f.weightBytes + f.kvBytes) / 2 ** 20).toFixed(1)} MiB (KV ${(f.kvBytes / 2 ** 20).toFixed(1)}); ≤ ${f.tokensPerSec.toFixed(0)} tok/s`,
  });
}
printTable(
  `decode products vs memory, ${s.name} decoder, R = 1 (median ms per call; of peak = of the read bandwidth)`,
  rows,
);
writeJson(values.out, {
  bench: "decode-memory",
  date: new Date().toISOString(),
  shape: s,
  readGBps: gbps,
  floors,
  rows,
});
console.log(`\nwrote ${values.out}`);
