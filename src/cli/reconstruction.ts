// `refrag eval reconstruction`: the paper's Table 11 measure. Reconstruction log-perplexity of n·k held-out
// tokens from their chunk vectors, next to the same tokens with another window's vectors and with none.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { RECONSTRUCTION_MODES, reconstructionRow, type ReconstructionRow } from "../eval/reconstruction.js";
import { loadRefrag } from "../models/load.js";
import { loadTokenStream } from "../train/tokens.js";
import { positiveInt } from "./args.js";

export function registerReconstructionEval(ev: Command): void {
  ev.command("reconstruction")
    .description("reconstruction log-perplexity from chunk vectors (Table 11), with shuffled and no vectors")
    .requiredOption("--model <dir>", "REFRAG checkpoint folder")
    .requiredOption("--data <file>", "held-out token stream (.u16), e.g. the validation split")
    .option("--chunks <list>", "chunk counts n (s = n·k tokens)", "1,16,128")
    .option("--windows <n>", "held-out windows per chunk count (the same for every model)", "16")
    .option("--out <file>", "also write the rows as JSON")
    .action(async (o: { model: string; data: string; chunks: string; windows: string; out?: string }) => {
      const model = await loadRefrag(o.model);
      const stream = loadTokenStream(o.data).tokens;
      const windows = positiveInt("--windows", o.windows);
      const rows: ReconstructionRow[] = [];
      console.log(`| chunks | tokens | ${RECONSTRUCTION_MODES.join(" | ")} |`);
      console.log(`|---|---|${RECONSTRUCTION_MODES.map(() => "---").join("|")}|`);
      for (const c of o.chunks.split(",")) {
        const r = reconstructionRow(model, stream, positiveInt("--chunks", c.trim()), windows);
        rows.push(r);
        console.log(
          `| ${r.chunks} | ${r.tokens} | ${RECONSTRUCTION_MODES.map((m) => r.nll[m].toFixed(3)).join(" | ")} |`,
        );
      }
      if (o.out)
        writeFileSync(o.out, JSON.stringify({ model: o.model, k: model.chunkSize, rows }, null, 1) + "\n");
    });
}
