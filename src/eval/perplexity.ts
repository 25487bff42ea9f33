// Log-perplexity of a continuation given its context, read in different ways (the paper's Table 1):
//   full      the decoder reads the s context tokens
//   refrag    one projected vector per chunk of k context tokens (optionally a fraction expanded)
//   none      no context at all
//   last      only the last ⌈s/k⌉ context tokens: a token-matched truncation (as many positions as REFRAG)
// Each value is the mean negative log-likelihood (nats per token) of the o continuation tokens.
import { crossEntropyRows } from "../engine/ops.js";
import { noGrad } from "../engine/tensor.js";
import type { Segment } from "../models/llama.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";
import { lmSegments, lmStart } from "../infer/prompt.js";
import { selectChunks, type SelectionOptions } from "../infer/selection.js";

export type ContextMode = "full" | "refrag" | "none" | "last";
export const CONTEXT_MODES: ContextMode[] = ["full", "refrag", "none", "last"];

export interface ContextWindow {
  context: ArrayLike<number>;
  continuation: ArrayLike<number>;
}

/** Mean NLL of the continuation after `prefix` segments (teacher forcing; one forward pass). */
export function continuationNll(
  model: RefragModel,
  prefix: Segment[],
  continuation: ArrayLike<number>,
): number {
  const m = continuation.length;
  if (m < 1) throw new Error("perplexity: empty continuation");
  return noGrad(() => {
    const segs: Segment[] = [
      ...prefix,
      { ids: Int32Array.from(continuation as ArrayLike<number>).subarray(0, m - 1) },
    ].filter((s) => !("ids" in s) || s.ids.length > 0);
    if (segs.length === 0) throw new Error("perplexity: a one-token continuation needs a context");
    const hidden = model.decoder.model.forward(model.decoder.model.embed(segs));
    const logits = model.decoder.logits(hidden);
    const targets = new Int32Array(hidden.rows).fill(-100);
    const first = hidden.rows - m; // the row that predicts continuation[0]
    for (let t = 0; t < m; t++) if (first + t >= 0) targets[first + t] = continuation[t];
    const nll = crossEntropyRows(logits, targets);
    let s = 0;
    let n = 0;
    for (let t = 0; t < m; t++)
      if (first + t >= 0) {
        s += nll[first + t];
        n++;
      }
    return s / n;
  });
}

/** The prefix a mode reads for one window. */
export function contextSegments(
  model: RefragModel,
  w: ContextWindow,
  mode: ContextMode,
  selection?: SelectionOptions,
): Segment[] {
  const ctx = Int32Array.from(w.context as ArrayLike<number>);
  const bos = lmStart(model.config.decoder);
  switch (mode) {
    case "full":
      return [{ ids: bos }, { ids: ctx }];
    case "none":
      return [{ ids: bos }];
    case "last":
      return [
        { ids: bos },
        { ids: ctx.subarray(Math.max(0, ctx.length - Math.ceil(ctx.length / model.chunkSize))) },
      ];
    case "refrag": {
      const chunks = chunkTokens(ctx, model.chunkSize);
      return noGrad(() => {
        const vectors = model.encodeChunks(chunks);
        const expand = selection
          ? selectChunks(model, selection, { before: bos, chunks, vectors })
          : undefined;
        return lmSegments(model, { chunks, projected: model.project(vectors), expand });
      });
    }
    default:
      throw new Error(`perplexity: unknown mode ${String(mode satisfies never)}`);
  }
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
