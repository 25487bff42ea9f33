// Chunk vectors stored in the passage store (src/store): `refrag index build --model DIR`, `index vectors`,
// `index add --model` and the server's ingestion route compute every passage's vectors once and the store
// keeps them beside the passage, keyed by the encoder's weights id and k. A RAG request looks up the
// vectors of the passages it reads by passage id (one query), checks that they were made from the very
// text it reads, and the encoder never runs for those passages. Passages a request brings (or the store
// has no vectors for) are encoded and kept in memory only, so requests never write into the store.
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { noGrad, Tensor } from "../engine/tensor.js";
import type { PipelineTokenizer } from "../infer/pipeline.js";
import { ChunkVectorCache, weightsId } from "../infer/vector_cache.js";
import { chunkTokens, type RefragModel } from "../models/refrag.js";
import type { ChunkEncoder } from "../store/ingest.js";
import {
  passageText,
  type AttachRecord,
  type PassageStore,
  type StoredChunkVectors,
  type VectorDtype,
} from "../store/types.js";

/** What the cache needs of a store (a PassageStore fits). */
export interface VectorSource {
  getChunkVectors(
    ids: readonly string[],
    encoderId: string,
    k: number,
  ): Promise<Map<string, StoredChunkVectors>>;
}

/** How the REFRAG encoder turns a passage text into chunk vectors: its tokens cut into chunks of k. */
export function chunkEncoderFor(model: RefragModel, tokenizer: PipelineTokenizer): ChunkEncoder {
  return {
    id: weightsId(model.encoder),
    k: model.chunkSize,
    encode: (text) => {
      const ids = tokenizer.encode(text, { allowSpecial: false });
      if (ids.length === 0)
        return { rows: 0, cols: model.config.encoder.hidden_size, data: new Float32Array(0) };
      const v = noGrad(() => model.encodeChunks(chunkTokens(Int32Array.from(ids), model.chunkSize)));
      return { rows: v.shape[0], cols: v.shape[1], data: v.data.slice() };
    },
  };
}

/**
 * The pipeline's vector cache in front of a store. `load` fetches the stored vectors of the passages a
 * request reads into memory (keyed by token ids, as the pipeline asks); `encoded` counts passages whose
 * vectors were found nowhere, i.e. the encoder ran for them; `fromStore` counts passages read from the store.
 */
export class StoredVectorCache extends ChunkVectorCache {
  encoded = 0;
  fromStore = 0;

  constructor(
    readonly store: VectorSource | null,
    encoderId: string,
    k: number,
    private readonly cols: number,
    maxMemoryEntries = 10_000,
  ) {
    super(null, encoderId, k, "F32", maxMemoryEntries);
  }

  /**
   * Puts the stored vectors of `passages` (those with an id) in memory, when the store holds vectors of
   * this encoder and k made from exactly this text. Returns how many were found.
   */
  async load(
    passages: readonly { id?: string; text: string }[],
    tokenizer: Pick<PipelineTokenizer, "encode">,
  ): Promise<number> {
    if (this.store === null) return 0;
    const ids = [...new Set(passages.flatMap((p) => (p.id === undefined ? [] : [p.id])))];
    if (ids.length === 0) return 0;
    const stored = await this.store.getChunkVectors(ids, this.encoderId, this.k);
    let found = 0;
    for (const p of passages) {
      const v = p.id === undefined ? undefined : stored.get(p.id);
      if (v === undefined || v.text !== p.text) continue;
      const tokens = tokenizer.encode(p.text, { allowSpecial: false });
      // Vectors of another tokenizer or a damaged row are not used (the encoder runs instead).
      if (v.rows !== Math.ceil(tokens.length / this.k) || v.cols !== this.cols || v.rows === 0) continue;
      if (!v.data.every(Number.isFinite)) continue;
      if ((await super.get(tokens)) === null) await this.put(tokens, new Tensor(v.data, [v.rows, v.cols]));
      found++;
    }
    this.fromStore += found;
    return found;
  }

  override async get(passageIds: ArrayLike<number>): Promise<Tensor | null> {
    const hit = await super.get(passageIds);
    if (hit === null) this.encoded++;
    return hit;
  }
}

/** The cache a server or `refrag generate` over `store` (or none) should use for this model. */
export function vectorCacheFor(model: RefragModel, store: VectorSource | null): StoredVectorCache {
  return new StoredVectorCache(
    store,
    weightsId(model.encoder),
    model.chunkSize,
    model.config.encoder.hidden_size,
  );
}

/** Refuses an old `INDEX/chunk_vectors/` folder given as an index, and says what to do instead. */
export function checkNotVectorFolder(spec: string): void {
  if (basename(spec.replace(/\/+$/, "")) === "chunk_vectors" && existsSync(join(spec, "manifest.json")))
    throw new Error(
      `${spec} is a chunk-vector folder of an older refrag, not an index: give the index folder (--index ${join(spec, "..")}); chunk vectors now live in the store (store them with \`refrag index vectors --store … --passages … --model …\`)`,
    );
}

/** A note when an index folder still holds the `chunk_vectors/` folder older versions wrote (no longer read). */
export function legacyVectorsNote(indexDir: string): string | null {
  return existsSync(join(indexDir, "chunk_vectors", "manifest.json"))
    ? `${indexDir}/chunk_vectors/ was written by an older refrag and is not read any more: chunk vectors live in the store now (store them once with \`refrag index vectors --store ${indexDir} --passages … --model …\`; the folder can then be removed)`
    : null;
}

export interface StoreDerivedOptions {
  /** Stored precision of chunk vectors (default F32). */
  dtype?: VectorDtype;
  /** Passages per transaction (default 256). */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StoreDerivedReport {
  passages: number;
  attached: number;
  skipped: number;
  chunks: number;
}

/**
 * Computes chunk vectors (`encoder`) and/or dense embeddings (`embedder`) of passages the store already
 * holds and attaches them, one transaction per batch (a passage changed meanwhile is skipped).
 */
export async function storeDerived(
  store: Pick<PassageStore, "attach">,
  passages: readonly { id: string; title: string; text: string }[],
  o: StoreDerivedOptions & {
    encoder?: ChunkEncoder | null;
    embedder?: { readonly id: string; embed(texts: readonly string[]): Float32Array[] } | null;
  },
): Promise<StoreDerivedReport> {
  const batch = o.batch ?? 256;
  const dtype = o.dtype ?? "F32";
  const report: StoreDerivedReport = { passages: passages.length, attached: 0, skipped: 0, chunks: 0 };
  for (let i = 0; i < passages.length; i += batch) {
    const part = passages.slice(i, i + batch);
    const emb = o.embedder ? o.embedder.embed(part.map(passageText)) : null;
    const records: AttachRecord[] = part.map((p, j) => {
      const r: AttachRecord = { id: p.id, title: p.title, text: p.text };
      if (o.encoder) {
        const v = o.encoder.encode(p.text);
        if (v.rows > 0) {
          r.chunkVectors = [{ encoderId: o.encoder.id, k: o.encoder.k, dtype, ...v }];
          report.chunks += v.rows;
        }
      }
      if (emb !== null && o.embedder) r.embeddings = { [o.embedder.id]: emb[j] };
      return r;
    });
    const a = await store.attach(records);
    report.attached += a.attached;
    report.skipped += a.skipped.length;
    o.onProgress?.(Math.min(i + batch, passages.length), passages.length);
  }
  return report;
}
