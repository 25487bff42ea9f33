// Pre-training from scratch (no pretrained weights exist here): the LLaMA decoder on next-token prediction
// and the RoBERTa encoder on masked-language modelling, each over a token stream of the training split.
// A stage is a function from (initial checkpoint or config, stage config) to a checkpoint folder.
import { crossEntropy } from "../../engine/ops.js";
import { Rng } from "../../engine/random.js";
import type { LlamaConfig, RobertaConfig } from "../../io/config.js";
import { LlamaForCausalLM } from "../../models/llama.js";
import { padBatch, RobertaForMaskedLM } from "../../models/roberta.js";
import { ioOptions, trainLoop, type LoopConfig, type StageIO, type TrainingState } from "../loop.js";
import { sampleWindows } from "../tokens.js";

export interface LmStageConfig extends LoopConfig {
  batch: number;
  seqLen: number;
}

/** Held-out data for a stage's validation loss. */
export interface ValidationData {
  stream: Uint16Array;
  /** Windows measured each time (fixed: the same windows at every measurement). */
  windows?: number;
}

/**
 * Next-token pre-training of a LLaMA decoder. Every window starts with <bos>, as every prompt does at
 * inference. `init` continues from trained weights (a later phase, or a longer window) instead of a
 * random initialisation; the optimizer starts afresh either way.
 */
export async function pretrainDecoder(
  config: LlamaConfig,
  stream: Uint16Array,
  c: LmStageConfig,
  io: StageIO,
  opts: { init?: LlamaForCausalLM; validation?: ValidationData } = {},
): Promise<TrainingState> {
  if (c.seqLen > config.max_position_embeddings)
    throw new Error(
      `pretrain: seqLen ${c.seqLen} exceeds max_position_embeddings ${config.max_position_embeddings}`,
    );
  const bos = config.bos_token_id;
  if (bos === undefined || bos === null) throw new Error("pretrain: the decoder config has no bos_token_id");
  const model = opts.init ?? new LlamaForCausalLM(config, new Rng(c.seed ?? 0));
  const lossOf = (inputs: Int32Array, targets: Int32Array, B: number) =>
    crossEntropy(model.forward([{ ids: inputs }], { batch: B }).logits, targets);
  const val = opts.validation;
  return trainLoop({
    stage: "pretrain-decoder",
    model,
    config: c,
    modelConfig: config,
    ...ioOptions(io),
    loss: (_step, rng) => {
      const { inputs, targets } = sampleWindows(stream, c.batch, c.seqLen, rng, { bos });
      return lossOf(inputs, targets, c.batch);
    },
    validate:
      val &&
      (() => {
        const rng = new Rng(0x5eed);
        const n = val.windows ?? 16;
        let sum = 0;
        for (let done = 0; done < n; done += c.batch) {
          const B = Math.min(c.batch, n - done);
          const { inputs, targets } = sampleWindows(val.stream, B, c.seqLen, rng, { bos });
          sum += lossOf(inputs, targets, B).item() * B;
        }
        return sum / n;
      }),
  });
}

export interface MlmStageConfig extends LoopConfig {
  batch: number;
  /** Tokens per sequence (the encoder reads chunks of k tokens plus one, so short sequences suffice). */
  seqLen: number;
  maskProb?: number;
  /** Sequence lengths vary uniformly in [minLen, seqLen] so every position and padding is trained. */
  minLen?: number;
}

/** BERT-style masking: of the chosen positions, 80% become <|mask|>, 10% a random token, 10% stay. */
export function maskTokens(
  ids: Int32Array,
  lengths: Int32Array,
  T: number,
  maskId: number,
  vocab: number,
  firstRegular: number,
  p: number,
  rng: Rng,
): { inputs: Int32Array; targets: Int32Array } {
  const inputs = ids.slice();
  const targets = new Int32Array(ids.length).fill(-100);
  for (let b = 0; b < lengths.length; b++)
    for (let t = 1; t < lengths[b]; t++) {
      const i = b * T + t;
      if (rng.uniform() >= p) continue;
      targets[i] = ids[i];
      const r = rng.uniform();
      if (r < 0.8) inputs[i] = maskId;
      else if (r < 0.9) inputs[i] = firstRegular + rng.int(vocab - firstRegular);
    }
  return { inputs, targets };
}

/** Masked-LM pre-training of the RoBERTa encoder on short windows of the stream, [bos] + tokens. */
export async function pretrainEncoder(
  config: RobertaConfig,
  stream: Uint16Array,
  maskId: number,
  firstRegular: number,
  c: MlmStageConfig,
  io: StageIO,
  opts: { embeddings?: Float32Array } = {},
): Promise<TrainingState> {
  const model = new RobertaForMaskedLM(config, new Rng(c.seed ?? 0));
  if (opts.embeddings)
    setScaledEmbeddings(
      model.roberta.embeddings.word_embeddings.weight.data,
      opts.embeddings,
      config.initializer_range,
    );
  const bos = config.bos_token_id ?? 0;
  const minLen = c.minLen ?? Math.max(2, Math.floor(c.seqLen / 4));
  return trainLoop({
    stage: "pretrain-encoder",
    model,
    config: c,
    modelConfig: config,
    ...ioOptions(io),
    loss: (_step, rng) => {
      const seqs: Int32Array[] = [];
      for (let b = 0; b < c.batch; b++) {
        const len = minLen + rng.int(c.seqLen - minLen + 1);
        const start = rng.int(stream.length - len);
        const s = new Int32Array(len + 1);
        s[0] = bos;
        for (let t = 0; t < len; t++) s[t + 1] = stream[start + t];
        seqs.push(s);
      }
      const batch = padBatch(seqs, config.pad_token_id);
      const { inputs, targets } = maskTokens(
        batch.ids,
        batch.lengths,
        batch.T,
        maskId,
        config.vocab_size,
        firstRegular,
        c.maskProb ?? 0.15,
        rng,
      );
      return crossEntropy(model.forward({ ...batch, ids: inputs }), targets);
    },
  });
}

/**
 * Start an encoder's word embeddings from another model's (a decoder with the same tokenizer and width):
 * the rows keep their directions and relative sizes, rescaled so their overall std is the encoder's
 * initialisation std. A small encoder then starts from token meanings the decoder already has.
 */
export function setScaledEmbeddings(target: Float32Array, source: Float32Array, std: number): void {
  if (source.length !== target.length)
    throw new Error(
      `embeddings: the source has ${source.length} values, the encoder's word embeddings ${target.length} (vocabulary × width must match)`,
    );
  let sum = 0;
  let sq = 0;
  for (const v of source) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / source.length;
  const sd = Math.sqrt(Math.max(sq / source.length - mean * mean, 0));
  if (!(sd > 0)) throw new Error("embeddings: the source embeddings are constant");
  const scale = std / sd;
  for (let i = 0; i < source.length; i++) target[i] = source[i] * scale;
}
