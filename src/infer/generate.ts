// The generation loop: prefill the prompt (tokens and chunk vectors) into a KV cache, then decode one
// token at a time, streamed as an async iterator. Stopping: a stop token, a stop string, the token budget,
// the caller's AbortSignal, or the caller leaving the loop (return() on the iterator) — checked before
// every forward pass, so a cancelled stream stops computing at once.
import { sliceRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import { KVCache, type LlamaForCausalLM, type Segment } from "../models/llama.js";
import { segmentLength } from "../models/refrag.js";
import { sampleToken, validateSampling, type SamplingOptions } from "./sampling.js";

export interface GenerationOptions extends SamplingOptions {
  /** Token budget for the answer (default 64). */
  maxNewTokens?: number;
  /** Generation ends on these token ids (e.g. end of sequence); they are not emitted. */
  stopTokenIds?: number[];
  /** Generation ends when the text contains one of these; the text up to it is emitted. */
  stop?: string[];
  seed?: number;
  signal?: AbortSignal;
}

export interface TextDecoder {
  decode(ids: readonly number[]): string;
}

export interface GeneratedToken {
  /** Token id, or -1 for a final text flush. */
  id: number;
  /** New text since the previous event (may be empty while a multi-byte character or stop prefix is held back). */
  text: string;
  /** Index of this token in the answer. */
  index: number;
}

export interface GenerationStats {
  promptPositions: number;
  generated: number;
  /** Milliseconds from the call to the first token being chosen. */
  ttftMs: number;
  /** Total milliseconds. */
  totalMs: number;
  kvBytes: number;
  finishReason: "stop" | "length" | "aborted";
}

/** A prompt plus answer budget that does not fit the decoder's context window (the caller's to fix). */
export class ContextLengthError extends Error {}

/** Positions the cache needs, checked against the decoder's context window with a clear error. */
export function checkContext(
  decoder: LlamaForCausalLM,
  promptPositions: number,
  maxNewTokens: number,
): number {
  const need = promptPositions + maxNewTokens;
  const limit = decoder.config.max_position_embeddings;
  if (promptPositions === 0) throw new Error("generate: the prompt is empty");
  if (need > limit)
    throw new ContextLengthError(
      `generate: prompt of ${promptPositions} positions + ${maxNewTokens} new tokens = ${need} exceeds the decoder's context window of ${limit} (compress more chunks, shorten the passages or lower maxNewTokens)`,
    );
  return need;
}

/** Longest suffix of text that is a prefix of some stop string (held back until resolved). */
function pendingStopPrefix(text: string, stops: string[]): number {
  let hold = 0;
  for (const s of stops)
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--)
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
  return hold;
}

/**
 * Stream tokens for a prompt. `stats` (optional) is filled as generation proceeds.
 */
export async function* generate(
  decoder: LlamaForCausalLM,
  prompt: Segment[],
  tokenizer: TextDecoder | null,
  o: GenerationOptions = {},
  stats?: Partial<GenerationStats>,
): AsyncGenerator<GeneratedToken, void, undefined> {
  const t0 = performance.now();
  validateSampling(o);
  const maxNew = o.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 1)
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${maxNew}`);
  const positions = segmentLength(prompt);
  const cache = new KVCache(decoder.config, checkContext(decoder, positions, maxNew));
  const rng = new Rng(o.seed ?? 0);
  const stopIds = new Set(o.stopTokenIds ?? []);
  const stops = (o.stop ?? []).filter((s) => s.length > 0);
  const s = stats ?? {};
  s.promptPositions = positions;
  s.generated = 0;
  s.finishReason = "length";

  const nextLogits = (segments: Segment[]): Float32Array =>
    noGrad(() => {
      const hidden = decoder.model.forward(decoder.model.embed(segments), { cache });
      return decoder.logits(sliceRows(hidden, hidden.rows - 1, hidden.rows)).data;
    });

  const ids: number[] = [];
  let emitted = 0; // characters of the decoded answer already sent
  try {
    if (o.signal?.aborted) {
      s.finishReason = "aborted";
      return;
    }
    let logits = nextLogits(prompt);
    for (let i = 0; i < maxNew; i++) {
      const id = sampleToken(logits, o, rng);
      if (i === 0) s.ttftMs = performance.now() - t0;
      if (stopIds.has(id)) {
        s.finishReason = "stop";
        break;
      }
      ids.push(id);
      s.generated = ids.length;
      let text = "";
      let stopped = false;
      if (tokenizer !== null) {
        const full = tokenizer.decode(ids);
        const hit = stops.map((x) => full.indexOf(x, Math.max(0, emitted - x.length))).filter((p) => p >= 0);
        if (hit.length > 0) {
          text = full.slice(emitted, Math.min(...hit));
          stopped = true;
        } else {
          // Hold back an unfinished UTF-8 character (U+FFFD at the end) and a possible stop-string prefix.
          let end = full.length;
          if (full.endsWith("\ufffd")) end--;
          end -= pendingStopPrefix(full.slice(0, end), stops);
          text = full.slice(emitted, Math.max(emitted, end));
        }
        emitted += text.length;
      }
      s.kvBytes = cache.bytesUsed();
      yield { id, text, index: i };
      if (stopped) {
        s.finishReason = "stop";
        break;
      }
      if (i + 1 === maxNew) break;
      await new Promise<void>((resolve) => setImmediate(resolve)); // let aborts and other requests in
      if (o.signal?.aborted) {
        s.finishReason = "aborted";
        break;
      }
      logits = nextLogits([{ ids: Int32Array.of(id) }]);
    }
    if (tokenizer !== null && s.finishReason !== "aborted") {
      const full = tokenizer.decode(ids);
      let end = full.length;
      for (const x of stops) {
        const p = full.indexOf(x);
        if (p >= 0) end = Math.min(end, p);
      }
      if (end > emitted) yield { id: -1, text: full.slice(emitted, end), index: ids.length };
    }
  } finally {
    s.kvBytes = cache.bytesUsed();
    s.totalMs = performance.now() - t0;
  }
}
