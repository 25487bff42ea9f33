// The numbers the paper tables are made of, each small enough to check by hand:
//   squadNormalize / containsAnswer / tokenF1   question answering as SQuAD scores it (Rajpurkar et al.,
//                                                the official evaluate-v1.1 script): lower case, punctuation
//                                                removed, articles a/an/the removed, whitespace collapsed;
//                                                accuracy = a normalised reference occurs in the normalised
//                                                output as whole words, F1 = bag-of-tokens overlap, each the
//                                                max over the references
//   normalisedGain                               Table 1's (no − x) / (no − full)
//   fractionForRate                              the expanded fraction p that gives an effective compression
//                                                rate r at chunk size k: k / (1 − p + k·p) = r

// string.punctuation of Python (what SQuAD deletes), plus any Unicode punctuation.
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~\p{P}]/gu;

/** SQuAD's normalize_answer: lower case, punctuation deleted (not spaced), a/an/the removed, one space. */
export function squadNormalize(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .replace(PUNCTUATION, "")
    .replace(/\b(a|an|the)\b/g, " ")
    .split(/\s+/)
    .filter(Boolean)
    .join(" ");
}

/** True when some non-empty normalised reference occurs in the normalised output as whole words. */
export function containsAnswer(output: string, answers: readonly string[]): boolean {
  const out = ` ${squadNormalize(output)} `;
  return answers.some((a) => {
    const n = squadNormalize(a);
    return n !== "" && out.includes(` ${n} `);
  });
}

/** SQuAD token F1 of one output against one reference (bags of normalised tokens). */
export function f1Against(output: string, reference: string): number {
  const pred = squadNormalize(output).split(" ").filter(Boolean);
  const gold = squadNormalize(reference).split(" ").filter(Boolean);
  // SQuAD v2's rule for empty answers: both empty is a match, one empty is 0.
  if (pred.length === 0 || gold.length === 0) return pred.length === gold.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of gold) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of pred) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const p = same / pred.length;
  const r = same / gold.length;
  return (2 * p * r) / (p + r);
}

/** Token F1 against the best-matching reference (0 without references). */
export function tokenF1(output: string, answers: readonly string[]): number {
  return answers.reduce((best, a) => Math.max(best, f1Against(output, a)), 0);
}

/** Table 1's normalised gain (no − x) / (no − full): 0 is no context, 1 is full context; null when
 * no = full (the context does not help at all, so there is nothing to normalise by). */
export function normalisedGain(no: number, full: number, x: number): number | null {
  const span = no - full;
  if (!Number.isFinite(span) || Math.abs(span) < 1e-12 || !Number.isFinite(x)) return null;
  return (no - x) / span;
}

/**
 * The expanded fraction p at which a model with chunk size k reads at an effective compression rate r:
 * k / (1 − p + k·p) = r, so p = (k/r − 1) / (k − 1). r = k is p = 0 (every chunk compressed), r = 1 is
 * p = 1 (every chunk raw); rates outside [1, k] cannot be reached.
 */
export function fractionForRate(k: number, rate: number): number {
  if (!Number.isInteger(k) || k < 2) throw new Error(`fractionForRate: chunk size k must be ≥ 2, got ${k}`);
  if (!(rate >= 1 && rate <= k))
    throw new Error(
      `fractionForRate: an effective rate of ${rate} is out of reach at k = ${k} (between 1, all raw, and ${k}, all compressed)`,
    );
  return (k / rate - 1) / (k - 1);
}
