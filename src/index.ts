// refrag's public API.
export { Tensor, noGrad, type Shape } from "./engine/tensor.js";
export * as ops from "./engine/ops.js";
export { Rng } from "./engine/random.js";
export { setNumThreads, numThreads, cpuFeatures, setIsa } from "./engine/native.js";
export { kernels, referenceKernels, type Kernels } from "./engine/kernels/index.js";
export { Module, Parameter } from "./nn/module.js";
export { Linear, Embedding, RMSNorm, LayerNorm } from "./nn/layers.js";
export { LlamaForCausalLM, LlamaModel, KVCache, llamaConfig, type Segment } from "./models/llama.js";
export { RobertaModel, RobertaForMaskedLM, robertaConfig, padBatch, type Pooling } from "./models/roberta.js";
export { RefragProjector, projectorConfig } from "./models/projector.js";
export { RefragPolicy, policyConfig } from "./models/policy.js";
export { RefragModel, chunkTokens, effectiveCompression } from "./models/refrag.js";
export { loadRefrag, loadLlama } from "./models/load.js";
export { AdamW, clipGradNorm, cosineSchedule } from "./train/optimizer.js";
export {
  generate,
  type GenerationOptions,
  type GeneratedToken,
  type GenerationStats,
} from "./infer/generate.js";
export { RefragPipeline, PROMPT_TOKENS, type RagRequest } from "./infer/pipeline.js";
export {
  selectChunks,
  SELECTION_MODES,
  type SelectionMode,
  type SelectionOptions,
} from "./infer/selection.js";
export { ChunkVectorCache, weightsId } from "./infer/vector_cache.js";
export { Tokenizer, trainByteLevelBpe } from "./tokenizer/index.js";
export * from "./io/config.js";
export { readSafetensors, writeSafetensors, SafetensorsFile } from "./io/safetensors.js";
export { loadCheckpoint, saveCheckpoint } from "./io/checkpoint.js";
export { runLatency, latencyTable, SHAPES } from "./eval/latency.js";
export { PassageIndex, toQuery, type SearchHit, type BuildOptions } from "./retrieval/index.js";
export { evalRetrieval, type RetrievalReport, type RecallRow } from "./retrieval/eval.js";
