// The train/validation/test split by document id (first 4 bytes of sha256(id) as a big-endian uint32,
// mod 100: < 90 train, < 95 validation, else test). One implementation, shared with the tokenizer and
// the derived sets; re-exported here as the data pipeline's entry point.
export { splitOf, type Split } from "./derived/split.js";
export { splitBucket } from "../tokenizer/corpus.js";
