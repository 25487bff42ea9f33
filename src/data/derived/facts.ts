// A fact read from a document: the unit behind a QA item and a conversation turn.

/** One checkable fact about a subject, with the document and the text span that states it. */
export interface Fact {
  source: string;
  /** Stable subject key (e.g. the Factbook country code or the element name). */
  subjectKey: string;
  /** Display name of the subject, as questions name it. */
  subject: string;
  relation: string;
  /** The stand-alone question. */
  question: string;
  /** A follow-up question that refers back to the subject ("And its population?"). */
  followUp: string;
  /** Accepted answers, the first canonical; each a substring of the evidence document's passages. */
  answers: string[];
  doc_id: string;
  /** A span of the document that states the fact; gold passages must contain it (whitespace-collapsed). */
  evidence: string;
}
