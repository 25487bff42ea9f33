// Which chunks to expand back to raw tokens. Modes: none (all compressed), all (the full context, read
// token by token), random (a fraction p), perplexity-desc / perplexity-asc (the paper's heuristic baselines:
// expand the chunks the decoder finds hardest / easiest), policy (the learned RL policy: its top chunks,
// or a sample without replacement).
import { crossEntropyRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { noGrad, type Tensor } from "../engine/tensor.js";
import type { RefragModel } from "../models/refrag.js";

export type SelectionMode = "none" | "all" | "random" | "perplexity-desc" | "perplexity-asc" | "policy";

export interface SelectionOptions {
  mode: SelectionMode;
  /** Fraction p of chunks to expand (modes random, perplexity-*, policy). Default 0.25. */
  fraction?: number;
  /** Policy mode: sample without replacement instead of taking the top logits. */
  sample?: boolean;
  seed?: number;
}

export const SELECTION_MODES: SelectionMode[] = [
  "none",
  "all",
  "random",
  "perplexity-desc",
  "perplexity-asc",
  "policy",
];

/** How many of L chunks a fraction p expands (rounded, at least 1 when p > 0). */
export function expandCount(L: number, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`selection: fraction must be in [0, 1], got ${p}`);
  return p === 0 ? 0 : Math.min(L, Math.max(1, Math.round(p * L)));
}

/**
 * Sample `n` distinct indices from logits without replacement (pointer-network masking: a chosen index's
 * logit becomes -inf). Returns the indices in the order drawn and the sum of their log-probabilities.
 */
export function sampleWithoutReplacement(
  logits: ArrayLike<number>,
  n: number,
  rng: Rng,
): { picks: number[]; logProb: number } {
  const L = logits.length;
  const masked = new Set<number>();
  const picks: number[] = [];
  let logProb = 0;
  for (let step = 0; step < n && masked.size < L; step++) {
    let mx = -Infinity;
    for (let i = 0; i < L; i++) if (!masked.has(i)) mx = Math.max(mx, logits[i]);
    let z = 0;
    for (let i = 0; i < L; i++) if (!masked.has(i)) z += Math.exp(logits[i] - mx);
    let r = rng.uniform() * z;
    let pick = -1;
    for (let i = 0; i < L; i++) {
      if (masked.has(i)) continue;
      pick = i;
      r -= Math.exp(logits[i] - mx);
      if (r <= 0) break;
    }
    logProb += logits[pick] - mx - Math.log(z);
    masked.add(pick);
    picks.push(pick);
  }
  return { picks, logProb };
}

/** Indices of the n largest values (ties: lower index first). */
export function topIndices(values: ArrayLike<number>, n: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, n);
}

/**
 * Mean negative log-likelihood of each chunk's tokens under the decoder reading the raw context
 * (the perplexity heuristic; it costs one full-context forward pass).
 */
export function chunkPerplexities(
  model: RefragModel,
  before: Int32Array,
  chunks: Int32Array[],
): Float64Array {
  return noGrad(() => {
    const ids = new Int32Array(before.length + chunks.reduce((n, c) => n + c.length, 0));
    ids.set(before, 0);
    let off = before.length;
    for (const c of chunks) {
      ids.set(c, off);
      off += c.length;
    }
    const { logits } = model.decoder.forward([{ ids }]);
    const targets = new Int32Array(ids.length).fill(-100);
    for (let i = before.length; i < ids.length; i++) if (i > 0) targets[i - 1] = ids[i];
    const nll = crossEntropyRows(logits, targets);
    const out = new Float64Array(chunks.length);
    off = before.length;
    chunks.forEach((c, j) => {
      let s = 0;
      let n = 0;
      for (let t = 0; t < c.length; t++) {
        const row = off + t - 1;
        if (row >= 0) {
          s += nll[row];
          n++;
        }
      }
      out[j] = n === 0 ? 0 : s / n;
      off += c.length;
    });
    return out;
  });
}

/** The expansion mask (true = raw tokens) for one context. */
export function selectChunks(
  model: RefragModel,
  o: SelectionOptions,
  ctx: { before: Int32Array; chunks: Int32Array[]; vectors: Tensor },
): boolean[] {
  const L = ctx.chunks.length;
  const mask = new Array<boolean>(L).fill(false);
  const n = expandCount(L, o.fraction ?? 0.25);
  const rng = new Rng(o.seed ?? 0);
  let picks: number[] = [];
  switch (o.mode) {
    case "none":
      return mask;
    case "all":
      return mask.fill(true);
    case "random":
      picks = rng.shuffle(Array.from({ length: L }, (_, i) => i)).slice(0, n);
      break;
    case "perplexity-desc":
    case "perplexity-asc": {
      const ppl = chunkPerplexities(model, ctx.before, ctx.chunks);
      const sign = o.mode === "perplexity-desc" ? 1 : -1;
      picks = topIndices(
        Array.from(ppl, (v) => sign * v),
        n,
      );
      break;
    }
    case "policy": {
      if (model.policy === null)
        throw new Error("selection: mode 'policy' needs a model with a trained policy");
      const policy = model.policy;
      const logits = noGrad(() => policy.forward(ctx.vectors)).data;
      picks = o.sample ? sampleWithoutReplacement(logits, n, rng).picks : topIndices(logits, n);
      break;
    }
    default:
      throw new Error(
        `selection: unknown mode ${String(o.mode satisfies never)} (choose ${SELECTION_MODES.join(", ")})`,
      );
  }
  for (const i of picks) mask[i] = true;
  return mask;
}
