// Export a Hugging Face-layout LLaMA (config + tensors + tokenizer.json) to a GGUF file llama.cpp loads.
// What convert_hf_to_gguf.py does for LlamaForCausalLM, for the float types:
// - tensor names mapped to llama.cpp's (token_embd, blk.N.attn_q, ..., output_norm, output);
// - q_proj / k_proj rows permuted per head from HF's rotate-half RoPE layout (pairs i, i + d/2) to
//   llama.cpp's interleaved layout (pairs 2i, 2i + 1);
// - norms stored as F32 whatever the weight type; llama.* hyperparameters; a byte-level BPE vocabulary.
import { parseLlamaConfig, type LlamaConfig } from "./config.js";
import { loadCheckpoint } from "./checkpoint.js";
import { f32ToBf16, f32ToF16 } from "./half.js";
import { toFloat32, type StTensor } from "./safetensors.js";
import { writeGguf, type GgmlType, type GgufTensor, type GgufValue } from "./gguf.js";

export type GgufWeightType = "f32" | "f16" | "bf16";

/** GGUF token types (llama.cpp's llama_token_type / gguf TokenType). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface ExportLlamaOptions {
  config: LlamaConfig;
  tensors: Map<string, StTensor>;
  /** tokenizer.json text of a byte-level BPE; without it a placeholder byte-level vocabulary is written. */
  tokenizerJson?: string | null;
  /** Type of 2-D weights (norms stay f32). Default "f32". */
  weightType?: GgufWeightType;
  name?: string;
  /** llama.cpp pre-tokenizer name; default derived from tokenizer.json ("gpt-2" for ByteLevel with its regex). */
  preTokenizer?: string;
  /** Whether llama.cpp should prepend BOS when it tokenizes text. Default: true when bos_token_id is set. */
  addBos?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Tensors

function toF32(t: StTensor, name: string): Float32Array {
  return toFloat32(t, `gguf export: tensor "${name}"`);
}

function convert(t: StTensor, name: string, want: GgmlType): Float32Array | Uint16Array {
  if (want === t.dtype) return t.data as Float32Array | Uint16Array;
  const f = toF32(t, name);
  return want === "F32" ? f : want === "F16" ? f32ToF16(f) : f32ToBf16(f);
}

/**
 * HF -> llama.cpp row order for q/k: within each head of headDim rows, output row 2i + j takes input row
 * j * headDim / 2 + i (j in {0, 1}). Same as convert_hf_to_gguf's permute(w, n_head, n_head_kv).
 */
export function permuteQK<T extends Float32Array | Uint16Array>(
  data: T,
  rows: number,
  cols: number,
  nHeads: number,
): T {
  if (rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0)
    throw new Error(`gguf export: cannot permute ${rows} rows into ${nHeads} heads of even width`);
  const hd = rows / nHeads;
  const half = hd / 2;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols;
        const dst = (h * hd + 2 * i + j) * cols;
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

function llamaTensors(cfg: LlamaConfig, tensors: Map<string, StTensor>, wtype: GgmlType): GgufTensor[] {
  const used = new Set<string>();
  const out: GgufTensor[] = [];
  const take = (
    hf: string,
    gg: string,
    shape: number[],
    opts: { norm?: boolean; permuteHeads?: number } = {},
  ): void => {
    const t = tensors.get(hf);
    if (t === undefined) throw new Error(`gguf export: missing tensor "${hf}"`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `gguf export: tensor "${hf}" has shape [${t.shape.join(", ")}], config expects [${shape.join(", ")}]`,
      );
    }
    used.add(hf);
    const type: GgmlType = opts.norm === true ? "F32" : wtype;
    let data = convert(t, hf, type);
    if (opts.permuteHeads !== undefined) data = permuteQK(data, shape[0], shape[1], opts.permuteHeads);
    out.push({ name: gg, type, shape: shape.slice(), data });
  };
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const ff = cfg.intermediate_size;
  take("model.embed_tokens.weight", "token_embd.weight", [cfg.vocab_size, h]);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    take(p + "input_layernorm.weight", b + "attn_norm.weight", [h], { norm: true });
    take(p + "self_attn.q_proj.weight", b + "attn_q.weight", [q, h], {
      permuteHeads: cfg.num_attention_heads,
    });
    take(p + "self_attn.k_proj.weight", b + "attn_k.weight", [kv, h], {
      permuteHeads: cfg.num_key_value_heads,
    });
    take(p + "self_attn.v_proj.weight", b + "attn_v.weight", [kv, h]);
    take(p + "self_attn.o_proj.weight", b + "attn_output.weight", [h, q]);
    take(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", [h], { norm: true });
    take(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", [ff, h]);
    take(p + "mlp.up_proj.weight", b + "ffn_up.weight", [ff, h]);
    take(p + "mlp.down_proj.weight", b + "ffn_down.weight", [h, ff]);
  }
  take("model.norm.weight", "output_norm.weight", [h], { norm: true });
  // Tied embeddings: llama.cpp falls back to token_embd when output.weight is absent.
  if (!cfg.tie_word_embeddings) take("lm_head.weight", "output.weight", [cfg.vocab_size, h]);
  else if (tensors.has("lm_head.weight")) used.add("lm_head.weight");
  for (const name of tensors.keys()) {
    // Rotary caches some exporters save are derived data; anything else unknown is an error.
    if (!used.has(name) && !name.endsWith("rotary_emb.inv_freq"))
      throw new Error(`gguf export: tensor "${name}" has no llama.cpp counterpart`);
  }
  if (cfg.attention_bias || cfg.mlp_bias)
    throw new Error("gguf export: attention_bias / mlp_bias are not supported");
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer

/** GPT-2's byte -> printable unicode character table used by byte-level BPE vocabularies. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  return table;
}

interface HfAddedToken {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerVocab {
  tokens: string[];
  types: number[];
  merges: string[];
  pre: string;
}

function tokenizerVocab(
  json: string | null | undefined,
  vocabSize: number,
  preOverride?: string,
): TokenizerVocab {
  const tokens: (string | undefined)[] = new Array<string | undefined>(vocabSize).fill(undefined);
  const types: number[] = new Array<number>(vocabSize).fill(TOKEN_TYPE.normal);
  let merges: string[] = [];
  let pre = preOverride ?? "gpt-2";
  if (json === null || json === undefined) {
    // Placeholder: the 256 byte tokens (so llama.cpp can tokenize any text), the rest unused.
    const bytes = bytesToUnicode();
    for (let i = 0; i < Math.min(256, vocabSize); i++) tokens[i] = bytes[i];
  } else {
    let tj: {
      model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
      added_tokens?: HfAddedToken[];
      pre_tokenizer?: { type?: string; use_regex?: boolean } | null;
    };
    try {
      tj = JSON.parse(json) as typeof tj;
    } catch (e) {
      throw new Error(`gguf export: tokenizer.json is not valid JSON (${(e as Error).message})`);
    }
    const model = tj.model;
    if (model?.type !== "BPE" || model.vocab === undefined)
      throw new Error(
        `gguf export: tokenizer.json model must be a BPE with a vocab (got ${String(model?.type)})`,
      );
    const put = (id: number, text: string, what: string): void => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new Error(
          `gguf export: ${what} "${text}" has id ${id} outside the model's vocab_size ${vocabSize}`,
        );
      tokens[id] = text;
    };
    for (const [text, id] of Object.entries(model.vocab)) put(id, text, "token");
    for (const a of tj.added_tokens ?? []) {
      put(a.id, a.content, "added token");
      types[a.id] = a.special === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    }
    merges = (model.merges ?? []).map((m) => (typeof m === "string" ? m : `${m[0]} ${m[1]}`));
    if (preOverride === undefined) {
      const pt = tj.pre_tokenizer;
      pre = pt?.type === "ByteLevel" && pt.use_regex !== false ? "gpt-2" : "default";
    }
  }
  const out: string[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = tokens[i];
    if (t === undefined) {
      out.push(`[PAD${i}]`); // as convert_hf_to_gguf pads a vocab smaller than the embedding
      types[i] = TOKEN_TYPE.unused;
    } else out.push(t);
  }
  return { tokens: out, types, merges, pre };
}

// ---------------------------------------------------------------------------------------------------------
// Metadata and export

function u32(value: number): GgufValue {
  return { type: "u32", value };
}

export function llamaGgufMetadata(opts: ExportLlamaOptions): Map<string, GgufValue> {
  const cfg = opts.config;
  const wt = opts.weightType ?? "f32";
  const m = new Map<string, GgufValue>();
  m.set("general.architecture", { type: "string", value: "llama" });
  m.set("general.type", { type: "string", value: "model" });
  m.set("general.name", { type: "string", value: opts.name ?? "refrag-decoder" });
  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_BF16 = 32
  m.set("general.file_type", u32(wt === "f32" ? 0 : wt === "f16" ? 1 : 32));
  m.set("general.alignment", u32(32));
  m.set("llama.vocab_size", u32(cfg.vocab_size));
  m.set("llama.context_length", u32(cfg.max_position_embeddings));
  m.set("llama.embedding_length", u32(cfg.hidden_size));
  m.set("llama.block_count", u32(cfg.num_hidden_layers));
  m.set("llama.feed_forward_length", u32(cfg.intermediate_size));
  m.set("llama.rope.dimension_count", u32(cfg.head_dim));
  m.set("llama.attention.head_count", u32(cfg.num_attention_heads));
  m.set("llama.attention.head_count_kv", u32(cfg.num_key_value_heads));
  if (cfg.head_dim * cfg.num_attention_heads !== cfg.hidden_size) {
    m.set("llama.attention.key_length", u32(cfg.head_dim));
    m.set("llama.attention.value_length", u32(cfg.head_dim));
  }
  m.set("llama.attention.layer_norm_rms_epsilon", { type: "f32", value: cfg.rms_norm_eps });
  m.set("llama.rope.freq_base", { type: "f32", value: cfg.rope_theta });
  if (cfg.rope_scaling !== null) throw new Error("gguf export: rope_scaling is not supported");

  const voc = tokenizerVocab(opts.tokenizerJson, cfg.vocab_size, opts.preTokenizer);
  m.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  m.set("tokenizer.ggml.pre", { type: "string", value: voc.pre });
  m.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: voc.tokens });
  m.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: voc.types });
  m.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: voc.merges });
  const eos = Array.isArray(cfg.eos_token_id) ? cfg.eos_token_id[0] : cfg.eos_token_id;
  if (cfg.bos_token_id !== null && cfg.bos_token_id < cfg.vocab_size)
    m.set("tokenizer.ggml.bos_token_id", u32(cfg.bos_token_id));
  if (eos !== null && eos !== undefined && eos < cfg.vocab_size)
    m.set("tokenizer.ggml.eos_token_id", u32(eos));
  if (cfg.pad_token_id !== null && cfg.pad_token_id < cfg.vocab_size)
    m.set("tokenizer.ggml.padding_token_id", u32(cfg.pad_token_id));
  m.set("tokenizer.ggml.add_bos_token", { type: "bool", value: opts.addBos ?? cfg.bos_token_id !== null });
  m.set("tokenizer.ggml.add_eos_token", { type: "bool", value: false });
  return m;
}

/** Build the GGUF metadata and tensors for a LLaMA (no file written). */
export function llamaToGguf(opts: ExportLlamaOptions): {
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
} {
  const wt = opts.weightType ?? "f32";
  const type: GgmlType = wt === "f32" ? "F32" : wt === "f16" ? "F16" : "BF16";
  return { metadata: llamaGgufMetadata(opts), tensors: llamaTensors(opts.config, opts.tensors, type) };
}

export async function exportLlamaGguf(outPath: string, opts: ExportLlamaOptions): Promise<void> {
  const { metadata, tensors } = llamaToGguf(opts);
  await writeGguf(outPath, metadata, tensors);
}

/** Export a checkpoint folder (config.json model_type "llama" + model.safetensors [+ tokenizer.json]). */
export async function exportCheckpointToGguf(
  dir: string,
  outPath: string,
  opts: Omit<ExportLlamaOptions, "config" | "tensors" | "tokenizerJson"> = {},
): Promise<void> {
  const ck = await loadCheckpoint(dir);
  const config = parseLlamaConfig(ck.rawConfig, `${dir}/config.json`);
  await exportLlamaGguf(outPath, { ...opts, config, tensors: ck.tensors, tokenizerJson: ck.tokenizerJson });
}
