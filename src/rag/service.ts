// "Retrieve, then generate" in one place: passages from the request or from the index (one multi-turn
// query rule), chunk vectors from the store (src/rag/vectors.ts), chunk selection, generation on the shared batch engine, and
// the figures that say what REFRAG did (which chunks were read compressed, positions saved). The server's
// routes and `refrag generate` call this; nothing else strings the steps together.
import type { KVCacheDtype } from "../models/llama.js";
import { BatchEngine, type EngineStats, type TokenStream } from "../infer/batch.js";
import {
  promptTokenIds,
  RequestError,
  type PreparedPrompt,
  type RefragPipeline,
  type Turn,
} from "../infer/pipeline.js";
import { answerDecoder, type Passage } from "../infer/prompt.js";
import type { SamplingOptions } from "../infer/sampling.js";
import type { SelectionOptions } from "../infer/selection.js";
import { retrievalQuery } from "./query.js";
import { StoredVectorCache } from "./vectors.js";

/** A passage as callers give it: the prompt's passage (src/infer/prompt.ts owns the layout). */
export type PassageInput = Passage;

/** What a retriever returns (PassageIndex fits; its type is not imported so LanceDB loads only when used). */
export interface Retriever {
  readonly dir: string;
  search(query: string, k: number): Promise<{ id: string; title: string; text: string; score: number }[]>;
  count(): Promise<number>;
}

/** A passage as the answer read it. */
export interface RagPassage {
  /** 1-based, in reading order: the number an answer can cite ("[2]"). */
  number: number;
  id: string;
  title: string;
  text: string;
  score: number | null;
  /** Context tokens of this passage and how they were read: one flag per chunk, true = expanded. */
  tokens: number;
  expanded: boolean[];
  /** Each chunk's text (decoded from its tokens), for showing what was read how. */
  chunkText: string[];
}

export interface RagLayout {
  passages: RagPassage[];
  chunkSize: number;
  /** Raw context tokens: what a full-context decoder would read for the passages. */
  contextTokens: number;
  /** Decoder positions of the whole prompt as read (question, vectors, expanded chunks). */
  positions: number;
  /** Decoder positions had every chunk been expanded (the full-context prompt). */
  fullPositions: number;
  chunks: number;
  expandedChunks: number;
}

export interface RagRequest extends SamplingOptions {
  question: string;
  history?: Turn[];
  /** Passages to read; when absent the index is searched with the conversation's questions. */
  passages?: PassageInput[] | null;
  /** Passages to retrieve (default 5). */
  k?: number;
  selection?: SelectionOptions;
  /** Answer token budget; absent: what the context window has left, at most `defaultMaxNewTokens`. */
  maxNewTokens?: number;
  stop?: string[];
  seed?: number;
  signal?: AbortSignal;
}

export interface RagRun {
  layout: RagLayout;
  tokens: TokenStream;
  /** Filled as the answer is generated (its ttftMs counts from the engine's queue). */
  stats: Partial<EngineStats>;
  /** Milliseconds of retrieval, chunk vectors and selection before the request was queued. */
  prepareMs: number;
}

export interface RagServiceOptions {
  /** Rows decoded together (default 32). */
  maxActive?: number;
  /** Requests waiting for a row (default 64). */
  maxQueue?: number;
  /** Budget of a request that sets none, when the window allows (default 256). */
  defaultMaxNewTokens?: number;
  /**
   * How the engine's KV caches store keys and values (default bf16: half the bytes each decode step reads,
   * ~10% faster steps at 32 rows; the bench:serve figures in the README; f32 answers as generate() does).
   */
  kvCache?: KVCacheDtype;
}

export class RagService {
  readonly engine: BatchEngine;
  private readonly eos: number;
  private readonly defaultMaxNewTokens: number;

  constructor(
    readonly pipeline: RefragPipeline,
    readonly index: Retriever | null = null,
    o: RagServiceOptions = {},
  ) {
    this.engine = new BatchEngine(pipeline.model.decoder, {
      maxActive: o.maxActive,
      maxQueue: o.maxQueue,
      tokenizer: answerDecoder(pipeline.tokenizer),
      kvCache: o.kvCache ?? "bf16",
    });
    this.eos = promptTokenIds(pipeline.tokenizer).eos;
    this.defaultMaxNewTokens = o.defaultMaxNewTokens ?? 256;
  }

  /** Passages for a turn: the index's top k for every question so far. */
  async retrieve(question: string, history: readonly Turn[] = [], k = 5): Promise<RagPassage[]> {
    if (this.index === null)
      throw new RequestError("request: passages are required: there is no passage index");
    const hits = await this.index.search(retrievalQuery(question, history), k);
    return hits.map((h, i) => this.passage(i, h, h.score));
  }

  private passage(i: number, p: PassageInput, score: number | null): RagPassage {
    return {
      number: i + 1,
      id: p.id ?? `request#${i}`,
      title: p.title ?? "",
      text: p.text,
      score,
      tokens: 0,
      expanded: [],
      chunkText: [],
    };
  }

  /** Prepares the prompt (vectors, selection) and queues the generation; errors come before any token. */
  async start(req: RagRequest): Promise<RagRun> {
    const t0 = performance.now();
    const history = req.history ?? [];
    const passages =
      req.passages === undefined || req.passages === null
        ? await this.retrieve(req.question, history, req.k ?? 5)
        : req.passages.map((p, i) => this.passage(i, p, null));
    // Stored chunk vectors of these passages (by id, made from the same text) go to the pipeline's cache,
    // so the encoder does not run for them.
    const cache = this.pipeline.vectorCache;
    if (cache instanceof StoredVectorCache) await cache.load(passages, this.pipeline.tokenizer);
    const prompt = await this.pipeline.prepare({
      question: req.question,
      history,
      // The prompt (src/infer/prompt.ts) reads "i title" as raw tokens before each passage's chunks.
      passages: passages.map((p) => ({ id: p.id, title: p.title, text: p.text })),
      selection: req.selection,
    });
    const layout = this.layout(passages, prompt);
    const stats: Partial<EngineStats> = {};
    const tokens = this.engine.submit(
      {
        prompt: prompt.segments,
        maxNewTokens:
          req.maxNewTokens ??
          Math.max(
            1,
            Math.min(
              this.defaultMaxNewTokens,
              this.pipeline.model.decoder.config.max_position_embeddings - prompt.positions,
            ),
          ),
        temperature: req.temperature,
        topP: req.topP,
        topK: req.topK,
        stop: req.stop,
        seed: req.seed,
        signal: req.signal,
        stopTokenIds: [this.eos],
      },
      stats,
    );
    return { layout, tokens, stats, prepareMs: performance.now() - t0 };
  }

  /** The whole answer. */
  async answer(req: RagRequest): Promise<{ text: string; run: RagRun }> {
    const run = await this.start(req);
    let text = "";
    for await (const t of run.tokens) text += t.text;
    return { text, run };
  }

  /** Which chunks of which passage were expanded, and what compression saved. */
  private layout(passages: RagPassage[], prompt: PreparedPrompt): RagLayout {
    const k = this.pipeline.model.chunkSize;
    let c = 0;
    let saved = 0;
    for (const [i, p] of passages.entries()) {
      p.tokens = prompt.passageTokens[i];
      const n = Math.ceil(p.tokens / k);
      p.expanded = prompt.expand.slice(c, c + n);
      p.chunkText = prompt.chunks
        .slice(c, c + n)
        .map((ids) => this.pipeline.tokenizer.decode(Array.from(ids)));
      for (let j = c; j < c + n; j++) if (!prompt.expand[j]) saved += prompt.chunks[j].length - 1;
      c += n;
    }
    if (c !== prompt.chunks.length)
      throw new Error(
        `RagService: ${c} chunks counted over the passages, the prompt has ${prompt.chunks.length}`,
      );
    return {
      passages,
      chunkSize: k,
      contextTokens: prompt.contextTokens,
      positions: prompt.positions,
      fullPositions: prompt.positions + saved,
      chunks: prompt.chunks.length,
      expandedChunks: prompt.expand.filter((e) => e).length,
    };
  }
}
