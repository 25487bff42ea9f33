// The passage store: one interface for the passages of the RAG pipeline, their full-text search, the
// chunk vectors the REFRAG encoder made for them and the dense embeddings a retriever made for them.
// Two implementations: an embedded LanceDB folder (lancedb.ts, the default: one process owns it) and a
// Postgres database with the pgvector extension (postgres.ts: many processes share it).
//
// Writes go by document: a batch replaces whole documents (their old passages, vectors and embeddings go,
// the new ones come) and is applied all at once or not at all.
import type { Passage } from "../data/derived/passages.js";

/** Metadata kept with a passage (e.g. {"split": "test", "source": "factbook"}). */
export type PassageMeta = Record<string, string | number | boolean | null>;

export interface StoredPassage extends Passage {
  meta?: PassageMeta;
}

/** One retrieved passage. `score` is higher-is-better and means what the search says: BM25 (LanceDB) or
 * ts_rank_cd (Postgres) for full text, cosine similarity for dense, the fused RRF score for hybrid. */
export interface SearchHit extends StoredPassage {
  score: number;
}

export type VectorDtype = "F32" | "BF16";

/** The encoder's vectors of one passage, [rows, cols] row-major (rows = chunks of k tokens). When read
 * back from BF16 storage the values are the bf16-rounded ones. */
export interface ChunkVectors {
  encoderId: string;
  k: number;
  dtype: VectorDtype;
  rows: number;
  cols: number;
  data: Float32Array;
}

/** Stored chunk vectors with the text of the passage they were computed from (a reader compares it with
 * the text it is about to read, so vectors of another version of a passage are never used). */
export interface StoredChunkVectors extends ChunkVectors {
  text: string;
}

/** A passage with what was computed for it, as written in a batch. */
export interface PassageRecord {
  passage: StoredPassage;
  chunkVectors?: ChunkVectors[];
  /** Dense embeddings by embedder id (each of that embedder's dimension). */
  embeddings?: Record<string, Float32Array>;
}

/** A whole document: its passages replace every passage the store holds for `docId`. An empty list
 * removes the document. */
export interface DocumentRecord {
  docId: string;
  passages: PassageRecord[];
}

/** Vectors and embeddings computed for a passage already stored, from this title and text. */
export interface AttachRecord {
  id: string;
  title: string;
  text: string;
  chunkVectors?: ChunkVectors[];
  /** Dense embeddings by embedder id. */
  embeddings?: Record<string, Float32Array>;
}

export interface AttachReport {
  /** Passages whose vectors and embeddings were written. */
  attached: number;
  /** Ids not written: the passage is gone, or its title or text changed since they were computed. */
  skipped: string[];
}

export interface WriteOptions {
  /** Called as passages are written, inside the transaction (a throw aborts the whole batch). */
  onProgress?: (written: number, total: number) => void | Promise<void>;
}

export interface WriteReport {
  documents: number;
  passages: number;
  /** Passages of these documents that the batch removed (they were stored and are not in the batch). */
  removed: number;
}

export interface EmbedderInfo {
  id: string;
  dim: number;
}

export interface StoreInfo {
  kind: "lancedb" | "postgres";
  /** The folder, or the connection URL without its password. */
  location: string;
  titleWeight: number;
  passages: number;
  embedders: EmbedderInfo[];
}

export interface PassageStore {
  readonly kind: "lancedb" | "postgres";
  readonly location: string;
  /** Times the title counts against the text in full-text ranking (fixed when the store is created). */
  readonly titleWeight: number;

  count(): Promise<number>;
  info(): Promise<StoreInfo>;
  /** Passages by id, in the order asked; unknown ids are left out. */
  get(ids: readonly string[]): Promise<StoredPassage[]>;
  /** Replace whole documents in one transaction. */
  upsertDocuments(docs: readonly DocumentRecord[], opts?: WriteOptions): Promise<WriteReport>;

  /** Full-text search over title + text: the k best passages matching any word of the question. */
  searchText(question: string, k: number): Promise<SearchHit[]>;
  /** The k passages whose `embedderId` embedding is nearest (cosine) to `vector`. */
  searchDense(embedderId: string, vector: Float32Array, k: number): Promise<SearchHit[]>;

  embedders(): Promise<EmbedderInfo[]>;
  /** Stored embeddings of passages for one embedder (passages without one are left out). */
  getEmbeddings(ids: readonly string[], embedderId: string): Promise<Map<string, Float32Array>>;
  /** Stored chunk vectors for (encoder weights id, k); passages without them are left out. */
  getChunkVectors(
    ids: readonly string[],
    encoderId: string,
    k: number,
  ): Promise<Map<string, StoredChunkVectors>>;
  /**
   * Adds (or replaces) chunk vectors and embeddings of passages already stored, in one transaction, for
   * each passage only while it still has the title and text they were computed from (else it is skipped).
   */
  attach(records: readonly AttachRecord[]): Promise<AttachReport>;

  close(): Promise<void>;
}

/** The store cannot be reached or read (server down, connection lost, folder gone): retrying later may
 * work. Bad input and constraint violations are plain errors. */
export class StoreUnavailableError extends Error {
  constructor(
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`store ${store} unavailable: ${message}`, options);
    this.name = "StoreUnavailableError";
  }
}

export const DEFAULT_TITLE_WEIGHT = 8;

/** Ids of embedders and encoders: letters, digits and . _ : - (they appear in SQL and file names). */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function checkId(what: string, id: string): void {
  if (typeof id !== "string" || !ID_PATTERN.test(id))
    throw new Error(`${what} ${JSON.stringify(id)}: use 1-128 letters, digits or . _ : -`);
}

/** What a passage is embedded from for dense retrieval: its title, then its text. */
export const passageText = (p: { title: string; text: string }): string => `${p.title}\n${p.text}`;

/** The words of a free-text question as a full-text query: punctuation and query syntax (quotes,
 * colons, brackets, + and -) become spaces, so any user text is a valid query. */
export function toQuery(question: string): string {
  return question
    .normalize("NFKC")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}
