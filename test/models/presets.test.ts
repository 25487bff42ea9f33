// Model presets come from the JSON files in assets/configs and build valid REFRAG configs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { preset, readPreset, refragConfigFor, SHAPES } from "../../src/models/presets.js";

test("presets: shipped and wide are read from their JSON files", () => {
  assert.deepEqual(Object.keys(SHAPES).sort(), ["shipped", "wide"]);
  assert.deepEqual(SHAPES.shipped.decoder, {
    hidden: 256,
    layers: 6,
    heads: 4,
    kvHeads: 4,
    intermediate: 688,
  });
  assert.equal(SHAPES.wide.decoder.kvHeads, 4);
  const cfg = refragConfigFor(SHAPES.shipped, 16, 2048);
  assert.equal(cfg.chunk_size, 16);
  assert.equal(cfg.decoder.hidden_size, 256);
  assert.equal(cfg.decoder.max_position_embeddings, 2048);
  assert.equal(cfg.encoder.max_position_embeddings, 36);
  assert.equal(cfg.projector.input_size, 256);
  assert.throws(() => preset("huge"), /unknown model shape "huge" \(choose shipped, wide\)/);
});

test("presets: a malformed file names the field", () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-presets-"));
  try {
    const path = join(dir, "bad.json");
    writeFileSync(
      path,
      JSON.stringify({ name: "bad", vocab_size: 8, decoder: { hidden_size: 0 }, encoder: {} }),
    );
    assert.throws(() => readPreset(path), /decoder\.hidden_size must be a positive integer, got 0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
