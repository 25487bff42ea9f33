// File formats: safetensors, config.json, checkpoint folders, GGUF export.
export * from "./half.js";
export * from "./safetensors.js";
export * from "./config.js";
export * from "./checkpoint.js";
export * from "./gguf.js";
export * from "./gguf_llama.js";
