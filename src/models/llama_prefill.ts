// Batched prefill, llama2.c style: several prompts stacked along rows through the decoder in one forward
// read top to bottom — straight kernel calls into buffers kept between calls (no Tensor per op, no tape),
// so a burst of joining requests allocates nothing but their KV caches. Each prompt appends to and
// attends over its own cache, from the cache's length on; the next-token logits of each prompt's last
// position come out. The batch engine's prefill (src/infer/batch.ts).
//
// Bits: every op is the one LlamaModel.forward + LlamaForCausalLM.logits run for a prompt alone (generate()'s
// prefill), on the same rows: the GEMM's rows do not depend on how many rows it multiplies (M ≥ 2) or on
// the row's place, RMSNorm, RoPE and SwiGLU are row-wise, attention runs per prompt, and the final norm and
// the LM head run on the last rows only (gemvRows: each row the bits of the one-row product, which the
// prompt alone takes for its one last row). So a prompt of 2+ positions gets the cache and logits of its
// prefill alone; a one-position prompt does too when it is prefilled alone (its product is then the GEMV),
// which is why the engine never packs it with others.
//
// Shapes: T rows (all prompts' positions), P prompts, C hidden size, H / Hkv heads, D head dim,
// I intermediate size, V vocab.
import { kernels } from "../engine/kernels/index.js";
import { isGradEnabled, type Tensor } from "../engine/tensor.js";
import type { Linear } from "../nn/layers.js";
import { headDim, type KVCache, type LlamaForCausalLM, type Segment } from "./llama.js";

const K = kernels;

/** Row buffers for up to `rows` positions (T) and `prompts` prompts (P), reused across calls. */
interface Buffers {
  rows: number;
  prompts: number;
  x: Float32Array; // [T, C] residual stream
  xb: Float32Array; // [T, C] normed input of a block; the output of o_proj and down_proj
  q: Float32Array; // [T, H·D]
  k: Float32Array; // [T, Hkv·D]
  v: Float32Array; // [T, Hkv·D]
  att: Float32Array; // [T, H·D] attention output
  gate: Float32Array; // [T, I] (then silu(gate)·up)
  up: Float32Array; // [T, I]
  rstd: Float32Array; // [T]
  lse: Float32Array; // [H, T] attention's log-sum-exp (not read)
  positions: Int32Array; // [T]
  last: Float32Array; // [P, C] each prompt's last row (normed into xb)
  logits: Float32Array; // [P, V]
}

/** y [T, N] = x [T, K] · wᵀ (+ bias), as ops.linear computes it (the packed GEMM; M = 1 takes the GEMV). */
function linear(T: number, x: Float32Array, l: Linear, y: Float32Array): void {
  const w = l.weight;
  const [N, Kd] = w.shape;
  if (w.bf16 !== null) K.gemm.gemmBf16(true, T, N, Kd, 1, x, w.bf16, 0, y);
  else K.gemm.gemm(false, true, T, N, Kd, 1, x, w.data, 0, y);
  addBias(T, N, l.bias, y);
}

function addBias(T: number, N: number, bias: Tensor | undefined, y: Float32Array): void {
  if (bias !== undefined)
    for (let r = 0; r < T; r++) K.pointwise.axpy(1, bias.data, y.subarray(r * N, (r + 1) * N));
}

/** Prefill of several prompts for one decoder. Not re-entrant: the logits returned are overwritten by the next call. */
export class LlamaPrefill {
  private b: Buffers | null = null;
  /** A bf16 cache's keys and values widened for attention (KVCache.read), reused across calls. */
  private widened: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];

  constructor(readonly decoder: LlamaForCausalLM) {}

  /**
   * Feeds prompts[i] at positions caches[i].length… of sequence i (appending its keys and values) and
   * returns the next-token logits [P, V], row i for prompt i's last position (a view, valid until the
   * next call).
   */
  run(prompts: readonly Segment[][], caches: readonly KVCache[]): Float32Array {
    const d = this.decoder;
    const c = d.config;
    const C = c.hidden_size;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const D = headDim(c);
    const HD = H * D;
    const kvDim = Hkv * D;
    const I = c.intermediate_size;
    const V = c.vocab_size;
    const eps = c.rms_norm_eps;
    const P = prompts.length;
    const lengths = this.check(prompts, caches);
    const T = lengths.reduce((a, n) => a + n, 0);
    const b = this.buffers(T, P);
    const view = <A extends Float32Array>(a: A, width: number, rows = T): A =>
      a.subarray(0, rows * width) as A;
    const [x, xb, q, k, v, att] = [
      view(b.x, C),
      view(b.xb, C),
      view(b.q, HD),
      view(b.k, kvDim),
      view(b.v, kvDim),
      view(b.att, HD),
    ];
    const [gate, up] = [view(b.gate, I), view(b.up, I)];
    const positions = b.positions.subarray(0, T);

    // Embedding: token segments through the table, vector segments as given; positions from each cache.
    let row = 0;
    prompts.forEach((segments, i) => {
      const past = caches[i].length;
      for (let t = 0; t < lengths[i]; t++) positions[row + t] = past + t;
      for (const s of segments) {
        const n = "ids" in s ? s.ids.length : s.embeds.rows;
        const out = x.subarray(row * C, (row + n) * C);
        if ("ids" in s) K.pointwise.embeddingForward(s.ids, C, d.model.embed_tokens.weight.data, out);
        else out.set(s.embeds.data);
        row += n;
      }
    });

    d.model.layers.forEach((layer, l) => {
      const at = layer.self_attn;
      // Attention: x += o_proj(attention(rope(q), rope(k), v)), each prompt over its own cache.
      K.pointwise.rmsnormForward(T, C, eps, x, layer.input_layernorm.weight.data, xb, b.rstd);
      linear(T, xb, at.q_proj, q);
      linear(T, xb, at.k_proj, k);
      linear(T, xb, at.v_proj, v);
      K.pointwise.rope(T, H, D, c.rope_theta, positions, q, false);
      K.pointwise.rope(T, Hkv, D, c.rope_theta, positions, k, false);
      let start = 0;
      prompts.forEach((_, i) => {
        const n = lengths[i];
        const cache = caches[i];
        const past = cache.length;
        const total = past + n;
        cache.write(
          l,
          past,
          k.subarray(start * kvDim, (start + n) * kvDim),
          v.subarray(start * kvDim, (start + n) * kvDim),
        );
        if (cache.dtype === "bf16" && this.widened[0].length < total * kvDim)
          this.widened = [new Float32Array(total * kvDim), new Float32Array(total * kvDim)];
        const [keys, values] = cache.read(l, total, this.widened);
        K.attention.attentionForward(
          1,
          n,
          total,
          H,
          Hkv,
          D,
          past,
          true,
          1 / Math.sqrt(D),
          q.subarray(start * HD, (start + n) * HD),
          keys,
          values,
          null,
          att.subarray(start * HD, (start + n) * HD),
          b.lse,
        );
        start += n;
      });
      linear(T, att, at.o_proj, xb);
      K.pointwise.add(x, xb, x);
      // MLP: x += down_proj(silu(gate_proj(xn)) · up_proj(xn)).
      const m = layer.mlp;
      K.pointwise.rmsnormForward(T, C, eps, x, layer.post_attention_layernorm.weight.data, xb, b.rstd);
      linear(T, xb, m.gate_proj, gate);
      linear(T, xb, m.up_proj, up);
      K.pointwise.swigluForward(gate, up, gate);
      linear(T, gate, m.down_proj, xb);
      K.pointwise.add(x, xb, x);
    });
    caches.forEach((cache, i) => (cache.length += lengths[i]));

    // Each prompt's last row: final norm, LM head (gemvRows: every row the bits of the one-row product).
    const last = view(b.last, C, P);
    const normed = view(b.xb, C, P);
    let end = 0;
    lengths.forEach((n, i) => {
      end += n;
      last.set(x.subarray((end - 1) * C, end * C), i * C);
    });
    K.pointwise.rmsnormForward(P, C, eps, last, d.model.norm.weight.data, normed, b.rstd);
    const logits = view(b.logits, V, P);
    const w = d.lm_head?.weight ?? d.model.embed_tokens.weight; // [V, C]; tied: the embedding
    if (w.bf16 !== null) K.gemm.gemvRowsBf16(P, V, C, 1, normed, w.bf16, 0, logits);
    else K.gemm.gemvRows(P, V, C, 1, normed, w.data, 0, logits);
    addBias(P, V, d.lm_head?.bias, logits);
    return logits;
  }

  /** Each prompt's positions, checked against its cache (as LlamaModel.forward checks one). */
  private check(prompts: readonly Segment[][], caches: readonly KVCache[]): number[] {
    if (isGradEnabled())
      throw new Error("LlamaPrefill.run: prefill is for inference; wrap the call in noGrad()");
    if (prompts.length !== caches.length || prompts.length === 0)
      throw new Error(`LlamaPrefill.run: ${prompts.length} prompts for ${caches.length} caches`);
    const C = this.decoder.config.hidden_size;
    return prompts.map((segments, i) => {
      let n = 0;
      for (const s of segments) {
        if ("embeds" in s && (s.embeds.cols !== C || s.embeds.shape.length !== 2))
          throw new Error(`LlamaPrefill.run: prompt ${i}: vector segment ${s.embeds} must be [n, ${C}]`);
        n += "ids" in s ? s.ids.length : s.embeds.rows;
      }
      const cache = caches[i];
      if (n < 1 || cache.length + n > cache.capacity)
        throw new Error(
          `LlamaPrefill.run: prompt ${i}: ${cache.length} cached + ${n} new positions (capacity ${cache.capacity})`,
        );
      if (caches.indexOf(cache) !== i) throw new Error(`LlamaPrefill.run: prompt ${i} shares a cache`);
      return n;
    });
  }

  /** Buffers for at least T rows and P prompts (grown, never shrunk). */
  private buffers(T: number, P: number): Buffers {
    if (this.b !== null && this.b.rows >= T && this.b.prompts >= P) return this.b;
    const c = this.decoder.config;
    const rows = Math.max(T, this.b?.rows ?? 0);
    const prompts = Math.max(P, this.b?.prompts ?? 0);
    const C = c.hidden_size;
    const HD = c.num_attention_heads * headDim(c);
    const kvDim = c.num_key_value_heads * headDim(c);
    const I = c.intermediate_size;
    this.b = {
      rows,
      prompts,
      x: new Float32Array(rows * C),
      xb: new Float32Array(rows * C),
      q: new Float32Array(rows * HD),
      k: new Float32Array(rows * kvDim),
      v: new Float32Array(rows * kvDim),
      att: new Float32Array(rows * HD),
      gate: new Float32Array(rows * I),
      up: new Float32Array(rows * I),
      rstd: new Float32Array(rows),
      lse: new Float32Array(rows * c.num_attention_heads),
      positions: new Int32Array(rows),
      last: new Float32Array(prompts * C),
      logits: new Float32Array(prompts * c.vocab_size),
    };
    return this.b;
  }
}
