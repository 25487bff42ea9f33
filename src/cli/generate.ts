// `refrag generate`: answer a question from passages with a REFRAG checkpoint, streaming to stdout.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { RefragPipeline } from "../infer/pipeline.js";
import { toPassage } from "../infer/prompt.js";
import { DEFAULT_SELECTION, SELECTION_MODES } from "../infer/selection.js";
import { loadRefrag } from "../models/load.js";
import { RagService, type PassageInput } from "../rag/service.js";
import { vectorCacheFor } from "../rag/vectors.js";
import { Tokenizer } from "../tokenizer/index.js";
import { choice, nonNegInt, nonNegNumber, positiveInt, unitInterval } from "./args.js";
import { modelDirOrShipped } from "./model_dir.js";

interface GenerateFlags {
  model?: string;
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
  return text
    .split(/\n\s*\n/)
    .filter((p) => p.trim() !== "")
    .map((p) => ({ text: p }));
}

export function registerGenerateCommands(program: Command): void {
  program
    .command("generate")
    .description("answer a question from passages with a REFRAG checkpoint (streams the answer)")
    .option("--model <dir>", "REFRAG checkpoint folder (default: the model shipped in assets/model)")
    .requiredOption("--question <text>", "the question")
    .option("--passage <text...>", "passages (repeatable)", [])
    .option(
      "--passages <file>",
      "passages file: .jsonl with a text field, or paragraphs separated by blank lines",
    )
    .option("--index <dir>", "retrieve passages for the question from this index (`refrag index build`)")
    .option("--top-k <n>", "passages to retrieve with --index", "5")
    .option("--show-passages", "print the passages used to stderr", false)
    .option("--select <mode>", `chunk expansion: ${SELECTION_MODES.join(", ")}`, DEFAULT_SELECTION.mode)
    .option(
      "--fraction <p>",
      "fraction of chunks expanded by random / perplexity / policy / query selection",
      String(DEFAULT_SELECTION.fraction),
    )
    .option("--max-tokens <n>", "answer token budget", "64")
    .option("--temperature <t>", "0 = greedy", "0")
    .option("--top-p <p>", "nucleus sampling mass", "1")
    .option("--seed <n>", "sampling seed", "0")
    .option("--stop <text...>", "stop strings", [])
    .option("--stats", "print TTFT and token counts to stderr", false)
    .action(async (o: GenerateFlags) => {
      const select = choice("--select", o.select, SELECTION_MODES);
      // Every number checked before the model loads (a typo should not cost a model load).
      const fraction = unitInterval("--fraction", o.fraction);
      const maxNewTokens = positiveInt("--max-tokens", o.maxTokens);
      const temperature = nonNegNumber("--temperature", o.temperature);
      const topP = unitInterval("--top-p", o.topP, true);
      const seed = nonNegInt("--seed", o.seed);
      const topK = positiveInt("--top-k", o.topK);
      const modelDir = modelDirOrShipped(o.model);
      const model = await loadRefrag(modelDir);
      const tokenizer = Tokenizer.fromFile(join(modelDir, "tokenizer.json"));
      // LanceDB loads only when an index is used; its stored chunk vectors are read, not recomputed.
      const index =
        o.index === undefined
          ? null
          : await (await import("../retrieval/index.js")).PassageIndex.open(o.index);
      const rag = new RagService(
        new RefragPipeline(model, tokenizer, vectorCacheFor(model, index?.store ?? null)),
        index,
      );
      const given = [...o.passage.map((text) => ({ text })), ...(o.passages ? readPassages(o.passages) : [])];
      const retrieved = index === null ? [] : await rag.retrieve(o.question, [], topK);
      if (index !== null && retrieved.length === 0)
        console.error("refrag: no passage in the index matches the question");
      const run = await rag.start({
        question: o.question,
        passages: [...given, ...retrieved],
        selection: { mode: select, fraction },
        maxNewTokens,
        temperature,
        topP,
        seed,
        stop: o.stop,
      });
      if (o.showPassages)
        for (const p of run.layout.passages) {
          const chunks = p.expanded.map((e) => (e ? "E" : "c")).join("");
          const score = p.score === null ? "" : ` ${p.score.toFixed(2)}`;
          console.error(`[${p.number}] ${p.id}${p.title ? ` (${p.title})` : ""}${score} ${chunks}`);
        }
      // The shipped model answers from the chunks it reads raw (all compressed, it answers 0.4% of Table 3's
      // questions): a few short passages at the default fraction often expand none.
      if (select !== "none" && run.layout.chunks > 0 && run.layout.expandedChunks === 0)
        console.error(
          `refrag: no chunk of ${run.layout.chunks} was expanded (--select ${select} --fraction ${fraction}); the shipped model answers from chunks it reads raw (0.4% of Table 3's questions from compressed chunks alone): try --fraction 0.5 or --select all`,
        );
      for await (const t of run.tokens) process.stdout.write(t.text);
      process.stdout.write("\n");
      index?.close();
      const s = run.stats;
      const l = run.layout;
      if (o.stats)
        console.error(
          `prompt positions ${l.positions} (full context ${l.fullPositions}, ${l.expandedChunks}/${l.chunks} chunks expanded), generated ${s.generated}, TTFT ${(run.prepareMs + (s.ttftMs ?? 0)).toFixed(1)} ms, total ${(run.prepareMs + (s.totalMs ?? 0)).toFixed(1)} ms, KV ${((s.kvBytes ?? 0) / 2 ** 20).toFixed(2)} MiB, ${s.finishReason}`,
        );
    });
}
