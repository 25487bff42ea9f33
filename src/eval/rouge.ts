// ROUGE (Lin 2004) for the summarisation rows: ROUGE-N from clipped n-gram overlap, ROUGE-L from the
// longest common subsequence, each as precision, recall and F-measure (β = 1, the F1 that rouge-score and
// most papers report). Tokens as rouge-score makes them without stemming: lower case, every run of
// characters other than letters and digits is a separator.

export interface RougeScore {
  precision: number;
  recall: number;
  f: number;
}

export interface RougeScores {
  rouge1: RougeScore;
  rouge2: RougeScore;
  rougeL: RougeScore;
}

/** Lower-cased words (letters and digits); everything else separates. */
export function rougeTokens(text: string): string[] {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

function score(overlap: number, candidate: number, reference: number): RougeScore {
  const precision = candidate === 0 ? 0 : overlap / candidate;
  const recall = reference === 0 ? 0 : overlap / reference;
  const f = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f };
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join("\u0000");
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** ROUGE-N: n-grams shared by candidate and reference, each counted at most as often as in both. */
export function rougeN(candidate: string, reference: string, n: number): RougeScore {
  if (!Number.isInteger(n) || n < 1) throw new Error(`rougeN: n must be a positive integer, got ${n}`);
  const c = ngramCounts(rougeTokens(candidate), n);
  const r = ngramCounts(rougeTokens(reference), n);
  let overlap = 0;
  for (const [g, k] of c) overlap += Math.min(k, r.get(g) ?? 0);
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return score(overlap, total(c), total(r));
}

/** Length of the longest common subsequence of two token lists (dynamic programming, two rows). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const row = new Array<number>(b.length + 1).fill(0);
    for (let j = 0; j < b.length; j++) row[j + 1] = x === b[j] ? prev[j] + 1 : Math.max(prev[j + 1], row[j]);
    prev = row;
  }
  return prev[b.length];
}

/** ROUGE-L (summary-level for one sentence each): LCS / candidate length, LCS / reference length, F1. */
export function rougeLcs(candidate: string, reference: string): RougeScore {
  const a = rougeTokens(candidate);
  const b = rougeTokens(reference);
  return score(lcsLength(a, b), a.length, b.length);
}

/** ROUGE-1, -2 and -L of a candidate, each against the reference that scores best on it (the QA metrics
 * likewise take the best reference); zeros without references. */
export function rougeScores(candidate: string, references: readonly string[]): RougeScores {
  const zero = { precision: 0, recall: 0, f: 0 };
  const best = (f: (ref: string) => RougeScore) =>
    references.map(f).reduce((a, b) => (b.f > a.f ? b : a), zero);
  return {
    rouge1: best((r) => rougeN(candidate, r, 1)),
    rouge2: best((r) => rougeN(candidate, r, 2)),
    rougeL: best((r) => rougeLcs(candidate, r)),
  };
}
