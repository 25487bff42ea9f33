// The LLaMA decode step, llama2.c style: R sequences, one new token each, through the decoder in one
// forward read top to bottom — straight kernel calls into buffers allocated once and reused, no Tensor,
// no tape. Each sequence appends to and attends over its own KV cache. This is the inference hot path
// (generate() with R = 1, the batch engine with every active request); LlamaModel.forward stays the path
// for prefill and training.
//
// Batch invariance: every op is row-wise (embedding, RMSNorm, RoPE with per-row positions, SwiGLU,
// attention on the row's own cache) or a weight product whose rows do not depend on the other rows: by
// default gemvKMajor on the weight stored transposed (one FMA chain over k per output; each weight is
// transposed once, on first use, and kept on its Tensor; steps of several rows read a copy of it in the
// panel layout, gemvPanels, with the same chains; q/k/v and gate/up as one product each, over a panel
// copy of the stacked weights: a second copy of those weights in memory), or (kernel "gemvRows", kept
// for A/B runs) gemvRows, whose rows are bit-identical to the one-row GEMV. So a sequence's logits do not
// depend on which other sequences share the step. KV caches are f32 or bf16 (KVCache.dtype), one type per
// step; a bf16 step rounds every row's new key and value in one call.
//
// Shapes: R rows (sequences), C hidden size, H / Hkv heads, D head dim, I intermediate size, V vocab.
import { toPanels } from "../engine/kernels/gemm.js";
import { kernels } from "../engine/kernels/index.js";
import type { KVRows } from "../engine/kernels/types.js";
import type { Tensor } from "../engine/tensor.js";
import type { Linear } from "../nn/layers.js";
import { headDim, type KVCache, type LlamaForCausalLM } from "./llama.js";

const K = kernels;

/** The step's scratch for R rows: exact-length views (kernels check lengths) into buffers for maxRows. */
interface Buffers {
  x: Float32Array; // [R, C] residual stream
  xb: Float32Array; // [R, C] normed input of a block
  q: Float32Array; // [R, H·D]
  k: Float32Array; // [R, Hkv·D]
  v: Float32Array; // [R, Hkv·D]
  att: Float32Array; // [R, H·D] attention output
  gate: Float32Array; // [R, I] (then silu(gate)·up)
  up: Float32Array; // [R, I]
  logits: Float32Array; // [R, V]
  rstd: Float32Array; // [R]
  positions: Int32Array; // [R] the new token's position in each sequence
  lengths: Int32Array; // [R] keys each row attends to (positions + 1)
  kRows: Float32Array[]; // [R] row r of k, a view (appended to row r's cache)
  vRows: Float32Array[]; // [R] row r of v, a view
  kBf16: Uint16Array; // [R, Hkv·D] k rounded to bf16 (for bf16 caches)
  vBf16: Uint16Array; // [R, Hkv·D]
  kRowsBf16: Uint16Array[]; // [R] row r of kBf16, a view
  vRowsBf16: Uint16Array[]; // [R] row r of vBf16, a view
  qkv: Split; // q, k, v of a fused product (several rows)
  gateUp: Split; // gate, up of a fused product
  keys: KVRows[]; // [R] this layer's cached keys of each row (refilled per layer)
  values: KVRows[]; // [R] this layer's cached values of each row
}

/** A fused product's output wide [R, ΣN_i] and the row views it is split by: src[i][r] → dst[i][r]. */
interface Split {
  wide: Float32Array;
  src: Float32Array[][];
  dst: Float32Array[][];
}

/** Row views of wide [R, ΣN_i] and of the parts outs[i] [R, N_i]. */
function split(R: number, wide: Float32Array, outs: Float32Array[]): Split {
  const N = wide.length / R;
  let off = 0;
  const src: Float32Array[][] = [];
  const dst: Float32Array[][] = [];
  for (const out of outs) {
    const n = out.length / R;
    const o = off;
    src.push(Array.from({ length: R }, (_, r) => wide.subarray(r * N + o, r * N + o + n)));
    dst.push(Array.from({ length: R }, (_, r) => out.subarray(r * n, (r + 1) * n)));
    off += n;
  }
  return { wide, src, dst };
}

/** How the step multiplies by a weight: K-major on the transposed copy, or the dot-product gemvRows. */
export type DecodeKernel = "kmajor" | "gemvRows";

/** a [rows, cols] → [cols, rows]. */
function transpose<T extends Float32Array | Uint16Array>(a: T, rows: number, cols: number, out: T): T {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** w [N, K] stored transposed, [K, N], bf16 bits when w has a bf16 copy: built on first use, kept on w. */
function kmajor(w: Tensor): Float32Array | Uint16Array {
  const [N, Kd] = w.shape;
  const t = w.kmajor;
  if (w.bf16 !== null) {
    if (!(t instanceof Uint16Array)) w.kmajor = transpose(w.bf16, N, Kd, new Uint16Array(N * Kd));
  } else if (!(t instanceof Float32Array)) w.kmajor = transpose(w.data, N, Kd, new Float32Array(N * Kd));
  return w.kmajor!;
}

/** kmajor(w) in the panel layout (gemvPanels), for steps of several rows: built on first use, kept on w. */
function panels(w: Tensor): Float32Array | Uint16Array {
  const [N, Kd] = w.shape;
  const t = kmajor(w);
  const p = w.panels;
  if (t instanceof Uint16Array) {
    if (!(p instanceof Uint16Array)) w.panels = toPanels(t, Kd, N, new Uint16Array(N * Kd));
  } else if (!(p instanceof Float32Array)) w.panels = toPanels(t, Kd, N, new Float32Array(N * Kd));
  return w.panels!;
}

/**
 * Weights [N_i, K] with one input stacked along N, [ΣN_i, K], K-major in the panel layout: built on first
 * use from each weight's kmajor copy, kept (keyed by the first weight) until one of those copies changes.
 */
const fused = new WeakMap<
  Tensor,
  { parts: (Float32Array | Uint16Array)[]; panels: Float32Array | Uint16Array }
>();
function fusedPanels(ws: Tensor[]): Float32Array | Uint16Array {
  const parts = ws.map(kmajor);
  const hit = fused.get(ws[0]);
  if (hit !== undefined && hit.parts.length === parts.length && hit.parts.every((p, i) => p === parts[i]))
    return hit.panels;
  const Kd = ws[0].shape[1];
  const widths = ws.map((w) => w.shape[0]);
  const N = widths.reduce((a, n) => a + n, 0);
  const bf16 = parts.every((p) => p instanceof Uint16Array);
  if (!bf16 && !parts.every((p) => p instanceof Float32Array))
    throw new Error("fusedPanels: the weights must all have bf16 copies or none");
  const make = (n: number) => (bf16 ? new Uint16Array(n) : new Float32Array(n));
  const t = make(N * Kd);
  for (let k = 0; k < Kd; k++) {
    let off = 0;
    parts.forEach((p, i) => {
      t.set(p.subarray(k * widths[i], (k + 1) * widths[i]), k * N + off);
      off += widths[i];
    });
  }
  const panels = toPanels(t, Kd, N, make(N * Kd));
  fused.set(ws[0], { parts, panels });
  return panels;
}

/**
 * y [R, N] = x [R, K] · wᵀ (bf16 copy when present) + beta · y for a weight w [N, K]. K-major: one row
 * reads the K-major copy in address order; several rows read the panel copy (the same chains, so the same
 * bits), whose K × 96 panels are contiguous: from memory they stream ~15–35% faster than the K-major
 * copy's panels (rows N apart; the LM head's 32 KiB stride also maps a panel onto a few L2 sets).
 */
function product(kernel: DecodeKernel, R: number, x: Float32Array, w: Tensor, beta: 0 | 1, y: Float32Array) {
  const [N, Kd] = w.shape;
  if (kernel === "kmajor" && R > 1) {
    const p = panels(w);
    if (p instanceof Uint16Array) K.gemm.gemvPanelsBf16(R, N, Kd, 1, x, p, beta, y);
    else K.gemm.gemvPanels(R, N, Kd, 1, x, p, beta, y);
  } else if (kernel === "kmajor") {
    const t = kmajor(w);
    if (t instanceof Uint16Array) K.gemm.gemvKMajorBf16(R, N, Kd, 1, x, t, beta, y);
    else K.gemm.gemvKMajor(R, N, Kd, 1, x, t, beta, y);
  } else if (w.bf16 !== null) K.gemm.gemvRowsBf16(R, N, Kd, 1, x, w.bf16, beta, y);
  else K.gemm.gemvRows(R, N, Kd, 1, x, w.data, beta, y);
}

/**
 * Decode steps for up to maxRows sequences of one decoder. Not re-entrant: the logits returned by step()
 * are overwritten by the next call.
 */
export class LlamaDecodeStep {
  private readonly views = new Map<number, Buffers>();

  constructor(
    readonly decoder: LlamaForCausalLM,
    readonly maxRows = 1,
    readonly kernel: DecodeKernel = "kmajor",
  ) {
    if (!Number.isInteger(maxRows) || maxRows < 1)
      throw new Error(`LlamaDecodeStep: maxRows must be a positive integer, got ${maxRows}`);
  }

  /**
   * Feeds tokens[r] at position caches[r].length of sequence r (appending its key and value), and returns
   * the next-token logits [R, V], row r for sequence r (a view, valid until the next step).
   */
  step(tokens: Int32Array, caches: readonly KVCache[]): Float32Array {
    const d = this.decoder;
    const c = d.config;
    const R = tokens.length;
    if (R !== caches.length || R < 1 || R > this.maxRows)
      throw new Error(
        `LlamaDecodeStep.step: ${R} tokens for ${caches.length} caches (1 to ${this.maxRows} rows)`,
      );
    for (const cache of caches) {
      if (cache.length >= cache.capacity)
        throw new Error(`LlamaDecodeStep.step: the KV cache is full (${cache.capacity} positions)`);
      if (cache.dtype !== caches[0].dtype)
        throw new Error(
          `LlamaDecodeStep.step: the caches of one step must share a dtype (${cache.dtype}, ${caches[0].dtype})`,
        );
    }
    const bf16 = caches[0].dtype === "bf16";
    // Several rows: products that share an input run as one (the same chains per output, so the same bits).
    const fuse = R > 1 && this.kernel === "kmajor";
    const C = c.hidden_size;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const D = headDim(c);
    const eps = c.rms_norm_eps;
    const scale = 1 / Math.sqrt(D);
    const b = this.buffers(R);
    for (let r = 0; r < R; r++) {
      b.positions[r] = caches[r].length;
      b.lengths[r] = caches[r].length + 1;
    }

    K.pointwise.embeddingForward(tokens, C, d.model.embed_tokens.weight.data, b.x);
    d.model.layers.forEach((layer, l) => {
      const at = layer.self_attn;
      // Attention: x += o_proj(attention(rope(q), rope(k), v)) over each row's cache.
      K.pointwise.rmsnormForward(R, C, eps, b.x, layer.input_layernorm.weight.data, b.xb, b.rstd);
      if (fuse) this.fusedLinear(R, b.xb, [at.q_proj, at.k_proj, at.v_proj], b.qkv);
      else {
        this.linear(R, b.xb, at.q_proj, 0, b.q);
        this.linear(R, b.xb, at.k_proj, 0, b.k);
        this.linear(R, b.xb, at.v_proj, 0, b.v);
      }
      K.pointwise.rope(R, H, D, c.rope_theta, b.positions, b.q, false);
      K.pointwise.rope(R, Hkv, D, c.rope_theta, b.positions, b.k, false);
      if (bf16) {
        // One rounding call for all rows (elementwise: the bits of rounding each row).
        K.gemm.f32ToBf16(b.k, b.kBf16);
        K.gemm.f32ToBf16(b.v, b.vBf16);
      }
      for (let r = 0; r < R; r++) {
        if (bf16) caches[r].store(l, b.positions[r], b.kRowsBf16[r], b.vRowsBf16[r]);
        else caches[r].store(l, b.positions[r], b.kRows[r], b.vRows[r]);
        b.keys[r] = caches[r].keys[l];
        b.values[r] = caches[r].values[l];
      }
      K.attention.attentionDecodeRows(R, H, Hkv, D, scale, b.q, b.keys, b.values, b.lengths, b.att);
      this.residualLinear(R, b.att, at.o_proj, b.x, b.xb);
      // MLP: x += down_proj(silu(gate_proj(xn)) · up_proj(xn)).
      const m = layer.mlp;
      K.pointwise.rmsnormForward(R, C, eps, b.x, layer.post_attention_layernorm.weight.data, b.xb, b.rstd);
      if (fuse) this.fusedLinear(R, b.xb, [m.gate_proj, m.up_proj], b.gateUp);
      else {
        this.linear(R, b.xb, m.gate_proj, 0, b.gate);
        this.linear(R, b.xb, m.up_proj, 0, b.up);
      }
      K.pointwise.swigluForward(b.gate, b.up, b.gate);
      this.residualLinear(R, b.gate, m.down_proj, b.x, b.xb);
    });
    for (const cache of caches) cache.length += 1;
    K.pointwise.rmsnormForward(R, C, eps, b.x, d.model.norm.weight.data, b.xb, b.rstd);
    const head = d.lm_head;
    if (head !== undefined) this.linear(R, b.xb, head, 0, b.logits);
    else product(this.kernel, R, b.xb, d.model.embed_tokens.weight, 0, b.logits); // tied: [V, C]
    return b.logits;
  }

  /** y [R, N] = x [R, K] · Wᵀ + beta · y; a bias is added after. */
  private linear(R: number, x: Float32Array, l: Linear, beta: 0 | 1, y: Float32Array): void {
    product(this.kernel, R, x, l.weight, beta, y);
    const N = l.weight.shape[0];
    if (l.bias !== undefined)
      for (let r = 0; r < R; r++) K.pointwise.axpy(1, l.bias.data, y.subarray(r * N, (r + 1) * N));
  }

  /**
   * outs[i] [R, N_i] = x · W_iᵀ (+ bias_i) for linears with the same input, as one product over their
   * weights stacked along N (fusedPanels) into wide [R, ΣN_i], then split.
   */
  private fusedLinear(R: number, x: Float32Array, ls: Linear[], s: Split) {
    const Kd = ls[0].weight.shape[1];
    const p = fusedPanels(ls.map((l) => l.weight));
    const N = s.wide.length / R;
    if (p instanceof Uint16Array) K.gemm.gemvPanelsBf16(R, N, Kd, 1, x, p, 0, s.wide);
    else K.gemm.gemvPanels(R, N, Kd, 1, x, p, 0, s.wide);
    ls.forEach((l, i) => {
      const src = s.src[i];
      const dst = s.dst[i];
      for (let r = 0; r < R; r++) dst[r].set(src[r]);
      if (l.bias !== undefined) for (let r = 0; r < R; r++) K.pointwise.axpy(1, l.bias.data, dst[r]);
    });
  }

  /**
   * x += in · Wᵀ (+ bias). Without a bias the residual add is the product's beta = 1 (the same bits as a
   * separate add: 1 · s + 1 · x rounds once either way); with one, the sum goes through tmp to keep the
   * unfused order (x + (in · Wᵀ + bias)).
   */
  private residualLinear(
    R: number,
    input: Float32Array,
    l: Linear,
    x: Float32Array,
    tmp: Float32Array,
  ): void {
    if (l.bias === undefined) return this.linear(R, input, l, 1, x);
    this.linear(R, input, l, 0, tmp);
    K.pointwise.add(x, tmp, x);
  }

  private buffers(R: number): Buffers {
    let b = this.views.get(R);
    if (b !== undefined) return b;
    const c = this.decoder.config;
    const full = this.views.get(this.maxRows) ?? this.allocate(this.maxRows);
    this.views.set(this.maxRows, full);
    if (R === this.maxRows) return full;
    const cut = <T extends Float32Array | Int32Array | Uint16Array>(a: T, width: number): T =>
      a.subarray(0, R * width) as T;
    const cutSplit = (s: Split): Split => ({
      wide: s.wide.subarray(0, (R * s.wide.length) / this.maxRows),
      src: s.src.map((rows) => rows.slice(0, R)),
      dst: s.dst.map((rows) => rows.slice(0, R)),
    });
    const HD = c.num_attention_heads * headDim(c);
    b = {
      x: cut(full.x, c.hidden_size),
      xb: cut(full.xb, c.hidden_size),
      q: cut(full.q, HD),
      k: cut(full.k, c.num_key_value_heads * headDim(c)),
      v: cut(full.v, c.num_key_value_heads * headDim(c)),
      att: cut(full.att, HD),
      gate: cut(full.gate, c.intermediate_size),
      up: cut(full.up, c.intermediate_size),
      logits: cut(full.logits, c.vocab_size),
      rstd: cut(full.rstd, 1),
      positions: cut(full.positions, 1),
      lengths: cut(full.lengths, 1),
      kRows: full.kRows.slice(0, R),
      vRows: full.vRows.slice(0, R),
      kBf16: cut(full.kBf16, c.num_key_value_heads * headDim(c)),
      vBf16: cut(full.vBf16, c.num_key_value_heads * headDim(c)),
      kRowsBf16: full.kRowsBf16.slice(0, R),
      vRowsBf16: full.vRowsBf16.slice(0, R),
      qkv: cutSplit(full.qkv),
      gateUp: cutSplit(full.gateUp),
      keys: full.keys.slice(0, R),
      values: full.values.slice(0, R),
    };
    this.views.set(R, b);
    return b;
  }

  private allocate(R: number): Buffers {
    const c = this.decoder.config;
    const HD = c.num_attention_heads * headDim(c);
    const kvDim = c.num_key_value_heads * headDim(c);
    const k = new Float32Array(R * kvDim);
    const v = new Float32Array(R * kvDim);
    const rows = <T extends Float32Array | Uint16Array>(a: T) =>
      Array.from({ length: R }, (_, r) => a.subarray(r * kvDim, (r + 1) * kvDim) as T);
    const kBf16 = new Uint16Array(R * kvDim);
    const vBf16 = new Uint16Array(R * kvDim);
    const q = new Float32Array(R * HD);
    const gate = new Float32Array(R * c.intermediate_size);
    const up = new Float32Array(R * c.intermediate_size);
    return {
      x: new Float32Array(R * c.hidden_size),
      xb: new Float32Array(R * c.hidden_size),
      q,
      k,
      v,
      att: new Float32Array(R * HD),
      gate,
      up,
      logits: new Float32Array(R * c.vocab_size),
      rstd: new Float32Array(R),
      positions: new Int32Array(R),
      lengths: new Int32Array(R),
      kRows: rows(k),
      vRows: rows(v),
      kBf16,
      vBf16,
      kRowsBf16: rows(kBf16),
      vRowsBf16: rows(vBf16),
      qkv: split(R, new Float32Array(R * (HD + 2 * kvDim)), [q, k, v]),
      gateUp: split(R, new Float32Array(R * 2 * c.intermediate_size), [gate, up]),
      keys: new Array<Float32Array>(R).fill(k),
      values: new Array<Float32Array>(R).fill(v),
    };
  }
}
