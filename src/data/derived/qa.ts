// Question-answer items from facts, each with the passages (gold) that state its answer.
import { createHash } from "node:crypto";
import type { EvalDoc } from "./docs.js";
import { elementFacts } from "./elements.js";
import { factbookFacts } from "./factbook.js";
import type { Fact } from "./facts.js";
import { acronymFact, definitionFact } from "./glossary.js";
import type { Passage } from "./passages.js";
import { splitOf, type Split } from "./split.js";
import { containsAnswer } from "./text.js";

export interface QaItem {
  id: string;
  question: string;
  answers: string[];
  gold_passage_ids: string[];
  source: string;
  meta: { relation: string; subject: string; doc_id: string; split: Split; evidence: string };
}

export interface QaOptions {
  /** Seed of the order used to pick dictionary entries and to order conversation turns. */
  seed: number;
  /** At most this many acronym (dict-vera) items. */
  maxAcronyms: number;
  /** At most this many definition items per dictionary (dict-jargon, dict-foldoc). */
  maxDefinitions: number;
}

export const DEFAULT_QA_OPTIONS: QaOptions = { seed: 1, maxAcronyms: 1000, maxDefinitions: 1000 };

/** The sources that QA items are drawn from. */
export const QA_SOURCES = ["factbook", "dict-elements", "dict-vera", "dict-jargon", "dict-foldoc"] as const;

/** A seeded, platform-independent order key of a string. */
export function seededKey(seed: number, s: string): string {
  return createHash("sha256").update(`${seed}\u0000${s}`, "utf8").digest("hex");
}

/** The first `n` items in seeded-hash order of their key, then returned in their original order. */
export function seededPick<T>(items: readonly T[], n: number, key: (t: T) => string, seed: number): T[] {
  if (items.length <= n) return [...items];
  const keep = new Set(
    items
      .map((t, i) => ({ i, k: seededKey(seed, key(t)) }))
      .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
      .slice(0, n)
      .map((x) => x.i),
  );
  return items.filter((_, i) => keep.has(i));
}

/** All facts of the QA sources present in `bySource` (dictionary entries picked by seeded order). */
export function collectFacts(bySource: Map<string, EvalDoc[]>, opts: QaOptions = DEFAULT_QA_OPTIONS): Fact[] {
  const docs = (s: string): EvalDoc[] => bySource.get(s) ?? [];
  const out: Fact[] = [];
  for (const d of docs("factbook")) out.push(...factbookFacts(d));
  out.push(...docs("dict-elements").flatMap(elementFacts));
  const unique = <T extends Fact>(fs: (T | null)[]): T[] => {
    const count = new Map<string, number>();
    const ok = fs.filter((f): f is T => f !== null);
    for (const f of ok) count.set(f.question, (count.get(f.question) ?? 0) + 1);
    return ok.filter((f) => count.get(f.question) === 1); // an ambiguous question (two entries) is dropped
  };
  out.push(
    ...seededPick(unique(docs("dict-vera").map(acronymFact)), opts.maxAcronyms, (f) => f.doc_id, opts.seed),
  );
  const asked = new Set<string>();
  for (const s of ["dict-jargon", "dict-foldoc"]) {
    const fs = unique(docs(s).map(definitionFact)).filter((f) => !asked.has(f.question));
    const picked = seededPick(fs, opts.maxDefinitions, (f) => f.doc_id, opts.seed);
    for (const f of picked) asked.add(f.question);
    out.push(...picked);
  }
  return out;
}

/** Passages grouped by document id. */
export function passagesByDoc(passages: Iterable<Passage>): Map<string, Passage[]> {
  const out = new Map<string, Passage[]>();
  for (const p of passages) {
    let l = out.get(p.doc_id);
    if (l === undefined) out.set(p.doc_id, (l = []));
    l.push(p);
  }
  return out;
}

/** Ids of the passages of the fact's document that contain both its evidence and its first answer. */
export function goldPassages(f: Fact, byDoc: Map<string, Passage[]>): string[] {
  return (byDoc.get(f.doc_id) ?? [])
    .filter((p) => containsAnswer(p.text, f.evidence) && containsAnswer(p.text, f.answers[0]))
    .map((p) => p.id);
}

/** QA items of facts; a fact whose evidence no passage holds (cut across a border) is dropped and counted. */
export function buildQa(
  facts: readonly Fact[],
  byDoc: Map<string, Passage[]>,
): { items: QaItem[]; dropped: number } {
  const items: QaItem[] = [];
  let dropped = 0;
  for (const f of facts) {
    const gold = goldPassages(f, byDoc);
    if (gold.length === 0) {
      dropped++;
      continue;
    }
    items.push({
      id: `${f.source}/${f.relation}/${f.subjectKey}`,
      question: f.question,
      answers: f.answers,
      gold_passage_ids: gold,
      source: f.source,
      meta: {
        relation: f.relation,
        subject: f.subject,
        doc_id: f.doc_id,
        split: splitOf(f.doc_id),
        evidence: f.evidence,
      },
    });
  }
  return { items, dropped };
}
