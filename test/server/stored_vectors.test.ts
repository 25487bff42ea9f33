// Chunk vectors stored in the passage store: requests for stored passages never run the encoder (retrieved
// or brought with their store id and the same text), the answer is the same as with vectors computed per
// request, another encoder's vectors and vectors of another text are not used, and passages a request
// brings are encoded once and never written into the store.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import type { RefragModel } from "../../src/models/refrag.js";
import { RagService } from "../../src/rag/service.js";
import {
  checkNotVectorFolder,
  chunkEncoderFor,
  legacyVectorsNote,
  storeDerived,
  vectorCacheFor,
} from "../../src/rag/vectors.js";
import { PassageIndex } from "../../src/retrieval/index.js";

const passages = [
  {
    id: "lh#0",
    doc_id: "lh",
    title: "Lighthouses",
    text: "A lighthouse guides ships at night with a bright lamp on a tall tower by the sea.",
  },
  {
    id: "vo#0",
    doc_id: "vo",
    title: "Volcanoes",
    text: "Lava flows from an erupting volcano down its slopes and cools into black rock.",
  },
];

/** Counts the encoder's runs. */
function countEncodes(model: RefragModel): { n: number } {
  const c = { n: 0 };
  const encode = model.encodeChunks.bind(model);
  model.encodeChunks = (...args: Parameters<typeof encode>) => {
    c.n++;
    return encode(...args);
  };
  return c;
}

test("stored vectors: stored passages are read from the store, not encoded, and answer as computed ones do", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-vectors-"));
  try {
    const model = tinyRefrag(8, 256, 11);
    const index = await PassageIndex.build(join(dir, "index"), passages);
    const r = await storeDerived(index.store, passages, { encoder: chunkEncoderFor(model, tokenizer) });
    assert.equal(r.attached, 2);
    const encodes = countEncodes(model);
    const cache = vectorCacheFor(model, index.store);
    const rag = new RagService(new RefragPipeline(model, tokenizer, cache), index);
    // Retrieved passages: their vectors come from the store.
    const req = { question: "What guides ships, and what flows from a volcano?", k: 2, maxNewTokens: 5 };
    const stored = await rag.answer(req);
    assert.deepEqual(stored.run.layout.passages.map((p) => p.id).sort(), ["lh#0", "vo#0"]);
    assert.equal(encodes.n, 0, "the encoder ran for a stored passage");
    assert.equal(cache.encoded, 0);
    assert.equal(cache.fromStore, 2);
    const given = stored.run.layout.passages.map((p) => ({ id: p.id, title: p.title, text: p.text }));
    const computed = await new RagService(new RefragPipeline(model, tokenizer)).answer({
      ...req,
      passages: given,
    });
    assert.equal(stored.text, computed.text);
    assert.ok(encodes.n > 0);
    // A fresh cache (a new replica) reading passages brought with their store ids: no encoding either.
    encodes.n = 0;
    const cache2 = vectorCacheFor(model, index.store);
    const rag2 = new RagService(new RefragPipeline(model, tokenizer, cache2), index);
    assert.equal((await rag2.answer({ ...req, passages: given })).text, stored.text);
    assert.equal(encodes.n, 0);
    // The same id with another text is not the stored passage: encoded, once, kept in memory only.
    const edited = [{ ...given[0], text: `${given[0].text} Edited.` }];
    await rag2.answer({ ...req, passages: edited });
    await rag2.answer({ ...req, passages: edited });
    assert.equal(encodes.n, 1);
    assert.equal(cache2.encoded, 1);
    assert.equal(
      (await index.store.getChunkVectors(["lh#0"], chunkEncoderFor(model, tokenizer).id, 8)).get("lh#0")
        ?.text,
      passages[0].text,
    );
    // Another encoder (other weights) does not read these vectors.
    const other = tinyRefrag(8, 256, 12);
    const otherCache = vectorCacheFor(other, index.store);
    await new RagService(new RefragPipeline(other, tokenizer, otherCache), index).answer(req);
    assert.equal(otherCache.encoded, 2);
    assert.equal(otherCache.fromStore, 0);
    await index.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("stored vectors: an old index's chunk_vectors folder is named, not read", () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-legacy-"));
  try {
    assert.equal(legacyVectorsNote(dir), null);
    mkdirSync(join(dir, "chunk_vectors"));
    writeFileSync(join(dir, "chunk_vectors", "manifest.json"), "{}");
    assert.match(legacyVectorsNote(dir)!, /older refrag.*refrag index vectors/);
    assert.throws(
      () => checkNotVectorFolder(join(dir, "chunk_vectors")),
      /not an index: give the index folder/,
    );
    checkNotVectorFolder(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
