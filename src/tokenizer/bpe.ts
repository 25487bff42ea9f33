// Applying BPE merges to one word. Semantics are Hugging Face's: repeatedly merge the adjacent pair with the
// lowest merge rank, leftmost first on ties. Short words use a scan over a rank array; long ones a heap.

/**
 * Map from a pair of non-negative int32 ids to an int32 value, open addressing on typed arrays.
 * (A Map keyed by a*V+b is 5-10x slower here: keys above 2^31 are heap numbers that V8 must hash.)
 */
export class PairMap {
  private mask: number;
  private keyA: Int32Array; // -1 = empty
  private keyB: Int32Array;
  private vals: Int32Array;
  size = 0;

  constructor(expected = 1024) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.keyA = new Int32Array(cap).fill(-1);
    this.keyB = new Int32Array(cap);
    this.vals = new Int32Array(cap);
  }

  private slotOf(a: number, b: number): number {
    let slot = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) >>> 0;
    slot = (slot ^ (slot >>> 15)) & this.mask;
    while (this.keyA[slot] !== -1 && (this.keyA[slot] !== a || this.keyB[slot] !== b))
      slot = (slot + 1) & this.mask;
    return slot;
  }

  /** Value for (a, b), or `missing`. */
  get(a: number, b: number, missing = -1): number {
    const slot = this.slotOf(a, b);
    return this.keyA[slot] === -1 ? missing : this.vals[slot];
  }

  has(a: number, b: number): boolean {
    return this.keyA[this.slotOf(a, b)] !== -1;
  }

  set(a: number, b: number, v: number): void {
    const slot = this.slotOf(a, b);
    if (this.keyA[slot] === -1) {
      if ((this.size + 1) * 2 > this.mask + 1) {
        this.grow();
        this.set(a, b, v);
        return;
      }
      this.keyA[slot] = a;
      this.keyB[slot] = b;
      this.size++;
    }
    this.vals[slot] = v;
  }

  private grow(): void {
    const [ka, kb, vs] = [this.keyA, this.keyB, this.vals];
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.keyA = new Int32Array(cap).fill(-1);
    this.keyB = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] === -1) continue;
      const slot = this.slotOf(ka[i], kb[i]);
      this.keyA[slot] = ka[i];
      this.keyB[slot] = kb[i];
      this.vals[slot] = vs[i];
    }
  }
}

export class MergeTable {
  private readonly index: PairMap; // (left, right) -> merge rank
  private readonly result: Int32Array; // rank -> merged id
  private ranks = new Int32Array(64); // scratch for applyScan

  /** merges[r] = [left id, right id, merged id], rank r = position in the list. */
  constructor(merges: readonly (readonly [number, number, number])[]) {
    this.result = new Int32Array(merges.length);
    this.index = new PairMap(merges.length);
    merges.forEach(([a, b, c], r) => {
      // A duplicated pair keeps its first (best) rank, as Hugging Face does.
      if (!this.index.has(a, b)) this.index.set(a, b, r);
      this.result[r] = c;
    });
  }

  get size(): number {
    return this.result.length;
  }

  /** Rank of merging (a, b), or -1 when the pair never merges. */
  rank(a: number, b: number): number {
    return this.index.get(a, b);
  }

  /** Merge the symbols of one word in place; returns the new length. */
  apply(sym: Int32Array | number[], n: number): number {
    if (n < 2) return n;
    return n <= 48 ? this.applyScan(sym, n) : this.applyHeap(sym, n);
  }

  // O(n * merges): best for the short words that make up almost all text.
  private applyScan(sym: Int32Array | number[], n: number): number {
    if (this.ranks.length < n) this.ranks = new Int32Array(n);
    const ranks = this.ranks; // ranks[i] = rank of (sym[i], sym[i+1]), or 2^31-1
    const NONE = 0x7fffffff;
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rank(sym[i], sym[i + 1]);
      ranks[i] = r < 0 ? NONE : r;
    }
    for (;;) {
      let best = NONE;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) return n;
      sym[at] = this.result[best];
      for (let i = at + 1; i + 1 < n; i++) {
        sym[i] = sym[i + 1];
        ranks[i] = ranks[i + 1];
      }
      n--;
      ranks[n - 1] = NONE;
      if (at > 0) {
        const r = this.rank(sym[at - 1], sym[at]);
        ranks[at - 1] = r < 0 ? NONE : r;
      }
      if (at + 1 < n) {
        const r = this.rank(sym[at], sym[at + 1]);
        ranks[at] = r < 0 ? NONE : r;
      } else {
        ranks[at] = NONE;
      }
    }
  }

  // O(n log n): a doubly linked list of symbols and a heap of (rank, position) with lazy deletion.
  private applyHeap(sym: Int32Array | number[], n: number): number {
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const val = Int32Array.from(sym.slice(0, n));
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // Heap entries pack rank and left position: rank * 2^24 + pos (positions < 2^24).
    if (n >= 2 ** 24) throw new Error(`MergeTable: word of ${n} symbols is too long`);
    const heap: number[] = [];
    const push = (i: number): void => {
      const j = next[i];
      if (j < 0) return;
      const r = this.rank(val[i], val[j]);
      if (r >= 0) heapPush(heap, r * 2 ** 24 + i);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.length > 0) {
      const top = heapPop(heap);
      const r = Math.floor(top / 2 ** 24);
      const i = top - r * 2 ** 24;
      const j = next[i];
      // Stale if the left symbol died or its right neighbour changed since the entry was pushed.
      if (!alive[i] || j < 0 || this.rank(val[i], val[j]) !== r) continue;
      val[i] = this.result[r];
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) push(prev[i]);
      push(i);
    }
    let m = 0;
    for (let i = 0; i >= 0; i = next[i]) sym[m++] = val[i];
    return m;
  }
}

function heapPush(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p] <= v) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0];
  const last = h.pop() as number;
  const n = h.length;
  if (n > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
      if (h[c] >= last) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }
  return top;
}
