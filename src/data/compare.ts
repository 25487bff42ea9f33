// Compares a built corpus folder with a reference one (such as a cache of an earlier build): per source,
// document counts, bytes, shared ids and identical texts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readJsonl } from "./jsonl.js";
import type { Doc } from "./types.js";

export interface CompareRow {
  file: string;
  refDocs: number;
  ourDocs: number;
  refBytes: number;
  ourBytes: number;
  sharedIds: number;
  sameText: number;
  onlyRef: string[]; // a few ids missing from ours
  onlyOurs: string[];
}

export function compareFile(ourDir: string, refDir: string, file: string): CompareRow {
  const load = (p: string) => (existsSync(p) ? readJsonl<Doc>(p) : []);
  const ours = load(join(ourDir, file));
  const ref = load(join(refDir, file));
  const byId = new Map(ours.map((d) => [d.id, d]));
  const refIds = new Set(ref.map((d) => d.id));
  const bytes = (ds: Doc[]) => ds.reduce((n, d) => n + Buffer.byteLength(JSON.stringify(d)) + 1, 0);
  let shared = 0;
  let same = 0;
  const onlyRef: string[] = [];
  for (const d of ref) {
    const o = byId.get(d.id);
    if (o === undefined) onlyRef.push(d.id);
    else {
      shared++;
      if (o.text === d.text) same++;
    }
  }
  const onlyOurs = ours.filter((d) => !refIds.has(d.id)).map((d) => d.id);
  return {
    file,
    refDocs: ref.length,
    ourDocs: ours.length,
    refBytes: bytes(ref),
    ourBytes: bytes(ours),
    sharedIds: shared,
    sameText: same,
    onlyRef,
    onlyOurs,
  };
}
