// What only the Postgres store has: migrations, the HNSW index behind dense search, and a clear error
// when the server goes away.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { openStore } from "../../src/store/index.js";
import { loadMigrations, schemaVersion } from "../../src/store/migrate.js";
import { parseStoreUrl, PostgresStore } from "../../src/store/postgres.js";
import { pgliteClient } from "../../src/store/sql.js";
import { StoreUnavailableError } from "../../src/store/types.js";
import { pgliteWireBackend } from "./backends.js";

let wire: Awaited<ReturnType<typeof pgliteWireBackend>>;
before(async () => {
  wire = await pgliteWireBackend();
});
after(() => wire.teardown());

test("postgres: migrations run once, are recorded, and a reader refuses a missing store", async () => {
  const db = pgliteClient(wire.server.db);
  assert.equal(await schemaVersion(db, "mig"), 0);
  await assert.rejects(openStore(`${wire.url}?schema=mig`), /has no refrag store in schema mig/);
  const a = await PostgresStore.open(db, { schema: "mig", titleWeight: 3 });
  const latest = loadMigrations().length;
  assert.equal(await schemaVersion(db, "mig"), latest);
  // A second opener (another replica) applies nothing and keeps the title weight fixed at creation.
  const b = await openStore(`${wire.url}?schema=mig`, { migrate: true, titleWeight: 8 });
  assert.equal(b.titleWeight, 3);
  const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM mig.schema_version`);
  assert.equal(rows[0].n, latest);
  await b.close();
  await a.close();
  assert.deepEqual(parseStoreUrl("postgres://u:p@h:5/db?schema=abc&sslmode=disable"), {
    url: "postgres://u:p@h:5/db?sslmode=disable",
    schema: "abc",
  });
  await assert.rejects(PostgresStore.open(db, { schema: "Bad-Name" }), /schema "Bad-Name"/);
});

test("postgres: dense search uses the embedder's HNSW index", async () => {
  const s = (await wire.fresh()) as PostgresStore;
  const rng = new Rng(1);
  const v = () => Float32Array.from(rng.randn(12));
  await s.upsertDocuments([
    {
      docId: "a",
      passages: [
        { passage: { id: "a#0", doc_id: "a", title: "A", text: "a" }, embeddings: { "emb.x": v() } },
      ],
    },
  ]);
  const plan = await s.explainDense("emb.x", v(), 5);
  assert.match(plan, /Index Scan using embeddings_hnsw_[0-9a-f]+ on embeddings/, plan);
});

test("postgres: a server that is down or goes away is StoreUnavailableError", async () => {
  // Nothing listens on port 1.
  await assert.rejects(openStore("postgres://postgres@127.0.0.1:1/postgres"), (e: unknown) => {
    assert.ok(e instanceof StoreUnavailableError, String(e));
    assert.match((e as Error).message, /store postgres:\/\/postgres@127\.0\.0\.1:1\/postgres unavailable/);
    return true;
  });
  const s = await wire.fresh();
  assert.equal(await s.count(), 0);
  await wire.server.stop();
  await assert.rejects(s.count(), StoreUnavailableError);
  await assert.rejects(s.searchText("anything", 3), StoreUnavailableError);
  await s.close();
});
