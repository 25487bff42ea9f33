// LLaMA decoder (Touvron et al. 2023): RMSNorm, rotary positions, SwiGLU MLP, multi-head or
// grouped-query attention. Field names follow Hugging Face's LlamaForCausalLM so parameter names are the
// safetensors keys. The input is a list of segments, token ids or float vectors of the model width, so
// question tokens, REFRAG chunk vectors and expanded chunks interleave freely.
//
// Shapes: T tokens (rows), C hidden size, H query heads, Hkv key/value heads, D head dim, V vocab.
import { add, attention, concatRows, linear, rope, swiglu } from "../engine/ops.js";
import { kernels } from "../engine/kernels/index.js";
import type { KVRows } from "../engine/kernels/types.js";
import { Rng } from "../engine/random.js";
import { Tensor, isGradEnabled } from "../engine/tensor.js";
import { Embedding, Linear, RMSNorm } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { parseLlamaConfig, type LlamaConfig } from "../io/config.js";

export type { LlamaConfig } from "../io/config.js";

type LlamaConfigInput = Partial<LlamaConfig> &
  Pick<LlamaConfig, "vocab_size" | "hidden_size" | "num_hidden_layers" | "num_attention_heads">;

/** A full, validated LlamaConfig from the fields that matter (transformers' defaults for the rest). */
export function llamaConfig(c: LlamaConfigInput): LlamaConfig {
  return parseLlamaConfig({
    intermediate_size: Math.round((8 * c.hidden_size) / 3 / 32) * 32,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 4096,
    tie_word_embeddings: false,
    ...c,
    model_type: "llama",
  });
}

/** What this implementation supports beyond what the config parser checks. */
export function validateLlamaConfig(c: LlamaConfig): void {
  if (headDim(c) % 2 !== 0)
    throw new Error(`LlamaConfig: head dim ${headDim(c)} must be even for rotary embeddings`);
  if (c.hidden_act !== "silu")
    throw new Error(`LlamaConfig: hidden_act "${c.hidden_act}" unsupported (silu only)`);
  if (c.rope_scaling !== null) throw new Error("LlamaConfig: rope_scaling is not supported");
}

export function headDim(c: LlamaConfig): number {
  return c.head_dim;
}

/** One decoder input segment: token ids (looked up in the embedding table) or ready vectors [n, C]. */
export type Segment = { ids: Int32Array } | { embeds: Tensor };

/**
 * How a KV cache stores keys and values: f32, or bf16 (half the bytes a decode step reads; every key and
 * value is rounded to the nearest bf16 when stored, and attention reads the rounded values, prompt and
 * decode alike).
 */
export type KVCacheDtype = "f32" | "bf16";
export const KV_CACHE_DTYPES: readonly KVCacheDtype[] = ["f32", "bf16"];

/**
 * Key/value cache for incremental decoding: per layer, keys and values for positions [0, length),
 * stored token-major [capacity, Hkv·D] (an f32 cache gives attention a prefix view without copies).
 */
export class KVCache {
  /** Per layer [capacity, Hkv·D], token-major: Float32Array, or Uint16Array of bf16 bits. */
  readonly keys: KVRows[];
  readonly values: KVRows[];
  length = 0;
  private readonly kvDim: number;

  constructor(
    readonly config: LlamaConfig,
    readonly capacity: number,
    readonly dtype: KVCacheDtype = "f32",
  ) {
    if (!KV_CACHE_DTYPES.includes(dtype))
      throw new Error(`KVCache: dtype must be one of ${KV_CACHE_DTYPES.join(", ")}, got ${String(dtype)}`);
    this.kvDim = config.num_key_value_heads * headDim(config);
    const n = capacity * this.kvDim;
    const make = () => (dtype === "bf16" ? new Uint16Array(n) : new Float32Array(n));
    this.keys = Array.from({ length: config.num_hidden_layers }, make);
    this.values = Array.from({ length: config.num_hidden_layers }, make);
  }

  /** Bytes held for the cached positions (what a KV-cache size comparison should report). */
  bytesUsed(): number {
    return 2 * this.config.num_hidden_layers * this.length * this.kvDim * this.keys[0].BYTES_PER_ELEMENT;
  }

  /** Stores rows of keys k and values v ([n, Hkv·D]) of layer l from position pos (bf16: rounded). */
  write(l: number, pos: number, k: Float32Array, v: Float32Array): void {
    if (this.dtype === "f32") return this.store(l, pos, k, v);
    const at = pos * this.kvDim;
    kernels.gemm.f32ToBf16(k, this.keys[l].subarray(at, at + k.length) as Uint16Array);
    kernels.gemm.f32ToBf16(v, this.values[l].subarray(at, at + v.length) as Uint16Array);
  }

  /** write() for rows already in the cache's storage type (bf16 bits for a bf16 cache). */
  store(l: number, pos: number, k: KVRows, v: KVRows): void {
    const keys = this.keys[l];
    const bf16 = this.dtype === "bf16";
    if (
      bf16
        ? !(k instanceof Uint16Array && v instanceof Uint16Array)
        : !(k instanceof Float32Array && v instanceof Float32Array)
    )
      throw new Error(
        `KVCache.store: rows of a ${this.dtype} cache must be ${bf16 ? "Uint16Array" : "Float32Array"}`,
      );
    keys.set(k, pos * this.kvDim);
    this.values[l].set(v, pos * this.kvDim);
  }

  /**
   * Keys and values of layer l at positions [0, n) as f32: views of an f32 cache; of a bf16 one, widened
   * copies, into the start of `into` when it is given and long enough (a caller's reused scratch).
   */
  read(l: number, n: number, into?: [Float32Array, Float32Array]): [Float32Array, Float32Array] {
    const m = n * this.kvDim;
    const f32 = (a: KVRows, i: 0 | 1) => {
      if (a instanceof Float32Array) return a.subarray(0, m);
      const out = into !== undefined && into[i].length >= m ? into[i].subarray(0, m) : new Float32Array(m);
      kernels.gemm.bf16ToF32(a.subarray(0, m), out);
      return out;
    };
    return [f32(this.keys[l], 0), f32(this.values[l], 1)];
  }

  /** Forget everything from position `length` on (e.g. to reuse a prompt prefix). */
  truncate(length: number): void {
    if (length < 0 || length > this.length)
      throw new Error(`KVCache.truncate: ${length} outside [0, ${this.length}]`);
    this.length = length;
  }
}

export interface ForwardOptions {
  /** Independent sequences stacked along rows, all of the same length (training). */
  batch?: number;
  /** Incremental decoding: new positions continue from cache.length, and the cache is extended. */
  cache?: KVCache;
}

class LlamaAttention extends Module {
  q_proj: Linear; // [H·D, C]
  k_proj: Linear; // [Hkv·D, C]
  v_proj: Linear; // [Hkv·D, C]
  o_proj: Linear; // [C, H·D]

  constructor(
    readonly config: LlamaConfig,
    rng: Rng,
  ) {
    super();
    const C = config.hidden_size;
    const D = headDim(config);
    const std = config.initializer_range;
    const bias = config.attention_bias;
    this.q_proj = new Linear(C, config.num_attention_heads * D, rng, { std, bias });
    this.k_proj = new Linear(C, config.num_key_value_heads * D, rng, { std, bias });
    this.v_proj = new Linear(C, config.num_key_value_heads * D, rng, { std, bias });
    this.o_proj = new Linear(config.num_attention_heads * D, C, rng, {
      std: std / Math.sqrt(2 * config.num_hidden_layers),
      bias,
    });
  }

  forward(x: Tensor, positions: Int32Array, layer: number, o: ForwardOptions): Tensor {
    const c = this.config;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const q = rope(this.q_proj.forward(x), H, positions, c.rope_theta);
    let k = rope(this.k_proj.forward(x), Hkv, positions, c.rope_theta);
    let v = this.v_proj.forward(x);
    let qOffset = 0;
    if (o.cache !== undefined) {
      // Append the new keys/values, then attend over the whole cached prefix.
      const cache = o.cache;
      const kvDim = k.cols;
      const past = cache.length;
      cache.write(layer, past, k.data, v.data);
      const total = past + x.rows;
      const [keys, values] = cache.read(layer, total);
      k = new Tensor(keys, [total, kvDim]);
      v = new Tensor(values, [total, kvDim]);
      qOffset = past;
    }
    const a = attention(q, k, v, { batch: o.batch ?? 1, heads: H, kvHeads: Hkv, causal: true, qOffset });
    return this.o_proj.forward(a);
  }
}

class LlamaMLP extends Module {
  gate_proj: Linear; // [I, C]
  up_proj: Linear; // [I, C]
  down_proj: Linear; // [C, I]

  constructor(config: LlamaConfig, rng: Rng) {
    super();
    const C = config.hidden_size;
    const I = config.intermediate_size;
    const std = config.initializer_range;
    const bias = config.mlp_bias;
    this.gate_proj = new Linear(C, I, rng, { std, bias });
    this.up_proj = new Linear(C, I, rng, { std, bias });
    this.down_proj = new Linear(I, C, rng, { std: std / Math.sqrt(2 * config.num_hidden_layers), bias });
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(config: LlamaConfig, rng: Rng) {
    super();
    this.self_attn = new LlamaAttention(config, rng);
    this.mlp = new LlamaMLP(config, rng);
    this.input_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
    this.post_attention_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }

  forward(x: Tensor, positions: Int32Array, layer: number, o: ForwardOptions): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), positions, layer, o));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

export class LlamaModel extends Module {
  embed_tokens: Embedding; // [V, C]
  layers: LlamaDecoderLayer[];
  norm: RMSNorm;

  constructor(
    readonly config: LlamaConfig,
    rng: Rng,
  ) {
    super();
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size, rng, config.initializer_range);
    this.layers = Array.from({ length: config.num_hidden_layers }, () => new LlamaDecoderLayer(config, rng));
    this.norm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }

  /** Turn segments into one [T, C] input: token segments through the embedding table, vectors as given. */
  embed(segments: Segment[]): Tensor {
    const C = this.config.hidden_size;
    const parts = segments.map((s) => {
      if ("ids" in s) return this.embed_tokens.forward(s.ids);
      if (s.embeds.cols !== C || s.embeds.shape.length !== 2)
        throw new Error(`LlamaModel.embed: vector segment ${s.embeds} must be [n, ${C}]`);
      return s.embeds;
    });
    return parts.length === 1 ? parts[0] : concatRows(parts);
  }

  /** Hidden states after the final norm, [rows, C], for input embeddings [rows, C]. */
  forward(inputs: Tensor, o: ForwardOptions = {}): Tensor {
    const B = o.batch ?? 1;
    const rows = inputs.rows;
    if (rows % B !== 0) throw new Error(`LlamaModel.forward: ${rows} rows not divisible by batch ${B}`);
    const T = rows / B;
    const past = o.cache?.length ?? 0;
    if (o.cache !== undefined) {
      if (B !== 1) throw new Error("LlamaModel.forward: the KV cache serves batch 1");
      if (isGradEnabled())
        throw new Error("LlamaModel.forward: the KV cache is for inference; wrap the call in noGrad()");
      if (past + T > o.cache.capacity)
        throw new Error(
          `LlamaModel.forward: ${past} cached + ${T} new positions exceed the cache capacity ${o.cache.capacity}`,
        );
    }
    const positions = new Int32Array(rows);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = past + t;
    let h = inputs;
    this.layers.forEach((layer, i) => {
      h = layer.forward(h, positions, i, o);
    });
    if (o.cache !== undefined) o.cache.length = past + T;
    return this.norm.forward(h);
  }
}

export class LlamaForCausalLM extends Module {
  model: LlamaModel;
  lm_head?: Linear; // [V, C]; absent when tied to the embedding

  constructor(
    readonly config: LlamaConfig,
    rng: Rng,
  ) {
    super();
    validateLlamaConfig(config);
    this.model = new LlamaModel(config, rng);
    if (!config.tie_word_embeddings)
      this.lm_head = new Linear(config.hidden_size, config.vocab_size, rng, {
        std: config.initializer_range,
      });
  }

  /** Logits [rows, V] for hidden states [rows, C]. */
  logits(hidden: Tensor): Tensor {
    return this.lm_head !== undefined
      ? this.lm_head.forward(hidden)
      : linear(hidden, this.model.embed_tokens.weight);
  }

  /** Segments in, logits for every position out (and the final hidden states). */
  forward(segments: Segment[], o: ForwardOptions = {}): { logits: Tensor; hidden: Tensor } {
    const hidden = this.model.forward(this.model.embed(segments), o);
    return { logits: this.logits(hidden), hidden };
  }
}
