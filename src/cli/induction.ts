// `refrag eval induction`: can each decoder copy a span it has just read? (src/eval/induction.ts)
import type { Command } from "commander";
import { PROMPT_TOKENS } from "../infer/prompt.js";
import { positiveInt } from "./args.js";
import { collect, loadAnyModel, parseModelSpecs, sharedTokenizer } from "./models_arg.js";

export function registerInductionEval(ev: Command): void {
  ev.command("induction")
    .description(
      "copy probe: loss on the first and on the repeated copy of spans read twice (random ids, held-out text)",
    )
    .option("--model <name=dir>", "REFRAG or LLaMA checkpoint (repeatable)", collect, [])
    .option("--text <file>", "held-out token stream (.u16) for the text spans")
    .option("--spans <n>", "spans per kind", "8")
    .option("--length <n>", "tokens per span", "50")
    .option("--out <file>", "also write the report NAME.json + NAME.md")
    .action(async (o: { model: string[]; text?: string; spans: string; length: string; out?: string }) => {
      const specs = parseModelSpecs("--model", o.model);
      if (specs.length === 0) throw new Error("give at least one --model");
      const [{ decoderLosses, inductionRows }, { loadTokenStream }, { writeReport }] = await Promise.all([
        import("../eval/induction.js"),
        import("../train/tokens.js"),
        import("../eval/report.js"),
      ]);
      const tokenizer = sharedTokenizer(specs.map((s) => s.dir));
      const bos = tokenizer.tokenToId(PROMPT_TOKENS.bos);
      if (bos === undefined) throw new Error(`the tokenizer has no ${PROMPT_TOKENS.bos}`);
      const text = o.text === undefined ? undefined : loadTokenStream(o.text).tokens;
      const out = [];
      const lines = ["| model | spans | first copy (nats/token) | repeat | drop |", "|---|---|---|---|---|"];
      console.log(lines.join("\n"));
      for (const spec of specs) {
        const m = await loadAnyModel(spec);
        const decoder = m.kind === "refrag" ? m.model.decoder : m.model;
        const rows = inductionRows(decoderLosses(decoder), {
          bos,
          vocab: tokenizer.vocabSize,
          text,
          spans: positiveInt("--spans", o.spans),
          length: positiveInt("--length", o.length),
        });
        for (const r of rows) {
          const line = `| ${spec.name} | ${r.kind} | ${r.first.toFixed(3)} | ${r.repeat.toFixed(3)} | ${(r.first - r.repeat).toFixed(3)} |`;
          console.log(line);
          lines.push(line);
        }
        out.push({ model: spec.name, dir: spec.dir, rows });
      }
      if (o.out !== undefined)
        await writeReport(o.out, {
          json: { spans: o.spans, length: o.length, text: o.text ?? null, models: out },
          md: `## Copy probe (refrag eval induction)\n\n${lines.join("\n")}\n`,
        });
    });
}
