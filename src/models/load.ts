// Loading weights into modules: the one checked path every loader takes (loadRefrag, loadLlama, initRefrag,
// the training loop's resume). A checkpoint's names and shapes are compared with the ones its config
// implies before any model is built, then each tensor is taken by name, converted to float32 from its
// stored dtype (or refused), checked against the parameter's shape and refused when it holds NaN or ±Inf.
import { kernels } from "../engine/kernels/index.js";
import { Rng } from "../engine/random.js";
import { join } from "node:path";
import { CONFIG_FILE, loadCheckpoint, type Checkpoint } from "../io/checkpoint.js";
import type { LlamaConfig, RefragConfig } from "../io/config.js";
import { toFloat32, type StTensor } from "../io/safetensors.js";
import type { Module } from "../nn/module.js";
import { LlamaForCausalLM } from "./llama.js";
import { RefragModel } from "./refrag.js";
import { llamaShapes, refragShapes, type ShapeTable } from "./shapes.js";

export interface WeightLoadOptions {
  /** Load tensors holding NaN or ±Inf (default: refuse them, naming the tensor). */
  allowNonFinite?: boolean;
}

const shapeStr = (s: readonly number[]) => `[${s.join(", ")}]`;
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Compare tensor names and shapes (from a file header) with what a config implies, before anything is
 * allocated. `strict`: the file may hold no other tensors.
 */
export function checkShapes(
  expected: ShapeTable,
  tensors: Map<string, { shape: number[] }>,
  source: string,
  strict = true,
): void {
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (t === undefined)
      throw new Error(`${source}: missing tensor ${name} (the config implies ${shapeStr(shape)})`);
    if (!sameShape(t.shape, shape))
      throw new Error(
        `${source}: tensor ${name} is ${shapeStr(t.shape)}, the config implies ${shapeStr(shape)}`,
      );
  }
  if (strict)
    for (const name of tensors.keys())
      if (!expected.has(name))
        throw new Error(`${source}: unexpected tensor ${name} (not in the model the config describes)`);
}

/** A tensor's values as float32, refused (naming it) when it holds NaN or ±Inf unless allowed. */
export function finiteFloat32(t: StTensor, where: string, o: WeightLoadOptions = {}): Float32Array {
  const data = toFloat32(t, where);
  if (o.allowNonFinite !== true) {
    const i = kernels.pointwise.firstNonFinite(data);
    if (i >= 0)
      throw new Error(
        `${where}: value ${data[i]} at index ${i} of ${shapeStr(t.shape)}; refusing non-finite weights (allowNonFinite loads them)`,
      );
  }
  return data;
}

/**
 * Copy checkpoint tensors into a module's parameters by name: every parameter present with its exact shape
 * (and, when strict, no other tensor), dtype converted, values finite. Nothing is copied unless all pass.
 */
export function loadWeights(
  module: Module,
  tensors: Map<string, StTensor>,
  source: string,
  o: WeightLoadOptions & { strict?: boolean } = {},
): void {
  const params = module.namedParameters();
  checkShapes(new Map([...params].map(([n, p]) => [n, p.shape])), tensors, source, o.strict ?? true);
  const values = [...params].map(([name, p]) => {
    const t = tensors.get(name) as StTensor;
    return [p, finiteFloat32(t, `${source}: tensor ${name}`, o)] as const;
  });
  for (const [p, data] of values) {
    p.data.set(data);
    p.dropCopies();
  }
}

/** A checkpoint's tensors, with names under `prefix` only and the prefix removed. */
export function underPrefix(tensors: Map<string, StTensor>, prefix: string): Map<string, StTensor> {
  return new Map(
    [...tensors].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t]),
  );
}

function weightsSource(ck: Checkpoint): string {
  return `checkpoint ${ck.dir}`;
}

/** Build a model; what its constructor refuses in the config (an unsupported option) names the file. */
function build<T>(ck: Checkpoint, make: () => T): T {
  try {
    return make();
  } catch (e) {
    throw new Error(`config ${join(ck.dir, CONFIG_FILE)}: ${(e as Error).message}`);
  }
}

/** A REFRAG checkpoint (config.json model_type "refrag"). */
export async function loadRefrag(dir: string, o: WeightLoadOptions = {}): Promise<RefragModel> {
  const ck = await loadCheckpoint(dir);
  if (ck.config.model_type !== "refrag")
    throw new Error(`${dir}: not a REFRAG checkpoint (model_type ${ck.config.model_type})`);
  const config = ck.config as RefragConfig;
  checkShapes(refragShapes(config), ck.tensors, weightsSource(ck));
  const model = build(ck, () => new RefragModel(config, new Rng(0)));
  loadWeights(model, ck.tensors, weightsSource(ck), o);
  return model;
}

/**
 * A LLaMA checkpoint's config and tensors: a LLaMA checkpoint (model_type "llama") as it is, or the decoder
 * of a REFRAG checkpoint (its `decoder.` tensors, so a REFRAG stage's decoder can be trained or probed alone).
 */
async function llamaCheckpoint(
  dir: string,
): Promise<{ ck: Checkpoint; config: LlamaConfig; tensors: Map<string, StTensor> }> {
  const ck = await loadCheckpoint(dir);
  if (ck.config.model_type === "llama") return { ck, config: ck.config as LlamaConfig, tensors: ck.tensors };
  if (ck.config.model_type === "refrag")
    return { ck, config: (ck.config as RefragConfig).decoder, tensors: underPrefix(ck.tensors, "decoder.") };
  throw new Error(`${dir}: not a LLaMA or REFRAG checkpoint (model_type ${ck.config.model_type})`);
}

/** A LLaMA decoder: a LLaMA checkpoint (e.g. a pre-trained decoder), or the decoder of a REFRAG checkpoint. */
export async function loadLlama(dir: string, o: WeightLoadOptions = {}): Promise<LlamaForCausalLM> {
  const { ck, config, tensors } = await llamaCheckpoint(dir);
  checkShapes(llamaShapes(config), tensors, weightsSource(ck));
  const model = build(ck, () => new LlamaForCausalLM(config, new Rng(0)));
  loadWeights(model, tensors, weightsSource(ck), o);
  return model;
}

/** Architecture fields two decoders must share for one's weights to stand in for the other's. */
const DECODER_ARCHITECTURE = [
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "hidden_act",
  "rms_norm_eps",
  "rope_theta",
  "rope_scaling",
  "attention_bias",
  "mlp_bias",
  "tie_word_embeddings",
] as const satisfies readonly (keyof LlamaConfig)[];

/**
 * Put the decoder weights of `dir` (a LLaMA checkpoint or another REFRAG checkpoint's decoder) into a REFRAG
 * model in place, e.g. a decoder trained further on its own. The architectures must be the same.
 */
export async function replaceDecoder(
  model: RefragModel,
  dir: string,
  o: WeightLoadOptions = {},
): Promise<void> {
  const { ck, config, tensors } = await llamaCheckpoint(dir);
  const have = model.config.decoder;
  for (const key of DECODER_ARCHITECTURE)
    if (JSON.stringify(config[key]) !== JSON.stringify(have[key]))
      throw new Error(
        `${dir}: decoder ${key} is ${JSON.stringify(config[key])}, the REFRAG model's is ${JSON.stringify(have[key])}`,
      );
  loadWeights(model.decoder, tensors, weightsSource(ck), o);
}
