// OpenAI-compatible endpoints, so OpenAI clients, LangChain.js and the like talk to REFRAG unchanged:
//   GET  /v1/models, /v1/models/:id
//   POST /v1/chat/completions   messages → answer; stream: true sends `data:` chunks ending in [DONE]
//   POST /v1/completions        prompt (the question) → text
// Passages come from the index, searched with the conversation's user messages (src/rag/query.ts), unless
// the request brings them in the extension field `refrag`:
//   "refrag": {"passages": [string | {id?, title?, text}], "k": 5, "selection": {"mode": "policy", "fraction": 0.25}}
// Responses carry `refrag` too: the passages read (number, id, title, which chunks were expanded) and the
// compression figures. `usage.prompt_tokens` counts decoder positions (what the decoder read).
// System messages are accepted and not read (the prompt format has no system slot). Unsupported options
// (n > 1, logprobs, tools, penalties, logit_bias, non-text response formats) are a 400, never ignored.
// Errors have OpenAI's shape {error: {message, type, param, code}}.
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { EngineStats } from "../infer/batch.js";
import type { Turn } from "../infer/pipeline.js";
import { DEFAULT_SELECTION, SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import type { PassageInput, RagLayout, RagRequest, RagService } from "../rag/service.js";
import { HttpError, messageOf, RETRY_AFTER_S, statusOf } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

export interface OpenAiLimits {
  maxQuestionChars: number;
  maxPassages: number;
  maxPassageChars: number;
  maxNewTokens: number;
  maxTopK: number;
  maxHistoryTurns: number;
}

export interface OpenAiOptions {
  rag: RagService;
  modelName: string;
  limits: OpenAiLimits;
  metrics: ServerMetrics;
  created: number;
}

type Body = Record<string, unknown>;

const ERROR_TYPES: Record<number, [string, string | null]> = {
  400: ["invalid_request_error", null],
  401: ["invalid_request_error", "invalid_api_key"],
  404: ["invalid_request_error", "not_found"],
  413: ["invalid_request_error", "request_too_large"],
  429: ["rate_limit_error", "rate_limit_exceeded"],
  503: ["server_error", "service_unavailable"],
};

/** OpenAI's error body for an error and its status. */
export function openAiError(e: unknown, status: number): { error: Record<string, unknown> } {
  const [type, code] =
    ERROR_TYPES[status] ?? (status >= 500 ? ["server_error", null] : ["invalid_request_error", null]);
  return {
    error: {
      message: messageOf(e),
      type,
      param: e instanceof HttpError ? e.param : null,
      code: e instanceof HttpError && status === 404 && e.param === "model" ? "model_not_found" : code,
    },
  };
}

function bad(param: string, message: string, status = 400): never {
  throw new HttpError(status, message, param);
}

function optional<T>(body: Body, key: string, fallback: T, ok: (v: unknown) => boolean, what: string): T {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (!ok(v)) bad(key, `${key} must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v as T;
}

const isInt = (lo: number, hi: number) => (v: unknown) =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const isNum = (lo: number, hi: number) => (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi;

/** Options we do not implement: present with a non-default value is a 400. */
function refuseUnsupported(body: Body): void {
  if (body.n !== undefined && body.n !== null && body.n !== 1)
    bad("n", "n > 1 is not supported: request one choice");
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1)
    bad("best_of", "best_of > 1 is not supported");
  for (const k of ["logprobs", "top_logprobs", "echo"])
    if (body[k] !== undefined && body[k] !== null && body[k] !== false && body[k] !== 0)
      bad(k, `${k} is not supported`);
  for (const k of ["presence_penalty", "frequency_penalty"])
    if (body[k] !== undefined && body[k] !== null && body[k] !== 0) bad(k, `${k} is not supported (only 0)`);
  const empty = (v: unknown) =>
    v === undefined || v === null || v === "" || (typeof v === "object" && Object.keys(v).length === 0);
  for (const k of ["tools", "functions", "logit_bias", "suffix"])
    if (!empty(body[k])) bad(k, `${k} is not supported`);
  const rf = body.response_format as { type?: unknown } | undefined | null;
  if (rf !== undefined && rf !== null && rf.type !== "text")
    bad("response_format", 'only response_format {type: "text"} is supported');
}

interface Parsed {
  rag: Omit<RagRequest, "question" | "history">;
  stream: boolean;
  includeUsage: boolean;
}

/** Sampling, budget, streaming and the `refrag` extension, common to both endpoints. */
function parseCommon(body: Body, o: OpenAiOptions, defaultMax: number | undefined): Parsed {
  const model = body.model;
  if (typeof model !== "string" || model === "") bad("model", "model is required (GET /v1/models lists it)");
  if (model !== o.modelName)
    bad("model", `the model ${model} does not exist (this server serves ${o.modelName})`, 404);
  refuseUnsupported(body);
  const { limits } = o;
  const budget = isInt(1, limits.maxNewTokens);
  const range = `an integer in [1, ${limits.maxNewTokens}]`;
  const maxTokens = optional<number | undefined>(
    body,
    "max_completion_tokens",
    optional(body, "max_tokens", defaultMax, budget, range),
    budget,
    range,
  );
  let stop = body.stop ?? [];
  if (typeof stop === "string") stop = [stop];
  if (!Array.isArray(stop) || stop.length > 8 || stop.some((s) => typeof s !== "string" || s.length === 0))
    bad("stop", "stop must be a non-empty string or a list of at most 8 non-empty strings");
  const ext = optional<Body>(
    body,
    "refrag",
    {},
    (v) => typeof v === "object" && !Array.isArray(v),
    "an object",
  );
  let passages: PassageInput[] | null = null;
  if (ext.passages !== undefined && ext.passages !== null) {
    if (!Array.isArray(ext.passages)) bad("refrag.passages", "refrag.passages must be a list");
    if (ext.passages.length > limits.maxPassages)
      bad("refrag.passages", `${ext.passages.length} passages; the limit is ${limits.maxPassages}`, 413);
    passages = ext.passages.map((p: unknown, i) => {
      const q = typeof p === "string" ? { text: p } : (p as PassageInput | null);
      if (typeof q !== "object" || q === null || typeof q.text !== "string")
        bad("refrag.passages", `refrag.passages[${i}] must be a string or {id?, title?, text}`);
      for (const k of ["id", "title"] as const)
        if (q[k] !== undefined && typeof q[k] !== "string")
          bad("refrag.passages", `refrag.passages[${i}].${k} must be a string`);
      if (q.text.length > limits.maxPassageChars)
        bad("refrag.passages", `passage ${i} is longer than ${limits.maxPassageChars} characters`, 413);
      return { id: q.id, title: q.title, text: q.text };
    });
  } else if (o.rag.index === null)
    bad("refrag.passages", "refrag.passages is required: this server has no passage index");
  const sel = optional<Body>(
    ext,
    "selection",
    {},
    (v) => typeof v === "object" && !Array.isArray(v),
    "an object {mode, fraction}",
  );
  const mode = optional<string>(
    sel,
    "mode",
    DEFAULT_SELECTION.mode,
    (v) => SELECTION_MODES.includes(v as SelectionMode),
    `one of ${SELECTION_MODES.join(", ")}`,
  );
  return {
    rag: {
      passages,
      k: optional(ext, "k", 5, isInt(1, limits.maxTopK), `an integer in [1, ${limits.maxTopK}]`),
      selection: {
        mode: mode as SelectionMode,
        fraction: optional(sel, "fraction", DEFAULT_SELECTION.fraction, isNum(0, 1), "a number in [0, 1]"),
      },
      maxNewTokens: maxTokens,
      temperature: optional(body, "temperature", 1, isNum(0, 2), "a number in [0, 2]"),
      topP: optional(body, "top_p", 1, (v) => isNum(0, 1)(v) && (v as number) > 0, "a number in (0, 1]"),
      stop: stop as string[],
      seed: optional(
        body,
        "seed",
        randomBytes(4).readUInt32BE() >>> 1,
        isInt(0, 2 ** 31 - 1),
        "a non-negative integer",
      ),
    },
    stream: optional(body, "stream", false, (v) => typeof v === "boolean", "a boolean"),
    includeUsage:
      optional<Body>(
        body,
        "stream_options",
        {},
        (v) => typeof v === "object" && !Array.isArray(v),
        "an object",
      ).include_usage === true,
  };
}

function textOf(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  if (
    Array.isArray(content) &&
    content.every(
      (p) =>
        typeof p === "object" &&
        p !== null &&
        (p as Body).type === "text" &&
        typeof (p as Body).text === "string",
    )
  )
    return content.map((p) => (p as { text: string }).text).join("");
  return bad("messages", `messages[${i}].content must be a string or a list of text parts`);
}

/** The last user message is the question; earlier user/assistant pairs are the history. */
export function questionAndHistory(
  messages: unknown,
  limits: OpenAiLimits,
): { question: string; history: Turn[] } {
  if (!Array.isArray(messages) || messages.length === 0) bad("messages", "messages must be a non-empty list");
  const turns: { role: "user" | "assistant"; text: string }[] = [];
  messages.forEach((m: unknown, i) => {
    const role = (m as Body | null)?.role;
    if (role === "system" || role === "developer") return;
    if (role !== "user" && role !== "assistant")
      bad("messages", `messages[${i}].role must be system, developer, user or assistant`);
    const text = textOf((m as Body).content, i);
    const prev = turns.at(-1);
    if (prev?.role === role)
      prev.text += `\n${text}`; // consecutive messages of one role read as one
    else turns.push({ role, text });
  });
  if (turns.length === 0 || turns.at(-1)!.role !== "user")
    bad("messages", "the last message must be from the user");
  if (turns[0].role !== "user") turns.unshift({ role: "user", text: "" });
  const question = turns.at(-1)!.text;
  if (question.trim() === "") bad("messages", "the last user message is empty");
  if (question.length > limits.maxQuestionChars)
    bad(
      "messages",
      `the question is ${question.length} characters; the limit is ${limits.maxQuestionChars}`,
      413,
    );
  const history: Turn[] = [];
  for (let i = 0; i + 1 < turns.length - 1; i += 2)
    history.push({ question: turns[i].text, answer: turns[i + 1].text });
  if (history.length > limits.maxHistoryTurns)
    bad("messages", `${history.length} earlier turns; the limit is ${limits.maxHistoryTurns}`, 413);
  return { question, history };
}

/** The `refrag` field of a response: what was read and how. */
export function refragExtension(
  layout: RagLayout,
  stats?: Partial<EngineStats>,
  prepareMs = 0,
): Record<string, unknown> {
  return {
    passages: layout.passages.map((p) => ({
      number: p.number,
      id: p.id,
      title: p.title,
      text: p.text,
      score: p.score,
      tokens: p.tokens,
      expanded: p.expanded,
    })),
    chunk_size: layout.chunkSize,
    chunks: layout.chunks,
    expanded_chunks: layout.expandedChunks,
    context_tokens: layout.contextTokens,
    prompt_positions: layout.positions,
    full_context_positions: layout.fullPositions,
    positions_saved: layout.fullPositions - layout.positions,
    compression: layout.positions === 0 ? 1 : layout.fullPositions / layout.positions,
    ...(stats === undefined
      ? {}
      : {
          ttft_ms: stats.ttftMs === undefined ? null : prepareMs + stats.ttftMs,
          queue_ms: stats.queueMs ?? null,
        }),
  };
}

const finishReason = (s: Partial<EngineStats>) => (s.finishReason === "length" ? "length" : "stop");

export function registerOpenAiRoutes(app: FastifyInstance, o: OpenAiOptions): void {
  app.register(
    async (api) => {
      api.setErrorHandler((e, _req, reply) => {
        const status = statusOf(e);
        if (status === 429) void reply.header("retry-after", String(RETRY_AFTER_S));
        void reply.status(status).send(openAiError(e, status));
      });
      api.setNotFoundHandler((req, reply) => {
        void reply.status(404).send(openAiError(new Error(`no route ${req.method} ${req.url}`), 404));
      });
      const model = { id: o.modelName, object: "model", created: o.created, owned_by: "refrag" };
      api.get("/models", async () => ({ object: "list", data: [model] }));
      api.get<{ Params: { id: string } }>("/models/:id", async (req) => {
        if (req.params.id !== o.modelName) bad("model", `the model ${req.params.id} does not exist`, 404);
        return model;
      });
      api.post("/chat/completions", async (req, reply) => {
        const body = asBody(req.body);
        // No max_tokens: what the window leaves (at most the server's limit), as OpenAI does.
        const p = parseCommon(body, o, undefined);
        const turn = questionAndHistory(body.messages, o.limits);
        return complete(reply, o, { ...p.rag, ...turn }, p, "chat");
      });
      api.post("/completions", async (req, reply) => {
        const body = asBody(req.body);
        const p = parseCommon(body, o, Math.min(16, o.limits.maxNewTokens));
        let prompt = body.prompt;
        if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
        if (typeof prompt !== "string" || prompt.trim() === "")
          bad("prompt", "prompt must be a non-empty string (one prompt per request)");
        if (prompt.length > o.limits.maxQuestionChars)
          bad(
            "prompt",
            `the prompt is ${prompt.length} characters; the limit is ${o.limits.maxQuestionChars}`,
            413,
          );
        return complete(reply, o, { ...p.rag, question: prompt, history: [] }, p, "text");
      });
    },
    { prefix: "/v1" },
  );
}

function asBody(raw: unknown): Body {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    bad("body", "the body must be a JSON object");
  return raw as Body;
}

async function complete(
  reply: FastifyReply,
  o: OpenAiOptions,
  req: RagRequest,
  p: Parsed,
  kind: "chat" | "text",
) {
  const controller = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  // Retrieval, vectors, selection and queueing: errors here are still plain HTTP errors.
  const run = await o.rag.start({ ...req, signal: controller.signal });
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
  const created = Math.floor(Date.now() / 1000);
  const head = {
    id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created,
    model: o.modelName,
  };
  const usage = () => ({
    prompt_tokens: run.layout.positions,
    completion_tokens: run.stats.generated ?? 0,
    total_tokens: run.layout.positions + (run.stats.generated ?? 0),
  });
  if (!p.stream) {
    let text = "";
    for await (const t of run.tokens) text += t.text;
    o.metrics.observe(run.layout, run.stats, run.prepareMs);
    const choice =
      kind === "chat"
        ? {
            index: 0,
            message: { role: "assistant", content: text },
            logprobs: null,
            finish_reason: finishReason(run.stats),
          }
        : { index: 0, text, logprobs: null, finish_reason: finishReason(run.stats) };
    return {
      ...head,
      choices: [choice],
      usage: usage(),
      refrag: refragExtension(run.layout, run.stats, run.prepareMs),
    };
  }
  reply.hijack();
  reply.raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const chunkHead = { ...head, object: kind === "chat" ? "chat.completion.chunk" : "text_completion" };
  const send = (data: unknown) => reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  const choice = (text: string | null, finish: string | null) =>
    kind === "chat"
      ? {
          index: 0,
          delta: text === null ? {} : { role: "assistant", content: text },
          logprobs: null,
          finish_reason: finish,
        }
      : { index: 0, text: text ?? "", logprobs: null, finish_reason: finish };
  // The first chunk says what is being read (the page draws the passages before the answer arrives).
  send({ ...chunkHead, choices: [choice("", null)], refrag: refragExtension(run.layout) });
  try {
    for await (const t of run.tokens)
      if (t.text !== "") send({ ...chunkHead, choices: [choice(t.text, null)] });
    if (run.stats.finishReason === "aborted") return;
    o.metrics.observe(run.layout, run.stats, run.prepareMs);
    send({
      ...chunkHead,
      choices: [choice(null, finishReason(run.stats))],
      refrag: refragExtension(run.layout, run.stats, run.prepareMs),
    });
    if (p.includeUsage) send({ ...chunkHead, choices: [], usage: usage() });
    reply.raw.write("data: [DONE]\n\n");
  } catch (e) {
    send(openAiError(e, statusOf(e)));
  } finally {
    reply.raw.end();
  }
}
