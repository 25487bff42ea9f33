// Table 3 and Table 11 on tiny models: QA cells equal the metrics of the pipeline's own answers on the
// passages each row reads (first n), conversations count their follow-ups, the weak retriever draws k of
// the top 200 deterministically, and the reconstruction table compares models on the same windows.
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { containsAnswer, tokenF1 } from "../../src/eval/metrics.js";
import { firstPassages } from "../../src/eval/qa.js";
import { dataKind, isQaEvalRow, parseQaRows, qaMarkdown, qaSvg, qaTable } from "../../src/eval/qa_table.js";
import { JsonlCache } from "../../src/eval/report.js";
import { reconstructionRow, reconstructionTable } from "../../src/eval/reconstruction.js";
import { rougeScores } from "../../src/eval/rouge.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { promptIds } from "../../src/infer/prompt.js";
import {
  buildConversationExamples,
  buildRagExamples,
  type RagExample,
  type Retriever,
} from "../../src/retrieval/rag_examples.js";
import type { Conversation } from "../../src/data/derived/conversations.js";
import type { QaItem } from "../../src/data/derived/qa.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";

const passages = (i: number) =>
  ["red apples grow on trees", "the sky is blue today", "green grass in the field", "a yellow sun"].map(
    (text, j) => ({ id: `p${(i + j) % 4}`, title: `T${j}`, text }),
  );

const examples: RagExample[] = [0, 1, 2].map((i) => ({
  id: `q${i}`,
  question: `What colour is thing ${i}?`,
  passages: passages(i),
  answers: ["red", "blue"],
  gold_in_context: true,
  gold_ids: [`p${i}`],
}));

test("QA table: every cell equals the metrics of the pipeline's answers on the passages its row reads", async () => {
  const model = tinyRefrag(4, 256, 21, 1);
  const pipeline = new RefragPipeline(model, tokenizer);
  const pipelines = new Map([
    ["refrag", pipeline],
    ["ft", pipeline],
  ]);
  assert.throws(() => parseQaRows("x:none:1", ["refrag"], 0.1), /names model x/);
  assert.throws(() => parseQaRows("refrag:nope", ["refrag"], 0.1), /unknown selection nope/);
  assert.throws(() => parseQaRows("refrag:all:-1", ["refrag"], 0.1), /non-negative integer/);
  assert.throws(() => parseQaRows("refrag:all@0.1", ["refrag"], 0.1), /all takes no fraction/);
  assert.throws(
    () => parseQaRows("refrag:query@1.5", ["refrag"], 0.1),
    /fraction must be a number in \[0, 1\]/,
  );
  assert.throws(() => parseQaRows("refrag:query@", ["refrag"], 0.1), /fraction must be a number/);
  const own = parseQaRows("refrag:query@0.03:8,refrag:query:8", ["refrag"], 0.1);
  assert.deepEqual(
    own.map((r) => [r.id, r.selection.fraction, r.label]),
    [
      ["refrag:query@0.03:8", 0.03, "refrag · query p=0.03 · 8 passages"],
      ["refrag:query:8", 0.1, "refrag · query p=0.1 · 8 passages"],
    ],
  );
  const rows = parseQaRows("refrag:none:3,ft:all:1,ft:all:3,ft:all:0,refrag:random", ["refrag", "ft"], 0.5);
  const few = examples.slice(0, 2);
  assert.deepEqual(
    rows.map((r) => r.label),
    [
      "refrag · compressed · 3 passages",
      "ft · all raw · 1 passage",
      "ft · all raw · 3 passages",
      "ft · no passages",
      "refrag · random p=0.5",
    ],
  );
  const conv: RagExample[] = [
    { ...examples[0], id: "c#0" },
    { ...examples[1], id: "c#1", history: [{ question: "first?", answer: "red" }] },
  ];
  const data = [
    { name: "strong", kind: dataKind(few), examples: few },
    { name: "conv", kind: dataKind(conv), examples: conv },
  ];
  assert.deepEqual(
    data.map((d) => d.kind),
    ["qa", "conversation"],
  );
  const res = await qaTable(pipelines, rows, data, { maxNewTokens: 4 });
  assert.equal(res.cells.length, rows.length * 2);
  for (const d of data)
    for (const row of rows) {
      const c = res.cells.find((x) => x.row === row.id && x.data === d.name)!;
      let acc = 0;
      let f1 = 0;
      let r2 = 0;
      for (const ex of d.examples) {
        const cut = ex.passages.slice(0, row.passages ?? ex.passages.length);
        const text = await pipeline.answer({
          question: ex.question,
          passages: cut,
          history: ex.history,
          selection: row.selection,
          maxNewTokens: 4,
        });
        acc += containsAnswer(text, ex.answers) ? 1 : 0;
        f1 += tokenF1(text, ex.answers);
        r2 += rougeScores(text, ex.answers).rouge2.f;
      }
      const n = d.examples.length;
      const at = `${d.name} ${row.label}`;
      assert.equal(c.accuracy, acc / n, `${at} accuracy`);
      assert.ok(Math.abs(c.f1! - f1 / n) < 1e-12, `${at} F1 ${c.f1} vs ${f1 / n}`);
      assert.ok(Math.abs(c.rouge2! - r2 / n) < 1e-12, `${at} ROUGE-2`);
      assert.ok(c.meanTtftMs! > 0 && c.meanTtftWithEncoderMs! >= c.meanTtftMs!, `${at} TTFT`);
      assert.equal(c.followUps, d.name === "conv" ? 1 : 0);
    }
  const cell = (row: number, data = "strong") =>
    res.cells.find((c) => c.row === rows[row].id && c.data === data)!;
  // No passages: the prompt is the question alone (before, then <|answer|>).
  assert.equal(
    cell(3).meanPositions,
    few.reduce((n, e) => n + promptIds(tokenizer, e.question).before.length + 1, 0) / 2,
  );
  assert.ok(cell(1).meanPositions! < cell(2).meanPositions!, "1 passage reads fewer positions than 3");
  assert.ok(cell(0).meanPositions! < cell(2).meanPositions!, "compressed reads fewer than raw");
  // Gold in context after the cut, from the examples' gold ids: example i's gold p_i is its first passage.
  assert.equal(cell(1).goldInContext, 1);
  assert.equal(firstPassages({ ...examples[0], gold_ids: ["p3"] }, 1).gold_in_context, false);
  assert.equal(firstPassages({ ...examples[0], gold_ids: undefined }, 1).goldKnown, false);
  const md = qaMarkdown(res, "T3");
  assert.ok(md.includes("follow-up accuracy") && md.includes("| ft · no passages |"));
  assert.ok(qaSvg(res, "T3").includes("time to first token"));
});

test("QA table: finished cells are stored and reused by a rerun; other examples or weights are not", async () => {
  const pipeline = new RefragPipeline(tinyRefrag(4, 256, 21, 1), tokenizer);
  const pipelines = new Map([["m", pipeline]]);
  const rows = parseQaRows("m:none:2,m:all:1", ["m"], 0.1);
  const few = examples.slice(0, 2);
  const data = [{ name: "strong", kind: dataKind(few), examples: few }];
  const path = join(mkdtempSync(join(tmpdir(), "qa-cache-")), "t3.partial.jsonl");
  const run = async (fingerprint: string, d = data) => {
    let answered = 0;
    const res = await qaTable(pipelines, rows, d, {
      maxNewTokens: 4,
      cache: new JsonlCache(path, isQaEvalRow),
      fingerprints: new Map([["m", fingerprint]]),
      onProgress: () => answered++,
    });
    return { res, answered };
  };
  const first = await run("w1");
  assert.equal(first.answered, 4);
  appendFileSync(path, '{"key": "cut sho'); // a line cut by a crash
  const again = await run("w1");
  assert.equal(again.answered, 0, "every cell came from the cache");
  assert.deepEqual(again.res.cells, first.res.cells);
  assert.equal((await run("w2")).answered, 4, "new weights are answered again");
  const other = [{ ...data[0], examples: [examples[2], examples[0]] }];
  assert.equal((await run("w1", other)).answered, 4, "other examples are answered again");
});

/** A fake index: the top n hits of any query are passages h0, h1, … in rank order. */
const fakeIndex: Retriever = {
  search: async (_q: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `h${i}`, title: `t${i}`, text: `x${i}` })) as never,
  get: async (ids: string[]) => ids.map((id) => ({ id, title: id, text: id })) as never,
};

test("weak retriever: k of the top 200 at random, in rank order, the same for the same seed", async () => {
  const items = Array.from(
    { length: 6 },
    (_, i) =>
      ({ id: `q${i}`, question: `question ${i}`, answers: ["a"], gold_passage_ids: ["h0"] }) as QaItem,
  );
  const ids = (ex: RagExample[]) => ex.map((e) => e.passages.map((p) => (p as { id: string }).id));
  const strong = await buildRagExamples(items, fakeIndex, { k: 5, forceGold: false });
  assert.deepEqual(ids(strong)[0], ["h0", "h1", "h2", "h3", "h4"]);
  const weak = await buildRagExamples(items, fakeIndex, {
    k: 5,
    forceGold: false,
    weak: { pool: 200, seed: 1 },
  });
  const again = await buildRagExamples([...items].reverse(), fakeIndex, {
    k: 5,
    forceGold: false,
    weak: { pool: 200, seed: 1 },
  });
  const other = await buildRagExamples(items, fakeIndex, {
    k: 5,
    forceGold: false,
    weak: { pool: 200, seed: 2 },
  });
  for (const [i, p] of ids(weak).entries()) {
    assert.equal(new Set(p).size, 5);
    const ranks = p.map((id) => Number(id.slice(1)));
    assert.ok(
      ranks.every((r) => r >= 0 && r < 200),
      "from the top 200",
    );
    assert.deepEqual(
      ranks,
      [...ranks].sort((a, b) => a - b),
      "in rank order",
    );
    assert.notDeepEqual(p, ids(strong)[i], "not the top k");
    assert.equal(weak[i].gold_in_context, p.includes("h0"));
  }
  assert.deepEqual(ids(again).reverse(), ids(weak), "deterministic per question, whatever the order");
  assert.notDeepEqual(ids(other), ids(weak), "another seed, another draw");
  assert.ok(new Set(ids(weak).map((p) => p.join())).size > 1, "questions draw differently");
  const ranks = ids(weak)
    .flat()
    .map((id) => Number(id.slice(1)));
  assert.ok(Math.max(...ranks) >= 20, "the draw reaches deep into the pool");
  // Conversations too, with gold ids kept for later cuts.
  const convs = [
    {
      id: "c",
      turns: [
        { question: "one", answers: ["a"], gold_passage_ids: ["h1"] },
        { question: "two", answers: ["b"], gold_passage_ids: ["h2"] },
      ],
    },
  ] as unknown as Conversation[];
  const conv = await buildConversationExamples(convs, fakeIndex, {
    k: 3,
    forceGold: false,
    weak: { pool: 200, seed: 1 },
  });
  assert.deepEqual(
    conv.map((e) => [e.gold_ids, e.history?.length]),
    [
      [["h1"], 0],
      [["h2"], 1],
    ],
  );
  await assert.rejects(
    buildRagExamples(items, fakeIndex, { k: 5, forceGold: false, weak: { pool: 3, seed: 1 } }),
    /pool \(3\) must be an integer ≥ k \(5\)/,
  );
});

test("reconstruction table: each model on the same windows, ratios to the reference", () => {
  const a = tinyRefrag(4, 256, 31, 1);
  const b = tinyRefrag(4, 256, 32, 1);
  const stream = Uint16Array.from({ length: 3000 }, (_, i) => 8 + ((i * 7919) % 50));
  const t = reconstructionTable(
    [
      { name: "curriculum", model: a },
      { name: "none", model: b },
    ],
    stream,
    [1, 2],
    2,
  );
  assert.deepEqual(
    t.rows.map((r) => `${r.model}/${r.chunks}`),
    ["curriculum/1", "curriculum/2", "none/1", "none/2"],
  );
  const ra = reconstructionRow(a, stream, 2, 2);
  const rb = reconstructionRow(b, stream, 2, 2);
  assert.deepEqual(t.rows[1].nll, ra.nll);
  assert.deepEqual(t.rows[3].nll, rb.nll);
  const ratio = t.ratios.find((x) => x.model === "none" && x.chunks === 2)!.ratio;
  assert.equal(ratio.vectors, rb.nll.vectors / ra.nll.vectors, "without / with");
  assert.equal(t.ratios.find((x) => x.model === "curriculum")!.ratio.vectors, 1);
  assert.throws(
    () =>
      reconstructionTable(
        [
          { name: "x", model: a },
          { name: "y", model: tinyRefrag(2, 256, 33) },
        ],
        stream,
        [1],
        2,
      ),
    /compare models of one chunk size/,
  );
});
