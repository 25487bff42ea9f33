// Dense retrieval with the REFRAG encoder (a RoBERTa): a text is read as [bos] + its first tokens, the
// hidden states are mean-pooled and scaled to unit length, and passages are ranked by cosine similarity
// (one shared encoder for questions and passages). The contrastive stage (src/train/stages/dense.ts)
// trains the encoder for this; the same functions embed at training, indexing and query time.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { rmsnorm } from "../engine/ops.js";
import { noGrad, Tensor } from "../engine/tensor.js";
import { loadCheckpoint } from "../io/checkpoint.js";
import type { RobertaConfig } from "../io/config.js";
import { weightsId } from "../infer/vector_cache.js";
import { padBatch, RobertaModel } from "../models/roberta.js";
import { Rng } from "../engine/random.js";
import { searchHybrid, type HybridOptions } from "../store/batch.js";
import type { PassageStore, SearchHit } from "../store/types.js";
import { Tokenizer } from "../tokenizer/index.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";

export interface TextTokenizer {
  encode(text: string, opts?: { allowSpecial?: boolean }): number[];
}

export interface Embedder {
  /** Names the weights (embeddings of another encoder are never mixed with these). */
  readonly id: string;
  readonly dim: number;
  /** Unit-length embeddings, one per text. */
  embed(texts: readonly string[]): Float32Array[];
}

export { passageText } from "../store/types.js";

/** Token sequences the encoder reads: [bos] + at most maxTokens - 1 tokens of each text. */
export function retrievalSequences(
  tokenizer: TextTokenizer,
  encoder: RobertaModel,
  texts: readonly string[],
  maxTokens: number,
): Int32Array[] {
  const bos = encoder.config.bos_token_id ?? 0;
  return texts.map((t) => {
    const ids = tokenizer.encode(t, { allowSpecial: false }).slice(0, maxTokens - 1);
    return Int32Array.from([bos, ...ids]);
  });
}

/** Mean-pooled encoder states scaled to unit length, [B, C] (differentiable; used in training). */
export function embedSequences(encoder: RobertaModel, seqs: Int32Array[]): Tensor {
  const batch = padBatch(seqs, encoder.config.pad_token_id);
  const pooled = encoder.encode(batch, "mean");
  // RMSNorm with unit weights is x·√C/‖x‖; dividing by √C leaves x/‖x‖.
  const C = encoder.config.hidden_size;
  const unitW = new Tensor(new Float32Array(C).fill(1 / Math.sqrt(C)), [C]);
  return rmsnorm(pooled, unitW, 1e-12);
}

/** The longest text the encoder's position table allows (RoBERTa numbers positions from pad + 1). */
export function maxRetrievalTokens(config: RobertaConfig): number {
  const first = config.model_type === "roberta" ? config.pad_token_id + 1 : 0;
  return config.max_position_embeddings - first;
}

export class EncoderEmbedder implements Embedder {
  readonly id: string;
  readonly dim: number;
  readonly maxTokens: number;

  constructor(
    readonly encoder: RobertaModel,
    readonly tokenizer: TextTokenizer,
    opts: { maxTokens?: number; batch?: number } = {},
  ) {
    this.id = `dense-${weightsId(encoder)}`;
    this.dim = encoder.config.hidden_size;
    this.maxTokens = Math.min(opts.maxTokens ?? 128, maxRetrievalTokens(encoder.config));
    this.batch = opts.batch ?? 32;
  }
  private readonly batch: number;

  embed(texts: readonly string[]): Float32Array[] {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.batch) {
      const seqs = retrievalSequences(
        this.tokenizer,
        this.encoder,
        texts.slice(i, i + this.batch),
        this.maxTokens,
      );
      const e = noGrad(() => embedSequences(this.encoder, seqs));
      for (let b = 0; b < seqs.length; b++) out.push(e.data.slice(b * this.dim, (b + 1) * this.dim));
    }
    return out;
  }
}

/** The tokenizer of an encoder folder (its own tokenizer.json), else the shipped one. */
export function encoderTokenizerPath(dir: string): string {
  const own = join(dir, "tokenizer.json");
  return existsSync(own) ? own : defaultTokenizerPath();
}

/** A dense embedder from an encoder checkpoint folder (the dense stage's output) and its tokenizer. */
export async function loadEmbedder(dir: string): Promise<EncoderEmbedder> {
  return new EncoderEmbedder(await loadEncoder(dir), Tokenizer.fromFile(encoderTokenizerPath(dir)));
}

/** An encoder from a checkpoint: a RobertaModel, a RobertaForMaskedLM ("roberta." names) or a REFRAG
 * checkpoint ("encoder." names). */
export async function loadEncoder(dir: string): Promise<RobertaModel> {
  const ck = await loadCheckpoint(dir);
  const cfg = ck.config as { model_type?: string; encoder?: RobertaConfig };
  const config = cfg.model_type === "refrag" ? cfg.encoder : (ck.config as RobertaConfig);
  if (config === undefined || (config.model_type !== "roberta" && config.model_type !== "bert"))
    throw new Error(`${dir}: no RoBERTa encoder in this checkpoint (model_type ${cfg.model_type})`);
  const prefix =
    cfg.model_type === "refrag"
      ? "encoder."
      : [...ck.tensors.keys()].some((n) => n.startsWith("roberta."))
        ? "roberta."
        : "";
  const model = new RobertaModel(config, new Rng(0));
  model.loadStateDict(
    new Map(
      [...ck.tensors]
        .filter(([n]) => n.startsWith(prefix) && !n.startsWith("lm_head."))
        .map(([n, t]) => [n.slice(prefix.length), t.data as Float32Array]),
    ),
  );
  return model;
}

export type RetrievalMode = "bm25" | "dense" | "hybrid";
export const RETRIEVAL_MODES: readonly RetrievalMode[] = ["bm25", "dense", "hybrid"];

/** A search function for one mode (dense and hybrid need an embedder whose embeddings the store holds). */
export function retriever(
  store: PassageStore,
  mode: RetrievalMode,
  embedder: Embedder | null,
  hybrid: HybridOptions = {},
): (question: string, k: number) => Promise<SearchHit[]> {
  if (mode === "bm25") return (q, k) => store.searchText(q, k);
  if (embedder === null) throw new Error(`${mode} retrieval needs an embedder (--embedder <dir>)`);
  if (mode === "dense") return (q, k) => store.searchDense(embedder.id, embedder.embed([q])[0], k);
  return (q, k) =>
    searchHybrid(store, q, { embedderId: embedder.id, vector: embedder.embed([q])[0] }, k, hybrid);
}
