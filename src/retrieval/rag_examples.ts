// RAG examples for fine-tuning and QA evaluation: a question, the passages a retriever returns for it, and
// the reference answer. Training examples may force the gold passage into the context (so every example
// can be answered); evaluation examples keep the retriever's top k as they are.
import type { QaItem } from "../data/derived/qa.js";
import type { PassageIndex } from "./index.js";

export interface RagExample {
  id: string;
  question: string;
  passages: string[];
  /** Reference answers; the first is the training target. */
  answers: string[];
  /** Whether a gold passage is among the passages. */
  gold_in_context: boolean;
}

export interface RagBuildOptions {
  k: number;
  /** Put a gold passage in place of the last retrieved one when retrieval missed it (training). */
  forceGold: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function buildRagExamples(
  items: readonly QaItem[],
  index: PassageIndex,
  o: RagBuildOptions,
): Promise<RagExample[]> {
  if (!Number.isInteger(o.k) || o.k < 1)
    throw new Error(`buildRagExamples: k must be a positive integer, got ${o.k}`);
  const out: RagExample[] = [];
  for (const [i, q] of items.entries()) {
    if (q.answers.length === 0) throw new Error(`QA item ${q.id}: no answers`);
    const hits = await index.search(q.question, o.k);
    const gold = new Set(q.gold_passage_ids);
    let passages = hits.map((h) => h.text);
    let inContext = hits.some((h) => gold.has(h.id));
    if (!inContext && o.forceGold && q.gold_passage_ids.length > 0) {
      const [g] = await index.get(q.gold_passage_ids.slice(0, 1));
      if (g !== undefined) {
        passages = [...passages.slice(0, o.k - 1), g.text];
        inContext = true;
      }
    }
    out.push({ id: q.id, question: q.question, passages, answers: q.answers, gold_in_context: inContext });
    o.onProgress?.(i + 1, items.length);
  }
  return out;
}
