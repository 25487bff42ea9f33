// Corpus-level tokenizer work: train from files (split + per-source cap), chars/token per source, speed.
import { fileURLToPath } from "node:url";
import { sampleCorpus, type SplitChoice, type TextDoc } from "./corpus.js";
import { SPECIAL_TOKENS, WordCounter, trainBpe, type TrainResult } from "./train.js";
import type { Tokenizer } from "./tokenizer.js";

/** The shipped tokenizer: assets/tokenizer/tokenizer.json at the package root. */
export function defaultTokenizerPath(): string {
  return fileURLToPath(new URL("../../../assets/tokenizer/tokenizer.json", import.meta.url));
}

export type PipelineProgress = (
  phase: "read" | "count" | "merge",
  done: number,
  total: number,
  what: string,
) => void;

export interface CorpusTrainOptions {
  vocabSize: number;
  split: SplitChoice;
  maxCharsPerSource?: number;
  minFrequency?: number;
  specialTokens?: readonly string[];
  progress?: PipelineProgress;
}

export interface SourceStat {
  source: string;
  docs: number;
  chars: number;
}

export interface CorpusTrainReport {
  vocabSize: number;
  merges: number;
  split: SplitChoice;
  maxCharsPerSource: number | null;
  sources: SourceStat[];
  chars: number;
  words: number;
  distinctWords: number;
  seconds: { read: number; count: number; merge: number; total: number };
}

export function trainFromCorpus(
  files: readonly string[],
  opts: CorpusTrainOptions,
): { result: TrainResult; report: CorpusTrainReport } {
  const p = opts.progress;
  const t0 = performance.now();
  let nFile = 0;
  const bySource = sampleCorpus(files, {
    split: opts.split,
    maxCharsPerSource: opts.maxCharsPerSource,
    onFile: (f) => p?.("read", ++nFile, files.length, f),
  });
  const t1 = performance.now();
  const sources: SourceStat[] = [];
  let totalChars = 0;
  for (const [source, docs] of bySource) {
    const chars = docs.reduce((a, d) => a + d.text.length, 0);
    sources.push({ source, docs: docs.length, chars });
    totalChars += chars;
  }
  if (totalChars === 0)
    throw new Error(`tokenizer train: no text selected from ${files.length} file(s) (split ${opts.split})`);
  const specials = opts.specialTokens ?? SPECIAL_TOKENS;
  const counter = new WordCounter(specials);
  let done = 0;
  for (const docs of bySource.values()) {
    for (const d of docs) {
      counter.add(d.text);
      done += d.text.length;
      p?.("count", done, totalChars, d.source);
    }
  }
  const counts = counter.toMap();
  const t2 = performance.now();
  const result = trainBpe(counts, {
    vocabSize: opts.vocabSize,
    minFrequency: opts.minFrequency,
    specialTokens: specials,
    onProgress: (_phase, d, total) => p?.("merge", d, total, "vocab"),
  });
  const t3 = performance.now();
  return {
    result,
    report: {
      vocabSize: result.vocab.size,
      merges: result.merges.length,
      split: opts.split,
      maxCharsPerSource: opts.maxCharsPerSource ?? null,
      sources,
      chars: totalChars,
      words: counter.totalWords,
      distinctWords: counts.size,
      seconds: {
        read: (t1 - t0) / 1000,
        count: (t2 - t1) / 1000,
        merge: (t3 - t2) / 1000,
        total: (t3 - t0) / 1000,
      },
    },
  };
}

export interface CompressionRow {
  source: string;
  docs: number;
  chars: number;
  tokens: number;
  charsPerToken: number;
  bytesPerToken: number;
}

/** Characters (and UTF-8 bytes) per token for each source, plus an "all" row. */
export function compressionBySource(tok: Tokenizer, bySource: Map<string, TextDoc[]>): CompressionRow[] {
  const rows: CompressionRow[] = [];
  let [C, B, T, D] = [0, 0, 0, 0];
  for (const [source, docs] of bySource) {
    let [c, b, t] = [0, 0, 0];
    for (const d of docs) {
      c += d.text.length;
      b += Buffer.byteLength(d.text, "utf8");
      t += tok.encode(d.text, { allowSpecial: false }).length;
    }
    rows.push({
      source,
      docs: docs.length,
      chars: c,
      tokens: t,
      charsPerToken: c / Math.max(t, 1),
      bytesPerToken: b / Math.max(t, 1),
    });
    [C, B, T, D] = [C + c, B + b, T + t, D + docs.length];
  }
  rows.push({
    source: "all",
    docs: D,
    chars: C,
    tokens: T,
    charsPerToken: C / Math.max(T, 1),
    bytesPerToken: B / Math.max(T, 1),
  });
  return rows;
}
