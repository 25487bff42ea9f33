// The prompt layout: the one owner of how the decoder reads its input, for inference (the pipeline, the
// server, `generate`), fine-tuning, the QA evaluation, and the plain language-model sequences of the
// REFRAG training stages and the perplexity evaluation.
//
// RAG prompt (answering from passages):
//   <|bos|> (<|user|> q <|assistant|> a)* <|question|> question <|context|>
//     1 title 1  passage 1 chunks   2 title 2  passage 2 chunks   …   <|answer|>
// An answer (the one generated, and earlier turns' answers) is read as text that follows a space, as every
// word inside a passage does: " Algiers" is then the same tokens after <|answer|> as in "Capital - name:
// Algiers", so the decoder can copy them; the space is not part of the answer text handed out.
// Each passage's header (its number in the order given, and its title when it has one) is raw tokens, so
// the decoder can tell passages apart, read a subject that only the title names ("Algeria — Geography"),
// and cite a passage by number. Each chunk is one projected vector, or its raw tokens where the selection
// expands it. User text never becomes prompt-format tokens.
//
// Language-model sequence (training stages, perplexity): <bos> then the context's chunks then the tokens
// read or predicted after them, as the perplexity evaluation reads a window.
import type { Tensor } from "../engine/tensor.js";
import { sliceRows } from "../engine/ops.js";
import type { LlamaConfig } from "../io/config.js";
import type { Segment } from "../models/llama.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";
import type { QueryChunk } from "./selection.js";

/** What the prompt needs from a tokenizer. */
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

export type PromptTokenIds = Record<keyof typeof PROMPT_TOKENS, number>;

/** A malformed RAG request (the caller's to fix); messages start with "request:". */
export class RequestError extends Error {}

/** One earlier exchange of a conversation. */
export interface Turn {
  question: string;
  answer: string;
}

/** A passage as the prompt reads it; a plain string is a passage without id or title. */
export interface Passage {
  id?: string;
  title?: string;
  text: string;
}
export type PassageInput = string | Passage;

/** Ids of the prompt-format tokens; a clear error names the first one the tokenizer lacks. */
export function promptTokenIds(tokenizer: PipelineTokenizer): PromptTokenIds {
  const ids = {} as PromptTokenIds;
  for (const [role, tok] of Object.entries(PROMPT_TOKENS) as [keyof typeof PROMPT_TOKENS, string][]) {
    const id = tokenizer.tokenToId(tok);
    if (id === undefined) throw new Error(`the tokenizer has no special token ${tok}`);
    ids[role] = id;
  }
  return ids;
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

/** A passage from a string or {id?, title?, text}; anything else is a RequestError naming passage i. */
export function toPassage(p: unknown, i: number): Passage {
  if (typeof p === "string") return { text: p };
  const o = p as Partial<Record<keyof Passage, unknown>> | null;
  if (
    typeof o !== "object" ||
    o === null ||
    Array.isArray(o) ||
    typeof o.text !== "string" ||
    (o.title !== undefined && o.title !== null && typeof o.title !== "string") ||
    (o.id !== undefined && o.id !== null && typeof o.id !== "string")
  )
    throw new RequestError(`request: passage ${i} is not a string or {id?, title?, text}`);
  return {
    ...(typeof o.id === "string" ? { id: o.id } : {}),
    ...(typeof o.title === "string" && o.title.trim() !== "" ? { title: o.title } : {}),
    text: o.text,
  };
}

/**
 * The raw header before passage i (0-based) of a prompt: `i+1 title` (or `i+1` without a title). No
 * brackets or colon: the chunk vectors after it already mark where it ends, and at 8 passages each of
 * those three tokens cost 8 decoder positions (24 of the ~163 of an all-compressed prompt).
 */
export function passageHeader(i: number, title?: string): string {
  return title === undefined || title.trim() === "" ? `${i + 1}` : `${i + 1} ${title.trim()}`;
}

/** Everything before the context: `<|bos|>`, earlier turns, the question, `<|context|>`; and after it. */
export function promptIds(
  tokenizer: PipelineTokenizer,
  question: string,
  special = promptTokenIds(tokenizer),
  history: readonly Turn[] = [],
): { before: Int32Array; after: Int32Array } {
  const text = (s: string) => tokenizer.encode(s, { allowSpecial: false });
  const before = Int32Array.from([
    special.bos,
    ...history.flatMap((t) => [
      special.user,
      ...text(t.question),
      special.assistant,
      ...answerTokens(tokenizer, t.answer),
    ]),
    special.question,
    ...text(question),
    special.context,
  ]);
  return { before, after: Int32Array.of(special.answer) };
}

/** The tokens of an answer's text: read after a space, like a word inside a passage (see the layout above). */
export function answerTokens(tokenizer: PipelineTokenizer, answer: string): number[] {
  return tokenizer.encode(" " + answer.replace(/^\s+/, ""), { allowSpecial: false });
}

/** Answer text from generated ids: prompt-format tokens dropped, and the one space answers are read after. */
export function answerDecoder(tokenizer: PipelineTokenizer): { decode(ids: readonly number[]): string } {
  return { decode: (ids) => tokenizer.decode(ids, { skipSpecial: true }).replace(/^ /, "") };
}

/** One passage of a prompt, tokenised: its raw header, its text's ids and their chunks of k. */
export interface PromptPassage {
  /** Its place in the passages given (0-based; the header reads number + 1). */
  index: number;
  /** The title ("" without one), as the query heuristic reads it. */
  title: string;
  header: Int32Array;
  ids: Int32Array;
  chunks: Int32Array[];
}

/** Tokenise and chunk the passages, each on its own (chunks never straddle passages); numbered in the
 * order given; a passage whose text has no tokens is left out (its number is not reused). */
export function promptPassages(
  tokenizer: PipelineTokenizer,
  passages: readonly PassageInput[],
  k: number,
): PromptPassage[] {
  const out: PromptPassage[] = [];
  passages.forEach((raw, i) => {
    const p = toPassage(raw, i);
    const ids = Int32Array.from(tokenizer.encode(p.text, { allowSpecial: false }));
    if (ids.length === 0) return;
    const header = Int32Array.from(tokenizer.encode(passageHeader(i, p.title), { allowSpecial: false }));
    out.push({ index: i, title: p.title?.trim() ?? "", header, ids, chunks: chunkTokens(ids, k) });
  });
  return out;
}

/** Tokens of the chunk before that the query heuristic also reads with a chunk (see chunkQueryTexts). */
export const QUERY_OVERLAP = 8;

/**
 * The text the query heuristic (selection mode query) reads for each chunk, in reading order: the
 * passage's header (its subject is often only in the title: "Algeria — Government"), the last
 * QUERY_OVERLAP tokens of the chunk before it in the same passage (a key such as "Capital - name:" often
 * ends the chunk before its value), and the chunk itself.
 */
export function chunkQueryTexts(
  tokenizer: PipelineTokenizer,
  passages: readonly PromptPassage[],
): QueryChunk[] {
  return passages.flatMap((p) => {
    const header = tokenizer.decode([...p.header]);
    return p.chunks.map((c, j) => {
      const tail = j === 0 ? [] : [...p.chunks[j - 1].subarray(-QUERY_OVERLAP)];
      return { text: `${header} ${tokenizer.decode([...tail, ...c])}`, title: p.title };
    });
  });
}

/** Raw tokens read before chunk j, for the chunks that open a passage (their headers). */
export function chunkPrefixes(passages: readonly PromptPassage[]): Map<number, Int32Array> {
  const out = new Map<number, Int32Array>();
  let j = 0;
  for (const p of passages) {
    out.set(j, p.header);
    j += p.chunks.length;
  }
  return out;
}

/**
 * Decoder segments of a RAG prompt: `before`, then per passage its header (raw) and its chunks (projected
 * vectors, rows of `projected` in reading order across passages, or raw tokens where expand[j]), then
 * `after`.
 */
export function promptSegments(
  model: RefragModel,
  o: {
    before: Int32Array;
    passages: readonly PromptPassage[];
    projected: Tensor;
    expand?: ArrayLike<boolean>;
    after: Int32Array;
  },
): Segment[] {
  const total = o.passages.reduce((n, p) => n + p.chunks.length, 0);
  if (o.projected.rows !== total)
    throw new Error(`promptSegments: ${o.projected.rows} vectors for ${total} chunks`);
  const segs: Segment[] = [{ ids: o.before }];
  let j = 0;
  for (const p of o.passages) {
    const n = p.chunks.length;
    segs.push(
      ...model.buildSegments({
        before: p.header,
        chunks: p.chunks,
        projected: sliceRows(o.projected, j, j + n),
        expand: o.expand === undefined ? undefined : Array.from({ length: n }, (_, i) => !!o.expand![j + i]),
      }),
    );
    j += n;
  }
  if (o.after.length > 0) segs.push({ ids: o.after });
  return segs;
}

/** Decoder positions of a RAG prompt without building it (for fit checks). */
export function promptPositions(
  before: Int32Array,
  passages: readonly PromptPassage[],
  after: Int32Array,
  expandedTokens = 0,
): number {
  let n = before.length + after.length;
  for (const p of passages) n += p.header.length + p.chunks.length;
  return n + expandedTokens;
}

/** The start of every language-model sequence: `<bos>`, as every prompt starts at inference. */
export function lmStart(config: LlamaConfig): Int32Array {
  const bos = config.bos_token_id;
  if (typeof bos !== "number")
    throw new Error("the decoder config has no bos_token_id: every sequence starts with <bos>");
  return Int32Array.of(bos);
}

/**
 * A language-model sequence over compressed context: `<bos>`, then each passage's chunks (vectors, or raw
 * where expanded; passages follow each other with no header), then `after` raw tokens. The perplexity
 * evaluation, the REFRAG training stages and the policy's reward all read this.
 */
export function lmSegments(
  model: RefragModel,
  o: { chunks: Int32Array[]; projected: Tensor; expand?: ArrayLike<boolean>; after?: Int32Array },
): Segment[] {
  return model.buildSegments({ before: lmStart(model.config.decoder), ...o });
}
