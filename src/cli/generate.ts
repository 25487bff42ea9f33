// `refrag generate`: answer a question from passages with a REFRAG checkpoint, streaming to stdout.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { GenerationStats } from "../infer/generate.js";
import { RefragPipeline } from "../infer/pipeline.js";
import { SELECTION_MODES, type SelectionMode } from "../infer/selection.js";
import { loadRefrag } from "../models/load.js";
import { Tokenizer } from "../tokenizer/index.js";

interface GenerateFlags {
  model: string;
  question: string;
  passage: string[];
  passages?: string;
  select: string;
  fraction: string;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  stop: string[];
  stats: boolean;
}

/** Passages from a file: JSONL lines with a "text" field, or blank-line-separated paragraphs. */
function readPassages(path: string): string[] {
  const text = readFileSync(path, "utf8");
  if (path.endsWith(".jsonl"))
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l, i) => {
        const o = JSON.parse(l) as { text?: unknown };
        if (typeof o.text !== "string")
          throw new Error(`${path}:${i + 1}: expected an object with a string "text"`);
        return o.text;
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
      const model = await loadRefrag(o.model);
      const tokenizer = Tokenizer.fromFile(`${o.model}/tokenizer.json`);
      const pipeline = new RefragPipeline(model, tokenizer);
      const passages = [...o.passage, ...(o.passages ? readPassages(o.passages) : [])];
      const stats: Partial<GenerationStats> = {};
      for await (const t of pipeline.generate(
        {
          question: o.question,
          passages,
          selection: { mode: o.select as SelectionMode, fraction: Number(o.fraction) },
          maxNewTokens: Number(o.maxTokens),
          temperature: Number(o.temperature),
          topP: Number(o.topP),
          seed: Number(o.seed),
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
