// The tensor names and shapes a config implies, computed without building the model: loaders compare
// them with a weights file's header before allocating anything (a few bytes of config.json must not be
// able to ask for gigabytes). Names are the Hugging Face names the modules' fields produce; a test checks
// these tables against the constructed modules, so the two cannot drift apart.
import type {
  LlamaConfig,
  RefragConfig,
  RefragPolicyConfig,
  RefragProjectorConfig,
  RobertaConfig,
} from "../io/config.js";

export type ShapeTable = Map<string, number[]>;

function linear(out: ShapeTable, name: string, inF: number, outF: number, bias: boolean): void {
  out.set(`${name}.weight`, [outF, inF]);
  if (bias) out.set(`${name}.bias`, [outF]);
}

function layerNorm(out: ShapeTable, name: string, dim: number): void {
  out.set(`${name}.weight`, [dim]);
  out.set(`${name}.bias`, [dim]);
}

/** LlamaForCausalLM. */
export function llamaShapes(c: LlamaConfig, prefix = ""): ShapeTable {
  const out: ShapeTable = new Map();
  const C = c.hidden_size;
  const D = c.head_dim;
  out.set(`${prefix}model.embed_tokens.weight`, [c.vocab_size, C]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}model.layers.${i}`;
    linear(out, `${l}.self_attn.q_proj`, C, c.num_attention_heads * D, c.attention_bias);
    linear(out, `${l}.self_attn.k_proj`, C, c.num_key_value_heads * D, c.attention_bias);
    linear(out, `${l}.self_attn.v_proj`, C, c.num_key_value_heads * D, c.attention_bias);
    linear(out, `${l}.self_attn.o_proj`, c.num_attention_heads * D, C, c.attention_bias);
    linear(out, `${l}.mlp.gate_proj`, C, c.intermediate_size, c.mlp_bias);
    linear(out, `${l}.mlp.up_proj`, C, c.intermediate_size, c.mlp_bias);
    linear(out, `${l}.mlp.down_proj`, c.intermediate_size, C, c.mlp_bias);
    out.set(`${l}.input_layernorm.weight`, [C]);
    out.set(`${l}.post_attention_layernorm.weight`, [C]);
  }
  out.set(`${prefix}model.norm.weight`, [C]);
  if (!c.tie_word_embeddings) out.set(`${prefix}lm_head.weight`, [c.vocab_size, C]);
  return out;
}

/** One RobertaLayer (also the policy's blocks). */
function robertaLayer(out: ShapeTable, l: string, C: number, I: number): void {
  for (const p of ["query", "key", "value"]) linear(out, `${l}.attention.self.${p}`, C, C, true);
  linear(out, `${l}.attention.output.dense`, C, C, true);
  layerNorm(out, `${l}.attention.output.LayerNorm`, C);
  linear(out, `${l}.intermediate.dense`, C, I, true);
  linear(out, `${l}.output.dense`, I, C, true);
  layerNorm(out, `${l}.output.LayerNorm`, C);
}

/** RobertaModel (the encoder body; RobertaForMaskedLM adds "roberta." and lm_head, see robertaMlmShapes). */
export function robertaShapes(c: RobertaConfig, prefix = ""): ShapeTable {
  const out: ShapeTable = new Map();
  const C = c.hidden_size;
  out.set(`${prefix}embeddings.word_embeddings.weight`, [c.vocab_size, C]);
  out.set(`${prefix}embeddings.position_embeddings.weight`, [c.max_position_embeddings, C]);
  out.set(`${prefix}embeddings.token_type_embeddings.weight`, [c.type_vocab_size, C]);
  layerNorm(out, `${prefix}embeddings.LayerNorm`, C);
  for (let i = 0; i < c.num_hidden_layers; i++)
    robertaLayer(out, `${prefix}encoder.layer.${i}`, C, c.intermediate_size);
  return out;
}

/** RobertaForMaskedLM. */
export function robertaMlmShapes(c: RobertaConfig): ShapeTable {
  const out = robertaShapes(c, "roberta.");
  linear(out, "lm_head.dense", c.hidden_size, c.hidden_size, true);
  layerNorm(out, "lm_head.layer_norm", c.hidden_size);
  out.set("lm_head.bias", [c.vocab_size]);
  return out;
}

export function projectorShapes(c: RefragProjectorConfig, prefix = ""): ShapeTable {
  const out: ShapeTable = new Map();
  linear(out, `${prefix}linear_1`, c.input_size, c.hidden_size, true);
  linear(out, `${prefix}linear_2`, c.hidden_size, c.output_size, true);
  return out;
}

export function policyShapes(c: RefragPolicyConfig, prefix = ""): ShapeTable {
  const out: ShapeTable = new Map();
  linear(out, `${prefix}input_proj`, c.input_size, c.hidden_size, true);
  out.set(`${prefix}position_embeddings.weight`, [c.max_chunks, c.hidden_size]);
  for (let i = 0; i < c.num_hidden_layers; i++)
    robertaLayer(out, `${prefix}layers.${i}`, c.hidden_size, c.intermediate_size);
  linear(out, `${prefix}score`, c.hidden_size, 1, true);
  return out;
}

/** RefragModel: encoder, projector, decoder and (when configured) the policy. */
export function refragShapes(c: RefragConfig): ShapeTable {
  const out: ShapeTable = new Map([
    ...robertaShapes(c.encoder, "encoder."),
    ...projectorShapes(c.projector, "projector."),
    ...llamaShapes(c.decoder, "decoder."),
  ]);
  if (c.policy !== null) for (const [n, s] of policyShapes(c.policy, "policy.")) out.set(n, s);
  return out;
}

/** Elements of every tensor in a table (what building the model would allocate, as float32 values). */
export function tableElements(t: ShapeTable): number {
  let n = 0;
  for (const s of t.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
