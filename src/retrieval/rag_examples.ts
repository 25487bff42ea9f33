// RAG examples for fine-tuning and QA evaluation: a question, the passages a retriever returns for it, and
// the reference answer. Training examples may force the gold passage into the context (so every example
// can be answered); evaluation examples keep the retriever's top k as they are. Passages keep their id and
// title ({id, title, text}): the prompt reads the title raw before the passage's chunks. Files written
// before titles existed hold plain strings, which every reader still accepts. A weak retriever (the
// paper's Table 3: K passages drawn at random from the top 200) is the same search with `weak` set.
import type { Conversation } from "../data/derived/conversations.js";
import type { QaItem } from "../data/derived/qa.js";
import type { SummaryPair } from "../data/derived/summaries.js";
import { Rng } from "../engine/random.js";
import type { Passage, PassageInput, Turn } from "../infer/prompt.js";
import { retrievalQuery } from "../rag/query.js";
import type { PassageIndex } from "./index.js";

export interface RagExample {
  id: string;
  question: string;
  passages: PassageInput[];
  /** Reference answers; the first is the training target. */
  answers: string[];
  /** Whether a gold passage is among the passages. */
  gold_in_context: boolean;
  /** Ids of the gold passages (so an evaluation that reads only the first n passages can tell). */
  gold_ids?: string[];
  /** Earlier turns (multi-turn conversations), oldest first. */
  history?: Turn[];
}

export interface RagBuildOptions {
  k: number;
  /** Put a gold passage in place of the last retrieved one when retrieval missed it (training). */
  forceGold: boolean;
  /** Weak retriever: k passages drawn at random (seeded per query) from the top `pool`, kept in rank order. */
  weak?: { pool: number; seed: number };
  onProgress?: (done: number, total: number) => void;
}

/** Retrieve for one question; the query may carry earlier questions (a follow-up such as "And its
 * population?" names its subject only in the first turn). */
async function retrieveFor(
  query: string,
  goldIds: readonly string[],
  index: Retriever,
  o: RagBuildOptions,
): Promise<{ passages: Passage[]; inContext: boolean }> {
  const hits =
    o.weak === undefined
      ? await index.search(query, o.k)
      : weakDraw(await index.search(query, o.weak.pool), query, o);
  const gold = new Set(goldIds);
  const passage = (h: { id: string; title: string; text: string }): Passage => ({
    id: h.id,
    title: h.title,
    text: h.text,
  });
  let passages = hits.map(passage);
  let inContext = hits.some((h) => gold.has(h.id));
  if (!inContext && o.forceGold && goldIds.length > 0) {
    const [g] = await index.get(goldIds.slice(0, 1));
    if (g !== undefined) {
      passages = [...passages.slice(0, o.k - 1), passage(g)];
      inContext = true;
    }
  }
  return { passages, inContext };
}

/** What example building needs from an index. */
export type Retriever = Pick<PassageIndex, "search" | "get">;

/** k of the hits at random (seeded by the weak seed and the query text, so the draw does not depend on
 * the order examples are built in), in rank order. */
function weakDraw<T>(hits: T[], query: string, o: RagBuildOptions): T[] {
  let h = o.weak!.seed >>> 0;
  for (let i = 0; i < query.length; i++) h = Math.imul(h ^ query.charCodeAt(i), 0x01000193) >>> 0;
  const picks = new Rng(h).shuffle(hits.map((_, i) => i)).slice(0, o.k);
  return picks.sort((a, b) => a - b).map((i) => hits[i]);
}

function checkK(k: number, o?: RagBuildOptions): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`RAG examples: k must be a positive integer, got ${k}`);
  if (o?.weak !== undefined && !(Number.isInteger(o.weak.pool) && o.weak.pool >= k))
    throw new Error(`RAG examples: the weak retriever's pool (${o.weak.pool}) must be an integer ≥ k (${k})`);
}

export async function buildRagExamples(
  items: readonly QaItem[],
  index: Retriever,
  o: RagBuildOptions,
): Promise<RagExample[]> {
  checkK(o.k, o);
  const out: RagExample[] = [];
  for (const [i, q] of items.entries()) {
    if (q.answers.length === 0) throw new Error(`QA item ${q.id}: no answers`);
    const { passages, inContext } = await retrieveFor(q.question, q.gold_passage_ids, index, o);
    out.push({
      id: q.id,
      question: q.question,
      passages,
      answers: q.answers,
      gold_in_context: inContext,
      gold_ids: q.gold_passage_ids,
    });
    o.onProgress?.(i + 1, items.length);
  }
  return out;
}

/** One example per conversation turn: the earlier turns (with their reference answers) as history, the
 * passages retrieved for all questions so far. */
export async function buildConversationExamples(
  conversations: readonly Conversation[],
  index: Retriever,
  o: RagBuildOptions,
): Promise<RagExample[]> {
  checkK(o.k, o);
  const out: RagExample[] = [];
  for (const [i, c] of conversations.entries()) {
    const history: Turn[] = [];
    for (const [t, turn] of c.turns.entries()) {
      if (turn.answers.length === 0) throw new Error(`conversation ${c.id} turn ${t}: no answers`);
      const query = retrievalQuery(turn.question, history);
      const { passages, inContext } = await retrieveFor(query, turn.gold_passage_ids, index, o);
      out.push({
        id: `${c.id}#${t}`,
        question: turn.question,
        passages,
        answers: turn.answers,
        gold_in_context: inContext,
        gold_ids: turn.gold_passage_ids,
        history: [...history],
      });
      history.push({ question: turn.question, answer: turn.answers[0] });
    }
    o.onProgress?.(i + 1, conversations.length);
  }
  return out;
}

/** The question of every summarisation example (the man page's NAME line is the reference). */
export const SUMMARY_QUESTION = "Summarise this manual page in one line.";

/** Summarisation as a RAG example: the page (without its NAME section) is the context, read compressed. */
export function summaryExamples(pairs: readonly SummaryPair[]): RagExample[] {
  return pairs.map((p, i) => {
    if (typeof p.input !== "string" || typeof p.summary !== "string" || p.summary === "")
      throw new Error(`summary pair ${i} (${p.id}): expected string input and a non-empty summary`);
    return {
      id: p.id,
      question: SUMMARY_QUESTION,
      passages: [p.input],
      answers: [p.summary],
      gold_in_context: true,
    };
  });
}
