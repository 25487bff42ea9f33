// Byte-level BPE training (GPT-2 / Hugging Face ByteLevelBPETokenizer style).
// 1. Pre-tokenise text with the GPT-2 regex and count distinct words.
// 2. Write every distinct word as byte symbols into one flat Int32Array; count adjacent pairs (weighted by
//    word count) and remember which words hold each pair.
// 3. Repeatedly take the most frequent pair from a max-heap (lazy: stale counts are re-pushed), merge it in
//    the words that hold it, and apply the count changes around each merge site only.
// Ties break on the smaller (left id, right id), so the merges are deterministic.
import { BYTE_TO_CHAR } from "./bytelevel.js";
import { SpanTable, gpt2WordEnd, spanHash } from "./pretokenize.js";
import { buildByteLevelBpeJson, type TokenizerJson } from "./json.js";
import { Tokenizer } from "./tokenizer.js";

/** Our special tokens, ids 0.. in this order. The first ten are the prompt format's; keep their order. */
export const SPECIAL_TOKENS: readonly string[] = [
  "<|pad|>",
  "<|bos|>",
  "<|eos|>",
  "<|unk|>",
  "<|question|>",
  "<|context|>",
  "<|answer|>",
  "<|chunk|>",
  "<|user|>",
  "<|assistant|>",
  "<|system|>",
  "<|mask|>", // masked-LM target for the encoder
  "<|sep|>",
  "<|end|>", // end of a conversation turn
];

export type TrainPhase = "count" | "merge";

export interface TrainOptions {
  /** Total vocabulary: special tokens + 256 bytes + merges. */
  vocabSize: number;
  specialTokens?: readonly string[];
  /** Stop merging when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Called now and then with the merge progress. */
  onProgress?: (phase: TrainPhase, done: number, total: number) => void;
}

export interface TrainResult {
  vocab: Map<string, number>;
  merges: [string, string][];
  json: TokenizerJson;
  tokenizer: Tokenizer;
  stats: { distinctWords: number; totalWords: number; mergeSeconds: number };
}

/** Counts GPT-2 pre-tokenised words over any number of texts; special-token strings are cut out first. */
export class WordCounter {
  totalWords = 0;
  totalChars = 0;
  private readonly table = new SpanTable(1 << 16);
  private counts = new Float64Array(1 << 15); // by insertion index (the table's value)
  private readonly specialRe: RegExp | null;

  constructor(specialTokens: readonly string[] = SPECIAL_TOKENS) {
    this.specialRe =
      specialTokens.length === 0
        ? null
        : new RegExp(specialTokens.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
  }

  get distinctWords(): number {
    return this.table.size;
  }

  add(text: string): void {
    this.totalChars += text.length;
    const pieces = this.specialRe !== null && text.includes("<|") ? text.split(this.specialRe) : [text];
    const table = this.table;
    for (const piece of pieces) {
      const n = piece.length;
      for (let i = 0; i < n; ) {
        const e = gpt2WordEnd(piece, i, n);
        const h = spanHash(piece, i, e);
        const slot = table.find(piece, i, e, h);
        if (slot >= 0) {
          this.counts[table.value(slot)]++;
        } else {
          const k = table.size;
          if (k >= this.counts.length) {
            const grown = new Float64Array(this.counts.length * 2);
            grown.set(this.counts);
            this.counts = grown;
          }
          this.counts[k] = 1;
          table.insertAt(slot, piece, i, e, h, k);
          if (table.size * 2 > table.capacity) table.grow();
        }
        this.totalWords++;
        i = e;
      }
    }
  }

  /** Counts as a Map (word -> count). */
  toMap(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [w, k] of this.table.entries()) out.set(w, this.counts[k]);
    return out;
  }
}

const STRIDE = 2 ** 21; // pair key = left * STRIDE + right

/** Learn merges from word counts. */
export function trainBpe(counts: Map<string, number>, opts: TrainOptions): TrainResult {
  const specials = opts.specialTokens ?? SPECIAL_TOKENS;
  const minFreq = opts.minFrequency ?? 2;
  const base = specials.length + 256;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < base)
    throw new Error(
      `trainBpe: vocabSize ${opts.vocabSize} must be an integer >= ${base} (specials + 256 bytes)`,
    );
  if (opts.vocabSize >= STRIDE)
    throw new Error(`trainBpe: vocabSize ${opts.vocabSize} is too large (max ${STRIDE - 1})`);
  if (new Set(specials).size !== specials.length) throw new Error("trainBpe: duplicate special tokens");

  const idStr: string[] = [...specials, ...BYTE_TO_CHAR];
  const strId = new Map<string, number>();
  idStr.forEach((s, i) => strId.set(s, i));
  if (strId.size !== idStr.length)
    throw new Error("trainBpe: a special token collides with a byte character");

  // Sorted words make the symbol layout, hence the where-lists' order, independent of insertion order.
  const words = [...counts.keys()].sort();
  const W = words.length;
  const enc = new TextEncoder();
  const wordStart = new Int32Array(W + 1);
  const wordLen = new Int32Array(W);
  const wordCount = new Float64Array(W);
  let total = 0;
  const encoded: Uint8Array[] = new Array(W);
  for (let k = 0; k < W; k++) {
    encoded[k] = enc.encode(words[k]);
    total += encoded[k].length;
  }
  const sym = new Int32Array(total);
  let totalWords = 0;
  for (let k = 0, o = 0; k < W; k++) {
    const b = encoded[k];
    wordStart[k] = o;
    wordLen[k] = b.length;
    wordCount[k] = counts.get(words[k]) as number;
    totalWords += wordCount[k];
    for (let i = 0; i < b.length; i++) sym[o + i] = specials.length + b[i];
    o += b.length;
  }
  wordStart[W] = total;
  encoded.length = 0;

  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  const addWhere = (key: number, k: number): void => {
    const list = where.get(key);
    if (list === undefined) where.set(key, [k]);
    else if (list[list.length - 1] !== k) list.push(k);
  };
  for (let k = 0; k < W; k++) {
    const s = wordStart[k];
    const c = wordCount[k];
    for (let i = s; i + 1 < s + wordLen[k]; i++) {
      const key = sym[i] * STRIDE + sym[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + c);
      addWhere(key, k);
    }
  }

  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);

  const merges: [string, string][] = [];
  const target = opts.vocabSize;
  const t0 = performance.now();
  const stamp = new Int32Array(W).fill(-1);
  const touched = new Set<number>();
  const bump = (key: number, d: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + d);
  };
  let lastReport = 0;
  while (idStr.length < target && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < minFreq) break;
    const a = Math.floor(key / STRIDE);
    const b = key - a * STRIDE;
    const merged = idStr[a] + idStr[b];
    let t = strId.get(merged);
    if (t === undefined) {
      t = idStr.length;
      idStr.push(merged);
      strId.set(merged, t);
    }
    merges.push([idStr[a], idStr[b]]);
    const step = merges.length;
    touched.clear();

    for (const k of where.get(key) ?? []) {
      if (stamp[k] === step) continue;
      stamp[k] = step;
      const s = wordStart[k];
      let n = wordLen[k];
      const c = wordCount[k];
      // Merge occurrences left to right in place; neighbours see the already-merged symbols.
      for (let i = s; i + 1 < s + n; i++) {
        if (sym[i] !== a || sym[i + 1] !== b) continue;
        if (i > s) {
          const L = sym[i - 1];
          bump(L * STRIDE + a, -c);
          bump(L * STRIDE + t, c);
          touched.add(L * STRIDE + t);
          addWhere(L * STRIDE + t, k);
        }
        if (i + 2 < s + n) {
          const R = sym[i + 2];
          bump(b * STRIDE + R, -c);
          bump(t * STRIDE + R, c);
          touched.add(t * STRIDE + R);
          addWhere(t * STRIDE + R, k);
        }
        sym[i] = t;
        sym.copyWithin(i + 1, i + 2, s + n);
        n--;
      }
      wordLen[k] = n;
    }
    pairCount.delete(key);
    where.delete(key);
    for (const tk of touched) {
      const c = pairCount.get(tk) ?? 0;
      if (c > 0) heap.push(c, tk);
      else pairCount.delete(tk);
    }
    if (opts.onProgress !== undefined && step - lastReport >= 64) {
      lastReport = step;
      opts.onProgress("merge", idStr.length, target);
    }
  }
  opts.onProgress?.("merge", idStr.length, target);
  const mergeSeconds = (performance.now() - t0) / 1000;

  const vocab = new Map<string, number>();
  idStr.forEach((s, i) => vocab.set(s, i));
  const json = buildByteLevelBpeJson({
    vocab,
    merges,
    specials: [...specials],
    bos: specials.includes("<|bos|>") ? "<|bos|>" : undefined,
  });
  return {
    vocab,
    merges,
    json,
    tokenizer: Tokenizer.fromJSON(json, "trained tokenizer"),
    stats: { distinctWords: W, totalWords, mergeSeconds },
  };
}

/** Train on texts: count words, then learn merges. */
export function trainByteLevelBpe(texts: Iterable<string>, opts: TrainOptions): TrainResult {
  const counter = new WordCounter(opts.specialTokens ?? SPECIAL_TOKENS);
  for (const t of texts) counter.add(t);
  return trainBpe(counter.toMap(), opts);
}

/** Max-heap on count, ties to the smaller pair key; parallel arrays keep it allocation-free. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(c1: number, k1: number, c2: number, k2: number): boolean {
    return c1 > c2 || (c1 === c2 && k1 < k2);
  }

  push(count: number, key: number): void {
    const cs = this.counts;
    const ks = this.keys;
    let i = cs.length;
    cs.push(count);
    ks.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(count, key, cs[p], ks[p])) break;
      cs[i] = cs[p];
      ks[i] = ks[p];
      i = p;
    }
    cs[i] = count;
    ks[i] = key;
  }

  pop(): { count: number; key: number } {
    const cs = this.counts;
    const ks = this.keys;
    const top = { count: cs[0], key: ks[0] };
    const lc = cs.pop() as number;
    const lk = ks.pop() as number;
    const n = cs.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(cs[r], ks[r], cs[l], ks[l]) ? r : l;
        if (!this.before(cs[c], ks[c], lc, lk)) break;
        cs[i] = cs[c];
        ks[i] = ks[c];
        i = c;
      }
      cs[i] = lc;
      ks[i] = lk;
    }
    return top;
  }
}
