// Chunk vectors stored with the passage index: `refrag index build --model DIR` encodes every passage once
// and writes its vectors into INDEX/chunk_vectors/ (one safetensors file per passage, F32 or BF16, keyed by
// the encoder's weights, the passage's token ids and k: see infer/vector_cache.ts). A server over that
// index reads them instead of running the encoder; passages a request brings are encoded and kept in
// memory only, so requests never write into the index.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { noGrad } from "../engine/tensor.js";
import type { PipelineTokenizer } from "../infer/pipeline.js";
import { ChunkVectorCache, weightsId, type VectorDtype } from "../infer/vector_cache.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";

export const VECTORS_DIR = "chunk_vectors";
const MANIFEST = "manifest.json";

export interface VectorsManifest {
  encoder: string;
  k: number;
  dtype: VectorDtype;
  passages: number;
  chunks: number;
}

export function vectorsDir(indexDir: string): string {
  return join(indexDir, VECTORS_DIR);
}

/** The manifest of an index's stored vectors, or null when it has none. */
export function readVectorsManifest(indexDir: string): VectorsManifest | null {
  const path = join(vectorsDir(indexDir), MANIFEST);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, "utf8")) as VectorsManifest;
}

/**
 * Memory cache in front of an index's stored vectors (read-only). `encoded` counts passages whose vectors
 * were not found anywhere, i.e. the encoder ran for them.
 */
export class IndexedVectorCache extends ChunkVectorCache {
  encoded = 0;
  constructor(
    private readonly stored: ChunkVectorCache | null,
    encoderId: string,
    k: number,
    maxMemoryEntries = 10_000,
  ) {
    super(null, encoderId, k, "F32", maxMemoryEntries);
  }

  override async get(passageIds: ArrayLike<number>): Promise<import("../engine/tensor.js").Tensor | null> {
    const hit =
      (await super.get(passageIds)) ?? (this.stored === null ? null : await this.stored.get(passageIds));
    if (hit === null) this.encoded++;
    return hit;
  }
}

/** The cache a server over `indexDir` (or none) should use for this model. */
export function vectorCacheFor(model: RefragModel, indexDir: string | null): IndexedVectorCache {
  const encoder = weightsId(model.encoder);
  const manifest = indexDir === null ? null : readVectorsManifest(indexDir);
  const usable = manifest !== null && manifest.encoder === encoder && manifest.k === model.chunkSize;
  const stored = usable
    ? new ChunkVectorCache(vectorsDir(indexDir!), encoder, model.chunkSize, manifest.dtype, 1024)
    : null;
  return new IndexedVectorCache(stored, encoder, model.chunkSize);
}

/** Encodes every passage once and stores its chunk vectors in the index folder. */
export async function buildChunkVectors(
  indexDir: string,
  passages: Iterable<{ text: string }>,
  model: RefragModel,
  tokenizer: PipelineTokenizer,
  o: { dtype?: VectorDtype; onProgress?: (done: number) => void } = {},
): Promise<VectorsManifest> {
  const dtype = o.dtype ?? "F32";
  const encoder = weightsId(model.encoder);
  const cache = new ChunkVectorCache(vectorsDir(indexDir), encoder, model.chunkSize, dtype, 1);
  let n = 0;
  let chunks = 0;
  for (const p of passages) {
    const ids = Int32Array.from(tokenizer.encode(p.text, { allowSpecial: false }));
    if (ids.length > 0) {
      const pc = chunkTokens(ids, model.chunkSize);
      await cache.put(
        ids,
        noGrad(() => model.encodeChunks(pc)),
      );
      chunks += pc.length;
    }
    n++; // not inside the optional call: `o.onProgress?.(++n)` skips the increment without a callback
    o.onProgress?.(n);
  }
  const manifest: VectorsManifest = { encoder, k: model.chunkSize, dtype, passages: n, chunks };
  writeFileSync(join(vectorsDir(indexDir), MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}
