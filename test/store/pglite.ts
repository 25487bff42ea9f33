// PGlite (Postgres in WebAssembly, with pgvector) for the store tests. A fresh cluster takes 15-30 s to
// initialise here, reopening a data folder ~3 s: the first call makes a template folder under the system
// temp dir, later calls copy it.
import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

const TEMPLATE = join(tmpdir(), "refrag-pglite-0.5.14-vector-0.0.15");

async function template(): Promise<string> {
  if (existsSync(join(TEMPLATE, "PG_VERSION"))) return TEMPLATE;
  const tmp = `${TEMPLATE}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const db = await PGlite.create({ dataDir: tmp, extensions: { vector } });
  await db.exec("CREATE EXTENSION IF NOT EXISTS vector");
  await db.close();
  rmSync(TEMPLATE, { recursive: true, force: true });
  renameSync(tmp, TEMPLATE);
  return TEMPLATE;
}

export interface TestPGlite {
  db: PGlite;
  dataDir: string;
  close(): Promise<void>;
}

/** A PGlite database of its own (a copy of the template folder). */
export async function openTestPGlite(dataDir?: string): Promise<TestPGlite> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "refrag-pglite-"));
  if (dataDir === undefined) cpSync(await template(), dir, { recursive: true });
  const db = await PGlite.create({ dataDir: dir, extensions: { vector } });
  return {
    db,
    dataDir: dir,
    close: async () => {
      if (!db.closed) await db.close();
      if (dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
