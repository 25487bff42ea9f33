// The store implementations the behaviour suite runs against: LanceDB in a temp folder, Postgres on PGlite
// in-process, Postgres on PGlite through the wire protocol (pglite-socket + node-postgres), and a real
// Postgres server when DATABASE_URL is set. Each `fresh()` is an empty store of its own.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { LanceStore } from "../../src/store/lancedb.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { pgliteClient } from "../../src/store/sql.js";
import type { PassageStore } from "../../src/store/types.js";
import { openTestPGlite, type TestPGlite } from "./pglite.js";

export interface Backend {
  name: string;
  /** An empty store (title weight 8 unless given). */
  fresh(titleWeight?: number): Promise<PassageStore>;
  teardown(): Promise<void>;
}

let counter = 0;
const schemaName = () => `t_${process.pid}_${++counter}`;

export function lanceBackend(): Backend {
  const root = mkdtempSync(join(tmpdir(), "refrag-store-"));
  return {
    name: "lancedb",
    fresh: (titleWeight) =>
      LanceStore.create(join(root, `s${++counter}`), [], { titleWeight, allowEmpty: true }),
    teardown: async () => rmSync(root, { recursive: true, force: true }),
  };
}

export async function pgliteBackend(): Promise<Backend & { pglite: TestPGlite }> {
  const pglite = await openTestPGlite();
  const client = pgliteClient(pglite.db);
  return {
    name: "postgres (PGlite in-process)",
    pglite,
    fresh: (titleWeight) => PostgresStore.open(client, { schema: schemaName(), titleWeight }),
    teardown: () => pglite.close(),
  };
}

/** A pglite-socket server over its own PGlite; stores connect with `pg` like to any server. */
export async function pgliteWireBackend(): Promise<Backend & { url: string; server: PGLiteSocketServer }> {
  const pglite = await openTestPGlite();
  const server = new PGLiteSocketServer({ db: pglite.db, port: 0, host: "127.0.0.1", maxConnections: 16 });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  const opened: PassageStore[] = [];
  return {
    name: "postgres (PGlite over the wire protocol)",
    url,
    server,
    fresh: async (titleWeight) => {
      const s = await PostgresStore.connect(`${url}?schema=${schemaName()}`, { titleWeight });
      opened.push(s);
      return s;
    },
    teardown: async () => {
      for (const s of opened) await s.close().catch(() => {});
      await server.stop();
      await pglite.close();
    },
  };
}

/** A real server from DATABASE_URL (each store in a schema of its own, dropped afterwards). */
export function serverBackend(url: string): Backend {
  const opened: { store: PostgresStore; schema: string }[] = [];
  return {
    name: "postgres (DATABASE_URL)",
    fresh: async (titleWeight) => {
      const schema = schemaName();
      const store = await PostgresStore.connect(`${url}${url.includes("?") ? "&" : "?"}schema=${schema}`, {
        titleWeight,
      });
      opened.push({ store, schema });
      return store;
    },
    teardown: async () => {
      const { pgClient } = await import("../../src/store/sql.js");
      const db = await pgClient(url);
      for (const { store, schema } of opened) {
        await store.close();
        await PostgresStore.drop(db, schema);
      }
      await db.close();
    },
  };
}
