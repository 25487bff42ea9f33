// The paper's Table 3 in miniature: RAG answers from several models in one table. A row is a model, a
// selection mode and how many passages it reads (REFRAG16 compressed with 8 passages; the fine-tuned
// full-context baseline reading every passage raw with 1 and with 8; no passages); a column group is a
// data set (strong retriever: top K; weak retriever: K drawn from the top 200; conversations, multi-turn;
// summaries). QA sets report accuracy and F1, conversations the follow-up accuracy too, summaries
// ROUGE-1/2/L; every row has its time to first token beside it.
import type { KVCacheDtype } from "../models/llama.js";
import { createHash } from "node:crypto";
import type { RefragPipeline } from "../infer/pipeline.js";
import {
  DEFAULT_SELECTION,
  SELECTION_MODES,
  type SelectionMode,
  type SelectionOptions,
} from "../infer/selection.js";
import { SUMMARY_QUESTION, type RagExample } from "../retrieval/rag_examples.js";
import { renderDotChart, type DotPanel } from "./plot.js";
import { DEFAULT_MAX_NEW_TOKENS, evalQa, type QaEvalRow } from "./qa.js";
import { fmt, mdTable } from "./report.js";

export interface QaRow {
  id: string;
  label: string;
  model: string;
  selection: SelectionOptions;
  /** Read each example's first n passages (null: all it has; 0: none). */
  passages: number | null;
}

export type QaKind = "qa" | "conversation" | "summary";

export interface QaDataSet {
  name: string;
  kind: QaKind;
  examples: RagExample[];
}

export interface QaCell extends QaEvalRow {
  row: string;
  data: string;
}

export interface QaTableResult {
  rows: QaRow[];
  data: { name: string; kind: QaKind; examples: number }[];
  cells: QaCell[];
}

/** Summaries ask the summary question; conversations have turns with history; the rest is QA. */
export function dataKind(examples: readonly RagExample[]): QaKind {
  if (examples.length > 0 && examples.every((e) => e.question === SUMMARY_QUESTION)) return "summary";
  if (examples.some((e) => (e.history?.length ?? 0) > 0)) return "conversation";
  return "qa";
}

const MODE_LABEL: Record<SelectionMode, string> = {
  none: "compressed",
  all: "all raw",
  random: "random",
  "perplexity-desc": "perplexity-desc",
  "perplexity-asc": "perplexity-asc",
  policy: "RL policy",
  query: "query",
};

/** The label of a row: "refrag16 · compressed · 8 passages", "llama-ft · no passages". */
export function qaRowLabel(model: string, s: SelectionOptions, passages: number | null): string {
  if (passages === 0) return `${model} · no passages`;
  const p = s.mode === "none" || s.mode === "all" ? "" : ` p=${s.fraction ?? DEFAULT_SELECTION.fraction}`;
  const n = passages === null ? "" : ` · ${passages} passage${passages === 1 ? "" : "s"}`;
  return `${model} · ${MODE_LABEL[s.mode]}${p}${n}`;
}

/**
 * Rows from "model:selection[@fraction][:passages]" items (passages: a count, or omitted for all), each
 * model one of `models`; random / perplexity / policy / query expand the item's fraction, else `fraction`
 * ("refrag16:query@0.03:8": the query heuristic expanding 3% of the chunks of 8 passages).
 */
export function parseQaRows(spec: string, models: readonly string[], fraction: number): QaRow[] {
  const rows = spec
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .map((item) => {
      const [model, read, n, ...rest] = item.split(":");
      if (rest.length > 0 || model === undefined || read === undefined)
        throw new Error(`--rows: "${item}" is not model:selection[@fraction][:passages]`);
      const [mode, at] = read.split("@");
      if (!models.includes(model))
        throw new Error(`--rows: "${item}" names model ${model}; given: ${models.join(", ")}`);
      if (!SELECTION_MODES.includes(mode as SelectionMode))
        throw new Error(`--rows: "${item}": unknown selection ${mode} (${SELECTION_MODES.join(", ")})`);
      const passages = n === undefined || n === "" ? null : Number(n);
      if (passages !== null && !(Number.isSafeInteger(passages) && passages >= 0))
        throw new Error(`--rows: "${item}": passages must be a non-negative integer`);
      const fixed = mode === "none" || mode === "all";
      if (at !== undefined && fixed) throw new Error(`--rows: "${item}": ${mode} takes no fraction`);
      const f = at === undefined ? fraction : Number(at);
      if (at !== undefined && !(at.trim() !== "" && f >= 0 && f <= 1))
        throw new Error(`--rows: "${item}": the fraction must be a number in [0, 1]`);
      const selection: SelectionOptions = fixed ? { mode } : { mode: mode as SelectionMode, fraction: f };
      return {
        id: `${model}:${read}:${passages ?? "all"}`,
        label: qaRowLabel(model, selection, passages),
        model,
        selection,
        passages,
      };
    });
  if (rows.length === 0) throw new Error("--rows: no rows");
  if (new Set(rows.map((r) => r.id)).size !== rows.length) throw new Error("--rows: a row is given twice");
  return rows;
}

/** Finished cells of an interrupted table (report.ts JsonlCache), keyed by qaCellKey. */
export interface QaCellCache {
  get(key: string): QaEvalRow | undefined;
  put(key: string, cell: QaEvalRow): void;
}

/** A data set's examples as one hash (part of a cell's cache key). */
function examplesHash(d: QaDataSet): string {
  return createHash("sha256").update(JSON.stringify(d.examples)).digest("hex");
}

/** A cell's cache key: the row, the model's weights, the examples (examplesHash) and the answer budget. */
function qaCellKey(
  row: QaRow,
  weights: string,
  d: QaDataSet,
  examples: string,
  maxNewTokens: number,
): string {
  return JSON.stringify({
    row: row.id,
    selection: row.selection,
    passages: row.passages,
    weights,
    data: d.name,
    examples,
    maxNewTokens,
  });
}

/** A cached cell's value has the fields the report reads. */
export function isQaEvalRow(v: unknown): v is QaEvalRow {
  const r = v as Partial<QaEvalRow> | null;
  return typeof r === "object" && r !== null && typeof r.mode === "string" && typeof r.examples === "number";
}

/**
 * Every row on every data set. With a cache and each model's weights fingerprint, finished cells are
 * stored as they finish and reused by a rerun (their TTFT is then the earlier run's).
 */
export async function qaTable(
  pipelines: ReadonlyMap<string, RefragPipeline>,
  rows: readonly QaRow[],
  data: readonly QaDataSet[],
  o: {
    maxNewTokens?: number;
    /** KV cache storage while answering (default f32). */
    kvCache?: KVCacheDtype;
    cache?: QaCellCache;
    fingerprints?: ReadonlyMap<string, string>;
    log?: (line: string) => void;
    onProgress?: (d: number, t: number) => void;
  } = {},
): Promise<QaTableResult> {
  const cells: QaCell[] = [];
  const total = rows.length * data.reduce((n, d) => n + d.examples.length, 0);
  const maxNewTokens = o.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  let before = 0;
  for (const d of data) {
    const examples = o.cache === undefined ? "" : examplesHash(d);
    for (const row of rows) {
      const pipeline = pipelines.get(row.model);
      if (pipeline === undefined) throw new Error(`QA table: row ${row.label} names an unknown model`);
      const fp = o.fingerprints?.get(row.model);
      const weights = fp === undefined || (o.kvCache ?? "f32") === "f32" ? fp : `${fp} kv=${o.kvCache}`;
      const key = weights === undefined ? undefined : qaCellKey(row, weights, d, examples, maxNewTokens);
      let r = key === undefined ? undefined : o.cache?.get(key);
      if (r === undefined) {
        [r] = await evalQa(pipeline, d.examples, [row.selection], {
          maxNewTokens,
          kvCache: o.kvCache,
          passages: row.passages,
          onProgress: (done) => o.onProgress?.(before + done, total),
        });
        if (key !== undefined) o.cache?.put(key, r);
      }
      before += d.examples.length;
      cells.push({ ...r, row: row.id, data: d.name });
      o.log?.(
        `${d.name} | ${row.label}: accuracy ${fmt(r.accuracy)} F1 ${fmt(r.f1)} ROUGE-L ${fmt(r.rougeL)} TTFT ${fmt(r.meanTtftMs, 1)} ms (${r.skipped} skipped)`,
      );
    }
  }
  return {
    rows: [...rows],
    data: data.map((d) => ({ name: d.name, kind: d.kind, examples: d.examples.length })),
    cells,
  };
}

const pct = (x: number | null) => (x === null ? "-" : (100 * x).toFixed(1));

/** One markdown table per data set, with the columns its kind needs. */
export function qaMarkdown(r: QaTableResult, title: string, preamble: string[] = []): string {
  const out = [`## ${title}`, "", ...preamble];
  if (preamble.length > 0) out.push("");
  for (const d of r.data) {
    const cell = (row: string) => r.cells.find((c) => c.row === row && c.data === d.name);
    const quality: [string, (c: QaCell) => string][] =
      d.kind === "summary"
        ? [
            ["ROUGE-1", (c) => pct(c.rouge1)],
            ["ROUGE-2", (c) => pct(c.rouge2)],
            ["ROUGE-L", (c) => pct(c.rougeL)],
          ]
        : [
            ["accuracy", (c) => pct(c.accuracy)],
            ["F1", (c) => pct(c.f1)],
            ...(d.kind === "conversation"
              ? ([["follow-up accuracy", (c: QaCell) => pct(c.accuracyFollowUp)]] as [
                  string,
                  (c: QaCell) => string,
                ][])
              : []),
            ["gold in context", (c) => pct(c.goldInContext)],
          ];
    const cols: [string, (c: QaCell) => string][] = [
      ...quality,
      ["positions", (c) => fmt(c.meanPositions, 0)],
      ["TTFT ms", (c) => fmt(c.meanTtftMs, 1)],
      ["TTFT ms (with encoder)", (c) => fmt(c.meanTtftWithEncoderMs, 1)],
      ["skipped", (c) => String(c.skipped)],
    ];
    out.push(
      `### ${d.name} (${d.kind}, ${d.examples} examples; scores in %)`,
      "",
      mdTable(
        ["row", ...cols.map((c) => c[0])],
        r.rows.map((row) => {
          const c = cell(row.id);
          return [row.label, ...cols.map(([, f]) => (c === undefined ? "" : f(c)))];
        }),
      ),
    );
  }
  out.push(
    "Accuracy: a reference answer contained in the output, F1: SQuAD token F1 (both SQuAD-normalised, best reference); ROUGE: F-measure; TTFT: from the prefill (chunk vectors ready), and from the request (tokenising, encoding, selection included). Skipped: prompts too long for the decoder's window in that row.",
  );
  return out.join("\n") + "\n";
}

/** Per data set a panel of its main scores per row, and one panel of TTFT per row and data set. */
export function qaSvg(r: QaTableResult, title: string): string {
  const panels: DotPanel[] = r.data.map((d) => {
    const at = (row: string) => r.cells.find((c) => c.row === row && c.data === d.name);
    const metric = (name: string, f: (c: QaCell) => number | null) => ({
      name,
      values: r.rows.map((row) => {
        const c = at(row.id);
        const v = c === undefined ? null : f(c);
        return v === null ? null : 100 * v;
      }),
    });
    return {
      title: `${d.name} (${d.kind})`,
      xLabel: "score (%)",
      categories: r.rows.map((row) => row.label),
      series:
        d.kind === "summary"
          ? [
              metric("ROUGE-1", (c) => c.rouge1),
              metric("ROUGE-2", (c) => c.rouge2),
              metric("ROUGE-L", (c) => c.rougeL),
            ]
          : [metric("accuracy", (c) => c.accuracy), metric("F1", (c) => c.f1)],
    };
  });
  panels.push({
    title: "time to first token",
    xLabel: "TTFT (ms, from the prefill)",
    categories: r.rows.map((row) => row.label),
    series: r.data.map((d) => ({
      name: `TTFT ${d.name}`,
      values: r.rows.map(
        (row) => r.cells.find((c) => c.row === row.id && c.data === d.name)?.meanTtftMs ?? null,
      ),
    })),
  });
  return renderDotChart(panels, { title, columns: 2 });
}
