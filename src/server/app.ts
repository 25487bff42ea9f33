// The HTTP server: a web page, passage retrieval, and answers streamed as server-sent events.
//   GET  /              the demo page
//   GET  /health        model and index facts
//   POST /v1/retrieve   {question, k?} -> {passages: [...]}
//   POST /v1/answer     {question, history?, passages? (strings or {id?, title?, text}) | k?, selection?,
//                        max_tokens?, temperature?, top_p?,
//                        stop?, seed?}
//                       -> text/event-stream: "passages", then "token" events, then "done" (or "error")
// Generation is CPU-bound, so requests run one at a time in arrival order; a full queue answers 503.
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { ContextLengthError } from "../infer/generate.js";
import {
  checkHistory,
  RequestError,
  type Passage,
  type RagStats,
  type RefragPipeline,
  type Turn,
} from "../infer/pipeline.js";
import { toPassage } from "../infer/prompt.js";
import { SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import type { PassageIndex } from "../retrieval/index.js";
import { demoPage } from "./page.js";

export interface Limits {
  maxQuestionChars: number;
  maxPassages: number;
  maxPassageChars: number;
  maxNewTokens: number;
  maxTopK: number;
  /** Earlier turns a request may carry. */
  maxHistoryTurns: number;
  /** Requests allowed to wait behind the running one. */
  maxQueue: number;
  /**
   * Characters of passages per position of the decoder's window (per chunk of k tokens: k·this many
   * characters). Longer contexts are refused (413) before tokenising: 8 characters per token is about
   * twice what English averages, so nothing that could fit is refused.
   */
  maxCharsPerToken: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxQuestionChars: 2000,
  maxPassages: 64,
  maxPassageChars: 20_000,
  maxNewTokens: 512,
  maxTopK: 32,
  maxHistoryTurns: 16,
  maxQueue: 8,
  maxCharsPerToken: 8,
};

export interface ServerOptions {
  pipeline: RefragPipeline;
  index?: PassageIndex | null;
  /** Shown on the page and in /health. */
  modelName?: string;
  limits?: Partial<Limits>;
  logger?: boolean;
}

/** A request error with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface PassageOut {
  id: string;
  title: string;
  text: string;
  score: number | null;
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
    "none",
    (v) => SELECTION_MODES.includes(v as SelectionMode),
    `one of ${SELECTION_MODES.join(", ")}`,
  );
  const fraction = field(s, "fraction", 0.25, isNum(0, 1), "a number in [0, 1]");
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

/** One request at a time; at most `max` waiting. */
class Queue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.max) throw new HttpError(503, "the server is busy; try again shortly");
    this.waiting++;
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    try {
      await prev;
      this.waiting--;
      return await fn();
    } finally {
      release();
    }
  }
}

function sse(reply: FastifyReply, event: string, data: unknown): void {
  reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** Errors a client caused (bad request, context too long) versus our own failures. */
function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof ContextLengthError) return 413;
  if (e instanceof RequestError) return 400;
  return 500;
}

/**
 * Refuse (413) a context that cannot fit the decoder's window even fully compressed, before the pipeline
 * encodes anything (and caches vectors for a request that then fails): first by characters, without
 * tokenising; then by tokens, counting one position per chunk of k.
 */
function checkContextSize(
  r: AnswerRequest,
  passages: PassageOut[],
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
  const queue = new Queue(limits.maxQueue);
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 1 << 20 });
  const model = pipeline.model;
  const facts = {
    model: opts.modelName ?? "refrag",
    chunk_size: model.chunkSize,
    context_window: model.decoder.config.max_position_embeddings,
    index: index === null ? null : index.dir,
    limits,
  };

  app.setErrorHandler((e, _req, reply) => {
    const status =
      e instanceof HttpError ? e.status : ((e as { statusCode?: number }).statusCode ?? statusOf(e));
    void reply.status(status).send({ error: e instanceof Error ? e.message : String(e) });
  });

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
    if (r.selection.mode === "policy" && model.policy === null)
      throw new HttpError(
        400,
        "selection mode 'policy' needs a model with a trained policy; this model has none",
      );
    let used: PassageOut[];
    if (r.passages !== null)
      used = r.passages.map((p, i) => ({
        id: p.id ?? `request#${i}`,
        title: p.title ?? "",
        text: p.text,
        score: null,
      }));
    // A follow-up ("and its population?") names its subject in an earlier turn: search with all questions.
    else if (index !== null)
      used = await index.search([...r.history.map((t) => t.question), r.question].join(" "), r.k);
    else throw new HttpError(400, "passages are required: this server has no passage index");
    checkContextSize(r, used, pipeline, limits);
    const controller = new AbortController();
    // The client going away stops the computation at once.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    await queue.run(async () => {
      if (controller.signal.aborted) {
        reply.hijack(); // the client left while waiting: nothing to send
        return;
      }
      const stats: Partial<RagStats> = {};
      const tokens = pipeline.generate(
        {
          question: r.question,
          history: r.history,
          // Titles reach the decoder: the prompt reads "[i] title:" before each passage's chunks.
          passages: used.map((p) => ({ id: p.id, title: p.title, text: p.text })),
          selection: r.selection,
          maxNewTokens: r.maxNewTokens,
          temperature: r.temperature,
          topP: r.topP,
          stop: r.stop,
          seed: r.seed,
          signal: controller.signal,
        },
        stats,
      );
      // The first step tokenises, encodes and prefills: its errors (a context that does not fit) are
      // still plain HTTP errors, before any event is sent.
      let next = await tokens.next();
      reply.hijack();
      reply.raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
      });
      sse(reply, "passages", used);
      try {
        while (!next.done) {
          if (next.value.text !== "") sse(reply, "token", { text: next.value.text });
          next = await tokens.next();
        }
        sse(reply, "done", { ...stats, chunkSize: model.chunkSize });
      } catch (e) {
        sse(reply, "error", { error: e instanceof Error ? e.message : String(e) });
      }
      reply.raw.end();
    });
  });

  return app;
}
