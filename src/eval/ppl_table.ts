// The paper's Tables 1 and 2 in miniature: log-perplexity of the first o continuation tokens (one list of o,
// scored from one forward pass per window) after s context tokens, per domain, for rows that each read
// the context one way with one model:
//   plain decoder (the pre-trained LLaMA)      no context, full context, the last n tokens only
//   each REFRAG model                          its chunk vectors (REFRAG8, REFRAG16, REFRAG32)
//   one REFRAG model at an effective rate r    a fraction p expanded by the RL policy or a heuristic
//   one REFRAG model's own decoder             no / full / last context read as raw tokens (fairness check:
//                                              that decoder kept training during REFRAG's stages)
// Every row reads the same windows (same documents, same cuts), and each selection row draws its
// expansion with the same per-window seed, so rows differ only in how they read. Gains are
// (no − x) / (no − full) against a reference pair of rows. Reports (markdown, SVG) are in ppl_report.ts.
import type { LlamaForCausalLM } from "../models/llama.js";
import { RefragModel } from "../models/refrag.js";
import type { SelectionMode } from "../infer/selection.js";
import { fractionForRate, normalisedGain } from "./metrics.js";
import {
  continuationNlls,
  meanOfFirst,
  readPositions,
  readSegments,
  type ContextRead,
  type ContextWindow,
} from "./perplexity.js";

export interface TableModel {
  name: string;
  /** A REFRAG model (chunk-vector rows, and raw rows through its decoder) or a plain decoder. */
  model: RefragModel | LlamaForCausalLM;
  /** What identifies the weights in the row cache (folder, size, modification time); none: no caching. */
  fingerprint?: string;
}

export interface TableRow {
  /** Unique key, e.g. "llama/full", "refrag16/compressed", "refrag16/policy@8". */
  id: string;
  /** What the markdown and the plot call it. */
  label: string;
  /** The TableModel that reads. */
  model: string;
  read: ContextRead;
  /** May read past the decoder's max_position_embeddings (Table 2's full-context row, on purpose). */
  beyondWindow?: boolean;
}

export interface TableWindow extends ContextWindow {
  /** Source document id and the token index of the cut (first continuation token). */
  doc: string;
  cut: number;
}

/** One domain's windows at one context length. */
export interface DomainWindows {
  domain: string;
  /** Context tokens of every window here (below requestedS when the documents were too short). */
  s: number;
  requestedS: number;
  windows: TableWindow[];
  /** What the sampling had to do (documents too short, s lowered); printed with the table. */
  notes: string[];
}

export interface TableCell {
  row: string;
  domain: string;
  s: number;
  requestedS: number;
  o: number;
  windows: number;
  /** Mean over the windows of each window's mean NLL of its first o continuation tokens. */
  logPpl: number;
  /** The per-window values, in the domain's window order (the same windows for every row). */
  perWindow: number[];
  /** Normalised gain against each reference pair (null where the pair is missing or equal). */
  gains: Record<string, number | null>;
}

/** A pair of rows that define gain 0 (no context) and gain 1 (full context). */
export interface GainReference {
  name: string;
  none: string;
  full: string;
}

export interface PerplexityTableResult {
  os: number[];
  rows: (TableRow & { positions: Record<string, number> })[];
  domains: {
    domain: string;
    s: number;
    requestedS: number;
    windows: { doc: string; cut: number }[];
    notes: string[];
  }[];
  cells: TableCell[];
  gainReferences: GainReference[];
}

/** Per-window results of one row on one domain set, remembered across runs (resume). */
export interface RowCache {
  get(key: string): number[][] | undefined;
  put(key: string, perWindow: number[][]): void;
}

/** Which rows a table has (see the file comment); names refer to TableModels. */
export interface RowPlan {
  /** The plain decoder's name, read raw: none, full, last n for each n in `last`. */
  baseline?: string;
  baselineReads?: ("none" | "full" | "last")[];
  last?: number[];
  /** REFRAG models read through their chunk vectors (no expansion), in this order. */
  compressed?: string[];
  /** Selection rows: this model at an effective compression rate, one row per mode. */
  expand?: { model: string; rate: number; modes: SelectionMode[] };
  /** The REFRAG model whose own decoder also reads the raw rows. */
  rawFrom?: string;
  /** Full-context rows may read beyond max_position_embeddings (Table 2). */
  beyondWindow?: boolean;
}

const SELECTION_LABEL: Partial<Record<SelectionMode, string>> = {
  policy: "RL policy",
  "perplexity-desc": "perplexity-desc",
  "perplexity-asc": "perplexity-asc",
  random: "random",
};

function chunkSizeOf(models: readonly TableModel[], name: string, what: string): number {
  const m = models.find((x) => x.name === name);
  if (m === undefined)
    throw new Error(`perplexity table: ${what} names model "${name}", which was not given`);
  if (!(m.model instanceof RefragModel))
    throw new Error(`perplexity table: ${what} needs a REFRAG model; "${name}" is a plain decoder`);
  return m.model.chunkSize;
}

/** The rows of a plan, and the gain references they allow. */
export function planRows(
  models: readonly TableModel[],
  plan: RowPlan,
): { rows: TableRow[]; gains: GainReference[] } {
  const rows: TableRow[] = [];
  const gains: GainReference[] = [];
  const reads = plan.baselineReads ?? ["none", "full", "last"];
  const raw = (name: string, whose: string, gainName: string) => {
    for (const r of reads) {
      if (r === "last")
        for (const n of plan.last ?? [])
          rows.push({
            id: `${name}/last${n}`,
            label: `last ${n} tokens${whose}`,
            model: name,
            read: { mode: "last", tokens: n },
          });
      else
        rows.push({
          id: `${name}/${r}`,
          label: `${r === "none" ? "no" : "full"} context${whose}`,
          model: name,
          read: { mode: r },
          ...(r === "full" && plan.beyondWindow === true ? { beyondWindow: true } : {}),
        });
    }
    if (reads.includes("none") && reads.includes("full"))
      gains.push({ name: gainName, none: `${name}/none`, full: `${name}/full` });
  };
  if (plan.baseline !== undefined) {
    if (!models.some((m) => m.name === plan.baseline))
      throw new Error(`perplexity table: the baseline "${plan.baseline}" was not given`);
    raw(plan.baseline, ` (${plan.baseline})`, "gain");
  }
  for (const name of plan.compressed ?? []) {
    chunkSizeOf(models, name, "a compressed row");
    rows.push({ id: `${name}/compressed`, label: name, model: name, read: { mode: "refrag" } });
  }
  if (plan.expand !== undefined) {
    const { model, rate, modes } = plan.expand;
    const k = chunkSizeOf(models, model, "--expand");
    const fraction = fractionForRate(k, rate);
    for (const mode of modes) {
      if (mode === "none" || mode === "all")
        throw new Error(`perplexity table: selection rows expand a fraction; "${mode}" is not one`);
      rows.push({
        id: `${model}/${mode}@${rate}`,
        label: `${model} + ${SELECTION_LABEL[mode] ?? mode} (rate ${rate}, p = ${fraction.toFixed(4)})`,
        model,
        read: { mode: "refrag", selection: { mode, fraction } },
      });
    }
  }
  if (plan.rawFrom !== undefined) {
    chunkSizeOf(models, plan.rawFrom, "--raw-from");
    raw(plan.rawFrom, ` (${plan.rawFrom}'s decoder)`, `gain vs ${plan.rawFrom}'s decoder`);
  }
  const ids = new Set<string>();
  for (const r of rows) {
    if (ids.has(r.id)) throw new Error(`perplexity table: row ${r.id} twice (a model given twice?)`);
    ids.add(r.id);
  }
  return { rows, gains };
}

function decoderConfig(m: TableModel) {
  return (m.model instanceof RefragModel ? m.model.decoder : m.model).config;
}

/**
 * Fails before anything is computed when a row would read past its decoder's max_position_embeddings
 * (unless the row is allowed to: Table 2's full-context row), naming the row, s, o and positions.
 */
export function checkRowPositions(
  models: readonly TableModel[],
  rows: readonly TableRow[],
  domains: readonly DomainWindows[],
  maxO: number,
): void {
  for (const row of rows) {
    const m = models.find((x) => x.name === row.model);
    if (m === undefined)
      throw new Error(`perplexity table: row ${row.id} names an unknown model ${row.model}`);
    if (row.read.mode === "refrag" && !(m.model instanceof RefragModel))
      throw new Error(
        `perplexity table: row ${row.id} reads chunk vectors, but ${row.model} is a plain decoder`,
      );
    const k = m.model instanceof RefragModel ? m.model.chunkSize : 1;
    const limit = decoderConfig(m).max_position_embeddings;
    for (const d of domains) {
      const n = readPositions(row.read, d.s, k) + maxO - 1;
      if (n > limit && row.beyondWindow !== true)
        throw new Error(
          `perplexity: row "${row.label}" reads ${n} positions (s = ${d.s}, o = ${maxO}${row.read.mode === "refrag" ? `, k = ${k}` : ""}), beyond ${row.model}'s max_position_embeddings ${limit}; lower --s / --o or leave the row out${row.read.mode === "full" ? " (--beyond-window lets full-context rows read past the window on purpose, as Table 2 does)" : ""}`,
        );
    }
  }
}

/** The selection seed of window w of domain set d: the same for every row. */
export function windowSeed(seed: number, d: number, w: number): number {
  return (seed + 100_003 * d + 7_919 * w) >>> 0;
}

function cacheKey(
  row: TableRow,
  m: TableModel,
  d: DomainWindows,
  os: readonly number[],
  seed: number,
): string {
  return JSON.stringify({
    row: row.id,
    read: row.read,
    weights: m.fingerprint,
    domain: d.domain,
    s: d.s,
    os,
    seed,
    windows: d.windows.map((w) => `${w.doc}@${w.cut}`),
  });
}

/** Computes every (row, domain, o) cell. */
export function perplexityRows(
  models: readonly TableModel[],
  rows: readonly TableRow[],
  domains: readonly DomainWindows[],
  os: readonly number[],
  o: {
    gains?: readonly GainReference[];
    seed?: number;
    cache?: RowCache;
    log?: (line: string) => void;
  } = {},
): PerplexityTableResult {
  if (os.length === 0) throw new Error("perplexity table: no continuation lengths");
  for (const n of os)
    if (!Number.isInteger(n) || n < 1) throw new Error(`perplexity table: continuation length ${n}`);
  const maxO = Math.max(...os);
  for (const d of domains)
    for (const w of d.windows) {
      if (w.context.length !== d.s)
        throw new Error(
          `perplexity table: ${d.domain} window ${w.doc}@${w.cut} has ${w.context.length} context tokens, expected ${d.s}`,
        );
      if (w.continuation.length < maxO)
        throw new Error(
          `perplexity table: ${d.domain} window ${w.doc}@${w.cut} has ${w.continuation.length} continuation tokens, fewer than o = ${maxO}`,
        );
    }
  checkRowPositions(models, rows, domains, maxO);
  const seed = o.seed ?? 1;
  const cells: TableCell[] = [];
  for (const row of rows) {
    const m = models.find((x) => x.name === row.model)!;
    domains.forEach((d, di) => {
      if (d.windows.length === 0) return;
      const key = cacheKey(row, m, d, os, seed);
      let per = m.fingerprint === undefined ? undefined : o.cache?.get(key);
      if (per === undefined) {
        per = d.windows.map((w, wi) => {
          const read: ContextRead =
            row.read.mode === "refrag" && row.read.selection !== undefined
              ? { mode: "refrag", selection: { ...row.read.selection, seed: windowSeed(seed, di, wi) } }
              : row.read;
          const cont = Int32Array.from(w.continuation as ArrayLike<number>).subarray(0, maxO);
          const nlls = continuationNlls(m.model, readSegments(m.model, w, read), cont);
          return os.map((n) => meanOfFirst(nlls, n));
        });
        if (m.fingerprint !== undefined) o.cache?.put(key, per);
      }
      os.forEach((n, oi) => {
        const perWindow = per.map((v) => v[oi]);
        const logPpl = perWindow.reduce((a, b) => a + b, 0) / perWindow.length;
        cells.push({
          row: row.id,
          domain: d.domain,
          s: d.s,
          requestedS: d.requestedS,
          o: n,
          windows: perWindow.length,
          logPpl,
          perWindow,
          gains: {},
        });
      });
      o.log?.(
        `${row.label} | ${d.domain} s=${d.s}: ${os.map((n) => `P${n} ${cells.find((c) => c.row === row.id && c.domain === d.domain && c.s === d.s && c.o === n)!.logPpl.toFixed(4)}`).join(" ")} (${d.windows.length} windows)`,
      );
    });
  }
  const gains = o.gains ?? [];
  const find = (row: string, c: TableCell) =>
    cells.find((x) => x.row === row && x.domain === c.domain && x.s === c.s && x.o === c.o);
  for (const c of cells)
    for (const g of gains) {
      const no = find(g.none, c);
      const full = find(g.full, c);
      c.gains[g.name] =
        no === undefined || full === undefined ? null : normalisedGain(no.logPpl, full.logPpl, c.logPpl);
    }
  return {
    os: [...os],
    rows: rows.map((r) => {
      const m = models.find((x) => x.name === r.model)!;
      const k = m.model instanceof RefragModel ? m.model.chunkSize : 1;
      return {
        ...r,
        positions: Object.fromEntries(domains.map((d) => [String(d.s), readPositions(r.read, d.s, k)])),
      };
    }),
    domains: domains.map((d) => ({
      domain: d.domain,
      s: d.s,
      requestedS: d.requestedS,
      windows: d.windows.map((w) => ({ doc: w.doc, cut: w.cut })),
      notes: d.notes,
    })),
    cells,
    gainReferences: [...gains],
  };
}
