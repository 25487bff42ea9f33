// `refrag bench latency`: the latency benchmark as a CLI command (also `npm run bench:latency`).
import { mkdirSync, readFileSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import { join } from "node:path";
import type { Command } from "commander";
import { numThreads, setNumThreads } from "../engine/native.js";
import {
  addPredictions,
  latencyPlot,
  latencyTable,
  runLatency,
  type LatencyRow,
  type LatencyShape,
} from "../eval/latency.js";
import { SHAPES } from "../models/presets.js";

const list = (s: string): number[] =>
  s.split(",").map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`expected a comma-separated list of positive integers, got "${s}"`);
    return n;
  });

export function registerBenchCommands(program: Command): void {
  const bench = program
    .command("bench")
    .description("benchmarks (print a table, write JSON and an SVG plot)");
  bench
    .command("latency")
    .description(
      "TTFT, time per output token, throughput and KV bytes: full context vs REFRAG (random weights)",
    )
    .option("--shape <name>", `model shape: ${Object.keys(SHAPES).join(", ")}`, "shipped")
    .option("--contexts <list>", "context lengths in tokens", "1024,2048,4096,8192,16384")
    .option("--ks <list>", "chunk sizes k", "8,16,32")
    .option("--question <n>", "question tokens", "32")
    .option("--decode <n>", "output tokens timed for TPOT", "16")
    .option("--repeats <n>", "runs per case (median reported)", "3")
    .option("--threads <n>", "compute threads (default: all cores)")
    .option("--out <dir>", "output folder", "bench/results")
    .option("--render <json>", "re-render the table and plot of a saved run (no timing)")
    .action(
      async (o: {
        shape: string;
        contexts: string;
        ks: string;
        question: string;
        decode: string;
        repeats: string;
        threads?: string;
        out: string;
        render?: string;
      }) => {
        if (o.render !== undefined) {
          // Re-render a saved run: predictions are arithmetic, so they follow the current formulas.
          const saved = JSON.parse(readFileSync(o.render, "utf8")) as {
            threads: number;
            shape: LatencyShape;
            rows: LatencyRow[];
            question?: number;
          };
          addPredictions(saved.rows, saved.shape, saved.question ?? 32);
          console.log(
            `\nLatency, ${saved.shape.name} shape, batch 1, ${saved.threads} threads (${o.render})\n`,
          );
          console.log(latencyTable(saved.rows));
          writeFileAtomicSync(o.render, JSON.stringify(saved, null, 2) + "\n");
          writeFileAtomicSync(
            o.render.replace(/\.json$/, ".svg"),
            latencyPlot(saved.rows, saved.shape.name, saved.threads),
          );
          return;
        }
        const shape = SHAPES[o.shape];
        if (shape === undefined)
          throw new Error(`unknown shape "${o.shape}" (choose ${Object.keys(SHAPES).join(", ")})`);
        if (o.threads !== undefined) setNumThreads(list(o.threads)[0]);
        const rows = await runLatency({
          shape,
          contexts: list(o.contexts),
          ks: list(o.ks),
          question: list(o.question)[0],
          decodeTokens: list(o.decode)[0],
          repeats: list(o.repeats)[0],
          log: (l) => console.error(l),
        });
        console.log(`\nLatency, ${shape.name} shape, batch 1, ${numThreads()} threads\n`);
        console.log(latencyTable(rows));
        mkdirSync(o.out, { recursive: true });
        const base = join(o.out, `latency_${shape.name}`);
        writeFileAtomicSync(
          `${base}.json`,
          JSON.stringify(
            {
              date: new Date().toISOString(),
              threads: numThreads(),
              question: list(o.question)[0],
              shape,
              rows,
            },
            null,
            2,
          ) + "\n",
        );
        writeFileAtomicSync(`${base}.svg`, latencyPlot(rows, shape.name, numThreads()));
        console.log(`\nwrote ${base}.json and ${base}.svg`);
      },
    );
}
