// The HTTP server: a web page, passage retrieval, and answers streamed as server-sent events.
//   GET  /              the demo page
//   GET  /health        model and index facts
//   GET  /metrics       Prometheus metrics (metrics.ts)
//   /v1/models, /v1/chat/completions, /v1/completions: OpenAI-compatible (openai.ts)
//   POST /v1/retrieve   {question, k?} -> {passages: [...]}
//   POST /v1/documents  live ingestion behind a bearer token (ingest.ts; only when a token is configured)
//   POST /v1/answer     {question, history?, passages? (strings or {id?, title?, text}) | k?, selection?,
//                        max_tokens?, temperature?, top_p?,
//                        stop?, seed?}
//                       -> text/event-stream: "passages", then "token" events, then "done" (or "error")
// Concurrent requests share the decoder (continuous batching, src/infer/batch.ts); a full queue answers 429.
import type { KVCacheDtype } from "../models/llama.js";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { checkHistory, type Passage, type RefragPipeline, type Turn } from "../infer/pipeline.js";
import { toPassage } from "../infer/prompt.js";
import { DEFAULT_SELECTION, SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import { RagService, type Retriever } from "../rag/service.js";
import { HttpError, messageOf, RETRY_AFTER_S, statusOf } from "./errors.js";
import { ServerMetrics } from "./metrics.js";
import { refragExtension, registerOpenAiRoutes } from "./openai.js";
import { registerIngestRoute, type IngestRouteOptions } from "./ingest.js";
import { demoPage } from "./page.js";

export { HttpError } from "./errors.js";

export interface Limits {
  maxQuestionChars: number;
  maxPassages: number;
  maxPassageChars: number;
  maxNewTokens: number;
  maxTopK: number;
  /** Earlier turns a request may carry. */
  maxHistoryTurns: number;
  /** Requests allowed to wait for a decoder row. */
  maxQueue: number;
  /**
   * Characters of passages per position of the decoder's window (per chunk of k tokens: k·this many
   * characters). Longer contexts are refused (413) before tokenising: 8 characters per token is about
   * twice what English averages, so nothing that could fit is refused.
   */
  maxCharsPerToken: number;
  /** Requests decoded together (rows of a decode step). */
  maxActive: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxQuestionChars: 2000,
  maxPassages: 64,
  maxPassageChars: 20_000,
  maxNewTokens: 512,
  maxTopK: 32,
  maxHistoryTurns: 16,
  maxQueue: 64,
  maxActive: 32,
  maxCharsPerToken: 8,
};

export interface ServerOptions {
  pipeline: RefragPipeline;
  index?: Retriever | null;
  /** Shown on the page and in /health. */
  modelName?: string;
  limits?: Partial<Limits>;
  logger?: boolean;
  /** The RAG service to serve (default: one over pipeline and index with the limits' queue sizes). */
  rag?: RagService;
  /** KV cache storage of that default service (RagServiceOptions.kvCache; default bf16). */
  kvCache?: KVCacheDtype;
  /** Passage vectors computed on the request path so far (for /metrics). */
  encodedPassages?: () => number;
  /** POST /v1/documents (live ingestion behind a token); absent: the route does not exist. */
  ingest?: IngestRouteOptions | null;
}

interface AnswerRequest {
  question: string;
  history: Turn[];
  passages: Passage[] | null;
  k: number;
  selection: { mode: SelectionMode; fraction: number };
  maxNewTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
  seed: number;
}

function field<T>(
  body: Record<string, unknown>,
  key: string,
  fallback: T,
  check: (v: unknown) => boolean,
  what: string,
): T {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (!check(v)) throw new HttpError(400, `${key} must be ${what}, got ${JSON.stringify(v)}`);
  return v as T;
}

const isInt = (lo: number, hi: number) => (v: unknown) =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const isNum = (lo: number, hi: number) => (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi;

function parseQuestion(body: Record<string, unknown>, limits: Limits): string {
  const q = body.question;
  if (typeof q !== "string" || q.trim() === "")
    throw new HttpError(400, "question must be a non-empty string");
  if (q.length > limits.maxQuestionChars)
    throw new HttpError(413, `question is ${q.length} characters; the limit is ${limits.maxQuestionChars}`);
  return q;
}

export function parseAnswerRequest(raw: unknown, limits: Limits): AnswerRequest {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new HttpError(400, "the body must be a JSON object");
  const body = raw as Record<string, unknown>;
  const question = parseQuestion(body, limits);
  let passages: Passage[] | null = null;
  if (body.passages !== undefined && body.passages !== null) {
    const bad = () => new HttpError(400, "passages must be a list of strings or {id?, title?, text}");
    if (!Array.isArray(body.passages)) throw bad();
    if (body.passages.length > limits.maxPassages)
      throw new HttpError(413, `${body.passages.length} passages; the limit is ${limits.maxPassages}`);
    passages = body.passages.map((p: unknown, i) => {
      try {
        return toPassage(p, i);
      } catch {
        throw bad();
      }
    });
    const long = passages.findIndex((p) => p.text.length + (p.title?.length ?? 0) > limits.maxPassageChars);
    if (long >= 0)
      throw new HttpError(413, `passage ${long} is longer than ${limits.maxPassageChars} characters`);
  }
  let history: Turn[];
  try {
    history = checkHistory(body.history);
  } catch (e) {
    throw new HttpError(400, (e as Error).message.replace(/^request: /, ""));
  }
  if (history.length > limits.maxHistoryTurns)
    throw new HttpError(413, `${history.length} history turns; the limit is ${limits.maxHistoryTurns}`);
  const longTurn = history.findIndex((t) => t.question.length + t.answer.length > limits.maxQuestionChars);
  if (longTurn >= 0)
    throw new HttpError(413, `history turn ${longTurn} is longer than ${limits.maxQuestionChars} characters`);
  const sel = body.selection ?? {};
  if (typeof sel !== "object" || sel === null || Array.isArray(sel))
    throw new HttpError(400, "selection must be an object {mode, fraction}");
  const s = sel as Record<string, unknown>;
  const mode = field<string>(
    s,
    "mode",
    DEFAULT_SELECTION.mode,
    (v) => SELECTION_MODES.includes(v as SelectionMode),
    `one of ${SELECTION_MODES.join(", ")}`,
  );
  const fraction = field(s, "fraction", DEFAULT_SELECTION.fraction, isNum(0, 1), "a number in [0, 1]");
  const stop = field<string[]>(
    body,
    "stop",
    [],
    (v) => Array.isArray(v) && v.length <= 8 && v.every((x) => typeof x === "string" && x.length > 0),
    "a list of at most 8 non-empty strings",
  );
  return {
    question,
    history,
    passages,
    k: field(body, "k", 5, isInt(1, limits.maxTopK), `an integer in [1, ${limits.maxTopK}]`),
    selection: { mode: mode as SelectionMode, fraction },
    maxNewTokens: field(
      body,
      "max_tokens",
      Math.min(64, limits.maxNewTokens), // the default respects a lower configured limit
      isInt(1, limits.maxNewTokens),
      `an integer in [1, ${limits.maxNewTokens}]`,
    ),
    temperature: field(body, "temperature", 0, isNum(0, 10), "a number in [0, 10]"),
    topP: field(body, "top_p", 1, (v) => isNum(0, 1)(v) && (v as number) > 0, "a number in (0, 1]"),
    stop,
    seed: field(body, "seed", 0, isInt(0, 2 ** 31 - 1), "a non-negative integer"),
  };
}

function sse(reply: FastifyReply, event: string, data: unknown): void {
  reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * Refuse (413) a context that cannot fit the decoder's window even fully compressed, before the pipeline
 * encodes anything (and caches vectors for a request that then fails): first by characters, without
 * tokenising; then by tokens, counting one position per chunk of k.
 */
function checkContextSize(
  r: AnswerRequest,
  passages: readonly { text: string }[],
  pipeline: RefragPipeline,
  limits: Limits,
): void {
  const model = pipeline.model;
  const k = model.chunkSize;
  const window = model.decoder.config.max_position_embeddings;
  const room = window - r.maxNewTokens;
  const chars = passages.reduce((n, p) => n + p.text.length, 0);
  const maxChars = room * k * limits.maxCharsPerToken;
  if (chars > maxChars)
    throw new HttpError(
      413,
      `the passages hold ${chars} characters; this model's window of ${window} positions (${r.maxNewTokens} kept for the answer, ${k} tokens per compressed chunk) takes at most ${maxChars}`,
    );
  let chunks = 0;
  let tokens = 0;
  for (const p of passages) {
    const n = pipeline.tokenizer.encode(p.text, { allowSpecial: false }).length;
    tokens += n;
    chunks += Math.ceil(n / k);
  }
  // Mode "all" reads every chunk as raw tokens; every other mode compresses at least some.
  const positions = r.selection.mode === "all" ? tokens : chunks;
  const question = pipeline.tokenizer.encode(r.question, { allowSpecial: false }).length;
  const need = question + positions + r.maxNewTokens;
  if (need > window)
    throw new HttpError(
      413,
      `the passages take at least ${positions} positions (${chunks} chunks of ${k} tokens, selection ${r.selection.mode}); with the question (${question} tokens) and ${r.maxNewTokens} answer tokens that is ${need}, which exceeds the decoder's context window of ${window}`,
    );
  const maxChunks = model.policy?.config.max_chunks;
  if (r.selection.mode === "policy" && maxChunks !== undefined && chunks > maxChunks)
    throw new HttpError(
      413,
      `the passages make ${chunks} chunks; the selection policy reads at most ${maxChunks}`,
    );
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const { pipeline } = opts;
  const index = opts.index ?? null;
  const rag =
    opts.rag ??
    new RagService(pipeline, index, {
      maxQueue: limits.maxQueue,
      maxActive: limits.maxActive,
      kvCache: opts.kvCache,
    });
  const metrics = new ServerMetrics(rag.engine, opts.encodedPassages);
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 1 << 20 });
  const model = pipeline.model;
  const facts = {
    model: opts.modelName ?? "refrag",
    chunk_size: model.chunkSize,
    context_window: model.decoder.config.max_position_embeddings,
    index: index === null ? null : index.dir,
    ingestion: (opts.ingest ?? null) !== null,
    limits,
  };

  app.setErrorHandler((e, _req, reply) => {
    const status = statusOf(e);
    if (status === 429) void reply.header("retry-after", String(RETRY_AFTER_S));
    void reply.status(status).send({ error: messageOf(e) });
  });
  app.addHook("onClose", async () => rag.engine.close());
  metrics.register(app);
  registerOpenAiRoutes(app, {
    rag,
    modelName: facts.model,
    limits,
    metrics,
    created: Math.floor(Date.now() / 1000),
  });
  if (opts.ingest) registerIngestRoute(app, opts.ingest);

  app.get("/", async (_req, reply) =>
    reply.type("text/html; charset=utf-8").send(demoPage(facts.model, index !== null)),
  );

  app.get("/health", async () => ({
    status: "ok",
    ...facts,
    passages: index === null ? 0 : await index.count(),
  }));

  app.post("/v1/retrieve", async (req) => {
    if (index === null) throw new HttpError(404, "this server has no passage index (start it with --index)");
    const body = (req.body ?? {}) as Record<string, unknown>;
    const question = parseQuestion(body, limits);
    const k = field(body, "k", 5, isInt(1, limits.maxTopK), `an integer in [1, ${limits.maxTopK}]`);
    return { passages: await index.search(question, k) };
  });

  app.post("/v1/answer", async (req, reply) => {
    const r = parseAnswerRequest(req.body, limits);
    if (r.selection.mode === "policy" && pipeline.model.policy === null)
      throw new HttpError(
        400,
        "selection mode 'policy' needs a model with a trained policy; this model has none",
      );
    if (r.passages === null && index === null)
      throw new HttpError(400, "passages are required: this server has no passage index");
    // Passages in the request are refused (413) before anything tokenises or encodes them if they cannot fit.
    if (r.passages !== null)
      checkContextSize(
        r,
        r.passages.map((p, i) => ({
          id: p.id ?? `request#${i}`,
          title: p.title ?? "",
          text: p.text,
          score: null,
        })),
        pipeline,
        limits,
      );
    const controller = new AbortController();
    // The client going away stops the computation at once (and frees its decoder row).
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    // Retrieval, vectors, selection and queueing: their errors (a context that does not fit, a full
    // queue) are still plain HTTP errors, before any event is sent.
    const run = await rag.start({
      question: r.question,
      history: r.history,
      passages: r.passages,
      k: r.k,
      selection: r.selection,
      maxNewTokens: r.maxNewTokens,
      temperature: r.temperature,
      topP: r.topP,
      stop: r.stop,
      seed: r.seed,
      signal: controller.signal,
    });
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    sse(reply, "passages", run.layout.passages);
    sse(reply, "layout", refragExtension(run.layout));
    try {
      for await (const t of run.tokens) if (t.text !== "") sse(reply, "token", { text: t.text });
      if (run.stats.finishReason !== "aborted") {
        metrics.observe(run.layout, run.stats, run.prepareMs);
        sse(reply, "done", {
          ...run.stats,
          ttftMs: run.prepareMs + (run.stats.ttftMs ?? 0),
          prepareMs: run.prepareMs,
          contextTokens: run.layout.contextTokens,
          chunks: run.layout.chunks,
          chunkSize: model.chunkSize,
          fullPositions: run.layout.fullPositions,
        });
      }
    } catch (e) {
      sse(reply, "error", { error: messageOf(e) });
    }
    reply.raw.end();
  });

  return app;
}
