import assert from "node:assert/strict";
import { test } from "node:test";
import "../../helpers.js";
import { docsOf } from "../../../src/data/derived/docs.js";
import { factbookFacts } from "../../../src/data/derived/factbook.js";
import { elementFacts } from "../../../src/data/derived/elements.js";
import { acronymFact, definitionFact } from "../../../src/data/derived/glossary.js";
import { buildPassages, cutPassages } from "../../../src/data/derived/passages.js";
import {
  buildQa,
  collectFacts,
  DEFAULT_QA_OPTIONS,
  passagesByDoc,
  QA_SOURCES,
  seededPick,
} from "../../../src/data/derived/qa.js";
import { wordCount } from "../../../src/data/derived/text.js";
import { fixtureCorpus, fixtureDoc } from "./fixtures.js";

function qaSet() {
  const corpus = fixtureCorpus();
  const passages = buildPassages(docsOf(corpus, [...QA_SOURCES]));
  const facts = collectFacts(corpus, DEFAULT_QA_OPTIONS);
  return { passages, facts, ...buildQa(facts, passagesByDoc(passages)) };
}

test("Factbook facts: pinned questions and answers", () => {
  const facts = ["Government", "Geography", "People and Society", "Communications"].flatMap((s) =>
    factbookFacts(fixtureDoc(`factbook/ag/${s}`)),
  );
  const got = Object.fromEntries(facts.map((f) => [f.relation, [f.question, f.answers]]));
  assert.deepEqual(got, {
    capital: ["What is the capital of Algeria?", ["Algiers"]],
    population: ["What is the population of Algeria?", ["39,542,166"]],
    area: ["What is the total area of Algeria?", ["2,381,741 sq km"]],
    highest_point: ["What is the highest point of Algeria?", ["Tahat", "Tahat 3,003 m"]],
    national_holiday: [
      "What is the national holiday of Algeria?",
      ["Revolution Day, 1 November", "Revolution Day"],
    ],
    internet_code: ["What is the internet country code of Algeria?", [".dz"]],
    independence: ["When did Algeria become independent?", ["5 July 1962", "1962"]],
    government_type: ["What type of government does Algeria have?", ["republic"]],
  });
  const ja = factbookFacts(fixtureDoc("factbook/ja/Government"));
  assert.deepEqual(ja.find((f) => f.relation === "capital")?.answers, ["Tokyo"]);
  // A document titled by a bare code ("cc") names no subject: no facts.
  assert.deepEqual(factbookFacts(fixtureDoc("factbook/cc/Government")), []);
});

test("element facts: symbol, atomic number, discovery", () => {
  const h = elementFacts(fixtureDoc("dict-elements/0"));
  const got = Object.fromEntries(h.map((f) => [f.relation, [f.question, f.answers]]));
  assert.deepEqual(got, {
    symbol: ["What is the chemical symbol of hydrogen?", ["H"]],
    atomic_number: ["What is the atomic number of hydrogen?", ["1"]],
    element_by_number: ["Which chemical element has the atomic number 1?", ["hydrogen"]],
    discovery_year: ["In what year was hydrogen discovered?", ["1776"]],
    discoverer: ["Who discovered hydrogen?", ["Henry Cavendish"]],
  });
  const cu = elementFacts(fixtureDoc("dict-elements/29"));
  assert.deepEqual(
    cu.map((f) => f.relation),
    ["symbol", "atomic_number", "element_by_number"],
  );
  // "wolfram: Original name for {tungsten}." has no Symbol line: no facts.
  const wolfram = fixtureCorpus()
    .get("dict-elements")
    ?.find((d) => d.title === "wolfram");
  assert.ok(wolfram !== undefined);
  assert.deepEqual(elementFacts(wolfram), []);
});

test("acronyms and definitions", () => {
  const vera = fixtureCorpus().get("dict-vera") ?? [];
  const byTitle = (t: string) => {
    const d = vera.find((x) => x.title === t);
    assert.ok(d !== undefined, t);
    return d;
  };
  assert.deepEqual(acronymFact(byTitle("html"))?.answers, ["HyperText Markup Language"]);
  assert.equal(acronymFact(byTitle("html"))?.question, "What does HTML stand for?");
  assert.deepEqual(acronymFact(byTitle("htcpcp"))?.answers, ["Hyper Text Coffee Pot Control Protocol"]);
  assert.deepEqual(acronymFact(byTitle("ac3"))?.answers, ["Audio Compression - 3"]);
  const jargon = fixtureCorpus().get("dict-jargon") ?? [];
  const hole = definitionFact(jargon.find((d) => d.title === "hole") ?? jargon[0]);
  assert.equal(hole?.question, "What is hole?");
  assert.deepEqual(hole?.answers, ["A region in an otherwise flat entity which is not actually present."]);
  const devnull = definitionFact(jargon.find((d) => d.title === "/dev/null") ?? jargon[0]);
  assert.deepEqual(devnull?.answers, [
    "A notional ‘black hole’ in any information space being discussed, used, or referred to.",
  ]);
  // "See {software hoarding}." is a cross reference, not a definition.
  assert.equal(definitionFact(jargon.find((d) => d.title === "hoarding") ?? jargon[0]), null);
  const foldoc = fixtureCorpus().get("dict-foldoc") ?? [];
  const ce = definitionFact(foldoc.find((d) => d.title === "ce") ?? foldoc[0]);
  assert.equal(ce?.question, "What is IBM Customer Engineer?");
  assert.deepEqual(ce?.answers, ["A hardware guy from IBM."]);
});

test("QA items: unique ids, gold passages exist and contain the answer", () => {
  const { passages, items, dropped } = qaSet();
  assert.equal(dropped, 0);
  assert.ok(items.length >= 30, `${items.length} items`);
  assert.equal(new Set(items.map((q) => q.id)).size, items.length);
  const byId = new Map(passages.map((p) => [p.id, p]));
  for (const q of items) {
    assert.ok(q.gold_passage_ids.length > 0, q.id);
    for (const g of q.gold_passage_ids) {
      const p = byId.get(g);
      assert.ok(p !== undefined, `${q.id}: gold ${g} is not a passage`);
      assert.equal(p.doc_id, q.meta.doc_id);
      assert.ok(p.text.replace(/\s+/g, " ").includes(q.answers[0]), `${q.id}: ${g} lacks "${q.answers[0]}"`);
    }
  }
  const cap = items.find((q) => q.id === "factbook/capital/ag");
  assert.deepEqual(cap?.gold_passage_ids, ["factbook/ag/Government#0"]);
  assert.equal(cap?.meta.split, "train");
});

test("passages: at most 200 words, paragraph-aware, every document covered", () => {
  const { passages } = qaSet();
  for (const p of passages) assert.ok(wordCount(p.text) <= 200, `${p.id}: ${wordCount(p.text)} words`);
  const docs = docsOf(fixtureCorpus(), [...QA_SOURCES]);
  assert.equal(new Set(passages.map((p) => p.doc_id)).size, docs.length);
  // A long man page is cut into several passages, each starting at a paragraph start.
  const man = cutPassages(fixtureDoc("manpages/man1/iconv.1.gz"));
  assert.ok(man.length >= 3, `${man.length} passages`);
  const words = (s: string) => s.split(/\s+/).filter((w) => w.length > 0);
  assert.deepEqual(
    words(man.map((p) => p.text).join(" ")),
    words(fixtureDoc("manpages/man1/iconv.1.gz").text.replace(/\u2010\n\s*/g, "")),
  );
  // Line-structured text over 200 words is cut at line borders, never inside a line.
  const lines = Array.from(
    { length: 60 },
    (_, i) => `Field ${i} - sub: ${"value ".repeat(8)}${"x".repeat(60)} end${i}`,
  );
  const ps = cutPassages({ id: "t/1", source: "t", title: "t", text: lines.join("\n") });
  assert.ok(ps.length > 1);
  for (const p of ps) for (const l of p.text.split("\n")) assert.match(l, /^Field \d+ - sub: .* end\d+$/);
  assert.deepEqual(
    ps.map((p) => p.id),
    ps.map((_, i) => `t/1#${i}`),
  );
});

test("seededPick is deterministic and seed-dependent", () => {
  const xs = Array.from({ length: 50 }, (_, i) => `x${i}`);
  const a = seededPick(xs, 10, (x) => x, 1);
  assert.deepEqual(
    seededPick(xs, 10, (x) => x, 1),
    a,
  );
  assert.notDeepEqual(
    seededPick(xs, 10, (x) => x, 2),
    a,
  );
  assert.equal(a.length, 10);
  assert.deepEqual(
    [...a].sort((p, q) => xs.indexOf(p) - xs.indexOf(q)),
    a,
  );
});
