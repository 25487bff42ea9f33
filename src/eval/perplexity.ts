// Log-perplexity of a continuation given its context, read in different ways (the paper's Table 1):
//   full      the decoder reads the s context tokens
//   refrag    one projected vector per chunk of k context tokens (optionally a fraction expanded)
//   none      no context at all
//   last      only the last n context tokens (by default ⌈s/k⌉: a token-matched truncation, as many
//             positions as REFRAG)
// Each value is the mean negative log-likelihood (nats per token) of the o continuation tokens. One
// forward pass scores every continuation token, so the log-perplexity of the first 128, 256 and 512 tokens
// of one 512-token continuation come from the same pass (the paper's P512 / P2048 are read that way).
// The tables built on this (several models, rows, gains, reports) are in ppl_table.ts.
import { crossEntropyRows, sliceRows } from "../engine/ops.js";
import { noGrad } from "../engine/tensor.js";
import type { LlamaForCausalLM, Segment } from "../models/llama.js";
import { chunkTokens, RefragModel } from "../models/refrag.js";
import { lmSegments, lmStart } from "../infer/prompt.js";
import { maxExpandCount, selectChunks, type SelectionOptions } from "../infer/selection.js";

export type ContextMode = "full" | "refrag" | "none" | "last";
export const CONTEXT_MODES: ContextMode[] = ["full", "refrag", "none", "last"];

export interface ContextWindow {
  context: ArrayLike<number>;
  continuation: ArrayLike<number>;
}

/** How one table row reads a window's context (`last` with its own token count). */
export type ContextRead =
  | { mode: "none" }
  | { mode: "full" }
  | { mode: "last"; tokens: number }
  | { mode: "refrag"; selection?: SelectionOptions };

const decoderOf = (m: RefragModel | LlamaForCausalLM): LlamaForCausalLM =>
  m instanceof RefragModel ? m.decoder : m;

/**
 * NLL (nats) of each continuation token after `prefix` segments, teacher forced, one forward pass. The
 * LM head runs only on the rows that predict the continuation (a 20k-token context would otherwise need
 * rows × vocabulary logits). A token no row predicts (a continuation with no prefix: its first token) is NaN.
 */
export function continuationNlls(
  model: RefragModel | LlamaForCausalLM,
  prefix: Segment[],
  continuation: ArrayLike<number>,
): Float64Array {
  const decoder = decoderOf(model);
  const m = continuation.length;
  if (m < 1) throw new Error("perplexity: empty continuation");
  return noGrad(() => {
    const segs: Segment[] = [
      ...prefix,
      { ids: Int32Array.from(continuation as ArrayLike<number>).subarray(0, m - 1) },
    ].filter((s) => !("ids" in s) || s.ids.length > 0);
    if (segs.length === 0) throw new Error("perplexity: a one-token continuation needs a context");
    const hidden = decoder.model.forward(decoder.model.embed(segs));
    const first = hidden.rows - m; // the row that predicts continuation[0]
    const from = Math.max(0, first);
    const logits = decoder.logits(sliceRows(hidden, from, hidden.rows));
    const targets = new Int32Array(logits.rows);
    for (let r = 0; r < logits.rows; r++) targets[r] = continuation[from + r - first];
    const nll = crossEntropyRows(logits, targets);
    const out = new Float64Array(m).fill(NaN);
    for (let t = Math.max(0, -first); t < m; t++) out[t] = nll[first + t - from];
    return out;
  });
}

/** Mean of the first n values that are numbers (the log-perplexity of the first n continuation tokens). */
export function meanOfFirst(nlls: ArrayLike<number>, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > nlls.length)
    throw new Error(`perplexity: cannot take the first ${n} of ${nlls.length} continuation tokens`);
  let s = 0;
  let c = 0;
  for (let t = 0; t < n; t++)
    if (!Number.isNaN(nlls[t])) {
      s += nlls[t];
      c++;
    }
  return c === 0 ? NaN : s / c;
}

/** Mean NLL of the continuation after `prefix` segments (teacher forcing; one forward pass). */
export function continuationNll(
  model: RefragModel | LlamaForCausalLM,
  prefix: Segment[],
  continuation: ArrayLike<number>,
): number {
  return meanOfFirst(continuationNlls(model, prefix, continuation), continuation.length);
}

/**
 * The prefix one read of a window gives the decoder. Raw reads (none, full, last) need only a decoder;
 * refrag needs the REFRAG model (encoder, projector, selection) and reads through its decoder.
 */
export function readSegments(
  model: RefragModel | LlamaForCausalLM,
  w: ContextWindow,
  read: ContextRead,
): Segment[] {
  const ctx = Int32Array.from(w.context as ArrayLike<number>);
  const bos = lmStart(decoderOf(model).config);
  switch (read.mode) {
    case "full":
      return [{ ids: bos }, { ids: ctx }];
    case "none":
      return [{ ids: bos }];
    case "last":
      if (!Number.isInteger(read.tokens) || read.tokens < 1)
        throw new Error(`perplexity: last needs a positive token count, got ${read.tokens}`);
      return [{ ids: bos }, { ids: ctx.subarray(Math.max(0, ctx.length - read.tokens)) }];
    case "refrag": {
      if (!(model instanceof RefragModel))
        throw new Error("perplexity: reading chunk vectors needs a REFRAG model, not a plain decoder");
      const chunks = chunkTokens(ctx, model.chunkSize);
      return noGrad(() => {
        const vectors = model.encodeChunks(chunks);
        const expand = read.selection
          ? selectChunks(model, read.selection, { before: bos, chunks, vectors })
          : undefined;
        return lmSegments(model, { chunks, projected: model.project(vectors), expand });
      });
    }
    default:
      throw new Error(`perplexity: unknown mode ${String(read satisfies never)}`);
  }
}

/** Decoder positions a read takes for s context tokens at chunk size k (<bos> included; the most an
 * expanding selection can take: ⌈p·L⌉ chunks raw). */
export function readPositions(read: ContextRead, s: number, k: number): number {
  switch (read.mode) {
    case "none":
      return 1;
    case "full":
      return 1 + s;
    case "last":
      return 1 + Math.min(s, read.tokens);
    case "refrag": {
      const L = Math.ceil(s / k);
      const sel = read.selection;
      if (sel === undefined || sel.mode === "none") return 1 + L;
      if (sel.mode === "all") return 1 + s;
      // Expanded chunks are whole chunks of k tokens, except possibly the last (shorter) one.
      return 1 + Math.min(s, L + maxExpandCount(L, sel.fraction ?? 0.25) * (k - 1));
    }
    default:
      throw new Error(`perplexity: unknown mode ${String(read satisfies never)}`);
  }
}

/** The prefix a mode reads for one window (`last`: its last ⌈s/k⌉ tokens). */
export function contextSegments(
  model: RefragModel,
  w: ContextWindow,
  mode: ContextMode,
  selection?: SelectionOptions,
): Segment[] {
  const read: ContextRead =
    mode === "last"
      ? { mode, tokens: Math.max(1, Math.ceil(w.context.length / model.chunkSize)) }
      : mode === "refrag"
        ? { mode, selection }
        : { mode };
  return readSegments(model, w, read);
}

/** Decoder positions a mode reads for s context and o continuation tokens (<bos> included). */
export function modePositions(mode: ContextMode, s: number, o: number, k: number): number {
  const context = { full: s, refrag: Math.ceil(s / k), last: Math.ceil(s / k), none: 0 }[mode];
  return 1 + context + o - 1;
}

/** Fails at once, naming the mode, when a mode would read beyond the decoder's max_position_embeddings. */
export function checkLengths(model: RefragModel, s: number, o: number, modes: readonly ContextMode[]): void {
  const limit = model.config.decoder.max_position_embeddings;
  for (const m of modes) {
    const n = modePositions(m, s, o, model.chunkSize);
    if (n > limit)
      throw new Error(
        `perplexity: mode ${m} reads ${n} positions (s = ${s}, o = ${o}, k = ${model.chunkSize}), beyond the decoder's max_position_embeddings ${limit}; lower --s / --o or leave the mode out`,
      );
  }
}

export interface PerplexityRow {
  domain: string;
  mode: string;
  windows: number;
  /** Mean NLL per continuation token (nats), i.e. the log-perplexity. */
  logPpl: number;
}

/** Mean log-perplexity per (domain, mode) over the windows of each domain. */
export function perplexityTable(
  model: RefragModel,
  windows: Map<string, ContextWindow[]>,
  modes: { name: string; mode: ContextMode; selection?: SelectionOptions }[],
  log?: (line: string) => void,
): PerplexityRow[] {
  const rows: PerplexityRow[] = [];
  for (const ws of windows.values())
    for (const w of ws)
      checkLengths(
        model,
        w.context.length,
        w.continuation.length,
        modes.map((m) => m.mode),
      );
  for (const [domain, ws] of windows) {
    if (ws.length === 0) continue;
    for (const m of modes) {
      let s = 0;
      for (const w of ws)
        s += continuationNll(model, contextSegments(model, w, m.mode, m.selection), w.continuation);
      const row = { domain, mode: m.name, windows: ws.length, logPpl: s / ws.length };
      log?.(`${domain} ${m.name}: ${row.logPpl.toFixed(4)} over ${ws.length} windows`);
      rows.push(row);
    }
  }
  return rows;
}
