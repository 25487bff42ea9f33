// Derived evaluation sets: splits, long-document domains, next-paragraph windows, QA, passages,
// conversations, summaries and contamination control.
export { splitOf, parseSplits, SPLITS, type Split } from "./split.js";
export { readEvalDocs, loadCorpus, docsOf, type EvalDoc } from "./docs.js";
export { collapseSpace, cleanText, containsAnswer, wordCount } from "./text.js";
export { cutPassages, buildPassages, DEFAULT_MAX_WORDS, type Passage } from "./passages.js";
export type { Fact } from "./facts.js";
export { factbookFacts, FACTBOOK_RULES } from "./factbook.js";
export { elementFacts } from "./elements.js";
export { acronymFact, definitionFact, firstSentence } from "./glossary.js";
export {
  collectFacts,
  buildQa,
  goldPassages,
  passagesByDoc,
  QA_SOURCES,
  DEFAULT_QA_OPTIONS,
  type QaItem,
} from "./qa.js";
export { buildConversations, type Conversation, type ConversationTurn } from "./conversations.js";
export { buildSummaries, splitNameSection, type SummaryPair } from "./summaries.js";
export { DOMAINS, domainReport, longDocText, type DomainReport, type LongDoc } from "./domains.js";
export {
  sampleWindows,
  sampleTextWindows,
  tokenizeDoc,
  paragraphSegments,
  type Window,
  type TextEncoder,
} from "./sampler.js";
export {
  evalEvidence,
  evidenceFilter,
  pretrainingDocs,
  OverlapIndex,
  type EvalEvidence,
  type OverlapReport,
} from "./contamination.js";
export { buildDerived, deriveSets } from "./build.js";
export { runOverlap } from "./overlap.js";
