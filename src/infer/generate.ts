// The generation loop: prefill the prompt (tokens and chunk vectors) into a KV cache, then decode one
// token at a time, streamed as an async iterator. Stopping: a stop token, a stop string, the token budget,
// the caller's AbortSignal, or the caller leaving the loop (return() on the iterator) — checked before
// every forward pass, so a cancelled stream stops computing at once.
import { sliceRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import { KVCache, type KVCacheDtype, type LlamaForCausalLM, type Segment } from "../models/llama.js";
import { LlamaDecodeStep } from "../models/llama_decode.js";
import { segmentLength } from "../models/refrag.js";
import { sampleToken, validateSampling, type SamplingOptions } from "./sampling.js";
import { AnswerText, type TextDecoder } from "./text_stream.js";

export interface GenerationOptions extends SamplingOptions {
  /** Token budget for the answer (default 64). */
  maxNewTokens?: number;
  /** Generation ends on these token ids (e.g. end of sequence); they are not emitted. */
  stopTokenIds?: number[];
  /** Generation ends when the text contains one of these; the text up to it is emitted. */
  stop?: string[];
  seed?: number;
  signal?: AbortSignal;
  /**
   * How the KV cache stores keys and values (default f32; bf16 halves what each decode step reads and
   * rounds every key and value to bf16). The batch engine sets it for all its rows (BatchEngineOptions).
   */
  kvCache?: KVCacheDtype;
}

export type { TextDecoder } from "./text_stream.js";

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
  const cache = new KVCache(decoder.config, checkContext(decoder, positions, maxNew), o.kvCache);
  const rng = new Rng(o.seed ?? 0);
  const stopIds = new Set(o.stopTokenIds ?? []);
  const s = stats ?? {};
  s.promptPositions = positions;
  s.generated = 0;
  s.finishReason = "length";

  // Prefill: the prompt's forward pass (GEMM over all positions); decode: one token at a time through
  // the allocation-free step (the same kernels, so the same bits, as the batch engine's rows).
  const prefill = (segments: Segment[]): Float32Array =>
    noGrad(() => {
      const hidden = decoder.model.forward(decoder.model.embed(segments), { cache });
      return decoder.logits(sliceRows(hidden, hidden.rows - 1, hidden.rows)).data;
    });
  const decode = new LlamaDecodeStep(decoder);
  const token = new Int32Array(1);

  const answer = new AnswerText(tokenizer, o.stop ?? []);
  try {
    if (o.signal?.aborted) {
      s.finishReason = "aborted";
      return;
    }
    let logits = prefill(prompt);
    for (let i = 0; i < maxNew; i++) {
      const id = sampleToken(logits, o, rng);
      if (i === 0) s.ttftMs = performance.now() - t0;
      if (stopIds.has(id)) {
        s.finishReason = "stop";
        break;
      }
      const { text, stopped } = answer.push(id);
      s.generated = answer.ids.length;
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
      token[0] = id;
      logits = decode.step(token, [cache]);
    }
    if (s.finishReason !== "aborted") {
      const rest = answer.flush();
      if (rest !== "") yield { id: -1, text: rest, index: answer.ids.length };
    }
  } finally {
    s.kvBytes = cache.bytesUsed();
    s.totalMs = performance.now() - t0;
  }
}
