// REFRAG selection policy: a small bidirectional transformer over the chunk vectors of one context, one
// logit per chunk. A high logit means "expand this chunk back to raw tokens". Selection samples without
// replacement (a chosen chunk's logit becomes -inf), as in a pointer network.
import { add, reshape } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import type { Tensor } from "../engine/tensor.js";
import { Embedding, Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import type { RefragPolicyConfig } from "../io/config.js";
import { RobertaLayer, robertaConfig, type RobertaConfig } from "./roberta.js";

export type PolicyConfig = RefragPolicyConfig;

export function policyConfig(inputSize: number, hidden = 128, layers = 2, heads = 4): PolicyConfig {
  return {
    model_type: "refrag_policy",
    input_size: inputSize,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: 4 * hidden,
    max_chunks: 4096,
    layer_norm_eps: 1e-5,
  };
}

export class RefragPolicy extends Module {
  input_proj: Linear; // [hidden, input]
  position_embeddings: Embedding; // [max_chunks, hidden]: where a chunk sits matters, not only what it says
  layers: RobertaLayer[];
  score: Linear; // [1, hidden]

  constructor(
    readonly config: PolicyConfig,
    rng: Rng,
  ) {
    super();
    const block: RobertaConfig = robertaConfig({
      vocab_size: 1,
      hidden_size: config.hidden_size,
      num_hidden_layers: config.num_hidden_layers,
      num_attention_heads: config.num_attention_heads,
      intermediate_size: config.intermediate_size,
      layer_norm_eps: config.layer_norm_eps,
      max_position_embeddings: 8, // unused: the policy has no position table
    });
    this.input_proj = new Linear(config.input_size, config.hidden_size, rng, { bias: true });
    this.position_embeddings = new Embedding(config.max_chunks, config.hidden_size, rng);
    this.layers = Array.from({ length: config.num_hidden_layers }, () => new RobertaLayer(block, rng));
    this.score = new Linear(config.hidden_size, 1, rng, { bias: true });
  }

  /** Chunk vectors [L, input] of one context → logits [L]. */
  forward(chunks: Tensor): Tensor {
    const L = chunks.rows;
    if (L > this.config.max_chunks)
      throw new Error(`RefragPolicy: ${L} chunks exceed max_chunks ${this.config.max_chunks}`);
    const positions = Int32Array.from({ length: L }, (_, i) => i);
    let h = add(this.input_proj.forward(chunks), this.position_embeddings.forward(positions));
    const lengths = Int32Array.of(L);
    for (const layer of this.layers) h = layer.forward(h, 1, lengths);
    return reshape(this.score.forward(h), [L]);
  }
}
