// A hand-written scanner for the GPT-2 pre-tokenisation regex, and a hash table keyed by text spans.
// Why: V8 must hash every fresh substring a regex match returns before a Map lookup, which made encoding
// 4x slower than the regex itself. The scanner finds word ends with charCodeAt and a class table; the table
// hashes and compares the characters in place, so no substring is made for words already seen.
//
// The scanner reproduces  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (JavaScript `u`-mode classes, as @huggingface/tokenizers uses); tests compare it with that regex.

const L = 1; // \p{L}
const N = 2; // \p{N}
const S = 3; // \s
const O = 4; // anything else, lone surrogates included

/** Class of every BMP code unit, computed once from the regex classes themselves. */
const BMP_CLASS: Uint8Array = (() => {
  const t = new Uint8Array(65536);
  const isL = /\p{L}/u;
  const isN = /\p{N}/u;
  const isS = /\s/u;
  for (let c = 0; c < 65536; c++) {
    if (c >= 0xd800 && c <= 0xdfff) {
      t[c] = O;
      continue;
    }
    const ch = String.fromCharCode(c);
    t[c] = isL.test(ch) ? L : isN.test(ch) ? N : isS.test(ch) ? S : O;
  }
  return t;
})();

const astralCache = new Map<number, number>();
function astralClass(cp: number): number {
  let k = astralCache.get(cp);
  if (k === undefined) {
    const ch = String.fromCodePoint(cp);
    k = /\p{L}/u.test(ch) ? L : /\p{N}/u.test(ch) ? N : O; // no astral whitespace exists
    astralCache.set(cp, k);
  }
  return k;
}

/** Class and width (1 or 2 code units) of the code point at i, packed as class | width << 3. */
function classAt(text: string, i: number, n: number): number {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff || i + 1 >= n) return BMP_CLASS[c] | 8;
  const d = text.charCodeAt(i + 1);
  if (d < 0xdc00 || d > 0xdfff) return O | 8; // lone high surrogate
  return astralClass(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000) | 16;
}

/** End of the run of code points of class k starting at i. */
function runEnd(text: string, i: number, n: number, k: number): number {
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) {
      if (BMP_CLASS[c] !== k) return i;
      i++;
    } else {
      const ci = classAt(text, i, n);
      if ((ci & 7) !== k) return i;
      i += ci >> 3;
    }
  }
  return i;
}

const APOS = 39;
const SPACE = 32;

/** End (exclusive) of the GPT-2 pre-token starting at i (< n). Pre-tokens tile the text without gaps. */
export function gpt2WordEnd(text: string, i: number, n: number): number {
  const c = text.charCodeAt(i);
  if (c === APOS && i + 1 < n) {
    const d = text.charCodeAt(i + 1);
    if (d === 115 || d === 116 || d === 109 || d === 100) return i + 2; // 's 't 'm 'd
    if (i + 2 < n) {
      const e = text.charCodeAt(i + 2);
      if ((d === 114 || d === 118) && e === 101) return i + 3; // 're 've
      if (d === 108 && e === 108) return i + 3; // 'll
    }
  }
  const k0 = classAt(text, i, n);
  const cls = k0 & 7;
  if (cls !== S) return runEnd(text, i + (k0 >> 3), n, cls);
  if (c === SPACE && i + 1 < n) {
    const k1 = classAt(text, i + 1, n) & 7;
    if (k1 !== S) return runEnd(text, i + 1, n, k1);
  }
  // Whitespace: \s+(?!\S) leaves the last space of a run for the next word; a single one is \s+.
  const j = runEnd(text, i + 1, n, S);
  if (j === n || j - i === 1) return j;
  return j - 1;
}

/** Calls fn(start, end) for each pre-token of text[from, to). */
export function forEachGpt2Word(
  text: string,
  fn: (s: number, e: number) => void,
  from = 0,
  to = text.length,
): void {
  for (let i = from; i < to; ) {
    const e = gpt2WordEnd(text, i, to);
    fn(i, e);
    i = e;
  }
}

/** FNV-1a over UTF-16 code units of text[s, e). */
export function spanHash(text: string, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = s; i < e; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

/**
 * Open-addressing hash table from text spans to one int32 value each. Keys are copied into a UTF-16 pool.
 * A slot's hash, key offset, key length and value sit side by side so a probe touches one cache line.
 */
export class SpanTable {
  private mask: number;
  private slots: Int32Array; // [hash, keyOff, keyLen (0 = empty), value] per slot
  private pool: Uint16Array;
  private poolUsed = 0;
  size = 0;

  constructor(capacityPow2 = 1 << 16) {
    if ((capacityPow2 & (capacityPow2 - 1)) !== 0)
      throw new Error(`SpanTable: capacity ${capacityPow2} is not a power of 2`);
    this.mask = capacityPow2 - 1;
    this.slots = new Int32Array(capacityPow2 * 4);
    this.pool = new Uint16Array(capacityPow2 * 4);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** Slot holding text[s, e), or -1 - (the empty slot where it would go). */
  find(text: string, s: number, e: number, h: number): number {
    const len = e - s;
    const pool = this.pool;
    const slots = this.slots;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const b = slot << 2;
      const kl = slots[b + 2];
      if (kl === 0) return -1 - slot;
      if (kl !== len || slots[b] !== h) continue;
      const o = slots[b + 1];
      let j = 0;
      while (j < len && pool[o + j] === text.charCodeAt(s + j)) j++;
      if (j === len) return slot;
    }
  }

  value(slot: number): number {
    return this.slots[(slot << 2) + 3];
  }

  setValue(slot: number, v: number): void {
    this.slots[(slot << 2) + 3] = v;
  }

  /** Store text[s, e) with a value in the empty slot that find returned (encoded); returns the slot. */
  insertAt(encodedSlot: number, text: string, s: number, e: number, h: number, value: number): number {
    const slot = -1 - encodedSlot;
    const len = e - s;
    if (len === 0) throw new Error("SpanTable: empty key");
    if (this.poolUsed + len > this.pool.length) {
      const grown = new Uint16Array(Math.max(this.pool.length * 2, this.poolUsed + len));
      grown.set(this.pool.subarray(0, this.poolUsed));
      this.pool = grown;
    }
    for (let j = 0; j < len; j++) this.pool[this.poolUsed + j] = text.charCodeAt(s + j);
    const b = slot << 2;
    this.slots[b] = h;
    this.slots[b + 1] = this.poolUsed;
    this.slots[b + 2] = len;
    this.slots[b + 3] = value;
    this.poolUsed += len;
    this.size++;
    return slot;
  }

  /** Every (key, value), in slot order. */
  *entries(): Generator<[string, number]> {
    for (let slot = 0; slot <= this.mask; slot++) {
      const b = slot << 2;
      const len = this.slots[b + 2];
      if (len === 0) continue;
      const o = this.slots[b + 1];
      let key = "";
      for (let j = 0; j < len; j += 4096)
        key += String.fromCharCode(...this.pool.subarray(o + j, o + Math.min(len, j + 4096)));
      yield [key, this.slots[b + 3]];
    }
  }

  clear(): void {
    this.slots.fill(0);
    this.poolUsed = 0;
    this.size = 0;
  }

  /** Double the capacity (values move with their keys). */
  grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 4);
    for (let b = 0; b < old.length; b += 4) {
      if (old[b + 2] === 0) continue;
      let slot = old[b] & this.mask;
      while (this.slots[(slot << 2) + 2] !== 0) slot = (slot + 1) & this.mask;
      this.slots.set(old.subarray(b, b + 4), slot << 2);
    }
  }
}
