// Opening a passage store from one option: a postgres:// URL selects the Postgres store, anything else is
// a LanceDB folder. Each implementation (and its driver) is imported only when selected.
import type { PassageStore } from "./types.js";

export * from "./types.js";
export { rrfFuse, searchHybrid, DEFAULT_RRF_K, type HybridOptions } from "./batch.js";

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export interface OpenStoreOptions {
  /** Postgres: create or upgrade the schema (default false: reading commands refuse a missing store). */
  migrate?: boolean;
  /** Title weight of a Postgres store created now. */
  titleWeight?: number;
}

/** Opens a store: `postgres://user:pass@host/db[?schema=name]` or a LanceDB folder. */
export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<PassageStore> {
  if (isPostgresUrl(spec)) {
    const { PostgresStore } = await import("./postgres.js");
    return PostgresStore.connect(spec, { migrate: opts.migrate ?? false, titleWeight: opts.titleWeight });
  }
  const { LanceStore } = await import("./lancedb.js");
  return LanceStore.open(spec);
}
