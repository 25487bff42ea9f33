// Multi-turn conversations: several questions about one subject, later turns referring back to it.
import type { Fact } from "./facts.js";
import type { Passage } from "./passages.js";
import { goldPassages, seededKey } from "./qa.js";
import { splitOf, type Split } from "./split.js";

export interface ConversationTurn {
  question: string;
  answers: string[];
  gold_passage_ids: string[];
  relation: string;
}

export interface Conversation {
  id: string;
  subject: string;
  source: string;
  turns: ConversationTurn[];
  meta: { doc_ids: string[]; splits: Split[] };
}

/** Sources whose facts are grouped into conversations (one per country / element). */
export const CONVERSATION_SOURCES = ["factbook", "dict-elements"];

/**
 * One conversation per subject with at least `minTurns` facts. The facts are ordered by a seeded hash of
 * (subject, relation); the first turn names the subject, later turns use the relation's follow-up
 * ("And its population?"). Relations that name the subject's answer as the question
 * (element_by_number) are left out.
 */
export function buildConversations(
  facts: readonly Fact[],
  byDoc: Map<string, Passage[]>,
  seed: number,
  minTurns = 3,
  maxTurns = 6,
): Conversation[] {
  const bySubject = new Map<string, Fact[]>();
  for (const f of facts) {
    if (!CONVERSATION_SOURCES.includes(f.source) || f.relation === "element_by_number") continue;
    const k = `${f.source}/${f.subjectKey}`;
    let l = bySubject.get(k);
    if (l === undefined) bySubject.set(k, (l = []));
    l.push(f);
  }
  const out: Conversation[] = [];
  for (const [key, fs] of bySubject) {
    const usable = fs
      .map((f) => ({ f, gold: goldPassages(f, byDoc) }))
      .filter((x) => x.gold.length > 0)
      .sort((a, b) => {
        const ka = seededKey(seed, `${key}/${a.f.relation}`);
        const kb = seededKey(seed, `${key}/${b.f.relation}`);
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      })
      .slice(0, maxTurns);
    if (usable.length < minTurns) continue;
    const docIds = [...new Set(usable.map((x) => x.f.doc_id))].sort();
    out.push({
      id: `conv/${key}`,
      subject: usable[0].f.subject,
      source: usable[0].f.source,
      turns: usable.map((x, i) => ({
        question: i === 0 ? x.f.question : x.f.followUp,
        answers: x.f.answers,
        gold_passage_ids: x.gold,
        relation: x.f.relation,
      })),
      meta: { doc_ids: docIds, splits: [...new Set(docIds.map(splitOf))].sort() },
    });
  }
  return out;
}
