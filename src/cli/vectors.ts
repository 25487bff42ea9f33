// `refrag index build --model DIR`: the chunk vectors stored with the index (src/rag/vectors.ts).
import { join } from "node:path";
import type { VectorDtype } from "../infer/vector_cache.js";
import { loadRefrag } from "../models/load.js";
import { buildChunkVectors } from "../rag/vectors.js";
import { Tokenizer } from "../tokenizer/index.js";
import { progressBar } from "./progress.js";

export async function storeIndexVectors(
  indexDir: string,
  passages: readonly { text: string }[],
  modelDir: string,
  dtype: VectorDtype,
): Promise<void> {
  const t0 = performance.now();
  const model = await loadRefrag(modelDir);
  const tokenizer = Tokenizer.fromFile(join(modelDir, "tokenizer.json"));
  const bar = progressBar("vectors");
  const m = await buildChunkVectors(indexDir, passages, model, tokenizer, {
    dtype,
    onProgress: (done) => bar.update(done, passages.length, "passages"),
  });
  bar.stop();
  console.log(
    `stored ${m.chunks} chunk vectors (${m.dtype}, k = ${m.k}, encoder ${m.encoder}) for ${m.passages} passages in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
