// The REFRAG generation API: a question and passages (or their cached chunk vectors) in, streamed answer
// tokens out. Each passage is tokenised and chunked on its own (chunks never straddle passages), so its
// vectors can be computed once at indexing time and reused by every request that retrieves it.
//
// The decoder input is laid out by src/infer/prompt.ts (the one owner of the prompt format):
//   <|bos|> <|question|> question <|context|> 1 title 1 passage 1 chunks … n title n … <|answer|>
// where each chunk is one projected vector, or its raw tokens when the selection expands it.
import { noGrad, type Tensor } from "../engine/tensor.js";
import { concatRows } from "../engine/ops.js";
import { segmentLength, type RefragModel } from "../models/refrag.js";
import type { Segment } from "../models/llama.js";
import { generate, type GeneratedToken, type GenerationOptions, type GenerationStats } from "./generate.js";
import {
  answerDecoder,
  chunkQueryTexts,
  checkHistory,
  chunkPrefixes,
  promptIds,
  promptPassages,
  promptSegments,
  promptTokenIds,
  RequestError,
  type PassageInput,
  type PipelineTokenizer,
  type PromptTokenIds,
  type Turn,
} from "./prompt.js";
import { DEFAULT_SELECTION, selectChunks, type SelectionOptions } from "./selection.js";
import type { ChunkVectorCache } from "./vector_cache.js";

export {
  checkHistory,
  PROMPT_TOKENS,
  promptIds,
  promptTokenIds,
  RequestError,
  type Passage,
  type PassageInput,
  type PipelineTokenizer,
  type Turn,
} from "./prompt.js";

/** What a RAG answer read, on top of the generation figures. */
export interface RagStats extends GenerationStats {
  /** Raw context tokens (what the full-context decoder would read). */
  contextTokens: number;
  chunks: number;
}

export interface RagRequest extends GenerationOptions {
  question: string;
  /** Passages in reading order: plain text, or {id?, title?, text} (the title is read raw before the text). */
  passages: PassageInput[];
  /** Earlier turns of the conversation, oldest first; read as raw tokens before the question. */
  history?: Turn[];
  /** How chunks are chosen for expansion (default: DEFAULT_SELECTION, selection.ts). */
  selection?: SelectionOptions;
}

export interface PreparedPrompt {
  segments: Segment[];
  /** Chunks in reading order, across passages. */
  chunks: Int32Array[];
  expand: boolean[];
  /** Raw context tokens (what the full-context decoder would read). */
  contextTokens: number;
  /** Each passage's text tokens, in the order given (0 for a passage left out: no tokens). */
  passageTokens: number[];
  positions: number;
}

export class RefragPipeline {
  private readonly special: PromptTokenIds;

  constructor(
    readonly model: RefragModel,
    readonly tokenizer: PipelineTokenizer,
    readonly vectorCache: ChunkVectorCache | null = null,
  ) {
    this.special = promptTokenIds(tokenizer);
    if (vectorCache !== null && vectorCache.k !== model.chunkSize)
      throw new Error(
        `RefragPipeline: vector cache k=${vectorCache.k} differs from the model's chunk size ${model.chunkSize}`,
      );
  }

  /** Encoder vectors for one passage's chunks, from the cache when present (else computed and stored). */
  async passageVectors(ids: Int32Array, chunks: Int32Array[]): Promise<Tensor> {
    const cached = this.vectorCache === null ? null : await this.vectorCache.get(ids);
    if (cached !== null) return cached;
    const vectors = noGrad(() => this.model.encodeChunks(chunks));
    if (this.vectorCache !== null) await this.vectorCache.put(ids, vectors);
    return vectors;
  }

  /** Tokenise, chunk, encode (or read cached vectors), select and lay out the decoder input. */
  async prepare(req: RagRequest): Promise<PreparedPrompt> {
    if (typeof req.question !== "string" || req.question.trim() === "")
      throw new RequestError("request: question must be a non-empty string");
    if (!Array.isArray(req.passages))
      throw new RequestError("request: passages must be a list of strings or {id?, title?, text}");
    const { before, after } = promptIds(
      this.tokenizer,
      req.question,
      this.special,
      checkHistory(req.history),
    );
    const passages = promptPassages(this.tokenizer, req.passages, this.model.chunkSize);
    const chunks = passages.flatMap((p) => p.chunks);
    const vectors: Tensor[] = [];
    let contextTokens = 0;
    for (const p of passages) {
      contextTokens += p.ids.length;
      vectors.push(await this.passageVectors(p.ids, p.chunks));
    }
    const all =
      vectors.length === 0 ? null : vectors.length === 1 ? vectors[0] : noGrad(() => concatRows(vectors));
    const expand =
      all === null
        ? []
        : selectChunks(this.model, req.selection ?? DEFAULT_SELECTION, {
            before,
            chunks,
            vectors: all,
            prefixes: chunkPrefixes(passages),
            query: { question: req.question, chunkTexts: () => chunkQueryTexts(this.tokenizer, passages) },
          });
    const segments = noGrad(() =>
      all === null
        ? [{ ids: before }, { ids: after }]
        : promptSegments(this.model, { before, passages, projected: this.model.project(all), expand, after }),
    );
    const passageTokens = req.passages.map(() => 0);
    for (const p of passages) passageTokens[p.index] = p.ids.length;
    return { segments, chunks, expand, contextTokens, passageTokens, positions: segmentLength(segments) };
  }

  /** Stream the answer. */
  async *generate(
    req: RagRequest,
    stats?: Partial<RagStats>,
  ): AsyncGenerator<GeneratedToken, void, undefined> {
    const prompt = await this.prepare(req);
    if (stats !== undefined) {
      stats.contextTokens = prompt.contextTokens;
      stats.chunks = prompt.chunks.length;
    }
    yield* generate(
      this.model.decoder,
      prompt.segments,
      answerDecoder(this.tokenizer),
      { ...req, stopTokenIds: [this.special.eos, ...(req.stopTokenIds ?? [])] },
      stats,
    );
  }

  /** The whole answer as one string. */
  async answer(req: RagRequest, stats?: Partial<RagStats>): Promise<string> {
    let text = "";
    for await (const t of this.generate(req, stats)) text += t.text;
    return text;
  }
}
