// `refrag generate`: answer a question from passages with a REFRAG checkpoint, streaming to stdout.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { GenerationStats } from "../infer/generate.js";
import { RefragPipeline } from "../infer/pipeline.js";
import { toPassage, type PassageInput } from "../infer/prompt.js";
import { SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import { loadRefrag } from "../models/load.js";
import { PassageIndex } from "../retrieval/index.js";
import { Tokenizer } from "../tokenizer/index.js";
import { nonNegInt, nonNegNumber, positiveInt, unitInterval } from "./args.js";

interface GenerateFlags {
  model: string;
  question: string;
  passage: string[];
  passages?: string;
  index?: string;
  topK: string;
  showPassages: boolean;
  select: string;
  fraction: string;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  stop: string[];
  stats: boolean;
}

/** Passages from a file: JSONL lines with a "text" field (and optional "id", "title"), or
 * blank-line-separated paragraphs. */
function readPassages(path: string): PassageInput[] {
  const text = readFileSync(path, "utf8");
  if (path.endsWith(".jsonl"))
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l, i) => {
        try {
          return toPassage(JSON.parse(l), i);
        } catch {
          throw new Error(
            `${path}:${i + 1}: expected an object with a string "text" (and optional "id", "title")`,
          );
        }
      });
  return text.split(/\n\s*\n/).filter((p) => p.trim() !== "");
}

export function registerGenerateCommands(program: Command): void {
  program
    .command("generate")
    .description("answer a question from passages with a REFRAG checkpoint (streams the answer)")
    .requiredOption("--model <dir>", "REFRAG checkpoint folder (with tokenizer.json)")
    .requiredOption("--question <text>", "the question")
    .option("--passage <text...>", "passages (repeatable)", [])
    .option(
      "--passages <file>",
      "passages file: .jsonl with a text field, or paragraphs separated by blank lines",
    )
    .option("--index <dir>", "retrieve passages for the question from this index (`refrag index build`)")
    .option("--top-k <n>", "passages to retrieve with --index", "5")
    .option("--show-passages", "print the passages used to stderr", false)
    .option("--select <mode>", `chunk expansion: ${SELECTION_MODES.join(", ")}`, "none")
    .option("--fraction <p>", "fraction of chunks expanded by random / perplexity / policy selection", "0.25")
    .option("--max-tokens <n>", "answer token budget", "64")
    .option("--temperature <t>", "0 = greedy", "0")
    .option("--top-p <p>", "nucleus sampling mass", "1")
    .option("--seed <n>", "sampling seed", "0")
    .option("--stop <text...>", "stop strings", [])
    .option("--stats", "print TTFT and token counts to stderr", false)
    .action(async (o: GenerateFlags) => {
      if (!SELECTION_MODES.includes(o.select as SelectionMode))
        throw new Error(`--select must be one of ${SELECTION_MODES.join(", ")}, got "${o.select}"`);
      // Every number checked before the model loads (a typo should not cost a model load).
      const fraction = unitInterval("--fraction", o.fraction);
      const maxNewTokens = positiveInt("--max-tokens", o.maxTokens);
      const temperature = nonNegNumber("--temperature", o.temperature);
      const topP = unitInterval("--top-p", o.topP, true);
      const seed = nonNegInt("--seed", o.seed);
      const topK = positiveInt("--top-k", o.topK);
      const model = await loadRefrag(o.model);
      const tokenizer = Tokenizer.fromFile(`${o.model}/tokenizer.json`);
      const pipeline = new RefragPipeline(model, tokenizer);
      const passages: PassageInput[] = [...o.passage, ...(o.passages ? readPassages(o.passages) : [])];
      if (o.index !== undefined) {
        const index = await PassageIndex.open(o.index);
        const hits = await index.search(o.question, topK);
        index.close();
        if (hits.length === 0) console.error("refrag: no passage in the index matches the question");
        passages.push(...hits.map((h) => ({ id: h.id, title: h.title, text: h.text })));
        if (o.showPassages)
          for (const h of hits) console.error(`[${h.score.toFixed(2)}] ${h.id} (${h.title})`);
      }
      if (o.showPassages && o.index === undefined)
        passages.forEach((p, i) =>
          console.error(`[${i + 1}] ${toPassage(p, i).text.slice(0, 120).replace(/\s+/g, " ")}`),
        );
      const stats: Partial<GenerationStats> = {};
      for await (const t of pipeline.generate(
        {
          question: o.question,
          passages,
          selection: { mode: o.select as SelectionMode, fraction },
          maxNewTokens,
          temperature,
          topP,
          seed,
          stop: o.stop,
        },
        stats,
      ))
        process.stdout.write(t.text);
      process.stdout.write("\n");
      if (o.stats)
        console.error(
          `prompt positions ${stats.promptPositions}, generated ${stats.generated}, TTFT ${stats.ttftMs?.toFixed(1)} ms, total ${stats.totalMs?.toFixed(1)} ms, KV ${((stats.kvBytes ?? 0) / 2 ** 20).toFixed(2)} MiB, ${stats.finishReason}`,
        );
    });
}
