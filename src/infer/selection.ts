// Which chunks to expand back to raw tokens. Modes: none (all compressed), all (the full context, read
// token by token), random (a fraction p), perplexity-desc / perplexity-asc (the paper's heuristic baselines:
// expand the chunks the decoder finds hardest / easiest), policy (the learned RL policy: its top chunks,
// or a sample without replacement), query (our question-aware heuristic, which the paper's policy is not:
// the chunks that share the most, and the rarest, words with the question, field names first, in the
// passages whose titles the question names).
import { crossEntropyRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { noGrad, type Tensor } from "../engine/tensor.js";
import type { RefragModel } from "../models/refrag.js";

export type SelectionMode =
  | "none"
  | "all"
  | "random"
  | "perplexity-desc"
  | "perplexity-asc"
  | "policy"
  | "query";

export interface SelectionOptions {
  mode: SelectionMode;
  /** Fraction p of chunks to expand (modes random, perplexity-*, policy, query). Default 0.1. */
  fraction?: number;
  /** Policy mode: sample without replacement instead of taking the top logits. */
  sample?: boolean;
  seed?: number;
}

/**
 * What a request expands when it does not say: 5% of the chunks, those the query heuristic picks. The
 * shipped model was fine-tuned reading 10% (scripts/train_all.sh, `train finetune --select query`), yet
 * answers better at 5% with fewer positions (docs/results/table3.md: 50.2% vs 42.0% on the test questions,
 * 64.0% vs 54.5% on conversation turns). The one default of the CLI, the server, the OpenAI routes, the
 * page and the pipeline.
 */
export const DEFAULT_SELECTION: Readonly<{ mode: SelectionMode; fraction: number }> = {
  mode: "query",
  fraction: 0.05,
};

export const SELECTION_MODES: SelectionMode[] = [
  "none",
  "all",
  "random",
  "perplexity-desc",
  "perplexity-asc",
  "policy",
  "query",
];

/**
 * How many of L chunks a fraction p expands: floor(p·L), plus one more with probability frac(p·L) (one
 * uniform drawn from `rng`, always, so the draws after it do not depend on the outcome). The expected
 * count is exactly p·L. This is the one expansion rule: mixed-input training, fine-tuning and the RL
 * policy draw from the step's generator; inference (selectChunks) from the selection's seeded generator,
 * so a request with the same seed (default 0) expands the same chunks every time.
 */
export function expandCount(L: number, p: number, rng: Rng): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`selection: fraction must be in [0, 1], got ${p}`);
  const x = Math.round(p * L * 1e9) / 1e9; // 0.3·10 is 3, not 3 plus a rounding error
  const base = Math.floor(x);
  const extra = rng.uniform() < x - base ? 1 : 0;
  return Math.min(L, base + extra);
}

/** The most chunks expandCount can return (for sizing checks): ceil(p·L). */
export function maxExpandCount(L: number, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`selection: fraction must be in [0, 1], got ${p}`);
  return Math.min(L, Math.ceil(Math.round(p * L * 1e9) / 1e9));
}

/** An expansion mask over L chunks with `count` chunks chosen uniformly at random. */
export function randomMask(L: number, count: number, rng: Rng): boolean[] {
  const mask = new Array<boolean>(L).fill(false);
  for (const i of rng.shuffle(Array.from({ length: L }, (_, j) => j)).slice(0, count)) mask[i] = true;
  return mask;
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
 * (the perplexity heuristic; it costs one full-context forward pass). `prefixes` holds raw tokens read
 * before chunk j (a passage's header in a RAG prompt): they are context, not scored.
 */
export function chunkPerplexities(
  model: RefragModel,
  before: Int32Array,
  chunks: Int32Array[],
  prefixes: ReadonlyMap<number, Int32Array> = new Map(),
): Float64Array {
  return noGrad(() => {
    const parts: Int32Array[] = [before];
    const starts: number[] = [];
    let off = before.length;
    chunks.forEach((c, j) => {
      const pre = prefixes.get(j);
      if (pre !== undefined) {
        parts.push(pre);
        off += pre.length;
      }
      starts.push(off);
      parts.push(c);
      off += c.length;
    });
    const ids = new Int32Array(off);
    let at = 0;
    for (const p of parts) {
      ids.set(p, at);
      at += p.length;
    }
    const { logits } = model.decoder.forward([{ ids }]);
    const targets = new Int32Array(ids.length).fill(-100);
    for (let i = 1; i < ids.length; i++) targets[i - 1] = ids[i];
    const nll = crossEntropyRows(logits, targets);
    const out = new Float64Array(chunks.length);
    chunks.forEach((c, j) => {
      let s = 0;
      let n = 0;
      for (let t = 0; t < c.length; t++) {
        const row = starts[j] + t - 1; // the row that predicts the chunk's token t
        if (row >= 0) {
          s += nll[row];
          n++;
        }
      }
      out[j] = n === 0 ? 0 : s / n;
    });
    return out;
  });
}

// Function words and question words: shared with almost any chunk or with none, they say nothing of where
// the answer is.
const QUERY_STOPWORDS = new Set(
  (
    "a an and are as at be by did do does for from had has have how i in is it its of on or that the their " +
    "this to was were what when where which who whom whose why will with you your"
  ).split(" "),
);

/** The words of a text as the query heuristic compares them: letters and digits, lower-cased (NFKC). */
export function queryWords(text: string): string[] {
  return (
    text
      .normalize("NFKC")
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  ).filter((w) => !QUERY_STOPWORDS.has(w));
}

// Endings cut before words are compared (each before the shorter endings it contains), so that
// "independent" meets "Independence" and "borders" meets "border"; a stem keeps at least 4 letters.
const QUERY_SUFFIXES = [
  "ations",
  "ation",
  "ences",
  "ence",
  "ents",
  "ent",
  "ings",
  "ing",
  "ies",
  "ed",
  "es",
  "s",
];

/** A word's stem as the query heuristic compares it (a light suffix cut, not a linguistic stemmer). */
export function queryStem(word: string): string {
  for (const s of QUERY_SUFFIXES)
    if (word.endsWith(s) && word.length - s.length >= 4) return word.slice(0, -s.length);
  return word;
}

/** What the query heuristic reads of one chunk: its text (prompt.ts chunkQueryTexts) and its passage's title. */
export interface QueryChunk {
  text: string;
  title?: string;
}

/**
 * The query heuristic's score of each chunk. Words are compared by stem (queryStem). Each of the
 * question's distinct words that the chunk's text holds adds ln(1 + L / df), where df is how many of the L
 * chunks hold it (words every passage repeats weigh little), twice that where the word opens a line that
 * holds a colon (a field name: "Independence: 26 July 1847" rather than "independent body"). The sum is
 * scaled by (t + 1) / (n + 1) for a passage title of n distinct words of which the question holds t, so that
 * for a question about Guinea the "Guinea" passages go before "Papua New Guinea". A word cut by a chunk
 * boundary counts in neither part. Chunks that share no word score 0.
 */
export function queryScores(question: string, chunks: readonly QueryChunk[]): Float64Array {
  const stems = (text: string) => queryWords(text).map(queryStem);
  const q = new Set(stems(question));
  const holds = chunks.map((c) => {
    const weight = new Map<string, number>();
    for (const line of c.text.split("\n")) {
      const key = line.includes(":");
      stems(line).forEach((w, i) => {
        if (q.has(w)) weight.set(w, Math.max(weight.get(w) ?? 0, key && i === 0 ? 2 : 1));
      });
    }
    return weight;
  });
  const df = new Map<string, number>();
  for (const h of holds) for (const w of h.keys()) df.set(w, (df.get(w) ?? 0) + 1);
  const L = chunks.length;
  return Float64Array.from(holds, (h, j) => {
    let s = 0;
    for (const [w, weight] of h) s += weight * Math.log(1 + L / df.get(w)!);
    const title = new Set(stems(chunks[j].title ?? ""));
    if (title.size > 0) s *= ([...title].filter((w) => q.has(w)).length + 1) / (title.size + 1);
    return s;
  });
}

/** The expansion mask (true = raw tokens) for one context. */
export function selectChunks(
  model: RefragModel,
  o: SelectionOptions,
  ctx: {
    before: Int32Array;
    chunks: Int32Array[];
    vectors: Tensor;
    /** Raw tokens before chunk j (passage headers), read by the perplexity heuristic. */
    prefixes?: ReadonlyMap<number, Int32Array>;
    /** The question and what it reads of each chunk (prompt.ts chunkQueryTexts), for the query heuristic. */
    query?: { question: string; chunkTexts: () => readonly QueryChunk[] };
  },
): boolean[] {
  const L = ctx.chunks.length;
  const mask = new Array<boolean>(L).fill(false);
  const rng = new Rng(o.seed ?? 0);
  const n =
    o.mode === "none" || o.mode === "all" ? 0 : expandCount(L, o.fraction ?? DEFAULT_SELECTION.fraction, rng);
  let picks: number[] = [];
  switch (o.mode) {
    case "none":
      return mask;
    case "all":
      return mask.fill(true);
    case "random":
      return randomMask(L, n, rng);
    case "perplexity-desc":
    case "perplexity-asc": {
      const ppl = chunkPerplexities(model, ctx.before, ctx.chunks, ctx.prefixes);
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
    case "query": {
      if (ctx.query === undefined) throw new Error("selection: mode 'query' needs a question");
      const texts = ctx.query.chunkTexts();
      if (texts.length !== L) throw new Error(`selection: ${texts.length} chunk texts for ${L} chunks`);
      picks = topIndices(queryScores(ctx.query.question, texts), n);
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
