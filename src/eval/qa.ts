// RAG question answering: the generated answer is scored as SQuAD scores it (metrics.ts): accuracy = a
// reference answer is contained in the output (normalised: lower case, punctuation and articles removed),
// token F1 = the best bag-of-tokens overlap with a reference; summaries get ROUGE-1/2/L F (rouge.ts).
// One row per selection mode (and passage cut), with what each read: decoder positions, time to first
// token. An example whose prompt does not fit the decoder's window in a mode (a long manual page read raw)
// is counted as skipped in that mode's row, and the means are over the answered examples: one long input
// never aborts an evaluation. Conversation turns carry their history (earlier questions with their
// reference answers), which the pipeline lays out before the question (src/infer/prompt.ts); the
// follow-up accuracy is over turns that have one. Several models in one table: qa_table.ts.
import type { KVCacheDtype } from "../models/llama.js";
import { ContextLengthError } from "../infer/generate.js";
import type { RagStats, RefragPipeline } from "../infer/pipeline.js";
import type { PassageInput } from "../infer/prompt.js";
import type { SelectionOptions } from "../infer/selection.js";
import type { RagExample } from "../retrieval/rag_examples.js";
import { containsAnswer, tokenF1 } from "./metrics.js";
import { rougeLcs, rougeScores } from "./rouge.js";

/** The answer budget of the QA evaluation (tokens). */
export const DEFAULT_MAX_NEW_TOKENS = 32;

export interface QaEvalRow {
  mode: string;
  fraction: number | null;
  examples: number;
  /** Examples whose prompt did not fit the decoder's window in this mode (not answered, not in the means). */
  skipped: number;
  /** Passages read per example: the first n (null: all the example has). */
  passages: number | null;
  /** Share of the answered examples whose answer contains a reference answer (null when none was answered). */
  accuracy: number | null;
  /** Mean SQuAD token F1 against the best-matching reference. */
  f1: number | null;
  /** Accuracy over the answered examples that have a history (conversation turns after the first). */
  accuracyFollowUp: number | null;
  followUps: number;
  /** Mean ROUGE-1 / ROUGE-2 / ROUGE-L F against the best-matching reference (the summarisation scores). */
  rouge1: number | null;
  rouge2: number | null;
  rougeL: number | null;
  /** The same, over the examples whose passages hold a gold passage. */
  accuracyGoldInContext: number | null;
  /** Share of the answered examples with a gold passage among the passages read (null when unknown:
   * examples cut by `passages` without gold ids). */
  goldInContext: number | null;
  meanPositions: number | null;
  meanContextTokens: number | null;
  /** Time to first token from the prefill (chunk vectors ready: the "cached vectors" figure). */
  meanTtftMs: number | null;
  /** Time to first token from the request: tokenising, encoding the chunks and selection included. */
  meanTtftWithEncoderMs: number | null;
}

/** Lower case, punctuation as spaces, whitespace collapsed. */
export function normalizeAnswer(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** A reference answer contained in the output, SQuAD-normalised (metrics.ts). */
export function answerMatches(output: string, answers: readonly string[]): boolean {
  return containsAnswer(output, answers);
}

/** ROUGE-L F1 of two texts (longest common subsequence of words; rouge.ts). */
export function rougeL(output: string, reference: string): number {
  return rougeLcs(output, reference).f;
}

/**
 * An example read with its first n passages only (the baseline reading 1 passage; Table 3). Whether a gold
 * passage is still among them is known when the example lists its gold ids, or when nothing was cut;
 * otherwise it is null.
 */
export function firstPassages(ex: RagExample, n: number | null): RagExample & { goldKnown: boolean } {
  if (n === null || ex.passages.length <= n) return { ...ex, goldKnown: true };
  const passages: PassageInput[] = ex.passages.slice(0, n);
  if (ex.gold_ids === undefined) return { ...ex, passages, gold_in_context: false, goldKnown: false };
  const gold = new Set(ex.gold_ids);
  const inContext = passages.some((p) => typeof p !== "string" && p.id !== undefined && gold.has(p.id));
  return { ...ex, passages, gold_in_context: inContext, goldKnown: true };
}

export async function evalQa(
  pipeline: RefragPipeline,
  examples: readonly RagExample[],
  selections: readonly SelectionOptions[],
  opts: {
    maxNewTokens?: number;
    /** KV cache storage while answering (default f32). */
    kvCache?: KVCacheDtype;
    /** Read only each example's first n passages (0: none). */
    passages?: number | null;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<QaEvalRow[]> {
  if (examples.length === 0) throw new Error("evalQa: no examples");
  const rows: QaEvalRow[] = [];
  const total = examples.length * selections.length;
  let done = 0;
  for (const selection of selections) {
    let right = 0;
    let f1 = 0;
    const rouge = { rouge1: 0, rouge2: 0, rougeL: 0 };
    let follow = 0;
    let rightFollow = 0;
    let rightGold = 0;
    let gold = 0;
    let goldKnown = 0;
    let positions = 0;
    let ttft = 0;
    let ttftAll = 0;
    let context = 0;
    let skipped = 0;
    for (const original of examples) {
      const ex = firstPassages(original, opts.passages ?? null);
      const stats: Partial<RagStats> = {};
      let text = "";
      const t0 = performance.now();
      let first: number | null = null;
      try {
        for await (const t of pipeline.generate(
          {
            question: ex.question,
            passages: ex.passages,
            history: ex.history,
            selection,
            maxNewTokens: opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
            kvCache: opts.kvCache,
          },
          stats,
        )) {
          first ??= performance.now() - t0;
          text += t.text;
        }
      } catch (e) {
        if (!(e instanceof ContextLengthError)) throw e;
        skipped++;
        opts.onProgress?.(++done, total);
        continue;
      }
      const ok = containsAnswer(text, ex.answers);
      right += ok ? 1 : 0;
      f1 += tokenF1(text, ex.answers);
      const r = rougeScores(text, ex.answers);
      rouge.rouge1 += r.rouge1.f;
      rouge.rouge2 += r.rouge2.f;
      rouge.rougeL += r.rougeL.f;
      if ((ex.history?.length ?? 0) > 0) {
        follow++;
        rightFollow += ok ? 1 : 0;
      }
      if (ex.goldKnown) goldKnown++;
      if (ex.goldKnown && ex.gold_in_context) {
        gold++;
        rightGold += ok ? 1 : 0;
      }
      positions += stats.promptPositions ?? 0;
      ttft += stats.ttftMs ?? 0;
      ttftAll += first ?? performance.now() - t0; // no token: the whole call
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
      passages: opts.passages ?? null,
      accuracy: mean(right),
      f1: mean(f1),
      accuracyFollowUp: follow === 0 ? null : rightFollow / follow,
      followUps: follow,
      rouge1: mean(rouge.rouge1),
      rouge2: mean(rouge.rouge2),
      rougeL: mean(rouge.rougeL),
      accuracyGoldInContext: gold === 0 ? null : rightGold / gold,
      goldInContext: goldKnown === 0 ? null : gold / goldKnown,
      meanPositions: mean(positions),
      meanContextTokens: mean(context),
      meanTtftMs: mean(ttft),
      meanTtftWithEncoderMs: mean(ttftAll),
    });
  }
  return rows;
}
