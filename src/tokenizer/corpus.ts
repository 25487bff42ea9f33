// Text input for tokenizer training and evaluation: JSONL documents ({id, source, text, ...}, optionally
// gzipped) or plain text files, the fixed train/held-out split by document id, and a per-source byte cap.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";

export interface TextDoc {
  id: string;
  source: string;
  text: string;
}

/**
 * The project's split rule (the same as src/data's): bucket = first 4 bytes of sha256(doc id) as a
 * big-endian uint32, mod 100. Buckets 0..89 are training documents; 90..99 are held out.
 */
export function splitBucket(id: string): number {
  return createHash("sha256").update(id, "utf8").digest().readUInt32BE(0) % 100;
}

export function isTrainDoc(id: string): boolean {
  return splitBucket(id) < 90;
}

const TEXT_EXT = [".jsonl", ".jsonl.gz", ".txt", ".txt.gz", ".md", ".json"];

/** Expand files and folders (one level plus subfolders) into the corpus files they hold, sorted. */
export function listCorpusFiles(inputs: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (st === undefined) throw new Error(`corpus: no such file or folder: ${p}`);
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        const q = join(p, name);
        const s = statSync(q);
        if (s.isDirectory() || TEXT_EXT.some((e) => name.endsWith(e))) visit(q);
      }
    } else out.push(p);
  };
  for (const p of inputs) visit(p);
  if (out.length === 0) throw new Error(`corpus: no .jsonl/.jsonl.gz/.txt files in ${inputs.join(", ")}`);
  return out;
}

function readText(path: string): string {
  let buf = readFileSync(path);
  if (path.endsWith(".gz")) buf = gunzipSync(buf);
  return buf.toString("utf8");
}

function stripExt(name: string): string {
  return name.replace(/\.gz$/, "").replace(/\.(jsonl|txt|md|json)$/, "");
}

/**
 * Documents of one file. JSONL lines need a string "text"; "id" and "source" default to file:line and the
 * file name. A plain text file is one document whose id is its file name.
 */
export function readDocs(path: string): TextDoc[] {
  const text = readText(path);
  const name = stripExt(basename(path));
  if (!/\.jsonl(\.gz)?$/.test(path)) return [{ id: name, source: name, text }];
  const docs: TextDoc[] = [];
  let lineNo = 0;
  for (const line of text.split("\n")) {
    lineNo++;
    if (line.trim().length === 0) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${lineNo}: not valid JSON (${(e as Error).message})`);
    }
    const o = obj as { id?: unknown; source?: unknown; text?: unknown };
    if (typeof o !== "object" || o === null || typeof o.text !== "string")
      throw new Error(`${path}:${lineNo}: expected an object with a string "text" field`);
    docs.push({
      id: typeof o.id === "string" ? o.id : `${name}:${lineNo}`,
      source: typeof o.source === "string" ? o.source : name,
      text: o.text,
    });
  }
  return docs;
}

export type SplitChoice = "train" | "heldout" | "all";

export interface SampleOptions {
  split: SplitChoice;
  /** Keep at most this many characters per source (documents in hash order, so the sample is unbiased). */
  maxCharsPerSource?: number;
  /** Called after each file with its name and the characters kept so far. */
  onFile?: (path: string, keptChars: number) => void;
}

/** Read files, keep documents of the chosen split, cap each source; returns documents grouped by source. */
export function sampleCorpus(files: readonly string[], opts: SampleOptions): Map<string, TextDoc[]> {
  const bySource = new Map<string, { doc: TextDoc; h: string }[]>();
  let kept = 0;
  for (const f of files) {
    for (const d of readDocs(f)) {
      const h = createHash("sha256").update(d.id, "utf8").digest();
      const bucket = h.readUInt32BE(0) % 100;
      if (opts.split === "train" && bucket >= 90) continue;
      if (opts.split === "heldout" && bucket < 90) continue;
      let list = bySource.get(d.source);
      if (list === undefined) bySource.set(d.source, (list = []));
      list.push({ doc: d, h: h.toString("hex") });
      kept += d.text.length;
    }
    opts.onFile?.(f, kept);
  }
  const out = new Map<string, TextDoc[]>();
  const cap = opts.maxCharsPerSource ?? Infinity;
  for (const source of [...bySource.keys()].sort()) {
    const list = (bySource.get(source) as { doc: TextDoc; h: string }[]).sort((x, y) =>
      x.h < y.h ? -1 : x.h > y.h ? 1 : 0,
    );
    const docs: TextDoc[] = [];
    let chars = 0;
    for (const { doc } of list) {
      if (chars >= cap) break;
      // The last document is cut so a single huge document cannot blow the cap.
      const room = cap - chars;
      docs.push(doc.text.length <= room ? doc : { ...doc, text: doc.text.slice(0, room) });
      chars += Math.min(doc.text.length, room);
    }
    out.set(source, docs);
  }
  return out;
}
