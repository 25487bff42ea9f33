// Facts of dictionaries: acronym expansions (dict-vera) and first-sentence definitions (jargon, foldoc).
import type { EvalDoc } from "./docs.js";
import type { Fact } from "./facts.js";
import { cleanText, collapseSpace, wordCount } from "./text.js";

/** "HTML\n       HyperText Markup Language (Internet, WWW…)" → the expansion without trailing notes. */
export function acronymFact(doc: EvalDoc): Fact | null {
  const text = cleanText(doc.source, doc.text);
  const nl = text.indexOf("\n");
  if (nl < 0) return null;
  const acronym = text.slice(0, nl).trim();
  const body = collapseSpace(text.slice(nl + 1)).replace(/^\[[^\]]*\] /, "");
  const expansion = body
    .split(/ \(| \[|, "|; /)[0]
    .replace(/[,.]$/, "")
    .trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9&/.-]{1,11}$/.test(acronym) || !/[A-Z]/.test(acronym)) return null;
  const n = wordCount(expansion);
  if (n < 2 || n > 12 || !/^[A-Za-z0-9]/.test(expansion)) return null;
  return {
    source: doc.source,
    subjectKey: acronym,
    subject: acronym,
    relation: "acronym",
    question: `What does ${acronym} stand for?`,
    followUp: "What does it stand for?",
    answers: [expansion],
    doc_id: doc.id,
    evidence: expansion,
  };
}

/** The first sentence of a definition with its leading tags removed (jargon `[Usenet]`, foldoc `<job>`). */
export function firstSentence(definition: string): string | null {
  let s = collapseSpace(definition);
  for (;;) {
    const t = s.replace(/^(?:<[^>]*>|\[[^\]]*\]|\([^)]*\)|\d+\.|[a-z]+\.(?:,[a-z]+\.)*)\s+/, "");
    if (t === s) break;
    s = t;
  }
  const m = /^(.+?[.!?])(?=\s|$)/.exec(s);
  const sent = m === null ? s : m[1];
  if (/^(See|Same as|Synonym|Compare|Variant|Abbreviation|Obsolete)\b/i.test(sent)) return null;
  const n = wordCount(sent);
  return n >= 4 && n <= 35 ? sent : null;
}

/**
 * "What is X?" from a jargon / foldoc entry: the headword lines come first, then (after a blank line) the
 * definition; the answer is the definition's first sentence.
 */
export function definitionFact(doc: EvalDoc): Fact | null {
  const text = cleanText(doc.source, doc.text);
  const blocks = text
    .split(/\n[ \t]*\n/)
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (blocks.length < 2) return null;
  const term = collapseSpace(blocks[0].split("\n")[0]);
  if (term.length === 0 || term.length > 40) return null;
  const sent = firstSentence(blocks[1]);
  if (sent === null) return null;
  return {
    source: doc.source,
    subjectKey: term,
    subject: term,
    relation: "definition",
    question: `What is ${term}?`,
    followUp: "What is it?",
    answers: [sent],
    doc_id: doc.id,
    evidence: sent,
  };
}
