// The dense retrieval stage learns a tiny synthetic task: each question shares one "subject" token with
// its passage and nothing else, so only learning to match subjects ranks the right passage first.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { RobertaModel, robertaConfig } from "../../src/models/roberta.js";
import { EncoderEmbedder, loadEncoder } from "../../src/retrieval/dense.js";
import { densePairs, trainDense, type DensePair } from "../../src/train/stages/dense.js";

const root = mkdtempSync(join(tmpdir(), "refrag-dense-"));
after(() => rmSync(root, { recursive: true, force: true }));

// Ids are the words: "12 40 41" -> [12, 40, 41]. Subjects 10..29, filler 40..63.
const tokenizer = { encode: (t: string) => t.split(/\s+/).filter(Boolean).map(Number) };
const rng = new Rng(4);
const filler = () => Array.from({ length: 3 }, () => 40 + rng.int(24)).join(" ");
const pairsFor = (n: number): DensePair[] =>
  Array.from({ length: n }, (_, i) => {
    const subject = 10 + (i % 20);
    return { question: `${subject} ${filler()}`, passage: `${filler()} ${subject} ${filler()}` };
  });

/** Share of questions whose own passage is the nearest of all passages. */
function top1(e: EncoderEmbedder, pairs: DensePair[]): number {
  const q = e.embed(pairs.map((p) => p.question));
  const p = e.embed(pairs.map((x) => x.passage));
  let hits = 0;
  q.forEach((qv, i) => {
    let best = -1;
    let bestScore = -Infinity;
    p.forEach((pv, j) => {
      const s = qv.reduce((acc, x, d) => acc + x * pv[d], 0);
      if (s > bestScore) [best, bestScore] = [j, s];
    });
    if (best === i) hits++;
  });
  return hits / pairs.length;
}

test("dense: in-batch InfoNCE teaches the encoder to match questions to their passages", async () => {
  const config = robertaConfig({
    vocab_size: 64,
    hidden_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 64,
    max_position_embeddings: 20,
    pad_token_id: 1,
    bos_token_id: 0,
  });
  const encoder = new RobertaModel(config, new Rng(1));
  const train = pairsFor(200);
  const held = pairsFor(20);
  const before = top1(new EncoderEmbedder(encoder, tokenizer), held);
  const out = join(root, "dense");
  const state = await trainDense(
    encoder,
    tokenizer,
    train,
    { steps: 120, lr: 3e-3, batch: 16, temperature: 0.1, saveEvery: 120, evalEvery: 40, seed: 1 },
    { out },
    { validation: held.concat(pairsFor(12)) },
  );
  const after_ = top1(new EncoderEmbedder(encoder, tokenizer), held);
  const v = state.validation!;
  assert.equal(v.length, 3);
  assert.ok(v[2].loss < 0.5 * v[0].loss, `validation loss ${v.map((x) => x.loss.toFixed(3)).join(" -> ")}`);
  assert.ok(after_ >= 0.9 && after_ > before + 0.3, `top-1 ${before} -> ${after_}`);
  // The checkpoint loads as an encoder that embeds exactly as the trained one.
  const loaded = await loadEncoder(out);
  const a = new EncoderEmbedder(loaded, tokenizer).embed(["12 40 41"])[0];
  const b = new EncoderEmbedder(encoder, tokenizer).embed(["12 40 41"])[0];
  assert.deepEqual(a, b);
  assert.ok(Math.abs(a.reduce((s, x) => s + x * x, 0) - 1) < 1e-5, "unit length");
  await assert.rejects(
    trainDense(encoder, tokenizer, train, { steps: 1, lr: 1e-3, batch: 1 }, { out: join(root, "x") }),
    /batch must be an integer >= 2/,
  );
});

test("dense: pairs come from the gold passages that exist", () => {
  const passages = new Map([["d#0", { title: "T", text: "body" }]]);
  assert.deepEqual(
    densePairs(
      [
        { question: "q1", gold_passage_ids: ["d#0", "gone#1"] },
        { question: "q2", gold_passage_ids: [] },
      ],
      passages,
    ),
    [{ question: "q1", passage: "T\nbody" }],
  );
});
