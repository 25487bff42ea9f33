// Latency benchmark (issue: REFRAG exists to cut time-to-first-token). Batch 1. For each context length s
// and chunk size k it times three ways of answering the same request:
//   full      the decoder reads question + s context tokens
//   cached    REFRAG with chunk vectors precomputed at indexing time (projector inside the timing)
//   encoder   REFRAG with the encoder inside the timing
// and reports TTFT, time per output token (TPOT), decode throughput, KV-cache bytes and RSS, next to the
// paper's analytical prefill prediction for the same shape. Weights are random: latency does not depend on
// what the weights are.
import { Rng } from "../engine/random.js";
import { noGrad, Tensor } from "../engine/tensor.js";
import { generate, type GenerationStats } from "../infer/generate.js";
import { chunkTokens, RefragModel } from "../models/refrag.js";
import type { Segment } from "../models/llama.js";
import { numThreads } from "../engine/native.js";
import { refragConfigFor, type ModelShape } from "../models/presets.js";
import { renderSvg, type Panel } from "./plot.js";

/** A model shape (kept under this name for the benchmark's callers; the presets live in models/). */
export type LatencyShape = ModelShape;

/** Paper's per-layer prefill cost for n positions, width d: 24·n·d² + 4·d·n² FLOPs. */
export function prefillFlops(n: number, d: number): number {
  return 24 * n * d * d + 4 * d * n * n;
}

/**
 * The same with causal attention counted as executed: a causal kernel skips the masked half of the score
 * matrix, so attention costs 2·d·n² instead of 4·d·n². This is what a causal flash kernel actually does.
 */
export function prefillFlopsCausal(n: number, d: number): number {
  return 24 * n * d * d + 2 * d * n * n;
}

/** Predicted TTFT speed-up of REFRAG over the full context (question of q tokens, s context, chunk k). */
export function predictedTtftRatio(s: number, k: number, q: number, d: number, causal = false): number {
  const f = causal ? prefillFlopsCausal : prefillFlops;
  return f(q + s, d) / f(q + Math.ceil(s / k), d);
}

export type LatencyMode = "full" | "cached" | "encoder";

export interface LatencyRow {
  shape: string;
  context: number;
  k: number | null;
  mode: LatencyMode;
  positions: number;
  ttftMs: number;
  tpotMs: number;
  tokensPerSec: number;
  kvBytes: number;
  rssMB: number;
  /** full TTFT / this TTFT (same context length, same run). */
  ttftSpeedup?: number;
  tpotSpeedup?: number;
  predictedSpeedup?: number;
  /** The paper's formula with causal attention at half cost (what a causal kernel executes). */
  predictedCausalSpeedup?: number;
}

export interface LatencyOptions {
  shape: LatencyShape;
  contexts: number[];
  ks: number[];
  question: number;
  decodeTokens: number;
  repeats: number;
  seed?: number;
  log?: (line: string) => void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeRequest(
  model: RefragModel,
  build: () => Segment[],
  decodeTokens: number,
): Promise<{ stats: GenerationStats; rss: number }> {
  const stats: Partial<GenerationStats> = {};
  const t0 = performance.now();
  let rss = 0;
  const segments = build();
  const buildMs = performance.now() - t0;
  for await (const t of generate(model.decoder, segments, null, { maxNewTokens: decodeTokens + 1 }, stats)) {
    if (t.index === 0) rss = process.memoryUsage().rss;
  }
  // TTFT counts the work done before the prefill (encoding, projection) too.
  const s = stats as GenerationStats;
  s.ttftMs += buildMs;
  s.totalMs += buildMs;
  return { stats: s, rss };
}

/** Run the benchmark; rows for every (context, mode, k). */
export async function runLatency(o: LatencyOptions): Promise<LatencyRow[]> {
  const log = o.log ?? (() => {});
  const rng = new Rng(o.seed ?? 0);
  const maxCtx = Math.max(...o.contexts);
  const maxPositions = maxCtx + o.question + o.decodeTokens + 8;
  const rows: LatencyRow[] = [];
  // One decoder and projector for all k (weights random); an encoder per k only differs in positions.
  const base = new RefragModel(
    refragConfigFor(o.shape, Math.max(...o.ks), maxPositions),
    new Rng(o.seed ?? 0),
  );
  const question = Int32Array.from({ length: o.question }, () => 4 + rng.int(o.shape.vocab - 4));
  for (const s of o.contexts) {
    const context = Int32Array.from({ length: s }, () => 4 + rng.int(o.shape.vocab - 4));
    const run = async (mode: LatencyMode, k: number | null, build: () => Segment[]): Promise<LatencyRow> => {
      const results: { stats: GenerationStats; rss: number }[] = [];
      for (let r = 0; r < o.repeats; r++) results.push(await timeRequest(base, build, o.decodeTokens));
      const ttft = median(results.map((x) => x.stats.ttftMs));
      const tpot = median(
        results.map((x) => (x.stats.totalMs - x.stats.ttftMs) / Math.max(1, x.stats.generated - 1)),
      );
      const row: LatencyRow = {
        shape: o.shape.name,
        context: s,
        k,
        mode,
        positions: results[0].stats.promptPositions,
        ttftMs: ttft,
        tpotMs: tpot,
        tokensPerSec: 1000 / tpot,
        kvBytes: results[0].stats.kvBytes,
        rssMB: Math.max(...results.map((x) => x.rss)) / 2 ** 20,
      };
      log(
        `${o.shape.name} s=${s} ${mode}${k === null ? "" : ` k=${k}`}: TTFT ${ttft.toFixed(1)} ms, TPOT ${tpot.toFixed(2)} ms, ${row.positions} positions`,
      );
      return row;
    };
    const full = await run("full", null, () => [{ ids: question }, { ids: context }]);
    rows.push(full);
    for (const k of o.ks) {
      const chunks = chunkTokens(context, k);
      // Indexing time (not timed): the encoder's chunk vectors, as the vector cache would hold them.
      const cachedVectors: Tensor = noGrad(() => base.encodeChunks(chunks));
      const cached = await run("cached", k, () =>
        noGrad(() =>
          base.buildSegments({ before: question, chunks, projected: base.project(cachedVectors) }),
        ),
      );
      const encoded = await run("encoder", k, () =>
        noGrad(() =>
          base.buildSegments({
            before: question,
            chunks,
            projected: base.project(base.encodeChunks(chunks)),
          }),
        ),
      );
      for (const r of [cached, encoded]) {
        r.ttftSpeedup = full.ttftMs / r.ttftMs;
        r.tpotSpeedup = full.tpotMs / r.tpotMs;
        rows.push(r);
      }
    }
  }
  addPredictions(rows, o.shape, o.question);
  return rows;
}

/**
 * The analytical TTFT speed-ups for REFRAG rows (pure arithmetic: re-applied when re-rendering saved JSON).
 * Decoder layers cost prefillFlops per layer; in "encoder" mode the encoder's layers over every chunk of
 * k + 1 tokens (bidirectional: the paper's formula as is) are added to REFRAG's side.
 */
export function addPredictions(rows: LatencyRow[], shape: LatencyShape, question: number): void {
  const d = shape.decoder.hidden;
  const Ld = shape.decoder.layers;
  for (const r of rows) {
    if (r.k === null) continue;
    const L = Math.ceil(r.context / r.k);
    const enc =
      r.mode === "encoder" ? L * shape.encoder.layers * prefillFlops(r.k + 1, shape.encoder.hidden) : 0;
    r.predictedSpeedup =
      (Ld * prefillFlops(question + r.context, d)) / (Ld * prefillFlops(question + L, d) + enc);
    r.predictedCausalSpeedup =
      (Ld * prefillFlopsCausal(question + r.context, d)) / (Ld * prefillFlopsCausal(question + L, d) + enc);
  }
}

/** A printable table of the rows. */
export function latencyTable(rows: LatencyRow[]): string {
  const header = [
    "shape",
    "context",
    "mode",
    "k",
    "positions",
    "TTFT ms",
    "TPOT ms",
    "tok/s",
    "KV MiB",
    "RSS MiB",
    "TTFT x",
    "paper pred x",
    "causal pred x",
    "meas/causal",
    "TPOT x",
  ];
  const body = rows.map((r) => [
    r.shape,
    String(r.context),
    r.mode,
    r.k === null ? "-" : String(r.k),
    String(r.positions),
    r.ttftMs.toFixed(1),
    r.tpotMs.toFixed(2),
    r.tokensPerSec.toFixed(1),
    (r.kvBytes / 2 ** 20).toFixed(2),
    r.rssMB.toFixed(0),
    r.ttftSpeedup === undefined ? "" : r.ttftSpeedup.toFixed(2),
    r.predictedSpeedup === undefined ? "" : r.predictedSpeedup.toFixed(2),
    r.predictedCausalSpeedup === undefined ? "" : r.predictedCausalSpeedup.toFixed(2),
    r.ttftSpeedup === undefined || r.predictedCausalSpeedup === undefined
      ? ""
      : (r.ttftSpeedup / r.predictedCausalSpeedup).toFixed(2),
    r.tpotSpeedup === undefined ? "" : r.tpotSpeedup.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(widths[i])).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** Three panels shaped like the paper's Figure 2: TTFT and TPOT acceleration, and throughput, vs context. */
export function latencyPlot(rows: LatencyRow[], shape: string, threads = numThreads()): string {
  const ks = [...new Set(rows.filter((r) => r.k !== null).map((r) => r.k as number))].sort((a, b) => a - b);
  const series = (metric: (r: LatencyRow) => number | undefined, mode: "cached" | "encoder") =>
    ks.map((k, i) => ({
      name: `REFRAG k=${k}${mode === "encoder" ? " +enc" : ""}`,
      dashed: mode === "encoder",
      color: i + 1,
      points: rows
        .filter((r) => r.k === k && r.mode === mode)
        .map((r) => [r.context, metric(r) ?? NaN] as [number, number]),
    }));
  const panels: Panel[] = [
    {
      title: "TTFT acceleration",
      xLabel: "context tokens",
      yLabel: "× vs full context",
      logX: true,
      logY: true,
      series: [
        ...series((r) => r.ttftSpeedup, "cached"),
        ...series((r) => r.ttftSpeedup, "encoder"),
        ...ks.map((k, i) => ({
          name: `predicted k=${k} (causal)`,
          dotted: true,
          color: i + 1,
          points: rows
            .filter((r) => r.k === k && r.mode === "cached")
            .map((r) => [r.context, r.predictedCausalSpeedup ?? NaN] as [number, number]),
        })),
      ],
    },
    {
      title: "TPOT acceleration",
      xLabel: "context tokens",
      yLabel: "× vs full context",
      logX: true,
      series: series((r) => r.tpotSpeedup, "cached"),
    },
    {
      title: "Decode throughput",
      xLabel: "context tokens",
      yLabel: "tokens / s",
      logX: true,
      series: [
        {
          name: "full context",
          color: 0,
          points: rows
            .filter((r) => r.mode === "full")
            .map((r) => [r.context, r.tokensPerSec] as [number, number]),
        },
        ...series((r) => r.tokensPerSec, "cached"),
      ],
    },
  ];
  return renderSvg(panels, {
    title: `REFRAG vs full-context decoding (${shape} shape, batch 1, ${threads} threads)`,
  });
}
