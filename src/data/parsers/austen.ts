// Jane Austen's novels as janeaustenr stores them (one character vector of lines per book), cut into
// chapters at lines starting with "CHAPTER"/"Chapter"; part 0 is the front matter before chapter 1.

export function splitChapters(lines: string[]): string[] {
  const parts: string[][] = [[]];
  for (const line of lines) {
    if (/^chapter\b/i.test(line) && parts[parts.length - 1].length > 0) parts.push([]);
    parts[parts.length - 1].push(line);
  }
  return parts.map((p) => p.join("\n").trim()).filter((t) => t.length > 0);
}
