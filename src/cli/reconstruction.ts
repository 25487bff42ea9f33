// `refrag eval reconstruction`: the paper's Table 11. Reconstruction log-perplexity of n·k held-out tokens
// from their chunk vectors, next to the same tokens with another window's vectors and with none, for one
// model or several (`--model curriculum=DIR --model none=DIR`: with and without the curriculum, on the
// same windows), with each model's ratio to the first. JSON + markdown + SVG with --out.
import type { Command } from "commander";
import { reconstructionMarkdown, reconstructionSvg, reconstructionTable } from "../eval/reconstruction.js";
import { writeReport } from "../eval/report.js";
import { loadRefrag } from "../models/load.js";
import { loadTokenStream, sha256OfFile } from "../train/tokens.js";
import { positiveInt } from "./args.js";
import { collect, listOf, parseModelSpecs } from "./models_arg.js";

export function registerReconstructionEval(ev: Command): void {
  ev.command("reconstruction")
    .description(
      "Table 11: reconstruction log-perplexity from chunk vectors, with shuffled and no vectors, for one or several models",
    )
    .requiredOption(
      "--model <name=dir>",
      "REFRAG checkpoint (repeatable: curriculum=DIR --model none=DIR; the first is the ratios' reference)",
      collect,
      [],
    )
    .requiredOption("--data <file>", "held-out token stream (.u16), e.g. the validation split")
    .option(
      "--chunks <list>",
      "chunk counts n (s = n·k tokens; 128 is Table 11's full length at k = 16)",
      "1,16,128",
    )
    .option("--windows <n>", "held-out windows per chunk count (the same for every model)", "16")
    .option("--title <text>", "the report's title", "Table 11 (miniature): reconstruction log-perplexity")
    .option("--out <file>", "report NAME.json (+ NAME.md, NAME.svg)")
    .action(
      async (o: {
        model: string[];
        data: string;
        chunks: string;
        windows: string;
        title: string;
        out?: string;
      }) => {
        const specs = parseModelSpecs("--model", o.model);
        const models = [];
        for (const s of specs) models.push({ name: s.name, dir: s.dir, model: await loadRefrag(s.dir) });
        const stream = loadTokenStream(o.data).tokens;
        // The stream is rebuilt from registries whose package versions move, so name the exact one.
        const dataSha256 = sha256OfFile(o.data);
        const t = reconstructionTable(
          models,
          stream,
          listOf("--chunks", o.chunks, positiveInt),
          positiveInt("--windows", o.windows),
          { log: (l) => console.error(l) },
        );
        const preamble = [
          `Models: ${models.map((m) => `${m.name} = ${m.dir}`).join("; ")}. Held-out stream: ${o.data} (${stream.length} tokens, sha256 ${dataSha256.slice(0, 16)}).`,
        ];
        const md = reconstructionMarkdown(t, o.title, preamble);
        console.log(md);
        if (o.out !== undefined) {
          const written = await writeReport(o.out, {
            json: {
              title: o.title,
              command: process.argv.slice(2),
              data: o.data,
              dataTokens: stream.length,
              dataSha256,
              models: models.map((m) => ({ name: m.name, dir: m.dir })),
              ...t,
            },
            md,
            svg: reconstructionSvg(t, o.title),
          });
          console.error(`wrote ${written.join(", ")}`);
        }
      },
    );
}
