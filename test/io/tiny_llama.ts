// A tiny LLaMA in Hugging Face layout, shared by the io tests.
import type { Rng } from "../../src/engine/random.js";
import type { LlamaConfig } from "../../src/io/config.js";
import type { StTensor } from "../../src/io/safetensors.js";

// A config.json as transformers 4.x writes it for LlamaForCausalLM (fields and order as written there).
export const HF_LLAMA_CONFIG = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 16,
  initializer_range: 0.02,
  intermediate_size: 40,
  max_position_embeddings: 128,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 4,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  torch_dtype: "float32",
  transformers_version: "4.44.2",
  use_cache: true,
  vocab_size: 50,
};

/** Tensors with the exact names LlamaForCausalLM's state dict uses. */
export function hfLlamaTensors(cfg: LlamaConfig, rng: Rng): Map<string, StTensor> {
  const t = new Map<string, StTensor>();
  const add = (name: string, shape: number[]): void => {
    let n = 1;
    for (const d of shape) n *= d;
    t.set(name, { dtype: "F32", shape, data: rng.randn(n, 0.1) });
  };
  const h = cfg.hidden_size;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  add("model.embed_tokens.weight", [cfg.vocab_size, h]);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + "self_attn.q_proj.weight", [cfg.num_attention_heads * cfg.head_dim, h]);
    add(p + "self_attn.k_proj.weight", [kv, h]);
    add(p + "self_attn.v_proj.weight", [kv, h]);
    add(p + "self_attn.o_proj.weight", [h, cfg.num_attention_heads * cfg.head_dim]);
    add(p + "mlp.gate_proj.weight", [cfg.intermediate_size, h]);
    add(p + "mlp.up_proj.weight", [cfg.intermediate_size, h]);
    add(p + "mlp.down_proj.weight", [h, cfg.intermediate_size]);
    add(p + "input_layernorm.weight", [h]);
    add(p + "post_attention_layernorm.weight", [h]);
  }
  add("model.norm.weight", [h]);
  if (!cfg.tie_word_embeddings) add("lm_head.weight", [cfg.vocab_size, h]);
  return t;
}

/** Special tokens of the tiny tokenizer, ids 0..2. */
export const TINY_SPECIALS = ["<s>", "</s>", "<pad>"];

/** A few merges (left, right) over GPT-2's byte alphabet ("Ġ" is the space byte). */
const TINY_MERGES: [string, string][] = [
  ["h", "e"],
  ["t", "he"],
  ["Ġ", "the"],
  ["i", "n"],
  ["e", "r"],
  ["Ġ", "a"],
  ["o", "n"],
  ["r", "e"],
  ["Ġ", "w"],
  ["o", "r"],
  ["l", "d"],
  ["Ġw", "or"],
  ["Ġwor", "ld"],
  ["l", "l"],
  ["e", "ll"],
  ["H", "ell"],
  ["Hell", "o"],
  ["Ġ", "c"],
  ["Ġc", "on"],
  ["a", "t"],
];

/**
 * A minimal but complete byte-level BPE tokenizer.json (Hugging Face format): specials, the 256 byte
 * tokens, then one token per merge.
 */
export function tinyTokenizerJson(byteTable: string[]): string {
  const vocab: Record<string, number> = {};
  let id = TINY_SPECIALS.length;
  for (const ch of byteTable) vocab[ch] = id++;
  for (const [a, b] of TINY_MERGES) vocab[a + b] = id++;
  const added = TINY_SPECIALS.map((content, i) => ({
    id: i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return (
    JSON.stringify(
      {
        version: "1.0",
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: {
          type: "BPE",
          dropout: null,
          unk_token: null,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          ignore_merges: false,
          vocab,
          merges: TINY_MERGES.map(([a, b]) => `${a} ${b}`),
        },
      },
      null,
      2,
    ) + "\n"
  );
}

/** Number of tokens the tiny tokenizer defines (the model's vocab_size may be larger: padded rows). */
export const TINY_TOKENIZER_SIZE = 3 + 256 + 20;
