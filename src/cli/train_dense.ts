// `refrag train dense`: the dense retrieval stage (src/train/stages/dense.ts) from the command line. The
// encoder (a RoBERTa, MLM or REFRAG checkpoint) learns to put each training question next to its gold
// passage (InfoNCE, in-batch negatives); the validation questions give the held-out loss. The result is an
// encoder checkpoint for `--embedder` (index build / vectors, retrieve, eval retrieval, serve).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Passage } from "../data/derived/passages.js";
import type { QaItem } from "../data/derived/qa.js";
import { Tokenizer } from "../tokenizer/index.js";
import { positiveInt, positiveNumber } from "./args.js";

interface DenseFlags {
  from: string;
  qa: string;
  passages: string;
  out: string;
  steps: string;
  lr: string;
  batch: string;
  temperature: string;
  maxTokens: string;
  saveEvery: string;
  evalEvery?: string;
  seed: string;
  tokenizer?: string;
}

export function registerDenseCommand(train: Command): void {
  train
    .command("dense")
    .description(
      "dense retrieval: tune an encoder to put questions next to their gold passages (InfoNCE, in-batch negatives)",
    )
    .requiredOption("--from <dir>", "encoder checkpoint (RoBERTa, MLM or REFRAG) to start from")
    .requiredOption(
      "--qa <file>",
      "qa.jsonl from `refrag datasets build` (split train trains, validation validates)",
    )
    .requiredOption("--passages <file>", "passages.jsonl holding the gold passages")
    .requiredOption("--out <dir>", "checkpoint folder (resumed when it holds this run)")
    .option("--steps <n>", "optimizer steps", "300")
    .option("--lr <x>", "peak learning rate", "5e-5")
    .option("--batch <n>", "pairs per step (each question sees batch - 1 negatives)", "32")
    .option("--temperature <t>", "softmax temperature over cosine similarities", "0.05")
    .option("--max-tokens <n>", "tokens read per text, [bos] included (capped by the position table)", "128")
    .option("--save-every <n>", "checkpoint interval in steps", "50")
    .option("--eval-every <n>", "validation interval in steps (default: the checkpoint interval)")
    .option("--seed <n>", "seed", "1")
    .option("--tokenizer <file>", "tokenizer.json (default: the encoder folder's, else the shipped one)")
    .action(async (o: DenseFlags) => {
      const c = {
        steps: positiveInt("--steps", o.steps),
        lr: positiveNumber("--lr", o.lr),
        batch: positiveInt("--batch", o.batch),
        temperature: positiveNumber("--temperature", o.temperature),
        maxTokens: positiveInt("--max-tokens", o.maxTokens),
        saveEvery: positiveInt("--save-every", o.saveEvery),
        evalEvery: o.evalEvery === undefined ? undefined : positiveInt("--eval-every", o.evalEvery),
        seed: positiveInt("--seed", o.seed),
        logEvery: 10,
      };
      const [{ readLines }, { densePairs, trainDenseFrom }, { encoderTokenizerPath }] = await Promise.all([
        import("../data/derived/build.js"),
        import("../train/stages/dense.js"),
        import("../retrieval/dense.js"),
      ]);
      const tokenizerPath = o.tokenizer ?? encoderTokenizerPath(o.from);
      const tokenizer = Tokenizer.fromFile(tokenizerPath);
      const items = readLines<QaItem>(o.qa);
      const gold = new Set(items.flatMap((q) => q.gold_passage_ids));
      const passages = new Map(
        readLines<Passage>(o.passages)
          .filter((p) => gold.has(p.id))
          .map((p) => [p.id, p]),
      );
      const split = (s: string) =>
        densePairs(
          items.filter((q) => q.meta?.split === s),
          passages,
        );
      const train = split("train");
      const validation = split("validation");
      if (train.length === 0)
        throw new Error(`${o.qa}: no training pairs (split "train" with gold passages in ${o.passages})`);
      console.error(
        `dense: ${train.length} training pairs, ${validation.length} validation pairs; ${c.steps} steps of ${c.batch}`,
      );
      // --from gives the architecture and the starting weights; a run already in --out resumes from there
      // (the training loop reads its weights and optimizer state).
      const state = await trainDenseFrom(
        o.from,
        tokenizer,
        train,
        c,
        {
          out: o.out,
          tokenizerJson: readFileSync(tokenizerPath, "utf8"),
          log: (i) =>
            console.error(
              `step ${i.step + 1}  loss ${i.loss.toFixed(4)}  lr ${i.lr.toExponential(2)}  |g| ${i.gradNorm.toFixed(2)}  ${i.ms.toFixed(0)} ms`,
            ),
          logValidation: (step, loss) => console.error(`step ${step}  validation loss ${loss.toFixed(4)}`),
          shouldStop: stopOnSignal(),
        },
        { validation },
      );
      console.error(`${o.out}: step ${state.step}/${state.steps}`);
    });
}

/** Ctrl-C stops after the current step, saving first (the same as src/cli/train.ts). */
function stopOnSignal(): () => boolean {
  let stop = false;
  process.once("SIGINT", () => {
    console.error("\nstopping after this step (checkpoint first); Ctrl-C again to abort");
    stop = true;
    process.once("SIGINT", () => process.exit(130));
  });
  return () => stop;
}
