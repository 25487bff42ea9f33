// man(7) pages (roff source) to plain text laid out like `man` at 78 columns: header and footer lines,
// section headings at the margin, text indented 7 and filled (left-aligned, no hyphenation), .TP/.IP
// hanging tags, .RS/.RE nesting, .nf/.EX literal blocks, tables as tab-separated rows. Fonts are dropped.
import { wrap } from "./wrap.js";

const WIDTH = 78;
const GLYPHS: Record<string, string> = {
  em: "—",
  en: "–",
  hy: "‐",
  aq: "'",
  dq: '"',
  lq: "“",
  rq: "”",
  oq: "‘",
  cq: "’",
  bu: "·",
  co: "©",
  rg: "®",
  tm: "™",
  mu: "×",
  di: "÷",
  "+-": "±",
  "<=": "≤",
  ">=": "≥",
  "!=": "≠",
  "->": "→",
  "<-": "←",
  de: "°",
  ha: "^",
  ti: "~",
  rs: "\\",
  sl: "/",
  ga: "`",
  aa: "´",
  ul: "_",
  bv: "|",
  ba: "|",
  or: "|",
  sq: "□",
  ci: "○",
  dg: "†",
  "*a": "α",
  "*b": "β",
  "*m": "μ",
  "*p": "π",
  "12": "½",
  "14": "¼",
  "34": "¾",
  ss: "ß",
  u2014: "—",
  pc: "·",
  Fo: "«",
  Fc: "»",
  fo: "‹",
  fc: "›",
  lB: "[",
  rB: "]",
  lC: "{",
  rC: "}",
  la: "⟨",
  ra: "⟩",
  "'e": "é",
};
const STRINGS: Record<string, string> = { lq: "“", rq: "”", R: "®", Tm: "™", "(lq": "“", "(rq": "”" };
const SECTION_NAMES: Record<string, string> = {
  "1": "General Commands Manual",
  "2": "System Calls Manual",
  "3": "Library Functions Manual",
  "4": "Kernel Interfaces Manual",
  "5": "File Formats Manual",
  "6": "Games Manual",
  "7": "Miscellaneous Information Manual",
  "8": "System Manager's Manual",
};

/** Interprets roff escapes in one line of text (fonts dropped, glyphs named, comments removed). */
export function roffEscapes(s: string): string {
  return s
    .replace(/\\".*$/, "")
    .replace(/\\f(?:\[[^\]]*\]|\(..|.)/g, "")
    .replace(/\\s(?:\[[^\]]*\]|[+-]?\d+|\(\d\d)/g, "")
    .replace(
      /\\\*(?:\[([^\]]*)\]|\((..)|(.))/g,
      (_m, a?: string, b?: string, c?: string) => STRINGS[a ?? b ?? c ?? ""] ?? "",
    )
    .replace(/\\\((..)|\\\[([^\]]*)\]/g, (_m, a?: string, b?: string) => {
      const name = a ?? b ?? "";
      if (/^u[0-9A-F]{4,5}$/.test(name)) return String.fromCodePoint(parseInt(name.slice(1), 16));
      return GLYPHS[name] ?? "";
    })
    .replace(/\\N'(\d+)'/g, (_m, n: string) => String.fromCharCode(Number(n)))
    .replace(/\\[&|^%:c)]/g, "")
    .replace(/\\[~ 0]/g, "\u00a0")
    .replace(/\\-/g, "-")
    .replace(/\\[e\\]/g, "\\")
    .replace(/\\(.)/g, "$1");
}

/** Splits macro arguments, honouring double quotes. */
export function macroArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"]|"")*)"?|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
  return out;
}

export function roffToText(src: string): string {
  const out: string[] = [];
  let words = ""; // pending filled text
  let fill = true;
  let base = 7; // indent of body text (grows with .RS)
  const rsStack: number[] = [];
  let hang: { tag: string | null; indent: number } | null = null; // .TP/.IP body indent and pending tag
  let tpTagNext = false;
  let prevailing = 7; // .TP/.IP indent without an argument reuses the last one given
  const hangIndent = (a: string | undefined) => (prevailing = num(a, prevailing));
  let footer = "";
  let inTable = false;
  let tableSpec = false;
  let skipUntil: string | null = null;
  const urlStack: string[] = [];

  const bodyIndent = () => Math.max(0, hang !== null ? base + hang.indent : base);
  const blank = () => {
    if (out.length > 0 && out[out.length - 1] !== "") out.push("");
  };
  const flush = () => {
    if (hang !== null && hang.tag !== null) {
      const tag = hang.tag;
      hang.tag = null;
      const ind = bodyIndent();
      if (base + tag.length + 1 <= ind && words.trim().length > 0) {
        const lines = wrap(words, WIDTH, ind);
        lines[0] = (" ".repeat(base) + tag).padEnd(ind) + lines[0].slice(ind);
        out.push(...lines);
        words = "";
        return;
      }
      out.push(" ".repeat(base) + tag);
    }
    if (words.trim().length > 0) out.push(...wrap(words, WIDTH, bodyIndent()));
    words = "";
  };
  const text = (t: string) => {
    if (tpTagNext) {
      tpTagNext = false;
      if (hang !== null) hang.tag = t.trim();
      return;
    }
    if (fill) words += " " + t;
    else {
      flush();
      out.push(t.length > 0 ? " ".repeat(bodyIndent()) + t.replace(/\u00a0/g, " ") : "");
    }
  };
  const num = (s: string | undefined, dflt: number) => {
    const m = /^([+-]?\d+(?:\.\d+)?)/.exec(s ?? "");
    return m === null ? dflt : Math.round(Number(m[1]));
  };

  const joined = src.replace(/\r/g, "").replace(/(?<!\\)((?:\\\\)*)\\\n/g, "$1"); // "\" at line end continues it
  for (const raw of joined.split("\n")) {
    if (skipUntil !== null) {
      if (raw.trim() === skipUntil) skipUntil = null;
      continue;
    }
    if (inTable) {
      if (/^\.TE\b/.test(raw)) {
        inTable = false;
        continue;
      }
      if (tableSpec) {
        if (/\.\s*$/.test(raw)) tableSpec = false;
        continue;
      }
      if (/^[._=]\s*$/.test(raw) || /^\.(sp|br|T&)/.test(raw)) continue;
      const row = roffEscapes(raw)
        .replace(/T\{|T\}/g, "")
        .split("\t")
        .map((c) => c.trim())
        .join("  ");
      out.push(" ".repeat(bodyIndent()) + row.replace(/\u00a0/g, " "));
      continue;
    }
    const m =
      /^[.'][ \t]*([A-Za-z0-9\\"]{1,3})(?:[ \t]+(.*))?$/.exec(raw) ??
      (/^[.']\s*$/.test(raw) ? ["", "", ""] : null);
    if (m === null) {
      if (raw.trim() === "") {
        flush();
        blank();
      } else if (/^[ \t]/.test(raw) && fill) {
        flush();
        text(roffEscapes(raw).trim());
      } else text(roffEscapes(raw));
      continue;
    }
    const name = m[1];
    const argStr = m[2] ?? "";
    const args = macroArgs(argStr).map(roffEscapes);
    switch (name) {
      case "TH": {
        const title = `${args[0] ?? ""}(${args[1] ?? ""})`;
        const mid = args[4] ?? SECTION_NAMES[(args[1] ?? "")[0]] ?? "";
        const gap = Math.max(1, WIDTH - 2 * title.length - mid.length);
        out.push(title + " ".repeat(Math.ceil(gap / 2)) + mid + " ".repeat(Math.floor(gap / 2)) + title, "");
        const left = args[3] ?? "";
        const date = args[2] ?? "";
        const g2 = Math.max(1, WIDTH - left.length - date.length - title.length);
        footer = left + " ".repeat(Math.floor(g2 / 2)) + date + " ".repeat(Math.ceil(g2 / 2)) + title;
        break;
      }
      case "SH":
      case "SS":
        flush();
        blank();
        hang = null;
        base = 7;
        rsStack.length = 0;
        prevailing = 7;
        out.push((name === "SS" ? "   " : "") + args.join(" "));
        fill = true;
        break;
      case "PP":
      case "LP":
      case "P":
      case "HP":
        flush();
        blank();
        hang = null;
        prevailing = 7;
        break;
      case "TP":
        flush();
        blank();
        hang = { tag: null, indent: hangIndent(args[0]) };
        tpTagNext = true;
        break;
      case "IP":
        flush();
        blank();
        hang = { tag: args[0] ?? "", indent: hangIndent(args[1]) };
        break;
      case "RS":
        flush();
        rsStack.push(base);
        base = bodyIndent() + num(args[0], 7);
        hang = null;
        break;
      case "RE":
        flush();
        base = rsStack.pop() ?? 7;
        hang = null;
        break;
      case "nf":
      case "EX":
        flush();
        fill = false;
        break;
      case "fi":
      case "EE":
        flush();
        fill = true;
        break;
      case "br":
        flush();
        break;
      case "sp":
        flush();
        blank();
        break;
      case "B":
      case "I":
      case "SM":
      case "SB":
        text(args.join(" "));
        break;
      case "BR":
      case "IR":
      case "RB":
      case "BI":
      case "IB":
      case "RI":
        text(args.join(""));
        break;
      case "UR":
      case "MT":
        urlStack.push(args[0] ?? "");
        break;
      case "UE":
      case "ME": {
        const url = urlStack.pop() ?? "";
        text(`⟨${url}⟩${args.join("")}`);
        break;
      }
      case "TS":
        flush();
        inTable = true;
        tableSpec = true;
        break;
      case "de":
      case "ig":
        skipUntil = "..";
        break;
      default:
        break; // layout requests (.ad .na .nh .hy .ft .ps .ne .ta .in .ti .PD .so .if …) are ignored
    }
  }
  flush();
  const body = out
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
  return footer.length > 0 ? `${body}\n\n${footer}` : body;
}

/** The target of a page that only includes another one (`.so man3/other.3`), or null. */
export function roffInclude(src: string): string | null {
  const lines = src.split("\n").filter((l) => !/^\.\\"/.test(l) && l.trim() !== "");
  const m = lines.length > 0 && lines.length <= 2 ? /^\.so\s+(\S+)/.exec(lines[0]) : null;
  return m === null ? null : m[1];
}

/** The NAME section's one-line summary ("getent - get entries …") of a rendered page, or null. */
export function manSummary(text: string): string | null {
  const m = /^NAME\n([\s\S]*?)(?:\n\n|\n[A-Z])/m.exec(text);
  return m === null ? null : m[1].replace(/\s+/g, " ").trim() || null;
}
