// Next-paragraph windows: s context tokens followed by o continuation tokens, for any tokenizer.
import { Rng } from "../../engine/random.js";

/** Any tokenizer: text → token ids. */
export interface TextEncoder {
  encode(text: string): number[];
}

export interface Window {
  /** Token index of the cut (first continuation token) in the document's token sequence. */
  cut: number;
  context: number[];
  continuation: number[];
  /** True when the cut is a paragraph boundary. */
  paragraphAligned: boolean;
}

export interface SampleWindowOptions {
  s: number;
  o: number;
  /** How many windows to draw (fewer when the document is too short: none below s + o tokens). */
  count: number;
  seed: number;
  /** How far (tokens) a cut may move to reach a paragraph boundary; default max(64, o). */
  snap?: number;
}

/** A document as tokens, with the token indices where paragraphs start. */
export interface TokenizedDoc {
  tokens: number[];
  /** Sorted token indices of paragraph boundaries (excluding 0). */
  boundaries: number[];
}

/** Where paragraphs end: blank lines; in a text without them, line breaks; in one line, sentence ends. */
function boundaryPattern(text: string): RegExp {
  if (/\n[ \t]*\n/.test(text)) return /(?<=\S)(?=\s*\n[ \t]*\n)/g;
  if (text.includes("\n")) return /(?<=\S)(?=[ \t]*\n)/g;
  return /(?<=[.!?]["'”’)]?)(?=\s+["'“‘(]?[A-Z])/g;
}

/**
 * Paragraph segments of a text: cut just before the whitespace run that follows a paragraph's last
 * non-space character, where paragraphs end at blank lines (in a text without them: at line breaks; in a
 * text of one line, such as the State of the Union speeches: at sentence ends). For GPT-2-style byte-level
 * pre-tokenisation such a point is always a pre-token border, so the concatenated segment encodings equal
 * the encoding of the whole text; each later segment starts with its paragraph break.
 */
export function paragraphSegments(text: string): string[] {
  const re = boundaryPattern(text);
  const cuts: number[] = [];
  for (const m of text.matchAll(re)) if (m.index > 0) cuts.push(m.index);
  const out: string[] = [];
  let last = 0;
  for (const c of cuts) {
    if (c > last) out.push(text.slice(last, c));
    last = c;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Tokens of a document as the concatenation of its paragraph segments' encodings, with the borders. */
export function tokenizeDoc(tok: TextEncoder, text: string): TokenizedDoc {
  const tokens: number[] = [];
  const boundaries: number[] = [];
  for (const seg of paragraphSegments(text)) {
    if (tokens.length > 0) boundaries.push(tokens.length);
    for (const t of tok.encode(seg)) tokens.push(t);
  }
  return { tokens, boundaries };
}

function nearestBoundary(
  sorted: readonly number[],
  target: number,
  lo: number,
  hi: number,
  snap: number,
): number | null {
  let best: number | null = null;
  // Binary search the first boundary >= target - snap, then scan the few within reach.
  let a = 0;
  let b = sorted.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (sorted[m] < target - snap) a = m + 1;
    else b = m;
  }
  for (let i = a; i < sorted.length && sorted[i] <= target + snap; i++) {
    const x = sorted[i];
    if (x < lo || x > hi) continue;
    if (best === null || Math.abs(x - target) < Math.abs(best - target)) best = x;
  }
  return best;
}

/**
 * Deterministic windows of a tokenized document. For each window a cut c is drawn uniformly (seeded Rng) in
 * [s, N - o]; if a paragraph boundary lies within `snap` tokens of c (and keeps the window inside the
 * document) the cut moves to the nearest such boundary. The window is tokens [c - s, c) and [c, c + o).
 */
export function sampleWindows(doc: TokenizedDoc, opts: SampleWindowOptions): Window[] {
  const { s, o, count, seed } = opts;
  if (!Number.isInteger(s) || s < 1 || !Number.isInteger(o) || o < 1)
    throw new Error(`sampleWindows: s and o must be positive integers (got s=${s}, o=${o})`);
  const n = doc.tokens.length;
  if (n < s + o) return [];
  const snap = opts.snap ?? Math.max(64, o);
  const rng = new Rng(seed);
  const out: Window[] = [];
  for (let k = 0; k < count; k++) {
    const target = s + rng.int(n - o - s + 1);
    const b = nearestBoundary(doc.boundaries, target, s, n - o, snap);
    const cut = b ?? target;
    out.push({
      cut,
      context: doc.tokens.slice(cut - s, cut),
      continuation: doc.tokens.slice(cut, cut + o),
      paragraphAligned: b !== null,
    });
  }
  return out;
}

/** Tokenize then sample: the windows of one text for any tokenizer. */
export function sampleTextWindows(tok: TextEncoder, text: string, opts: SampleWindowOptions): Window[] {
  return sampleWindows(tokenizeDoc(tok, text), opts);
}
