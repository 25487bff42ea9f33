import assert from "node:assert/strict";
import { test } from "node:test";
import "../../helpers.js";
import { buildConversations } from "../../../src/data/derived/conversations.js";
import { docsOf } from "../../../src/data/derived/docs.js";
import { buildPassages } from "../../../src/data/derived/passages.js";
import { collectFacts, DEFAULT_QA_OPTIONS, passagesByDoc, QA_SOURCES } from "../../../src/data/derived/qa.js";
import { buildSummaries, splitNameSection } from "../../../src/data/derived/summaries.js";
import { fixtureCorpus, fixtureDoc } from "./fixtures.js";

function conversations(seed: number) {
  const corpus = fixtureCorpus();
  const passages = buildPassages(docsOf(corpus, [...QA_SOURCES]));
  return {
    passages,
    convs: buildConversations(collectFacts(corpus, DEFAULT_QA_OPTIONS), passagesByDoc(passages), seed),
  };
}

test("conversations: the first turn names the subject, later turns refer back", () => {
  const { passages, convs } = conversations(1);
  const byId = new Map(passages.map((p) => [p.id, p]));
  const ag = convs.find((c) => c.id === "conv/factbook/ag");
  assert.ok(ag !== undefined);
  assert.equal(ag.subject, "Algeria");
  assert.ok(ag.turns.length >= 3 && ag.turns.length <= 6);
  assert.match(ag.turns[0].question, /Algeria/);
  for (const t of ag.turns.slice(1)) {
    assert.doesNotMatch(t.question, /Algeria/);
    assert.match(t.question, /\b(its|it)\b/);
  }
  assert.equal(new Set(ag.turns.map((t) => t.relation)).size, ag.turns.length);
  for (const c of convs)
    for (const t of c.turns) {
      assert.ok(t.gold_passage_ids.length > 0);
      for (const g of t.gold_passage_ids)
        assert.ok((byId.get(g)?.text ?? "").includes(t.answers[0]), `${c.id} ${g}`);
    }
  assert.ok(convs.some((c) => c.id === "conv/dict-elements/hydrogen"));
  assert.deepEqual(conversations(1).convs, convs);
  // The seed orders the turns.
  const other = conversations(2).convs.find((c) => c.id === "conv/factbook/ag");
  assert.notDeepEqual(
    other?.turns.map((t) => t.relation),
    ag.turns.map((t) => t.relation),
  );
});

test("summaries: the target is the NAME line, the input the rest of the page", () => {
  const doc = fixtureDoc("manpages/man1/iconv.1.gz");
  const s = splitNameSection(doc.text);
  assert.equal(s?.summary, "iconv - convert text from one character encoding to another");
  assert.doesNotMatch(s?.rest ?? "", /\nNAME\n/);
  assert.match(s?.rest ?? "", /^iconv\(1\)/);
  assert.match(s?.rest ?? "", /\nSYNOPSIS\n/);
  const pairs = buildSummaries(fixtureCorpus().get("manpages") ?? [], ["train", "validation", "test"], 200);
  assert.deepEqual(
    pairs.map((p) => [p.doc_id, p.summary, p.meta.names, p.meta.description]),
    [
      [
        "manpages/man1/iconv.1.gz",
        "iconv - convert text from one character encoding to another",
        ["iconv"],
        "convert text from one character encoding to another",
      ],
      [
        "manpages/man2/socketpair.2.gz",
        "socketpair - create a pair of connected sockets",
        ["socketpair"],
        "create a pair of connected sockets",
      ],
    ],
  );
  for (const p of pairs) assert.ok(!p.input.includes(p.summary));
  // Both fixture pages are in the train split: the default (validation, test) takes neither.
  assert.deepEqual(buildSummaries(fixtureCorpus().get("manpages") ?? []), []);
});
