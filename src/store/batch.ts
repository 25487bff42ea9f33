// What both stores share: checking a write batch before anything is written, the byte layout of stored
// chunk vectors, and reciprocal rank fusion for hybrid search.
import { bf16ToF32, f32ToBf16 } from "../io/half.js";
import {
  checkId,
  type AttachRecord,
  type ChunkVectors,
  type DocumentRecord,
  type PassageRecord,
  type PassageStore,
  type SearchHit,
  type VectorDtype,
} from "./types.js";

/** Largest dense dimension accepted (pgvector's HNSW index takes vectors of up to 2,000 dimensions). */
export const MAX_EMBEDDING_DIM = 2000;

/** Checks a batch as a whole; returns the embedding dimension of each embedder it carries. Throws an error
 * naming the document and passage at fault. */
export function checkBatch(docs: readonly DocumentRecord[]): Map<string, number> {
  const docIds = new Set<string>();
  const passageIds = new Set<string>();
  const dims = new Map<string, number>();
  for (const [d, doc] of docs.entries()) {
    const where = `document ${d} (${JSON.stringify(doc?.docId)})`;
    if (typeof doc?.docId !== "string" || doc.docId.length === 0)
      throw new Error(`${where}: docId must be a non-empty string`);
    if (docIds.has(doc.docId)) throw new Error(`${where}: document ${doc.docId} appears twice in the batch`);
    docIds.add(doc.docId);
    if (!Array.isArray(doc.passages)) throw new Error(`${where}: passages must be a list`);
    for (const [i, rec] of doc.passages.entries()) {
      const p = rec?.passage;
      const at = `${where}, passage ${i}`;
      if (typeof p !== "object" || p === null) throw new Error(`${at}: no passage`);
      for (const key of ["id", "doc_id", "title", "text"] as const)
        if (typeof p[key] !== "string")
          throw new Error(`${at}: "${key}" must be a string, got ${JSON.stringify(p[key])}`);
      if (p.id.length === 0) throw new Error(`${at}: empty id`);
      if (p.doc_id !== doc.docId) throw new Error(`${at}: doc_id ${p.doc_id} is not the document's id`);
      if (passageIds.has(p.id)) throw new Error(`${at}: duplicate id ${p.id}`);
      passageIds.add(p.id);
      if (p.text.includes("\u0000") || p.title.includes("\u0000"))
        throw new Error(`${at}: text contains a NUL character`);
      if (p.meta !== undefined && (typeof p.meta !== "object" || p.meta === null || Array.isArray(p.meta)))
        throw new Error(`${at}: meta must be an object`);
      checkDerived(rec, at, dims);
    }
  }
  return dims;
}

/** Checks attach records (ids distinct, vectors and embeddings well-formed); returns the embedders' dims. */
export function checkAttach(records: readonly AttachRecord[]): Map<string, number> {
  const seen = new Set<string>();
  const dims = new Map<string, number>();
  for (const [i, r] of records.entries()) {
    const at = `record ${i} (${JSON.stringify(r?.id)})`;
    for (const key of ["id", "title", "text"] as const)
      if (typeof r?.[key] !== "string") throw new Error(`${at}: "${key}" must be a string`);
    if (seen.has(r.id)) throw new Error(`${at}: passage ${r.id} appears twice`);
    seen.add(r.id);
    checkDerived(r, at, dims);
  }
  return dims;
}

/** Chunk vectors and embeddings of one passage; `dims` collects each embedder's dimension. */
function checkDerived(
  rec: Pick<PassageRecord, "chunkVectors" | "embeddings">,
  at: string,
  dims: Map<string, number>,
): void {
  const keys = new Set<string>();
  for (const [j, cv] of (rec.chunkVectors ?? []).entries()) {
    checkChunkVectors(cv, `${at}, chunk vectors ${j}`);
    const key = `${cv.encoderId}/${cv.k}`;
    if (keys.has(key))
      throw new Error(`${at}: two sets of chunk vectors for encoder ${cv.encoderId}, k ${cv.k}`);
    keys.add(key);
  }
  for (const [id, v] of Object.entries(rec.embeddings ?? {})) {
    checkId(`${at}: embedder`, id);
    if (!(v instanceof Float32Array) || v.length === 0 || v.length > MAX_EMBEDDING_DIM)
      throw new Error(`${at}: embedding ${id} must be a Float32Array of 1-${MAX_EMBEDDING_DIM} values`);
    if (!v.every(Number.isFinite)) throw new Error(`${at}: embedding ${id} has a non-finite value`);
    if (v.every((x) => x === 0)) throw new Error(`${at}: embedding ${id} is all zeros (no direction)`);
    const dim = dims.get(id);
    if (dim !== undefined && dim !== v.length)
      throw new Error(`${at}: embedding ${id} has ${v.length} values, others in the batch ${dim}`);
    dims.set(id, v.length);
  }
}

function checkChunkVectors(cv: ChunkVectors, at: string): void {
  checkId(`${at}: encoder`, cv.encoderId);
  if (!Number.isInteger(cv.k) || cv.k < 1)
    throw new Error(`${at}: k must be a positive integer, got ${cv.k}`);
  if (cv.dtype !== "F32" && cv.dtype !== "BF16") throw new Error(`${at}: dtype must be F32 or BF16`);
  if (!Number.isInteger(cv.rows) || !Number.isInteger(cv.cols) || cv.rows < 0 || cv.cols < 1)
    throw new Error(`${at}: bad shape [${cv.rows}, ${cv.cols}]`);
  if (!(cv.data instanceof Float32Array) || cv.data.length !== cv.rows * cv.cols)
    throw new Error(`${at}: ${cv.data?.length} values for shape [${cv.rows}, ${cv.cols}]`);
}

/** Stored bytes of chunk vectors: little-endian f32, or bf16 (round to nearest even). */
export function vectorBytes(data: Float32Array, dtype: VectorDtype): Uint8Array {
  const arr = dtype === "F32" ? Float32Array.from(data) : f32ToBf16(data);
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

export function vectorsFromBytes(bytes: Uint8Array, dtype: VectorDtype, what: string): Float32Array {
  const width = dtype === "F32" ? 4 : 2;
  if (bytes.byteLength % width !== 0)
    throw new Error(`${what}: ${bytes.byteLength} bytes is not ${dtype} data`);
  const copy = new Uint8Array(bytes); // aligned copy
  return dtype === "F32"
    ? new Float32Array(copy.buffer, 0, copy.byteLength / 4)
    : bf16ToF32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
}

export const DEFAULT_RRF_K = 60;

/**
 * Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ over lists of weight / (rrfK + rank), rank
 * from 1, weight 1 per list unless given (weighted RRF: a list known to be weaker counts less). Ties keep
 * the order of first appearance (earlier lists first). Returns the k best.
 */
export function rrfFuse(
  lists: readonly (readonly SearchHit[])[],
  k: number,
  rrfK = DEFAULT_RRF_K,
  weights: readonly number[] = lists.map(() => 1),
): SearchHit[] {
  if (weights.length !== lists.length || !weights.every((w) => Number.isFinite(w) && w >= 0))
    throw new Error(`rrfFuse: one finite weight >= 0 per list, got ${JSON.stringify(weights)}`);
  const fused = new Map<string, SearchHit>();
  lists.forEach((list, l) =>
    list.forEach((h, r) => {
      const add = weights[l] / (rrfK + r + 1);
      const cur = fused.get(h.id);
      if (cur === undefined) fused.set(h.id, { ...h, score: add });
      else cur.score += add;
    }),
  );
  return [...fused.values()].sort((a, b) => b.score - a.score).slice(0, k);
}

export interface HybridOptions {
  /** Candidates taken from each list before fusion (default max(k, 50)). */
  depth?: number;
  rrfK?: number;
  /** Weight of the dense list against the full-text list's 1 (default 1: plain RRF). Choose it on
   * validation questions: a weak dense retriever should count less (0 gives the full-text order). */
  denseWeight?: number;
}

/** Hybrid retrieval: full-text and dense candidate lists fused by (weighted) reciprocal rank. */
export async function searchHybrid(
  store: PassageStore,
  question: string,
  dense: { embedderId: string; vector: Float32Array },
  k: number,
  opts: HybridOptions = {},
): Promise<SearchHit[]> {
  const depth = opts.depth ?? Math.max(k, 50);
  const [text, vec] = await Promise.all([
    store.searchText(question, depth),
    store.searchDense(dense.embedderId, dense.vector, depth),
  ]);
  return rrfFuse([text, vec], k, opts.rrfK, [1, opts.denseWeight ?? 1]);
}

export function checkK(what: string, k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${what}: k must be a positive integer, got ${k}`);
}
