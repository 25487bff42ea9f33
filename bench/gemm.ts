// GEMM benchmark: GFLOP/s of the packed SGEMM and GB/s of the GEMV (decode) path, each against the
// machine's measured FMA peak. `node dist/bench/gemm.js [threads...]` prints the table and writes
// bench/results/gemm.json. Shapes are M×N×K with C = op(A)·op(B); "tA/tB" are the transposes.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type BenchRow, printTable, writeJson } from "./common.js";
import { nativeGemm, peakGflops } from "../src/engine/kernels/gemm.js";
import type { GemmKernels } from "../src/engine/kernels/types.js";
import { numThreads, packageRoot, setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";

/** Median and best wall time (ms) of fn over `repeats` runs after `warmup` runs. The machine is shared:
 * the median is the honest number, the best shows what the kernel does when it has the core. */
function timeStats(fn: () => void, repeats: number, warmup: number): { median: number; best: number } {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], best: times[0] };
}

/** Measured peaks by thread count, filled by run() (also written to the JSON). */
export const measuredPeak: Record<number, number> = {};

function gemmRows(k: GemmKernels, rng: Rng, threads: number, peak: number): BenchRow[] {
  const cases: { M: number; N: number; K: number; tA: boolean; tB: boolean; note: string }[] = [
    { M: 512, N: 512, K: 512, tA: false, tB: false, note: "" },
    { M: 2048, N: 256, K: 768, tA: false, tB: false, note: "" },
    { M: 2048, N: 256, K: 768, tA: false, tB: true, note: "Linear forward" },
    { M: 2048, N: 256, K: 768, tA: true, tB: false, note: "weight gradient" },
    { M: 16384, N: 256, K: 256, tA: false, tB: false, note: "" },
  ];
  const rows: BenchRow[] = [];
  for (const { M, N, K, tA, tB, note } of cases) {
    const A = rng.randn(M * K);
    const B = rng.randn(K * N);
    const C = new Float32Array(M * N);
    const flops = 2 * M * N * K;
    // Enough repeats for ~0.5 s of work at 100 GFLOP/s.
    const repeats = Math.max(7, Math.min(200, Math.round(5e10 / flops)));
    const { median: ms, best } = timeStats(() => k.gemm(tA, tB, M, N, K, 1, A, B, 0, C), repeats, 3);
    const gflops = flops / ms / 1e6;
    rows.push({
      name: `gemm ${M}x${N}x${K}${tA ? " tA" : ""}${tB ? " tB" : ""}`,
      threads,
      ms,
      gflops,
      ofPeak: gflops / peak,
      target: threads === 1 ? ">=90 GFLOP/s" : threads === 2 ? ">=170 GFLOP/s" : undefined,
      note: `${note ? note + "; " : ""}best ${(flops / best / 1e6).toFixed(1)}`,
    });
  }
  return rows;
}

/** GEMV 1×N×K on one weight matrix (cache-resident) or cycling over enough copies to exceed the L3. */
function gemvRows(k: GemmKernels, rng: Rng, threads: number, peak: number): BenchRow[] {
  const N = 2048;
  const K = 2048;
  const COLD = 16; // 16 × 16 MiB f32 (8 MiB bf16) is well past the 32 MiB L3
  const x = rng.randn(K);
  const y = new Float32Array(N);
  const f32: Float32Array[] = [];
  const bf16: Uint16Array[] = [];
  for (let i = 0; i < COLD; i++) {
    const w = rng.randn(N * K, 0.02);
    const b = new Uint16Array(N * K);
    k.f32ToBf16(w, b);
    f32.push(w);
    bf16.push(b);
  }
  const rows: BenchRow[] = [];
  const flops = 2 * N * K;
  const coldMs: Record<string, number> = {};
  for (const tB of [true, false]) {
    const layout = tB ? "tB (W is N×K)" : "W is K×N";
    for (const dtype of ["f32", "bf16"] as const) {
      const bytes = N * K * (dtype === "f32" ? 4 : 2);
      for (const cold of [false, true]) {
        let i = 0;
        const call =
          dtype === "f32"
            ? () => k.gemm(false, tB, 1, N, K, 1, x, f32[cold ? i++ % COLD : 0], 0, y)
            : () => k.gemmBf16(tB, 1, N, K, 1, x, bf16[cold ? i++ % COLD : 0], 0, y);
        const { median: ms, best } = timeStats(call, 101, 2 * COLD);
        if (cold) coldMs[`${dtype} ${tB}`] = ms;
        const row: BenchRow = {
          name: `gemv 1x${N}x${K} ${dtype} ${cold ? "cold" : "hot"}${tB ? " tB" : ""}`,
          threads,
          ms,
          gflops: flops / ms / 1e6,
          gbps: bytes / ms / 1e6,
          ofPeak: flops / ms / 1e6 / peak,
          note: `${layout}; best ${(bytes / best / 1e6).toFixed(1)} GB/s`,
        };
        if (dtype === "bf16" && cold) {
          const speedup = coldMs[`f32 ${tB}`] / ms;
          row.target = ">=1.7x f32 cold";
          row.note = `${row.note}; ${speedup.toFixed(2)}x f32 cold`;
        }
        rows.push(row);
      }
    }
  }
  return rows;
}

/** Benchmark rows for each thread count (the pool is restored to its previous size afterwards). */
export async function run(threads: number[]): Promise<BenchRow[]> {
  const k = nativeGemm;
  if (k === null) throw new Error("bench gemm: native addon unavailable (run `npm run build:native`)");
  const before = numThreads();
  const rng = new Rng(1234);
  const rows: BenchRow[] = [];
  try {
    for (const t of threads) {
      setNumThreads(t);
      const peak = peakGflops(t, 0.5);
      measuredPeak[t] = peak;
      rows.push({ name: "fp32 FMA peak (measured)", threads: t, ms: 0, gflops: peak, ofPeak: 1 });
      rows.push(...gemmRows(k, rng, t, peak));
      rows.push(...gemvRows(k, rng, t, peak));
    }
  } finally {
    setNumThreads(before);
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).map(Number);
  const threads = args.length > 0 && args.every((n) => Number.isInteger(n) && n >= 1) ? args : [1, 2];
  const rows = await run(threads);
  printTable(
    "GEMM / GEMV (median of repeats; GFLOP/s, GB/s of weights; of peak = vs measured FMA peak)",
    rows,
  );
  const out = join(packageRoot(), "bench", "results", "gemm.json");
  writeJson(out, { bench: "gemm", date: new Date().toISOString(), peakGflops: measuredPeak, rows });
  console.log(`\nwrote ${out}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
