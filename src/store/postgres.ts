// The passage store on Postgres with pgvector: many server replicas share one database. Full text is
// ranked in SQL (a weighted tsvector, title A and text D, ranked by ts_rank_cd), dense embeddings sit in
// `vector` columns under one partial HNSW index per embedder, and a batch of documents is written in one
// transaction, so every replica sees all of it or none of it. Tables live in one schema (default
// "refrag"; `?schema=name` in the URL picks another), created and upgraded by migrate.ts.
import { createHash } from "node:crypto";
import { checkAttach, checkBatch, checkK, vectorBytes, vectorsFromBytes } from "./batch.js";
import { ident, migrate, schemaVersion, loadMigrations } from "./migrate.js";
import { pgClient, type PgClientOptions, type SqlClient, type SqlRunner } from "./sql.js";
import {
  checkId,
  DEFAULT_TITLE_WEIGHT,
  toQuery,
  type AttachRecord,
  type AttachReport,
  type DocumentRecord,
  type EmbedderInfo,
  type PassageStore,
  type SearchHit,
  type StoredChunkVectors,
  type StoredPassage,
  type StoreInfo,
  type VectorDtype,
  type WriteOptions,
  type WriteReport,
} from "./types.js";

export const DEFAULT_SCHEMA = "refrag";

/**
 * How full-text hits are ranked. "idf" (the default): BM25's shape in SQL — every query lexeme's
 * ts_rank (a saturating function of its weighted occurrences: title A, text D) weighted by its inverse
 * document frequency ln(1 + (N − n + 0.5) / (n + 0.5)), counted live over the store, and summed. "cd":
 * ts_rank_cd of the OR of all lexemes (no IDF: a common word weighs as much as a rare one). `normalization`
 * is Postgres' rank normalisation bit mask (0 none, 1 log length, 2 length, 8 unique words, 32 r/(r+1)).
 * Chosen on the validation questions (docs/NOTES.md).
 */
export interface TextRanking {
  method: "idf" | "cd";
  normalization: number;
}
export const DEFAULT_TEXT_RANKING: TextRanking = { method: "idf", normalization: 0 };
const DOC_LOCK_BUCKETS = 32;

/** FNV-1a of a document id, modulo DOC_LOCK_BUCKETS (the same in every process). */
function docBucket(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h % DOC_LOCK_BUCKETS;
}

/** Rows per INSERT statement in a batch write. */
const WRITE_CHUNK = 256;

export interface PostgresStoreOptions {
  /** Schema holding the store's tables (default "refrag"). */
  schema?: string;
  /** Title weight of a store created now (an existing store keeps its own). */
  titleWeight?: number;
  /** Create or upgrade the schema (default true); false refuses a database without a current store. */
  migrate?: boolean;
  /** Full-text ranking (default DEFAULT_TEXT_RANKING). */
  textRanking?: TextRanking;
}

interface PassageRow {
  id: string;
  doc_id: string;
  title: string;
  text: string;
  meta: Record<string, string | number | boolean | null> | null;
}

const toPassage = (r: PassageRow): StoredPassage => ({
  id: r.id,
  doc_id: r.doc_id,
  title: r.title,
  text: r.text,
  ...(r.meta !== null && Object.keys(r.meta).length > 0 ? { meta: r.meta } : {}),
});

export function vectorLiteral(v: Float32Array): string {
  return `[${Array.from(v).join(",")}]`;
}

function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(",").map(Number));
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** Splits `?schema=name` off a postgres:// URL. */
export function parseStoreUrl(url: string): { url: string; schema: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a postgres:// URL: ${url.replace(/:[^:@/]*@/, ":***@")}`);
  }
  const schema = u.searchParams.get("schema") ?? DEFAULT_SCHEMA;
  u.searchParams.delete("schema");
  return { url: u.toString(), schema };
}

export class PostgresStore implements PassageStore {
  readonly kind = "postgres" as const;
  private readonly s: string;
  private readonly dims = new Map<string, number>();

  private constructor(
    private readonly db: SqlClient,
    readonly schema: string,
    readonly titleWeight: number,
    private readonly ownsClient: boolean,
    readonly textRanking: TextRanking,
  ) {
    this.s = ident(schema);
  }

  get location(): string {
    return this.schema === DEFAULT_SCHEMA ? this.db.label : `${this.db.label} (schema ${this.schema})`;
  }

  /** Opens (and by default creates or upgrades) the store in `schema` over an SQL client. */
  static async open(
    db: SqlClient,
    opts: PostgresStoreOptions = {},
    ownsClient = false,
  ): Promise<PostgresStore> {
    const schema = opts.schema ?? DEFAULT_SCHEMA;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
      throw new Error(`schema ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
    const tw = opts.titleWeight ?? DEFAULT_TITLE_WEIGHT;
    if (!Number.isInteger(tw) || tw < 1) throw new Error(`titleWeight must be a positive integer, got ${tw}`);
    if (opts.migrate ?? true) await migrate(db, schema);
    else {
      const v = await schemaVersion(db, schema);
      const latest = loadMigrations().length;
      if (v !== latest)
        throw new Error(
          v === 0
            ? `${db.label} has no refrag store in schema ${schema} (create it with \`refrag index build --store …\`)`
            : `store schema ${schema} is at version ${v}, this refrag expects ${latest} (open it once with migrations, e.g. \`refrag index add\`)`,
        );
    }
    const s = ident(schema);
    await db.query(
      `INSERT INTO ${s}.settings (key, value) VALUES ('title_weight', $1) ON CONFLICT DO NOTHING`,
      [String(tw)],
    );
    const rows = await db.query<{ value: string }>(
      `SELECT value FROM ${s}.settings WHERE key = 'title_weight'`,
    );
    const ranking = opts.textRanking ?? DEFAULT_TEXT_RANKING;
    if (!["idf", "cd"].includes(ranking.method) || !Number.isInteger(ranking.normalization))
      throw new Error(
        `textRanking: method idf or cd and an integer normalization, got ${JSON.stringify(ranking)}`,
      );
    return new PostgresStore(db, schema, Number(rows[0].value), ownsClient, ranking);
  }

  /** Connects to a server (postgres://user:pass@host:port/db?schema=name). */
  static async connect(
    url: string,
    opts: PostgresStoreOptions & PgClientOptions = {},
  ): Promise<PostgresStore> {
    const parsed = parseStoreUrl(url);
    const db = await pgClient(parsed.url, opts);
    try {
      return await PostgresStore.open(db, { schema: parsed.schema, ...opts }, true);
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  /** Drops the schema and everything in it. */
  static async drop(db: SqlClient, schema = DEFAULT_SCHEMA): Promise<void> {
    await db.exec(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`);
  }

  private t(table: string): string {
    return `${this.s}.${table}`;
  }

  async count(): Promise<number> {
    const r = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t("passages")}`);
    return r[0].n;
  }

  async info(): Promise<StoreInfo> {
    return {
      kind: this.kind,
      location: this.location,
      titleWeight: this.titleWeight,
      passages: await this.count(),
      embedders: await this.embedders(),
    };
  }

  async get(ids: readonly string[]): Promise<StoredPassage[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<PassageRow>(
      `SELECT id, doc_id, title, text, meta FROM ${this.t("passages")} WHERE id = ANY($1::text[])`,
      [[...ids]],
    );
    const byId = new Map(rows.map((r) => [r.id, toPassage(r)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async embedders(): Promise<EmbedderInfo[]> {
    return this.db.query<EmbedderInfo>(`SELECT id, dim FROM ${this.t("embedders")} ORDER BY id`);
  }

  private async embedderDim(id: string): Promise<number | undefined> {
    const known = this.dims.get(id);
    if (known !== undefined) return known;
    const r = await this.db.query<{ dim: number }>(`SELECT dim FROM ${this.t("embedders")} WHERE id = $1`, [
      id,
    ]);
    if (r.length > 0) this.dims.set(id, r[0].dim);
    return r[0]?.dim;
  }

  /** Registers an embedder and its HNSW index inside a transaction (concurrent writers wait on the lock). */
  private async ensureEmbedder(tx: SqlRunner, id: string, dim: number): Promise<void> {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${this.schema}/embedder/${id}`]);
    const r = await tx.query<{ dim: number }>(`SELECT dim FROM ${this.t("embedders")} WHERE id = $1`, [id]);
    if (r.length > 0) {
      if (r[0].dim !== dim)
        throw new Error(`embedder ${id} stores ${r[0].dim}-dimensional embeddings; the batch has ${dim}`);
      return;
    }
    const indexName = `embeddings_hnsw_${createHash("sha256").update(id).digest("hex").slice(0, 16)}`;
    await tx.query(`INSERT INTO ${this.t("embedders")} (id, dim, index_name) VALUES ($1, $2, $3)`, [
      id,
      dim,
      indexName,
    ]);
    // The id is checked against ID_PATTERN, so quoting it as a literal is safe; a literal (not a
    // parameter) is what lets the planner match queries to this partial index.
    await tx.exec(
      `CREATE INDEX ${ident(indexName)} ON ${this.t("embeddings")} USING hnsw ((embedding::vector(${dim})) vector_cosine_ops) WHERE embedder_id = '${id}'`,
    );
  }

  async upsertDocuments(docs: readonly DocumentRecord[], opts: WriteOptions = {}): Promise<WriteReport> {
    const dims = checkBatch(docs);
    const docIds = docs.map((d) => d.docId);
    const records = docs.flatMap((d) => d.passages);
    const total = records.length;
    const report = await this.db.transaction(async (tx) => {
      // Writers of the same documents (two replicas ingesting) take turns: one lock per bucket of
      // document ids (at most DOC_LOCK_BUCKETS locks, so a batch of thousands stays within the server's
      // lock table), taken in order to avoid deadlocks.
      const buckets = [...new Set(docIds.map(docBucket))].sort((a, b) => a - b);
      for (const b of buckets)
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1), $2)`, [`${this.schema}/doc`, b]);
      for (const [id, dim] of [...dims].sort()) await this.ensureEmbedder(tx, id, dim);
      const fresh = new Set(records.map((r) => r.passage.id));
      const clash = await tx.query<{ id: string; doc_id: string }>(
        `SELECT id, doc_id FROM ${this.t("passages")} WHERE id = ANY($1::text[]) AND doc_id <> ALL($2::text[]) LIMIT 1`,
        [[...fresh], docIds],
      );
      if (clash.length > 0)
        throw new Error(`passage id ${clash[0].id} is already stored under document ${clash[0].doc_id}`);
      const old = await tx.query<{ id: string }>(
        `DELETE FROM ${this.t("passages")} WHERE doc_id = ANY($1::text[]) RETURNING id`,
        [docIds],
      );
      let written = 0;
      for (let i = 0; i < total; i += WRITE_CHUNK) {
        const part = records.slice(i, i + WRITE_CHUNK);
        await this.insertPassages(tx, part);
        written += part.length;
        await opts.onProgress?.(written, total);
      }
      return { documents: docs.length, passages: total, removed: old.filter((r) => !fresh.has(r.id)).length };
    });
    for (const [id, dim] of dims) this.dims.set(id, dim);
    return report;
  }

  private async insertPassages(tx: SqlRunner, part: DocumentRecord["passages"]): Promise<void> {
    const p = part.map((r) => r.passage);
    try {
      await tx.query(
        `INSERT INTO ${this.t("passages")} (id, doc_id, title, text, meta)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])`,
        [
          p.map((x) => x.id),
          p.map((x) => x.doc_id),
          p.map((x) => x.title),
          p.map((x) => x.text),
          p.map((x) => JSON.stringify(x.meta ?? {})),
        ],
      );
    } catch (e) {
      if ((e as { code?: unknown }).code === "23505")
        throw new Error(
          `a passage id of this batch (${p[0].id}…) is already stored under another document: ${(e as Error).message}`,
          { cause: e },
        );
      throw e;
    }
    await this.insertDerived(
      tx,
      part.map((r) => ({ id: r.passage.id, ...r })),
      false,
    );
  }

  /** Chunk vectors and embeddings of passages (replacing what is stored for the same keys when `replace`). */
  private async insertDerived(
    tx: SqlRunner,
    recs: readonly Pick<AttachRecord, "id" | "chunkVectors" | "embeddings">[],
    replace: boolean,
  ): Promise<void> {
    const cv = recs.flatMap((r) => (r.chunkVectors ?? []).map((c) => ({ id: r.id, c })));
    if (cv.length > 0)
      await tx.query(
        `INSERT INTO ${this.t("chunk_vectors")} (passage_id, encoder_id, k, dtype, rows, cols, data)
         SELECT a, b, c, d, e, f, decode(g, 'hex')
         FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::int[], $7::text[])
           AS t(a, b, c, d, e, f, g)
         ${replace ? "ON CONFLICT (passage_id, encoder_id, k) DO UPDATE SET dtype = EXCLUDED.dtype, rows = EXCLUDED.rows, cols = EXCLUDED.cols, data = EXCLUDED.data" : ""}`,
        [
          cv.map((x) => x.id),
          cv.map((x) => x.c.encoderId),
          cv.map((x) => x.c.k),
          cv.map((x) => x.c.dtype),
          cv.map((x) => x.c.rows),
          cv.map((x) => x.c.cols),
          cv.map((x) => hex(vectorBytes(x.c.data, x.c.dtype))),
        ],
      );
    const emb = recs.flatMap((r) =>
      Object.entries(r.embeddings ?? {}).map(([e, v]) => ({ id: r.id, e, v: vectorLiteral(v) })),
    );
    if (emb.length > 0)
      await tx.query(
        `INSERT INTO ${this.t("embeddings")} (passage_id, embedder_id, embedding)
         SELECT a, b, c::vector FROM unnest($1::text[], $2::text[], $3::text[]) AS t(a, b, c)
         ${replace ? "ON CONFLICT (passage_id, embedder_id) DO UPDATE SET embedding = EXCLUDED.embedding" : ""}`,
        [emb.map((x) => x.id), emb.map((x) => x.e), emb.map((x) => x.v)],
      );
  }

  async attach(records: readonly AttachRecord[]): Promise<AttachReport> {
    const dims = checkAttach(records);
    if (records.length === 0) return { attached: 0, skipped: [] };
    const report = await this.db.transaction(async (tx) => {
      for (const [id, dim] of [...dims].sort()) await this.ensureEmbedder(tx, id, dim);
      // FOR SHARE: a batch replacing one of these passages waits for this transaction, so the passages
      // compared here are the ones the vectors are attached to.
      const rows = await tx.query<{ id: string; title: string; text: string }>(
        `SELECT id, title, text FROM ${this.t("passages")} WHERE id = ANY($1::text[]) FOR SHARE`,
        [records.map((r) => r.id)],
      );
      const live = new Map(rows.map((r) => [r.id, r]));
      const match = records.filter((r) => {
        const p = live.get(r.id);
        return p !== undefined && p.title === r.title && p.text === r.text;
      });
      for (let i = 0; i < match.length; i += WRITE_CHUNK)
        await this.insertDerived(tx, match.slice(i, i + WRITE_CHUNK), true);
      const ok = new Set(match.map((r) => r.id));
      return { attached: match.length, skipped: records.filter((r) => !ok.has(r.id)).map((r) => r.id) };
    });
    for (const [id, dim] of dims) this.dims.set(id, dim);
    return report;
  }

  async searchText(question: string, k: number): Promise<SearchHit[]> {
    checkK("searchText", k);
    const query = toQuery(question);
    if (query.length === 0) return [];
    // Any word matches (OR of the question's lexemes, as BM25 does); the title (A) counts titleWeight
    // times the text (D). Weights are {D, C, B, A}.
    const weights = `{${1 / this.titleWeight},0,0,1}`;
    const { method, normalization } = this.textRanking;
    const passages = this.t("passages");
    const sql =
      method === "cd"
        ? `WITH q AS (
             SELECT (SELECT string_agg(quote_literal(l), ' | ')
                     FROM unnest(tsvector_to_array(to_tsvector('english'::regconfig, $1))) AS l)::tsquery AS q
           )
           SELECT p.id, p.doc_id, p.title, p.text, p.meta, ts_rank_cd($3::float4[], p.tsv, q.q, $4) AS score
           FROM ${passages} p, q
           WHERE q.q IS NOT NULL AND p.tsv @@ q.q
           ORDER BY score DESC, p.id
           LIMIT $2`
        : // Document frequencies come from the GIN index (one count per query lexeme), so they are exact
          // and live: a batch another replica commits changes them at once.
          `WITH terms AS (
             SELECT quote_literal(l)::tsquery AS tq
             FROM unnest(tsvector_to_array(to_tsvector('english'::regconfig, $1))) AS l
           ),
           n AS (SELECT count(*)::float8 AS total FROM ${passages}),
           w AS (
             SELECT t.tq, ln(1 + (n.total - df.c + 0.5) / (df.c + 0.5)) AS idf
             FROM terms t CROSS JOIN n
             CROSS JOIN LATERAL (SELECT count(*)::float8 AS c FROM ${passages} p WHERE p.tsv @@ t.tq) df
             WHERE df.c > 0
           ),
           q AS (SELECT (SELECT string_agg(tq::text, ' | ') FROM w)::tsquery AS q)
           SELECT p.id, p.doc_id, p.title, p.text, p.meta,
                  (SELECT sum(w.idf * ts_rank($3::float4[], p.tsv, w.tq, $4)) FROM w) AS score
           FROM ${passages} p, q
           WHERE q.q IS NOT NULL AND p.tsv @@ q.q
           ORDER BY score DESC, p.id
           LIMIT $2`;
    const rows = await this.db.query<PassageRow & { score: number }>(sql, [query, k, weights, normalization]);
    return rows.map((r) => ({ ...toPassage(r), score: Number(r.score) }));
  }

  async searchDense(embedderId: string, vector: Float32Array, k: number): Promise<SearchHit[]> {
    checkK("searchDense", k);
    checkId("searchDense: embedder", embedderId);
    const dim = await this.embedderDim(embedderId);
    if (dim === undefined)
      throw new Error(`searchDense: the store has no embeddings of embedder ${embedderId}`);
    if (vector.length !== dim)
      throw new Error(
        `searchDense: query vector has ${vector.length} values, embedder ${embedderId} has ${dim}`,
      );
    return this.db.transaction(async (tx) => {
      // The HNSW search returns at most ef_search rows: keep it above k.
      await tx.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(Math.max(40, 2 * k))]);
      const rows = await tx.query<PassageRow & { score: number }>(
        `SELECT p.id, p.doc_id, p.title, p.text, p.meta, 1 - d.dist AS score
         FROM (SELECT passage_id, embedding::vector(${dim}) <=> $1::vector(${dim}) AS dist
               FROM ${this.t("embeddings")}
               WHERE embedder_id = '${embedderId}'
               ORDER BY embedding::vector(${dim}) <=> $1::vector(${dim})
               LIMIT $2) d
         JOIN ${this.t("passages")} p ON p.id = d.passage_id
         ORDER BY d.dist, p.id`,
        [vectorLiteral(vector), k],
      );
      return rows.map((r) => ({ ...toPassage(r), score: Number(r.score) }));
    });
  }

  /** The query plan of a dense search (tests check that it uses the embedder's HNSW index). */
  async explainDense(embedderId: string, vector: Float32Array, k: number): Promise<string> {
    checkId("explainDense: embedder", embedderId);
    const dim = await this.embedderDim(embedderId);
    if (dim === undefined) throw new Error(`explainDense: no embedder ${embedderId}`);
    return this.db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('enable_seqscan', 'off', true)`);
      const rows = await tx.query<{ "QUERY PLAN": string }>(
        `EXPLAIN SELECT passage_id FROM ${this.t("embeddings")} WHERE embedder_id = '${embedderId}'
         ORDER BY embedding::vector(${dim}) <=> $1::vector(${dim}) LIMIT $2`,
        [vectorLiteral(vector), k],
      );
      return rows.map((r) => r["QUERY PLAN"]).join("\n");
    });
  }

  async getEmbeddings(ids: readonly string[], embedderId: string): Promise<Map<string, Float32Array>> {
    const rows = await this.db.query<{ passage_id: string; v: string }>(
      `SELECT passage_id, embedding::text AS v FROM ${this.t("embeddings")}
       WHERE embedder_id = $1 AND passage_id = ANY($2::text[])`,
      [embedderId, [...ids]],
    );
    return new Map(rows.map((r) => [r.passage_id, parseVector(r.v)]));
  }

  async getChunkVectors(
    ids: readonly string[],
    encoderId: string,
    k: number,
  ): Promise<Map<string, StoredChunkVectors>> {
    if (ids.length === 0) return new Map();
    // One statement, one snapshot: the text returned is the one the vectors were written with.
    const rows = await this.db.query<{
      passage_id: string;
      dtype: VectorDtype;
      rows: number;
      cols: number;
      data: Uint8Array;
      text: string;
    }>(
      `SELECT c.passage_id, c.dtype, c.rows, c.cols, c.data, p.text
       FROM ${this.t("chunk_vectors")} c JOIN ${this.t("passages")} p ON p.id = c.passage_id
       WHERE c.encoder_id = $1 AND c.k = $2 AND c.passage_id = ANY($3::text[])`,
      [encoderId, k, [...ids]],
    );
    return new Map(
      rows.map((r) => [
        r.passage_id,
        {
          encoderId,
          k,
          dtype: r.dtype,
          rows: r.rows,
          cols: r.cols,
          data: vectorsFromBytes(r.data, r.dtype, `chunk vectors of ${r.passage_id}`),
          text: r.text,
        },
      ]),
    );
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.db.close();
  }
}
