// Model config.json files: Hugging Face LlamaConfig and RobertaConfig (BERT too), and our own REFRAG parts.
// Each parser keeps field names as Hugging Face writes them (snake_case), fills in transformers' defaults and
// validates; the raw object is kept beside the typed view so a config round-trips as written.
import { readFile } from "node:fs/promises";

export type JsonObject = Record<string, unknown>;

export interface LlamaConfig {
  model_type: "llama";
  architectures: string[];
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Width of one attention head (transformers: hidden_size / num_attention_heads unless given). */
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  initializer_range: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: JsonObject | null;
  attention_bias: boolean;
  mlp_bias: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  torch_dtype: string;
}

export interface RobertaConfig {
  /** "roberta" (positions offset by pad_token_id + 1) or "bert" (positions from 0). */
  model_type: "roberta" | "bert";
  architectures: string[];
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  initializer_range: number;
  layer_norm_eps: number;
  position_embedding_type: string;
  pad_token_id: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  torch_dtype: string;
}

/** Projector: encoder width -> hidden_size -> output_size (2-layer MLP). */
export interface RefragProjectorConfig {
  model_type: "refrag_projector";
  input_size: number;
  hidden_size: number;
  output_size: number;
  hidden_act: string;
}

/** Selection policy: a small transformer over chunk vectors, one logit per chunk. */
export interface RefragPolicyConfig {
  model_type: "refrag_policy";
  input_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_chunks: number;
  layer_norm_eps: number;
}

/** The composite: sub-configs as plain objects (each parsed by its own parser) plus REFRAG's own knobs. */
export interface RefragConfig {
  model_type: "refrag";
  /** Tokens per compressed chunk (k in the paper). */
  chunk_size: number;
  encoder: RobertaConfig;
  decoder: LlamaConfig;
  projector: RefragProjectorConfig;
  policy: RefragPolicyConfig | null;
}

export type ModelConfig =
  | LlamaConfig
  | RobertaConfig
  | RefragProjectorConfig
  | RefragPolicyConfig
  | RefragConfig;

// ---------------------------------------------------------------------------------------------------------
// Field readers: each names the source file and field in its error.

/** More layers than any model has: a bound that keeps per-layer tables (names, shapes) small. */
export const MAX_LAYERS = 4096;

class Fields {
  constructor(
    readonly raw: JsonObject,
    readonly source: string,
  ) {}

  fail(msg: string): never {
    throw new Error(`config ${this.source}: ${msg}`);
  }

  private get(key: string): unknown {
    return this.raw[key];
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  int(key: string, def?: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(`missing required field "${key}"`);
      return def;
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v))
      this.fail(`"${key}" must be an integer, got ${JSON.stringify(v)}`);
    if (v < min) this.fail(`"${key}" must be >= ${min}, got ${v}`);
    if (v > max) this.fail(`"${key}" must be <= ${max}, got ${v}`);
    return v;
  }

  num(key: string, def?: number, positive = false): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(`missing required field "${key}"`);
      return def;
    }
    if (typeof v !== "number" || !Number.isFinite(v))
      this.fail(`"${key}" must be a finite number, got ${JSON.stringify(v)}`);
    if (positive && v <= 0) this.fail(`"${key}" must be > 0, got ${v}`);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== "boolean") this.fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(key: string, def?: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(`missing required field "${key}"`);
      return def;
    }
    if (typeof v !== "string") this.fail(`"${key}" must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  optInt(key: string, def: number | null): number | null {
    const v = this.get(key);
    if (v === undefined) return def;
    if (v === null) return null;
    return this.int(key);
  }

  strList(key: string, def: string[]): string[] {
    const v = this.get(key);
    if (v === undefined || v === null) return def;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string"))
      this.fail(`"${key}" must be a list of strings`);
    return (v as string[]).slice();
  }

  obj(key: string): JsonObject | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== "object" || Array.isArray(v)) this.fail(`"${key}" must be an object`);
    return v as JsonObject;
  }

  modelType(...allowed: string[]): string {
    const t = this.get("model_type");
    if (t === undefined)
      this.fail(`missing "model_type" (expected ${allowed.map((a) => `"${a}"`).join(" or ")})`);
    if (typeof t !== "string" || !allowed.includes(t))
      this.fail(`model_type ${JSON.stringify(t)} is not ${allowed.map((a) => `"${a}"`).join(" or ")}`);
    return t;
  }
}

function asObject(raw: unknown, source: string): JsonObject {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new Error(`config ${source}: not a JSON object`);
  return raw as JsonObject;
}

/** Special token ids index the embedding table: each must be below vocab_size. */
function checkTokenIds(f: Fields, vocab: number, ids: Record<string, number | number[] | null>): void {
  for (const [key, v] of Object.entries(ids))
    for (const id of v === null ? [] : Array.isArray(v) ? v : [v])
      if (id >= vocab) f.fail(`"${key}" ${id} is not below vocab_size ${vocab}`);
}

function checkHeads(f: Fields, width: number, heads: number, what = "hidden_size"): void {
  if (heads < 1) f.fail(`num_attention_heads must be >= 1, got ${heads}`);
  if (width % heads !== 0) f.fail(`${what} ${width} is not divisible by num_attention_heads ${heads}`);
}

// ---------------------------------------------------------------------------------------------------------
// Parsers (defaults as in transformers' LlamaConfig / RobertaConfig / BertConfig)

export function parseLlamaConfig(raw: unknown, source = "config.json"): LlamaConfig {
  const f = new Fields(asObject(raw, source), source);
  f.modelType("llama");
  const hidden = f.int("hidden_size", undefined, 1);
  const heads = f.int("num_attention_heads", undefined, 1);
  const kvHeads = f.int("num_key_value_heads", heads, 1);
  const headDim = f.has("head_dim")
    ? f.int("head_dim", undefined, 1)
    : (checkHeads(f, hidden, heads), hidden / heads);
  if (heads % kvHeads !== 0)
    f.fail(`num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}`);
  if (headDim % 2 !== 0) f.fail(`head_dim ${headDim} must be even for rotary embeddings`);
  const eos = f.raw.eos_token_id;
  let eosId: number | number[] | null;
  if (eos === undefined) eosId = 2;
  else if (eos === null) eosId = null;
  else if (Array.isArray(eos)) {
    if (!eos.every((x) => Number.isSafeInteger(x) && x >= 0))
      f.fail(`"eos_token_id" must be an integer or a list of integers`);
    eosId = eos.slice() as number[];
  } else eosId = f.int("eos_token_id");
  const cfg: LlamaConfig = {
    model_type: "llama",
    architectures: f.strList("architectures", ["LlamaForCausalLM"]),
    vocab_size: f.int("vocab_size", undefined, 1),
    hidden_size: hidden,
    intermediate_size: f.int("intermediate_size", undefined, 1),
    num_hidden_layers: f.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    hidden_act: f.str("hidden_act", "silu"),
    max_position_embeddings: f.int("max_position_embeddings", 2048, 1),
    initializer_range: f.num("initializer_range", 0.02),
    rms_norm_eps: f.num("rms_norm_eps", 1e-6, true),
    rope_theta: f.num("rope_theta", 10000, true),
    rope_scaling: f.obj("rope_scaling"),
    attention_bias: f.bool("attention_bias", false),
    mlp_bias: f.bool("mlp_bias", false),
    tie_word_embeddings: f.bool("tie_word_embeddings", false),
    bos_token_id: f.optInt("bos_token_id", 1),
    eos_token_id: eosId,
    pad_token_id: f.optInt("pad_token_id", null),
    torch_dtype: f.str("torch_dtype", "float32"),
  };
  if (cfg.hidden_act !== "silu")
    f.fail(`hidden_act "${cfg.hidden_act}" is not supported (LLaMA uses "silu")`);
  checkTokenIds(f, cfg.vocab_size, {
    bos_token_id: cfg.bos_token_id,
    eos_token_id: cfg.eos_token_id,
    pad_token_id: cfg.pad_token_id,
  });
  return cfg;
}

export function parseRobertaConfig(raw: unknown, source = "config.json"): RobertaConfig {
  const f = new Fields(asObject(raw, source), source);
  const type = f.modelType("roberta", "bert") as "roberta" | "bert";
  const roberta = type === "roberta";
  const hidden = f.int("hidden_size", undefined, 1);
  const heads = f.int("num_attention_heads", undefined, 1);
  checkHeads(f, hidden, heads);
  const cfg: RobertaConfig = {
    model_type: type,
    architectures: f.strList("architectures", [roberta ? "RobertaModel" : "BertModel"]),
    vocab_size: f.int("vocab_size", undefined, 1),
    hidden_size: hidden,
    num_hidden_layers: f.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    num_attention_heads: heads,
    intermediate_size: f.int("intermediate_size", undefined, 1),
    hidden_act: f.str("hidden_act", "gelu"),
    hidden_dropout_prob: f.num("hidden_dropout_prob", 0.1),
    attention_probs_dropout_prob: f.num("attention_probs_dropout_prob", 0.1),
    max_position_embeddings: f.int("max_position_embeddings", 512, 1),
    type_vocab_size: f.int("type_vocab_size", 2, 0),
    initializer_range: f.num("initializer_range", 0.02),
    layer_norm_eps: f.num("layer_norm_eps", 1e-12, true),
    position_embedding_type: f.str("position_embedding_type", "absolute"),
    pad_token_id: f.int("pad_token_id", roberta ? 1 : 0),
    bos_token_id: f.optInt("bos_token_id", roberta ? 0 : null),
    eos_token_id: f.optInt("eos_token_id", roberta ? 2 : null),
    torch_dtype: f.str("torch_dtype", "float32"),
  };
  if (!["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"].includes(cfg.hidden_act))
    f.fail(`hidden_act "${cfg.hidden_act}" is not supported`);
  if (cfg.position_embedding_type !== "absolute")
    f.fail(`position_embedding_type "${cfg.position_embedding_type}" is not supported (only "absolute")`);
  if (roberta && cfg.max_position_embeddings <= cfg.pad_token_id + 1) {
    f.fail(
      `max_position_embeddings ${cfg.max_position_embeddings} leaves no positions after the pad offset ${cfg.pad_token_id + 1}`,
    );
  }
  return cfg;
}

export function parseProjectorConfig(raw: unknown, source = "config.json"): RefragProjectorConfig {
  const f = new Fields(asObject(raw, source), source);
  f.modelType("refrag_projector");
  return {
    model_type: "refrag_projector",
    input_size: f.int("input_size", undefined, 1),
    hidden_size: f.int("hidden_size", undefined, 1),
    output_size: f.int("output_size", undefined, 1),
    hidden_act: f.str("hidden_act", "silu"),
  };
}

export function parsePolicyConfig(raw: unknown, source = "config.json"): RefragPolicyConfig {
  const f = new Fields(asObject(raw, source), source);
  f.modelType("refrag_policy");
  const hidden = f.int("hidden_size", undefined, 1);
  const heads = f.int("num_attention_heads", undefined, 1);
  checkHeads(f, hidden, heads);
  return {
    model_type: "refrag_policy",
    input_size: f.int("input_size", undefined, 1),
    hidden_size: hidden,
    num_hidden_layers: f.int("num_hidden_layers", 2, 1, MAX_LAYERS),
    num_attention_heads: heads,
    intermediate_size: f.int("intermediate_size", 4 * hidden, 1),
    max_chunks: f.int("max_chunks", 4096, 1),
    layer_norm_eps: f.num("layer_norm_eps", 1e-5, true),
  };
}

export function parseRefragConfig(raw: unknown, source = "config.json"): RefragConfig {
  const f = new Fields(asObject(raw, source), source);
  f.modelType("refrag");
  const sub = (key: string): JsonObject => f.obj(key) ?? f.fail(`missing required field "${key}"`);
  const encoder = parseRobertaConfig(sub("encoder"), `${source} [encoder]`);
  const decoder = parseLlamaConfig(sub("decoder"), `${source} [decoder]`);
  const projector = parseProjectorConfig(sub("projector"), `${source} [projector]`);
  const policyRaw = f.obj("policy");
  const policy = policyRaw === null ? null : parsePolicyConfig(policyRaw, `${source} [policy]`);
  if (projector.input_size !== encoder.hidden_size)
    f.fail(`projector.input_size ${projector.input_size} != encoder.hidden_size ${encoder.hidden_size}`);
  if (projector.output_size !== decoder.hidden_size)
    f.fail(`projector.output_size ${projector.output_size} != decoder.hidden_size ${decoder.hidden_size}`);
  if (
    policy !== null &&
    policy.input_size !== decoder.hidden_size &&
    policy.input_size !== encoder.hidden_size
  ) {
    f.fail(
      `policy.input_size ${policy.input_size} matches neither the encoder (${encoder.hidden_size}) nor the decoder (${decoder.hidden_size}) width`,
    );
  }
  // The encoder reads its bos before every chunk and pads batches with pad_token_id: both index its table.
  checkTokenIds(f, encoder.vocab_size, {
    "encoder.bos_token_id": encoder.bos_token_id,
    "encoder.pad_token_id": encoder.pad_token_id,
  });
  // The encoder reads [bos] + one chunk: k + 1 positions after RoBERTa's pad offset must fit its table.
  const chunkSize = f.int("chunk_size", 16, 1);
  const first = encoder.model_type === "roberta" ? encoder.pad_token_id + 1 : 0;
  if (first + chunkSize + 1 > encoder.max_position_embeddings)
    f.fail(
      `chunk_size ${chunkSize} does not fit the encoder: [bos] + ${chunkSize} tokens from position ${first} need max_position_embeddings >= ${first + chunkSize + 1}, the encoder has ${encoder.max_position_embeddings}`,
    );
  return {
    model_type: "refrag",
    chunk_size: chunkSize,
    encoder,
    decoder,
    projector,
    policy,
  };
}

/** Parse any known config by its model_type. */
export function parseConfig(raw: unknown, source = "config.json"): ModelConfig {
  const obj = asObject(raw, source);
  switch (obj.model_type) {
    case "llama":
      return parseLlamaConfig(obj, source);
    case "roberta":
    case "bert":
      return parseRobertaConfig(obj, source);
    case "refrag_projector":
      return parseProjectorConfig(obj, source);
    case "refrag_policy":
      return parsePolicyConfig(obj, source);
    case "refrag":
      return parseRefragConfig(obj, source);
    default:
      throw new Error(
        `config ${source}: unknown model_type ${JSON.stringify(obj.model_type)} (known: llama, roberta, bert, refrag_projector, refrag_policy, refrag)`,
      );
  }
}

/** A config file as written (raw) and its typed, defaulted view. */
export interface LoadedConfig {
  raw: JsonObject;
  config: ModelConfig;
}

export async function readConfigFile(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`config ${path}: cannot read (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${path}: not valid JSON (${(e as Error).message})`);
  }
  const obj = asObject(raw, path);
  return { raw: obj, config: parseConfig(obj, path) };
}

/** JSON text for a config: two-space indent and a trailing newline, as transformers writes it. */
export function configToJson(config: ModelConfig | JsonObject): string {
  return JSON.stringify(config, null, 2) + "\n";
}
