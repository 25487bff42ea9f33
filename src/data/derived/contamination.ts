// Contamination control: the documents and passages used as evaluation evidence (to keep out of
// pre-training), and overlap measures between a training corpus or token stream and evaluation passages.
import type { Conversation } from "./conversations.js";
import type { DomainReport } from "./domains.js";
import type { EvalDoc } from "./docs.js";
import { cutPassages, type Passage } from "./passages.js";
import type { QaItem } from "./qa.js";
import type { TextEncoder } from "./sampler.js";
import { splitOf } from "./split.js";
import type { SummaryPair } from "./summaries.js";

export interface EvalEvidence {
  /** Documents whose text is evaluation evidence (gold documents, summarised pages, long test documents). */
  doc_ids: string[];
  /** Gold passages of QA items and conversation turns. */
  passage_ids: string[];
  counts: { qa_docs: number; conversation_docs: number; summary_docs: number; domain_docs: number };
}

/** The evidence of the derived sets, sorted and de-duplicated. */
export function evalEvidence(sets: {
  qa: readonly QaItem[];
  conversations: readonly Conversation[];
  summaries: readonly SummaryPair[];
  domains: readonly DomainReport[];
}): EvalEvidence {
  const qaDocs = new Set(sets.qa.map((q) => q.meta.doc_id));
  const convDocs = new Set(sets.conversations.flatMap((c) => c.meta.doc_ids));
  const sumDocs = new Set(sets.summaries.map((s) => s.doc_id));
  const domDocs = new Set(
    sets.domains.flatMap((d) => d.lengths.flatMap((l) => l.docs.flatMap((x) => x.members))),
  );
  const passages = new Set([
    ...sets.qa.flatMap((q) => q.gold_passage_ids),
    ...sets.conversations.flatMap((c) => c.turns.flatMap((t) => t.gold_passage_ids)),
  ]);
  return {
    doc_ids: [...new Set([...qaDocs, ...convDocs, ...sumDocs, ...domDocs])].sort(),
    passage_ids: [...passages].sort(),
    counts: {
      qa_docs: qaDocs.size,
      conversation_docs: convDocs.size,
      summary_docs: sumDocs.size,
      domain_docs: domDocs.size,
    },
  };
}

/** Reads eval-evidence.json content into a predicate: true for documents to keep out of pre-training. */
export function evidenceFilter(evidence: Pick<EvalEvidence, "doc_ids">): (docId: string) => boolean {
  const s = new Set(evidence.doc_ids);
  return (id) => s.has(id);
}

/** Pre-training documents: the train split minus evaluation evidence. */
export function pretrainingDocs(docs: Iterable<EvalDoc>, evidence: Pick<EvalEvidence, "doc_ids">): EvalDoc[] {
  const excluded = evidenceFilter(evidence);
  const out: EvalDoc[] = [];
  for (const d of docs) if (splitOf(d.id) === "train" && !excluded(d.id)) out.push(d);
  return out;
}

// ---- n-gram overlap -------------------------------------------------------------------------------------

const P1 = 67108859; // primes below 2^26: products stay below 2^53
const P2 = 67108837;
const B1 = 1000003;
const B2 = 999983;

/** Word ids for overlap: lower-cased alphanumeric runs, each hashed to a 26-bit number. */
export function wordHashes(text: string): number[] {
  const out: number[] = [];
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    let h = 2166136261;
    const w = m[0];
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619) >>> 0;
    out.push(h % P2);
  }
  return out;
}

function powMod(b: number, e: number, p: number): number {
  let r = 1;
  for (let i = 0; i < e; i++) r = (r * b) % p;
  return r;
}

/** Calls `f` with a 52-bit key of every n-gram of `ids` (a double polynomial rolling hash). */
export function forEachNgram(
  ids: ArrayLike<number>,
  n: number,
  f: (key: number, start: number) => void,
): void {
  if (ids.length < n) return;
  const t1 = powMod(B1, n - 1, P1);
  const t2 = powMod(B2, n - 1, P2);
  let h1 = 0;
  let h2 = 0;
  for (let i = 0; i < ids.length; i++) {
    const x = ids[i] % P2;
    if (i >= n) {
      const y = ids[i - n] % P2;
      h1 = (h1 - ((y * t1) % P1) + P1) % P1;
      h2 = (h2 - ((y * t2) % P2) + P2) % P2;
    }
    h1 = (h1 * B1 + x) % P1;
    h2 = (h2 * B2 + x) % P2;
    if (i >= n - 1) f(h1 * 67108864 + h2, i - n + 1);
  }
}

export interface OverlapReport {
  n: number;
  unit: "word" | "token";
  evalPassages: number;
  evalNgrams: number;
  /** Distinct evaluation n-grams also present in the training data. */
  matchedNgrams: number;
  /** Evaluation passages sharing at least one n-gram with the training data. */
  passagesWithOverlap: number;
  /** Evaluation passages whose every n-gram is in the training data (shorter ones: never). */
  passagesFullyCovered: number;
  /** Evaluation passages identical (whitespace-collapsed) to a passage cut from a training document. */
  exactPassages: number | null;
  /** Training documents that are evaluation evidence (0 after exclusion). */
  evidenceDocsInTraining: number | null;
  trainingUnits: number;
}

/** What a measured training set is: the whole train split, or the train split minus evaluation evidence. */
export type TrainingView = "train-split" | "pretraining";

/**
 * Overlap counter: index the evaluation passages' n-grams, then stream training data through it. Each
 * training document is counted in the "train-split" view, and in the "pretraining" view unless excluded.
 */
export class OverlapIndex {
  private readonly keys = new Map<number, number[]>(); // n-gram key → evaluation passage indices
  private readonly perPassage: number[] = [];
  private readonly exactTexts = new Map<string, number>();
  private readonly views = {
    "train-split": { matched: new Set<number>(), exact: new Set<number>(), units: 0, evidenceDocs: 0 },
    pretraining: { matched: new Set<number>(), exact: new Set<number>(), units: 0, evidenceDocs: 0 },
  };

  constructor(
    readonly passages: readonly Passage[],
    readonly n: number,
    readonly unit: "word" | "token",
    encode?: TextEncoder,
  ) {
    if (unit === "token" && encode === undefined)
      throw new Error("OverlapIndex: token n-grams need a tokenizer");
    passages.forEach((p, i) => {
      const ids = unit === "word" ? wordHashes(p.text) : (encode as TextEncoder).encode(p.text);
      const mine = new Set<number>();
      forEachNgram(ids, n, (k) => mine.add(k));
      this.perPassage.push(mine.size);
      for (const k of mine) {
        const l = this.keys.get(k);
        if (l === undefined) this.keys.set(k, [i]);
        else l.push(i);
      }
      this.exactTexts.set(p.text.replace(/\s+/g, " "), i);
    });
  }

  /** Streams one training sequence (a document's word hashes, or a token stream) into the chosen views. */
  addIds(ids: ArrayLike<number>, views: readonly TrainingView[] = ["train-split", "pretraining"]): void {
    const sets = views.map((v) => this.views[v]);
    for (const v of sets) v.units += ids.length;
    forEachNgram(ids, this.n, (k) => {
      if (this.keys.has(k)) for (const v of sets) v.matched.add(k);
    });
  }

  /** Streams one training document: word n-grams and exact passage matches; `excluded` keeps it out of "pretraining". */
  addDoc(doc: EvalDoc, excluded: boolean): void {
    const views: TrainingView[] = excluded ? ["train-split"] : ["train-split", "pretraining"];
    if (excluded) this.views["train-split"].evidenceDocs++;
    this.addIds(wordHashes(doc.text), views);
    for (const p of cutPassages(doc)) {
      const i = this.exactTexts.get(p.text.replace(/\s+/g, " "));
      if (i !== undefined) for (const v of views) this.views[v].exact.add(i);
    }
  }

  report(view: TrainingView, withDocs: boolean): OverlapReport {
    const v = this.views[view];
    const hits = new Array<number>(this.passages.length).fill(0);
    for (const k of v.matched) for (const i of this.keys.get(k) as number[]) hits[i]++;
    return {
      n: this.n,
      unit: this.unit,
      evalPassages: this.passages.length,
      evalNgrams: this.keys.size,
      matchedNgrams: v.matched.size,
      passagesWithOverlap: hits.filter((h) => h > 0).length,
      passagesFullyCovered: hits.filter((h, i) => h > 0 && h === this.perPassage[i]).length,
      exactPassages: withDocs ? v.exact.size : null,
      evidenceDocsInTraining: withDocs ? v.evidenceDocs : null,
      trainingUnits: v.units,
    };
  }
}
