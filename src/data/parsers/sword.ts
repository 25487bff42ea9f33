// SWORD zText modules (BlockType=BOOK, CompressType=ZIP): per testament, X.bzs lists zlib blocks in X.bzz
// as 12-byte records (offset, compressed size, size: u32 LE); X.bzv has one 10-byte record per verse slot
// (block u32, offset u32, size u16) in versification order, with slots for book and chapter headings too.
// Rather than carry a versification table we follow the OSIS `<chapter osisID="Gen.1" sID=…/>` markers in
// the text and number the non-empty slots after a marker 1, 2, …; a book heading slot thus lands at the
// end of the previous chapter (as a numbered line), which keeps book introductions in the text.
import { inflateSync } from "node:zlib";

export interface Testament {
  bzs: Buffer;
  bzv: Buffer;
  bzz: Buffer;
}

/** The raw OSIS text of every verse slot of one testament, in index order. */
export function readZText(t: Testament): string[] {
  const blocks = new Map<number, Buffer>();
  const block = (b: number): Buffer => {
    let out = blocks.get(b);
    if (out === undefined) {
      if ((b + 1) * 12 > t.bzs.length)
        throw new Error(`sword: block ${b} beyond the .bzs index (${t.bzs.length / 12} blocks)`);
      const off = t.bzs.readUInt32LE(b * 12);
      const size = t.bzs.readUInt32LE(b * 12 + 4);
      out = inflateSync(t.bzz.subarray(off, off + size));
      blocks.set(b, out);
    }
    return out;
  };
  const slots: string[] = [];
  for (let i = 0; i + 10 <= t.bzv.length; i += 10) {
    const size = t.bzv.readUInt16LE(i + 8);
    if (size === 0) slots.push("");
    else {
      const off = t.bzv.readUInt32LE(i + 4);
      slots.push(block(t.bzv.readUInt32LE(i)).toString("utf8", off, off + size));
    }
  }
  return slots;
}

/** OSIS markup to plain text: notes dropped, tags removed, entities decoded, spaces collapsed. */
export function osisToText(osis: string): string {
  return osis
    .replace(/<note\b[^>]*\/>/g, "")
    .replace(/<note\b[\s\S]*?<\/note>/g, "\u0000") // a note separates words, but not a word from its punctuation
    .replace(/<[^>]*>/g, "")
    .replace(/\s*\u0000[\s\u0000]*(?=[,.;:?!])/g, "")
    .replace(/\u0000/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}

export interface Chapter {
  osisId: string; // "Gen.1"
  text: string; // "1 In the beginning…\n2 …"
}

/** Groups verse slots into chapters at the OSIS chapter markers; non-empty verse lines are numbered. */
export function chapters(slots: string[]): Chapter[] {
  const out: Chapter[] = [];
  let cur: { osisId: string; lines: string[] } | null = null;
  let verse = 0;
  const flush = () => {
    if (cur !== null && cur.lines.length > 0) out.push({ osisId: cur.osisId, text: cur.lines.join("\n") });
  };
  for (const raw of slots) {
    const m =
      /<chapter\b[^>]*\bsID="([^"]+)"/.exec(raw) ?? /<chapter\b[^>]*\bosisID="([^"]+)"[^>]*\/>/.exec(raw);
    if (m !== null) {
      flush();
      cur = { osisId: m[1], lines: [] };
      verse = 0;
    } else if (cur === null) continue;
    const text = osisToText(raw);
    if (text.length > 0) cur.lines.push(`${++verse} ${text}`); // a whole book can share one slot (DanGr)
  }
  flush();
  return out;
}
