// Live ingestion: documents (JSONL of {id, title, text, source?, meta?}) are cut into passages with the
// corpus's own passage cutter, given chunk vectors and dense embeddings when a model is at hand, and
// written to the store as one batch (one transaction). Documents that cannot be read (not UTF-8, not
// JSON, fields missing, too long, no text) are reported by line and left out; if the write itself fails
// nothing is written.
import { cutPassages, DEFAULT_MAX_WORDS } from "../data/derived/passages.js";
import {
  passageText,
  type DocumentRecord,
  type PassageMeta,
  type PassageRecord,
  type VectorDtype,
  type WriteReport,
} from "./types.js";

export interface IngestDocument {
  id: string;
  title: string;
  text: string;
  source?: string;
  meta?: PassageMeta;
}

/** Makes the REFRAG chunk vectors of a passage text ([rows, cols], rows = chunks of k tokens). */
export interface ChunkEncoder {
  readonly id: string;
  readonly k: number;
  encode(text: string): { rows: number; cols: number; data: Float32Array };
}

/** Makes unit-length dense embeddings (see src/retrieval/dense.ts). */
export interface PassageEmbedder {
  readonly id: string;
  embed(texts: readonly string[]): Float32Array[];
}

export interface IngestOptions {
  chunkEncoder?: ChunkEncoder | null;
  embedder?: PassageEmbedder | null;
  /** Storage of chunk vectors (default BF16: half the bytes). */
  dtype?: VectorDtype;
  maxWords?: number;
  /** Longest document text accepted, in characters (default 5,000,000). */
  maxChars?: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface IngestFailure {
  line: number;
  id: string | null;
  error: string;
}

export interface ParsedDocuments {
  documents: { line: number; doc: IngestDocument }[];
  failures: IngestFailure[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Longest document text accepted by default, in characters. */
export const DEFAULT_MAX_CHARS = 5_000_000;

/** Splits JSONL bytes into documents and per-line failures. */
export function parseDocuments(bytes: Uint8Array, maxChars = DEFAULT_MAX_CHARS): ParsedDocuments {
  const out: ParsedDocuments = { documents: [], failures: [] };
  const seen = new Map<string, number>();
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    line++;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    if (raw.length === 0 || (raw.length === 1 && raw[0] === 0x0d)) continue;
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      out.failures.push({ line, id: null, error: "not valid UTF-8" });
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      out.failures.push({ line, id: null, error: `not valid JSON (${(e as Error).message})` });
      continue;
    }
    addDocument(out, seen, line, v, maxChars, "line");
  }
  return out;
}

/** Documents given as a list of JSON values (the HTTP route): `line` is the 1-based position in the list. */
export function parseDocumentList(values: readonly unknown[], maxChars = DEFAULT_MAX_CHARS): ParsedDocuments {
  const out: ParsedDocuments = { documents: [], failures: [] };
  const seen = new Map<string, number>();
  values.forEach((v, i) => addDocument(out, seen, i + 1, v, maxChars, "item"));
  return out;
}

/** Checks one document ({id, title, text, source?, meta?}) and adds it, or its failure, to `out`. */
function addDocument(
  out: ParsedDocuments,
  seen: Map<string, number>,
  line: number,
  v: unknown,
  maxChars: number,
  where: string,
): void {
  const fail = (error: string, id: string | null = null): void => {
    out.failures.push({ line, id, error });
  };
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail("not a JSON object");
  const d = v as Record<string, unknown>;
  const id = typeof d.id === "string" && d.id.length > 0 ? d.id : null;
  if (id === null) fail('"id" must be a non-empty string');
  else if (typeof d.title !== "string") fail('"title" must be a string', id);
  else if (typeof d.text !== "string") fail('"text" must be a string', id);
  else if (d.text.length > maxChars)
    fail(`text is ${d.text.length} characters; the limit is ${maxChars}`, id);
  else if (d.text.includes("\u0000") || d.title.includes("\u0000")) fail("text contains a NUL character", id);
  else if (d.source !== undefined && typeof d.source !== "string") fail('"source" must be a string', id);
  else if (d.meta !== undefined && (typeof d.meta !== "object" || d.meta === null || Array.isArray(d.meta)))
    fail('"meta" must be an object', id);
  else if (seen.has(id)) fail(`document ${id} already appears on ${where} ${seen.get(id)}`, id);
  else {
    seen.set(id, line);
    out.documents.push({
      line,
      doc: {
        id,
        title: d.title,
        text: d.text,
        source: d.source,
        meta: d.meta as PassageMeta | undefined,
      },
    });
  }
}

/** Passages, vectors and embeddings of documents (documents that yield no passage become failures). */
export function prepareDocuments(
  parsed: ParsedDocuments,
  opts: IngestOptions = {},
): { records: DocumentRecord[]; failures: IngestFailure[] } {
  const failures = [...parsed.failures];
  const records: DocumentRecord[] = [];
  const dtype = opts.dtype ?? "BF16";
  let done = 0;
  for (const { line, doc } of parsed.documents) {
    const cut = cutPassages(
      { id: doc.id, source: doc.source ?? "", title: doc.title, text: doc.text },
      opts.maxWords ?? DEFAULT_MAX_WORDS,
    );
    if (cut.length === 0) {
      failures.push({ line, id: doc.id, error: "no text to index" });
      continue;
    }
    const embeddings = opts.embedder ? opts.embedder.embed(cut.map(passageText)) : null;
    const passages: PassageRecord[] = cut.map((p, i) => {
      const rec: PassageRecord = { passage: { ...p, ...(doc.meta ? { meta: doc.meta } : {}) } };
      if (opts.chunkEncoder) {
        const v = opts.chunkEncoder.encode(p.text);
        rec.chunkVectors = [{ encoderId: opts.chunkEncoder.id, k: opts.chunkEncoder.k, dtype, ...v }];
      }
      if (embeddings !== null && opts.embedder) rec.embeddings = { [opts.embedder.id]: embeddings[i] };
      return rec;
    });
    records.push({ docId: doc.id, passages });
    opts.onProgress?.(++done, parsed.documents.length, "documents");
  }
  return { records, failures };
}

export interface IngestReport extends WriteReport {
  failures: IngestFailure[];
}

/** Parses, prepares and writes documents as one batch. */
export async function ingest(
  store: { upsertDocuments(docs: readonly DocumentRecord[]): Promise<WriteReport> },
  bytes: Uint8Array,
  opts: IngestOptions = {},
): Promise<IngestReport> {
  return ingestParsed(store, parseDocuments(bytes, opts.maxChars), opts);
}

/**
 * Prepares parsed documents and writes those that can be written as one batch (`allOrNothing`: none when
 * any document failed). The failures are reported either way.
 */
export async function ingestParsed(
  store: { upsertDocuments(docs: readonly DocumentRecord[]): Promise<WriteReport> },
  parsed: ParsedDocuments,
  opts: IngestOptions & { allOrNothing?: boolean } = {},
): Promise<IngestReport> {
  const none = { documents: 0, passages: 0, removed: 0 };
  if (opts.allOrNothing && parsed.failures.length > 0) return { ...none, failures: parsed.failures };
  const { records, failures } = prepareDocuments(parsed, opts);
  if (records.length === 0 || (opts.allOrNothing && failures.length > 0)) return { ...none, failures };
  return { ...(await store.upsertDocuments(records)), failures };
}
