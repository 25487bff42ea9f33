// Kernel benchmark: GEMM, GEMV (cache-resident and cold, f32 and bf16) and attention, on 1 and 2 threads,
// each with its fraction of the machine's measured FMA peak; on an AVX-512 CPU also the training step's
// GEMM shapes under both instruction sets, interleaved (avx2, avx512, avx2, ... in one process, medians)
// so a busy neighbour slows both alike. Prints tables, writes bench/results/kernels.json.
//   npm run bench:kernels [-- --threads 1,2 --rounds 9 --isa-only]
import { parseArgs } from "node:util";
import { cpuFeatures, numThreads, setIsa, setNumThreads } from "../src/engine/native.js";
import { nativeGemm, peakGflops } from "../src/engine/kernels/gemm.js";
import { Rng } from "../src/engine/random.js";
import { run as runAttention } from "./attention.js";
import { type BenchRow, printTable, writeJson } from "./common.js";
import { run as runGemm } from "./gemm.js";

type Isa = "avx2" | "avx512";

/** The training step's GEMMs (C=256, MLP 688, vocab 8192, 1024..8192 tokens): M×N×K, tA = weight gradient. */
const TRAIN_SHAPES: { M: number; N: number; K: number; tA: boolean; tB: boolean; note: string }[] = [
  { M: 1024, N: 256, K: 256, tA: false, tB: true, note: "attention projection forward" },
  { M: 1024, N: 256, K: 256, tA: false, tB: false, note: "projection input gradient" },
  { M: 256, N: 256, K: 1024, tA: true, tB: false, note: "projection weight gradient" },
  { M: 1024, N: 688, K: 256, tA: false, tB: true, note: "MLP up forward" },
  { M: 1024, N: 256, K: 688, tA: false, tB: true, note: "MLP down forward" },
  { M: 688, N: 256, K: 1024, tA: true, tB: false, note: "MLP weight gradient" },
  { M: 4096, N: 768, K: 256, tA: false, tB: true, note: "fused QKV, 4 sequences" },
  { M: 8192, N: 256, K: 256, tA: false, tB: true, note: "8192 tokens" },
  { M: 1024, N: 8192, K: 256, tA: false, tB: true, note: "LM head forward" },
  { M: 1024, N: 256, K: 8192, tA: false, tB: false, note: "LM head input gradient" },
  { M: 8192, N: 256, K: 1024, tA: true, tB: false, note: "LM head weight gradient" },
  { M: 512, N: 512, K: 512, tA: false, tB: false, note: "" },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** GFLOP/s of each training shape under avx2 and avx512, rounds alternating the two; one row per ISA. */
function isaRows(threads: number, rounds: number): BenchRow[] {
  const k = nativeGemm;
  if (k === null) throw new Error("bench kernels: native addon unavailable (run `npm run build:native`)");
  const detected = cpuFeatures().isa;
  const isas: Isa[] = ["avx2", "avx512"];
  const rng = new Rng(99);
  const rows: BenchRow[] = [];
  setNumThreads(threads);
  try {
    const peak: Record<Isa, number[]> = { avx2: [], avx512: [] };
    for (let r = 0; r < 3; r++)
      for (const isa of isas) {
        setIsa(isa);
        peak[isa].push(peakGflops(threads, 0.2));
      }
    for (const isa of isas)
      rows.push({ name: `fp32 FMA peak ${isa}`, threads, ms: 0, gflops: median(peak[isa]), ofPeak: 1 });
    const top = Math.max(median(peak.avx2), median(peak.avx512));
    for (const { M, N, K, tA, tB, note } of TRAIN_SHAPES) {
      const A = rng.randn(M * K);
      const B = rng.randn(K * N);
      const C = new Float32Array(M * N);
      const flops = 2 * M * N * K;
      const calls = Math.max(1, Math.round(3e9 / flops)); // ~30 ms of work per timed sample
      const rates: Record<Isa, number[]> = { avx2: [], avx512: [] };
      for (const isa of isas) {
        setIsa(isa);
        for (let c = 0; c < calls; c++) k.gemm(tA, tB, M, N, K, 1, A, B, 0, C); // warm-up
      }
      for (let r = 0; r < rounds; r++)
        for (const isa of r % 2 === 0 ? isas : [...isas].reverse()) {
          setIsa(isa);
          const t0 = performance.now();
          for (let c = 0; c < calls; c++) k.gemm(tA, tB, M, N, K, 1, A, B, 0, C);
          rates[isa].push((flops * calls) / (performance.now() - t0) / 1e6);
        }
      const gain = median(rates.avx512) / median(rates.avx2);
      for (const isa of isas) {
        const gflops = median(rates[isa]);
        rows.push({
          name: `gemm ${M}x${N}x${K}${tA ? " tA" : ""}${tB ? " tB" : ""} ${isa}`,
          threads,
          ms: flops / gflops / 1e6,
          gflops,
          ofPeak: gflops / top,
          note:
            `best ${Math.max(...rates[isa]).toFixed(1)}` +
            (isa === "avx512" ? `; ${gain.toFixed(2)}x avx2` : `; ${note}`),
        });
      }
    }
  } finally {
    setIsa(detected);
  }
  return rows;
}

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "1,2" },
    rounds: { type: "string", default: "9" },
    "isa-only": { type: "boolean", default: false },
    out: { type: "string", default: "bench/results/kernels.json" },
  },
});
const threads = values.threads.split(",").map(Number);
const before = numThreads();
const rows: BenchRow[] = [];
if (!values["isa-only"]) {
  rows.push(...(await runGemm(threads)));
  rows.push(...(await runAttention(threads)));
  printTable(`Kernels (${JSON.stringify(cpuFeatures())})`, rows);
}
const isa: BenchRow[] = [];
if (cpuFeatures().avx512) {
  for (const t of threads) isa.push(...isaRows(t, Number(values.rounds)));
  printTable(
    "GEMM at the training step's shapes, avx2 vs avx512 interleaved (median GFLOP/s; of peak = vs the higher ISA peak)",
    isa,
  );
}
setNumThreads(before);
writeJson(values.out, { date: new Date().toISOString(), cpu: cpuFeatures(), rows, isaComparison: isa });
console.log(`\nwrote ${values.out}`);
