// Fine-tuning a REFRAG model on RAG examples (question + retrieved passages -> answer), in the prompt
// layout of inference (src/infer/prompt.ts: passage numbers and titles raw, passage text as chunks).
// Passages are read as chunk vectors, a fraction p of chunks as raw tokens (the expansion rule of mixed
// input and inference), and the loss is the answer's next-token loss (plus the end token), so the model
// learns to answer from compressed context and to stop.
import { add, crossEntropy, scale, sliceRows } from "../../engine/ops.js";
import { Rng } from "../../engine/random.js";
import type { Tensor } from "../../engine/tensor.js";
import {
  answerTokens,
  checkHistory,
  chunkQueryTexts,
  promptIds,
  promptPassages,
  promptPositions,
  promptSegments,
  promptTokenIds,
  type PipelineTokenizer,
  type PromptPassage,
} from "../../infer/prompt.js";
import { expandCount, maxExpandCount, queryScores, randomMask, topIndices } from "../../infer/selection.js";
import type { RefragModel } from "../../models/refrag.js";
import type { RagExample } from "../../retrieval/rag_examples.js";
import { ioOptions, trainLoop, type LoopConfig, type TrainingState, type StageIO } from "../loop.js";

/** Which chunks fine-tuning reads raw: drawn at random, or the query heuristic's top chunks. */
export const FINETUNE_SELECTIONS = ["random", "query"] as const;
export type FinetuneSelection = (typeof FINETUNE_SELECTIONS)[number];

export interface FinetuneConfig extends LoopConfig {
  /** Examples per step. */
  batch: number;
  /** Fraction of each example's chunks read as raw tokens (the paper's p; 0 = all compressed). */
  expandFraction: number;
  /** Which chunks are read raw: drawn at random (default), or the query heuristic's top chunks, so that
   * training reads what `--select query` inference reads. */
  select?: FinetuneSelection;
}

export interface PreparedExample {
  before: Int32Array;
  passages: PromptPassage[];
  /** `<|answer|>` followed by the answer tokens and `<|eos|>`: inputs are all but the last, targets all but the first. */
  answer: Int32Array;
  /** With select "query": chunk indices, best first by the query heuristic (src/infer/selection.ts). */
  queryOrder?: number[];
}

/** Tokenise once; examples that do not fit the decoder's window (with the most chunks p can expand) are left out. */
export function prepareExamples(
  model: RefragModel,
  tokenizer: PipelineTokenizer,
  examples: readonly RagExample[],
  expandFraction: number,
  select: FinetuneSelection = "random",
): { prepared: PreparedExample[]; dropped: number } {
  const special = promptTokenIds(tokenizer);
  const limit = model.config.decoder.max_position_embeddings;
  const prepared: PreparedExample[] = [];
  let dropped = 0;
  for (const [i, ex] of examples.entries()) {
    if (typeof ex.question !== "string" || !Array.isArray(ex.passages) || !Array.isArray(ex.answers))
      throw new Error(
        `example ${i}: expected {question, passages: (string | {title?, text})[], answers: string[]}`,
      );
    if (typeof ex.answers[0] !== "string" || ex.answers[0] === "")
      throw new Error(`example ${i}: empty answer`);
    const { before, after } = promptIds(tokenizer, ex.question, special, checkHistory(ex.history));
    const passages = promptPassages(tokenizer, ex.passages, model.chunkSize);
    const answer = Int32Array.from([...after, ...answerTokens(tokenizer, ex.answers[0]), special.eos]);
    const n = passages.reduce((a, p) => a + p.chunks.length, 0);
    const positions =
      promptPositions(before, passages, answer.subarray(0, -1)) +
      maxExpandCount(n, expandFraction) * (model.chunkSize - 1);
    if (positions > limit) {
      dropped++;
      continue;
    }
    const queryOrder =
      select === "query"
        ? topIndices(queryScores(ex.question, chunkQueryTexts(tokenizer, passages)), n)
        : undefined;
    prepared.push({ before, passages, answer, ...(queryOrder && { queryOrder }) });
  }
  return { prepared, dropped };
}

/** The answer loss of one example, with `rng` drawing which chunks are read raw. */
export function exampleLoss(model: RefragModel, ex: PreparedExample, p: number, rng: Rng): Tensor {
  const chunks = ex.passages.flatMap((x) => x.chunks);
  const n = chunks.length;
  const count = expandCount(n, p, rng);
  let expand: boolean[];
  if (ex.queryOrder === undefined) expand = randomMask(n, count, rng);
  else {
    expand = new Array<boolean>(n).fill(false);
    for (const j of ex.queryOrder.slice(0, count)) expand[j] = true;
  }
  const after = ex.answer.subarray(0, -1);
  const segs =
    n === 0
      ? [{ ids: ex.before }, { ids: after }]
      : promptSegments(model, {
          before: ex.before,
          passages: ex.passages,
          projected: model.project(model.encodeChunks(chunks)),
          expand,
          after,
        });
  const hidden = model.decoder.model.forward(model.decoder.model.embed(segs), { batch: 1 });
  const m = ex.answer.length - 1;
  const logits = model.decoder.logits(sliceRows(hidden, hidden.rows - m, hidden.rows));
  return crossEntropy(logits, ex.answer.subarray(1));
}

export async function finetune(
  model: RefragModel,
  tokenizer: PipelineTokenizer,
  examples: readonly RagExample[],
  c: FinetuneConfig,
  io: StageIO,
  /** Held-out examples: their mean answer loss is measured every evalEvery steps (the same draws each time). */
  validation?: readonly RagExample[],
): Promise<TrainingState> {
  if (!(c.expandFraction >= 0 && c.expandFraction <= 1))
    throw new Error(`finetune: expandFraction must be in [0, 1], got ${c.expandFraction}`);
  if (!Number.isInteger(c.batch) || c.batch < 1)
    throw new Error(`finetune: batch must be a positive integer, got ${c.batch}`);
  const { prepared, dropped } = prepareExamples(model, tokenizer, examples, c.expandFraction, c.select);
  if (prepared.length === 0)
    throw new Error(`finetune: none of the ${examples.length} examples fits the decoder's context window`);
  if (dropped > 0)
    console.error(`finetune: ${dropped} of ${examples.length} examples do not fit the window, left out`);
  const held =
    validation && prepareExamples(model, tokenizer, validation, c.expandFraction, c.select).prepared;
  if (held !== undefined && held.length === 0)
    throw new Error(`finetune: none of the ${validation!.length} validation examples fits the window`);
  return trainLoop({
    stage: "finetune",
    model,
    trainable: (name) => !name.startsWith("policy."),
    config: c,
    modelConfig: model.config,
    ...ioOptions(io),
    loss: (_step, rng) => {
      let total: Tensor | null = null;
      for (let b = 0; b < c.batch; b++) {
        const loss = exampleLoss(model, prepared[rng.int(prepared.length)], c.expandFraction, rng);
        total = total === null ? loss : add(total, loss);
      }
      return scale(total!, 1 / c.batch);
    },
    validate:
      held &&
      (() => {
        const rng = new Rng(0x5eed);
        let sum = 0;
        for (const ex of held) sum += exampleLoss(model, ex, c.expandFraction, rng).item();
        return sum / held.length;
      }),
  });
}
