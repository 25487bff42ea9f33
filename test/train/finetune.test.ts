// RAG fine-tuning and QA evaluation on the shipped tokenizer and a small random REFRAG model.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { answerMatches, evalQa, normalizeAnswer, rougeL } from "../../src/eval/qa.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { answerTokens } from "../../src/infer/prompt.js";
import { summaryExamples, SUMMARY_QUESTION, type RagExample } from "../../src/retrieval/rag_examples.js";
import { finetune, prepareExamples } from "../../src/train/stages/finetune.js";

const colours = ["red", "green", "blue", "yellow"];
const examples: RagExample[] = colours.map((c, i) => ({
  id: `ex${i}`,
  question: "Which colour is the door?",
  passages: [`The house has a ${c} door and a small garden.`, "Nothing else is known."] as string[],
  answers: [c],
  gold_in_context: true,
}));

test("finetune: the answer loss falls; over-long and malformed examples are handled clearly", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-ft-"));
  try {
    const model = tinyRefrag(4, 128, 3, 1);
    const losses: number[] = [];
    const state = await finetune(
      model,
      tokenizer,
      examples,
      { steps: 60, lr: 3e-3, batch: 2, expandFraction: 0.25, saveEvery: 1000, seed: 1, logEvery: 1 },
      { out: dir, log: (i) => losses.push(i.loss) },
    );
    assert.equal(state.step, 60);
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(first > 8, `a random model starts near ln(8192) = 9.0, got ${first}`);
    assert.ok(last < 0.5 * first, `loss ${first.toFixed(2)} -> ${last.toFixed(2)}`);
    // An example longer than the window (even compressed) is left out and counted.
    const long = { ...examples[0], passages: ["word ".repeat(2000)] };
    const { prepared, dropped } = prepareExamples(model, tokenizer, [examples[0], long], 0);
    assert.deepEqual([prepared.length, dropped], [1, 1]);
    await assert.rejects(
      finetune(
        model,
        tokenizer,
        [long],
        { steps: 1, lr: 1e-3, batch: 1, expandFraction: 0 },
        { out: join(dir, "x") },
      ),
      /none of the 1 examples fits/,
    );
    // Titles are read raw before their passage's chunks, as at inference: 1 title … 2 title ….
    const titled = {
      ...examples[0],
      passages: [
        { id: "p1", title: "The house", text: "The house has a red door." },
        { id: "p2", title: "Garden", text: "Nothing else is known." },
      ],
    };
    const [t] = prepareExamples(model, tokenizer, [titled], 0).prepared;
    assert.deepEqual(
      t.passages.map((x) => [...x.header]),
      ["1 The house", "2 Garden"].map((h) => tokenizer.encode(h)),
    );
    // The answer is read as passage words are: its tokens appear, unchanged, in the passage it is copied from.
    const ids = [...t.answer];
    const red = tokenizer.encode(" red");
    assert.deepEqual(ids.slice(1, 1 + red.length), red, "answer tokens are the passage's tokens");
    const passage = [...t.passages[0].ids].join(",");
    assert.ok(passage.includes(red.join(",")), "the passage holds the same tokens");
    // Fine-tuning with --select query expands the chunks inference's query heuristic would: here the
    // chunk that holds "door", the question's one content word besides "colour".
    const [qx] = prepareExamples(model, tokenizer, [examples[0]], 0.25, "query").prepared;
    const qchunks = qx.passages.flatMap((x) => x.chunks);
    assert.ok(tokenizer.decode([...qchunks[qx.queryOrder![0]]]).includes("door"));
    assert.equal(prepareExamples(model, tokenizer, [examples[0]], 0.25).prepared[0].queryOrder, undefined);
    // Held-out examples give the run a validation curve.
    const v = await finetune(
      model,
      tokenizer,
      examples.slice(0, 2),
      { steps: 2, lr: 1e-3, batch: 1, expandFraction: 0.25, saveEvery: 2, evalEvery: 1 },
      { out: join(dir, "v") },
      examples.slice(2),
    );
    assert.deepEqual(
      v.validation?.map((x) => x.step),
      [1, 2],
    );
    // History turns are raw tokens before the question.
    const turn = { ...examples[0], history: [{ question: "Is there a garden?", answer: "yes" }] };
    const [withTurn, without] = [
      prepareExamples(model, tokenizer, [turn], 0).prepared[0],
      prepareExamples(model, tokenizer, [examples[0]], 0).prepared[0],
    ];
    assert.equal(
      withTurn.before.length,
      without.before.length +
        2 +
        tokenizer.encode("Is there a garden?").length +
        answerTokens(tokenizer, "yes").length,
    );
    assert.throws(
      () => prepareExamples(model, tokenizer, [{ ...examples[0], answers: [] }], 0),
      /example 0: empty answer/,
    );
    await assert.rejects(
      finetune(
        model,
        tokenizer,
        examples,
        { steps: 1, lr: 1e-3, batch: 1, expandFraction: 2 },
        { out: join(dir, "y") },
      ),
      /expandFraction must be in \[0, 1\]/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("eval qa: lenient answer match, and rows that agree with the pipeline's own answers", async () => {
  assert.equal(normalizeAnswer("  2,381,741 Sq. km "), "2 381 741 sq km");
  assert.ok(answerMatches("It is 2,381,741 sq km in all.", ["2,381,741 sq km"]));
  assert.ok(!answerMatches("reddish", ["red"]), "whole words only");
  assert.ok(!answerMatches("anything", ["", "?"]), "an empty reference never matches");
  // ROUGE-L F1 over words: LCS "a b d" of "a b c d" (4 words) and "a x b d" (4 words) = 3 -> 0.75.
  assert.equal(rougeL("A b, c d.", "a x b d"), 0.75);
  assert.equal(rougeL("same words", "Same words"), 1);
  assert.equal(rougeL("", "x"), 0);
  assert.equal(rougeL("p q", "r s"), 0);
  const [sum] = summaryExamples([
    {
      id: "summary/m",
      doc_id: "m",
      title: "m.1",
      input: "OPTIONS -v be verbose",
      summary: "m - do things",
      meta: { names: ["m"], description: "do things", input_words: 4, split: "test" },
    },
  ]);
  assert.deepEqual(
    [sum.question, sum.passages, sum.answers, sum.gold_in_context],
    [SUMMARY_QUESTION, ["OPTIONS -v be verbose"], ["m - do things"], true],
  );
  const model = tinyRefrag(4, 256, 5, 1);
  const pipeline = new RefragPipeline(model, tokenizer);
  // References built from the model's own greedy output must all match; unrelated ones must not.
  const own = await Promise.all(
    examples.map(async (e) => {
      const text = await pipeline.answer({ question: e.question, passages: e.passages, maxNewTokens: 6 });
      return { ...e, answers: [text.trim() === "" ? "\u0000never" : text] };
    }),
  );
  const rows = await evalQa(pipeline, own, [{ mode: "none" }, { mode: "all" }], { maxNewTokens: 6 });
  assert.equal(rows.length, 2);
  const expected = own.filter((e) => !e.answers[0].startsWith("\u0000")).length / own.length;
  assert.equal(rows[0].accuracy, expected);
  assert.equal(rows[0].goldInContext, 1);
  assert.ok(
    rows[0].rougeL! >= rows[0].accuracy! - 1e-9 && rows[0].rougeL! <= 1,
    "an exact own answer scores ROUGE-L 1",
  );
  assert.ok(rows[1].meanPositions! > rows[0].meanPositions!, "reading every chunk raw takes more positions");
  assert.equal(rows[0].meanContextTokens, rows[1].meanContextTokens);
  assert.deepEqual(
    rows.map((r) => r.skipped),
    [0, 0],
  );
});

test("eval qa: an example too long for the window in one mode is skipped there, never aborts the run", async () => {
  const model = tinyRefrag(4, 256, 6, 1);
  const pipeline = new RefragPipeline(model, tokenizer);
  // About 300 tokens: 75 chunks compressed fit the 256-position window; read raw they do not.
  const long: RagExample = { ...examples[0], id: "long", passages: ["word ".repeat(300)] };
  assert.ok(tokenizer.encode(long.passages[0] as string).length > 256);
  const rows = await evalQa(pipeline, [examples[0], long, examples[1]], [{ mode: "none" }, { mode: "all" }], {
    maxNewTokens: 4,
  });
  assert.deepEqual(
    rows.map((r) => [r.mode, r.examples, r.skipped]),
    [
      ["none", 3, 0],
      ["all", 3, 1],
    ],
  );
  assert.ok(rows[1].meanContextTokens! < rows[0].meanContextTokens!, "means over the answered examples");
  // Nothing answered: the means are null, not 0.
  const [none] = await evalQa(pipeline, [long], [{ mode: "all" }], { maxNewTokens: 4 });
  assert.deepEqual([none.skipped, none.accuracy, none.meanPositions], [1, null, null]);
});
