// Can the decoder copy? Each probe sequence is `<bos> s s`: a span s of n tokens read twice. A decoder with
// an induction mechanism predicts the second copy almost perfectly (loss near 0); one without reads it like
// the first. Extractive answers ("Capital - name: Algiers" -> "Algiers") need exactly this, so it is the
// first thing to check when a fine-tuned model answers from the passage's format but not its values.
// Two kinds of span: random token ids (pure copying, no language to lean on) and spans of held-out text.
import { crossEntropyRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import type { LlamaForCausalLM } from "../models/llama.js";

/** Next-token loss at every position of `ids` (row i scores ids[i + 1]; the last row is not scored). */
export type TokenLosses = (ids: Int32Array) => ArrayLike<number>;

export interface InductionRow {
  kind: "random ids" | "text";
  /** Mean loss over the first copy's tokens (after the first) and over the second copy's. */
  first: number;
  repeat: number;
}

export interface InductionOptions {
  bos: number;
  vocab: number;
  /** Held-out token stream for the text spans (none: random ids only). */
  text?: Uint16Array;
  spans?: number;
  length?: number;
  seed?: number;
}

/** Mean first-copy and repeat losses of `spans` probes of `length` tokens drawn by `draw`. */
export function probeCopies(
  losses: TokenLosses,
  bos: number,
  draw: () => number[],
  spans: number,
): { first: number; repeat: number } {
  let first = 0;
  let repeat = 0;
  let nf = 0;
  let nr = 0;
  for (let p = 0; p < spans; p++) {
    const s = draw();
    const n = s.length;
    const ids = Int32Array.from([bos, ...s, ...s]);
    const l = losses(ids);
    // Row i predicts ids[i + 1]: the first copy's tokens 2..n are ids[2..n] (rows 1..n-1; token 1 has no
    // context but <bos>), the second copy is ids[n+1..2n] (rows n..2n-1).
    for (let i = 1; i < n; i++, nf++) first += l[i];
    for (let i = n; i < 2 * n; i++, nr++) repeat += l[i];
  }
  return { first: first / nf, repeat: repeat / nr };
}

/** The decoder's per-position losses, for probeCopies. */
export function decoderLosses(decoder: LlamaForCausalLM): TokenLosses {
  return (ids) =>
    noGrad(() => {
      const { logits } = decoder.forward([{ ids }]);
      const targets = new Int32Array(ids.length).fill(-100);
      for (let i = 0; i + 1 < ids.length; i++) targets[i] = ids[i + 1];
      return crossEntropyRows(logits, targets);
    });
}

export function inductionRows(losses: TokenLosses, o: InductionOptions): InductionRow[] {
  const spans = o.spans ?? 8;
  const length = o.length ?? 50;
  const rng = new Rng(o.seed ?? 3);
  // Random ids above the low (byte and special) ids.
  const low = Math.min(300, o.vocab - 1);
  const rows: InductionRow[] = [
    {
      kind: "random ids",
      ...probeCopies(losses, o.bos, () => Array.from({ length }, () => low + rng.int(o.vocab - low)), spans),
    },
  ];
  const text = o.text;
  if (text !== undefined) {
    if (text.length < length + 1)
      throw new Error(`induction: the text stream has fewer than ${length + 1} tokens`);
    rows.push({
      kind: "text",
      ...probeCopies(
        losses,
        o.bos,
        () => {
          const s = rng.int(text.length - length);
          return [...text.subarray(s, s + length)];
        },
        spans,
      ),
    });
  }
  return rows;
}
