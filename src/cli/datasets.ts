// `refrag datasets …`: derived evaluation sets (QA, passages, conversations, summaries, long-document
// domains, evidence ids) and the contamination report.
import type { Command } from "commander";
import { buildDerived, DEFAULT_BUILD_OPTIONS as D } from "../data/derived/build.js";
import { runOverlap } from "../data/derived/overlap.js";
import { parseSplits } from "../data/derived/split.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { nonNegInt } from "./args.js";

function list(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

export function registerDatasetCommands(program: Command): void {
  const ds = program.command("datasets").description("derived evaluation sets and contamination control");

  ds.command("build")
    .description("write qa, passages, conversations, summaries, domains and eval-evidence files")
    .requiredOption("--corpus <paths...>", "corpus JSONL(.gz) files or folders")
    .requiredOption("--out <dir>", "output folder")
    .option("--tokenizer <file>", "tokenizer.json for token counts", defaultTokenizerPath())
    .option("--seed <n>", "seed of the orders used to pick and order items", String(D.seed))
    .option("--max-acronyms <n>", "at most this many dict-vera questions", String(D.maxAcronyms))
    .option(
      "--max-definitions <n>",
      "at most this many definition questions per dictionary",
      String(D.maxDefinitions),
    )
    .option("--passage-sources <list>", "sources cut into passages", D.passageSources.join(","))
    .option(
      "--summary-splits <list>",
      "splits whose man pages become summary pairs (or all)",
      D.summarySplits.join(","),
    )
    .option(
      "--summary-min-words <n>",
      "shortest man page text (words) for a summary pair",
      String(D.summaryMinWords),
    )
    .option(
      "--domain-min-docs <n>",
      "fewer test documents than this at a length triggers the fallback",
      String(D.domainMinDocs),
    )
    .action(
      (o: {
        corpus: string[];
        out: string;
        tokenizer: string;
        seed: string;
        maxAcronyms: string;
        maxDefinitions: string;
        passageSources: string;
        summarySplits: string;
        summaryMinWords: string;
        domainMinDocs: string;
      }) => {
        const t0 = performance.now();
        const tok = Tokenizer.fromFile(o.tokenizer);
        const { report } = buildDerived({
          corpus: o.corpus,
          out: o.out,
          tokenizer: tok,
          seed: nonNegInt("--seed", o.seed),
          maxAcronyms: nonNegInt("--max-acronyms", o.maxAcronyms),
          maxDefinitions: nonNegInt("--max-definitions", o.maxDefinitions),
          passageSources: list(o.passageSources),
          summarySplits: parseSplits(o.summarySplits),
          summaryMinWords: nonNegInt("--summary-min-words", o.summaryMinWords),
          domainMinDocs: nonNegInt("--domain-min-docs", o.domainMinDocs),
          log,
        });
        console.log(JSON.stringify(report.counts, null, 2));
        log(`wrote ${o.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      },
    );

  ds.command("overlap")
    .description(
      "contamination report: n-gram and exact-passage overlap of training data with evaluation passages",
    )
    .requiredOption("--out <dir>", "output folder of `datasets build`")
    .option("--corpus <paths...>", "corpus files or folders (their train split is measured)", [])
    .option("--tokens <files...>", "uint16 token streams to measure (token n-grams)", [])
    .option("--tokenizer <file>", "tokenizer.json (for token streams)", defaultTokenizerPath())
    .option("-n <n>", "n-gram length", "13")
    .option("--json", "print the report as JSON")
    .action(
      (o: {
        out: string;
        corpus: string[];
        tokens: string[];
        tokenizer: string;
        n: string;
        json?: boolean;
      }) => {
        const n = nonNegInt("-n", o.n);
        if (n < 1) throw new Error("-n must be at least 1");
        if (o.corpus.length === 0 && o.tokens.length === 0)
          throw new Error("give --corpus and/or --tokens to measure");
        const t0 = performance.now();
        const res = runOverlap({
          corpus: o.corpus,
          out: o.out,
          n,
          tokenStreams: o.tokens,
          tokenizer: Tokenizer.fromFile(o.tokenizer),
          log,
        });
        if (o.json === true) {
          console.log(JSON.stringify(res, null, 2));
        } else {
          const rows: [string, Record<string, number | string | null>][] = [];
          if (res.corpus !== null) {
            rows.push(["train split (all)", { ...res.corpus["train-split"] }]);
            rows.push(["pre-training (train minus evidence)", { ...res.corpus.pretraining }]);
          }
          for (const s of res.streams) rows.push([`token stream ${s.path}`, { ...s.report }]);
          for (const [name, r] of rows) {
            console.log(`${name}:`);
            console.log(
              `  evaluation passages ${r.evalPassages}, ${r.n}-${r.unit} n-grams ${r.evalNgrams}; matched n-grams ${r.matchedNgrams}` +
                `; passages with any overlap ${r.passagesWithOverlap}, fully covered ${r.passagesFullyCovered}` +
                (r.exactPassages === null ? "" : `; exact passages ${r.exactPassages}`) +
                (r.evidenceDocsInTraining === null
                  ? ""
                  : `; evidence documents present ${r.evidenceDocsInTraining}`) +
                `; training ${r.unit}s ${r.trainingUnits}`,
            );
          }
        }
        log(`overlap in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      },
    );
}
