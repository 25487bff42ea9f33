// Shared benchmark plumbing: median timing, a printed table, JSON output.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { packageRoot } from "../src/engine/native.js";

export interface BenchRow {
  /** What was measured, e.g. "gemm 512x512x512". */
  name: string;
  threads: number;
  /** Median milliseconds per call. */
  ms: number;
  /** Achieved GFLOP/s or GB/s when meaningful. */
  gflops?: number;
  gbps?: number;
  /** Fraction of the machine's measured peak, 0..1. */
  ofPeak?: number;
  /** A target from the issue, for the table. */
  target?: string;
  note?: string;
}

/** Median wall time (ms) of fn over `repeats` runs after `warmup` runs; stops early past `maxMs` total. */
export function timeMedian(fn: () => void, repeats = 7, warmup = 2, maxMs = 20_000): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (performance.now() - start > maxMs && times.length >= 3) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function fmt(x: number | undefined, digits = 1): string {
  return x === undefined ? "" : x.toFixed(digits);
}

/** Print rows as an aligned table. */
export function printTable(title: string, rows: BenchRow[]): void {
  const header = ["name", "threads", "ms", "GFLOP/s", "GB/s", "of peak", "target", "note"];
  const body = rows.map((r) => [
    r.name,
    String(r.threads),
    fmt(r.ms, 3),
    fmt(r.gflops),
    fmt(r.gbps),
    r.ofPeak === undefined ? "" : (100 * r.ofPeak).toFixed(0) + "%",
    r.target ?? "",
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

/** Write a JSON report (creating folders). */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/** Paragraphs of the README (markdown marks and line breaks flattened) of minChars..maxChars characters,
 * exclusive: real English text, fixed, for benchmark and page passages. */
export function readmeParagraphs(minChars: number, maxChars: number): string[] {
  return readFileSync(join(packageRoot(), "README.md"), "utf8")
    .split(/\n\s*\n/)
    .map((p) =>
      p
        .replace(/[#`|*]/g, " ")
        .replace(/\s+/g, " ")
        .trim(),
    )
    .filter((p) => p.length > minChars && p.length < maxChars);
}
