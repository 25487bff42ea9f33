// RoBERTa encoder (Liu et al. 2019): learned absolute positions, post-LayerNorm blocks, GELU MLP,
// bidirectional attention with a padding mask. Field names follow Hugging Face's RobertaModel /
// RobertaForMaskedLM. REFRAG uses it to turn each chunk of k tokens into one vector (CLS or mean pooling),
// batched over many chunks at once.
//
// Shapes: B chunks (sequences), T tokens per chunk (padded), C hidden size, H heads, I intermediate, V vocab.
import { add, attention, gatherRows, gelu, linear, meanRows, sliceRows, concatRows } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import { Tensor } from "../engine/tensor.js";
import { Embedding, LayerNorm, Linear } from "../nn/layers.js";
import { Module, Parameter } from "../nn/module.js";
import { constParam } from "../nn/layers.js";
import { parseRobertaConfig, type RobertaConfig } from "../io/config.js";

export type { RobertaConfig } from "../io/config.js";

type RobertaConfigInput = Partial<RobertaConfig> &
  Pick<RobertaConfig, "vocab_size" | "hidden_size" | "num_hidden_layers" | "num_attention_heads">;

/** A full, validated RobertaConfig from the fields that matter (RoBERTa's usual values for the rest). */
export function robertaConfig(c: RobertaConfigInput): RobertaConfig {
  return parseRobertaConfig({
    intermediate_size: 4 * c.hidden_size,
    max_position_embeddings: 514,
    type_vocab_size: 1,
    layer_norm_eps: 1e-5,
    pad_token_id: 1,
    ...c,
    model_type: c.model_type ?? "roberta",
  });
}

/** What this implementation supports beyond what the config parser checks. */
export function validateRobertaConfig(c: RobertaConfig): void {
  if (c.hidden_act !== "gelu")
    throw new Error(`RobertaConfig: hidden_act "${c.hidden_act}" unsupported (exact gelu only)`);
}

class RobertaEmbeddings extends Module {
  word_embeddings: Embedding; // [V, C]
  position_embeddings: Embedding; // [P, C]
  token_type_embeddings: Embedding; // [types, C]
  LayerNorm: LayerNorm;

  constructor(
    readonly config: RobertaConfig,
    rng: Rng,
  ) {
    super();
    const std = config.initializer_range;
    this.word_embeddings = new Embedding(config.vocab_size, config.hidden_size, rng, std);
    this.position_embeddings = new Embedding(config.max_position_embeddings, config.hidden_size, rng, std);
    this.token_type_embeddings = new Embedding(config.type_vocab_size, config.hidden_size, rng, std);
    this.LayerNorm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
  }

  /** ids [B·T] with per-sequence lengths; positions count from pad_token_id + 1 as in Hugging Face. */
  forward(ids: Int32Array, B: number, T: number, lengths: Int32Array): Tensor {
    // RoBERTa numbers positions from pad_token_id + 1 (padding sits at pad_token_id); BERT from 0.
    const pad = this.config.pad_token_id;
    const first = this.config.model_type === "roberta" ? pad + 1 : 0;
    const positions = new Int32Array(B * T);
    const types = new Int32Array(B * T);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        positions[b * T + t] = t < lengths[b] ? first + t : this.config.model_type === "roberta" ? pad : 0;
    if (first + T > this.config.max_position_embeddings)
      throw new Error(
        `RobertaEmbeddings: ${T} tokens exceed max_position_embeddings ${this.config.max_position_embeddings} (first position ${first})`,
      );
    const h = add(
      add(this.word_embeddings.forward(ids), this.position_embeddings.forward(positions)),
      this.token_type_embeddings.forward(types),
    );
    return this.LayerNorm.forward(h);
  }
}

class RobertaSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  constructor(C: number, rng: Rng, std: number) {
    super();
    this.query = new Linear(C, C, rng, { bias: true, std });
    this.key = new Linear(C, C, rng, { bias: true, std });
    this.value = new Linear(C, C, rng, { bias: true, std });
  }
}

class RobertaDenseNorm extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  constructor(inDim: number, C: number, eps: number, rng: Rng, std: number) {
    super();
    this.dense = new Linear(inDim, C, rng, { bias: true, std });
    this.LayerNorm = new LayerNorm(C, eps);
  }
  /** LayerNorm(dense(x) + residual) */
  forward(x: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(add(this.dense.forward(x), residual));
  }
}

class RobertaAttention extends Module {
  self: RobertaSelfAttention;
  output: RobertaDenseNorm;
  constructor(
    readonly config: RobertaConfig,
    rng: Rng,
  ) {
    super();
    const std = config.initializer_range;
    this.self = new RobertaSelfAttention(config.hidden_size, rng, std);
    this.output = new RobertaDenseNorm(
      config.hidden_size,
      config.hidden_size,
      config.layer_norm_eps,
      rng,
      std,
    );
  }
  forward(x: Tensor, B: number, lengths: Int32Array): Tensor {
    const H = this.config.num_attention_heads;
    const q = this.self.query.forward(x);
    const k = this.self.key.forward(x);
    const v = this.self.value.forward(x);
    const a = attention(q, k, v, { batch: B, heads: H, kvHeads: H, causal: false, kvLen: lengths });
    return this.output.forward(a, x);
  }
}

class RobertaIntermediate extends Module {
  dense: Linear;
  constructor(C: number, I: number, rng: Rng, std: number) {
    super();
    this.dense = new Linear(C, I, rng, { bias: true, std });
  }
}

export class RobertaLayer extends Module {
  attention: RobertaAttention;
  intermediate: RobertaIntermediate;
  output: RobertaDenseNorm;
  constructor(config: RobertaConfig, rng: Rng) {
    super();
    const std = config.initializer_range;
    this.attention = new RobertaAttention(config, rng);
    this.intermediate = new RobertaIntermediate(config.hidden_size, config.intermediate_size, rng, std);
    this.output = new RobertaDenseNorm(
      config.intermediate_size,
      config.hidden_size,
      config.layer_norm_eps,
      rng,
      std,
    );
  }
  /** x: [B·T, C] with per-sequence valid lengths (keys beyond are masked). */
  forward(x: Tensor, B: number, lengths: Int32Array): Tensor {
    const h = this.attention.forward(x, B, lengths);
    return this.output.forward(gelu(this.intermediate.dense.forward(h)), h);
  }
}

class RobertaEncoder extends Module {
  layer: RobertaLayer[];
  constructor(config: RobertaConfig, rng: Rng) {
    super();
    this.layer = Array.from({ length: config.num_hidden_layers }, () => new RobertaLayer(config, rng));
  }
}

export type Pooling = "cls" | "mean";

/** A batch of token sequences, right-padded to the same length T. */
export interface EncoderBatch {
  ids: Int32Array; // [B·T]
  lengths: Int32Array; // [B], each in [1, T]
  B: number;
  T: number;
}

/** Right-pad sequences into one batch with the pad id. */
export function padBatch(sequences: Int32Array[], padId: number): EncoderBatch {
  const B = sequences.length;
  if (B === 0) throw new Error("padBatch: no sequences");
  let T = 0;
  for (const s of sequences) T = Math.max(T, s.length);
  if (T === 0) throw new Error("padBatch: every sequence is empty");
  const ids = new Int32Array(B * T).fill(padId);
  const lengths = new Int32Array(B);
  sequences.forEach((s, b) => {
    if (s.length === 0) throw new Error(`padBatch: sequence ${b} is empty`);
    ids.set(s, b * T);
    lengths[b] = s.length;
  });
  return { ids, lengths, B, T };
}

export class RobertaModel extends Module {
  embeddings: RobertaEmbeddings;
  encoder: RobertaEncoder;

  constructor(
    readonly config: RobertaConfig,
    rng: Rng,
  ) {
    super();
    validateRobertaConfig(config);
    this.embeddings = new RobertaEmbeddings(config, rng);
    this.encoder = new RobertaEncoder(config, rng);
  }

  /** Last hidden states [B·T, C] (padding rows hold values but are never attended to). */
  forward(batch: EncoderBatch): Tensor {
    const { ids, lengths, B, T } = batch;
    if (ids.length !== B * T || lengths.length !== B)
      throw new Error(
        `RobertaModel.forward: ids ${ids.length} / lengths ${lengths.length} do not match B=${B}, T=${T}`,
      );
    let h = this.embeddings.forward(ids, B, T, lengths);
    for (const layer of this.encoder.layer) h = layer.forward(h, B, lengths);
    return h;
  }

  /** One vector per sequence [B, C]: the first token's state (CLS) or the mean over valid tokens. */
  pool(hidden: Tensor, batch: EncoderBatch, pooling: Pooling): Tensor {
    const { B, T, lengths } = batch;
    if (pooling === "cls") {
      const rows = new Int32Array(B);
      for (let b = 0; b < B; b++) rows[b] = b * T;
      return gatherRows(hidden, rows);
    }
    const means: Tensor[] = [];
    for (let b = 0; b < B; b++) means.push(meanRows(sliceRows(hidden, b * T, b * T + lengths[b])));
    return concatRows(means);
  }

  encode(batch: EncoderBatch, pooling: Pooling): Tensor {
    return this.pool(this.forward(batch), batch, pooling);
  }
}

class RobertaLMHead extends Module {
  dense: Linear; // [C, C]
  layer_norm: LayerNorm;
  bias: Parameter; // [V]; the decoder weight is tied to the word embeddings
  constructor(config: RobertaConfig, rng: Rng) {
    super();
    const std = config.initializer_range;
    this.dense = new Linear(config.hidden_size, config.hidden_size, rng, { bias: true, std });
    this.layer_norm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.bias = constParam([config.vocab_size], 0);
  }
}

/** RoBERTa with its masked-language-model head (pre-training the encoder). */
export class RobertaForMaskedLM extends Module {
  roberta: RobertaModel;
  lm_head: RobertaLMHead;
  constructor(
    readonly config: RobertaConfig,
    rng: Rng,
  ) {
    super();
    this.roberta = new RobertaModel(config, rng);
    this.lm_head = new RobertaLMHead(config, rng);
  }

  /** Vocabulary logits [B·T, V]. */
  forward(batch: EncoderBatch): Tensor {
    const h = this.roberta.forward(batch);
    const x = this.lm_head.layer_norm.forward(gelu(this.lm_head.dense.forward(h)));
    return linear(x, this.roberta.embeddings.word_embeddings.weight, this.lm_head.bias);
  }
}
