// The REFRAG generation API: a question and passages (or their cached chunk vectors) in, streamed answer
// tokens out. Each passage is tokenised and chunked on its own (chunks never straddle passages), so its
// vectors can be computed once at indexing time and reused by every request that retrieves it.
//
// Decoder input (prompt format):
//   <|bos|> <|question|> question tokens <|context|> passage 1 chunks … passage n chunks <|answer|>
// where each chunk is one projected vector, or its raw tokens when the selection expands it.
import { noGrad, type Tensor } from "../engine/tensor.js";
import { concatRows } from "../engine/ops.js";
import { chunkTokens, segmentLength, type RefragModel } from "../models/refrag.js";
import type { Segment } from "../models/llama.js";
import { generate, type GeneratedToken, type GenerationOptions, type GenerationStats } from "./generate.js";
import { selectChunks, type SelectionOptions } from "./selection.js";
import type { ChunkVectorCache } from "./vector_cache.js";

/** What the pipeline needs from a tokenizer. */
export interface PipelineTokenizer {
  /** allowSpecial: false keeps user text from smuggling in prompt-format tokens. */
  encode(text: string, opts?: { allowSpecial?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  tokenToId(token: string): number | undefined;
}

export const PROMPT_TOKENS = {
  bos: "<|bos|>",
  eos: "<|eos|>",
  question: "<|question|>",
  context: "<|context|>",
  answer: "<|answer|>",
  user: "<|user|>",
  assistant: "<|assistant|>",
} as const;

/** A malformed RAG request (the caller's to fix); messages start with "request:". */
export class RequestError extends Error {}

/** What a RAG answer read, on top of the generation figures. */
export interface RagStats extends GenerationStats {
  /** Raw context tokens (what the full-context decoder would read). */
  contextTokens: number;
  chunks: number;
}

/** One earlier exchange of a conversation. */
export interface Turn {
  question: string;
  answer: string;
}

export interface RagRequest extends GenerationOptions {
  question: string;
  passages: string[];
  /** Earlier turns of the conversation, oldest first; read as raw tokens before the question. */
  history?: Turn[];
  /** How chunks are chosen for expansion (default: none, every chunk compressed). */
  selection?: SelectionOptions;
}

export interface PreparedPrompt {
  segments: Segment[];
  /** Chunks in reading order, across passages. */
  chunks: Int32Array[];
  expand: boolean[];
  /** Raw context tokens (what the full-context decoder would read). */
  contextTokens: number;
  positions: number;
}

/** Ids of the prompt-format tokens; a clear error names the first one the tokenizer lacks. */
export function promptTokenIds(tokenizer: PipelineTokenizer): Record<keyof typeof PROMPT_TOKENS, number> {
  const ids = {} as Record<keyof typeof PROMPT_TOKENS, number>;
  for (const [role, tok] of Object.entries(PROMPT_TOKENS) as [keyof typeof PROMPT_TOKENS, string][]) {
    const id = tokenizer.tokenToId(tok);
    if (id === undefined) throw new Error(`the tokenizer has no special token ${tok}`);
    ids[role] = id;
  }
  return ids;
}

/** The prompt around the context, one layout for inference and fine-tuning:
 * `<|bos|>` (`<|user|>`q`<|assistant|>`a)* `<|question|>`question`<|context|>` … chunks … `<|answer|>`.
 * Earlier turns come first as raw tokens; user text never becomes prompt-format tokens. */
export function promptIds(
  tokenizer: PipelineTokenizer,
  question: string,
  special = promptTokenIds(tokenizer),
  history: readonly Turn[] = [],
): { before: Int32Array; after: Int32Array } {
  const text = (s: string) => tokenizer.encode(s, { allowSpecial: false });
  const before = Int32Array.from([
    special.bos,
    ...history.flatMap((t) => [special.user, ...text(t.question), special.assistant, ...text(t.answer)]),
    special.question,
    ...text(question),
    special.context,
  ]);
  return { before, after: Int32Array.of(special.answer) };
}

/** Checks a conversation history: a list of {question, answer} strings. */
export function checkHistory(history: unknown): Turn[] {
  if (history === undefined || history === null) return [];
  if (!Array.isArray(history))
    throw new RequestError("request: history must be a list of {question, answer}");
  history.forEach((t: unknown, i) => {
    const turn = t as Partial<Turn> | null;
    if (
      typeof turn !== "object" ||
      turn === null ||
      typeof turn.question !== "string" ||
      typeof turn.answer !== "string"
    )
      throw new RequestError(`request: history turn ${i} must be {question: string, answer: string}`);
  });
  return history as Turn[];
}

export class RefragPipeline {
  private readonly special: Record<keyof typeof PROMPT_TOKENS, number>;

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
    if (!Array.isArray(req.passages)) throw new RequestError("request: passages must be a list of strings");
    const { before, after } = promptIds(
      this.tokenizer,
      req.question,
      this.special,
      checkHistory(req.history),
    );
    const chunks: Int32Array[] = [];
    const vectors: Tensor[] = [];
    let contextTokens = 0;
    for (const [i, p] of req.passages.entries()) {
      if (typeof p !== "string") throw new RequestError(`request: passage ${i} is not a string`);
      const ids = Int32Array.from(this.tokenizer.encode(p, { allowSpecial: false }));
      if (ids.length === 0) continue;
      contextTokens += ids.length;
      const pc = chunkTokens(ids, this.model.chunkSize);
      chunks.push(...pc);
      vectors.push(await this.passageVectors(ids, pc));
    }
    const all =
      vectors.length === 0 ? null : vectors.length === 1 ? vectors[0] : noGrad(() => concatRows(vectors));
    const expand =
      all === null
        ? []
        : selectChunks(this.model, req.selection ?? { mode: "none" }, { before, chunks, vectors: all });
    const segments = noGrad(() =>
      all === null
        ? [{ ids: before }, { ids: after }]
        : this.model.buildSegments({ before, chunks, projected: this.model.project(all), expand, after }),
    );
    return { segments, chunks, expand, contextTokens, positions: segmentLength(segments) };
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
      // Prompt-format tokens the model emits are not answer text.
      { decode: (ids) => this.tokenizer.decode(ids, { skipSpecial: true }) },
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
