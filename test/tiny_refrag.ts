// A small random REFRAG model on the shipped tokenizer, for the pipeline, server and fine-tuning tests.
import { Rng } from "../src/engine/random.js";
import { refragConfigFor, SHAPES } from "../src/models/presets.js";
import { RefragModel } from "../src/models/refrag.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { defaultTokenizerPath } from "../src/tokenizer/pipeline.js";

export const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());

/** Decoder width 32 (heads 2), encoder width 16, chunk size k, a context window of `window` positions. */
export function tinyRefrag(k: number, window: number, seed: number, decoderLayers = 2): RefragModel {
  const shape = {
    ...SHAPES.shipped,
    vocab: tokenizer.vocabSize,
    decoder: { hidden: 32, layers: decoderLayers, heads: 2, kvHeads: 2, intermediate: 64 },
    encoder: { hidden: 16, layers: 1, heads: 2, intermediate: 32 },
  };
  return new RefragModel(refragConfigFor(shape, k, window), new Rng(seed));
}

/** Saves tinyRefrag(k, window, seed) as a checkpoint folder with the shipped tokenizer (for `refrag serve`). */
export async function saveTinyRefrag(
  dir: string,
  k: number,
  window: number,
  seed: number,
): Promise<RefragModel> {
  const { readFileSync } = await import("node:fs");
  const { saveCheckpoint } = await import("../src/io/checkpoint.js");
  const model = tinyRefrag(k, window, seed);
  const tensors = new Map(
    [...model.namedParameters()].map(([n, p]) => [
      n,
      { dtype: "F32" as const, shape: [...p.shape], data: p.data.slice() },
    ]),
  );
  await saveCheckpoint(dir, {
    config: model.config,
    tensors,
    tokenizerJson: readFileSync(defaultTokenizerPath(), "utf8"),
  });
  return model;
}
