// The latency benchmark's analytical model and a tiny end-to-end run (shapes only; timing is not tested).
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import {
  latencyPlot,
  latencyTable,
  predictedTtftRatio,
  prefillFlops,
  runLatency,
} from "../../src/eval/latency.js";
import { SHAPES } from "../../src/models/presets.js";

test("predicted TTFT ratio equals the paper's closed form k²(6ds + s²)/(6dsk + s²) when q = 0", () => {
  for (const [s, k, d] of [
    [16384, 16, 4096],
    [2048, 8, 256],
    [4096, 32, 1024],
  ]) {
    const closed = (k * k * (6 * d * s + s * s)) / (6 * d * s * k + s * s);
    assert.ok(Math.abs(predictedTtftRatio(s, k, 0, d) - closed) / closed < 1e-12);
  }
  assert.equal(prefillFlops(10, 2), 24 * 10 * 4 + 4 * 2 * 100);
  // Causal accounting predicts less speed-up where attention dominates, the same where matmuls dominate.
  assert.ok(predictedTtftRatio(16384, 16, 32, 256, true) < predictedTtftRatio(16384, 16, 32, 256));
});

test("a tiny latency run fills every row and renders a plot", async () => {
  const shape = {
    ...SHAPES.shipped,
    name: "tiny",
    vocab: 64,
    decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 32 },
    encoder: { hidden: 8, layers: 1, heads: 1, intermediate: 16 },
  };
  const rows = await runLatency({
    shape,
    contexts: [64, 128],
    ks: [8, 16],
    question: 4,
    decodeTokens: 2,
    repeats: 1,
  });
  assert.equal(rows.length, 2 * (1 + 2 * 2));
  const cached = rows.find((r) => r.mode === "cached" && r.k === 16 && r.context === 128)!;
  assert.equal(cached.positions, 4 + 128 / 16);
  assert.ok(cached.kvBytes < rows.find((r) => r.mode === "full" && r.context === 128)!.kvBytes);
  assert.ok(rows.every((r) => r.ttftMs > 0 && r.tpotMs > 0));
  assert.match(latencyTable(rows), /cached/);
  assert.match(latencyPlot(rows, "tiny"), /^<svg/);
});
