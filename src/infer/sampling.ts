// Next-token choice from a row of logits: greedy, or sampling with temperature, top-k and top-p (nucleus).
import { kernels } from "../engine/kernels/index.js";
import type { Rng } from "../engine/random.js";

export interface SamplingOptions {
  /** 0 (default) picks the most likely token. */
  temperature?: number;
  /** Keep the smallest set of tokens whose probability reaches topP (1 = all). */
  topP?: number;
  /** Keep only the topK most likely tokens (0 = all). */
  topK?: number;
}

/** The first index of the largest logit (a NaN never wins unless first): the pointwise argmax kernel. */
export function argmax(logits: Float32Array): number {
  return kernels.pointwise.argmax(logits);
}

export function validateSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 0;
  const p = o.topP ?? 1;
  const k = o.topK ?? 0;
  if (!(t >= 0 && Number.isFinite(t))) throw new Error(`sampling: temperature must be >= 0, got ${t}`);
  if (!(p > 0 && p <= 1)) throw new Error(`sampling: topP must be in (0, 1], got ${p}`);
  if (!Number.isInteger(k) || k < 0)
    throw new Error(`sampling: topK must be a non-negative integer, got ${k}`);
}

export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng): number {
  const t = o.temperature ?? 0;
  if (t === 0) return argmax(logits);
  const V = logits.length;
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  if ((o.topK ?? 0) > 0) order = order.slice(0, o.topK);
  const top = logits[order[0]];
  const probs = order.map((i) => Math.exp((logits[i] - top) / t));
  const total = probs.reduce((a, b) => a + b, 0);
  // Nucleus: the shortest prefix of the sorted list whose mass reaches topP.
  const topP = o.topP ?? 1;
  let keep = order.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < order.length; i++) {
      mass += probs[i] / total;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += probs[i];
  let r = rng.uniform() * kept;
  for (let i = 0; i < keep; i++) {
    r -= probs[i];
    if (r <= 0) return order[i];
  }
  return order[keep - 1];
}
