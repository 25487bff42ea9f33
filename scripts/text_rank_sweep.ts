// Postgres full-text ranking variants side by side (src/store/postgres.ts, TextRanking) on one split of the
// QA items: the choice of the default is made on the validation questions, never on test. Ranking is
// query-time only, so one store serves every variant.
//   node dist/scripts/text_rank_sweep.js --store postgres://… --qa qa.jsonl [--split validation]
import { parseArgs } from "node:util";
import { readLines } from "../src/data/derived/build.js";
import type { QaItem } from "../src/data/derived/qa.js";
import { evalRetrieval } from "../src/retrieval/eval.js";
import { PostgresStore, type TextRanking } from "../src/store/postgres.js";

const { values } = parseArgs({
  options: {
    store: { type: "string" },
    qa: { type: "string" },
    split: { type: "string", default: "validation" },
    variants: { type: "string", default: "cd:0,idf:0,idf:1,idf:2,idf:8,idf:32" },
  },
});
if (values.store === undefined || values.qa === undefined) throw new Error("give --store and --qa");
const items = readLines<QaItem>(values.qa).filter((q) => q.meta?.split === values.split);
if (items.length === 0) throw new Error(`no QA items in split ${values.split}`);
console.log(`| ranking | normalization | questions | recall@1 | recall@5 | recall@10 | MRR@10 |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const v of values.variants.split(",")) {
  const [method, norm] = v.split(":");
  const ranking = { method, normalization: Number(norm) } as TextRanking;
  const store = await PostgresStore.connect(values.store, { migrate: false, textRanking: ranking });
  try {
    const r = await evalRetrieval({ search: (q, k) => store.searchText(q, k) }, items, [1, 5, 10]);
    console.log(
      `| ${method} | ${norm} | ${r.questions} | ${r.rows.map((x) => x.recall.toFixed(3)).join(" | ")} | ${r.mrr.toFixed(3)} |`,
    );
  } finally {
    await store.close();
  }
}
