// The retrieval query for a conversation turn, one rule for the server, the CLI and example building:
// a follow-up ("and its population?") names its subject in an earlier turn, so the query is every
// question so far, oldest first. (Measured on the validation conversations, top 5: all questions 0.759,
// first + current 0.797 but brittle, previous + current 0.311; docs/NOTES.md, session 2.)
import type { Turn } from "../infer/prompt.js";

export function retrievalQuery(question: string, history: readonly Pick<Turn, "question">[] = []): string {
  return [...history.map((t) => t.question), question].join(" ");
}
