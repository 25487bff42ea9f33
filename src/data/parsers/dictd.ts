// dictd databases: NAME.index lines are `headword \t offset \t length` with numbers in dictd's base64
// digits (A-Z a-z 0-9 + /, most significant first), pointing at byte ranges of the uncompressed
// NAME.dict(.dz); .dict.dz is dictzip, a gzip-compatible file.
import { gunzipSync } from "node:zlib";

const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function decodeB64Number(s: string): number {
  let n = 0;
  for (const ch of s) {
    const d = DIGITS.indexOf(ch);
    if (d < 0) throw new Error(`dictd: bad base64 digit '${ch}' in '${s}'`);
    n = n * 64 + d;
  }
  return n;
}

export interface DictEntry {
  headwords: string[]; // every index headword pointing at this definition, in index order
  offset: number;
  text: string;
}

/** One entry per distinct definition (index lines sharing offset and length are merged), by offset.
 *  Database-info headwords (00-database-*, 00database*) are dropped; entries left with none are skipped. */
export function parseDictd(index: string, dict: Buffer): DictEntry[] {
  const body = dict[0] === 0x1f && dict[1] === 0x8b ? gunzipSync(dict) : dict;
  const byKey = new Map<string, DictEntry & { length: number }>();
  for (const line of index.split("\n")) {
    const f = line.split("\t");
    if (f.length < 3) continue;
    const offset = decodeB64Number(f[1]);
    const length = decodeB64Number(f[2]);
    const key = `${offset}:${length}`;
    let e = byKey.get(key);
    if (e === undefined) {
      e = { headwords: [], offset, length, text: "" };
      byKey.set(key, e);
    }
    if (!/^00-?database/.test(f[0])) e.headwords.push(f[0]);
  }
  const out: DictEntry[] = [];
  for (const e of byKey.values()) {
    if (e.headwords.length === 0) continue;
    const text = body.toString("utf8", e.offset, e.offset + e.length).trim();
    out.push({ headwords: e.headwords, offset: e.offset, text });
  }
  return out.sort((a, b) => a.offset - b.offset);
}
