// Reconstruction log-perplexity (the paper's Table 11): how well the decoder reproduces s = n·k context
// tokens from their n chunk vectors, teacher forced, as in the reconstruction stage:
//   <bos> v_1 … v_n  c_0 … c_{s-1}     (mean NLL of the s tokens, nats per token)
// read three ways, so the number says what the vectors carry:
//   vectors   the chunks' own vectors
//   shuffled  the vectors of another window (same n): what the decoder gets from "some context"
//   none      no vectors: the decoder alone, teacher forced (the language model's loss on the same tokens)
// vectors ≪ shuffled means the vectors carry the chunks' content; vectors ≈ shuffled ≈ none means nothing.
// Table 11 compares models (with and without the curriculum) on the same windows: reconstructionTable.
// Each row also splits the NLL by where the token sits (which chunk, and its offset inside the chunk), so a
// table shows where the vectors stop being read: the decoder has to find vector j for the tokens of chunk j.
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import { lmSegments, lmStart } from "../infer/prompt.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";
import { continuationNlls } from "./perplexity.js";
import { renderDotChart } from "./plot.js";
import { fmt, mdTable } from "./report.js";

export type ReconstructionMode = "vectors" | "shuffled" | "none";
export const RECONSTRUCTION_MODES: ReconstructionMode[] = ["vectors", "shuffled", "none"];

/** Mean NLL per mode over a span [from, to) of chunk indices or of offsets inside a chunk (0-based). */
export interface ReconstructionSpan {
  from: number;
  to: number;
  nll: Record<ReconstructionMode, number>;
}

export interface ReconstructionRow {
  chunks: number;
  tokens: number;
  windows: number;
  /** Mean NLL per mode (nats per token). */
  nll: Record<ReconstructionMode, number>;
  /** The tokens of chunks 1, 2, 3–4, 5–8, … (spans that double). */
  byChunk: ReconstructionSpan[];
  /** The tokens at offset 0, 1, 2–3, 4–7, … inside their chunk. */
  byOffset: ReconstructionSpan[];
}

/** [0, 1), [1, 2), [2, 4), [4, 8), … up to n. */
export function doublingSpans(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < n; a = Math.max(1, 2 * a)) out.push([a, Math.min(n, Math.max(1, 2 * a))]);
  return out;
}

/** Fixed windows of `len` tokens from a held-out stream (the same windows for every model). */
export function heldOutWindows(stream: Uint16Array, len: number, count: number, seed = 11): Int32Array[] {
  if (stream.length < len + 1)
    throw new Error(
      `reconstruction: the stream (${stream.length} tokens) is shorter than a window of ${len}`,
    );
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const start = rng.int(stream.length - len);
    return Int32Array.from(stream.subarray(start, start + len));
  });
}

/** Reconstruction NLL at n chunks over `windows` fixed windows, per mode. */
export function reconstructionRow(
  model: RefragModel,
  stream: Uint16Array,
  n: number,
  windows: number,
): ReconstructionRow {
  const k = model.chunkSize;
  const s = n * k;
  const need = 1 + n + s - 1;
  if (need > model.config.decoder.max_position_embeddings)
    throw new Error(
      `reconstruction at ${n} chunks reads ${need} positions; the decoder has ${model.config.decoder.max_position_embeddings}`,
    );
  if (windows < 2) throw new Error("reconstruction: at least 2 windows (the shuffled mode borrows vectors)");
  const ws = heldOutWindows(stream, s, windows);
  const projected = ws.map((w) => noGrad(() => model.project(model.encodeChunks(chunkTokens(w, k)))));
  // Per-token sums over the windows, per mode.
  const sum = Object.fromEntries(RECONSTRUCTION_MODES.map((m) => [m, new Float64Array(s)])) as Record<
    ReconstructionMode,
    Float64Array
  >;
  const add = (m: ReconstructionMode, nlls: Float64Array) => {
    for (let t = 0; t < s; t++) sum[m][t] += nlls[t];
  };
  for (let i = 0; i < windows; i++) {
    const chunks = chunkTokens(ws[i], k);
    add("vectors", continuationNlls(model, lmSegments(model, { chunks, projected: projected[i] }), ws[i]));
    // Another window's vectors (the next one): same count, unrelated content.
    const j = (i + 1) % windows;
    add("shuffled", continuationNlls(model, lmSegments(model, { chunks, projected: projected[j] }), ws[i]));
    add("none", continuationNlls(model, [{ ids: lmStart(model.config.decoder) }], ws[i]));
  }
  // Mean NLL per mode over the tokens `keep` selects (by position t in the window).
  const mean = (keep: (t: number) => boolean) => {
    const out = {} as Record<ReconstructionMode, number>;
    for (const m of RECONSTRUCTION_MODES) {
      let total = 0;
      let count = 0;
      for (let t = 0; t < s; t++)
        if (keep(t)) {
          total += sum[m][t];
          count++;
        }
      out[m] = total / (count * windows);
    }
    return out;
  };
  const span =
    (of: (t: number) => number) =>
    ([from, to]: [number, number]) => ({
      from,
      to,
      nll: mean((t) => of(t) >= from && of(t) < to),
    });
  return {
    chunks: n,
    tokens: s,
    windows,
    nll: mean(() => true),
    byChunk: doublingSpans(n).map(span((t) => Math.floor(t / k))),
    byOffset: doublingSpans(k).map(span((t) => t % k)),
  };
}

/** Table 11 with several models: the same windows for each, and each model's NLL over the reference's. */
export interface ReconstructionTable {
  k: number;
  windows: number;
  /** The model the ratios divide by (the curriculum run). */
  reference: string;
  rows: (ReconstructionRow & { model: string })[];
  /** Per model and chunk count: its NLL / the reference's, per mode (Table 11's without / with). */
  ratios: { model: string; chunks: number; ratio: Record<ReconstructionMode, number> }[];
}

/** Every model at every chunk count over the same held-out windows. */
export function reconstructionTable(
  models: readonly { name: string; model: RefragModel }[],
  stream: Uint16Array,
  chunks: readonly number[],
  windows: number,
  o: { reference?: string; log?: (line: string) => void } = {},
): ReconstructionTable {
  if (models.length === 0) throw new Error("reconstruction: no models");
  const k = models[0].model.chunkSize;
  for (const m of models)
    if (m.model.chunkSize !== k)
      throw new Error(
        `reconstruction: ${m.name} has k = ${m.model.chunkSize}, ${models[0].name} k = ${k}; compare models of one chunk size`,
      );
  const reference = o.reference ?? models[0].name;
  if (!models.some((m) => m.name === reference))
    throw new Error(`reconstruction: the reference ${reference} is not one of the models`);
  const rows: ReconstructionTable["rows"] = [];
  for (const m of models)
    for (const n of chunks) {
      const r = { model: m.name, ...reconstructionRow(m.model, stream, n, windows) };
      o.log?.(
        `${m.name} at ${n} chunks: ${RECONSTRUCTION_MODES.map((x) => `${x} ${r.nll[x].toFixed(4)}`).join(", ")}`,
      );
      rows.push(r);
    }
  const ratios = rows.map((r) => {
    const ref = rows.find((x) => x.model === reference && x.chunks === r.chunks)!;
    const ratio = Object.fromEntries(RECONSTRUCTION_MODES.map((x) => [x, r.nll[x] / ref.nll[x]])) as Record<
      ReconstructionMode,
      number
    >;
    return { model: r.model, chunks: r.chunks, ratio };
  });
  return { k, windows, reference, rows, ratios };
}

/** Table 11's markdown: NLL per model and chunk count, and each model's ratio to the reference. */
export function reconstructionMarkdown(
  t: ReconstructionTable,
  title: string,
  preamble: string[] = [],
): string {
  const out = [`## ${title}`, "", ...preamble];
  if (preamble.length > 0) out.push("");
  out.push(
    mdTable(
      [
        "model",
        "chunks",
        "tokens",
        ...RECONSTRUCTION_MODES.map((m) => `${m} (nats)`),
        `vectors / ${t.reference}`,
      ],
      t.rows.map((r) => [
        r.model,
        String(r.chunks),
        String(r.tokens),
        ...RECONSTRUCTION_MODES.map((m) => fmt(r.nll[m], 3)),
        fmt(t.ratios.find((x) => x.model === r.model && x.chunks === r.chunks)?.ratio.vectors, 2),
      ]),
    ),
    `vectors: the window's own chunk vectors; shuffled: another window's; none: no vectors (the decoder alone). ${t.windows} held-out windows per row, the same for every model, k = ${t.k}.`,
  );
  const n = Math.max(...t.rows.map((r) => r.chunks));
  const atN = t.rows.filter((r) => r.chunks === n);
  const gain = (x: ReconstructionSpan) => fmt(x.nll.none - x.nll.vectors, 3);
  const label = ([a, b]: [number, number], base: number) =>
    b - a === 1 ? String(a + base) : `${a + base}–${b - 1 + base}`;
  out.push(
    "",
    `### Where the vectors are read (${n} chunks)`,
    "",
    "What the own vectors gain over none (none − vectors, nats per token), by the chunk a token is in:",
    "",
    mdTable(
      ["chunk", ...atN.map((r) => r.model)],
      doublingSpans(n).map((sp, i) => [label(sp, 1), ...atN.map((r) => gain(r.byChunk[i]))]),
    ),
    "and by the token's offset inside its chunk (0 is a chunk's first token):",
    "",
    mdTable(
      ["offset", ...atN.map((r) => r.model)],
      doublingSpans(t.k).map((sp, i) => [label(sp, 0), ...atN.map((r) => gain(r.byOffset[i]))]),
    ),
  );
  return out.join("\n") + "\n";
}

/** One panel per chunk count: each model's NLL under the three reads. */
export function reconstructionSvg(t: ReconstructionTable, title: string): string {
  const models = [...new Set(t.rows.map((r) => r.model))];
  return renderDotChart(
    [...new Set(t.rows.map((r) => r.chunks))].map((n) => ({
      title: `${n} chunks (${n * t.k} tokens)`,
      xLabel: "reconstruction log-perplexity (nats / token)",
      categories: models,
      series: RECONSTRUCTION_MODES.map((m) => ({
        name: m,
        values: models.map((name) => t.rows.find((r) => r.model === name && r.chunks === n)?.nll[m] ?? null),
      })),
    })),
    { title, columns: 2 },
  );
}
