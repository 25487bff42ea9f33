// Brown corpus, form C: whitespace-separated `word/TAG` tokens, paragraphs separated by blank lines.
// Detokenised to plain prose: punctuation attaches to the word before it, `` opens a double quote.

const ATTACH_LEFT = new Set([",", ".", ";", ":", "?", "!", "''", ")", "]", "'"]);
const ATTACH_RIGHT = new Set(["``", "(", "["]);

/** The word of a `word/TAG` token (the tag follows the last slash). */
export function brownWord(token: string): string {
  const i = token.lastIndexOf("/");
  return i > 0 ? token.slice(0, i) : token;
}

export function detokenize(words: string[]): string {
  let out = "";
  let glue = true; // no space before the next word
  for (const w0 of words) {
    const w = w0 === "``" ? '"' : w0;
    if (!glue && !ATTACH_LEFT.has(w0)) out += " ";
    out += w;
    glue = ATTACH_RIGHT.has(w0);
  }
  return out;
}

/** Plain text of one Brown file: paragraphs joined by blank lines. */
export function parseBrown(raw: string): string {
  const paras: string[] = [];
  for (const block of raw.split(/\n[ \t]*\n/)) {
    const words = block
      .split(/\s+/)
      .filter((t) => t.length > 0)
      .map(brownWord);
    if (words.length > 0) paras.push(detokenize(words));
  }
  return paras.join("\n\n");
}
