#!/usr/bin/env node
// The `refrag` command.
import { Command } from "commander";
import { cpuFeatures, loadAddon, numThreads, setNumThreads } from "../engine/native.js";
import { positiveInt } from "./args.js";
import { registerBenchCommands } from "./bench.js";
import { registerConvertCommands } from "./convert.js";
import { registerDataCommands } from "./data.js";
import { registerDatasetCommands } from "./datasets.js";
import { registerDemoCommand } from "./demo.js";
import { registerEvalCommands } from "./eval.js";
import { registerGenerateCommands } from "./generate.js";
import { registerRetrievalCommands } from "./retrieval.js";
import { registerServeCommands } from "./serve.js";
import { registerTokenizerCommands } from "./tokenizer.js";
import { registerTrainCommands } from "./train.js";

const program = new Command("refrag")
  .description("REFRAG: compressed-context decoding for retrieval-augmented generation")
  .option("--threads <n>", "compute threads (default: REFRAG_THREADS or all cores)")
  .hook("preAction", (cmd) => {
    const t = cmd.opts<{ threads?: string }>().threads;
    if (t !== undefined) {
      setNumThreads(positiveInt("--threads", t));
    }
  });

program
  .command("info")
  .description("native kernels, CPU features and thread count")
  .action(() => {
    const native = loadAddon() !== null;
    console.log(
      JSON.stringify(
        { native, threads: numThreads(), cpu: native ? cpuFeatures() : null, node: process.version },
        null,
        2,
      ),
    );
  });

registerDataCommands(program);
registerDatasetCommands(program);
registerTokenizerCommands(program);
registerBenchCommands(program);
registerConvertCommands(program);
registerTrainCommands(program);
registerGenerateCommands(program);
registerEvalCommands(program);
registerRetrievalCommands(program);
registerServeCommands(program);
registerDemoCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`refrag: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
