// `refrag eval perplexity`: the paper's Table 1 for a REFRAG checkpoint: log-perplexity of o continuation
// tokens after s context tokens, per long-document domain, reading the context in full, as chunk vectors,
// not at all, or as its last ⌈s/k⌉ tokens. `refrag eval qa`: RAG answers and summaries per selection
// mode. (`refrag eval retrieval` lives with the index commands.)
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { readLines } from "../data/derived/build.js";
import { loadCorpus } from "../data/derived/docs.js";
import { longDocText, type DomainReport } from "../data/derived/domains.js";
import { sampleTextWindows } from "../data/derived/sampler.js";
import {
  checkLengths,
  CONTEXT_MODES,
  perplexityTable,
  type ContextMode,
  type ContextWindow,
} from "../eval/perplexity.js";
import { evalQa } from "../eval/qa.js";
import { RefragPipeline } from "../infer/pipeline.js";
import { SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import { loadRefrag } from "../models/load.js";
import type { RagExample } from "../retrieval/rag_examples.js";
import { Tokenizer } from "../tokenizer/index.js";
import { nonNegInt, positiveInt, unitInterval } from "./args.js";
import { progressBar } from "./progress.js";
import { registerRetrievalEval } from "./retrieval.js";
import { registerCurvesCommand } from "./curves.js";
import { registerReconstructionEval } from "./reconstruction.js";

interface Flags {
  model: string;
  corpus: string[];
  domains: string;
  s: string;
  o: string;
  windows: string;
  length: string;
  modes: string;
  seed: string;
  out?: string;
}

export function registerEvalCommands(program: Command): void {
  const ev = program
    .command("eval")
    .description("evaluation: perplexity tables, retrieval recall, RAG QA and summaries");
  registerRetrievalEval(ev);
  registerCurvesCommand(ev);
  registerReconstructionEval(ev);
  ev.command("qa")
    .description("RAG question answering: accuracy, positions read and TTFT per selection mode")
    .requiredOption("--model <dir>", "REFRAG checkpoint folder (with tokenizer.json)")
    .requiredOption("--data <file>", "RAG examples from `refrag index examples`")
    .option("--select <list>", `selection modes: ${SELECTION_MODES.join(",")}`, "none,all")
    .option("--fraction <p>", "fraction expanded by random / perplexity / policy", "0.1")
    .option("--max-tokens <n>", "answer token budget", "32")
    .option("--limit <n>", "only the first n examples")
    .option("--out <file>", "also write the rows as JSON")
    .action(
      async (o: {
        model: string;
        data: string;
        select: string;
        fraction: string;
        maxTokens: string;
        limit?: string;
        out?: string;
      }) => {
        const modes = o.select.split(",").map((m) => m.trim());
        for (const m of modes)
          if (!SELECTION_MODES.includes(m as SelectionMode))
            throw new Error(`--select: unknown mode "${m}" (one of ${SELECTION_MODES.join(", ")})`);
        const fraction = unitInterval("--fraction", o.fraction);
        let examples = readLines<RagExample>(o.data);
        if (o.limit !== undefined) examples = examples.slice(0, positiveInt("--limit", o.limit));
        const model = await loadRefrag(o.model);
        const pipeline = new RefragPipeline(model, Tokenizer.fromFile(`${o.model}/tokenizer.json`));
        const bar = progressBar("qa");
        const rows = await evalQa(
          pipeline,
          examples,
          modes.map((mode) => ({ mode: mode as SelectionMode, fraction })),
          {
            maxNewTokens: positiveInt("--max-tokens", o.maxTokens),
            onProgress: (d, t) => bar.update(d, t, "answers"),
          },
        );
        bar.stop();
        console.log(
          "| selection | examples | skipped (too long) | accuracy | accuracy (gold in context) | ROUGE-L | positions | context tokens | TTFT ms |",
        );
        console.log("|---|---|---|---|---|---|---|---|---|");
        const f = (x: number | null, digits: number) => (x === null ? "-" : x.toFixed(digits));
        for (const r of rows)
          console.log(
            `| ${r.mode}${r.fraction === null ? "" : ` p=${r.fraction}`} | ${r.examples} | ${r.skipped} | ${f(r.accuracy, 3)} | ${f(r.accuracyGoldInContext, 3)} | ${f(r.rougeL, 3)} | ${f(r.meanPositions, 0)} | ${f(r.meanContextTokens, 0)} | ${f(r.meanTtftMs, 1)} |`,
          );
        if (o.out)
          writeFileSync(o.out, JSON.stringify({ model: o.model, data: o.data, rows }, null, 2) + "\n");
      },
    );
  ev.command("perplexity")
    .description(
      "log-perplexity of o continuation tokens after s context tokens, per domain and context mode",
    )
    .requiredOption("--model <dir>", "REFRAG checkpoint folder (with tokenizer.json)")
    .requiredOption("--corpus <paths...>", "JSONL corpus files or folders")
    .requiredOption("--domains <file>", "domains.json from `refrag datasets build`")
    .option("--s <n>", "context tokens", "2048")
    .option("--o <n>", "continuation tokens", "256")
    .option("--windows <n>", "windows per document", "2")
    .option("--length <n>", "which long-document list to use (4096 or 16384)", "4096")
    .option("--modes <list>", `context modes: ${CONTEXT_MODES.join(",")}`, CONTEXT_MODES.join(","))
    .option("--seed <n>", "window sampling seed", "1")
    .option("--out <file>", "write the rows as JSON")
    .action(async (o: Flags) => {
      const modes = o.modes.split(",") as ContextMode[];
      for (const m of modes)
        if (!CONTEXT_MODES.includes(m))
          throw new Error(`--modes: unknown mode "${m}" (${CONTEXT_MODES.join(", ")})`);
      const s = positiveInt("--s", o.s);
      const n = positiveInt("--o", o.o);
      const model = await loadRefrag(o.model);
      // Before any window is read: every mode must fit the decoder's window.
      checkLengths(model, s, n, modes);
      const tok = Tokenizer.fromFile(`${o.model}/tokenizer.json`);
      const domains = JSON.parse(readFileSync(o.domains, "utf8")) as DomainReport[];
      if (!Array.isArray(domains))
        throw new Error(`${o.domains}: expected the list written by \`refrag datasets build\``);
      const corpus = loadCorpus(o.corpus);
      const byId = new Map([...corpus.values()].flat().map((d) => [d.id, d]));
      const windows = new Map<string, ContextWindow[]>();
      for (const d of domains) {
        const list = d.lengths.find((l) => l.minTokens === positiveInt("--length", o.length));
        if (list === undefined)
          throw new Error(`${o.domains}: domain ${d.name} has no ${o.length}-token list`);
        const ws: ContextWindow[] = [];
        for (const doc of list.docs)
          ws.push(
            ...sampleTextWindows(tok, longDocText(doc, byId), {
              s,
              o: n,
              count: positiveInt("--windows", o.windows),
              seed: nonNegInt("--seed", o.seed),
            }),
          );
        windows.set(`${d.name} (${d.role})`, ws);
      }
      const rows = perplexityTable(
        model,
        windows,
        modes.map((m) => ({ name: m, mode: m })),
        (l) => console.error(l),
      );
      const domainsSeen = [...new Set(rows.map((r) => r.domain))];
      console.log(`\nlog-perplexity of ${n} tokens after ${s} context tokens (k = ${model.chunkSize})\n`);
      console.log(["mode".padEnd(8), ...domainsSeen.map((d) => d.padStart(28))].join(""));
      for (const m of modes)
        console.log(
          [
            m.padEnd(8),
            ...domainsSeen.map((d) =>
              (rows.find((r) => r.domain === d && r.mode === m)?.logPpl.toFixed(4) ?? "").padStart(28),
            ),
          ].join(""),
        );
      if (o.out !== undefined)
        writeFileSync(
          o.out,
          JSON.stringify({ model: o.model, s, o: n, k: model.chunkSize, rows }, null, 2) + "\n",
        );
    });
}
