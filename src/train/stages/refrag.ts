// REFRAG's own stages, each a function from a checkpoint to a checkpoint:
//   reconstruct  decoder frozen; encoder + projector learn to make chunk vectors from which the decoder
//                reproduces the chunks' tokens (teacher forcing, loss on the s context tokens). Curriculum.
//   cpt          continual pre-training: everything trains on next-paragraph prediction: o tokens after
//                s context tokens read as chunk vectors. Same curriculum over the number of chunks.
//
// Layout of one training sequence (n chunks of k tokens, the context c_0 … c_{s-1}, s = n·k):
//   reconstruct  rows: v_1 … v_n, c_0 … c_{s-2}          targets from row n-1: c_0 … c_{s-1}
//   cpt          rows: v_1 … v_n, x_0 … x_{o-2}          targets from row n-1: x_0 … x_{o-1}
// where v_i are projected chunk vectors and x the o continuation tokens. Each step draws one n from the
// curriculum and fills the batch with sequences of that shape.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { concatRows, crossEntropy, sliceRows } from "../../engine/ops.js";
import { Rng } from "../../engine/random.js";
import { Tensor } from "../../engine/tensor.js";
import { loadCheckpoint } from "../../io/checkpoint.js";
import { parseRefragConfig, type LlamaConfig, type RobertaConfig } from "../../io/config.js";
export { loadRefrag } from "../../models/load.js";
import { checkShapes, loadWeights, underPrefix } from "../../models/load.js";
import { llamaShapes, robertaShapes } from "../../models/shapes.js";
import { chunkTokens, RefragModel } from "../../models/refrag.js";
import { makeCurriculum, sampleChunks } from "../curriculum.js";
import { ioOptions, trainLoop, type LoopConfig, type TrainingState, type StageIO } from "../loop.js";

/** Build a REFRAG model from a pre-trained encoder (RobertaForMaskedLM or RobertaModel checkpoint) and decoder. */
export async function initRefrag(
  encoderDir: string,
  decoderDir: string,
  k: number,
  seed = 0,
): Promise<RefragModel> {
  const enc = await loadCheckpoint(encoderDir);
  const dec = await loadCheckpoint(decoderDir);
  if (enc.config.model_type !== "roberta" && enc.config.model_type !== "bert")
    throw new Error(`${encoderDir}: not a RoBERTa checkpoint (model_type ${enc.config.model_type})`);
  if (dec.config.model_type !== "llama")
    throw new Error(`${decoderDir}: not a LLaMA checkpoint (model_type ${dec.config.model_type})`);
  const e = enc.config as RobertaConfig;
  const d = dec.config as LlamaConfig;
  if (e.vocab_size !== d.vocab_size)
    throw new Error(
      `encoder vocabulary ${e.vocab_size} differs from the decoder's ${d.vocab_size}: REFRAG here shares one tokenizer`,
    );
  const config = parseRefragConfig({
    model_type: "refrag",
    chunk_size: k,
    encoder: enc.rawConfig,
    decoder: dec.rawConfig,
    projector: {
      model_type: "refrag_projector",
      input_size: e.hidden_size,
      hidden_size: d.hidden_size,
      output_size: d.hidden_size,
      hidden_act: "gelu",
    },
  });
  // Both checkpoints' tensors against the shapes the joined config implies, before the model is built.
  const encTensors = [...enc.tensors.keys()].some((n) => n.startsWith("roberta."))
    ? underPrefix(enc.tensors, "roberta.")
    : enc.tensors;
  const encSource = `checkpoint ${enc.dir}`;
  checkShapes(robertaShapes(config.encoder), encTensors, encSource);
  checkShapes(llamaShapes(config.decoder), dec.tensors, `checkpoint ${dec.dir}`);
  const model = new RefragModel(config, new Rng(seed));
  loadWeights(model.encoder, encTensors, encSource);
  loadWeights(model.decoder, dec.tensors, `checkpoint ${dec.dir}`);
  return model;
}

export interface RefragStageConfig extends LoopConfig {
  /** Largest number of chunks per sequence (the curriculum climbs 1, 2, 4, … to this). */
  maxChunks: number;
  /** Tokens per step (the batch holds floor(tokensPerStep / sequence tokens) sequences, at least 1). */
  tokensPerStep: number;
  /** cpt / mixed: continuation tokens predicted after the context. */
  continuation?: number;
  /** mixed: fraction p of each context's chunks read as raw tokens (the paper uses 0.1). */
  expandFraction?: number;
  curriculumStages?: number;
}

function window(stream: Uint16Array, len: number, rng: Rng): Int32Array {
  if (stream.length < len + 1)
    throw new Error(`stream of ${stream.length} tokens is shorter than a window of ${len}`);
  const start = rng.int(stream.length - len);
  return Int32Array.from(stream.subarray(start, start + len));
}

/** One batch: decoder input [B·(n + m - 1), C] and targets, for contexts of n chunks and m predicted tokens. */
function buildBatch(
  model: RefragModel,
  contexts: Int32Array[],
  predicted: Int32Array[],
  expand: number,
  rng: Rng,
): { inputs: Tensor; targets: Int32Array; B: number } {
  const k = model.chunkSize;
  const B = contexts.length;
  const n = Math.ceil(contexts[0].length / k);
  const m = predicted[0].length;
  const perSample = contexts.map((c) => chunkTokens(c, k));
  const vectors = model.project(model.encodeChunks(perSample.flat())); // [B·n, C]
  const parts: Tensor[] = [];
  let rowsPer = -1;
  const targetRows: number[] = [];
  for (let b = 0; b < B; b++) {
    // Mixed input: `expand` chunks of each sample (the same count, so every sample has the same length)
    // are read as raw tokens in place of their vectors.
    const mask = new Array<boolean>(n).fill(false);
    for (const i of rng.shuffle(Array.from({ length: n }, (_, j) => j)).slice(0, expand)) mask[i] = true;
    const segs = model.buildSegments({
      chunks: perSample[b],
      projected: sliceRows(vectors, b * n, (b + 1) * n),
      expand: mask,
    });
    const context = model.decoder.model.embed(segs);
    parts.push(context);
    if (m > 1) parts.push(model.decoder.model.embed([{ ids: predicted[b].subarray(0, m - 1) }]));
    const rows = context.rows + m - 1;
    if (rowsPer >= 0 && rows !== rowsPer)
      throw new Error(`buildBatch: sample ${b} has ${rows} rows, the batch ${rowsPer}`);
    rowsPer = rows;
    for (let t = 0; t < m; t++) targetRows.push(b * rows + context.rows - 1 + t);
  }
  const targets = new Int32Array(B * rowsPer).fill(-100);
  for (let b = 0, i = 0; b < B; b++)
    for (let t = 0; t < m; t++, i++) targets[targetRows[i]] = predicted[b][t];
  return { inputs: concatRows(parts), targets, B };
}

async function refragStage(
  stage: "reconstruct" | "cpt" | "mixed",
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
): Promise<TrainingState> {
  const k = model.chunkSize;
  const o = c.continuation ?? 0;
  if (stage !== "reconstruct" && o < 1) throw new Error(`${stage}: continuation must be at least 1 token`);
  const p = stage === "mixed" ? (c.expandFraction ?? 0.1) : 0;
  if (!(p >= 0 && p <= 1)) throw new Error(`${stage}: expandFraction must be in [0, 1], got ${p}`);
  const curriculum = makeCurriculum(c.maxChunks, c.curriculumStages ?? 9);
  const maxRows = c.maxChunks + Math.round(p * c.maxChunks) * (k - 1) + Math.max(o, c.maxChunks * k);
  if (maxRows > model.config.decoder.max_position_embeddings)
    throw new Error(
      `${stage}: sequences of up to ${maxRows} positions exceed the decoder's max_position_embeddings ${model.config.decoder.max_position_embeddings}`,
    );
  return trainLoop({
    stage,
    model,
    // Reconstruction freezes the decoder: only the encoder and projector learn to speak its language.
    trainable:
      stage === "reconstruct"
        ? (name) => !name.startsWith("decoder.") && !name.startsWith("policy.")
        : (name) => !name.startsWith("policy."),
    config: c,
    modelConfig: model.config,
    ...ioOptions(io),
    loss: (step, rng) => {
      const n = sampleChunks(curriculum, step, c.steps, rng);
      const s = n * k;
      const seqTokens = stage === "reconstruct" ? s : s + o;
      const B = Math.max(1, Math.floor(c.tokensPerStep / seqTokens));
      const contexts: Int32Array[] = [];
      const predicted: Int32Array[] = [];
      for (let b = 0; b < B; b++) {
        const w = window(stream, seqTokens, rng);
        contexts.push(w.subarray(0, s));
        predicted.push(stage === "reconstruct" ? w.subarray(0, s) : w.subarray(s, s + o));
      }
      const { inputs, targets } = buildBatch(model, contexts, predicted, Math.round(p * n), rng);
      const hidden = model.decoder.model.forward(inputs, { batch: B });
      return crossEntropy(model.decoder.logits(hidden), targets);
    },
  });
}

export const reconstruct = (model: RefragModel, stream: Uint16Array, c: RefragStageConfig, io: StageIO) =>
  refragStage("reconstruct", model, stream, c, io);
/** Mixed input: continual pre-training with a fraction of chunks left as raw tokens (so the decoder learns
 * to read compressed and raw spans interleaved, which selective expansion relies on). */
export const mixedInput = (model: RefragModel, stream: Uint16Array, c: RefragStageConfig, io: StageIO) =>
  refragStage("mixed", model, stream, c, io);
export const continualPretrain = (
  model: RefragModel,
  stream: Uint16Array,
  c: RefragStageConfig,
  io: StageIO,
) => refragStage("cpt", model, stream, c, io);

/** Does `dir` hold a checkpoint (to decide between init and resume)? */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, "config.json"));
}
