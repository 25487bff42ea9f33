// Model shapes (presets) and the REFRAG config built from one. Each preset is a JSON file in
// assets/configs/ with Hugging Face field names; this module reads them once and gives the normalised view
// (ModelShape) that training, benchmarks, the CLI and tests share.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../engine/native.js";
import { parseRefragConfig, type RefragConfig } from "../io/config.js";

export interface ModelShape {
  name: string;
  vocab: number;
  decoder: { hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number };
  encoder: { hidden: number; layers: number; heads: number; intermediate: number };
}

/** A preset file as written (assets/configs/NAME.json). */
interface PresetFile {
  name: string;
  vocab_size: number;
  decoder: {
    hidden_size: number;
    num_hidden_layers: number;
    num_attention_heads: number;
    num_key_value_heads: number;
    intermediate_size: number;
  };
  encoder: {
    hidden_size: number;
    num_hidden_layers: number;
    num_attention_heads: number;
    intermediate_size: number;
  };
}

export function presetsDir(): string {
  return join(packageRoot(), "assets", "configs");
}

function positive(file: string, key: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1)
    throw new Error(`${file}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Reads and checks one preset file. */
export function readPreset(path: string): ModelShape {
  const raw = JSON.parse(readFileSync(path, "utf8")) as Partial<PresetFile>;
  const d = raw.decoder ?? ({} as Partial<PresetFile["decoder"]>);
  const e = raw.encoder ?? ({} as Partial<PresetFile["encoder"]>);
  if (typeof raw.name !== "string" || raw.name === "") throw new Error(`${path}: "name" must be a string`);
  return {
    name: raw.name,
    vocab: positive(path, "vocab_size", raw.vocab_size),
    decoder: {
      hidden: positive(path, "decoder.hidden_size", d.hidden_size),
      layers: positive(path, "decoder.num_hidden_layers", d.num_hidden_layers),
      heads: positive(path, "decoder.num_attention_heads", d.num_attention_heads),
      kvHeads: positive(path, "decoder.num_key_value_heads", d.num_key_value_heads),
      intermediate: positive(path, "decoder.intermediate_size", d.intermediate_size),
    },
    encoder: {
      hidden: positive(path, "encoder.hidden_size", e.hidden_size),
      layers: positive(path, "encoder.num_hidden_layers", e.num_hidden_layers),
      heads: positive(path, "encoder.num_attention_heads", e.num_attention_heads),
      intermediate: positive(path, "encoder.intermediate_size", e.intermediate_size),
    },
  };
}

function loadPresets(): Record<string, ModelShape> {
  const out: Record<string, ModelShape> = {};
  for (const f of readdirSync(presetsDir()).sort()) {
    if (!f.endsWith(".json")) continue;
    const shape = readPreset(join(presetsDir(), f));
    if (`${shape.name}.json` !== f) throw new Error(`${f}: "name" is ${shape.name}; it must match the file`);
    out[shape.name] = shape;
  }
  if (out.shipped === undefined) throw new Error(`${presetsDir()}: no shipped.json preset`);
  return out;
}

/** The presets by name: "shipped" (the shape the project trains) and "wide" (for scaling). */
export const SHAPES: Readonly<Record<string, ModelShape>> & { shipped: ModelShape } = loadPresets() as Record<
  string,
  ModelShape
> & { shipped: ModelShape };

/** The preset called `name`, with a clear error listing the others. */
export function preset(name: string): ModelShape {
  const s = SHAPES[name];
  if (s === undefined)
    throw new Error(`unknown model shape "${name}" (choose ${Object.keys(SHAPES).join(", ")})`);
  return s;
}

/** A full REFRAG config for a shape, chunk size k and decoder context window. */
export function refragConfigFor(shape: ModelShape, k: number, maxPositions: number): RefragConfig {
  return parseRefragConfig({
    model_type: "refrag",
    chunk_size: k,
    decoder: {
      model_type: "llama",
      vocab_size: shape.vocab,
      hidden_size: shape.decoder.hidden,
      num_hidden_layers: shape.decoder.layers,
      num_attention_heads: shape.decoder.heads,
      num_key_value_heads: shape.decoder.kvHeads,
      intermediate_size: shape.decoder.intermediate,
      max_position_embeddings: maxPositions,
      rms_norm_eps: 1e-6,
    },
    encoder: {
      model_type: "roberta",
      vocab_size: shape.vocab,
      hidden_size: shape.encoder.hidden,
      num_hidden_layers: shape.encoder.layers,
      num_attention_heads: shape.encoder.heads,
      intermediate_size: shape.encoder.intermediate,
      max_position_embeddings: 2 * k + 4,
      type_vocab_size: 1,
      layer_norm_eps: 1e-5,
      pad_token_id: 0,
      bos_token_id: 1,
    },
    projector: {
      model_type: "refrag_projector",
      input_size: shape.encoder.hidden,
      hidden_size: shape.decoder.hidden,
      output_size: shape.decoder.hidden,
      hidden_act: "gelu",
    },
  });
}
