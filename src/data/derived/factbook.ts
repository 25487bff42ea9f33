// Facts of the CIA World Factbook documents (one per country x section; `Field - sub: value` lines).
import type { EvalDoc } from "./docs.js";
import type { Fact } from "./facts.js";
import { collapseSpace } from "./text.js";

interface Rule {
  relation: string;
  field: string;
  question: (s: string) => string;
  followUp: string;
  /** Accepted answers from the field value (canonical first), or null when the value has no short answer. */
  parse: (value: string) => string[] | null;
}

const DATE =
  /^((?:\d{1,2} )?(?:January|February|March|April|May|June|July|August|September|October|November|December) \d{3,4}|\d{3,4})(?= \(|;|,|$)/;

export const FACTBOOK_RULES: readonly Rule[] = [
  {
    relation: "capital",
    field: "Capital - name",
    question: (s) => `What is the capital of ${s}?`,
    followUp: "What is its capital?",
    parse: (v) => {
      const m = /^([A-Z][^;:(,]*?)(?: \(([A-Z][^)]*)\))?(?=$|[;:,]| \()/.exec(v);
      if (m === null || m[1].split(" ").length > 5) return null;
      return m[2] !== undefined && m[2].split(" ").length <= 3 ? [m[1], m[2]] : [m[1]];
    },
  },
  {
    relation: "population",
    field: "Population",
    question: (s) => `What is the population of ${s}?`,
    followUp: "And its population?",
    parse: (v) => {
      const m = /^(\d{1,3}(?:,\d{3})*)(?= |$)/.exec(v);
      return m === null ? null : [m[1]];
    },
  },
  {
    relation: "area",
    field: "Area - total",
    question: (s) => `What is the total area of ${s}?`,
    followUp: "How large is its total area?",
    parse: (v) => {
      const m = /^(\d[\d,.]* sq km)/.exec(v);
      return m === null ? null : [m[1]];
    },
  },
  {
    relation: "highest_point",
    field: "Elevation extremes - highest point",
    question: (s) => `What is the highest point of ${s}?`,
    followUp: "What is its highest point?",
    parse: (v) => {
      const m = /^([A-Z][^;(]*?) (-?\d[\d,.]* m)\b/.exec(v);
      return m === null ? null : [m[1], `${m[1]} ${m[2]}`];
    },
  },
  {
    relation: "national_holiday",
    field: "National holiday",
    question: (s) => `What is the national holiday of ${s}?`,
    followUp: "And its national holiday?",
    parse: (v) => {
      const m = /^([A-Z][^,;(]*), (\d{1,2} [A-Z][a-z]+)(?= \(|;|$)/.exec(v);
      return m === null ? null : [`${m[1]}, ${m[2]}`, m[1]];
    },
  },
  {
    relation: "internet_code",
    field: "Internet country code",
    question: (s) => `What is the internet country code of ${s}?`,
    followUp: "What is its internet country code?",
    parse: (v) => (/^\.[a-z]{2}$/.test(v) ? [v] : null),
  },
  {
    relation: "independence",
    field: "Independence",
    question: (s) => `When did ${s} become independent?`,
    followUp: "When did it become independent?",
    parse: (v) => {
      const m = DATE.exec(v);
      if (m === null) return null;
      const year = /\d{3,4}$/.exec(m[1]);
      return year !== null && year[0] !== m[1] ? [m[1], year[0]] : [m[1]];
    },
  },
  {
    relation: "government_type",
    field: "Government type",
    question: (s) => `What type of government does ${s} have?`,
    followUp: "What type of government does it have?",
    parse: (v) => {
      const a = v.split(";")[0].trim();
      return a === "NA" || a.length === 0 || a.split(" ").length > 6 ? null : [a];
    },
  },
];

/**
 * The subject name of a Factbook document: its title before " — ". Names that are bare codes ("cc", "none"),
 * lists ("Baker Island; Howland Island; …") give null; a long parenthetical note is dropped.
 */
export function factbookSubject(doc: EvalDoc): string | null {
  let name = doc.title.split(" — ")[0].trim();
  if (!/[A-Z]/.test(name) || name.includes(";")) return null;
  if (name.length > 40) name = name.replace(/ \(.*\)$/, "");
  return name;
}

/** The country code of a Factbook document id `factbook/<cc>/<section>`. */
export function factbookCode(docId: string): string {
  const parts = docId.split("/");
  if (parts.length < 3 || parts[0] !== "factbook") throw new Error(`not a Factbook document id: ${docId}`);
  return parts[1];
}

/** Facts of one Factbook document (each field line `Field: value` matched against FACTBOOK_RULES). */
export function factbookFacts(doc: EvalDoc): Fact[] {
  const subject = factbookSubject(doc);
  if (subject === null) return [];
  const out: Fact[] = [];
  const seen = new Set<string>();
  for (const rawLine of doc.text.split("\n")) {
    const line = collapseSpace(rawLine);
    const sep = line.indexOf(": ");
    if (sep < 0) continue;
    const field = line.slice(0, sep);
    const value = line.slice(sep + 2);
    for (const r of FACTBOOK_RULES) {
      if (r.field !== field || seen.has(r.relation)) continue;
      const answers = r.parse(value);
      if (answers === null || !value.startsWith(answers[0])) continue;
      seen.add(r.relation);
      out.push({
        source: doc.source,
        subjectKey: factbookCode(doc.id),
        subject,
        relation: r.relation,
        question: r.question(subject),
        followUp: r.followUp,
        answers,
        doc_id: doc.id,
        evidence: `${field}: ${answers[0]}`,
      });
    }
  }
  return out;
}
