// Continuous batching: concurrent requests share the decoder. Requests join and leave between decode
// steps; each keeps its own KV cache; one step feeds every active row's last token through the decoder
// together (LlamaDecodeStep: one native call per weight matrix for all rows, each weight tile loaded once
// for several rows).
//
// Batch invariance: a row's numbers must not depend on how many rows share the step, so a greedy answer is
// the same alone or in a crowd. The weight products go through gemvRows, whose every row is bit-identical
// to the one-row GEMV (the packed GEMM that several rows would otherwise take sums in another order), and
// every other op (RMSNorm, RoPE, SwiGLU, residual adds, attention over the row's own cache) is row-wise.
// Prefill stacks the joining prompts' rows into one forward pass: the packed GEMM's rows do not depend
// on how many rows it multiplies (M ≥ 2), and attention runs per prompt on its own cache, so each prompt's
// cache and logits equal its prefill alone (generate()).
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import {
  KVCache,
  type KVCacheDtype,
  type LlamaConfig,
  type LlamaForCausalLM,
  type Segment,
} from "../models/llama.js";
import { LlamaDecodeStep } from "../models/llama_decode.js";
import { LlamaPrefill } from "../models/llama_prefill.js";
import { segmentLength } from "../models/refrag.js";
import {
  checkContext,
  type GeneratedToken,
  type GenerationOptions,
  type GenerationStats,
} from "./generate.js";
import { sampleToken, validateSampling } from "./sampling.js";
import { AnswerText, type TextDecoder } from "./text_stream.js";

/** The engine's queue is full: the caller should retry later (HTTP 429). */
export class QueueFullError extends Error {}
/** The engine was closed (server shutting down; HTTP 503). */
export class EngineClosedError extends Error {}

export interface BatchRequest extends GenerationOptions {
  prompt: Segment[];
  /** Sees each step's logits row (for tests and diagnostics; the array is reused after the call). */
  onLogits?: (logits: Float32Array, index: number) => void;
}

export interface EngineStats extends GenerationStats {
  /** Milliseconds spent waiting for a free row. */
  queueMs: number;
}

export interface BatchEngineOptions {
  /** Rows decoded together (default 32). */
  maxActive?: number;
  /** Requests waiting for a row before new ones are refused (default 64). */
  maxQueue?: number;
  /** Prompt positions prefilled together in one forward pass, at most (default 2048; a longer prompt goes alone). */
  prefillPositions?: number;
  tokenizer?: TextDecoder | null;
  /** How every row's KV cache stores keys and values (default f32; see GenerationOptions.kvCache). */
  kvCache?: KVCacheDtype;
}

/**
 * KV caches of finished requests, kept for the next ones: a new cache is ~2 MiB of fresh, zeroed pages
 * per request at bench:serve's sizes (page faults, and external memory that drives V8's collections), a
 * kept one is warm. Attention reads only a cache's first `length` positions, so a cache handed out again
 * starts at length 0 and its old contents are never read. Capacities are rounded up to a multiple of
 * CACHE_ROUND positions so requests of similar sizes share; at most `maxKept` caches and `maxBytes` are kept.
 */
export class KVCachePool {
  private readonly kept: KVCache[] = [];
  private bytes = 0;

  constructor(
    readonly config: LlamaConfig,
    readonly maxKept: number,
    readonly dtype: KVCacheDtype = "f32",
    readonly maxBytes = 256 * 2 ** 20,
  ) {}

  /** A cache of at least `capacity` positions, empty: the smallest kept one that fits, or a new one. */
  take(capacity: number): KVCache {
    let best = -1;
    this.kept.forEach((c, i) => {
      if (c.capacity >= capacity && (best < 0 || c.capacity < this.kept[best].capacity)) best = i;
    });
    if (best < 0)
      return new KVCache(this.config, Math.ceil(capacity / CACHE_ROUND) * CACHE_ROUND, this.dtype);
    const [cache] = this.kept.splice(best, 1);
    this.bytes -= cacheBytes(cache);
    cache.truncate(0);
    return cache;
  }

  /** Keeps a cache nobody reads any more (the oldest kept ones go when the limits are reached). */
  give(cache: KVCache): void {
    const n = cacheBytes(cache);
    if (n > this.maxBytes) return;
    this.kept.push(cache);
    this.bytes += n;
    while (this.kept.length > this.maxKept || this.bytes > this.maxBytes)
      this.bytes -= cacheBytes(this.kept.shift()!);
  }

  /** Caches kept. */
  get size(): number {
    return this.kept.length;
  }
}

const CACHE_ROUND = 64;
const cacheBytes = (c: KVCache) => 2 * c.keys.length * c.keys[0].byteLength;

/** A pushed sequence of tokens read as an async iterator. */
class Channel {
  private readonly items: GeneratedToken[] = [];
  private waiting: ((r: IteratorResult<GeneratedToken, void>) => void) | null = null;
  private failed: ((e: unknown) => void) | null = null;
  private closed = false;
  private error: unknown = null;

  push(t: GeneratedToken): void {
    if (this.waiting !== null) {
      const w = this.waiting;
      this.waiting = this.failed = null;
      w({ value: t, done: false });
    } else this.items.push(t);
  }
  close(error: unknown = null): void {
    this.closed = true;
    this.error = error;
    if (this.waiting !== null) {
      const [w, f] = [this.waiting, this.failed!];
      this.waiting = this.failed = null;
      if (error !== null) f(error);
      else w({ value: undefined, done: true });
    }
  }
  next(): Promise<IteratorResult<GeneratedToken, void>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.closed)
      return this.error !== null
        ? Promise.reject(this.error)
        : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
    });
  }
}

interface Row {
  req: BatchRequest;
  maxNew: number;
  stopIds: Set<number>;
  rng: Rng;
  answer: AnswerText;
  cache: KVCache | null;
  channel: Channel;
  stats: Partial<EngineStats>;
  t0: number;
  /** Token fed at the next step. */
  last: number;
  left: boolean;
}

/** One request's token stream; leaving the loop early (return()) frees its row at the next step. */
export class TokenStream implements AsyncIterableIterator<GeneratedToken> {
  constructor(private readonly row: Row) {}
  next(): Promise<IteratorResult<GeneratedToken, void>> {
    return this.row.channel.next();
  }
  return(): Promise<IteratorResult<GeneratedToken, void>> {
    this.row.left = true;
    return Promise.resolve({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): this {
    return this;
  }
}

export class BatchEngine {
  readonly maxActive: number;
  readonly maxQueue: number;
  readonly prefillPositions: number;
  private readonly tokenizer: TextDecoder | null;
  private readonly pending: Row[] = [];
  private readonly active: Row[] = [];
  private running = false;
  private closed = false;
  private readonly decodeStep: LlamaDecodeStep;
  private readonly prefillPass: LlamaPrefill;
  /** KV caches of finished rows, handed to joining ones. */
  readonly caches: KVCachePool;
  /** Called after every decode step with the rows it ran (metrics). */
  onStep: ((rows: number, ms: number) => void) | null = null;
  /** Called after every prefill with the requests and prompt positions it ran together (metrics). */
  onPrefill: ((requests: number, positions: number, ms: number) => void) | null = null;

  constructor(
    readonly decoder: LlamaForCausalLM,
    o: BatchEngineOptions = {},
  ) {
    this.maxActive = o.maxActive ?? 32;
    this.maxQueue = o.maxQueue ?? 64;
    this.prefillPositions = o.prefillPositions ?? 2048;
    this.tokenizer = o.tokenizer ?? null;
    if (!Number.isInteger(this.maxActive) || this.maxActive < 1)
      throw new Error(`BatchEngine: maxActive must be a positive integer, got ${this.maxActive}`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0)
      throw new Error(`BatchEngine: maxQueue must be a non-negative integer, got ${this.maxQueue}`);
    if (!Number.isInteger(this.prefillPositions) || this.prefillPositions < 1)
      throw new Error(
        `BatchEngine: prefillPositions must be a positive integer, got ${this.prefillPositions}`,
      );
    this.decodeStep = new LlamaDecodeStep(decoder, this.maxActive);
    this.prefillPass = new LlamaPrefill(decoder);
    this.caches = new KVCachePool(decoder.config, this.maxActive, o.kvCache);
  }

  /** Requests waiting for a row. */
  get queueDepth(): number {
    return this.pending.length;
  }
  /** Rows being decoded. */
  get activeRows(): number {
    return this.active.length;
  }

  /**
   * Queues a request. Throws at once (before any token) for a context that does not fit
   * (ContextLengthError), a full queue (QueueFullError) or a closed engine (EngineClosedError).
   */
  submit(req: BatchRequest, stats?: Partial<EngineStats>): TokenStream {
    if (this.closed) throw new EngineClosedError("the server is shutting down");
    validateSampling(req);
    if (req.kvCache !== undefined && req.kvCache !== this.caches.dtype)
      throw new Error(
        `BatchEngine: this engine's KV caches are ${this.caches.dtype}; a request cannot ask for ${req.kvCache}`,
      );
    const maxNew = req.maxNewTokens ?? 64;
    if (!Number.isInteger(maxNew) || maxNew < 1)
      throw new Error(`generate: maxNewTokens must be a positive integer, got ${maxNew}`);
    const positions = segmentLength(req.prompt);
    checkContext(this.decoder, positions, maxNew);
    if (this.pending.length + this.active.length >= this.maxActive + this.maxQueue)
      throw new QueueFullError(`${this.pending.length} requests are waiting; try again shortly`);
    const s = stats ?? {};
    s.promptPositions = positions;
    s.generated = 0;
    s.finishReason = "length";
    const row: Row = {
      req,
      maxNew,
      stopIds: new Set(req.stopTokenIds ?? []),
      rng: new Rng(req.seed ?? 0),
      answer: new AnswerText(this.tokenizer, req.stop ?? []),
      cache: null,
      channel: new Channel(),
      stats: s,
      t0: performance.now(),
      last: -1,
      left: false,
    };
    this.pending.push(row);
    this.kick();
    return new TokenStream(row);
  }

  /** Refuses new requests; running ones finish. */
  close(): void {
    this.closed = true;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending.length > 0 || this.active.length > 0) {
        // Join: prefill waiting requests into free rows, several prompts in one forward pass.
        while (this.pending.length > 0 && this.active.length < this.maxActive) {
          const group = this.joining();
          if (group.length === 0) continue;
          try {
            const t = performance.now();
            const logits = this.prefill(group);
            const positions = group.reduce((a, row) => a + row.stats.promptPositions!, 0);
            this.onPrefill?.(group.length, positions, performance.now() - t);
            const V = this.decoder.config.vocab_size;
            group.forEach((row, i) => {
              if (this.emit(row, logits.subarray(i * V, (i + 1) * V), 0)) this.active.push(row);
            });
          } catch (e) {
            for (const row of group) this.finish(row, e);
          }
        }
        // Leave: rows whose client went away.
        for (let i = this.active.length - 1; i >= 0; i--)
          if (this.gone(this.active[i])) this.active.splice(i, 1);
        if (this.active.length > 0) {
          const rows = [...this.active];
          const t = performance.now();
          let logits: Float32Array;
          try {
            logits = this.step(rows);
          } catch (e) {
            for (const r of rows) this.finish(r, e);
            this.active.length = 0;
            continue;
          }
          this.onStep?.(rows.length, performance.now() - t);
          const V = this.decoder.config.vocab_size;
          rows.forEach((r, i) => {
            const keep = this.emit(r, logits.subarray(i * V, (i + 1) * V), r.answer.ids.length);
            if (!keep) this.active.splice(this.active.indexOf(r), 1);
          });
        }
        await new Promise<void>((resolve) => setImmediate(resolve)); // let requests in and out
      }
    } finally {
      this.running = false;
    }
  }

  /** True (and the row closed) when its client left or aborted. */
  private gone(row: Row): boolean {
    if (!row.left && !row.req.signal?.aborted) return false;
    row.stats.finishReason = "aborted";
    this.finish(row, null);
    return true;
  }

  private finish(row: Row, error: unknown): void {
    row.stats.kvBytes = row.cache?.bytesUsed() ?? 0;
    row.stats.totalMs = performance.now() - row.t0;
    if (row.cache !== null) this.caches.give(row.cache);
    row.cache = null;
    row.channel.close(error);
  }

  /** Samples the next token from a logits row and emits it; false when the row is done. */
  private emit(row: Row, logits: Float32Array, index: number): boolean {
    row.req.onLogits?.(logits, index);
    const s = row.stats;
    const id = sampleToken(logits, row.req, row.rng);
    if (index === 0) s.ttftMs = performance.now() - row.t0;
    if (row.stopIds.has(id)) {
      s.finishReason = "stop";
      return this.end(row);
    }
    const { text, stopped } = row.answer.push(id);
    s.generated = row.answer.ids.length;
    s.kvBytes = row.cache!.bytesUsed();
    row.channel.push({ id, text, index });
    if (stopped) {
      s.finishReason = "stop";
      return this.end(row);
    }
    if (row.answer.ids.length === row.maxNew) return this.end(row);
    row.last = id;
    return true;
  }

  /** Ends a row normally: held-back text first. */
  private end(row: Row): false {
    const rest = row.answer.flush();
    if (rest !== "") row.channel.push({ id: -1, text: rest, index: row.answer.ids.length });
    this.finish(row, null);
    return false;
  }

  /**
   * Waiting requests to prefill together: up to the free rows and about prefillPositions positions. A
   * one-position prompt goes alone (its one-row product would take the GEMV, whose bits differ from the
   * GEMM's rows; the GEMM's rows do not depend on how many rows share it).
   */
  private joining(): Row[] {
    const group: Row[] = [];
    let positions = 0;
    while (this.pending.length > 0 && this.active.length + group.length < this.maxActive) {
      const row = this.pending[0];
      const n = row.stats.promptPositions!;
      if (group.length > 0 && (n < 2 || positions + n > this.prefillPositions)) break;
      this.pending.shift();
      if (this.gone(row)) continue;
      row.stats.queueMs = performance.now() - row.t0;
      group.push(row);
      positions += n;
      if (n < 2) break;
    }
    return group;
  }

  /**
   * The rows' prompts in one forward pass (each with its own cache, attention per prompt; LlamaPrefill):
   * logits [rows, V] of each prompt's last position, the bits generate() gets for it alone.
   */
  private prefill(rows: Row[]): Float32Array {
    const d = this.decoder;
    const caches = rows.map((row) => {
      row.cache = this.caches.take(checkContext(d, row.stats.promptPositions!, row.maxNew));
      return row.cache;
    });
    return noGrad(() =>
      this.prefillPass.run(
        rows.map((row) => row.req.prompt),
        caches,
      ),
    );
  }

  /** One decode step for rows: each feeds its last token at its own position. Logits [R, V]. */
  private step(rows: Row[]): Float32Array {
    const tokens = Int32Array.from(rows, (r) => r.last);
    return this.decodeStep.step(
      tokens,
      rows.map((r) => r.cache!),
    );
  }
}
