// Retrieval passages of at most ~200 words, cut from documents along paragraph, line and sentence borders.
import type { EvalDoc } from "./docs.js";
import { cleanText, collapseSpace, wordCount } from "./text.js";

/** One retrieval passage; `id` is `<doc_id>#<index within the document>`. */
export interface Passage {
  id: string;
  doc_id: string;
  title: string;
  text: string;
}

export const DEFAULT_MAX_WORDS = 200;

interface Unit {
  text: string; // whitespace-collapsed
  words: number;
  /** True when the unit starts a new paragraph or line (joined with "\n"), false for a sentence (" "). */
  newPara: boolean;
}

const SENTENCE_END = /(?<=[.!?]["'”’)\]]?)\s+(?=["'“‘(\[]?[A-Z0-9])/;

function sentences(s: string): string[] {
  return s.split(SENTENCE_END).filter((x) => x.length > 0);
}

function chunkWords(s: string, max: number): string[] {
  const w = s.split(" ");
  const out: string[] = [];
  for (let i = 0; i < w.length; i += max) out.push(w.slice(i, i + max).join(" "));
  return out;
}

/**
 * The units of a text, in order. Blocks are separated by blank lines. A block of at most `max` words is one
 * unit. A longer block is split into its lines when its lines are logical records (some line is longer
 * than 100 characters, e.g. Factbook `Field: value` lines), otherwise (hard-wrapped prose) into sentences;
 * a unit still over `max` words is split into sentences and, last, into `max`-word chunks.
 */
function units(text: string, max: number): Unit[] {
  const out: Unit[] = [];
  const push = (s: string, newPara: boolean): void => {
    const t = collapseSpace(s);
    if (t.length === 0) return;
    const n = wordCount(t);
    if (n <= max) {
      out.push({ text: t, words: n, newPara });
      return;
    }
    let first = newPara;
    for (const sen of sentences(t)) {
      for (const c of wordCount(sen) <= max ? [sen] : chunkWords(sen, max)) {
        out.push({ text: c, words: wordCount(c), newPara: first });
        first = false;
      }
    }
  };
  for (const block of text.split(/\n[ \t]*\n/)) {
    if (wordCount(block) <= max) {
      push(block, true);
      continue;
    }
    const lines = block.split("\n").filter((l) => l.trim().length > 0);
    if (lines.some((l) => l.length > 100)) for (const l of lines) push(l, true);
    else push(block, true);
  }
  return out;
}

/** Cuts one document into passages: consecutive units packed greedily up to `maxWords` words. */
export function cutPassages(doc: EvalDoc, maxWords = DEFAULT_MAX_WORDS): Passage[] {
  const us = units(cleanText(doc.source, doc.text), maxWords);
  const out: Passage[] = [];
  let cur = "";
  let curWords = 0;
  const flush = (): void => {
    if (curWords === 0) return;
    out.push({ id: `${doc.id}#${out.length}`, doc_id: doc.id, title: doc.title, text: cur });
    cur = "";
    curWords = 0;
  };
  for (const u of us) {
    if (curWords > 0 && curWords + u.words > maxWords) flush();
    cur = curWords === 0 ? u.text : cur + (u.newPara ? "\n" : " ") + u.text;
    curWords += u.words;
  }
  flush();
  return out;
}

/** Passages of many documents, in document order. */
export function buildPassages(docs: Iterable<EvalDoc>, maxWords = DEFAULT_MAX_WORDS): Passage[] {
  const out: Passage[] = [];
  for (const d of docs) for (const p of cutPassages(d, maxWords)) out.push(p);
  return out;
}
