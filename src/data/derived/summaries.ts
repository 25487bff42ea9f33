// Summarisation pairs: a man page's text (its NAME section removed) → its one-line NAME summary.
import type { EvalDoc } from "./docs.js";
import { splitOf, type Split } from "./split.js";
import { cleanText, collapseSpace, wordCount } from "./text.js";

export interface SummaryPair {
  id: string;
  doc_id: string;
  title: string;
  input: string;
  summary: string;
  meta: { names: string[]; description: string; input_words: number; split: Split };
}

/**
 * In the extracted man pages (`man -l | col -bx`) NAME is a line of its own, followed by the indented
 * summary `name[, name…] - description` (possibly wrapped, with U+2010 hyphenation at line ends) up to
 * the next blank line. Returns the summary and the text without the NAME section, or null.
 */
export function splitNameSection(text: string): { summary: string; rest: string } | null {
  const m = /(^|\n)NAME\n([\s\S]*?)(?:\n[ \t]*\n|$)/.exec(text);
  if (m === null) return null;
  const summary = collapseSpace(cleanText("manpages", m[2]));
  if (!summary.includes(" - ")) return null;
  const rest = text.slice(0, m.index + m[1].length) + text.slice(m.index + m[0].length);
  return { summary, rest: rest.trim() };
}

/** Pairs of man pages of the given splits whose remaining text has at least `minWords` words. */
export function buildSummaries(
  docs: readonly EvalDoc[],
  splits: readonly Split[] = ["validation", "test"],
  minWords = 200,
): SummaryPair[] {
  const out: SummaryPair[] = [];
  for (const d of docs) {
    if (!splits.includes(splitOf(d.id))) continue;
    const s = splitNameSection(d.text);
    if (s === null) continue;
    const input = cleanText("manpages", s.rest);
    const n = wordCount(input);
    if (n < minWords) continue;
    const dash = s.summary.indexOf(" - ");
    out.push({
      id: `summary/${d.id}`,
      doc_id: d.id,
      title: d.title,
      input,
      summary: s.summary,
      meta: {
        names: s.summary.slice(0, dash).split(/,\s*/),
        description: s.summary.slice(dash + 3),
        input_words: n,
        split: splitOf(d.id),
      },
    });
  }
  return out;
}
