// `refrag tokenizer …`: train a byte-level BPE, encode/decode, chars/token per source, encode speed, LLaMA-2.
import { mkdirSync, readFileSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import { basename, join } from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { benchEncode } from "../tokenizer/bench.js";
import { listCorpusFiles, sampleCorpus, type SplitChoice, type TextDoc } from "../tokenizer/corpus.js";
import { buildLlama2TokenizerJson, llama2Tokenizer } from "../tokenizer/llama2.js";
import { stringifyTokenizerJson } from "../tokenizer/json.js";
import {
  compressionBySource,
  defaultTokenizerPath,
  trainFromCorpus,
  type CompressionRow,
} from "../tokenizer/pipeline.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { nonNegInt, positiveInt } from "./args.js";

/** A progress display on stderr: bars on a terminal, a line per phase change otherwise. */
function progress(): { update(phase: string, done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = "";
    return {
      update(phase, done, total) {
        if (phase !== last || done === total) process.stderr.write(`${phase} ${done}/${total}\n`);
        last = done === total ? "" : phase;
      },
      stop() {},
    };
  }
  const bars = new cliProgress.MultiBar(
    {
      format: "{phase} [{bar}] {percentage}% {value}/{total}",
      stream: process.stderr,
      clearOnComplete: false,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const byPhase = new Map<string, cliProgress.SingleBar>();
  let lastDraw = 0;
  return {
    update(phase, done, total) {
      let bar = byPhase.get(phase);
      if (bar === undefined) byPhase.set(phase, (bar = bars.create(total, 0, { phase: phase.padEnd(5) })));
      const now = performance.now();
      if (done === total || now - lastDraw > 100) {
        bar.setTotal(total);
        bar.update(done);
        lastDraw = now;
      }
    },
    stop: () => bars.stop(),
  };
}

function splitChoice(s: string): SplitChoice {
  if (s !== "train" && s !== "heldout" && s !== "all")
    throw new Error(`--split must be train, heldout or all, got "${s}"`);
  return s;
}

async function loadTokenizer(spec: string | undefined): Promise<Tokenizer> {
  if (spec === "llama2") return llama2Tokenizer();
  return Tokenizer.fromFile(spec ?? defaultTokenizerPath());
}

function compressionTable(rows: CompressionRow[]): string {
  const lines = [
    `${"source".padEnd(18)} ${"docs".padStart(6)} ${"chars".padStart(11)} ${"tokens".padStart(10)} ${"chars/tok".padStart(9)} ${"bytes/tok".padStart(9)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.source.padEnd(18)} ${String(r.docs).padStart(6)} ${String(r.chars).padStart(11)} ${String(r.tokens).padStart(10)} ${r.charsPerToken.toFixed(3).padStart(9)} ${r.bytesPerToken.toFixed(3).padStart(9)}`,
    );
  }
  return lines.join("\n");
}

function heldout(inputs: string[], maxChars: number): Map<string, TextDoc[]> {
  return sampleCorpus(listCorpusFiles(inputs), { split: "heldout", maxCharsPerSource: maxChars });
}

export function registerTokenizerCommands(program: Command): void {
  const tok = program
    .command("tokenizer")
    .description("tokenizers: train a byte-level BPE, encode, evaluate, LLaMA-2");

  tok
    .command("train")
    .description(
      "train a byte-level BPE on JSONL ({id, source, text}) or text files; writes <out>/tokenizer.json",
    )
    .requiredOption("--corpus <paths...>", "JSONL / JSONL.gz / text files or folders")
    .option("--vocab <n>", "vocabulary size (special tokens + 256 bytes + merges)", "8192")
    .option("--out <dir>", "output folder", "tokenizer")
    .option(
      "--split <which>",
      "documents to train on: train (bucket < 90 of sha256(id)), heldout or all",
      "train",
    )
    .option(
      "--max-chars-per-source <n>",
      "cap per source so large sources do not dominate (0 = no cap)",
      "3000000",
    )
    .option("--min-frequency <n>", "stop when the best pair is rarer than this", "2")
    .option(
      "--eval-chars <n>",
      "after training, chars/token on up to this many held-out chars per source (0 = skip)",
      "1000000",
    )
    .action(
      (o: {
        corpus: string[];
        vocab: string;
        out: string;
        split: string;
        maxCharsPerSource: string;
        minFrequency: string;
        evalChars: string;
      }) => {
        const files = listCorpusFiles(o.corpus);
        const cap = nonNegInt("--max-chars-per-source", o.maxCharsPerSource);
        const bar = progress();
        const { result, report } = trainFromCorpus(files, {
          vocabSize: positiveInt("--vocab", o.vocab),
          split: splitChoice(o.split),
          maxCharsPerSource: cap === 0 ? undefined : cap,
          minFrequency: positiveInt("--min-frequency", o.minFrequency),
          progress: (phase, done, total) => bar.update(phase, done, total),
        });
        bar.stop();
        mkdirSync(o.out, { recursive: true });
        result.tokenizer.save(join(o.out, "tokenizer.json"));
        const evalChars = nonNegInt("--eval-chars", o.evalChars);
        let heldoutRows: CompressionRow[] | null = null;
        if (evalChars > 0 && o.split === "train") {
          heldoutRows = compressionBySource(result.tokenizer, heldout(o.corpus, evalChars));
          console.log(compressionTable(heldoutRows));
        }
        writeFileAtomicSync(
          join(o.out, "training.json"),
          JSON.stringify(
            { files: files.map((f) => basename(f)), ...report, heldout: heldoutRows, node: process.version },
            null,
            2,
          ) + "\n",
        );
        const s = report.seconds;
        console.log(
          `vocab ${report.vocabSize} (${report.merges} merges) from ${report.chars} chars, ${report.distinctWords} distinct words; ` +
            `read ${s.read.toFixed(1)} s, count ${s.count.toFixed(1)} s, merge ${s.merge.toFixed(1)} s -> ${join(o.out, "tokenizer.json")}`,
        );
      },
    );

  tok
    .command("encode [text...]")
    .description("print the token ids of the text (arguments, --file, or stdin)")
    .option("--tokenizer <path>", "tokenizer.json, or llama2 (default: the shipped 8k tokenizer)")
    .option("--file <path>", "read the text from a file")
    .option("--bos", "prepend the BOS token")
    .option("--tokens", "print token strings next to ids")
    .action(
      async (words: string[], o: { tokenizer?: string; file?: string; bos?: boolean; tokens?: boolean }) => {
        const t = await loadTokenizer(o.tokenizer);
        const text =
          o.file !== undefined
            ? readFileSync(o.file, "utf8")
            : words.length > 0
              ? words.join(" ")
              : readFileSync(0, "utf8");
        const ids = t.encode(text, { addBos: o.bos === true });
        if (o.tokens) for (const id of ids) console.log(`${id}\t${JSON.stringify(t.idToToken(id))}`);
        else console.log(ids.join(" "));
      },
    );

  tok
    .command("decode <ids...>")
    .description("print the text of token ids")
    .option("--tokenizer <path>", "tokenizer.json, or llama2 (default: the shipped 8k tokenizer)")
    .option("--skip-special", "drop special tokens")
    .action(async (ids: string[], o: { tokenizer?: string; skipSpecial?: boolean }) => {
      const t = await loadTokenizer(o.tokenizer);
      const nums = ids
        .flatMap((s) => s.split(/[\s,]+/))
        .filter((s) => s.length > 0)
        .map((s) => Number(s));
      process.stdout.write(t.decode(nums, { skipSpecial: o.skipSpecial === true }) + "\n");
    });

  tok
    .command("eval")
    .description("characters per token per source on held-out documents")
    .requiredOption("--corpus <paths...>", "JSONL / JSONL.gz / text files or folders")
    .option("--tokenizer <path>", "tokenizer.json, or llama2 (default: the shipped 8k tokenizer)")
    .option("--split <which>", "documents to measure: heldout, train or all", "heldout")
    .option("--max-chars-per-source <n>", "chars per source at most", "1000000")
    .option("--json <path>", "also write the rows as JSON")
    .action(
      async (o: {
        corpus: string[];
        tokenizer?: string;
        split: string;
        maxCharsPerSource: string;
        json?: string;
      }) => {
        const t = await loadTokenizer(o.tokenizer);
        const docs = sampleCorpus(listCorpusFiles(o.corpus), {
          split: splitChoice(o.split),
          maxCharsPerSource: positiveInt("--max-chars-per-source", o.maxCharsPerSource),
        });
        const rows = compressionBySource(t, docs);
        console.log(compressionTable(rows));
        if (o.json !== undefined)
          writeFileAtomicSync(
            o.json,
            JSON.stringify({ tokenizer: o.tokenizer ?? "shipped", rows }, null, 2) + "\n",
          );
      },
    );

  tok
    .command("bench")
    .description(
      "encode speed (chars/s, median of repeats): ours vs @huggingface/tokenizers vs bare pre-tokenisers",
    )
    .requiredOption("--corpus <paths...>", "JSONL / JSONL.gz / text files or folders")
    .option("--tokenizer <path>", "a byte-level tokenizer.json (default: the shipped 8k tokenizer)")
    .option("--chars <n>", "characters per source to encode", "300000")
    .option("--repeats <n>", "runs per encoder", "5")
    .option("--no-hf", "skip @huggingface/tokenizers (slow)")
    .option("--out <path>", "JSON results", "bench/results/tokenizer_encode.json")
    .action(
      (o: {
        corpus: string[];
        tokenizer?: string;
        chars: string;
        repeats: string;
        hf: boolean;
        out: string;
      }) => {
        const path = o.tokenizer ?? defaultTokenizerPath();
        const json = JSON.parse(readFileSync(path, "utf8")) as object;
        const docs = sampleCorpus(listCorpusFiles(o.corpus), {
          split: "heldout",
          maxCharsPerSource: positiveInt("--chars", o.chars),
        });
        const texts = [...docs.values()].flat().map((d) => d.text);
        const chars = texts.reduce((a, t) => a + t.length, 0);
        const rows = benchEncode(json, texts, positiveInt("--repeats", o.repeats), o.hf);
        console.log(
          `${chars} chars in ${texts.length} documents, ${o.repeats} repeats, 1 thread, median chars/s (machine shared: compare ratios)`,
        );
        const base = rows.find((r) => r.name.startsWith("gpt2 regex"))?.charsPerSecond ?? 1;
        for (const r of rows)
          console.log(
            `${r.name.padEnd(32)} ${(r.charsPerSecond / 1e6).toFixed(2).padStart(7)} M chars/s  ${(r.charsPerSecond / base).toFixed(2)}x regex`,
          );
        mkdirSync(join(o.out, ".."), { recursive: true });
        writeFileAtomicSync(
          o.out,
          JSON.stringify(
            {
              tokenizer: path,
              chars,
              documents: texts.length,
              repeats: positiveInt("--repeats", o.repeats),
              rows,
              node: process.version,
            },
            null,
            2,
          ) + "\n",
        );
      },
    );

  tok
    .command("llama2")
    .description("write LLaMA-2's tokenizer.json, rebuilt offline from the llama-tokenizer-js package")
    .option("--out <dir>", "output folder", "llama2-tokenizer")
    .action(async (o: { out: string }) => {
      mkdirSync(o.out, { recursive: true });
      writeFileAtomicSync(
        join(o.out, "tokenizer.json"),
        stringifyTokenizerJson(await buildLlama2TokenizerJson()),
      );
      console.log(join(o.out, "tokenizer.json"));
    });
}
