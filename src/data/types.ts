// Shared shapes of the data pipeline: a document line of the corpus JSONL files.

/** One document: a JSONL line `{id, source, title, text, meta}`; ids are stable and unique per corpus. */
export interface Doc {
  id: string;
  source: string;
  title: string;
  text: string;
  meta?: Record<string, unknown>;
}

/** Builds a Doc with the key order of the files (meta omitted when absent). */
export function doc(
  source: string,
  id: string,
  title: string,
  text: string,
  meta?: Record<string, unknown>,
): Doc {
  const d: Doc = { id: `${source}/${id}`, source, title, text };
  if (meta !== undefined) d.meta = meta;
  return d;
}
