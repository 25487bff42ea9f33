// Reconstruction log-perplexity (the paper's Table 11): how well the decoder reproduces s = n·k context
// tokens from their n chunk vectors, teacher forced, as in the reconstruction stage:
//   <bos> v_1 … v_n  c_0 … c_{s-1}     (mean NLL of the s tokens, nats per token)
// read three ways, so the number says what the vectors carry:
//   vectors   the chunks' own vectors
//   shuffled  the vectors of another window (same n): what the decoder gets from "some context"
//   none      no vectors: the decoder alone, teacher forced (the language model's loss on the same tokens)
// vectors ≪ shuffled means the vectors carry the chunks' content; vectors ≈ shuffled ≈ none means nothing.
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import { lmSegments, lmStart } from "../infer/prompt.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";
import { continuationNll } from "./perplexity.js";

export type ReconstructionMode = "vectors" | "shuffled" | "none";
export const RECONSTRUCTION_MODES: ReconstructionMode[] = ["vectors", "shuffled", "none"];

export interface ReconstructionRow {
  chunks: number;
  tokens: number;
  windows: number;
  /** Mean NLL per mode (nats per token). */
  nll: Record<ReconstructionMode, number>;
}

/** Fixed windows of `len` tokens from a held-out stream (the same windows for every model). */
export function heldOutWindows(stream: Uint16Array, len: number, count: number, seed = 11): Int32Array[] {
  if (stream.length < len + 1)
    throw new Error(
      `reconstruction: the stream (${stream.length} tokens) is shorter than a window of ${len}`,
    );
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const start = rng.int(stream.length - len);
    return Int32Array.from(stream.subarray(start, start + len));
  });
}

/** Reconstruction NLL at n chunks over `windows` fixed windows, per mode. */
export function reconstructionRow(
  model: RefragModel,
  stream: Uint16Array,
  n: number,
  windows: number,
): ReconstructionRow {
  const k = model.chunkSize;
  const s = n * k;
  const need = 1 + n + s - 1;
  if (need > model.config.decoder.max_position_embeddings)
    throw new Error(
      `reconstruction at ${n} chunks reads ${need} positions; the decoder has ${model.config.decoder.max_position_embeddings}`,
    );
  if (windows < 2) throw new Error("reconstruction: at least 2 windows (the shuffled mode borrows vectors)");
  const ws = heldOutWindows(stream, s, windows);
  const projected = ws.map((w) => noGrad(() => model.project(model.encodeChunks(chunkTokens(w, k)))));
  const sum: Record<ReconstructionMode, number> = { vectors: 0, shuffled: 0, none: 0 };
  for (let i = 0; i < windows; i++) {
    const chunks = chunkTokens(ws[i], k);
    sum.vectors += continuationNll(model, lmSegments(model, { chunks, projected: projected[i] }), ws[i]);
    // Another window's vectors (the next one): same count, unrelated content.
    const j = (i + 1) % windows;
    sum.shuffled += continuationNll(model, lmSegments(model, { chunks, projected: projected[j] }), ws[i]);
    sum.none += continuationNll(model, [{ ids: lmStart(model.config.decoder) }], ws[i]);
  }
  return {
    chunks: n,
    tokens: s,
    windows,
    nll: { vectors: sum.vectors / windows, shuffled: sum.shuffled / windows, none: sum.none / windows },
  };
}
