// HTML pages to plain text: navigation bars, head, scripts and styles dropped; the start of a block
// element (and a table row) becomes a paragraph break, its end, <br> and <div> a line break, cells spaces; each line trimmed, runs of blank lines collapsed to one.

const BLOCK =
  /<(?:p|h[1-6]|li|dt|dd|table|tr|pre|hr|ul|ol|dl|blockquote|section|article|header|footer|nav|body|tbody|thead|caption|figure|figcaption)\b[^>]*>/gi;
const LINE =
  /<\/(?:p|h[1-6]|li|dt|dd|table|pre|ul|ol|dl|blockquote|section|article|header|footer|nav|body|tbody|thead|caption|figure|figcaption)>|<\/?(?:br|div)\b[^>]*>/gi;
const CELL = /<\/?t[dh]\b[^>]*>/gi;

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
  mdash: "—",
  ndash: "–",
  hellip: "…",
  copy: "©",
  reg: "®",
  trade: "™",
  rsquo: "’",
  lsquo: "‘",
  rdquo: "”",
  ldquo: "“",
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** The <title> text, whitespace collapsed ("" when absent). */
export function htmlTitle(html: string): string {
  const m = /<title\b[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  return m === null
    ? ""
    : decodeEntities(m[1].replace(/<[^>]*>/g, ""))
        .replace(/[ \t\n]+/g, " ")
        .trim();
}

export function htmlToText(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<(head|script|style)\b[\s\S]*?<\/\1>/gi, "")
    .replace(/<div class="nav(?:header|footer)">[\s\S]*?<\/div>/g, "") // DocBook Prev/Up/Next bars
    .replace(BLOCK, "\n\n")
    .replace(LINE, "\n")
    .replace(CELL, " ")
    .replace(/<[^>]*>/g, "");
  return decodeEntities(text)
    .split("\n")
    .map((l) => l.replace(/[ \t\u00a0]+/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
