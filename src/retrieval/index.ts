// The passage index of the RAG pipeline: full-text search over a passage store (src/store). The default
// store is an embedded LanceDB folder with a BM25 index over title + text; `postgres://…` selects a shared
// Postgres store. Lexical retrieval needs no trained model, so the demo and the evaluations retrieve well
// before any encoder is trained; dense and hybrid search live on the store (src/retrieval/dense.ts).
import type { Passage } from "../data/derived/passages.js";
import { openStore } from "../store/index.js";
import type { PassageStore, SearchHit } from "../store/types.js";

export { DEFAULT_TITLE_WEIGHT, toQuery, type SearchHit } from "../store/types.js";

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

export class PassageIndex {
  private constructor(readonly store: PassageStore) {}

  /** Where the passages live (a folder, or a Postgres URL without its password). */
  get dir(): string {
    return this.store.location;
  }

  /** Writes passages to a new LanceDB index folder (built beside it, then renamed into place). */
  static async build(
    dir: string,
    passages: readonly Passage[],
    opts: BuildOptions = {},
  ): Promise<PassageIndex> {
    const { LanceStore } = await import("../store/lancedb.js");
    return new PassageIndex(await LanceStore.create(dir, passages, opts));
  }

  /** Opens a LanceDB index folder or a `postgres://` store. */
  static async open(spec: string): Promise<PassageIndex> {
    return new PassageIndex(await openStore(spec));
  }

  static fromStore(store: PassageStore): PassageIndex {
    return new PassageIndex(store);
  }

  async count(): Promise<number> {
    return this.store.count();
  }

  /** The k passages with the highest full-text score for the question (fewer if fewer match any word). */
  async search(question: string, k = 5): Promise<SearchHit[]> {
    return this.store.searchText(question, k);
  }

  /** Passages by id, in the order asked; unknown ids are left out. */
  async get(ids: readonly string[]): Promise<Passage[]> {
    return this.store.get(ids);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
