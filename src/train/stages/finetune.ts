// Fine-tuning a REFRAG model on RAG examples (question + retrieved passages -> answer), in the prompt
// layout the pipeline uses at inference. Passages are read as chunk vectors, a random fraction p of chunks
// as raw tokens (as in mixed-input training), and the loss is the answer's next-token loss (plus the end
// token), so the model learns to answer from compressed context and to stop.
import { add, crossEntropy, scale, sliceRows } from "../../engine/ops.js";
import type { Tensor } from "../../engine/tensor.js";
import { checkHistory, promptIds, promptTokenIds, type PipelineTokenizer } from "../../infer/pipeline.js";
import { chunkTokens, type RefragModel } from "../../models/refrag.js";
import type { RagExample } from "../../retrieval/rag_examples.js";
import { ioOptions, trainLoop, type LoopConfig, type TrainingState, type StageIO } from "../loop.js";

export interface FinetuneConfig extends LoopConfig {
  /** Examples per step. */
  batch: number;
  /** Fraction of each example's chunks read as raw tokens (the paper's p; 0 = all compressed). */
  expandFraction: number;
}

interface Prepared {
  before: Int32Array;
  chunks: Int32Array[];
  /** `<|answer|>` followed by the answer tokens and `<|eos|>`: inputs are all but the last, targets all but the first. */
  answer: Int32Array;
}

/** Tokenise once; examples that do not fit the decoder's window even fully compressed are left out. */
export function prepareExamples(
  model: RefragModel,
  tokenizer: PipelineTokenizer,
  examples: readonly RagExample[],
  expandFraction: number,
): { prepared: Prepared[]; dropped: number } {
  const special = promptTokenIds(tokenizer);
  const limit = model.config.decoder.max_position_embeddings;
  const prepared: Prepared[] = [];
  let dropped = 0;
  for (const [i, ex] of examples.entries()) {
    if (typeof ex.question !== "string" || !Array.isArray(ex.passages) || !Array.isArray(ex.answers))
      throw new Error(`example ${i}: expected {question, passages: string[], answers: string[]}`);
    if (typeof ex.answers[0] !== "string" || ex.answers[0] === "")
      throw new Error(`example ${i}: empty answer`);
    const { before, after } = promptIds(tokenizer, ex.question, special, checkHistory(ex.history));
    const chunks = ex.passages.flatMap((p) =>
      chunkTokens(Int32Array.from(tokenizer.encode(p, { allowSpecial: false })), model.chunkSize),
    );
    const answer = Int32Array.from([
      ...after,
      ...tokenizer.encode(ex.answers[0], { allowSpecial: false }),
      special.eos,
    ]);
    const expanded = Math.round(expandFraction * chunks.length);
    const positions = before.length + chunks.length + expanded * (model.chunkSize - 1) + answer.length - 1;
    if (positions > limit) dropped++;
    else prepared.push({ before, chunks, answer });
  }
  return { prepared, dropped };
}

export async function finetune(
  model: RefragModel,
  tokenizer: PipelineTokenizer,
  examples: readonly RagExample[],
  c: FinetuneConfig,
  io: StageIO,
): Promise<TrainingState> {
  if (!(c.expandFraction >= 0 && c.expandFraction <= 1))
    throw new Error(`finetune: expandFraction must be in [0, 1], got ${c.expandFraction}`);
  if (!Number.isInteger(c.batch) || c.batch < 1)
    throw new Error(`finetune: batch must be a positive integer, got ${c.batch}`);
  const { prepared, dropped } = prepareExamples(model, tokenizer, examples, c.expandFraction);
  if (prepared.length === 0)
    throw new Error(`finetune: none of the ${examples.length} examples fits the decoder's context window`);
  if (dropped > 0)
    console.error(`finetune: ${dropped} of ${examples.length} examples do not fit the window, left out`);
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
        const ex = prepared[rng.int(prepared.length)];
        const n = ex.chunks.length;
        const expand = new Array<boolean>(n).fill(false);
        for (const i of rng
          .shuffle(Array.from({ length: n }, (_, j) => j))
          .slice(0, Math.round(c.expandFraction * n)))
          expand[i] = true;
        const segs =
          n === 0
            ? [{ ids: ex.before }, { ids: ex.answer.subarray(0, -1) }]
            : model.buildSegments({
                before: ex.before,
                chunks: ex.chunks,
                projected: model.project(model.encodeChunks(ex.chunks)),
                expand,
                after: ex.answer.subarray(0, -1),
              });
        const hidden = model.decoder.model.forward(model.decoder.model.embed(segs), { batch: 1 });
        const m = ex.answer.length - 1;
        const logits = model.decoder.logits(sliceRows(hidden, hidden.rows - m, hidden.rows));
        const loss = crossEntropy(logits, ex.answer.subarray(1));
        total = total === null ? loss : add(total, loss);
      }
      return scale(total!, 1 / c.batch);
    },
  });
}
