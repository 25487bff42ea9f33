// `refrag eval perplexity`: the paper's Tables 1 and 2 in miniature (src/eval/ppl_table.ts). Several named
// models in one table, the same seeded windows for every row, a list of continuation lengths scored from
// one forward pass, selection rows at an effective compression rate, gains, and a report (JSON, markdown,
// SVG). Table 1: s = 2048, o = 128,256,512 on the 4,096-token documents. Table 2: s = 10240,20480 on the
// 16,384-token documents with --beyond-window (the full-context row reads past its window on purpose).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadCorpus } from "../data/derived/docs.js";
import type { DomainReport } from "../data/derived/domains.js";
import { perplexityMarkdown, perplexitySvg } from "../eval/ppl_report.js";
import {
  checkRowPositions,
  perplexityRows,
  planRows,
  type RowPlan,
  type TableModel,
} from "../eval/ppl_table.js";
import { JsonlRowCache, reportPaths, writeReport } from "../eval/report.js";
import { domainDocuments, tableWindows } from "../eval/windows.js";
import { SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import { RefragModel } from "../models/refrag.js";
import { nonNegInt, positiveInt, positiveNumber } from "./args.js";
import {
  collect,
  listOf,
  loadAnyModel,
  parseModelSpecs,
  sharedTokenizer,
  type ModelSpec,
} from "./models_arg.js";

interface Flags {
  model: string[];
  baseline?: string;
  baselineName: string;
  baselineRows: string;
  last?: string;
  rate?: string;
  select: string;
  expandModel?: string;
  rawFrom?: string;
  corpus: string[];
  domains: string;
  length: string;
  s: string;
  o: string;
  windows: string;
  maxWindows: string;
  minDocs: string;
  seed: string;
  beyondWindow: boolean;
  title?: string;
  out?: string;
}

const RAW_READS = ["none", "full", "last"] as const;

export function registerPerplexityTable(ev: Command): void {
  ev.command("perplexity")
    .description(
      "Tables 1 and 2: log-perplexity of the first o continuation tokens after s context tokens, per domain, for several models and ways of reading the context; JSON + markdown + SVG",
    )
    .option(
      "--model <name=dir>",
      "a REFRAG checkpoint read through its chunk vectors (repeatable)",
      collect,
      [],
    )
    .option("--baseline <dir>", "plain decoder (LLaMA folder) for the no / full / last-n context rows")
    .option("--baseline-name <name>", "the baseline's name in the table", "llama")
    .option(
      "--baseline-rows <list>",
      "raw rows of the baseline and of --raw-from: none,full,last",
      "none,full,last",
    )
    .option("--last <list>", "token counts of the last-n rows (default: s/16 and s/8 of the first s)")
    .option(
      "--rate <r>",
      "selection rows: --expand-model expanding chunks at this effective compression rate",
    )
    .option(
      "--select <list>",
      "selection modes of the --rate rows",
      "policy,perplexity-desc,perplexity-asc,random",
    )
    .option(
      "--expand-model <name>",
      "the model of the --rate rows (default: the first with k = 16, else the first)",
    )
    .option(
      "--raw-from <name>",
      "a REFRAG model whose own decoder also reads the raw rows (default: --expand-model's; 'none' for no such rows)",
    )
    .requiredOption("--corpus <paths...>", "JSONL corpus files or folders")
    .requiredOption("--domains <file>", "domains.json from `refrag datasets build`")
    .option("--length <n>", "which long-document list to use (4096 or 16384)", "4096")
    .option("--s <list>", "context tokens (a list for Table 2: 10240,20480)", "2048")
    .option("--o <list>", "continuation lengths, scored from one continuation of the longest", "128,256,512")
    .option("--windows <n>", "windows per document", "2")
    .option("--max-windows <n>", "at most this many windows per domain", "8")
    .option("--min-docs <n>", "documents a domain needs at s + o before s is lowered", "2")
    .option("--seed <n>", "window and selection seed", "1")
    .option("--beyond-window", "let full-context rows read past max_position_embeddings (Table 2)", false)
    .option("--title <text>", "the report's title")
    .option("--out <file>", "report NAME.json (+ NAME.md, NAME.svg; NAME.partial.jsonl lets a run resume)")
    .action(async (o: Flags) => {
      const specs = parseModelSpecs("--model", o.model);
      const baseline: ModelSpec[] =
        o.baseline === undefined ? [] : parseModelSpecs("--baseline", [`${o.baselineName}=${o.baseline}`]);
      if (specs.some((s) => s.name === o.baselineName) && o.baseline !== undefined)
        throw new Error(`--baseline-name ${o.baselineName} is also a --model name`);
      if (specs.length === 0 && baseline.length === 0)
        throw new Error("give --model name=DIR and/or --baseline DIR");
      const sList = listOf("--s", o.s, positiveInt);
      const os = [...new Set(listOf("--o", o.o, positiveInt))].sort((a, b) => a - b);
      const reads = listOf("--baseline-rows", o.baselineRows, (f, v) => {
        if (!(RAW_READS as readonly string[]).includes(v))
          throw new Error(`${f}: unknown row "${v}" (${RAW_READS.join(", ")})`);
        return v as (typeof RAW_READS)[number];
      });
      const last =
        o.last !== undefined
          ? listOf("--last", o.last, positiveInt)
          : [...new Set([Math.ceil(sList[0] / 16), Math.ceil(sList[0] / 8)])];

      const all = [...baseline, ...specs];
      const tok = sharedTokenizer(all.map((s) => s.dir));
      const loaded = [];
      for (const s of all) {
        console.error(`loading ${s.name} from ${s.dir}`);
        loaded.push(await loadAnyModel(s));
      }
      for (const m of loaded.slice(baseline.length))
        if (m.kind !== "refrag")
          throw new Error(
            `--model ${m.name}: ${m.dir} is not a REFRAG checkpoint (give a plain decoder as --baseline)`,
          );
      const models: TableModel[] = loaded.map((m) => ({
        name: m.name,
        model: m.model,
        fingerprint: m.fingerprint,
      }));
      const refrags = loaded.filter((m) => m.kind === "refrag" && m.name !== o.baselineName);
      const primary =
        o.expandModel ??
        refrags.find((m) => (m.model as RefragModel).chunkSize === 16)?.name ??
        refrags[0]?.name;
      const notes: string[] = [];
      const plan: RowPlan = {
        baseline: baseline.length > 0 ? o.baselineName : undefined,
        baselineReads: reads,
        last,
        compressed: specs.map((s) => s.name),
        rawFrom: o.rawFrom === "none" ? undefined : (o.rawFrom ?? primary),
        beyondWindow: o.beyondWindow,
      };
      if (o.rate !== undefined) {
        if (primary === undefined) throw new Error("--rate needs a REFRAG --model to expand");
        const expander = loaded.find((m) => m.name === primary);
        if (expander === undefined) throw new Error(`--expand-model ${primary} is not a given --model`);
        let modes = listOf("--select", o.select, (f, v) => {
          if (!SELECTION_MODES.includes(v as SelectionMode))
            throw new Error(`${f}: unknown mode "${v}" (${SELECTION_MODES.join(", ")})`);
          return v as SelectionMode;
        });
        if (modes.includes("policy") && (expander.model as RefragModel).policy === null) {
          notes.push(`${primary} has no trained policy: the RL-policy row is left out.`);
          modes = modes.filter((m) => m !== "policy");
        }
        plan.expand = { model: primary, rate: positiveNumber("--rate", o.rate), modes };
      }
      const { rows, gains } = planRows(models, plan);
      const maxO = os[os.length - 1];
      // Before any document is read: every row must fit its decoder's window at the requested s.
      checkRowPositions(
        models,
        rows,
        sList.map((s) => ({ domain: "(any)", s, requestedS: s, windows: [], notes: [] })),
        maxO,
      );

      const domains = JSON.parse(readFileSync(o.domains, "utf8")) as DomainReport[];
      if (!Array.isArray(domains))
        throw new Error(`${o.domains}: expected the list written by \`refrag datasets build\``);
      const corpus = loadCorpus(o.corpus);
      const byId = new Map([...corpus.values()].flat().map((d) => [d.id, d]));
      console.error("tokenising the documents");
      const docs = domainDocuments(tok, domains, byId, positiveInt("--length", o.length));
      const windows = tableWindows(docs, {
        length: positiveInt("--length", o.length),
        s: sList,
        o: maxO,
        perDocument: positiveInt("--windows", o.windows),
        maxPerDomain: positiveInt("--max-windows", o.maxWindows),
        minDocuments: positiveInt("--min-docs", o.minDocs),
        seed: nonNegInt("--seed", o.seed),
      });
      for (const d of windows) console.error(`${d.domain}, s = ${d.s}: ${d.notes.join("; ")}`);
      const cache = o.out === undefined ? undefined : new JsonlRowCache(reportPaths(o.out).partial);
      if (cache !== undefined && cache.size > 0)
        console.error(`resuming: ${cache.size} (row, domain) results from ${cache.path}`);
      const result = perplexityRows(models, rows, windows, os, {
        gains,
        seed: nonNegInt("--seed", o.seed),
        cache,
        log: (l) => console.error(l),
      });
      const title =
        o.title ??
        (sList.length > 1 || sList[0] > 4096
          ? `Table 2 (miniature): long contexts, s = ${sList.join(", ")}`
          : `Table 1 (miniature): log-perplexity after s = ${sList.join(", ")} context tokens`);
      const preamble = [
        `Models: ${loaded.map((m) => `${m.name} = ${m.dir}${m.kind === "refrag" ? ` (k = ${(m.model as RefragModel).chunkSize})` : " (plain decoder)"}`).join("; ")}.`,
        `Documents: the ${o.length}-token lists of ${o.domains}; ${o.windows} window(s) per document, at most ${o.maxWindows} per domain, seed ${o.seed}; every row reads the same windows; P${os.join(" / P")} are the first tokens of one ${maxO}-token continuation.`,
        ...notes,
      ];
      const md = perplexityMarkdown(result, title, preamble);
      console.log(md);
      if (o.out !== undefined) {
        const written = await writeReport(o.out, {
          json: {
            title,
            command: process.argv.slice(2),
            models: loaded.map((m) => ({ name: m.name, dir: m.dir, kind: m.kind })),
            notes,
            ...result,
          },
          md,
          svg: perplexitySvg(result, title),
        });
        console.error(`wrote ${written.join(", ")}`);
      }
    });
}
