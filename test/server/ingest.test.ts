// POST /v1/documents: live ingestion behind a bearer token, on a real store (LanceDB folder here; the
// replicas test runs it on Postgres). Without a token configured the route does not exist; a wrong token is
// a 401 in OpenAI's error shape; documents are cut, given chunk vectors and written in one batch; bad
// documents are reported (and with all_or_nothing nothing is written); bodies are bounded.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import "../helpers.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { chunkEncoderFor, vectorCacheFor } from "../../src/rag/vectors.js";
import { PassageIndex } from "../../src/retrieval/index.js";
import { buildServer } from "../../src/server/app.js";
import { bearerMatches } from "../../src/server/ingest.js";

const TOKEN = "test-token-0123456789abcdef";
const model = tinyRefrag(8, 256, 21);
const root = mkdtempSync(join(tmpdir(), "refrag-ingest-"));
const index = await PassageIndex.build(join(root, "index"), [
  { id: "old#0", doc_id: "old", title: "Old", text: "An old passage about lighthouses and ships." },
]);
after(async () => {
  await index.close();
  rmSync(root, { recursive: true, force: true });
});

const encoder = chunkEncoderFor(model, tokenizer);
function server(o: { token?: string; maxBodyBytes?: number; maxDocuments?: number } = {}) {
  const cache = vectorCacheFor(model, index.store);
  const app = buildServer({
    pipeline: new RefragPipeline(model, tokenizer, cache),
    index,
    ingest:
      o.token === undefined
        ? null
        : {
            store: index.store,
            token: o.token,
            chunkEncoder: encoder,
            maxBodyBytes: o.maxBodyBytes,
            maxDocuments: o.maxDocuments,
          },
  });
  return { app, cache };
}
const auth = { authorization: `Bearer ${TOKEN}` };
const doc = (id: string, text: string, title = "Honey bees") => ({ id, title, text });

test("ingest route: absent without a token; 401 in OpenAI's shape with a wrong or missing one", async () => {
  const { app: off } = server();
  const r0 = await off.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: { documents: [] },
  });
  assert.equal(r0.statusCode, 404);
  assert.equal(r0.json().error.type, "invalid_request_error");
  assert.equal((await off.inject({ method: "GET", url: "/health" })).json().ingestion, false);
  const { app } = server({ token: TOKEN });
  for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }, { authorization: TOKEN }]) {
    const r = await app.inject({
      method: "POST",
      url: "/v1/documents",
      headers,
      payload: { documents: [doc("x", "y")] },
    });
    assert.equal(r.statusCode, 401);
    assert.deepEqual(Object.keys(r.json().error).sort(), ["code", "message", "param", "type"]);
    assert.equal(r.json().error.code, "invalid_api_key");
    assert.match(r.headers["www-authenticate"] as string, /^Bearer/);
  }
  assert.equal(await index.count(), 1, "nothing written without the token");
  assert.equal((await app.inject({ method: "GET", url: "/health" })).json().ingestion, true);
  assert.ok(bearerMatches(`Bearer ${TOKEN}`, TOKEN));
  assert.ok(!bearerMatches(`Bearer ${TOKEN}x`, TOKEN));
  assert.throws(() => server({ token: "short" }), /at least 16 characters/);
});

test("ingest route: documents are cut, stored with chunk vectors, retrieved and answered without encoding", async () => {
  const { app, cache } = server({ token: TOKEN });
  const r = await app.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: {
      documents: [
        doc("bees", "Worker bees dance to tell the hive where flowers with nectar are."),
        { id: "bad", title: 3, text: "x" },
        doc("empty", "   "),
      ],
    },
  });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json();
  assert.equal(body.object, "ingestion");
  assert.equal(body.documents, 1);
  assert.equal(body.passages, 1);
  assert.deepEqual(
    body.failed.map((f: { index: number; id: string }) => [f.index, f.id]),
    [
      [1, "bad"],
      [2, "empty"],
    ],
  );
  const hits = (
    await app.inject({
      method: "POST",
      url: "/v1/retrieve",
      payload: { question: "Why do bees dance?", k: 1 },
    })
  ).json().passages;
  assert.equal(hits[0].id, "bees#0");
  assert.equal((await index.store.getChunkVectors(["bees#0"], encoder.id, 8)).size, 1);
  // Answering a question about it reads the stored vectors: the encoder does not run.
  const a = await app.inject({
    method: "POST",
    url: "/v1/chat/completions",
    payload: {
      model: "refrag",
      messages: [{ role: "user", content: "Why do bees dance?" }],
      max_tokens: 2,
      refrag: { k: 1 },
    },
  });
  assert.equal(a.statusCode, 200, a.body);
  assert.equal(cache.encoded, 0);
  assert.equal(cache.fromStore, 1);
  // Replacing the document replaces its passages.
  const r2 = await app.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: { documents: [doc("bees", "Drones do not sting.")] },
  });
  assert.equal(r2.json().removed, 0);
  assert.equal((await index.get(["bees#0"]))[0].text, "Drones do not sting.");
});

test("ingest route: all_or_nothing writes nothing when a document fails; bodies and lists are bounded", async () => {
  const { app } = server({ token: TOKEN, maxBodyBytes: 4096, maxDocuments: 3 });
  const before = await index.count();
  const r = await app.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: {
      all_or_nothing: true,
      documents: [doc("ok1", "Fine text."), { id: "", title: "t", text: "x" }],
    },
  });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error.message, /nothing was written/);
  assert.equal(r.json().failed[0].index, 1);
  assert.equal(await index.count(), before);
  assert.deepEqual(await index.get(["ok1#0"]), []);
  const big = await app.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: { documents: [doc("big", "word ".repeat(2000))] },
  });
  assert.equal(big.statusCode, 413);
  assert.ok(big.json().error.message);
  const many = await app.inject({
    method: "POST",
    url: "/v1/documents",
    headers: auth,
    payload: { documents: [1, 2, 3, 4].map((i) => doc(`m${i}`, "x")) },
  });
  assert.equal(many.statusCode, 413);
  for (const payload of [
    { documents: [] },
    { documents: "x" },
    [1],
    { documents: [doc("a", "b")], all_or_nothing: "yes" },
  ]) {
    const bad = await app.inject({ method: "POST", url: "/v1/documents", headers: auth, payload });
    assert.equal(bad.statusCode, 400, JSON.stringify(payload));
  }
  assert.equal(await index.count(), before);
});
