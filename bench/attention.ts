// Attention benchmark: causal forward/backward at 8 heads × 512 and × 4096 tokens (D = 64, B = 1) and
// decode (Tq = 1) against 4096- and 16384-token caches, on 1 and 2 threads. FLOPs are counted honestly
// for causal masks (half the score matrix): forward 4·T²·D·H/2, backward 2.5× that (five block products).
// Run: npx tsc -p . && node dist/bench/attention.js [--threads=1,2] [--peak=GFLOPS]
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { nativeAttention } from "../src/engine/kernels/attention.js";
import { loadAddon, packageRoot, setNumThreads, numThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { type BenchRow, printTable, timeMedian, writeJson } from "./common.js";

/** Measured fp32 FMA peak on `threads` threads (native/peak.cc), or the --peak argument, or undefined. */
function peak(threads: number, given: number | undefined): number | undefined {
  if (given !== undefined) return given * threads;
  const addon = loadAddon() as { peakGflops?: (t: number, s: number) => number } | null;
  return addon?.peakGflops === undefined ? undefined : addon.peakGflops(threads, 0.3);
}

/** Median process CPU time (ms) per call: on a shared, overloaded machine this tracks the kernel's own cost
 * better than wall time (it excludes time spent descheduled). Meaningful for 1 thread only. */
function cpuMedian(fn: () => void, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    times.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function run(threads: number[], peakPerThread?: number): Promise<BenchRow[]> {
  const kern = nativeAttention;
  if (kern === null)
    throw new Error("bench/attention: native addon unavailable (run `npm run build:native`)");
  const rng = new Rng(1234);
  const rows: BenchRow[] = [];
  const H = 8;
  const D = 64;
  const before = numThreads();
  for (const t of threads) {
    setNumThreads(t);
    const pk = peak(t, peakPerThread);
    const add = (row: BenchRow, fn: () => void, reps: number) => {
      if (row.gflops !== undefined && pk !== undefined) row.ofPeak = row.gflops / pk;
      if (t === 1)
        row.note = [`cpu ${cpuMedian(fn, reps).toFixed(3)} ms`, row.note].filter((x) => x).join("; ");
      rows.push(row);
    };
    for (const T of [512, 4096]) {
      const n = T * H * D;
      const [q, k, v, dout] = [rng.randn(n), rng.randn(n), rng.randn(n), rng.randn(n)];
      const out = new Float32Array(n);
      const lse = new Float32Array(H * T);
      const [dq, dk, dv] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      const scale = 1 / Math.sqrt(D);
      const fwd = () => kern.attentionForward(1, T, T, H, H, D, 0, true, scale, q, k, v, null, out, lse);
      const bwd = () =>
        kern.attentionBackward(1, T, T, H, H, D, 0, true, scale, q, k, v, null, out, lse, dout, dq, dk, dv);
      const flops = (4 * T * T * D * H) / 2;
      const reps = T <= 512 ? 21 : 5;
      const msF = timeMedian(fwd, reps, 2);
      add(
        {
          name: `causal fwd H${H} T${T} D${D}`,
          threads: t,
          ms: msF,
          gflops: flops / msF / 1e6,
          target: T === 512 && t === 1 ? "<= 9 ms" : undefined,
        },
        fwd,
        reps,
      );
      const msB = timeMedian(bwd, reps, 2);
      add(
        { name: `causal bwd H${H} T${T} D${D}`, threads: t, ms: msB, gflops: (2.5 * flops) / msB / 1e6 },
        bwd,
        reps,
      );
    }
    for (const Tk of [4096, 16384]) {
      const nk = Tk * H * D;
      const [k, v] = [rng.randn(nk), rng.randn(nk)];
      const q = rng.randn(H * D);
      const out = new Float32Array(H * D);
      const lse = new Float32Array(H);
      const dec = () =>
        nativeAttention!.attentionForward(
          1,
          1,
          Tk,
          H,
          H,
          D,
          Tk - 1,
          true,
          1 / Math.sqrt(D),
          q,
          k,
          v,
          null,
          out,
          lse,
        );
      const ms = timeMedian(dec, 31, 3);
      const bytes = 2 * nk * 4;
      add(
        {
          name: `decode Tq1 H${H} Tk${Tk} D${D}`,
          threads: t,
          ms,
          gflops: (4 * Tk * D * H) / ms / 1e6,
          gbps: bytes / ms / 1e6,
          note: `K+V ${(bytes / 2 ** 20).toFixed(0)} MiB`,
        },
        dec,
        31,
      );
    }
  }
  setNumThreads(before);
  return rows;
}

function arg(name: string): string | undefined {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const threads = (arg("threads") ?? "1,2").split(",").map(Number);
  const given = arg("peak");
  const rows = await run(threads, given === undefined ? undefined : Number(given));
  const load = (await import("node:os")).loadavg()[0].toFixed(1);
  printTable(
    `attention (median wall ms; causal FLOPs halved; decode GB/s = K+V bytes read; load average ${load})`,
    rows,
  );
  writeJson(join(packageRoot(), "bench", "results", "attention.json"), {
    date: new Date().toISOString(),
    loadAverage: Number(load),
    rows,
  });
}
