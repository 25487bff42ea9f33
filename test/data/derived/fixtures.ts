// The committed fixtures of the derived-set tests: small documents cut from the real corpus cache.
import { fileURLToPath } from "node:url";
import { loadCorpus, type EvalDoc } from "../../../src/data/derived/docs.js";

export const FIXTURE_DIR = fileURLToPath(new URL("../../../../test/fixtures/derived/", import.meta.url));

let cached: Map<string, EvalDoc[]> | null = null;

/** Fixture documents by source (read once). */
export function fixtureCorpus(): Map<string, EvalDoc[]> {
  if (cached === null) cached = loadCorpus([FIXTURE_DIR]);
  return cached;
}

export function fixtureDoc(id: string): EvalDoc {
  for (const docs of fixtureCorpus().values()) for (const d of docs) if (d.id === id) return d;
  throw new Error(`fixture document ${id} not found`);
}
