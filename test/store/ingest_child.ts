// Child process of the SIGKILL test: writes one large batch to a store (LanceDB folder or postgres:// URL)
// and prints "progress DONE TOTAL" from inside the transaction, pausing so the parent can kill it there.
import { openStore } from "../../src/store/index.js";
import type { DocumentRecord } from "../../src/store/types.js";

const [spec, n] = process.argv.slice(2);
// The test runner also loads every file under dist/test/ on its own: without arguments there is nothing to do.
if (spec === undefined) process.exit(0);
const docs: DocumentRecord[] = Array.from({ length: Number(n) }, (_, i) => ({
  docId: `kill${i}`,
  passages: [
    {
      passage: {
        id: `kill${i}#0`,
        doc_id: `kill${i}`,
        title: `Killed ${i}`,
        text: `sigkill batch passage ${i}`,
      },
      embeddings: { e1: Float32Array.from([1, i % 7, 2, 3]) },
      chunkVectors: [
        { encoderId: "enc", k: 16, dtype: "BF16", rows: 2, cols: 4, data: new Float32Array(8).fill(i) },
      ],
    },
  ],
}));
const store = await openStore(spec, { migrate: true });
await store.upsertDocuments(docs, {
  onProgress: async (done, total) => {
    console.log(`progress ${done} ${total}`);
    await new Promise((r) => setTimeout(r, 300));
  },
});
console.log("committed");
await store.close();
