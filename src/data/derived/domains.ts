// Four long-document evaluation domains (the roles of the paper's Arxiv, Book, PG19 and ProofPile sets).
import type { EvalDoc } from "./docs.js";
import type { TextEncoder } from "./sampler.js";
import { splitOf, type Split } from "./split.js";

export interface Domain {
  name: string;
  /** The paper's set whose role this domain plays. */
  role: string;
  sources: string[];
}

export const DOMAINS: readonly Domain[] = [
  { name: "technical", role: "Arxiv", sources: ["python-docs", "linux-docs"] },
  { name: "books", role: "Book", sources: ["austen", "moby-dick"] },
  { name: "speeches-old-text", role: "PG19", sources: ["sotu", "bible-web"] },
  { name: "manuals", role: "ProofPile", sources: ["perl-pod", "manpages", "postgres-docs"] },
];

export const LENGTHS = [4096, 16384] as const;

/** A long evaluation document: a real document, or (fallback) held-out documents of one work joined. */
export interface LongDoc {
  id: string;
  split: Split | "validation+test";
  tokens: number;
  /** Ids of the joined documents, in order (one id for a real document). */
  members: string[];
}

export interface LengthReport {
  minTokens: number;
  /** Test-split documents of at least minTokens. */
  test: number;
  /** Validation-split documents of at least minTokens. */
  validation: number;
  /** How the listed documents were chosen: "test", "validation+test" or "composite". */
  fallback: "test" | "validation+test" | "composite";
  docs: LongDoc[];
}

export interface DomainReport {
  name: string;
  role: string;
  sources: string[];
  heldOutDocs: number;
  lengths: LengthReport[];
}

/** The "work" a document belongs to, for joining chapters: its id without the last path or dot part. */
export function workOf(id: string): string {
  const slash = id.lastIndexOf("/");
  const head = id.slice(0, slash);
  const tail = id.slice(slash + 1);
  const dot = tail.lastIndexOf(".");
  return /^bible-web\//.test(id) && dot > 0 ? `${head}/${tail.slice(0, dot)}` : head;
}

const byNaturalId = (a: { id: string }, b: { id: string }): number =>
  a.id.localeCompare(b.id, "en", { numeric: true });

/**
 * Lists a domain's long documents for each length. Documents of the test split come first; when fewer than
 * `minDocs` reach a length, validation documents are added ("validation+test"); when still too few,
 * held-out (validation+test) documents of the same work (a book's chapters, a Bible book) are joined in id
 * order, separated by a blank line, until each joined text reaches the length ("composite").
 */
export function domainReport(
  domain: Domain,
  docs: readonly EvalDoc[],
  tok: TextEncoder,
  minDocs = 5,
  lengths: readonly number[] = LENGTHS,
): DomainReport {
  const held = docs
    .filter((d) => domain.sources.includes(d.source) && splitOf(d.id) !== "train")
    .map((d) => ({ id: d.id, split: splitOf(d.id), tokens: tok.encode(d.text).length + 0 }))
    .sort(byNaturalId);
  const lengthsOut: LengthReport[] = [];
  for (const L of lengths) {
    const long = held.filter((d) => d.tokens >= L);
    const test = long.filter((d) => d.split === "test");
    const validation = long.filter((d) => d.split === "validation");
    const asDoc = (d: (typeof held)[number]): LongDoc => ({
      id: d.id,
      split: d.split,
      tokens: d.tokens,
      members: [d.id],
    });
    let fallback: LengthReport["fallback"] = "test";
    let chosen: LongDoc[] = test.map(asDoc);
    if (chosen.length < minDocs) {
      fallback = "validation+test";
      chosen = long.map(asDoc);
    }
    if (chosen.length < minDocs) {
      fallback = "composite";
      const byWork = new Map<string, typeof held>();
      for (const d of held) {
        if (d.tokens >= L) continue;
        const w = workOf(d.id);
        let l = byWork.get(w);
        if (l === undefined) byWork.set(w, (l = []));
        l.push(d);
      }
      for (const [w, parts] of [...byWork].sort((a, b) => a[0].localeCompare(b[0]))) {
        let cur: typeof held = [];
        let n = 0;
        for (const p of parts) {
          cur.push(p);
          n += p.tokens;
          if (n >= L) {
            chosen.push({
              id: `composite:${w}:${cur[0].id}..${cur[cur.length - 1].id}`,
              split: "validation+test",
              tokens: n,
              members: cur.map((x) => x.id),
            });
            cur = [];
            n = 0;
          }
        }
      }
    }
    lengthsOut.push({
      minTokens: L,
      test: test.length,
      validation: validation.length,
      fallback,
      docs: chosen,
    });
  }
  return {
    name: domain.name,
    role: domain.role,
    sources: domain.sources,
    heldOutDocs: held.length,
    lengths: lengthsOut,
  };
}

/** The text of a long document: its members' texts joined by a blank line. */
export function longDocText(d: LongDoc, byId: Map<string, EvalDoc>): string {
  return d.members
    .map((id) => {
      const doc = byId.get(id);
      if (doc === undefined) throw new Error(`long document ${d.id}: member ${id} is not in the corpus`);
      return doc.text;
    })
    .join("\n\n");
}
