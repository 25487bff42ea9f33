// Schema migrations of the Postgres store: numbered SQL files in src/store/migrations (NNN_name.sql),
// applied in order in one transaction (all or none), recorded in the schema's `schema_version` table.
// Replicas starting together are serialised by an advisory lock, so each migration runs once.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SqlClient } from "./sql.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations folder: src/store/migrations beside this module's source (dist/src/store → src/store). */
export function migrationsDir(): string {
  return fileURLToPath(new URL("../../../src/store/migrations/", import.meta.url));
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  const out: Migration[] = [];
  for (const f of readdirSync(dir).sort()) {
    const m = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(f);
    if (m === null) continue;
    out.push({ version: Number(m[1]), name: m[2], sql: readFileSync(`${dir}/${f}`, "utf8") });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`migrations in ${dir}: expected version ${i + 1}, found ${m.version} (${m.name})`);
  });
  if (out.length === 0) throw new Error(`no migrations (NNN_name.sql) in ${dir}`);
  return out;
}

/** Double-quoted SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// Any constant works: it only has to be the same for every refrag process on the database.
const LOCK_KEY = 0x7265_6672; // "refr"

/** Schema version of a store (0 when the schema has no schema_version table). */
export async function schemaVersion(db: SqlClient, schema: string): Promise<number> {
  const rows = await db.query<{ v: number | null }>(
    `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE 0 END AS v`,
    [`${ident(schema)}.schema_version`],
  );
  if (rows[0].v === null) return 0;
  const r = await db.query<{ v: number | null }>(
    `SELECT max(version) AS v FROM ${ident(schema)}.schema_version`,
  );
  return r[0].v ?? 0;
}

/** Applies the migrations the schema lacks; returns the versions applied. */
export async function migrate(
  db: SqlClient,
  schema: string,
  migrations = loadMigrations(),
): Promise<number[]> {
  const s = ident(schema);
  const applied: number[] = [];
  const latest = migrations[migrations.length - 1].version;
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock($1)`, [LOCK_KEY]);
    try {
      await tx.exec(`CREATE EXTENSION IF NOT EXISTS vector`);
    } catch (e) {
      throw new Error(
        `the pgvector extension is not available on ${db.label} (install it on the server, or have an administrator run CREATE EXTENSION vector): ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
    await tx.exec(`CREATE SCHEMA IF NOT EXISTS ${s};
      CREATE TABLE IF NOT EXISTS ${s}.schema_version (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );`);
    const rows = await tx.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_version`);
    const current = rows[0].v ?? 0;
    if (current > latest)
      throw new Error(
        `store schema ${schema} is at version ${current}, newer than this refrag knows (${latest}): upgrade refrag`,
      );
    for (const m of migrations) {
      if (m.version <= current) continue;
      // search_path makes the files schema-agnostic; LOCAL ends with the transaction.
      await tx.exec(`SET LOCAL search_path TO ${s}, public`);
      try {
        await tx.exec(m.sql);
      } catch (e) {
        throw new Error(
          `migration ${m.version} (${m.name}) failed on ${db.label}: ${e instanceof Error ? e.message : String(e)}`,
          { cause: e },
        );
      }
      await tx.query(`INSERT INTO ${s}.schema_version (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
  });
  return applied;
}
