// The table metrics against values computed by hand: SQuAD normalisation, contained-answer accuracy,
// token F1, ROUGE-1/2/L, the normalised gain and the rate → fraction rule.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import {
  containsAnswer,
  f1Against,
  fractionForRate,
  normalisedGain,
  squadNormalize,
  tokenF1,
} from "../../src/eval/metrics.js";
import { lcsLength, rougeLcs, rougeN, rougeScores, rougeTokens } from "../../src/eval/rouge.js";
import { effectiveCompression } from "../../src/models/refrag.js";

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("SQuAD normalisation: lower case, punctuation deleted, articles dropped, one space", () => {
  assert.equal(squadNormalize("  The  Eiffel-Tower, in Paris! "), "eiffeltower in paris");
  assert.equal(squadNormalize("2,381,741 Sq. km"), "2381741 sq km");
  assert.equal(squadNormalize("An apple a day"), "apple day");
  assert.equal(squadNormalize("theory"), "theory", "only whole-word articles");
  assert.equal(squadNormalize("«Quoted» — text…"), "quoted text", "Unicode punctuation too");
});

test("contained-answer accuracy: whole normalised words, any reference, never an empty one", () => {
  assert.ok(containsAnswer("It is 2,381,741 sq km in all.", ["2381741 sq. km"]));
  assert.ok(containsAnswer("They said: the Red Fox.", ["red fox"]), "articles and case ignored");
  assert.ok(!containsAnswer("reddish", ["red"]), "whole words only");
  assert.ok(containsAnswer("blue", ["red", "Blue!"]), "any reference");
  assert.ok(!containsAnswer("the", ["the", "", "?"]), "references that normalise to nothing never match");
});

test("token F1 as SQuAD computes it, the max over references", () => {
  // pred "the cat sat on the mat" → [cat sat on mat]; gold "a cat on a hat" → [cat on hat].
  // common: cat, on = 2; precision 2/4, recall 2/3, F1 = 2·(1/2)(2/3)/(1/2 + 2/3) = 4/7.
  close(f1Against("the cat sat on the mat", "a cat on a hat"), 4 / 7, "f1");
  // Repeated tokens are matched at most as often as the reference has them: pred [x x y], gold [x y y]:
  // common x1 + y1 = 2, P = R = 2/3, F1 = 2/3.
  close(f1Against("x x y", "x y y"), 2 / 3, "bag counts");
  close(f1Against("nothing shared", "at all"), 0, "no overlap");
  close(f1Against("", "x"), 0, "empty output");
  close(f1Against("The", "a"), 1, "both normalise to nothing");
  close(tokenF1("paris france", ["London", "Paris"]), 2 / 3, "best reference: P 1/2, R 1 → 2/3");
  close(tokenF1("x", []), 0, "no references");
});

test("ROUGE-1/2/L F-measure by hand", () => {
  assert.deepEqual(rougeTokens("The cat's hat, 2nd!"), ["the", "cat", "s", "hat", "2nd"]);
  // candidate "the cat sat on the mat" (6), reference "the cat on the mat" (5).
  // ROUGE-1: clipped overlap the×2, cat, on, mat = 5: P 5/6, R 5/5, F = 2·(5/6)/(5/6 + 1) = 10/11.
  const c = "the cat sat on the mat";
  const r = "the cat on the mat";
  const r1 = rougeN(c, r, 1);
  close(r1.precision, 5 / 6, "R1 P");
  close(r1.recall, 1, "R1 R");
  close(r1.f, 10 / 11, "R1 F");
  // ROUGE-2: candidate bigrams the-cat, cat-sat, sat-on, on-the, the-mat (5); reference the-cat, cat-on,
  // on-the, the-mat (4); shared the-cat, on-the, the-mat = 3: P 3/5, R 3/4, F = 2·0.6·0.75/1.35 = 2/3.
  const r2 = rougeN(c, r, 2);
  close(r2.precision, 3 / 5, "R2 P");
  close(r2.recall, 3 / 4, "R2 R");
  close(r2.f, 2 / 3, "R2 F");
  // ROUGE-L: LCS "the cat on the mat" = 5: P 5/6, R 1, F 10/11.
  assert.equal(lcsLength(rougeTokens(c), rougeTokens(r)), 5);
  close(rougeLcs(c, r).f, 10 / 11, "RL F");
  // An LCS that is not contiguous: "a b c d" vs "a x b d": LCS a b d = 3, P = R = 3/4.
  close(rougeLcs("A b, c d.", "a x b d").f, 0.75, "RL skip");
  // Clipping: "x x x" vs "x": overlap 1, P 1/3, R 1, F 0.5.
  close(rougeN("x x x", "x", 1).f, 0.5, "clipped");
  close(rougeN("a", "a", 2).f, 0, "no bigrams");
  // Several references: each score takes its best reference.
  const s = rougeScores(c, ["completely different words", r]);
  close(s.rouge1.f, 10 / 11, "best reference R1");
  close(s.rouge2.f, 2 / 3, "best reference R2");
  assert.deepEqual(rougeScores("x", []).rougeL, { precision: 0, recall: 0, f: 0 });
});

test("normalised gain: 0 at no context, 1 at full context, (no − x)/(no − full) between", () => {
  close(normalisedGain(2.0, 1.5, 2.0)!, 0, "no");
  close(normalisedGain(2.0, 1.5, 1.5)!, 1, "full");
  // The paper's REFRAG16 at P512 on Arxiv: (1.526 − 1.157) / (1.526 − 1.075) = 0.369 / 0.451.
  close(normalisedGain(1.526, 1.075, 1.157)!, 0.369 / 0.451, "paper");
  close(normalisedGain(2.0, 1.5, 2.5)!, -1, "worse than no context is negative");
  assert.equal(normalisedGain(2, 2, 1.9), null, "no span");
});

test("effective rate → expanded fraction: k / (1 − p + k·p) = r", () => {
  close(fractionForRate(16, 8), 1 / 15, "k 16 rate 8");
  close(fractionForRate(16, 16), 0, "all compressed");
  close(fractionForRate(16, 1), 1, "all raw");
  close(fractionForRate(32, 8), 3 / 31, "k 32 rate 8: (4 − 1) / 31");
  for (const [k, r] of [
    [16, 8],
    [32, 8],
    [8, 4],
    [16, 5.5],
  ])
    close(effectiveCompression(k, fractionForRate(k, r)), r, `round trip k ${k} r ${r}`);
  assert.throws(() => fractionForRate(8, 16), /out of reach at k = 8/);
  assert.throws(() => fractionForRate(16, 0.5), /out of reach/);
});
