// Load models from checkpoint folders (config.json + model.safetensors, Hugging Face names).
import { Rng } from "../engine/random.js";
import { loadCheckpoint } from "../io/checkpoint.js";
import type { LlamaConfig, RefragConfig } from "../io/config.js";
import type { StTensor } from "../io/safetensors.js";
import { LlamaForCausalLM } from "./llama.js";
import { RefragModel } from "./refrag.js";

function f32Tensors(tensors: Map<string, StTensor>, dir: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array))
      throw new Error(`${dir}: tensor ${name} is ${t.dtype}; convert the checkpoint to F32 first`);
    out.set(name, t.data);
  }
  return out;
}

/** A REFRAG checkpoint (config.json model_type "refrag"). */
export async function loadRefrag(dir: string): Promise<RefragModel> {
  const ck = await loadCheckpoint(dir);
  if (ck.config.model_type !== "refrag")
    throw new Error(`${dir}: not a REFRAG checkpoint (model_type ${ck.config.model_type})`);
  const model = new RefragModel(ck.config as RefragConfig, new Rng(0));
  model.loadStateDict(f32Tensors(ck.tensors, dir));
  return model;
}

/** A LLaMA checkpoint (model_type "llama"), e.g. a pre-trained decoder. */
export async function loadLlama(dir: string): Promise<LlamaForCausalLM> {
  const ck = await loadCheckpoint(dir);
  if (ck.config.model_type !== "llama")
    throw new Error(`${dir}: not a LLaMA checkpoint (model_type ${ck.config.model_type})`);
  const model = new LlamaForCausalLM(ck.config as LlamaConfig, new Rng(0));
  model.loadStateDict(f32Tensors(ck.tensors, dir));
  return model;
}
