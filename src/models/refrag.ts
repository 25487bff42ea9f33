// REFRAG (Lin et al. 2025): a light encoder turns each chunk of k context tokens into one vector, a
// projector maps it into the decoder's embedding space, and the decoder reads one position per chunk
// instead of k. A policy picks the few chunks worth keeping as raw tokens ("expanded" in place).
//
// Choices the paper leaves open, made here: the encoder and decoder share one tokenizer, so a chunk is the
// same token ids on both sides; the encoder reads [bos] + chunk and mean-pools its hidden states; the last
// chunk may be shorter than k; the policy reads the encoder's chunk vectors and not the question.
//
// Shapes: L chunks, k tokens per chunk, Ce encoder width, Cd decoder width.
import { sliceRows, concatRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { Tensor } from "../engine/tensor.js";
import type { RefragConfig } from "../io/config.js";
import { Module } from "../nn/module.js";
import { LlamaForCausalLM, type Segment } from "./llama.js";
import { RefragPolicy } from "./policy.js";
import { RefragProjector } from "./projector.js";
import { padBatch, RobertaModel, type Pooling } from "./roberta.js";

export type { RefragConfig } from "../io/config.js";

/** Split context token ids into chunks of k (the last one may be shorter). */
export function chunkTokens(ids: ArrayLike<number>, k: number): Int32Array[] {
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`chunkTokens: chunk size must be a positive integer, got ${k}`);
  const out: Int32Array[] = [];
  for (let i = 0; i < ids.length; i += k)
    out.push(Int32Array.from(Array.prototype.slice.call(ids, i, Math.min(ids.length, i + k)) as number[]));
  return out;
}

/** Effective compression when a fraction p of chunks is expanded: k / (1 - p + k·p). */
export function effectiveCompression(k: number, p: number): number {
  return k / (1 - p + k * p);
}

export class RefragModel extends Module {
  encoder: RobertaModel;
  projector: RefragProjector;
  decoder: LlamaForCausalLM;
  policy: RefragPolicy | null;
  readonly pooling: Pooling = "mean";

  constructor(
    readonly config: RefragConfig,
    rng: Rng,
  ) {
    super();
    if (
      config.projector.input_size !== config.encoder.hidden_size ||
      config.projector.output_size !== config.decoder.hidden_size
    )
      throw new Error(
        `RefragModel: projector ${config.projector.input_size}→${config.projector.output_size} does not join encoder width ${config.encoder.hidden_size} to decoder width ${config.decoder.hidden_size}`,
      );
    this.encoder = new RobertaModel(config.encoder, rng);
    this.projector = new RefragProjector(config.projector, rng);
    this.decoder = new LlamaForCausalLM(config.decoder, rng);
    this.policy = config.policy === null ? null : new RefragPolicy(config.policy, rng);
  }

  get chunkSize(): number {
    return this.config.chunk_size;
  }

  /** The id the encoder reads before each chunk (its CLS role). */
  get encoderBos(): number {
    return this.config.encoder.bos_token_id ?? 0;
  }

  /**
   * Encoder vectors for chunks, [L, Ce]. Chunks are encoded independently (so vectors can be cached per
   * passage), in batches of at most `batchSize` chunks to bound memory.
   */
  encodeChunks(chunks: Int32Array[], batchSize = 256): Tensor {
    if (chunks.length === 0) return Tensor.zeros([0, this.config.encoder.hidden_size]);
    const parts: Tensor[] = [];
    for (let i = 0; i < chunks.length; i += batchSize) {
      const seqs = chunks.slice(i, i + batchSize).map((c) => {
        if (c.length === 0) throw new Error(`RefragModel.encodeChunks: chunk ${i} is empty`);
        const s = new Int32Array(c.length + 1);
        s[0] = this.encoderBos;
        s.set(c, 1);
        return s;
      });
      const batch = padBatch(seqs, this.config.encoder.pad_token_id);
      parts.push(this.encoder.encode(batch, this.pooling));
    }
    return parts.length === 1 ? parts[0] : concatRows(parts);
  }

  /** Chunk vectors [L, Ce] → decoder-space vectors [L, Cd]. */
  project(chunkVectors: Tensor): Tensor {
    return this.projector.forward(chunkVectors);
  }

  /**
   * Decoder segments for one input: `before` tokens, then each chunk as its projected vector or, where
   * expand[i], as its raw tokens (order preserved), then `after` tokens. Consecutive compressed chunks
   * share one segment.
   */
  buildSegments(o: {
    before?: Int32Array;
    chunks: Int32Array[];
    projected: Tensor;
    expand?: ArrayLike<boolean>;
    after?: Int32Array;
  }): Segment[] {
    const L = o.chunks.length;
    if (o.projected.rows !== L)
      throw new Error(`RefragModel.buildSegments: ${o.projected.rows} vectors for ${L} chunks`);
    if (o.expand !== undefined && o.expand.length !== L)
      throw new Error(
        `RefragModel.buildSegments: expand mask has ${o.expand.length} entries for ${L} chunks`,
      );
    const segs: Segment[] = [];
    if (o.before !== undefined && o.before.length > 0) segs.push({ ids: o.before });
    let run = -1; // start of the current run of compressed chunks
    const flush = (end: number) => {
      if (run >= 0) segs.push({ embeds: sliceRows(o.projected, run, end) });
      run = -1;
    };
    for (let i = 0; i < L; i++) {
      if (o.expand?.[i]) {
        flush(i);
        segs.push({ ids: o.chunks[i] });
      } else if (run < 0) run = i;
    }
    flush(L);
    if (o.after !== undefined && o.after.length > 0) segs.push({ ids: o.after });
    return segs;
  }
}

/** Number of decoder positions a segment list occupies. */
export function segmentLength(segments: Segment[]): number {
  let n = 0;
  for (const s of segments) n += "ids" in s ? s.ids.length : s.embeds.rows;
  return n;
}
