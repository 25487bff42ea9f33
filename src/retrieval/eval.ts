// Retrieval quality on the QA set: recall@k, the share of questions with a gold passage among the top k,
// and MRR; for any search (BM25, dense, hybrid).
import type { QaItem } from "../data/derived/qa.js";

export interface RecallRow {
  k: number;
  recall: number;
}

export interface RetrievalReport {
  questions: number;
  rows: RecallRow[];
  /** Mean reciprocal rank of the first gold passage within the largest k (0 when missed). */
  mrr: number;
}

/** Anything that searches: a PassageIndex, or `{ search }` from retriever() for dense and hybrid. */
export interface Searcher {
  search(question: string, k: number): Promise<readonly { id: string }[]>;
}

export async function evalRetrieval(
  index: Searcher,
  items: readonly Pick<QaItem, "question" | "gold_passage_ids">[],
  ks: readonly number[] = [1, 5, 10],
  onProgress?: (done: number, total: number) => void,
): Promise<RetrievalReport> {
  if (items.length === 0) throw new Error("evalRetrieval: no questions");
  const kmax = Math.max(...ks);
  const hits = new Array<number>(ks.length).fill(0);
  let rr = 0;
  for (let i = 0; i < items.length; i++) {
    const gold = new Set(items[i].gold_passage_ids);
    const found = await index.search(items[i].question, kmax);
    const rank = found.findIndex((h) => gold.has(h.id));
    if (rank >= 0) rr += 1 / (rank + 1);
    ks.forEach((k, j) => {
      if (rank >= 0 && rank < k) hits[j]++;
    });
    onProgress?.(i + 1, items.length);
  }
  return {
    questions: items.length,
    rows: ks.map((k, j) => ({ k, recall: hits[j] / items.length })),
    mrr: rr / items.length,
  };
}
