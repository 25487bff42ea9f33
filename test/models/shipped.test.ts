// The shipped model (assets/model, bf16) answers from retrieved, compressed passages: the five passages
// BM25 retrieves for "What is the capital of Algeria?" (test/fixtures/algeria_capital.json), read with the
// default selection (DEFAULT_SELECTION: 5% of chunks raw, chosen by the question's words), give "Algiers", while the decoder
// reads far fewer positions than the passages have tokens. Fails if the weights, the prompt format, the
// answer rule or the selection default break.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { packageRoot } from "../../src/engine/native.js";
import { RefragPipeline, type RagStats } from "../../src/infer/pipeline.js";
import { loadRefrag } from "../../src/models/load.js";
import { Tokenizer } from "../../src/tokenizer/index.js";

const dir = join(packageRoot(), "assets", "model");
const fixture = JSON.parse(
  readFileSync(join(packageRoot(), "test", "fixtures", "algeria_capital.json"), "utf8"),
) as { question: string; passages: { id: string; title: string; text: string }[] };

async function answer(pipeline: RefragPipeline, passages: typeof fixture.passages, kvCache?: "bf16") {
  const stats: Partial<RagStats> = {};
  let text = "";
  for await (const t of pipeline.generate(
    { question: fixture.question, passages, maxNewTokens: 8, temperature: 0, kvCache },
    stats,
  ))
    text += t.text;
  return { text, stats };
}

test("shipped model: answers the demo's question from retrieved, compressed passages", async () => {
  const model = await loadRefrag(dir);
  const pipeline = new RefragPipeline(model, Tokenizer.fromFile(join(dir, "tokenizer.json")));
  const { text, stats } = await answer(pipeline, fixture.passages);
  assert.equal(text.trim(), "Algiers");
  assert.ok(
    stats.promptPositions! < stats.contextTokens! / 3,
    `${stats.promptPositions} positions for ${stats.contextTokens} tokens`,
  );
  // The answer comes from the passages: without the one that names the capital it is not given.
  const without = await answer(
    pipeline,
    fixture.passages.filter((p) => !p.text.includes("Capital - name")),
  );
  assert.ok(!without.text.includes("Algiers"), `answered "${without.text}" without the passage`);
  // The server's KV caches hold bf16 (RagServiceOptions.kvCache): the same answer.
  assert.equal((await answer(pipeline, fixture.passages, "bf16")).text.trim(), "Algiers");
});
