// Dense retrieval fine-tuning (as DPR / DRAGON do): the encoder learns to put a question next to its gold
// passage. A step draws B (question, gold passage) pairs; every other passage of the batch is a negative
// for a question (in-batch negatives), and the loss is InfoNCE: cross-entropy over the B×B cosine
// similarities divided by a temperature, the diagonal being the right answers. Embeddings are the
// mean-pooled, unit-length encoder states of src/retrieval/dense.ts, the same as at indexing and query
// time. A function from an encoder checkpoint (and config) to a checkpoint of the tuned encoder.
import { crossEntropy, linear, scale } from "../../engine/ops.js";
import { noGrad } from "../../engine/tensor.js";
import type { Rng } from "../../engine/random.js";
import type { RobertaModel } from "../../models/roberta.js";
import {
  embedSequences,
  loadEncoder,
  maxRetrievalTokens,
  passageText,
  retrievalSequences,
  type TextTokenizer,
} from "../../retrieval/dense.js";
import { ioOptions, trainLoop, type LoopConfig, type StageIO, type TrainingState } from "../loop.js";

export interface DenseConfig extends LoopConfig {
  /** Pairs per step (each question sees batch - 1 negatives). */
  batch: number;
  /** Softmax temperature over cosine similarities (default 0.05). */
  temperature?: number;
  /** Tokens read per text, [bos] included (default 128, capped by the position table). */
  maxTokens?: number;
}

/** A training pair: a question and the passage text (title + text) that answers it. */
export interface DensePair {
  question: string;
  passage: string;
}

interface Tokenised {
  q: Int32Array;
  p: Int32Array;
}

/** InfoNCE with in-batch negatives for one batch of tokenised pairs (a scalar tensor). */
export function inBatchLoss(encoder: RobertaModel, pairs: readonly Tokenised[], temperature: number) {
  const q = embedSequences(
    encoder,
    pairs.map((x) => x.q),
  );
  const p = embedSequences(
    encoder,
    pairs.map((x) => x.p),
  );
  const logits = scale(linear(q, p), 1 / temperature); // [B, B]: q_i · p_j
  return crossEntropy(
    logits,
    Int32Array.from(pairs, (_, i) => i),
  );
}

/** Draws `n` distinct pairs (distinct passages, so no negative is a copy of the positive). */
function drawBatch(
  data: readonly Tokenised[],
  passageKey: readonly string[],
  n: number,
  rng: Rng,
): Tokenised[] {
  const out: Tokenised[] = [];
  const used = new Set<string>();
  for (let tries = 0; out.length < n && tries < 20 * n; tries++) {
    const i = rng.int(data.length);
    if (used.has(passageKey[i])) continue;
    used.add(passageKey[i]);
    out.push(data[i]);
  }
  return out;
}

export async function trainDense(
  encoder: RobertaModel,
  tokenizer: TextTokenizer,
  pairs: readonly DensePair[],
  c: DenseConfig,
  io: StageIO,
  opts: { validation?: readonly DensePair[] } = {},
): Promise<TrainingState> {
  if (!Number.isInteger(c.batch) || c.batch < 2)
    throw new Error(`dense: batch must be an integer >= 2 (in-batch negatives), got ${c.batch}`);
  const temperature = c.temperature ?? 0.05;
  if (!(temperature > 0)) throw new Error(`dense: temperature must be > 0, got ${temperature}`);
  const maxTokens = Math.min(c.maxTokens ?? 128, maxRetrievalTokens(encoder.config));
  const tokenise = (ps: readonly DensePair[]): Tokenised[] => {
    const q = retrievalSequences(
      tokenizer,
      encoder,
      ps.map((x) => x.question),
      maxTokens,
    );
    const p = retrievalSequences(
      tokenizer,
      encoder,
      ps.map((x) => x.passage),
      maxTokens,
    );
    return ps.map((_, i) => ({ q: q[i], p: p[i] }));
  };
  const train = tokenise(pairs);
  const keys = pairs.map((x) => x.passage);
  if (new Set(keys).size < c.batch)
    throw new Error(`dense: ${new Set(keys).size} distinct passages, fewer than the batch of ${c.batch}`);
  // Validation: fixed consecutive batches of the held-out pairs, the same every time.
  const valid = opts.validation === undefined ? [] : tokenise(opts.validation);
  const validBatches: Tokenised[][] = [];
  for (let i = 0; i + c.batch <= valid.length && validBatches.length < 16; i += c.batch)
    validBatches.push(valid.slice(i, i + c.batch));
  return trainLoop({
    stage: "dense",
    model: encoder,
    config: c,
    modelConfig: encoder.config,
    ...ioOptions(io),
    loss: (_step, rng) => inBatchLoss(encoder, drawBatch(train, keys, c.batch, rng), temperature),
    validate:
      validBatches.length === 0
        ? undefined
        : () =>
            noGrad(
              () =>
                validBatches.reduce((s, b) => s + inBatchLoss(encoder, b, temperature).item(), 0) /
                validBatches.length,
            ),
  });
}

/** The stage from checkpoint folders: loads the encoder (RoBERTa, MLM or REFRAG checkpoint) and trains it. */
export async function trainDenseFrom(
  encoderDir: string,
  tokenizer: TextTokenizer,
  pairs: readonly DensePair[],
  c: DenseConfig,
  io: StageIO,
  opts: { validation?: readonly DensePair[] } = {},
): Promise<TrainingState> {
  return trainDense(await loadEncoder(encoderDir), tokenizer, pairs, c, io, opts);
}

/** Training pairs from QA items: each question with each of its gold passages found in `passages`. */
export function densePairs(
  items: readonly { question: string; gold_passage_ids: readonly string[] }[],
  passages: ReadonlyMap<string, { title: string; text: string }>,
): DensePair[] {
  return items.flatMap((q) =>
    q.gold_passage_ids.flatMap((id) => {
      const p = passages.get(id);
      return p === undefined ? [] : [{ question: q.question, passage: passageText(p) }];
    }),
  );
}
