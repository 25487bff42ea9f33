// `refrag index build`, `refrag retrieve` and `refrag eval retrieval`: the BM25 passage index of the RAG
// pipeline, built from `refrag datasets build` output (or any JSONL of {id, doc_id, title, text}).
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { readLines } from "../data/derived/build.js";
import type { Passage } from "../data/derived/passages.js";
import type { QaItem } from "../data/derived/qa.js";
import { evalRetrieval } from "../retrieval/eval.js";
import type { PassageIndex as PassageIndexClass } from "../retrieval/index.js";
import { buildConversationExamples, buildRagExamples, summaryExamples } from "../retrieval/rag_examples.js";
import type { SummaryPair } from "../data/derived/summaries.js";
import type { Conversation } from "../data/derived/conversations.js";
import { positiveInt } from "./args.js";
import { progressBar } from "./progress.js";

interface IndexBuildFlags {
  passages: string;
  out: string;
  overwrite: boolean;
  titleWeight?: string;
  model?: string;
  vectorsDtype: string;
}

/** LanceDB loads only in the commands that use the index (not in `refrag info` or training). */
async function indexModule(): Promise<{ PassageIndex: typeof PassageIndexClass }> {
  return import("../retrieval/index.js");
}

export function registerRetrievalCommands(program: Command): void {
  const index = program.command("index").description("the passage index (LanceDB, BM25 full-text search)");
  index
    .command("build")
    .description("index a JSONL of passages ({id, doc_id, title, text} per line)")
    .requiredOption("--passages <file>", "passages.jsonl from `refrag datasets build`")
    .requiredOption("--out <dir>", "index folder to create")
    .option("--overwrite", "replace an existing index folder", false)
    .option("--title-weight <n>", "times the title counts in the BM25 text (default: the index's, 8)")
    .option("--model <dir>", "also store every passage's chunk vectors from this REFRAG checkpoint's encoder")
    .option("--vectors-dtype <t>", "stored vector precision: f32 or bf16", "f32")
    .action(async (o: IndexBuildFlags) => {
      if (o.vectorsDtype !== "f32" && o.vectorsDtype !== "bf16")
        throw new Error(`--vectors-dtype must be f32 or bf16, got "${o.vectorsDtype}"`);
      const t0 = performance.now();
      const passages = readLines<Passage>(o.passages);
      const bar = progressBar("index");
      const idx = await (
        await indexModule()
      ).PassageIndex.build(o.out, passages, {
        overwrite: o.overwrite,
        titleWeight: o.titleWeight === undefined ? undefined : positiveInt("--title-weight", o.titleWeight),
        onProgress: (done, total) => bar.update(done, total, "passages"),
      });
      bar.stop();
      console.log(
        `indexed ${await idx.count()} passages in ${o.out} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      idx.close();
      if (o.model !== undefined) {
        const { storeIndexVectors } = await import("./vectors.js");
        await storeIndexVectors(o.out, passages, o.model, o.vectorsDtype === "bf16" ? "BF16" : "F32");
      }
    });

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
      }) => {
        const sources = [o.qa, o.conversations, o.summaries].filter((x) => x !== undefined);
        if (sources.length !== 1) throw new Error("give one of --qa, --conversations or --summaries <file>");
        if (o.summaries !== undefined) {
          let pairs = readLines<SummaryPair>(o.summaries);
          if (o.split !== undefined) pairs = pairs.filter((p) => p.meta?.split === o.split);
          if (pairs.length === 0)
            throw new Error(`no summary pairs${o.split ? ` in split ${o.split}` : ""} in ${o.summaries}`);
          const examples = summaryExamples(pairs);
          writeFileSync(o.out, examples.map((e) => JSON.stringify(e) + "\n").join(""));
          console.log(`${examples.length} summarisation examples -> ${o.out}`);
          return;
        }
        if (o.index === undefined) throw new Error("--index <dir> is needed to retrieve passages");
        const idx = await (await indexModule()).PassageIndex.open(o.index);
        const bar = progressBar("examples");
        const opts = {
          k: positiveInt("-k", o.k),
          forceGold: o.forceGold,
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
        writeFileSync(o.out, examples.map((e) => JSON.stringify(e) + "\n").join(""));
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
    .requiredOption("--index <dir>", "index folder from `refrag index build`")
    .option("-k <n>", "passages to return", "5")
    .option("--json", "print JSON lines instead of text", false)
    .action(async (question: string, o: { index: string; k: string; json: boolean }) => {
      const idx = await (await indexModule()).PassageIndex.open(o.index);
      const hits = await idx.search(question, positiveInt("-k", o.k));
      for (const [i, h] of hits.entries())
        console.log(
          o.json
            ? JSON.stringify(h)
            : `${i + 1}. [${h.score.toFixed(2)}] ${h.id} (${h.title})\n   ${h.text.slice(0, 300).replace(/\s+/g, " ")}`,
        );
      if (hits.length === 0) console.error("no passage matches any word of the question");
      idx.close();
    });
}

export function registerRetrievalEval(ev: Command): void {
  ev.command("retrieval")
    .description("recall@k of the passage index on QA items with gold passages")
    .requiredOption("--index <dir>", "index folder from `refrag index build`")
    .requiredOption("--qa <file>", "qa.jsonl from `refrag datasets build`")
    .option("--split <name>", "only items of this split (train, validation, test); default all")
    .option("--k <list>", "cut-offs", "1,5,10")
    .option("--out <file>", "also write the report as JSON")
    .action(async (o: { index: string; qa: string; split?: string; k: string; out?: string }) => {
      const ks = o.k.split(",").map((x) => positiveInt("--k", x.trim()));
      let items = readLines<QaItem>(o.qa);
      if (o.split !== undefined) items = items.filter((q) => q.meta?.split === o.split);
      if (items.length === 0)
        throw new Error(`no QA items${o.split ? ` in split ${o.split}` : ""} in ${o.qa}`);
      const idx = await (await indexModule()).PassageIndex.open(o.index);
      const bar = progressBar("eval");
      const report = await evalRetrieval(idx, items, ks, (d, t) => bar.update(d, t, "questions"));
      bar.stop();
      idx.close();
      console.log(`| questions | ${ks.map((k) => `recall@${k}`).join(" | ")} | MRR@${Math.max(...ks)} |`);
      console.log(`|---|${ks.map(() => "---").join("|")}|---|`);
      console.log(
        `| ${report.questions} | ${report.rows.map((r) => r.recall.toFixed(3)).join(" | ")} | ${report.mrr.toFixed(3)} |`,
      );
      if (o.out)
        writeFileSync(
          o.out,
          JSON.stringify({ index: o.index, qa: o.qa, split: o.split ?? "all", ...report }, null, 2) + "\n",
        );
    });
}
