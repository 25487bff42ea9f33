// Chunk selection and the chunk-vector cache.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { freshRng, assertClose } from "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { Tensor } from "../../src/engine/tensor.js";
import { chunkTokens, effectiveCompression, RefragModel } from "../../src/models/refrag.js";
import { refragConfigFor, SHAPES } from "../../src/models/presets.js";
import {
  expandCount,
  queryScores,
  queryStem,
  queryWords,
  sampleWithoutReplacement,
  selectChunks,
  topIndices,
} from "../../src/infer/selection.js";
import { ChunkVectorCache, weightsId } from "../../src/infer/vector_cache.js";

test("chunking, effective compression and expansion counts", () => {
  assert.deepEqual(
    chunkTokens([1, 2, 3, 4, 5], 2).map((c) => [...c]),
    [[1, 2], [3, 4], [5]],
  );
  assert.equal(chunkTokens([], 4).length, 0);
  assert.throws(() => chunkTokens([1], 0), /chunk size must be a positive integer/);
  assert.equal(effectiveCompression(16, 0), 16);
  assert.ok(Math.abs(effectiveCompression(16, 1 / 15) - 8) < 1e-9);
  const rng = new Rng(1);
  assert.equal(expandCount(10, 0, rng), 0);
  assert.equal(expandCount(12, 0.25, rng), 3, "a whole p·L is exact");
  assert.equal(expandCount(10, 0.3, rng), 3, "0.3·10 is 3, not 3 + a rounding error");
  assert.equal(expandCount(4, 1, rng), 4);
  assert.throws(() => expandCount(10, 1.5, rng), /fraction must be in \[0, 1\]/);
});

test("the expansion rule expands p of the chunks on average: training draws and inference seeds alike", () => {
  const rng = new Rng(2);
  for (const p of [0.1, 0.25])
    for (const L of [1, 3, 7, 10, 16, 128]) {
      let sum = 0;
      for (let d = 0; d < 4000; d++) sum += expandCount(L, p, rng);
      const mean = sum / (4000 * L);
      assert.ok(Math.abs(mean - p) < 0.012, `p = ${p}, L = ${L}: mean fraction ${mean}`);
    }
  // Inference: the count comes from the selection's seed, so over requests (seeds) the mean is p too,
  // and one seed always gives the same mask.
  const model = new RefragModel(
    refragConfigFor(
      {
        ...SHAPES.shipped,
        vocab: 32,
        decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32 },
        encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
      },
      4,
      128,
    ),
    new Rng(3),
  );
  for (const L of [3, 7, 16]) {
    const chunks = chunkTokens(
      Int32Array.from({ length: 4 * L }, (_, i) => 4 + (i % 28)),
      4,
    );
    const ctx = { before: Int32Array.of(1), chunks, vectors: model.encodeChunks(chunks) };
    let sum = 0;
    for (let seed = 0; seed < 2000; seed++)
      sum += selectChunks(model, { mode: "random", fraction: 0.1, seed }, ctx).filter(Boolean).length;
    const mean = sum / (2000 * L);
    assert.ok(Math.abs(mean - 0.1) < 0.015, `inference, L = ${L}: mean fraction ${mean}`);
    assert.deepEqual(
      selectChunks(model, { mode: "random", fraction: 0.1, seed: 9 }, ctx),
      selectChunks(model, { mode: "random", fraction: 0.1, seed: 9 }, ctx),
    );
  }
});

test("sampling without replacement never repeats and follows the logits", () => {
  const rng = new Rng(3);
  const logits = Float32Array.of(5, 0, 0, 4, -10);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 400; i++) {
    const { picks, logProb } = sampleWithoutReplacement(logits, 2, rng);
    assert.equal(new Set(picks).size, 2);
    assert.ok(logProb < 0);
    for (const p of picks) counts[p]++;
  }
  assert.ok(counts[0] > 350 && counts[3] > 300 && counts[4] < 5, `counts ${counts}`);
  assert.deepEqual(topIndices([0.1, 0.9, 0.5, 0.9], 3), [1, 3, 2]);
  // All drawn: each index exactly once.
  assert.deepEqual(sampleWithoutReplacement(logits, 9, rng).picks.sort(), [0, 1, 2, 3, 4]);
});

test("selection modes produce masks of the requested size", () => {
  const cfg = refragConfigFor(
    {
      ...SHAPES.shipped,
      vocab: 64,
      decoder: { hidden: 32, layers: 1, heads: 2, kvHeads: 2, intermediate: 64 },
      encoder: { hidden: 16, layers: 1, heads: 2, intermediate: 32 },
    },
    4,
    256,
  );
  const model = new RefragModel(cfg, new Rng(1));
  const { rng } = freshRng();
  const chunks = chunkTokens(
    Int32Array.from({ length: 40 }, () => 4 + rng.int(60)),
    4,
  );
  const vectors = model.encodeChunks(chunks);
  const before = Int32Array.of(1, 5, 6);
  for (const mode of ["random", "perplexity-desc", "perplexity-asc"] as const) {
    const mask = selectChunks(model, { mode, fraction: 0.3 }, { before, chunks, vectors });
    assert.equal(mask.filter(Boolean).length, 3, mode);
  }
  // The heuristics, against each chunk's NLL computed here from one raw forward pass: desc expands the
  // chunks the decoder finds hardest, asc the easiest.
  const ids = Int32Array.from([...before, ...chunks.flatMap((c) => [...c])]);
  const logits = model.decoder.forward([{ ids }]).logits;
  const V = logits.cols;
  const nll = chunks.map((c, j) => {
    let s = 0;
    for (let t = 0; t < c.length; t++) {
      const row = before.length + 4 * j + t - 1;
      const l = logits.data.subarray(row * V, (row + 1) * V);
      const mx = Math.max(...l);
      const z = l.reduce((a, x) => a + Math.exp(x - mx), 0);
      s += mx + Math.log(z) - l[c[t]];
    }
    return s / c.length;
  });
  const order = nll.map((_, j) => j).sort((a, b) => nll[b] - nll[a]);
  const picked = (m: boolean[]) => m.flatMap((x, j) => (x ? [j] : [])).sort((a, b) => a - b);
  const desc = selectChunks(model, { mode: "perplexity-desc", fraction: 0.3 }, { before, chunks, vectors });
  const asc = selectChunks(model, { mode: "perplexity-asc", fraction: 0.3 }, { before, chunks, vectors });
  assert.deepEqual(
    picked(desc),
    order.slice(0, 3).sort((a, b) => a - b),
    `NLL ${nll}`,
  );
  assert.deepEqual(
    picked(asc),
    order.slice(-3).sort((a, b) => a - b),
    `NLL ${nll}`,
  );
  assert.equal(selectChunks(model, { mode: "none" }, { before, chunks, vectors }).filter(Boolean).length, 0);
  assert.equal(selectChunks(model, { mode: "all" }, { before, chunks, vectors }).filter(Boolean).length, 10);
  assert.throws(
    () => selectChunks(model, { mode: "policy" }, { before, chunks, vectors }),
    /needs a model with a trained policy/,
  );
  assert.throws(
    () => selectChunks(model, { mode: "query" }, { before, chunks, vectors }),
    /mode 'query' needs a question/,
  );
  // Query: the chunks sharing the question's words, best first (chunk texts given here directly).
  const texts = chunks.map((_, j): string =>
    j === 7 ? "the old Capital city" : j === 2 ? "capital city" : "other",
  );
  const texts2 = [...texts];
  texts2[4] = "Algeria capital";
  const query = (t: string[], fraction: number) =>
    picked(
      selectChunks(
        model,
        { mode: "query", fraction },
        {
          before,
          chunks,
          vectors,
          query: {
            question: "What is the capital of Algeria?",
            chunkTexts: () => t.map((text) => ({ text })),
          },
        },
      ),
    );
  assert.deepEqual(query(texts, 0.1), [2], "ties: the lower index");
  assert.deepEqual(query(texts2, 0.1), [4], "two shared words beat one");
  assert.deepEqual(query(texts2, 0.3), [2, 4, 7]);
  // Below the rate, zero-score chunks fill the count in reading order: the rate stays p.
  assert.deepEqual(query(texts2, 0.5), [0, 1, 2, 4, 7]);
  // Expanded chunks appear as raw tokens in place, in order.
  const segs = model.buildSegments({
    before,
    chunks,
    projected: model.project(vectors),
    expand: desc,
    after: Int32Array.of(2),
  });
  let positions = 0;
  for (const s of segs) positions += "ids" in s ? s.ids.length : s.embeds.rows;
  assert.equal(positions, 3 + 3 * 4 + 7 + 1);
});

test("query heuristic: words, stopwords, and rarer shared words weigh more", () => {
  assert.deepEqual(queryWords("What is the Capital of ALGERIA? (2,381,741 sq km)"), [
    "capital",
    "algeria",
    "2",
    "381",
    "741",
    "sq",
    "km",
  ]);
  const q = "Who discovered the element radium?";
  const chunks = (texts: string[]) => texts.map((text) => ({ text }));
  const s = queryScores(q, chunks(["radium element", "element", "element", "element", "who is the"]));
  assert.ok(s[0] > s[1] && s[1] === s[2] && s[2] === s[3], `${s}`);
  assert.equal(s[4], 0, "function and question words score nothing");
  // idf ln(1 + L/df): "radium" (in 1 of 5 chunks) weighs ln 6, "element" (in 4) ln 2.25.
  assertClose([s[0], s[1]], [Math.log(6) + Math.log(1 + 5 / 4), Math.log(1 + 5 / 4)], 1e-12, "scores");
  assert.deepEqual([...queryScores(q, [])], []);
});

test("query heuristic: stems, field names and titles", () => {
  assert.equal(queryStem("independent"), queryStem("Independence".toLowerCase()));
  assert.equal(queryStem("borders"), "border");
  assert.equal(queryStem("cases"), "case", "a stem keeps 4 letters");
  // Stems: "independent" in the question meets the field "Independence".
  const when = "When did Liberia become independent?";
  const [a, b] = queryScores(when, [{ text: "Independence: 26 July 1847" }, { text: "Liberia coast" }]);
  assert.ok(a > 0 && b > 0, `${a} ${b}`);
  // A word that opens a "field:" line weighs twice what it weighs inside a line.
  const pop = "What is the population of Russia?";
  const key = queryScores(pop, [
    { text: "Hospital beds per 1,000 population\nPopulation: 142,423,773" },
    { text: "Physicians: 4.31 per 1,000 population" },
    { text: "other" },
  ]);
  assertClose([key[0], key[1]], [2 * Math.log(1 + 3 / 2), Math.log(1 + 3 / 2)], 1e-12, "field names");
  // Titles: a passage whose title words the question holds goes first; a title multiplies by (t+1)/(n+1).
  const guinea = "What is the internet country code of Guinea?";
  const code = "Internet country code: .xx";
  const g = queryScores(guinea, [
    { text: code, title: "Papua New Guinea — Communications" },
    { text: code, title: "Guinea — Communications" },
  ]);
  assert.ok(g[1] > g[0], `${g}`);
  assertClose([g[1] / g[0]], [2 / 3 / (2 / 5)], 1e-12, "title factors");
});

test("chunk-vector cache: keyed by encoder, passage and k; F32 exact, BF16 within bf16 precision; persists", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-vec-"));
  try {
    const { rng, seed } = freshRng();
    const vectors = new Tensor(rng.randn(5 * 8), [5, 8]);
    const ids = Int32Array.from({ length: 70 }, () => rng.int(100));
    const cache = new ChunkVectorCache(dir, "enc-a", 16);
    assert.equal(await cache.get(ids), null);
    await cache.put(ids, vectors);
    assert.deepEqual((await cache.get(ids))!.data, vectors.data);
    // A fresh cache object (a new process) reads the file back.
    const again = new ChunkVectorCache(dir, "enc-a", 16);
    assert.deepEqual((await again.get(ids))!.data, vectors.data);
    assert.equal(await new ChunkVectorCache(dir, "enc-b", 16).get(ids), null, "another encoder misses");
    assert.equal(await new ChunkVectorCache(dir, "enc-a", 8).get(ids), null, "another k misses");
    const bf = new ChunkVectorCache(dir, "enc-a", 32, "BF16");
    const vectors32 = new Tensor(rng.randn(3 * 8), [3, 8]); // one row per chunk of 32
    await bf.put(ids, vectors32);
    const back = await new ChunkVectorCache(dir, "enc-a", 32, "BF16").get(ids);
    assertClose(back!.data, vectors32.data, 1e-2, "bf16 vectors", seed);
    assert.equal(readdirSync(dir).length, 2);
    // Memory holds the most recently used entries only; a memory-only cache then forgets the oldest.
    const small = new ChunkVectorCache(null, "enc-a", 16, "F32", 2);
    const idsOf = (i: number) => Int32Array.of(i, i + 1, i + 2);
    for (const i of [1, 2]) await small.put(idsOf(i), vectors);
    assert.ok((await small.get(idsOf(1))) !== null, "touching 1 makes 2 the oldest");
    await small.put(idsOf(3), vectors);
    assert.equal(small.size, 2);
    assert.equal(await small.get(idsOf(2)), null);
    assert.ok((await small.get(idsOf(1))) !== null && (await small.get(idsOf(3))) !== null);
    assert.throws(() => new ChunkVectorCache(null, "enc-a", 16, "F32", 0), /maxMemoryEntries must be/);
    const m = new RefragModel(
      refragConfigFor(
        {
          ...SHAPES.shipped,
          vocab: 32,
          decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32 },
          encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
        },
        4,
        64,
      ),
      new Rng(2),
    );
    const id1 = weightsId(m.encoder);
    m.encoder.parameters()[0].data[0] += 1;
    assert.notEqual(weightsId(m.encoder), id1, "changing a weight changes the encoder id");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
