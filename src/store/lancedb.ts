// The passage store in an embedded LanceDB folder (the default): one process owns it. Full text is
// LanceDB's BM25 index over `search_text` (the title repeated titleWeight times, then the text); chunk
// vectors sit in one table and each embedder's embeddings in a table of its own (exact cosine search).
//
// Atomic batches without multi-table transactions: every row carries the revision (`rev`) of the batch
// that wrote it. A batch first writes its vectors and embeddings under a new revision, where no reader
// looks, then commits its passages with one merge-insert on the passages table (LanceDB commits one
// operation on one table atomically). Readers only take vector rows whose revision is their passage's.
// A marker file names the batch while it runs, so a batch cut short (crash, SIGKILL) is cleaned up by
// the next write; until then its rows are invisible.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import * as lancedb from "@lancedb/lancedb";
import { Binary, Field, FixedSizeList, Float32, Int32, Schema, Utf8 } from "apache-arrow";
import { checkAttach, checkBatch, checkK, vectorBytes, vectorsFromBytes } from "./batch.js";
import { writeFileAtomicSync } from "../io/atomic.js";
import {
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

const PASSAGES = "passages";
const CHUNK_VECTORS = "chunk_vectors";
const SETTINGS_FILE = "refrag-store.json";

interface Settings {
  format: 1;
  titleWeight: number;
  embedders: (EmbedderInfo & { table: string })[];
}

export interface LanceCreateOptions {
  titleWeight?: number;
  /** Replace an existing folder (default: refuse). */
  overwrite?: boolean;
  /** Rows per write (default 4096). */
  batchSize?: number;
  onProgress?: (written: number, total: number) => void;
  /** Create a store without passages (they come later through upsertDocuments). */
  allowEmpty?: boolean;
}

type Row = Record<string, unknown>;

const sqlStr = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const inList = (ids: Iterable<string>): string => [...ids].map(sqlStr).join(", ");

export function searchText(p: { title: string; text: string }, titleWeight: number): string {
  return `${`${p.title}\n`.repeat(titleWeight)}${p.text}`;
}

function passageRow(p: StoredPassage, titleWeight: number, rev: string): Row {
  return {
    id: p.id,
    doc_id: p.doc_id,
    title: p.title,
    text: p.text,
    search_text: searchText(p, titleWeight),
    meta: JSON.stringify(p.meta ?? {}),
    rev,
  };
}

function toPassage(r: Row): StoredPassage {
  const meta = typeof r.meta === "string" ? (JSON.parse(r.meta) as StoredPassage["meta"]) : undefined;
  return {
    id: String(r.id),
    doc_id: String(r.doc_id),
    title: String(r.title),
    text: String(r.text),
    ...(meta !== undefined && Object.keys(meta).length > 0 ? { meta } : {}),
  };
}

const passageSchema = new Schema(
  ["id", "doc_id", "title", "text", "search_text", "meta", "rev"].map((n) => new Field(n, new Utf8(), false)),
);

const chunkSchema = new Schema([
  new Field("passage_id", new Utf8(), false),
  new Field("rev", new Utf8(), false),
  new Field("encoder_id", new Utf8(), false),
  new Field("k", new Int32(), false),
  new Field("dtype", new Utf8(), false),
  new Field("rows", new Int32(), false),
  new Field("cols", new Int32(), false),
  new Field("data", new Binary(), false),
]);

const embeddingSchema = (dim: number): Schema =>
  new Schema([
    new Field("passage_id", new Utf8(), false),
    new Field("rev", new Utf8(), false),
    new Field("vector", new FixedSizeList(dim, new Field("item", new Float32(), true)), false),
  ]);

export class LanceStore implements PassageStore {
  readonly kind = "lancedb" as const;

  private constructor(
    private readonly db: lancedb.Connection,
    private readonly passages: lancedb.Table,
    readonly location: string,
    private settings: Settings,
    /** Folders written by an older refrag: no rev/meta columns until the first write adds them. */
    private legacy: boolean,
  ) {}

  get titleWeight(): number {
    return this.settings.titleWeight;
  }

  /** Writes of this process take turns (a batch's recovery step would otherwise undo a batch in flight). */
  private writing: Promise<unknown> = Promise.resolve();
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => {});
    return run;
  }

  /** A new store folder, written beside `dir` and renamed into place, holding `passages` (one revision). */
  static async create(
    dir: string,
    passages: readonly StoredPassage[],
    opts: LanceCreateOptions = {},
  ): Promise<LanceStore> {
    if (passages.length === 0 && !opts.allowEmpty) throw new Error("index build: no passages");
    if (existsSync(dir) && !opts.overwrite)
      throw new Error(`index build: ${dir} exists (pass overwrite to replace it)`);
    const titleWeight = opts.titleWeight ?? DEFAULT_TITLE_WEIGHT;
    if (!Number.isInteger(titleWeight) || titleWeight < 1)
      throw new Error(`titleWeight must be a positive integer, got ${titleWeight}`);
    // The same checks as a write batch (one "document" per passage is enough to check fields and ids).
    const seen = new Set<string>();
    passages.forEach((p, i) => {
      for (const key of ["id", "doc_id", "title", "text"] as const)
        if (typeof p[key] !== "string")
          throw new Error(`passage ${i}: "${key}" must be a string, got ${JSON.stringify(p[key])}`);
      if (p.id.length === 0) throw new Error(`passage ${i}: empty id`);
      if (seen.has(p.id)) throw new Error(`passage ${i}: duplicate id ${p.id}`);
      seen.add(p.id);
    });
    const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    const db = await lancedb.connect(tmp);
    try {
      const batch = opts.batchSize ?? 4096;
      const rev = randomUUID();
      const rows = (from: number): Row[] =>
        passages.slice(from, from + batch).map((p) => passageRow(p, titleWeight, rev));
      const table =
        passages.length === 0
          ? await db.createEmptyTable(PASSAGES, passageSchema)
          : await db.createTable(PASSAGES, rows(0));
      opts.onProgress?.(Math.min(batch, passages.length), passages.length);
      for (let i = batch; i < passages.length; i += batch) {
        await table.add(rows(i));
        opts.onProgress?.(Math.min(i + batch, passages.length), passages.length);
      }
      await table.createIndex("search_text", { config: lancedb.Index.fts() });
      await table.createIndex("doc_id", { config: lancedb.Index.btree() });
      (await db.createEmptyTable(CHUNK_VECTORS, chunkSchema)).close();
      table.close();
      const settings: Settings = { format: 1, titleWeight, embedders: [] };
      writeFileSync(join(tmp, SETTINGS_FILE), JSON.stringify(settings, null, 2) + "\n");
    } finally {
      db.close();
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return LanceStore.open(dir);
  }

  static async open(dir: string): Promise<LanceStore> {
    if (!existsSync(dir)) throw new Error(`index ${dir} not found (build it with \`refrag index build\`)`);
    // Connecting writes LanceDB files into the folder: only connect to a folder that holds our table.
    if (!existsSync(join(dir, `${PASSAGES}.lance`)))
      throw new Error(
        `${dir} is not a passage index (no "${PASSAGES}" table; build one with \`refrag index build\`)`,
      );
    const db = await lancedb.connect(dir);
    const names = await db.tableNames();
    if (!names.includes(PASSAGES)) {
      db.close();
      throw new Error(`${dir} is not a passage index (no "${PASSAGES}" table)`);
    }
    const file = join(dir, SETTINGS_FILE);
    const legacy = !existsSync(file);
    // An index folder from before the store existed was built with the default title weight.
    const settings: Settings = legacy
      ? { format: 1, titleWeight: DEFAULT_TITLE_WEIGHT, embedders: [] }
      : (JSON.parse(readFileSync(file, "utf8")) as Settings);
    return new LanceStore(db, await db.openTable(PASSAGES), dir, settings, legacy);
  }

  private saveSettings(): void {
    const file = join(this.location, SETTINGS_FILE);
    writeFileAtomicSync(file, JSON.stringify(this.settings, null, 2) + "\n", "index settings");
  }

  /** Adds the columns and tables of the store format to an index folder from an older refrag. */
  private async upgrade(): Promise<void> {
    if (!this.legacy) return;
    await this.passages.addColumns([
      { name: "meta", valueSql: "'{}'" },
      { name: "rev", valueSql: "''" },
    ]);
    if (!(await this.db.tableNames()).includes(CHUNK_VECTORS))
      (await this.db.createEmptyTable(CHUNK_VECTORS, chunkSchema)).close();
    this.saveSettings();
    this.legacy = false;
  }

  async count(): Promise<number> {
    return this.passages.countRows();
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

  private get columns(): string[] {
    return this.legacy ? ["id", "doc_id", "title", "text"] : ["id", "doc_id", "title", "text", "meta", "rev"];
  }

  private async rowsById(ids: readonly string[]): Promise<Map<string, Row>> {
    if (ids.length === 0) return new Map();
    const rows = await this.passages
      .query()
      .where(`id IN (${inList(new Set(ids))})`)
      .select(this.columns)
      .toArray();
    return new Map(rows.map((r: Row) => [String(r.id), r]));
  }

  async get(ids: readonly string[]): Promise<StoredPassage[]> {
    const byId = await this.rowsById(ids);
    return ids.flatMap((id) => {
      const r = byId.get(id);
      return r === undefined ? [] : [toPassage(r)];
    });
  }

  async embedders(): Promise<EmbedderInfo[]> {
    return this.settings.embedders
      .map(({ id, dim }) => ({ id, dim }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  private embedderTable(id: string): string {
    return `emb_${createHash("sha256").update(id).digest("hex").slice(0, 16)}`;
  }

  async searchText(question: string, k: number): Promise<SearchHit[]> {
    checkK("search", k);
    const query = toQuery(question);
    if (query.length === 0) return [];
    const rows = await this.passages.search(query, "fts", "search_text").limit(k).toArray();
    return rows.map((r: Row) => ({ ...toPassage(r), score: Number(r._score) }));
  }

  async searchDense(embedderId: string, vector: Float32Array, k: number): Promise<SearchHit[]> {
    checkK("searchDense", k);
    const e = this.settings.embedders.find((x) => x.id === embedderId);
    if (e === undefined)
      throw new Error(`searchDense: the store has no embeddings of embedder ${embedderId}`);
    if (vector.length !== e.dim)
      throw new Error(
        `searchDense: query vector has ${vector.length} values, embedder ${embedderId} has ${e.dim}`,
      );
    const table = await this.db.openTable(e.table);
    try {
      // Rows of a batch cut short, or of replaced passages not yet cleaned, are skipped: ask for more.
      for (let limit = k + 16; ; limit *= 4) {
        const rows = await table
          .vectorSearch(Array.from(vector))
          .distanceType("cosine")
          .select(["passage_id", "rev"])
          .limit(limit)
          .toArray();
        const live = await this.rowsById(rows.map((r: Row) => String(r.passage_id)));
        const hits: SearchHit[] = [];
        for (const r of rows as Row[]) {
          const p = live.get(String(r.passage_id));
          if (p !== undefined && p.rev === r.rev && hits.length < k)
            hits.push({ ...toPassage(p), score: 1 - Number(r._distance) });
        }
        if (hits.length >= k || rows.length < limit) return hits;
      }
    } finally {
      table.close();
    }
  }

  async getEmbeddings(ids: readonly string[], embedderId: string): Promise<Map<string, Float32Array>> {
    const e = this.settings.embedders.find((x) => x.id === embedderId);
    if (e === undefined || ids.length === 0) return new Map();
    const live = await this.rowsById(ids);
    const table = await this.db.openTable(e.table);
    try {
      const rows = await table
        .query()
        .where(`passage_id IN (${inList(new Set(ids))})`)
        .toArray();
      const out = new Map<string, Float32Array>();
      for (const r of rows as Row[])
        if (live.get(String(r.passage_id))?.rev === r.rev)
          out.set(String(r.passage_id), Float32Array.from(r.vector as Iterable<number>));
      return out;
    } finally {
      table.close();
    }
  }

  async getChunkVectors(
    ids: readonly string[],
    encoderId: string,
    k: number,
  ): Promise<Map<string, StoredChunkVectors>> {
    if (this.legacy || ids.length === 0) return new Map();
    const live = await this.rowsById(ids);
    const table = await this.db.openTable(CHUNK_VECTORS);
    try {
      const rows = await table
        .query()
        .where(`passage_id IN (${inList(new Set(ids))}) AND encoder_id = ${sqlStr(encoderId)} AND k = ${k}`)
        .toArray();
      const out = new Map<string, StoredChunkVectors>();
      for (const r of rows as Row[]) {
        const id = String(r.passage_id);
        const p = live.get(id);
        if (p === undefined || p.rev !== r.rev) continue;
        const dtype = String(r.dtype) as VectorDtype;
        out.set(id, {
          encoderId,
          k,
          dtype,
          rows: Number(r.rows),
          cols: Number(r.cols),
          data: vectorsFromBytes(r.data as Uint8Array, dtype, `chunk vectors of ${id}`),
          // The row's revision is its passage's: the vectors were made from this text.
          text: String(p.text),
        });
      }
      return out;
    } finally {
      table.close();
    }
  }

  upsertDocuments(docs: readonly DocumentRecord[], opts: WriteOptions = {}): Promise<WriteReport> {
    return this.exclusive(() => this.upsertNow(docs, opts));
  }

  private async upsertNow(docs: readonly DocumentRecord[], opts: WriteOptions): Promise<WriteReport> {
    const dims = checkBatch(docs);
    for (const [id, dim] of dims) {
      const known = this.settings.embedders.find((x) => x.id === id);
      if (known !== undefined && known.dim !== dim)
        throw new Error(`embedder ${id} stores ${known.dim}-dimensional embeddings; the batch has ${dim}`);
    }
    await this.upgrade();
    await this.recover();
    const docIds = docs.map((d) => d.docId);
    const records = docs.flatMap((d) => d.passages);
    const oldRows = await this.passages
      .query()
      .where(`doc_id IN (${inList(docIds)})`)
      .select(["id"])
      .toArray();
    const fresh = new Set(records.map((r) => r.passage.id));
    const touched = [...new Set([...oldRows.map((r: Row) => String(r.id)), ...fresh])];
    // A passage id stored under another document would be moved silently by the merge: refuse it.
    const clash = [...(await this.rowsById([...fresh])).values()].find(
      (r) => !docIds.includes(String(r.doc_id)),
    );
    if (clash !== undefined)
      throw new Error(
        `passage id ${String(clash.id)} is already stored under document ${String(clash.doc_id)}`,
      );

    const rev = randomUUID();
    const marker = join(this.location, `.pending-${rev}.json`);
    writeFileAtomicSync(marker, JSON.stringify({ rev, ids: touched, rows: records.length }));
    try {
      for (const [id, dim] of dims) await this.ensureEmbedder(id, dim);
      // 1. vectors and embeddings under the new revision (invisible to readers)
      const total = records.length;
      const step = 512;
      const cvTable = await this.db.openTable(CHUNK_VECTORS);
      try {
        for (let i = 0; i < total; i += step) {
          const part = records.slice(i, i + step);
          const cv = part.flatMap((r) =>
            (r.chunkVectors ?? []).map((c) => ({
              passage_id: r.passage.id,
              rev,
              encoder_id: c.encoderId,
              k: c.k,
              dtype: c.dtype,
              rows: c.rows,
              cols: c.cols,
              data: Buffer.from(vectorBytes(c.data, c.dtype)),
            })),
          );
          if (cv.length > 0) await cvTable.add(cv);
          for (const [id] of dims) {
            const rows = part.flatMap((r) =>
              r.embeddings?.[id] === undefined
                ? []
                : [{ passage_id: r.passage.id, rev, vector: Array.from(r.embeddings[id]) }],
            );
            if (rows.length > 0) await this.withEmbedderTable(id, (t) => t.add(rows));
          }
          await opts.onProgress?.(Math.min(i + step, total), total);
        }
      } finally {
        cvTable.close();
      }
      // 2. the commit point: one merge-insert replaces the documents' passages
      const rows = records.map((r) => passageRow(r.passage, this.titleWeight, rev));
      if (rows.length > 0)
        await this.passages
          .mergeInsert("id")
          .whenMatchedUpdateAll()
          .whenNotMatchedInsertAll()
          .whenNotMatchedBySourceDelete({ where: `doc_id IN (${inList(docIds)})` })
          .execute(rows);
      else await this.passages.delete(`doc_id IN (${inList(docIds)})`);
    } catch (e) {
      await this.recover();
      throw e;
    }
    // 3. clean-up: rows of the old revisions; then bring the full-text index up to date
    await this.recover();
    await this.passages.optimize();
    const removed = oldRows.filter((r: Row) => !fresh.has(String(r.id))).length;
    return { documents: docs.length, passages: records.length, removed };
  }

  attach(records: readonly AttachRecord[]): Promise<AttachReport> {
    return this.exclusive(() => this.attachNow(records));
  }

  private async attachNow(records: readonly AttachRecord[]): Promise<AttachReport> {
    const dims = checkAttach(records);
    for (const [id, dim] of dims) {
      const known = this.settings.embedders.find((x) => x.id === id);
      if (known !== undefined && known.dim !== dim)
        throw new Error(`embedder ${id} stores ${known.dim}-dimensional embeddings; the records have ${dim}`);
    }
    if (records.length === 0) return { attached: 0, skipped: [] };
    await this.upgrade();
    const live = await this.rowsById(records.map((r) => r.id));
    const match = records.filter((r) => {
      const p = live.get(r.id);
      return p !== undefined && p.title === r.title && p.text === r.text;
    });
    // Rows carry their passage's revision (so they are visible); one merge per table replaces rows of the
    // same key, so attaching twice leaves one row.
    const rev = (id: string): string => String(live.get(id)!.rev);
    const cv = match.flatMap((r) =>
      (r.chunkVectors ?? []).map((c) => ({
        passage_id: r.id,
        rev: rev(r.id),
        encoder_id: c.encoderId,
        k: c.k,
        dtype: c.dtype,
        rows: c.rows,
        cols: c.cols,
        data: Buffer.from(vectorBytes(c.data, c.dtype)),
      })),
    );
    if (cv.length > 0) {
      const t = await this.db.openTable(CHUNK_VECTORS);
      try {
        await t
          .mergeInsert(["passage_id", "encoder_id", "k", "rev"])
          .whenMatchedUpdateAll()
          .whenNotMatchedInsertAll()
          .execute(cv);
      } finally {
        t.close();
      }
    }
    for (const [id, dim] of dims) {
      await this.ensureEmbedder(id, dim);
      const rows = match.flatMap((r) =>
        r.embeddings?.[id] === undefined
          ? []
          : [{ passage_id: r.id, rev: rev(r.id), vector: Array.from(r.embeddings[id]) }],
      );
      if (rows.length > 0)
        await this.withEmbedderTable(id, (t) =>
          t.mergeInsert(["passage_id", "rev"]).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows),
        );
    }
    const ok = new Set(match.map((r) => r.id));
    return { attached: match.length, skipped: records.filter((r) => !ok.has(r.id)).map((r) => r.id) };
  }

  private async withEmbedderTable<T>(id: string, fn: (t: lancedb.Table) => Promise<T>): Promise<T> {
    const e = this.settings.embedders.find((x) => x.id === id);
    if (e === undefined) throw new Error(`no embedder ${id}`);
    const t = await this.db.openTable(e.table);
    try {
      return await fn(t);
    } finally {
      t.close();
    }
  }

  private async ensureEmbedder(id: string, dim: number): Promise<void> {
    if (this.settings.embedders.some((x) => x.id === id)) return;
    const table = this.embedderTable(id);
    if (!(await this.db.tableNames()).includes(table))
      (await this.db.createEmptyTable(table, embeddingSchema(dim))).close();
    this.settings.embedders.push({ id, dim, table });
    this.saveSettings();
  }

  /**
   * Finishes or undoes batches named by marker files: a batch whose passages were committed loses the rows
   * of older revisions of its passages; one that was not loses its own rows.
   */
  private async recover(): Promise<void> {
    const markers = readdirSync(this.location).filter((f) => /^\.pending-.*\.json$/.test(f));
    for (const f of markers) {
      const { rev, ids, rows } = JSON.parse(readFileSync(join(this.location, f), "utf8")) as {
        rev: string;
        ids: string[];
        rows: number;
      };
      // A batch with passages committed iff its revision is in the table; a removal iff the ids are gone.
      const committed =
        rows > 0
          ? (await this.passages.countRows(`rev = ${sqlStr(rev)}`)) > 0
          : ids.length === 0 || (await this.passages.countRows(`id IN (${inList(ids)})`)) === 0;
      const where = committed
        ? `passage_id IN (${inList(ids.length > 0 ? ids : [""])}) AND rev != ${sqlStr(rev)}`
        : `rev = ${sqlStr(rev)}`;
      const tables = [CHUNK_VECTORS, ...this.settings.embedders.map((e) => e.table)];
      for (const name of tables) {
        const t = await this.db.openTable(name);
        try {
          await t.delete(where);
        } finally {
          t.close();
        }
      }
      rmSync(join(this.location, f), { force: true });
    }
  }

  async close(): Promise<void> {
    this.passages.close();
    this.db.close();
  }
}
