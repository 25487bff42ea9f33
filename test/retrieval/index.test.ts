import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import "../helpers.js";
import { docsOf } from "../../src/data/derived/docs.js";
import { buildPassages, type Passage } from "../../src/data/derived/passages.js";
import {
  buildQa,
  collectFacts,
  DEFAULT_QA_OPTIONS,
  passagesByDoc,
  QA_SOURCES,
} from "../../src/data/derived/qa.js";
import { evalRetrieval } from "../../src/retrieval/eval.js";
import { PassageIndex, toQuery } from "../../src/retrieval/index.js";
import { buildConversationExamples, buildRagExamples } from "../../src/retrieval/rag_examples.js";
import { buildConversations } from "../../src/data/derived/conversations.js";
import { fixtureCorpus } from "../data/derived/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "refrag-index-"));
after(() => rmSync(root, { recursive: true, force: true }));

const corpus = fixtureCorpus();
const passages = buildPassages(docsOf(corpus, [...QA_SOURCES]));
const { items } = buildQa(collectFacts(corpus, DEFAULT_QA_OPTIONS), passagesByDoc(passages));

test("index: BM25 finds the gold passage of the fixture QA items (recall@5 > 0.6)", async () => {
  assert.ok(passages.length > 20 && items.length > 20, `${passages.length} passages, ${items.length} items`);
  // Small batches exercise the append path.
  const idx = await PassageIndex.build(join(root, "qa"), passages, { batchSize: 10 });
  assert.equal(await idx.count(), passages.length);
  const report = await evalRetrieval(idx, items, [1, 5, 10]);
  assert.equal(report.questions, items.length);
  const [r1, r5, r10] = report.rows.map((r) => r.recall);
  assert.ok(r1 <= r5 && r5 <= r10, `recall must grow with k: ${r1} ${r5} ${r10}`);
  assert.ok(r5 > 0.6, `recall@5 ${r5}`);
  assert.ok(report.mrr > 0 && report.mrr <= 1);
  // RAG examples: as retrieved, the gold share is recall@k; forcing gold puts it in every context.
  const asIs = await buildRagExamples(items, idx, { k: 5, forceGold: false });
  assert.equal(asIs.filter((e) => e.gold_in_context).length / items.length, r5);
  const forced = await buildRagExamples(items, idx, { k: 5, forceGold: true });
  assert.ok(forced.every((e) => e.gold_in_context && e.passages.length <= 5));
  // Passages keep their id and title (the prompt reads the title raw before the passage's chunks).
  const byId = new Map(passages.map((p) => [p.id, p]));
  assert.ok(
    forced.every((e) =>
      e.passages.every((x) => {
        if (typeof x === "string") return false;
        const p = byId.get(x.id ?? "");
        return p !== undefined && p.title === x.title && p.text === x.text;
      }),
    ),
  );
  assert.deepEqual(forced[0].answers, items[0].answers);
  await assert.rejects(
    buildRagExamples(items, idx, { k: 0, forceGold: false }),
    /k must be a positive integer/,
  );
  // Conversations: one example per turn, the earlier turns (reference answers) as history.
  const convs = buildConversations(collectFacts(corpus, DEFAULT_QA_OPTIONS), passagesByDoc(passages), 1);
  assert.ok(convs.length > 0);
  const turns = await buildConversationExamples(convs, idx, { k: 3, forceGold: true });
  assert.equal(
    turns.length,
    convs.reduce((n, c) => n + c.turns.length, 0),
  );
  const c0 = convs[0];
  const ex = turns.slice(0, c0.turns.length);
  ex.forEach((e, t) => {
    assert.equal(e.question, c0.turns[t].question);
    assert.equal(e.history!.length, t);
    if (t > 0)
      assert.deepEqual(e.history![t - 1], {
        question: c0.turns[t - 1].question,
        answer: c0.turns[t - 1].answers[0],
      });
    assert.ok(e.gold_in_context);
  });
  // A passage's own title and opening words find it first.
  const p = passages.find((x) => x.text.split(/\s+/).length > 20)!;
  const hits = await idx.search(`${p.title} ${p.text.split(/\s+/).slice(0, 20).join(" ")}`, 3);
  assert.equal(hits[0].id, p.id);
  assert.ok(hits[0].score >= hits[1].score && hits[1].score >= hits[2].score);
  idx.close();
});

const tiny: Passage[] = [
  {
    id: "d1#0",
    doc_id: "d1",
    title: "Lighthouses",
    text: "A lighthouse guides ships at night with a bright lamp.",
  },
  {
    id: "d2#0",
    doc_id: "d2",
    title: "Volcanoes",
    text: "Lava flows from an erupting volcano down its slopes.",
  },
  {
    id: "it's#0",
    doc_id: "it's",
    title: "Quotes",
    text: "An id with a quote in it must still be found by get.",
  },
];

test("index: get by id keeps the order asked, quotes in ids, unknown ids left out; odd queries", async () => {
  const idx = await PassageIndex.build(join(root, "tiny"), tiny);
  const got = await idx.get(["d2#0", "nope", "it's#0", "d1#0"]);
  assert.deepEqual(
    got.map((p) => p.id),
    ["d2#0", "it's#0", "d1#0"],
  );
  assert.equal(got[0].text, tiny[1].text);
  // Query syntax in user text is plain words; punctuation alone matches nothing.
  assert.equal(toQuery(' what "is" a (volcano): +lava -x? '), "what is a volcano lava x");
  assert.equal((await idx.search('volcano: "lava" (slopes)?', 1))[0].id, "d2#0");
  assert.deepEqual(await idx.search("?!:()", 5), []);
  await assert.rejects(idx.search("lamp", 0), /k must be a positive integer/);
  idx.close();
});

test("index: bad input is refused and an existing index is never lost", async () => {
  const dir = join(root, "keep");
  (await PassageIndex.build(dir, tiny)).close();
  await assert.rejects(PassageIndex.build(dir, tiny.slice(0, 1)), /exists \(pass overwrite/);
  await assert.rejects(PassageIndex.build(join(root, "empty"), []), /no passages/);
  await assert.rejects(
    PassageIndex.build(join(root, "dup"), [tiny[0], tiny[0]]),
    /passage 1: duplicate id d1#0/,
  );
  const broken = [{ ...tiny[0], text: 7 } as unknown as Passage];
  await assert.rejects(PassageIndex.build(join(root, "bad"), broken), /passage 0: "text" must be a string/);
  // A failed rebuild with overwrite leaves the old index readable.
  await assert.rejects(PassageIndex.build(dir, [tiny[0], tiny[0]], { overwrite: true }), /duplicate id/);
  const idx = await PassageIndex.open(dir);
  assert.equal(await idx.count(), tiny.length);
  idx.close();
  const replaced = await PassageIndex.build(dir, tiny.slice(0, 2), { overwrite: true });
  assert.equal(await replaced.count(), 2);
  replaced.close();
  await assert.rejects(PassageIndex.open(join(root, "missing")), /not found \(build it with/);
  mkdirSync(join(root, "plain"));
  await assert.rejects(PassageIndex.open(join(root, "plain")), /is not a passage index/);
});
