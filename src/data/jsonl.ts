// JSONL files, plain or gzip-compressed (by the .gz suffix), read and written whole or line by line.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { writeFileAtomicSync } from "../io/atomic.js";

/** Parses every line of a .jsonl or .jsonl.gz file. */
export function readJsonl<T>(path: string): T[] {
  let buf = readFileSync(path);
  if (path.endsWith(".gz")) buf = gunzipSync(buf);
  const out: T[] = [];
  for (const line of buf.toString("utf8").split("\n")) if (line.length > 0) out.push(JSON.parse(line) as T);
  return out;
}

export interface WriteInfo {
  lines: number;
  bytes: number; // uncompressed
  sha256: string; // first 16 hex digits, of the uncompressed content
}

/** Writes items one per line (atomically, io/atomic.ts), gzip when the path ends in .gz. */
export function writeJsonl(path: string, items: Iterable<unknown>): WriteInfo {
  const parts: string[] = [];
  for (const it of items) parts.push(JSON.stringify(it) + "\n");
  const raw = Buffer.from(parts.join(""), "utf8");
  writeFileAtomicSync(path, path.endsWith(".gz") ? gzipSync(raw, { level: 6 }) : raw, "jsonl");
  return {
    lines: parts.length,
    bytes: raw.length,
    sha256: createHash("sha256").update(raw).digest("hex").slice(0, 16),
  };
}
