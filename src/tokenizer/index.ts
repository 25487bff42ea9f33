// Tokenizers: tokenizer.json load/save/encode/decode, byte-level BPE training, LLaMA-2's tokenizer rebuilt.
export { Tokenizer, type EncodeOptions, type DecodeOptions } from "./tokenizer.js";
export {
  TokenizerFormatError,
  type TokenizerJson,
  validateTokenizerJson,
  buildByteLevelBpeJson,
} from "./json.js";
export {
  SPECIAL_TOKENS,
  WordCounter,
  trainBpe,
  trainByteLevelBpe,
  type TrainOptions,
  type TrainResult,
} from "./train.js";
export { splitBucket, isTrainDoc, listCorpusFiles, readDocs, sampleCorpus, type TextDoc } from "./corpus.js";
export { buildLlama2TokenizerJson, llama2Tokenizer } from "./llama2.js";
export { defaultTokenizerPath, trainFromCorpus, compressionBySource } from "./pipeline.js";
