// REFRAG's own stages, each a function from a checkpoint to a checkpoint:
//   reconstruct  decoder frozen; encoder + projector learn to make chunk vectors from which the decoder
//                reproduces the chunks' tokens (teacher forcing, loss on the s context tokens). Curriculum.
//   cpt          continual pre-training: everything trains on next-paragraph prediction: o tokens after
//                s context tokens read as chunk vectors. Same curriculum over the number of chunks.
//   mixed        cpt with a fraction p of the chunks read as raw tokens (the expansion rule of inference).
//
// Every sequence is laid out as the perplexity evaluation and inference read one (src/infer/prompt.ts,
// lmSegments): <bos>, then the chunks, then the tokens to predict. With n chunks, context c (s tokens) and
// continuation x (o tokens):
//   reconstruct  rows: <bos> v_1 … v_n c_0 … c_{s-2}          targets from row n: c_0 … c_{s-1}
//   cpt / mixed  rows: <bos> v_1 … v_n x_0 … x_{o-2}          targets from row n: x_0 … x_{o-1}
// (an expanded chunk takes its raw tokens' rows instead of one). The context looks like retrieved
// passages: it is cut into 1 … maxPassages consecutive passages of whole chunks, each chunked on its own
// and ending in a short chunk of 1 … k tokens, n chunks in all (s ≤ n·k). Each step draws n from the
// curriculum and one layout (passage lengths, expansion mask) for its batch, so every sequence of the
// batch has the same shape.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { concatRows, crossEntropy, sliceRows } from "../../engine/ops.js";
import { Rng } from "../../engine/random.js";
import { Tensor } from "../../engine/tensor.js";
import { loadCheckpoint, type Checkpoint } from "../../io/checkpoint.js";
import { parseConfig, parseRefragConfig, type JsonObject, type LlamaConfig } from "../../io/config.js";
import { setScaledEmbeddings } from "./pretrain.js";
export { loadRefrag } from "../../models/load.js";
import { checkShapes, loadWeights, underPrefix } from "../../models/load.js";
import { llamaShapes, robertaShapes } from "../../models/shapes.js";
import { chunkTokens, RefragModel, segmentLength } from "../../models/refrag.js";
import { lmSegments } from "../../infer/prompt.js";
import { expandCount, maxExpandCount, randomMask } from "../../infer/selection.js";
import { makeCurriculum, sampleChunks, type CurriculumKind } from "../curriculum.js";
import { ioOptions, trainLoop, type LoopConfig, type TrainingState, type StageIO } from "../loop.js";

/**
 * Build a REFRAG model from a decoder checkpoint and an encoder: a pre-trained one (RobertaForMaskedLM or
 * RobertaModel checkpoint folder), or a new one of a given shape (`{ config }`, a RoBERTa config.json's
 * contents) whose word embeddings start from the decoder's (rescaled to the encoder's init std; same
 * tokenizer, same width), the choice the reconstruction comparison in docs/NOTES.md made.
 */
export async function initRefrag(
  encoder: string | { config: JsonObject },
  decoderDir: string,
  k: number,
  seed = 0,
): Promise<RefragModel> {
  let enc: Checkpoint | null = null;
  let encRaw: JsonObject;
  if (typeof encoder === "string") {
    enc = await loadCheckpoint(encoder);
    encRaw = enc.rawConfig;
  } else encRaw = encoder.config;
  const encName = enc ? enc.dir : "the new encoder's config";
  const dec = await loadCheckpoint(decoderDir);
  const e = parseConfig(encRaw, encName);
  if (e.model_type !== "roberta" && e.model_type !== "bert")
    throw new Error(`${encName}: not a RoBERTa config (model_type ${e.model_type})`);
  if (dec.config.model_type !== "llama")
    throw new Error(`${decoderDir}: not a LLaMA checkpoint (model_type ${dec.config.model_type})`);
  const d = dec.config as LlamaConfig;
  if (e.vocab_size !== d.vocab_size)
    throw new Error(
      `encoder vocabulary ${e.vocab_size} differs from the decoder's ${d.vocab_size}: REFRAG here shares one tokenizer`,
    );
  const config = parseRefragConfig({
    model_type: "refrag",
    chunk_size: k,
    encoder: encRaw,
    decoder: dec.rawConfig,
    projector: {
      model_type: "refrag_projector",
      input_size: e.hidden_size,
      hidden_size: d.hidden_size,
      output_size: d.hidden_size,
      hidden_act: "gelu",
    },
  });
  checkShapes(llamaShapes(config.decoder), dec.tensors, `checkpoint ${dec.dir}`);
  const model = new RefragModel(config, new Rng(seed));
  loadWeights(model.decoder, dec.tensors, `checkpoint ${dec.dir}`);
  if (enc) {
    // The checkpoint's tensors against the shapes the joined config implies, before they are loaded.
    const encTensors = [...enc.tensors.keys()].some((n) => n.startsWith("roberta."))
      ? underPrefix(enc.tensors, "roberta.")
      : enc.tensors;
    const encSource = `checkpoint ${enc.dir}`;
    checkShapes(robertaShapes(config.encoder), encTensors, encSource);
    loadWeights(model.encoder, encTensors, encSource);
  } else {
    if (e.hidden_size !== d.hidden_size)
      throw new Error(
        `a new encoder starts from the decoder's word embeddings, so its width must be the decoder's (${d.hidden_size}), got ${e.hidden_size}`,
      );
    setScaledEmbeddings(
      model.encoder.embeddings.word_embeddings.weight.data,
      model.decoder.model.embed_tokens.weight.data,
      config.encoder.initializer_range,
    );
  }
  return model;
}

/**
 * The same weights read at another chunk size: REFRAG8 and REFRAG32 start from REFRAG16's stages instead
 * of from scratch (the encoder's position table already covers [bos] + k tokens for k up to its size).
 */
export function withChunkSize(model: RefragModel, k: number): RefragModel {
  if (k === model.chunkSize) return model;
  const config = parseRefragConfig({ ...model.config, chunk_size: k }, `chunk size ${k}`);
  const out = new RefragModel(config, new Rng(0));
  out.loadStateDict(new Map([...model.namedParameters()].map(([name, p]) => [name, p.data])));
  return out;
}

/** The evaluated lengths (s = 2048 context tokens at k = 16, o = 256): every REFRAG stage's default. */
export const DEFAULT_MAX_CHUNKS = 128;
export const DEFAULT_CONTINUATION = 256;
export const DEFAULT_MAX_PASSAGES = 8;

export type RefragStage = "reconstruct" | "cpt" | "mixed";

export interface RefragStageConfig extends LoopConfig {
  /** Largest number of chunks per sequence (the curriculum climbs 1, 2, 4, … to this); default 128. */
  maxChunks?: number;
  /** Tokens per step (the batch holds floor(tokensPerStep / sequence tokens) sequences, at least 1). */
  tokensPerStep: number;
  /** cpt / mixed: continuation tokens predicted after the context (default 256). */
  continuation?: number;
  /** mixed: fraction p of each context's chunks read as raw tokens (the paper uses 0.1). */
  expandFraction?: number;
  /** "table8" (the paper's curriculum, default) or "none" (every step at maxChunks: Table 11's ablation). */
  curriculum?: CurriculumKind;
  curriculumStages?: number;
  /** Most passages a context is cut into (default 8). */
  maxPassages?: number;
  /**
   * reconstruct: train the decoder too (default false: frozen, as in the paper). A small decoder that has
   * never seen a chunk vector cannot learn to read one while frozen; see docs/NOTES.md.
   */
  trainDecoder?: boolean;
  /**
   * Keep the encoder's weights as they are (the projector and the rest still learn): a channel learnt at
   * one chunk is not worn down while the decoder learns to find the vectors at longer lengths.
   */
  freezeEncoder?: boolean;
}

/** Held-out data: its loss at maxChunks, on the same sequences every time. */
export interface RefragValidation {
  stream: Uint16Array;
  /** Sequences measured (default 8). */
  sequences?: number;
}

/** One step's sequences: per sample its chunks (passage by passage), tokens to predict, expansion mask. */
export interface StageBatch {
  chunks: Int32Array[][];
  predicted: Int32Array[];
  expand: boolean[];
}

/**
 * Passage lengths of a context of n chunks of k: 1 … min(n, maxPassages) passages of whole chunks, each
 * ending in a chunk of 1 … k tokens (drawn uniformly), n chunks in all.
 */
export function passageLengths(n: number, k: number, rng: Rng, maxPassages = DEFAULT_MAX_PASSAGES): number[] {
  const P = 1 + rng.int(Math.min(n, Math.max(1, maxPassages)));
  const cuts = rng
    .shuffle(Array.from({ length: n - 1 }, (_, i) => i + 1))
    .slice(0, P - 1)
    .sort((a, b) => a - b);
  const bounds = [0, ...cuts, n];
  return Array.from({ length: P }, (_, i) => (bounds[i + 1] - bounds[i] - 1) * k + 1 + rng.int(k));
}

/** Tokens to predict after the context (reconstruction: the context itself). */
function predictedTokens(stage: RefragStage, o: number, n: number, k: number): number {
  return stage === "reconstruct" ? n * k : o;
}

/** Decoder positions of the longest sequence of a stage: <bos>, chunks (ceil(p·n) of them raw), predicted − 1. */
export function stagePositions(stage: RefragStage, n: number, k: number, o: number, p: number): number {
  return 1 + n + maxExpandCount(n, p) * (k - 1) + predictedTokens(stage, o, n, k) - 1;
}

function window(stream: Uint16Array, len: number, rng: Rng): Int32Array {
  if (stream.length < len + 1)
    throw new Error(`stream of ${stream.length} tokens is shorter than a window of ${len}`);
  const start = rng.int(stream.length - len);
  return Int32Array.from(stream.subarray(start, start + len));
}

/** B sequences of one layout: n chunks cut into passages, o continuation tokens, an expansion mask. */
export function sampleBatch(
  stream: Uint16Array,
  o: {
    stage: RefragStage;
    n: number;
    k: number;
    B: number;
    continuation: number;
    expandFraction: number;
    maxPassages?: number;
  },
  rng: Rng,
): StageBatch {
  const lengths = passageLengths(o.n, o.k, rng, o.maxPassages);
  const s = lengths.reduce((a, b) => a + b, 0);
  const m = o.stage === "reconstruct" ? s : o.continuation;
  const expand = randomMask(o.n, expandCount(o.n, o.expandFraction, rng), rng);
  const batch: StageBatch = { chunks: [], predicted: [], expand };
  for (let b = 0; b < o.B; b++) {
    const w = window(stream, o.stage === "reconstruct" ? s : s + m, rng);
    const chunks: Int32Array[] = [];
    let at = 0;
    for (const len of lengths) {
      chunks.push(...chunkTokens(w.subarray(at, at + len), o.k));
      at += len;
    }
    batch.chunks.push(chunks);
    batch.predicted.push(o.stage === "reconstruct" ? w.subarray(0, s) : w.subarray(s, s + m));
  }
  return batch;
}

/** Mean next-token loss of a batch's predicted tokens, each sequence read as lmSegments lays it out. */
export function batchLoss(model: RefragModel, batch: StageBatch): Tensor {
  const B = batch.chunks.length;
  const n = batch.chunks[0].length;
  const m = batch.predicted[0].length;
  const vectors = model.project(model.encodeChunks(batch.chunks.flat())); // [B·n, C]
  const parts: Tensor[] = [];
  let rows = -1;
  for (let b = 0; b < B; b++) {
    const segs = lmSegments(model, {
      chunks: batch.chunks[b],
      projected: sliceRows(vectors, b * n, (b + 1) * n),
      expand: batch.expand,
      after: batch.predicted[b].subarray(0, m - 1),
    });
    const len = segmentLength(segs);
    if (rows >= 0 && len !== rows)
      throw new Error(`batchLoss: sample ${b} has ${len} rows, the batch ${rows}`);
    rows = len;
    parts.push(model.decoder.model.embed(segs));
  }
  const targets = new Int32Array(B * rows).fill(-100);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < m; t++) targets[b * rows + rows - m + t] = batch.predicted[b][t];
  const hidden = model.decoder.model.forward(concatRows(parts), { batch: B });
  return crossEntropy(model.decoder.logits(hidden), targets);
}

async function refragStage(
  stage: RefragStage,
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
  validation?: RefragValidation,
): Promise<TrainingState> {
  const k = model.chunkSize;
  const maxChunks = c.maxChunks ?? DEFAULT_MAX_CHUNKS;
  const o = stage === "reconstruct" ? 0 : (c.continuation ?? DEFAULT_CONTINUATION);
  if (stage !== "reconstruct" && !(Number.isInteger(o) && o >= 1))
    throw new Error(`${stage}: continuation must be a positive integer, got ${o}`);
  const p = stage === "mixed" ? (c.expandFraction ?? 0.1) : 0;
  if (!(p >= 0 && p <= 1)) throw new Error(`${stage}: expandFraction must be in [0, 1], got ${p}`);
  const curriculum = makeCurriculum(maxChunks, { stages: c.curriculumStages, kind: c.curriculum });
  const limit = model.config.decoder.max_position_embeddings;
  const positions = stagePositions(stage, maxChunks, k, o, p);
  if (positions > limit)
    throw new Error(
      `${stage}: sequences of up to ${positions} positions (<bos>, ${maxChunks} chunks of k = ${k}` +
        (p > 0 ? ` with ${maxExpandCount(maxChunks, p)} read raw` : "") +
        `, ${predictedTokens(stage, o, maxChunks, k)} tokens predicted) exceed the decoder's max_position_embeddings ${limit}; lower --max-chunks${stage === "reconstruct" ? "" : " or --continuation"}, or use a decoder trained on a longer window`,
    );
  const batchOf = (n: number) =>
    Math.max(1, Math.floor(c.tokensPerStep / (n * k + (stage === "reconstruct" ? 0 : o))));
  const draw = (n: number, B: number, rng: Rng) =>
    sampleBatch(
      stream,
      { stage, n, k, B, continuation: o, expandFraction: p, maxPassages: c.maxPassages },
      rng,
    );
  return trainLoop({
    stage,
    model,
    // Reconstruction freezes the decoder: only the encoder and projector learn to speak its language.
    // The policy is trained by its own stage; --freeze-encoder keeps the encoder too.
    trainable: (name) =>
      !name.startsWith("policy.") &&
      !(stage === "reconstruct" && !c.trainDecoder && name.startsWith("decoder.")) &&
      !(c.freezeEncoder === true && name.startsWith("encoder.")),
    config: c,
    modelConfig: model.config,
    ...ioOptions(io),
    loss: (step, rng) => {
      const n = sampleChunks(curriculum, step, c.steps, rng, batchOf);
      return batchLoss(model, draw(n, batchOf(n), rng));
    },
    validate:
      validation &&
      (() => {
        const rng = new Rng(0x5eed);
        const total = validation.sequences ?? 8;
        const B = batchOf(maxChunks);
        let sum = 0;
        for (let done = 0; done < total; done += B) {
          const b = Math.min(B, total - done);
          const batch = sampleBatch(
            validation.stream,
            { stage, n: maxChunks, k, B: b, continuation: o, expandFraction: p, maxPassages: c.maxPassages },
            rng,
          );
          sum += batchLoss(model, batch).item() * b;
        }
        return sum / total;
      }),
  });
}

export const reconstruct = (
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
  validation?: RefragValidation,
) => refragStage("reconstruct", model, stream, c, io, validation);
/** Mixed input: continual pre-training with a fraction of chunks left as raw tokens (so the decoder learns
 * to read compressed and raw spans interleaved, which selective expansion relies on). */
export const mixedInput = (
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
  validation?: RefragValidation,
) => refragStage("mixed", model, stream, c, io, validation);
export const continualPretrain = (
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
  validation?: RefragValidation,
) => refragStage("cpt", model, stream, c, io, validation);

/** Does `dir` hold a checkpoint (to decide between init and resume)? */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, "config.json"));
}
