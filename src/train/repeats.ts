// Copy-rich token streams: segments of a stream, some followed at once by an exact repeat, for teaching a
// decoder to copy what it has just read (an induction mechanism). A decoder trained only on plain text at
// this scale never learns it (docs/NOTES.md, session 6), and extractive answers ("Capital - name: Algiers"
// → "Algiers") and reconstruction both need it.
//
// The stream is built segment by segment: a segment of uniform length in [min, max] is either taken from a
// random place of the source stream or, with probability `random`, drawn as random ordinary token ids
// (nothing to predict but the copy); with probability `repeat` it is followed by itself. The layout is
// returned too, so tests and reports can say exactly which tokens are copies.
import type { Rng } from "../engine/random.js";
import type { TokenStream } from "./tokens.js";

export interface RepeatOptions {
  /** Tokens to write. */
  tokens: number;
  /** Probability that a segment is followed by its repeat (0–1). */
  repeat: number;
  /** Probability that a segment is random ordinary ids instead of text (0–1). */
  random: number;
  /** Segment lengths, uniform in [min, max]. */
  min: number;
  max: number;
  /** Random ids are drawn from [firstOrdinary, vocab). */
  firstOrdinary: number;
  vocab: number;
}

/**
 * One segment of the output: `length` tokens at `start`, taken from the source at `from` (null for random
 * ids and repeats); `copyOf` is the start of the segment it repeats.
 */
export interface Segment {
  start: number;
  length: number;
  from: number | null;
  copyOf: number | null;
  random: boolean;
}

function check(o: RepeatOptions, sourceLength: number): void {
  const int = (name: string, v: number, lo: number) => {
    if (!Number.isInteger(v) || v < lo)
      throw new Error(`repeats: ${name} must be an integer ≥ ${lo}, got ${v}`);
  };
  int("tokens", o.tokens, 1);
  int("min", o.min, 1);
  int("max", o.max, o.min);
  int("firstOrdinary", o.firstOrdinary, 0);
  int("vocab", o.vocab, o.firstOrdinary + 2);
  for (const [name, p] of [
    ["repeat", o.repeat],
    ["random", o.random],
  ] as const)
    if (!(p >= 0 && p <= 1)) throw new Error(`repeats: ${name} must be in [0, 1], got ${p}`);
  if (o.random < 1 && sourceLength < o.max + 1)
    throw new Error(
      `repeats: the source stream (${sourceLength} tokens) is shorter than a segment (${o.max})`,
    );
}

/** Builds a copy-rich stream of exactly o.tokens tokens (the last segment is cut) from `source`. */
export function repeatStream(
  source: Uint16Array,
  o: RepeatOptions,
  rng: Rng,
): { tokens: Uint16Array; segments: Segment[] } {
  check(o, source.length);
  const out = new Uint16Array(o.tokens);
  const segments: Segment[] = [];
  let n = 0;
  const put = (length: number, s: Omit<Segment, "start" | "length">) => {
    const len = Math.min(length, o.tokens - n);
    if (s.copyOf !== null) out.copyWithin(n, s.copyOf, s.copyOf + len);
    else if (s.from !== null) out.set(source.subarray(s.from, s.from + len), n);
    else for (let i = 0; i < len; i++) out[n + i] = o.firstOrdinary + rng.int(o.vocab - o.firstOrdinary);
    segments.push({ start: n, length: len, ...s });
    n += len;
  };
  while (n < o.tokens) {
    const length = o.min + rng.int(o.max - o.min + 1);
    const start = n;
    const random = rng.uniform() < o.random;
    put(length, { from: random ? null : rng.int(source.length - length + 1), copyOf: null, random });
    if (n < o.tokens && rng.uniform() < o.repeat) put(n - start, { from: null, copyOf: start, random });
  }
  return { tokens: out, segments };
}

/** Fraction of the stream's tokens that repeat the segment before them. */
export function copiedFraction(segments: readonly Segment[], tokens: number): number {
  let copied = 0;
  for (const s of segments) if (s.copyOf !== null) copied += s.length;
  return copied / tokens;
}

/** The stream with its description (the source's, plus how it was made). */
export function repeatTokenStream(
  source: TokenStream,
  o: RepeatOptions,
  rng: Rng,
  seed: number,
): TokenStream {
  const { tokens, segments } = repeatStream(source.tokens, o, rng);
  return {
    tokens,
    info: {
      ...source.info,
      tokens: tokens.length,
      repeats: { ...o, seed, copiedFraction: copiedFraction(segments, tokens.length) },
    },
  };
}
