// Random LLaMA weights in Hugging Face layout, and a command that writes them as a checkpoint folder plus
// GGUF exports, so llama.cpp and the project's decoder can be timed on the same weights.
//
// Usage: node random_llama.mjs --out DIR [--hidden 512] [--layers 4] [--heads 8] [--kv-heads 8] [--ff 1376]
//                              [--vocab 8192] [--types f32,bf16] [--seed 1]
//   writes DIR/checkpoint/{config.json,model.safetensors} and DIR/model-<type>.gguf
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Rng } from "../../dist/src/engine/random.js";
import { saveCheckpoint } from "../../dist/src/io/checkpoint.js";
import { parseLlamaConfig } from "../../dist/src/io/config.js";
import { exportCheckpointToGguf } from "../../dist/src/io/gguf_llama.js";
import { f32ToBf16, f32ToF16 } from "../../dist/src/io/half.js";

/** Random weights with a peaked output distribution (so the top-10 order is well separated). */
export function randomLlamaTensors(cfg, rng, dtype) {
  const t = new Map();
  const add = (name, shape, std, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    // Stds were tuned at width 64; scale by fan-in so wider random models keep similar activations.
    const fanIn = shape.length === 2 && !name.includes("embed_tokens") ? shape[1] : 64;
    const f = rng.randn(n, std * Math.sqrt(64 / fanIn));
    if (mean !== 0) for (let i = 0; i < n; i++) f[i] += mean;
    const is1d = shape.length === 1;
    const data = dtype === "F32" || is1d ? f : dtype === "F16" ? f32ToF16(f) : f32ToBf16(f);
    t.set(name, { dtype: is1d ? "F32" : dtype, shape, data });
  };
  const H = cfg.hidden_size;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  add("model.embed_tokens.weight", [cfg.vocab_size, H], 1);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + "input_layernorm.weight", [H], 0.1, 1);
    add(p + "self_attn.q_proj.weight", [H, H], 0.35);
    add(p + "self_attn.k_proj.weight", [kv, H], 0.35);
    add(p + "self_attn.v_proj.weight", [kv, H], 0.2);
    add(p + "self_attn.o_proj.weight", [H, H], 0.2);
    add(p + "post_attention_layernorm.weight", [H], 0.1, 1);
    add(p + "mlp.gate_proj.weight", [cfg.intermediate_size, H], 0.2);
    add(p + "mlp.up_proj.weight", [cfg.intermediate_size, H], 0.2);
    add(p + "mlp.down_proj.weight", [H, cfg.intermediate_size], 0.1);
  }
  add("model.norm.weight", [H], 0.1, 1);
  if (!cfg.tie_word_embeddings) add("lm_head.weight", [cfg.vocab_size, H], 0.4);
  return t;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a } = parseArgs({
    options: {
      out: { type: "string" },
      hidden: { type: "string", default: "512" },
      layers: { type: "string", default: "4" },
      heads: { type: "string", default: "8" },
      "kv-heads": { type: "string" },
      ff: { type: "string" },
      vocab: { type: "string", default: "8192" },
      ctx: { type: "string", default: "16384" },
      types: { type: "string", default: "f32,bf16" },
      seed: { type: "string", default: "1" },
    },
  });
  if (a.out === undefined) {
    console.error(
      "usage: node random_llama.mjs --out DIR [--hidden H] [--layers L] [--heads N] [--kv-heads K] [--ff F] [--vocab V] [--types f32,bf16]",
    );
    process.exit(2);
  }
  const hidden = Number(a.hidden);
  const raw = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: hidden,
    intermediate_size: Number(a.ff ?? Math.round((hidden * 8) / 3 / 8) * 8),
    num_hidden_layers: Number(a.layers),
    num_attention_heads: Number(a.heads),
    num_key_value_heads: Number(a["kv-heads"] ?? a.heads),
    max_position_embeddings: Number(a.ctx),
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    vocab_size: Number(a.vocab),
    tie_word_embeddings: false,
    bos_token_id: 0,
    eos_token_id: 1,
    torch_dtype: "float32",
  };
  const cfg = parseLlamaConfig(raw);
  const ck = join(a.out, "checkpoint");
  await saveCheckpoint(ck, { config: raw, tensors: randomLlamaTensors(cfg, new Rng(Number(a.seed)), "F32") });
  for (const type of a.types.split(",")) {
    const path = join(a.out, `model-${type}.gguf`);
    await exportCheckpointToGguf(ck, path, { weightType: type, name: `refrag-random-${type}` });
    console.log(path);
  }
  console.log(ck);
}
