// Corpus documents with their titles and meta, read from the JSONL(.gz) files of a corpus folder.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { gunzipSync } from "node:zlib";
import { listCorpusFiles } from "../../tokenizer/corpus.js";

/** One document line `{id, source, title, text, meta}`. */
export interface EvalDoc {
  id: string;
  source: string;
  title: string;
  text: string;
  meta?: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses the documents of one .jsonl or .jsonl.gz file; a bad line throws naming file:line. */
export function readEvalDocs(path: string): EvalDoc[] {
  let buf = readFileSync(path);
  if (path.endsWith(".gz")) buf = gunzipSync(buf);
  const docs: EvalDoc[] = [];
  let lineNo = 0;
  for (const line of buf.toString("utf8").split("\n")) {
    lineNo++;
    if (line.trim().length === 0) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${lineNo}: not valid JSON (${(e as Error).message})`);
    }
    if (
      !isRecord(obj) ||
      typeof obj.id !== "string" ||
      typeof obj.source !== "string" ||
      typeof obj.text !== "string"
    )
      throw new Error(
        `${path}:${lineNo}: expected {id, source, title, text, meta} with string id, source and text`,
      );
    const d: EvalDoc = {
      id: obj.id,
      source: obj.source,
      title: typeof obj.title === "string" ? obj.title : obj.id,
      text: obj.text,
    };
    if (isRecord(obj.meta)) d.meta = obj.meta;
    docs.push(d);
  }
  return docs;
}

/** Source name of a corpus file: its base name without .jsonl(.gz). */
export function sourceOfFile(path: string): string {
  return basename(path)
    .replace(/\.gz$/, "")
    .replace(/\.jsonl$/, "");
}

/** Documents by source for the wanted sources (all when `sources` is undefined), from files or folders. */
export function loadCorpus(
  inputs: readonly string[],
  sources?: readonly string[],
  onFile?: (path: string, docs: number) => void,
): Map<string, EvalDoc[]> {
  const want = sources === undefined ? null : new Set(sources);
  const out = new Map<string, EvalDoc[]>();
  for (const f of listCorpusFiles(inputs)) {
    if (!/\.jsonl(\.gz)?$/.test(f)) continue;
    if (want !== null && !want.has(sourceOfFile(f))) continue;
    const docs = readEvalDocs(f);
    for (const d of docs) {
      let list = out.get(d.source);
      if (list === undefined) out.set(d.source, (list = []));
      list.push(d);
    }
    onFile?.(f, docs.length);
  }
  return out;
}

/** All documents of the given sources, in source order; missing sources are an error naming them. */
export function docsOf(corpus: Map<string, EvalDoc[]>, sources: readonly string[]): EvalDoc[] {
  const missing = sources.filter((s) => !corpus.has(s));
  if (missing.length > 0) throw new Error(`corpus has no documents of source(s): ${missing.join(", ")}`);
  return sources.flatMap((s) => corpus.get(s) as EvalDoc[]);
}
