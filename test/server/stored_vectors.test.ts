// Chunk vectors stored with the index: requests for indexed passages never run the encoder, the answer is
// the same as with vectors computed per request, another encoder's vectors are not used, and passages a
// request brings are encoded once and never written into the index.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { RagService } from "../../src/rag/service.js";
import { buildChunkVectors, readVectorsManifest, vectorCacheFor, vectorsDir } from "../../src/rag/vectors.js";

const texts = [
  "A lighthouse guides ships at night with a bright lamp on a tall tower by the sea.",
  "Lava flows from an erupting volcano down its slopes and cools into black rock.",
];

test("stored vectors: indexed passages are read, not encoded, and answer as computed ones do", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-vectors-"));
  try {
    const model = tinyRefrag(8, 256, 11);
    const manifest = await buildChunkVectors(
      dir,
      texts.map((text) => ({ text })),
      model,
      tokenizer,
    );
    assert.deepEqual(readVectorsManifest(dir), manifest);
    assert.equal(manifest.passages, 2);
    let encodes = 0;
    const encode = model.encodeChunks.bind(model);
    model.encodeChunks = (...args: Parameters<typeof encode>) => {
      encodes++;
      return encode(...args);
    };
    const cache = vectorCacheFor(model, dir);
    const rag = new RagService(new RefragPipeline(model, tokenizer, cache));
    const req = {
      question: "What guides ships?",
      passages: texts.map((text) => ({ text })),
      maxNewTokens: 5,
    };
    const stored = await rag.answer(req);
    assert.equal(encodes, 0, "the encoder ran for an indexed passage");
    assert.equal(cache.encoded, 0);
    const computed = await new RagService(new RefragPipeline(model, tokenizer)).answer(req);
    assert.equal(stored.text, computed.text);
    assert.ok(encodes > 0);
    // A passage the index does not hold is encoded once, kept in memory, never written into the index.
    const files = readdirSync(vectorsDir(dir)).length;
    encodes = 0;
    const extra = { ...req, passages: [{ text: "Bees make honey from the nectar of flowers." }] };
    await rag.answer(extra);
    await rag.answer(extra);
    assert.equal(encodes, 1);
    assert.equal(cache.encoded, 1);
    assert.equal(readdirSync(vectorsDir(dir)).length, files);
    // Another encoder (other weights) does not read these vectors.
    const other = tinyRefrag(8, 256, 12);
    const otherCache = vectorCacheFor(other, dir);
    await new RagService(new RefragPipeline(other, tokenizer, otherCache)).answer(req);
    assert.equal(otherCache.encoded, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
