// The RAG pipeline end to end on the shipped tokenizer and a small random REFRAG model: prompt layout,
// chunk-vector cache reuse, selection, streaming text.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { ChunkVectorCache, weightsId } from "../../src/infer/vector_cache.js";
import type { Segment } from "../../src/models/llama.js";
import { chunkTokens } from "../../src/models/refrag.js";

test("pipeline: question tokens, one position per chunk, answer marker; cached vectors are reused", async () => {
  const model = tinyRefrag(8, 1024, 4);
  const cache = new ChunkVectorCache(null, weightsId(model.encoder), 8);
  const pipe = new RefragPipeline(model, tokenizer, cache);
  const passages = [
    "Paris is the capital and most populous city of France.",
    "The Seine flows through Paris before reaching the English Channel at Le Havre.",
  ];
  const req = { question: "What is the capital of France?", passages };
  const p = await pipe.prepare(req);
  const qTokens = tokenizer.encode(req.question).length;
  const ctxTokens = passages.reduce((n, x) => n + tokenizer.encode(x).length, 0);
  assert.equal(p.contextTokens, ctxTokens);
  assert.equal(
    p.chunks.length,
    passages.reduce((n, x) => n + Math.ceil(tokenizer.encode(x).length / 8), 0),
  );
  const headers = tokenizer.encode("1").length + tokenizer.encode("2").length;
  assert.equal(
    p.positions,
    3 + qTokens + headers + p.chunks.length + 1,
    "bos, question marker, question, context marker, passage headers, chunks, answer marker",
  );
  assert.equal(cache.size, 2);
  const again = await pipe.prepare(req);
  assert.equal(cache.size, 2, "the second request reads the cache");
  assert.deepEqual(again.segments.length, p.segments.length);
  // Expanding every chunk reads the raw context instead.
  const full = await pipe.prepare({ ...req, selection: { mode: "all" } });
  assert.equal(full.positions, 3 + qTokens + headers + ctxTokens + 1);
  // Earlier turns come first as raw tokens: <|user|> q <|assistant|> a per turn.
  const history = [{ question: "Which river?", answer: "The Seine." }];
  const withHistory = await pipe.prepare({ ...req, history });
  assert.equal(
    withHistory.positions,
    p.positions + 2 + tokenizer.encode("Which river?").length + tokenizer.encode("The Seine.").length,
  );
  await assert.rejects(
    pipe.prepare({ ...req, history: [{ question: "q" }] as never }),
    /history turn 0 must be/,
  );
  // Prompt-format tokens inside user text stay plain text.
  const sneaky = await pipe.prepare({ question: "Is <|answer|> special?", passages: [] });
  assert.equal(
    sneaky.positions,
    3 + tokenizer.encode("Is <|answer|> special?", { allowSpecial: false }).length + 1,
  );
});

test("pipeline streams text and rejects bad requests clearly", async () => {
  const model = tinyRefrag(16, 256, 5);
  const pipe = new RefragPipeline(model, tokenizer);
  let text = "";
  let n = 0;
  for await (const t of pipe.generate({
    question: "Name a river.",
    passages: ["The Loire is the longest river in France."],
    maxNewTokens: 6,
  })) {
    text += t.text;
    n++;
  }
  assert.ok(n >= 1 && n <= 7);
  assert.equal(typeof text, "string");
  await assert.rejects(
    () => pipe.prepare({ question: "  ", passages: [] }),
    /question must be a non-empty string/,
  );
  await assert.rejects(
    () => pipe.prepare({ question: "q", passages: [3 as unknown as string] }),
    /passage 0 is not a string/,
  );
  await assert.rejects(
    () => pipe.answer({ question: "q", passages: ["word ".repeat(3000)], selection: { mode: "all" } }),
    /exceeds the decoder's context window of 256/,
  );
});

test("pipeline: each passage's number and title are raw tokens before its chunks, in the order given", async () => {
  const model = tinyRefrag(8, 1024, 6);
  const pipe = new RefragPipeline(model, tokenizer);
  const a = { id: "factbook/ag#3", title: "Algeria — Geography", text: "Area: total 2,381,741 sq km." };
  const b = { title: "France", text: "Paris is the capital and most populous city of France." };
  const ids = (s: string) => [...tokenizer.encode(s, { allowSpecial: false })];
  const chunksOf = (s: string) => Math.ceil(ids(s).length / 8);
  const layout = (segs: Segment[]) =>
    segs.map((s) => ("ids" in s ? { ids: [...s.ids] } : { vectors: s.embeds.rows }));
  for (const [selection, raw] of [
    [{ mode: "none" }, false],
    [{ mode: "all" }, true],
  ] as const) {
    const p = await pipe.prepare({ question: "Where?", passages: [a, b], selection });
    const [first, ...rest] = layout(p.segments);
    assert.deepEqual(first.ids?.slice(-1), [tokenizer.tokenToId("<|context|>")]);
    // Compressed: one run of vectors per passage; expanded: each chunk's raw tokens.
    const body = (text: string) =>
      raw ? chunkTokens(ids(text), 8).map((c) => ({ ids: [...c] })) : [{ vectors: chunksOf(text) }];
    assert.deepEqual(rest, [
      { ids: ids("1 Algeria — Geography") },
      ...body(a.text),
      { ids: ids("2 France") },
      ...body(b.text),
      { ids: [tokenizer.tokenToId("<|answer|>")] },
    ]);
  }
  // The order given is the reading order; plain strings are numbered passages without a title.
  const swapped = await pipe.prepare({ question: "Where?", passages: [b, "Some words."] });
  const heads = layout(swapped.segments).filter((_, i) => i === 1 || i === 3);
  assert.deepEqual(heads, [{ ids: ids("1 France") }, { ids: ids("2") }]);
  await assert.rejects(
    pipe.prepare({ question: "q", passages: [{ title: "t" } as never] }),
    /passage 0 is not a string or \{id\?, title\?, text\}/,
  );
});
