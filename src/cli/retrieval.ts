// `refrag index build|vectors|add|examples`, `refrag retrieve` and `refrag eval retrieval`: the passage store
// of the RAG pipeline (a LanceDB folder or postgres://…), built from `refrag datasets build` output (or any
// JSONL of {id, doc_id, title, text}), with the chunk vectors and dense embeddings stored beside the passages.
import { readFileSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import type { Command } from "commander";
import { readLines } from "../data/derived/build.js";
import type { Passage } from "../data/derived/passages.js";
import type { QaItem } from "../data/derived/qa.js";
import { evalRetrieval } from "../retrieval/eval.js";
import { DEFAULT_TITLE_WEIGHT, PassageIndex } from "../retrieval/index.js";
import { buildConversationExamples, buildRagExamples, summaryExamples } from "../retrieval/rag_examples.js";
import type { SummaryPair } from "../data/derived/summaries.js";
import type { Conversation } from "../data/derived/conversations.js";
import { chunkEncoderFor, storeDerived } from "../rag/vectors.js";
import {
  encoderTokenizerPath,
  loadEmbedder,
  RETRIEVAL_MODES,
  type EncoderEmbedder,
  retriever,
  type RetrievalMode,
} from "../retrieval/dense.js";
import { isPostgresUrl, openStore, type PassageStore, type VectorDtype } from "../store/index.js";
import { ingest, type ChunkEncoder } from "../store/ingest.js";
import { Tokenizer } from "../tokenizer/index.js";
import { choice, nonNegInt, nonNegNumber, positiveInt } from "./args.js";
import { progressBar } from "./progress.js";

export function registerRetrievalCommands(program: Command): void {
  const index = program.command("index").description("the passage index (LanceDB, BM25 full-text search)");
  index
    .command("build")
    .description("index a JSONL of passages ({id, doc_id, title, text} per line) in a new store")
    .requiredOption("--passages <file>", "passages.jsonl from `refrag datasets build`")
    .option("--out <dir>", "LanceDB index folder to create")
    .option("--store <spec>", "instead of --out: a postgres://user:pass@host/db[?schema=name] store")
    .option("--overwrite", "replace an existing index (folder, or the store's schema)", false)
    .option("--title-weight <n>", "times the title counts in full-text ranking", String(DEFAULT_TITLE_WEIGHT))
    .option("--model <dir>", "also store every passage's chunk vectors from this REFRAG checkpoint's encoder")
    .option("--embedder <dir>", "also store every passage's dense embedding from this encoder (dense stage)")
    .option("--vectors-dtype <t>", "stored vector precision: f32 or bf16", "f32")
    .action(
      async (o: {
        passages: string;
        out?: string;
        store?: string;
        overwrite: boolean;
        titleWeight: string;
        model?: string;
        embedder?: string;
        vectorsDtype: string;
      }) => {
        const dtype = parseDtype(o.vectorsDtype);
        const t0 = performance.now();
        const passages = readLines<Passage>(o.passages);
        const titleWeight = positiveInt("--title-weight", o.titleWeight);
        const target = o.store ?? o.out;
        if (target === undefined || (o.store !== undefined && o.out !== undefined))
          throw new Error("give one of --out <dir> or --store <spec>");
        // Models load before anything is written (a wrong path should not cost a build).
        const derived = await loadDerived(o);
        const bar = progressBar("index");
        const onProgress = (done: number, total: number) => bar.update(done, total, "passages");
        let idx: PassageIndex;
        if (isPostgresUrl(target)) {
          const store = await buildPostgres(target, passages, {
            overwrite: o.overwrite,
            titleWeight,
            onProgress,
          });
          idx = PassageIndex.fromStore(store);
        } else
          idx = await PassageIndex.build(target, passages, {
            overwrite: o.overwrite,
            titleWeight,
            onProgress,
          });
        bar.stop();
        console.log(
          `indexed ${await idx.count()} passages in ${idx.dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
        try {
          if (derived !== null) await attachDerived(idx.store, passages, derived, dtype);
        } finally {
          await idx.close();
        }
      },
    );

  index
    .command("vectors")
    .description(
      "compute and store chunk vectors (--model) and/or dense embeddings (--embedder) of passages a store already holds",
    )
    .requiredOption("--store <spec>", "LanceDB folder or postgres:// URL")
    .requiredOption(
      "--passages <file>",
      "the passages (JSONL of {id, title, text}); changed or missing ones are skipped",
    )
    .option("--model <dir>", "REFRAG checkpoint: store each passage's chunk vectors")
    .option("--embedder <dir>", "encoder checkpoint (dense stage): store dense embeddings")
    .option("--vectors-dtype <t>", "stored vector precision: f32 or bf16", "f32")
    .action(
      async (o: {
        store: string;
        passages: string;
        model?: string;
        embedder?: string;
        vectorsDtype: string;
      }) => {
        const dtype = parseDtype(o.vectorsDtype);
        const derived = await loadDerived(o);
        if (derived === null) throw new Error("give --model <dir> and/or --embedder <dir>");
        const store = await openStore(o.store, { migrate: true });
        try {
          await attachDerived(store, readLines<Passage>(o.passages), derived, dtype);
        } finally {
          await store.close();
        }
      },
    );

  index
    .command("add")
    .description(
      "add or replace documents in a live store ({id, title, text, source?, meta?} per line), in one transaction",
    )
    .argument("<file>", "JSONL of documents")
    .requiredOption("--store <spec>", "LanceDB folder or postgres:// URL")
    .option("--model <dir>", "REFRAG checkpoint: store each passage's chunk vectors")
    .option("--embedder <dir>", "encoder checkpoint (dense stage): store dense embeddings")
    .option("--dtype <F32|BF16>", "storage of chunk vectors", "BF16")
    .option("--max-words <n>", "words per passage", "200")
    .option("--max-chars <n>", "longest document text accepted", "5000000")
    .action(
      async (
        file: string,
        o: {
          store: string;
          model?: string;
          embedder?: string;
          dtype: string;
          maxWords: string;
          maxChars: string;
        },
      ) => {
        if (o.dtype !== "F32" && o.dtype !== "BF16")
          throw new Error(`--dtype must be F32 or BF16, got ${o.dtype}`);
        const chunkEncoder = o.model === undefined ? null : await loadChunkEncoder(o.model);
        const embedder = o.embedder === undefined ? null : await loadEmbedder(o.embedder);
        const store = await openStore(o.store, { migrate: true });
        try {
          const bar = progressBar("add");
          const report = await ingest(store, readFileSync(file), {
            chunkEncoder,
            embedder,
            dtype: o.dtype as VectorDtype,
            maxWords: positiveInt("--max-words", o.maxWords),
            maxChars: positiveInt("--max-chars", o.maxChars),
            onProgress: (d, t, what) => bar.update(d, t, what),
          });
          bar.stop();
          for (const f of report.failures)
            console.error(
              `${file}:${f.line}: ${f.id === null ? "" : `document ${f.id}: `}${f.error} (left out)`,
            );
          console.log(
            `${report.documents} documents (${report.passages} passages, ${report.removed} old passages removed) written to ${store.location}; ${report.failures.length} failed`,
          );
          if (report.failures.length > 0) process.exitCode = 2;
        } catch (e) {
          throw new Error(`nothing was written: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        } finally {
          await store.close();
        }
      },
    );

  index
    .command("examples")
    .description(
      "RAG examples (JSONL): each QA item, or each conversation turn with its history, with the passages the index retrieves; or summarisation pairs",
    )
    .option("--index <dir>", "index folder from `refrag index build` (for --qa and --conversations)")
    .requiredOption(
      "--out <file>",
      "output JSONL of {id, question, passages, answers, gold_in_context, history?}",
    )
    .option("--qa <file>", "qa.jsonl from `refrag datasets build`")
    .option("--conversations <file>", "conversations.jsonl from `refrag datasets build` (instead of --qa)")
    .option(
      "--summaries <file>",
      "summaries.jsonl from `refrag datasets build`: the page itself is the context",
    )
    .option("--split <name>", "only items of this split (train, validation, test)")
    .option("-k <n>", "passages per question", "5")
    .option("--force-gold", "put the gold passage in when retrieval missed it (for training sets)", false)
    .option("--weak <n>", "weak retriever: k passages drawn at random from the top n (Table 3 uses 200)")
    .option("--seed <n>", "the weak retriever's seed", "1")
    .action(
      async (o: {
        index?: string;
        out: string;
        qa?: string;
        conversations?: string;
        summaries?: string;
        split?: string;
        k: string;
        forceGold: boolean;
        weak?: string;
        seed: string;
      }) => {
        const sources = [o.qa, o.conversations, o.summaries].filter((x) => x !== undefined);
        if (sources.length !== 1) throw new Error("give one of --qa, --conversations or --summaries <file>");
        if (o.summaries !== undefined) {
          let pairs = readLines<SummaryPair>(o.summaries);
          if (o.split !== undefined) pairs = pairs.filter((p) => p.meta?.split === o.split);
          if (pairs.length === 0)
            throw new Error(`no summary pairs${o.split ? ` in split ${o.split}` : ""} in ${o.summaries}`);
          const examples = summaryExamples(pairs);
          writeFileAtomicSync(o.out, examples.map((e) => JSON.stringify(e) + "\n").join(""));
          console.log(`${examples.length} summarisation examples -> ${o.out}`);
          return;
        }
        if (o.index === undefined) throw new Error("--index <dir> is needed to retrieve passages");
        const idx = await PassageIndex.open(o.index);
        const bar = progressBar("examples");
        const opts = {
          k: positiveInt("-k", o.k),
          forceGold: o.forceGold,
          ...(o.weak === undefined
            ? {}
            : { weak: { pool: positiveInt("--weak", o.weak), seed: nonNegInt("--seed", o.seed) } }),
          onProgress: (d: number, t: number) => bar.update(d, t, o.qa ? "questions" : "conversations"),
        };
        let examples;
        if (o.qa !== undefined) {
          let items = readLines<QaItem>(o.qa);
          if (o.split !== undefined) items = items.filter((q) => q.meta?.split === o.split);
          if (items.length === 0)
            throw new Error(`no QA items${o.split ? ` in split ${o.split}` : ""} in ${o.qa}`);
          examples = await buildRagExamples(items, idx, opts);
        } else {
          let convs = readLines<Conversation>(o.conversations!);
          if (o.split !== undefined) convs = convs.filter((c) => c.meta?.splits?.includes(o.split as never));
          if (convs.length === 0)
            throw new Error(`no conversations${o.split ? ` in split ${o.split}` : ""} in ${o.conversations}`);
          examples = await buildConversationExamples(convs, idx, opts);
        }
        bar.stop();
        idx.close();
        writeFileAtomicSync(o.out, examples.map((e) => JSON.stringify(e) + "\n").join(""));
        const gold = examples.filter((e) => e.gold_in_context).length;
        console.log(
          `${examples.length} examples, gold passage in context for ${gold} (${((100 * gold) / examples.length).toFixed(1)}%) -> ${o.out}`,
        );
      },
    );

  program
    .command("retrieve")
    .description("the top-k passages for a question")
    .argument("<question>")
    .option("--index <spec>", "index folder from `refrag index build`, or a postgres:// store")
    .option("--store <spec>", "same as --index")
    .option("--mode <m>", `retrieval: ${RETRIEVAL_MODES.join(", ")}`, "bm25")
    .option("--embedder <dir>", "encoder checkpoint for dense and hybrid retrieval")
    .option("--dense-weight <w>", "hybrid: weight of the dense list in rank fusion (full text: 1)", "1")
    .option("-k <n>", "passages to return", "5")
    .option("--json", "print JSON lines instead of text", false)
    .action(
      async (
        question: string,
        o: {
          index?: string;
          store?: string;
          mode: string;
          embedder?: string;
          denseWeight: string;
          k: string;
          json: boolean;
        },
      ) => {
        const mode = parseMode(o.mode);
        const denseWeight = nonNegNumber("--dense-weight", o.denseWeight);
        const embedder = o.embedder === undefined ? null : await loadEmbedder(o.embedder);
        const store = await openStore(storeSpec(o));
        try {
          const hits = await retriever(store, mode, embedder, { denseWeight })(
            question,
            positiveInt("-k", o.k),
          );
          for (const [i, h] of hits.entries())
            console.log(
              o.json
                ? JSON.stringify(h)
                : `${i + 1}. [${h.score.toFixed(4)}] ${h.id} (${h.title})\n   ${h.text.slice(0, 300).replace(/\s+/g, " ")}`,
            );
          if (hits.length === 0) console.error("no passage matches the question");
        } finally {
          await store.close();
        }
      },
    );
}

function storeSpec(o: { index?: string; store?: string }): string {
  const spec = o.store ?? o.index;
  if (spec === undefined) throw new Error("give --index <dir> or --store <spec>");
  return spec;
}

function parseMode(m: string): RetrievalMode {
  return choice("--mode", m, RETRIEVAL_MODES);
}

function parseDtype(t: string): VectorDtype {
  if (t !== "f32" && t !== "bf16") throw new Error(`--vectors-dtype must be f32 or bf16, got "${t}"`);
  return t === "bf16" ? "BF16" : "F32";
}

async function loadChunkEncoder(dir: string): Promise<ChunkEncoder> {
  const { loadRefrag } = await import("../models/load.js");
  return chunkEncoderFor(await loadRefrag(dir), Tokenizer.fromFile(encoderTokenizerPath(dir)));
}

interface Derived {
  encoder: ChunkEncoder | null;
  embedder: EncoderEmbedder | null;
}

async function loadDerived(o: { model?: string; embedder?: string }): Promise<Derived | null> {
  if (o.model === undefined && o.embedder === undefined) return null;
  return {
    encoder: o.model === undefined ? null : await loadChunkEncoder(o.model),
    embedder: o.embedder === undefined ? null : await loadEmbedder(o.embedder),
  };
}

/** Computes and stores chunk vectors and/or embeddings of stored passages (one transaction per batch). */
async function attachDerived(
  store: PassageStore,
  passages: readonly Passage[],
  d: Derived,
  dtype: VectorDtype,
): Promise<void> {
  const t0 = performance.now();
  const what = [
    d.encoder ? `chunk vectors (${dtype}, k = ${d.encoder.k}, encoder ${d.encoder.id})` : null,
    d.embedder ? `embeddings (${d.embedder.id})` : null,
  ].filter((x) => x !== null);
  const bar = progressBar("vectors");
  const r = await storeDerived(store, passages, {
    encoder: d.encoder,
    embedder: d.embedder,
    dtype,
    onProgress: (done, total) => bar.update(done, total, "passages"),
  });
  bar.stop();
  console.log(
    `stored ${what.join(" and ")} for ${r.attached} of ${r.passages} passages${d.encoder ? ` (${r.chunks} chunks)` : ""} in ${store.location} (${((performance.now() - t0) / 1000).toFixed(1)} s)${r.skipped > 0 ? `; ${r.skipped} skipped (not stored, or changed)` : ""}`,
  );
}

/** Builds a Postgres store from passages: one transaction (replacing the schema with --overwrite). */
async function buildPostgres(
  spec: string,
  passages: readonly Passage[],
  o: { overwrite: boolean; titleWeight: number; onProgress: (d: number, t: number) => void },
): Promise<PassageStore> {
  const { PostgresStore, parseStoreUrl } = await import("../store/postgres.js");
  const { pgClient } = await import("../store/sql.js");
  const { url, schema } = parseStoreUrl(spec);
  if (o.overwrite) {
    const db = await pgClient(url);
    await PostgresStore.drop(db, schema).finally(() => db.close());
  }
  const store = await PostgresStore.connect(spec, { titleWeight: o.titleWeight });
  const n = await store.count();
  if (n > 0 || store.titleWeight !== o.titleWeight) {
    await store.close();
    throw new Error(
      `index build: ${store.location} already holds a store (${n} passages, title weight ${store.titleWeight}); pass --overwrite to replace it or use \`refrag index add\``,
    );
  }
  const byDoc = new Map<string, Passage[]>();
  for (const p of passages) (byDoc.get(p.doc_id) ?? byDoc.set(p.doc_id, []).get(p.doc_id)!).push(p);
  await store.upsertDocuments(
    [...byDoc].map(([docId, ps]) => ({ docId, passages: ps.map((passage) => ({ passage })) })),
    { onProgress: o.onProgress },
  );
  return store;
}

export function registerRetrievalEval(ev: Command): void {
  ev.command("retrieval")
    .description("recall@k and MRR of BM25, dense and hybrid retrieval on QA items with gold passages")
    .option("--index <spec>", "index folder from `refrag index build`, or a postgres:// store")
    .option("--store <spec>", "same as --index")
    .requiredOption("--qa <file>", "qa.jsonl from `refrag datasets build`")
    .option(
      "--split <list>",
      "only items of these splits (e.g. validation,test), one table row each; default all",
    )
    .option("--embedder <dir>", "encoder checkpoint (dense stage) whose embeddings the store holds")
    .option("--modes <list>", "retrieval modes", RETRIEVAL_MODES.join(","))
    .option(
      "--dense-weight <list>",
      "hybrid: weight of the dense list in reciprocal rank fusion (full text: 1); a list gives a row each (tune on validation)",
      "1",
    )
    .option("--k <list>", "cut-offs", "1,5,10")
    .option("--out <file>", "also write the report as JSON")
    .action(
      async (o: {
        index?: string;
        store?: string;
        qa: string;
        split?: string;
        embedder?: string;
        modes: string;
        denseWeight: string;
        k: string;
        out?: string;
      }) => {
        const ks = o.k.split(",").map((x) => positiveInt("--k", x.trim()));
        const denseWeights = o.denseWeight.split(",").map((x) => nonNegNumber("--dense-weight", x.trim()));
        const modes = o.modes.split(",").map((m) => parseMode(m.trim()));
        const all = readLines<QaItem>(o.qa);
        const splits = o.split === undefined ? [undefined] : o.split.split(",").map((x) => x.trim());
        const embedder = o.embedder === undefined ? null : await loadEmbedder(o.embedder);
        const spec = storeSpec(o);
        const store = await openStore(spec);
        const rows: Record<string, unknown>[] = [];
        try {
          if (embedder !== null && !(await store.embedders()).some((e) => e.id === embedder.id))
            throw new Error(
              `${store.location} holds no embeddings of ${embedder.id} (add them with \`refrag index add --embedder ${o.embedder}\`)`,
            );
          const kmax = Math.max(...ks);
          console.log(
            `| split | retrieval | questions | ${ks.map((k) => `recall@${k}`).join(" | ")} | MRR@${kmax} |`,
          );
          console.log(`|---|---|---|${ks.map(() => "---").join("|")}|---|`);
          for (const split of splits) {
            const items = split === undefined ? all : all.filter((q) => q.meta?.split === split);
            if (items.length === 0)
              throw new Error(`no QA items${split ? ` in split ${split}` : ""} in ${o.qa}`);
            // One row per mode; hybrid once per dense weight.
            const runs = modes.flatMap((mode): { mode: RetrievalMode; w: number | null }[] =>
              mode === "hybrid" ? denseWeights.map((w) => ({ mode, w })) : [{ mode, w: null }],
            );
            for (const { mode, w } of runs) {
              const label =
                w === null || (denseWeights.length === 1 && w === 1) ? mode : `${mode} (dense ×${w})`;
              if (mode !== "bm25" && embedder === null) {
                console.log(
                  `| ${split ?? "all"} | ${label} | — | no embedder (train one with the dense stage, then pass --embedder) |`,
                );
                continue;
              }
              const search = retriever(store, mode, embedder, { denseWeight: w ?? undefined });
              const bar = progressBar(`eval ${label}`);
              const report = await evalRetrieval({ search }, items, ks, (d, t) =>
                bar.update(d, t, "questions"),
              );
              bar.stop();
              console.log(
                `| ${split ?? "all"} | ${label} | ${report.questions} | ${report.rows.map((r) => r.recall.toFixed(3)).join(" | ")} | ${report.mrr.toFixed(3)} |`,
              );
              rows.push({ split: split ?? "all", mode, denseWeight: w, ...report });
            }
          }
        } finally {
          await store.close();
        }
        if (o.out)
          writeFileAtomicSync(
            o.out,
            JSON.stringify(
              { store: store.location, qa: o.qa, embedder: embedder?.id ?? null, rows },
              null,
              2,
            ) + "\n",
          );
      },
    );
}
