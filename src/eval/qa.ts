// RAG question answering: the generated answer is right when it contains a reference answer (case and
// punctuation ignored), the usual lenient match for short factual answers. One row per selection mode,
// with what each read: decoder positions, time to first token. An example whose prompt does not fit the
// decoder's window in a mode (a long manual page read raw) is counted as skipped in that mode's row, and
// the means are over the answered examples: one long input never aborts an evaluation.
import { ContextLengthError } from "../infer/generate.js";
import type { RagStats, RefragPipeline } from "../infer/pipeline.js";
import type { SelectionOptions } from "../infer/selection.js";
import type { RagExample } from "../retrieval/rag_examples.js";

export interface QaEvalRow {
  mode: string;
  fraction: number | null;
  examples: number;
  /** Examples whose prompt did not fit the decoder's window in this mode (not answered, not in the means). */
  skipped: number;
  /** Share of the answered examples whose answer contains a reference answer (null when none was answered). */
  accuracy: number | null;
  /** Mean ROUGE-L F1 against the best-matching reference (the summarisation score). */
  rougeL: number | null;
  /** The same, over the examples whose passages hold a gold passage. */
  accuracyGoldInContext: number | null;
  goldInContext: number | null;
  meanPositions: number | null;
  meanContextTokens: number | null;
  meanTtftMs: number | null;
}

/** Lower case, punctuation as spaces, whitespace collapsed. */
export function normalizeAnswer(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

export function answerMatches(output: string, answers: readonly string[]): boolean {
  const out = ` ${normalizeAnswer(output)} `;
  return answers.some((a) => {
    const n = normalizeAnswer(a);
    return n !== "" && out.includes(` ${n} `);
  });
}

/** ROUGE-L F1 of two texts over normalised words (longest common subsequence). */
export function rougeL(output: string, reference: string): number {
  const a = normalizeAnswer(output).split(" ").filter(Boolean);
  const b = normalizeAnswer(reference).split(" ").filter(Boolean);
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const row = new Array<number>(b.length + 1).fill(0);
    for (let j = 0; j < b.length; j++) row[j + 1] = x === b[j] ? prev[j] + 1 : Math.max(prev[j + 1], row[j]);
    prev = row;
  }
  const lcs = prev[b.length];
  if (lcs === 0) return 0;
  const p = lcs / a.length;
  const r = lcs / b.length;
  return (2 * p * r) / (p + r);
}

export async function evalQa(
  pipeline: RefragPipeline,
  examples: readonly RagExample[],
  selections: readonly SelectionOptions[],
  opts: { maxNewTokens?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<QaEvalRow[]> {
  if (examples.length === 0) throw new Error("evalQa: no examples");
  const rows: QaEvalRow[] = [];
  const total = examples.length * selections.length;
  let done = 0;
  for (const selection of selections) {
    let right = 0;
    let rouge = 0;
    let rightGold = 0;
    let gold = 0;
    let positions = 0;
    let ttft = 0;
    let context = 0;
    let skipped = 0;
    for (const ex of examples) {
      const stats: Partial<RagStats> = {};
      let text: string;
      try {
        text = await pipeline.answer(
          {
            question: ex.question,
            passages: ex.passages,
            history: ex.history,
            selection,
            maxNewTokens: opts.maxNewTokens ?? 32,
          },
          stats,
        );
      } catch (e) {
        if (!(e instanceof ContextLengthError)) throw e;
        skipped++;
        opts.onProgress?.(++done, total);
        continue;
      }
      const ok = answerMatches(text, ex.answers);
      rouge += Math.max(...ex.answers.map((a) => rougeL(text, a)));
      right += ok ? 1 : 0;
      if (ex.gold_in_context) {
        gold++;
        rightGold += ok ? 1 : 0;
      }
      positions += stats.promptPositions ?? 0;
      ttft += stats.ttftMs ?? 0;
      context += stats.contextTokens ?? 0;
      opts.onProgress?.(++done, total);
    }
    const n = examples.length - skipped;
    const mean = (x: number) => (n === 0 ? null : x / n);
    rows.push({
      mode: selection.mode,
      fraction: selection.mode === "none" || selection.mode === "all" ? null : (selection.fraction ?? 0.25),
      examples: examples.length,
      skipped,
      accuracy: mean(right),
      rougeL: mean(rouge),
      accuracyGoldInContext: gold === 0 ? null : rightGold / gold,
      goldInContext: mean(gold),
      meanPositions: mean(positions),
      meanContextTokens: mean(context),
      meanTtftMs: mean(ttft),
    });
  }
  return rows;
}
