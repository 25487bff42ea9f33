// `refrag eval qa`: RAG answers, summaries and conversations (the paper's Table 3): several models and
// passage cuts as rows, several example files as column groups, accuracy / F1 / ROUGE and TTFT per cell.
// `refrag eval perplexity` (Tables 1 and 2) is in eval_perplexity.ts, `eval reconstruction` (Table 11)
// in reconstruction.ts; `refrag eval retrieval` lives with the index commands.
import { basename } from "node:path";
import type { Command } from "commander";
import { readLines } from "../data/derived/build.js";
import {
  dataKind,
  isQaEvalRow,
  parseQaRows,
  qaMarkdown,
  qaSvg,
  qaTable,
  type QaDataSet,
} from "../eval/qa_table.js";
import { JsonlCache, reportPaths, writeReport } from "../eval/report.js";
import { RefragPipeline } from "../infer/pipeline.js";
import { SELECTION_MODES } from "../infer/selection.js";
import { loadRefrag } from "../models/load.js";
import type { RagExample } from "../retrieval/rag_examples.js";
import { Tokenizer } from "../tokenizer/index.js";
import { choice, nonNegInt, positiveInt, unitInterval } from "./args.js";
import { KV_CACHE_DTYPES } from "../models/llama.js";
import { registerCurvesCommand } from "./curves.js";
import { registerInductionEval } from "./induction.js";
import { registerPerplexityTable } from "./eval_perplexity.js";
import { collect, parseModelSpecs, weightsFingerprint } from "./models_arg.js";
import { progressBar } from "./progress.js";
import { registerReconstructionEval } from "./reconstruction.js";
import { registerRetrievalEval } from "./retrieval.js";

interface QaFlags {
  model: string[];
  data: string[];
  rows?: string;
  select: string;
  passages?: string;
  fraction: string;
  maxTokens: string;
  kvCache: string;
  limit?: string;
  title: string;
  out?: string;
}

/** `--data name=FILE` or `FILE` (named after the file without .jsonl). */
function dataSpecs(values: readonly string[]): { name: string; file: string }[] {
  const specs = values.map((v) => {
    const eq = v.indexOf("=");
    return eq > 0
      ? { name: v.slice(0, eq), file: v.slice(eq + 1) }
      : { name: basename(v).replace(/\.jsonl(\.gz)?$/, ""), file: v };
  });
  if (new Set(specs.map((s) => s.name)).size !== specs.length)
    throw new Error("--data: a name is given twice");
  return specs;
}

export function registerEvalCommands(program: Command): void {
  const ev = program
    .command("eval")
    .description(
      "evaluation: the paper's tables (perplexity, reconstruction, RAG QA), retrieval recall, curves",
    );
  registerRetrievalEval(ev);
  registerCurvesCommand(ev);
  registerInductionEval(ev);
  registerReconstructionEval(ev);
  registerPerplexityTable(ev);
  ev.command("qa")
    .description(
      "Table 3: RAG question answering, conversations and summaries; accuracy, F1, ROUGE, positions and TTFT per model, selection and passage count",
    )
    .option("--model <name=dir>", "REFRAG checkpoint with tokenizer.json (repeatable)", collect, [])
    .option("--data <name=file>", "RAG examples from `refrag index examples` (repeatable)", collect, [])
    .option(
      "--rows <list>",
      "rows as model:selection[:passages], e.g. refrag16:none:8,ft:all:1,ft:all:8,ft:all:0",
    )
    .option(
      "--select <list>",
      `without --rows: every model with each of ${SELECTION_MODES.join(",")}`,
      "none,all",
    )
    .option("--passages <n>", "without --rows: read each example's first n passages")
    .option("--fraction <p>", "fraction expanded by random / perplexity / policy", "0.1")
    .option("--max-tokens <n>", "answer token budget", "32")
    .option("--kv-cache <dtype>", `KV cache storage while answering: ${KV_CACHE_DTYPES.join(", ")}`, "f32")
    .option("--limit <n>", "only the first n examples of each file")
    .option("--title <text>", "the report's title", "Table 3 (miniature): RAG answers")
    .option("--out <file>", "report NAME.json (+ NAME.md, NAME.svg; NAME.partial.jsonl lets a run resume)")
    .action(async (o: QaFlags) => {
      const specs = parseModelSpecs("--model", o.model);
      if (specs.length === 0) throw new Error("give --model name=DIR");
      if (o.data.length === 0) throw new Error("give --data name=FILE");
      const fraction = unitInterval("--fraction", o.fraction);
      const names = specs.map((s) => s.name);
      const passages = o.passages === undefined ? "" : `:${nonNegInt("--passages", o.passages)}`;
      const rows = parseQaRows(
        o.rows ??
          names.flatMap((n) => o.select.split(",").map((m) => `${n}:${m.trim()}${passages}`)).join(","),
        names,
        fraction,
      );
      const data: QaDataSet[] = dataSpecs(o.data).map((d) => {
        let examples = readLines<RagExample>(d.file);
        if (o.limit !== undefined) examples = examples.slice(0, positiveInt("--limit", o.limit));
        if (examples.length === 0) throw new Error(`--data ${d.file}: no examples`);
        return { name: d.name, kind: dataKind(examples), examples };
      });
      const pipelines = new Map<string, RefragPipeline>();
      for (const s of specs)
        if (rows.some((r) => r.model === s.name))
          pipelines.set(
            s.name,
            new RefragPipeline(await loadRefrag(s.dir), Tokenizer.fromFile(`${s.dir}/tokenizer.json`)),
          );
      const cache = o.out === undefined ? undefined : new JsonlCache(reportPaths(o.out).partial, isQaEvalRow);
      if (cache !== undefined && cache.size > 0)
        console.error(`resuming: ${cache.size} finished cells in ${cache.path}`);
      const bar = progressBar("qa");
      const result = await qaTable(pipelines, rows, data, {
        maxNewTokens: positiveInt("--max-tokens", o.maxTokens),
        kvCache: choice("--kv-cache", o.kvCache, KV_CACHE_DTYPES),
        cache,
        fingerprints: new Map(specs.map((s) => [s.name, weightsFingerprint(s.dir)])),
        onProgress: (d, t) => bar.update(d, t, "answers"),
      });
      bar.stop();
      const preamble = [
        `Models: ${specs.map((s) => `${s.name} = ${s.dir}`).join("; ")}. Data: ${dataSpecs(o.data)
          .map((d) => `${d.name} = ${d.file}`)
          .join(
            "; ",
          )}${o.limit === undefined ? "" : ` (first ${o.limit} examples each)`}. Answers of at most ${o.maxTokens} tokens, greedy.`,
      ];
      const md = qaMarkdown(result, o.title, preamble);
      console.log(md);
      if (o.out !== undefined) {
        const written = await writeReport(o.out, {
          json: { title: o.title, command: process.argv.slice(2), models: specs, ...result },
          md,
          svg: qaSvg(result, o.title),
        });
        console.error(`wrote ${written.join(", ")}`);
      }
    });
}
