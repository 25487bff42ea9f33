// The held-out windows the perplexity tables read: per domain (domains.json from `refrag datasets build`),
// documents of one length list, each tokenised once, cut at seeded positions (next-paragraph windows:
// s context tokens then o continuation tokens, snapped to a paragraph start when one is near). Computed
// once per table and handed to every row, so every row reads the same documents at the same offsets.
//
// When a domain has too few documents long enough for s + o, s is lowered (in steps of 256) to the
// longest context that the required number of documents can give, and a note says so: Table 2's 20,480
// tokens are more than most of our held-out documents hold.
import type { EvalDoc } from "../data/derived/docs.js";
import { longDocText, type DomainReport } from "../data/derived/domains.js";
import { sampleWindows, tokenizeDoc, type TextEncoder } from "../data/derived/sampler.js";
import type { DomainWindows, TableWindow } from "./ppl_table.js";

export interface WindowOptions {
  /** Which long-document list (minimum tokens) of each domain: 4096 or 16384. */
  length: number;
  /** Context lengths to sample for (one DomainWindows per domain and s). */
  s: readonly number[];
  /** Continuation tokens (the longest o of the table). */
  o: number;
  /** Windows drawn per document. */
  perDocument: number;
  /** At most this many windows per domain (taken round-robin over the documents). */
  maxPerDomain: number;
  /** Documents a domain should have at the requested s before s is lowered (default 2). */
  minDocuments?: number;
  seed: number;
}

const S_STEP = 256;

/** The tokens of one long document, tokenised the way the sampler cuts it. */
export type DocTokens = { id: string; tokens: number[]; boundaries: number[] };

/** Tokenise the documents of every domain's list once (shared by every s). */
export function domainDocuments(
  tok: TextEncoder,
  domains: readonly DomainReport[],
  byId: Map<string, EvalDoc>,
  length: number,
): Map<string, DocTokens[]> {
  const out = new Map<string, DocTokens[]>();
  for (const d of domains) {
    const list = d.lengths.find((l) => l.minTokens === length);
    if (list === undefined)
      throw new Error(
        `domains: ${d.name} has no ${length}-token list (lists: ${d.lengths.map((l) => l.minTokens).join(", ")})`,
      );
    out.set(
      domainLabel(d),
      list.docs.map((doc) => ({ id: doc.id, ...tokenizeDoc(tok, longDocText(doc, byId)) })),
    );
  }
  return out;
}

/** How a domain is named in the tables: "technical (Arxiv)". */
export function domainLabel(d: Pick<DomainReport, "name" | "role">): string {
  return `${d.name} (${d.role})`;
}

/** Windows per domain and s; the same call gives the same windows. */
export function tableWindows(docs: Map<string, DocTokens[]>, o: WindowOptions): DomainWindows[] {
  const out: DomainWindows[] = [];
  const minDocs = o.minDocuments ?? 2;
  for (const requestedS of o.s)
    for (const [domain, list] of docs) {
      const notes: string[] = [];
      const lengths = list.map((d) => d.tokens.length).sort((a, b) => b - a);
      const need = Math.min(minDocs, lengths.length);
      const long = lengths.filter((n) => n >= requestedS + o.o).length;
      let s = requestedS;
      if (lengths.length === 0) notes.push("no documents in this list");
      else if (long < need) {
        // The longest s (a multiple of 256) that `need` documents reach.
        s = Math.min(requestedS, Math.floor((lengths[need - 1] - o.o) / S_STEP) * S_STEP);
        if (s < S_STEP) {
          notes.push(
            `no usable context: the longest ${need} document(s) hold ${lengths.slice(0, need).join(", ")} tokens`,
          );
          s = requestedS;
        } else
          notes.push(
            `only ${long} of ${lengths.length} documents reach s + o = ${requestedS + o.o} tokens; s lowered to ${s} (the longest ${need} hold ${lengths.slice(0, need).join(", ")} tokens)`,
          );
      }
      const perDoc: TableWindow[][] = list.map((doc, i) =>
        sampleWindows(doc, { s, o: o.o, count: o.perDocument, seed: o.seed + 1009 * i }).map((w) => ({
          doc: doc.id,
          cut: w.cut,
          context: w.context,
          continuation: w.continuation,
        })),
      );
      const used = perDoc.filter((w) => w.length > 0).length;
      // Round-robin over the documents, so a cap keeps the domain's variety.
      const windows: TableWindow[] = [];
      for (let r = 0; r < o.perDocument && windows.length < o.maxPerDomain; r++)
        for (const ws of perDoc) if (r < ws.length && windows.length < o.maxPerDomain) windows.push(ws[r]);
      if (used < list.length && s === requestedS && lengths.length > 0)
        notes.push(
          `${list.length - used} of ${list.length} documents are shorter than s + o = ${s + o.o} tokens`,
        );
      notes.push(`${windows.length} windows from ${new Set(windows.map((w) => w.doc)).size} documents`);
      out.push({ domain, s, requestedS, windows, notes });
    }
  return out;
}
