// The train / validation / test split of a document, by id (stable across runs and machines).
import { splitBucket } from "../../tokenizer/corpus.js";

export type Split = "train" | "validation" | "test";

export const SPLITS: readonly Split[] = ["train", "validation", "test"];

/** Bucket = first 4 bytes of sha256(id) as a big-endian uint32 mod 100: < 90 train, < 95 validation, else test. */
export function splitOf(id: string): Split {
  const b = splitBucket(id);
  return b < 90 ? "train" : b < 95 ? "validation" : "test";
}

/** Parses a comma-separated list of split names ("validation,test"); throws naming the bad one. */
export function parseSplits(list: string): Split[] {
  const out: Split[] = [];
  for (const raw of list.split(",")) {
    const s = raw.trim();
    if (s === "all") return [...SPLITS];
    if (!(SPLITS as readonly string[]).includes(s))
      throw new Error(`unknown split "${s}" (expected train, validation, test or all)`);
    out.push(s as Split);
  }
  return out;
}
