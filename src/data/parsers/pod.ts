// Perl POD to plain text in the manner of pod2text: headings at the margin (=head2 indented 2), text
// indented 4 and wrapped at 76 columns, verbatim blocks kept, =over/=item lists indented, formatting
// codes I<> as *x*, C<> as "x", B<> F<> S<> plain, L<> as its text, E<> entities, X<> Z<> dropped.
import { wrap } from "./wrap.js";

const WIDTH = 76;
// Pod::Text leaves C<> unquoted when it already reads as code: quoted text, special or plain variables,
// 0/1-argument calls, numbers, hex constants.
const IDX = String.raw`(?:\[.*\]|\{.*\})?`;
const NO_QUOTES = new RegExp(
  String.raw`^\s*(?:(['\`"]).*\1|\`.*'|\$+[#^]?\S${IDX}|[$@%&*]+#?[:'\w]+${IDX}|[$@%&*]*[:'\w]+(?:->)?\(\s*[^\s,]\s*\)|[+-]?(?:\d[\d.]*|\.\d+)(?:[eE][+-]?\d+)?|0x[a-fA-F\d]+)\s*$`,
);
const ESCAPES: Record<string, string> = {
  lt: "<",
  gt: ">",
  verbar: "|",
  sol: "/",
  quot: '"',
  amp: "&",
  apos: "'",
  nbsp: "\u00a0",
  copy: "©",
  eacute: "é",
};

/** Where the formatting code starting at s[i] ("X<") ends (index after its closer) and its inner text. */
function codeSpan(s: string, i: number): { end: number; inner: string } {
  const n = (/^<+/.exec(s.slice(i + 1)) as RegExpExecArray)[0].length;
  const start = i + 1 + n;
  if (n > 1) {
    // `C<< x >>` needs a space before the closer; `C<<x>>` (no spaces) is accepted like Pod::Simple does
    const spaced = /\s/.test(s[start] ?? "");
    const close = s.indexOf((spaced ? " " : "") + ">".repeat(n), start);
    if (close < 0) return { end: s.length, inner: s.slice(start).trim() };
    return { end: close + (spaced ? 1 : 0) + n, inner: s.slice(start, close).trim() };
  }
  let j = start;
  while (j < s.length && s[j] !== ">") j = /[A-Z]</.test(s.slice(j, j + 2)) ? codeSpan(s, j).end : j + 1;
  return { end: Math.min(j + 1, s.length), inner: s.slice(start, j) };
}

/** Expands POD formatting codes (nested, and the `C<< x >>` multi-bracket form). */
export function podInline(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    if (/[A-Z]</.test(s.slice(i, i + 2))) {
      const { end, inner } = codeSpan(s, i);
      out += podCode(s[i], inner);
      i = end;
    } else out += s[i++];
  }
  return out;
}

function podCode(code: string, inner: string): string {
  switch (code) {
    case "I":
      return `*${podInline(inner)}*`;
    case "C": {
      const t = podInline(inner);
      return NO_QUOTES.test(t) ? t : `"${t}"`;
    }
    case "S":
      return podInline(inner).replace(/ /g, "\u00a0");
    case "X":
    case "Z":
      return "";
    case "E": {
      if (/^0x[0-9a-f]+$/i.test(inner)) return String.fromCodePoint(parseInt(inner, 16));
      if (/^\d+$/.test(inner)) return String.fromCodePoint(parseInt(inner, 10));
      return ESCAPES[inner] ?? `E<${inner}>`;
    }
    case "L": {
      const bar = inner.indexOf("|");
      if (bar >= 0) {
        const text = podInline(inner.slice(0, bar));
        const target = inner.slice(bar + 1);
        return /^\w+:[^:\s]\S*$/.test(target) ? `${text} <${target}>` : text;
      }
      if (/^\w+:[^:\s]\S*$/.test(inner)) return `<${inner}>`; // a URL
      if (inner.startsWith('"')) return `"${podInline(inner.replace(/^"|"$/g, ""))}"`; // a section
      const target = inner;
      const slash = target.indexOf("/");
      if (slash > 0)
        return `"${podInline(target.slice(slash + 1).replace(/^"|"$/g, ""))}" in ${podInline(target.slice(0, slash))}`;
      if (slash === 0) return `"${podInline(target.slice(1).replace(/^"|"$/g, ""))}"`;
      return podInline(target);
    }
    default:
      return podInline(inner);
  }
}

export function podToText(pod: string): string {
  // a command line right after a text line still starts a paragraph (Pod::Simple is lenient there)
  const paras = pod
    .replace(/\r\n?/g, "\n")
    .replace(/\n(?==[a-zA-Z])/g, "\n\n")
    .split(/\n(?:[ \t]*\n)+/);
  const out: string[] = [];
  const indents: number[] = [];
  let margin = 4;
  let inPod = /^=/.test(pod.trimStart());
  let skipUntil: string | null = null; // inside =begin FORMAT … =end FORMAT of a non-text format
  let pendingItem: string | null = null;
  let bareItem = false; // the last output was an item without a body: the next one joins it on a new line
  const emitText = (text: string) => {
    bareItem = false;
    const t = podInline(text);
    if (pendingItem !== null) {
      const tag = pendingItem;
      pendingItem = null;
      const tagCol = indents.length > 0 ? margin - indents[indents.length - 1] : margin;
      if (tagCol + tag.length < margin && t.trim() !== "") {
        const lines = wrap(t, WIDTH, margin);
        lines[0] = " ".repeat(tagCol) + tag.padEnd(margin - tagCol) + lines[0].slice(margin);
        out.push(lines.join("\n"));
        return;
      }
      out.push(" ".repeat(tagCol) + tag + "\n" + wrap(t, WIDTH, margin).join("\n"));
      return;
    }
    out.push(wrap(t, WIDTH, margin).join("\n"));
  };
  const flushItem = () => {
    if (pendingItem !== null) {
      const tagCol = indents.length > 0 ? margin - indents[indents.length - 1] : margin;
      const line = " ".repeat(tagCol) + pendingItem;
      if (bareItem) out[out.length - 1] += "\n" + line;
      else out.push(line);
      pendingItem = null;
      bareItem = true;
    }
  };
  for (const para of paras) {
    if (para.trim().length === 0) continue;
    const cmd = /^=([a-zA-Z]+\d?)[ \t]*([\s\S]*)$/.exec(para);
    if (skipUntil !== null) {
      if (cmd !== null && cmd[1] === "end") skipUntil = null;
      continue;
    }
    if (cmd !== null) {
      inPod = cmd[1] !== "cut";
      const arg = cmd[2].trim();
      switch (cmd[1]) {
        case "head1":
        case "head2":
        case "head3":
        case "head4": {
          flushItem();
          const level = Number(cmd[1][4]);
          out.push(" ".repeat(level === 1 ? 0 : level === 2 ? 2 : 3) + podInline(arg).replace(/\s+/g, " "));
          bareItem = false;
          break;
        }
        case "over":
          flushItem();
          indents.push(Number(arg) > 0 ? Number(arg) : 4);
          margin += indents[indents.length - 1];
          break;
        case "back":
          flushItem();
          margin -= indents.pop() ?? 0;
          break;
        case "item": {
          flushItem();
          // `=item * text` and `=item 1. text`: the bullet or number is the tag, the rest a paragraph
          const bullet = /^(\*|\d+\.?)\s+(\S[\s\S]*)$/.exec(arg);
          pendingItem = arg === "" ? "*" : podInline(bullet ? bullet[1] : arg).replace(/\s+/g, " ");
          if (bullet) emitText(bullet[2]);
          break;
        }
        case "begin":
          if (!/^text\b/.test(arg)) skipUntil = arg;
          break;
        case "for":
          if (/^text\b/.test(arg)) emitText(arg.replace(/^text\s*/, ""));
          break;
      }
      continue;
    }
    if (!inPod) continue;
    if (/^[ \t]/.test(para)) {
      flushItem();
      bareItem = false;
      out.push(
        para
          .replace(/\s+$/, "")
          .split("\n")
          .map((l) => (l.trim() === "" ? "" : " ".repeat(margin) + expandTabs(l)))
          .join("\n"),
      );
    } else emitText(para);
  }
  flushItem();
  return out.join("\n\n").trim();
}

/** Tabs to spaces at 8-column stops. */
export function expandTabs(line: string): string {
  let out = "";
  for (const ch of line) out += ch === "\t" ? " ".repeat(8 - (out.length % 8)) : ch;
  return out;
}
