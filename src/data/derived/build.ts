// `datasets build`: every derived set from a corpus folder, written to an output folder.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "../../io/atomic.js";
import { buildConversations, type Conversation } from "./conversations.js";
import { loadCorpus, docsOf, type EvalDoc } from "./docs.js";
import { DOMAINS, domainReport, type DomainReport } from "./domains.js";
import { evalEvidence, type EvalEvidence } from "./contamination.js";
import { buildPassages, type Passage } from "./passages.js";
import { buildQa, collectFacts, passagesByDoc, QA_SOURCES, type QaItem, type QaOptions } from "./qa.js";
import type { TextEncoder } from "./sampler.js";
import type { Split } from "./split.js";
import { buildSummaries, type SummaryPair } from "./summaries.js";

export interface BuildOptions extends QaOptions {
  corpus: string[];
  out: string;
  tokenizer: TextEncoder;
  /** Sources cut into the passage corpus (default: the QA sources). */
  passageSources: string[];
  summarySplits: Split[];
  summaryMinWords: number;
  /** Fewer test documents than this at a length triggers the domain fallback. */
  domainMinDocs: number;
  log: (msg: string) => void;
}

/** The defaults of `refrag datasets build` (and of `refrag demo`, which builds the same sets). */
export const DEFAULT_BUILD_OPTIONS: Omit<BuildOptions, "corpus" | "out" | "tokenizer" | "log"> = {
  seed: 1,
  maxAcronyms: 1000,
  maxDefinitions: 1000,
  passageSources: ["factbook", "dict-elements", "dict-vera", "dict-jargon", "dict-foldoc"],
  summarySplits: ["validation", "test"],
  summaryMinWords: 200,
  domainMinDocs: 5,
};

export interface DerivedSets {
  passages: Passage[];
  qa: QaItem[];
  qaDropped: number;
  conversations: Conversation[];
  summaries: SummaryPair[];
  domains: DomainReport[];
  evidence: EvalEvidence;
}

/** All derived sets of documents grouped by source (pure: no files). */
export function deriveSets(
  bySource: Map<string, EvalDoc[]>,
  opts: Omit<BuildOptions, "corpus" | "out">,
): DerivedSets {
  const { log } = opts;
  let t = performance.now();
  const step = (what: string): void => {
    const now = performance.now();
    log(`${what} (${((now - t) / 1000).toFixed(1)} s)`);
    t = now;
  };
  const passages = buildPassages(docsOf(bySource, opts.passageSources));
  step(`passages: ${passages.length} from ${opts.passageSources.join(", ")}`);
  const byDoc = passagesByDoc(passages);
  const facts = collectFacts(bySource, opts);
  const { items: qa, dropped } = buildQa(facts, byDoc);
  step(`qa: ${qa.length} items from ${facts.length} facts (${dropped} without a gold passage, dropped)`);
  const conversations = buildConversations(facts, byDoc, opts.seed);
  step(`conversations: ${conversations.length}`);
  const summaries = bySource.has("manpages")
    ? buildSummaries(bySource.get("manpages") as EvalDoc[], opts.summarySplits, opts.summaryMinWords)
    : [];
  step(`summaries: ${summaries.length}`);
  const domains: DomainReport[] = [];
  for (const d of DOMAINS) {
    const present = d.sources.filter((s) => bySource.has(s));
    if (present.length === 0) {
      log(`domain ${d.name}: none of ${d.sources.join(", ")} in the corpus, skipped`);
      continue;
    }
    const r = domainReport(d, docsOf(bySource, present), opts.tokenizer, opts.domainMinDocs);
    domains.push(r);
    step(
      `domain ${d.name}: ` +
        r.lengths
          .map(
            (l) =>
              `>=${l.minTokens} tokens: ${l.test} test, ${l.validation} validation, listed ${l.docs.length} (${l.fallback})`,
          )
          .join("; "),
    );
  }
  const evidence = evalEvidence({ qa, conversations, summaries, domains });
  step(`eval evidence: ${evidence.doc_ids.length} documents, ${evidence.passage_ids.length} passages`);
  return { passages, qa, qaDropped: dropped, conversations, summaries, domains, evidence };
}

function writeAtomic(path: string, data: string): void {
  writeFileAtomicSync(path, data, "derived set");
}

function writeLines(path: string, items: readonly unknown[]): void {
  writeAtomic(path, items.map((x) => JSON.stringify(x) + "\n").join(""));
}

/** Reads a JSONL file written by writeLines; a bad line throws naming file:line. */
export function readLines<T>(path: string): T[] {
  const out: T[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.length === 0) return;
      try {
        out.push(JSON.parse(line) as T);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
    });
  return out;
}

export const OUTPUT_FILES = [
  "qa.jsonl",
  "passages.jsonl",
  "conversations.jsonl",
  "summaries.jsonl",
  "domains.json",
  "eval-evidence.json",
  "build-report.json",
] as const;

/** Loads the corpus, derives every set and writes the output files; returns the sets and the report. */
export function buildDerived(opts: BuildOptions): { sets: DerivedSets; report: Record<string, unknown> } {
  const t0 = performance.now();
  const wanted = [
    ...new Set([...QA_SOURCES, ...opts.passageSources, "manpages", ...DOMAINS.flatMap((d) => d.sources)]),
  ];
  const bySource = loadCorpus(opts.corpus, wanted, (f, n) => opts.log(`read ${f}: ${n} documents`));
  const loadSeconds = (performance.now() - t0) / 1000;
  const sets = deriveSets(bySource, opts);
  mkdirSync(opts.out, { recursive: true });
  writeLines(join(opts.out, "qa.jsonl"), sets.qa);
  writeLines(join(opts.out, "passages.jsonl"), sets.passages);
  writeLines(join(opts.out, "conversations.jsonl"), sets.conversations);
  writeLines(join(opts.out, "summaries.jsonl"), sets.summaries);
  writeAtomic(join(opts.out, "domains.json"), JSON.stringify(sets.domains, null, 1) + "\n");
  writeAtomic(join(opts.out, "eval-evidence.json"), JSON.stringify(sets.evidence, null, 1) + "\n");
  const bySrc = (xs: readonly { source: string }[]): Record<string, number> => {
    const r: Record<string, number> = {};
    for (const x of xs) r[x.source] = (r[x.source] ?? 0) + 1;
    return r;
  };
  const report = {
    corpus: opts.corpus,
    seed: opts.seed,
    counts: {
      passages: sets.passages.length,
      qa: sets.qa.length,
      qa_by_source: bySrc(sets.qa),
      qa_dropped_without_gold: sets.qaDropped,
      conversations: sets.conversations.length,
      conversation_turns: sets.conversations.reduce((a, c) => a + c.turns.length, 0),
      summaries: sets.summaries.length,
      evidence_docs: sets.evidence.doc_ids.length,
      evidence_passages: sets.evidence.passage_ids.length,
    },
    options: {
      passageSources: opts.passageSources,
      maxAcronyms: opts.maxAcronyms,
      maxDefinitions: opts.maxDefinitions,
      summarySplits: opts.summarySplits,
      summaryMinWords: opts.summaryMinWords,
      domainMinDocs: opts.domainMinDocs,
    },
    seconds: { load: +loadSeconds.toFixed(1), total: +((performance.now() - t0) / 1000).toFixed(1) },
  };
  writeAtomic(join(opts.out, "build-report.json"), JSON.stringify(report, null, 1) + "\n");
  return { sets, report };
}
