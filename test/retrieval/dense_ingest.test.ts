// Live ingestion and the dense / hybrid retrieval path end to end, with a small random encoder as the
// embedder and a tiny REFRAG model for chunk vectors: documents in, per-document failures reported,
// passages + vectors + embeddings out of the store, recall reported for every mode.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import "../helpers.js";
import { noGrad } from "../../src/engine/tensor.js";
import { weightsId } from "../../src/infer/vector_cache.js";
import { chunkTokens } from "../../src/models/refrag.js";
import { evalRetrieval } from "../../src/retrieval/eval.js";
import { EncoderEmbedder, retriever } from "../../src/retrieval/dense.js";
import { ingest, type ChunkEncoder } from "../../src/store/ingest.js";
import { LanceStore } from "../../src/store/lancedb.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";

const root = mkdtempSync(join(tmpdir(), "refrag-ingest-"));
after(() => rmSync(root, { recursive: true, force: true }));

const docs = [
  {
    id: "lh",
    title: "Lighthouses",
    text: "A lighthouse guides ships at night with a bright lamp.\n\nKeepers wound the clockwork.",
  },
  {
    id: "vo",
    title: "Volcanoes",
    text: "Lava flows from an erupting volcano down its slopes.",
    meta: { split: "test" },
  },
  { id: "be", title: "Honey bees", text: "Worker bees dance to tell the hive where the flowers are." },
];
const lines = (extra: string[] = []) =>
  Buffer.concat([
    Buffer.from(docs.map((d) => JSON.stringify(d)).join("\n") + "\n"),
    ...extra.map((e) => Buffer.from(e + "\n")),
    Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), // not UTF-8
  ]);

test("ingest: documents become passages with chunk vectors and embeddings; bad lines are reported", async () => {
  const model = tinyRefrag(4, 256, 3);
  const chunkEncoder: ChunkEncoder = {
    id: weightsId(model.encoder),
    k: 4,
    encode: (text) => {
      const v = noGrad(() =>
        model.encodeChunks(chunkTokens(tokenizer.encode(text, { allowSpecial: false }), 4)),
      );
      return { rows: v.rows, cols: v.cols, data: v.data.slice() };
    },
  };
  const embedder = new EncoderEmbedder(model.encoder, tokenizer);
  const store = await LanceStore.create(join(root, "s"), [], { allowEmpty: true });
  const report = await ingest(
    store,
    lines([
      '{"id": "x"',
      '{"id": "nt", "title": "t"}',
      JSON.stringify({ id: "big", title: "t", text: "w ".repeat(600) }),
      JSON.stringify(docs[0]),
    ]),
    { chunkEncoder, embedder, dtype: "F32", maxChars: 1000 },
  );
  assert.deepEqual(
    report.failures.map((f) => [f.line, f.id, f.error.split(" (")[0]]),
    [
      [4, null, "not valid JSON"],
      [5, "nt", '"text" must be a string'],
      [6, "big", "text is 1200 characters; the limit is 1000"],
      [7, "lh", "document lh already appears on line 1"],
      [8, null, "not valid UTF-8"],
    ],
  );
  assert.equal(report.documents, 3);
  assert.equal(await store.count(), report.passages);
  const [vo] = await store.get(["vo#0"]);
  assert.deepEqual(vo.meta, { split: "test" });
  const cv = (await store.getChunkVectors(["vo#0"], chunkEncoder.id, 4)).get("vo#0")!;
  const ids = tokenizer.encode(vo.text, { allowSpecial: false });
  assert.equal(cv.rows, Math.ceil(ids.length / 4));
  assert.deepEqual(cv.data, chunkEncoder.encode(vo.text).data);
  // A passage's own title + text as the query embeds identically: dense and hybrid find it first.
  const dense = retriever(store, "dense", embedder);
  const [lh0] = await store.get(["lh#0"]);
  assert.equal((await dense(`${lh0.title}\n${lh0.text}`, 1))[0].id, "lh#0");
  const qa = [
    { question: "Which lamp guides ships at night?", gold_passage_ids: ["lh#0"] },
    { question: "Where does lava flow?", gold_passage_ids: ["vo#0"] },
  ];
  for (const mode of ["bm25", "dense", "hybrid"] as const) {
    const r = await evalRetrieval({ search: retriever(store, mode, embedder) }, qa, [1, 5]);
    assert.equal(r.questions, 2);
    assert.equal(r.rows[1].recall, 1, `${mode}: every passage is within the top 5 of 4`);
  }
  assert.throws(() => retriever(store, "hybrid", null), /needs an embedder/);
  await store.close();
});
