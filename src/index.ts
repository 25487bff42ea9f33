// refrag's public API.
export { Tensor, noGrad, type Shape } from "./engine/tensor.js";
export * as ops from "./engine/ops.js";
export { Rng } from "./engine/random.js";
export { setNumThreads, numThreads, cpuFeatures, setIsa } from "./engine/native.js";
export { kernels, referenceKernels, type Kernels } from "./engine/kernels/index.js";
export { Module, Parameter } from "./nn/module.js";
export { Linear, Embedding, RMSNorm, LayerNorm } from "./nn/layers.js";
export {
  LlamaForCausalLM,
  LlamaModel,
  KVCache,
  KV_CACHE_DTYPES,
  llamaConfig,
  type KVCacheDtype,
  type Segment,
} from "./models/llama.js";
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
export { RefragPipeline, PROMPT_TOKENS, promptIds, type RagRequest } from "./infer/pipeline.js";
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
export { runLatency, latencyTable } from "./eval/latency.js";
export { SHAPES, preset, refragConfigFor, type ModelShape } from "./models/presets.js";
export { PassageIndex, toQuery, type SearchHit, type BuildOptions } from "./retrieval/index.js";
export { evalRetrieval, type RetrievalReport, type RecallRow } from "./retrieval/eval.js";
export { buildRagExamples, type RagExample } from "./retrieval/rag_examples.js";
export { evalQa, answerMatches, normalizeAnswer, type QaEvalRow } from "./eval/qa.js";
export { buildServer, DEFAULT_LIMITS, HttpError, type ServerOptions, type Limits } from "./server/app.js";
export { BatchEngine, QueueFullError, EngineClosedError, type BatchRequest } from "./infer/batch.js";
export {
  RagService,
  type RagRequest as RagServiceRequest,
  type RagRun,
  type RagLayout,
  type RagPassage,
  type PassageInput,
} from "./rag/service.js";
export { retrievalQuery } from "./rag/query.js";
export { chunkEncoderFor, storeDerived, vectorCacheFor, StoredVectorCache } from "./rag/vectors.js";
export { trainLoop, type LoopConfig, type StageIO, type TrainingState } from "./train/loop.js";
export { pretrainDecoder, pretrainEncoder } from "./train/stages/pretrain.js";
export { initRefrag, reconstruct, continualPretrain, mixedInput } from "./train/stages/refrag.js";
export { trainPolicy, withPolicy } from "./train/stages/policy.js";
export { finetune, type FinetuneConfig } from "./train/stages/finetune.js";
