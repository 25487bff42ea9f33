// The passage store of the RAG pipeline: passages in an embedded LanceDB table (one folder on disk) with a
// BM25 full-text index over title + text. Lexical retrieval needs no trained model, so the demo and the
// evaluations retrieve well before any encoder is trained; a dense column can join the same table later.
import { existsSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import * as lancedb from "@lancedb/lancedb";
import type { Passage } from "../data/derived/passages.js";

const TABLE = "passages";
export const DEFAULT_TITLE_WEIGHT = 8;

/** One retrieved passage with its BM25 score (higher is better). */
export interface SearchHit extends Passage {
  score: number;
}

export interface BuildOptions {
  /** Replace an existing index folder (default: refuse, so an index is never lost by accident). */
  overwrite?: boolean;
  /** The title counts this many times in the BM25 text (default 8, chosen on the validation questions:
   * a passage's subject is often only in its title, "Algeria — Geography"). */
  titleWeight?: number;
  /** Rows written per batch (default 4096). */
  batchSize?: number;
  onProgress?: (written: number, total: number) => void;
}

interface Row extends Record<string, unknown> {
  id: string;
  doc_id: string;
  title: string;
  text: string;
  search_text: string;
}

/** The words of a free-text question as a full-text query: punctuation and query syntax (quotes,
 * colons, brackets, + and -) become spaces, so any user text is a valid query. */
export function toQuery(question: string): string {
  return question
    .normalize("NFKC")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

function checkPassage(p: Passage, i: number): void {
  for (const key of ["id", "doc_id", "title", "text"] as const)
    if (typeof p[key] !== "string")
      throw new Error(`passage ${i}: "${key}" must be a string, got ${JSON.stringify(p[key])}`);
  if (p.id.length === 0) throw new Error(`passage ${i}: empty id`);
}

export class PassageIndex {
  private constructor(
    private readonly db: lancedb.Connection,
    private readonly table: lancedb.Table,
    readonly dir: string,
  ) {}

  /** Writes passages to a new index folder (built beside it, then renamed into place). */
  static async build(
    dir: string,
    passages: readonly Passage[],
    opts: BuildOptions = {},
  ): Promise<PassageIndex> {
    if (passages.length === 0) throw new Error("index build: no passages");
    if (existsSync(dir) && !opts.overwrite)
      throw new Error(`index build: ${dir} exists (pass overwrite to replace it)`);
    const seen = new Set<string>();
    passages.forEach((p, i) => {
      checkPassage(p, i);
      if (seen.has(p.id)) throw new Error(`passage ${i}: duplicate id ${p.id}`);
      seen.add(p.id);
    });
    const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    const db = await lancedb.connect(tmp);
    try {
      const batch = opts.batchSize ?? 4096;
      const titleWeight = opts.titleWeight ?? DEFAULT_TITLE_WEIGHT;
      const rows = (from: number): Row[] =>
        passages.slice(from, from + batch).map((p) => ({
          id: p.id,
          doc_id: p.doc_id,
          title: p.title,
          text: p.text,
          search_text: `${`${p.title}\n`.repeat(titleWeight)}${p.text}`,
        }));
      const table = await db.createTable(TABLE, rows(0));
      opts.onProgress?.(Math.min(batch, passages.length), passages.length);
      for (let i = batch; i < passages.length; i += batch) {
        await table.add(rows(i));
        opts.onProgress?.(Math.min(i + batch, passages.length), passages.length);
      }
      await table.createIndex("search_text", { config: lancedb.Index.fts() });
      table.close();
    } finally {
      db.close();
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return PassageIndex.open(dir);
  }

  static async open(dir: string): Promise<PassageIndex> {
    if (!existsSync(dir)) throw new Error(`index ${dir} not found (build it with \`refrag index build\`)`);
    // Connecting writes LanceDB files into the folder: only connect to a folder that holds our table.
    if (!existsSync(join(dir, `${TABLE}.lance`)))
      throw new Error(
        `${dir} is not a passage index (no "${TABLE}" table; build one with \`refrag index build\`)`,
      );
    const db = await lancedb.connect(dir);
    const names = await db.tableNames();
    if (!names.includes(TABLE)) {
      db.close();
      throw new Error(`${dir} is not a passage index (no "${TABLE}" table)`);
    }
    return new PassageIndex(db, await db.openTable(TABLE), dir);
  }

  async count(): Promise<number> {
    return this.table.countRows();
  }

  /** The k passages with the highest BM25 score for the question (fewer if fewer match any word). */
  async search(question: string, k = 5): Promise<SearchHit[]> {
    if (!Number.isInteger(k) || k < 1) throw new Error(`search: k must be a positive integer, got ${k}`);
    const query = toQuery(question);
    if (query.length === 0) return [];
    const rows = await this.table.search(query, "fts", "search_text").limit(k).toArray();
    return rows.map((r: Record<string, unknown>) => ({
      id: String(r.id),
      doc_id: String(r.doc_id),
      title: String(r.title),
      text: String(r.text),
      score: Number(r._score),
    }));
  }

  /** Passages by id, in the order asked; unknown ids are left out. */
  async get(ids: readonly string[]): Promise<Passage[]> {
    if (ids.length === 0) return [];
    const list = ids.map((id) => `'${id.replace(/'/g, "''")}'`).join(", ");
    const rows = await this.table.query().where(`id IN (${list})`).toArray();
    const byId = new Map(
      rows.map((r: Record<string, unknown>) => [
        String(r.id),
        { id: String(r.id), doc_id: String(r.doc_id), title: String(r.title), text: String(r.text) },
      ]),
    );
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  close(): void {
    this.table.close();
    this.db.close();
  }
}
