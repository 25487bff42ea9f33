// fortune(6) files: entries separated by lines holding a single "%". Entries keep their position number
// (empty ones included) so ids stay stable when a file has blank entries.

export function parseFortunes(raw: string): { index: number; text: string }[] {
  return raw
    .split(/^%[ \t]*$/m)
    .map((s, index) => ({ index, text: s.trim() }))
    .filter((e) => e.text.length > 0);
}
