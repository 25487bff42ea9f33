// Text normalisation shared by passages, answers and the overlap check.

/** Runs of whitespace become one space; ends trimmed. */
export function collapseSpace(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

/** Word count of whitespace-separated tokens. */
export function wordCount(s: string): number {
  const t = s.trim();
  return t.length === 0 ? 0 : t.split(/\s+/).length;
}

/**
 * Source-specific clean-up applied before passages and answers are cut, so answers are substrings of
 * passages: dictd cross-reference braces `{term}` become `term`; man-page hyphenation at line ends
 * (`charac‐\n   ter`, U+2010) is joined.
 */
export function cleanText(source: string, text: string): string {
  let t = text;
  if (source.startsWith("dict-")) t = t.replace(/[{}]/g, "");
  if (source === "manpages") t = t.replace(/\u2010\n\s*/g, "");
  return t;
}

/** True when `answer` occurs in `text` (both whitespace-collapsed): the gold-passage criterion. */
export function containsAnswer(text: string, answer: string): boolean {
  return collapseSpace(text).includes(collapseSpace(answer));
}
