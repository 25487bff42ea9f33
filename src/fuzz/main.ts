// `npm run fuzz`: mutated safetensors, tokenizer.json, config.json, GGUF files, API request bodies and
// kernel arguments, each case in a worker process; prints a table, writes JSON, exits 1 on any crash,
// hang, memory over the bound, HTTP 500, unclear error or silently accepted garbage.
//   node dist/src/fuzz/main.js [--cases N] [--seed S] [--targets a,b] [--out FILE] [--max-rss-mb M]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { nonNegInt, positiveInt } from "../cli/args.js";
import { FAILURES, fuzzTarget, type FuzzReport, type Kind } from "./runner.js";
import { TARGETS, type TargetName } from "./targets.js";

const COLUMNS: [Kind, string][] = [
  ["accepted", "accepted"],
  ["clear", "clear errors"],
  ["unclear", "unclear errors"],
  ["crash", "crashes"],
  ["hang", "hangs"],
  ["overMemory", "over memory"],
  ["http500", "HTTP 500"],
  ["garbage", "silently accepted"],
];

/** The results as a Markdown table (the README's). */
export function fuzzTable(reports: FuzzReport[], maxRssMb: number): string {
  const head = [
    "target",
    "cases",
    ...COLUMNS.map(([k, t]) => (k === "overMemory" ? `over ${maxRssMb} MiB` : t)),
    "peak RSS MiB",
    "s",
  ];
  const rows = reports.map((r) => [
    r.target,
    String(r.cases),
    ...COLUMNS.map(([k]) => String(r.counts[k])),
    String(r.peakRssMb),
    r.seconds.toFixed(0),
  ]);
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
  };
  const cases = positiveInt("--cases", flag("--cases", "1000"));
  const seed = nonNegInt("--seed", flag("--seed", "1"));
  const maxRssMb = positiveInt("--max-rss-mb", flag("--max-rss-mb", "1024"));
  const out = flag("--out", "bench/results/fuzz.json");
  const targets = flag("--targets", TARGETS.join(",")).split(",") as TargetName[];
  for (const t of targets)
    if (!(TARGETS as readonly string[]).includes(t))
      throw new Error(`--targets: unknown target "${t}" (${TARGETS.join(", ")})`);
  const reports: FuzzReport[] = [];
  for (const t of targets) {
    const r = await fuzzTarget(t, { cases, seed, maxRssMb });
    reports.push(r);
    console.error(`${t}: ${cases} cases in ${r.seconds.toFixed(0)} s`);
    for (const e of r.examples.filter((x) => FAILURES.includes(x.kind)))
      console.error(`  ${e.kind} case ${e.case}: ${e.label}${e.detail ? ` -> ${e.detail}` : ""}`);
  }
  console.log(fuzzTable(reports, maxRssMb));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), seed, cases, maxRssMb, reports }, null, 2) + "\n",
  );
  console.error(`wrote ${out}`);
  if (reports.some((r) => FAILURES.some((k) => r.counts[k] > 0))) process.exit(1);
}

await main();
