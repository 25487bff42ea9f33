// Greedy word wrap shared by the POD and roff renderers.

/** Fills words into lines of at most `width` columns, each prefixed by `indent` spaces (first line by
 *  `first` spaces when given). A word longer than the line stays whole on its own line. */
export function wrap(text: string, width: number, indent: number, first = indent): string[] {
  const words = text.split(/[ \t\n]+/).filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = "";
  let pad = first;
  for (const w of words) {
    const word = w.replace(/\u00a0/g, " "); // non-breaking spaces join words; shown as spaces
    if (line.length > 0 && pad + line.length + 1 + word.length > width) {
      lines.push(" ".repeat(pad) + line);
      line = word;
      pad = indent;
    } else line = line.length > 0 ? `${line} ${word}` : word;
  }
  if (line.length > 0) lines.push(" ".repeat(pad) + line);
  return lines;
}
