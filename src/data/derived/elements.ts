// Facts of the dict-elements entries: "name\nSymbol: X\nAtomic number: N\nAtomic weight: W\n<prose>".
import type { EvalDoc } from "./docs.js";
import type { Fact } from "./facts.js";
import { cleanText, collapseSpace } from "./text.js";

/** The discovery sentence, its year and, when stated as "by <Name> in <year>", the discoverer. */
export function discovery(
  prose: string,
): { sentence: string; year: string | null; by: string | null } | null {
  const sentence = prose
    .split(/(?<=\.)\s+(?=[A-Z])/)
    .find((s) => /\b(discovered|isolated|identified)\b/i.test(s));
  if (sentence === undefined) return null;
  const year = /\b(1[0-9]\d\d|20\d\d)\b/.exec(sentence);
  const by =
    /\bby ((?:Sir |Dr\. )?[A-Z][A-Za-z.'-]*(?: (?:[A-Z][A-Za-z.'-]*|de|von|van|la))*)(?= in \d{4}\b)/.exec(
      sentence,
    );
  return { sentence, year: year === null ? null : year[1], by: by === null ? null : by[1] };
}

/** Facts of one element entry; entries without a "Symbol:" line (cross references) give none. */
export function elementFacts(doc: EvalDoc): Fact[] {
  const text = collapseSpace(cleanText(doc.source, doc.text));
  const sym = /\bSymbol: ([A-Z][a-z]{0,2})\b/.exec(text);
  if (sym === null) return [];
  const name = doc.title;
  const num = /\bAtomic number: (\d{1,3})\b/.exec(text);
  const base = { source: doc.source, subjectKey: name, subject: name, doc_id: doc.id };
  const out: Fact[] = [
    {
      ...base,
      relation: "symbol",
      question: `What is the chemical symbol of ${name}?`,
      followUp: "What is its chemical symbol?",
      answers: [sym[1]],
      evidence: `Symbol: ${sym[1]}`,
    },
  ];
  if (num !== null) {
    out.push({
      ...base,
      relation: "atomic_number",
      question: `What is the atomic number of ${name}?`,
      followUp: "And its atomic number?",
      answers: [num[1]],
      evidence: `Atomic number: ${num[1]}`,
    });
    out.push({
      ...base,
      relation: "element_by_number",
      question: `Which chemical element has the atomic number ${num[1]}?`,
      followUp: `Which element has the atomic number ${num[1]}?`,
      answers: [name],
      evidence: `Atomic number: ${num[1]}`,
    });
  }
  const prose = text.replace(/^.*?Atomic (?:weight|number): [\d.]+ /, "");
  const d = discovery(prose);
  if (d !== null && d.year !== null)
    out.push({
      ...base,
      relation: "discovery_year",
      question: `In what year was ${name} discovered?`,
      followUp: "When was it discovered?",
      answers: [d.year],
      evidence: d.sentence,
    });
  if (d !== null && d.by !== null)
    out.push({
      ...base,
      relation: "discoverer",
      question: `Who discovered ${name}?`,
      followUp: "Who discovered it?",
      answers: [d.by],
      evidence: d.sentence,
    });
  return out;
}
