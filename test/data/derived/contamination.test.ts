import assert from "node:assert/strict";
import { test } from "node:test";
import "../../helpers.js";
import {
  evalEvidence,
  forEachNgram,
  OverlapIndex,
  pretrainingDocs,
  wordHashes,
} from "../../../src/data/derived/contamination.js";
import { buildConversations } from "../../../src/data/derived/conversations.js";
import { docsOf, type EvalDoc } from "../../../src/data/derived/docs.js";
import { domainReport, DOMAINS, longDocText } from "../../../src/data/derived/domains.js";
import { buildPassages } from "../../../src/data/derived/passages.js";
import {
  buildQa,
  collectFacts,
  DEFAULT_QA_OPTIONS,
  passagesByDoc,
  QA_SOURCES,
} from "../../../src/data/derived/qa.js";
import type { TextEncoder } from "../../../src/data/derived/sampler.js";
import { buildSummaries } from "../../../src/data/derived/summaries.js";
import { fixtureCorpus } from "./fixtures.js";

const words: TextEncoder = {
  encode: (t) =>
    t
      .split(/\s+/)
      .filter((w) => w.length > 0)
      .map((w) => w.length),
};

test("domains: test documents first, then validation, then joined chapters of one work", () => {
  const books = DOMAINS.find((d) => d.name === "books");
  assert.ok(books !== undefined);
  const r = domainReport(books, fixtureCorpus().get("austen") ?? [], words, 2, [100, 300]);
  assert.equal(r.heldOutDocs, 4); // emma/1 is a train chapter
  const [short, long] = r.lengths;
  assert.deepEqual([short.test, short.validation, short.fallback], [2, 2, "test"]);
  assert.deepEqual(
    short.docs.map((d) => d.id),
    ["austen/emma/18", "austen/emma/34"],
  );
  assert.equal(long.fallback, "composite");
  assert.equal(long.docs.length, 1);
  assert.deepEqual(long.docs[0].members, ["austen/emma/3", "austen/emma/18", "austen/emma/20"]);
  assert.ok(long.docs[0].tokens >= 300);
  const byId = new Map((fixtureCorpus().get("austen") ?? []).map((d) => [d.id, d]));
  assert.ok(longDocText(long.docs[0], byId).includes("\n\n"));
});

test("evaluation evidence: gold documents, summarised pages and long documents; pre-training excludes them", () => {
  const corpus = fixtureCorpus();
  const passages = buildPassages(docsOf(corpus, [...QA_SOURCES]));
  const byDoc = passagesByDoc(passages);
  const facts = collectFacts(corpus, DEFAULT_QA_OPTIONS);
  const { items } = buildQa(facts, byDoc);
  const conversations = buildConversations(facts, byDoc, 1);
  const summaries = buildSummaries(corpus.get("manpages") ?? [], ["train", "validation", "test"]);
  const books = DOMAINS.find((d) => d.name === "books");
  assert.ok(books !== undefined);
  const domains = [domainReport(books, corpus.get("austen") ?? [], words, 2, [100])];
  const ev = evalEvidence({ qa: items, conversations, summaries, domains });
  for (const id of [
    "factbook/ag/Government",
    "dict-elements/0",
    "manpages/man1/iconv.1.gz",
    "austen/emma/18",
  ])
    assert.ok(ev.doc_ids.includes(id), id);
  assert.ok(!ev.doc_ids.includes("factbook/cc/Government")); // no facts: not evidence
  assert.ok(!ev.doc_ids.includes("dict-jargon/999")); // "hoarding": a cross reference, no question
  assert.ok(ev.passage_ids.includes("factbook/ag/Government#0"));
  const all: EvalDoc[] = [...corpus.values()].flat();
  const kept = pretrainingDocs(all, ev);
  const keptIds = new Set(kept.map((d) => d.id));
  for (const id of ev.doc_ids) assert.ok(!keptIds.has(id), id);
  assert.ok(keptIds.has("factbook/cc/Government"));
  assert.ok(keptIds.has("austen/emma/1"));
  assert.ok(!keptIds.has("sotu/1809_james_madison_dr")); // test split
});

test("overlap: 13-gram and exact-passage counts", () => {
  const passages = buildPassages(docsOf(fixtureCorpus(), ["dict-jargon", "dict-foldoc"]));
  const idx = new OverlapIndex(passages, 13, "word");
  const hole = fixtureCorpus()
    .get("dict-jargon")
    ?.find((d) => d.title === "hole");
  assert.ok(hole !== undefined);
  idx.addDoc(
    {
      id: "x/1",
      source: "x",
      title: "x",
      text: "Unrelated words that share nothing at all with the passages here.",
    },
    false,
  );
  let r = idx.report("pretraining", true);
  assert.deepEqual([r.matchedNgrams, r.passagesWithOverlap, r.exactPassages], [0, 0, 0]);
  idx.addDoc(hole, true); // evidence: counted in the train split only
  r = idx.report("train-split", true);
  assert.deepEqual(
    [r.passagesWithOverlap, r.passagesFullyCovered, r.exactPassages, r.evidenceDocsInTraining],
    [1, 1, 1, 1],
  );
  assert.equal(idx.report("pretraining", true).passagesWithOverlap, 0);
  // A quoted stretch of 13 words counts as overlap without being the whole passage.
  const quote = hole.text.split(/\s+/).slice(10, 30).join(" ");
  const idx2 = new OverlapIndex(passages, 13, "word");
  idx2.addDoc({ id: "x/2", source: "x", title: "x", text: `Someone wrote: ${quote} and more.` }, false);
  const r2 = idx2.report("pretraining", true);
  assert.deepEqual([r2.passagesWithOverlap, r2.passagesFullyCovered, r2.exactPassages], [1, 0, 0]);
  assert.ok(r2.matchedNgrams >= 1);
});

test("rolling n-gram keys equal directly computed ones", () => {
  const ids = wordHashes("the quick brown fox jumps over the lazy dog and the quick brown fox jumps again");
  const keys: number[] = [];
  forEachNgram(ids, 5, (k) => keys.push(k));
  assert.equal(keys.length, ids.length - 4);
  assert.equal(keys[0], keys[10]); // "the quick brown fox jumps" twice
  const fresh: number[] = [];
  forEachNgram(ids.slice(10, 15), 5, (k) => fresh.push(k));
  assert.deepEqual(fresh, [keys[10]]);
  assert.notEqual(keys[0], keys[1]);
});
