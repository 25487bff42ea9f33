// `datasets overlap`: how much of the evaluation passages a training corpus or token stream contains.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listCorpusFiles } from "../../tokenizer/corpus.js";
import { readLines } from "./build.js";
import { evidenceFilter, OverlapIndex, type EvalEvidence, type OverlapReport } from "./contamination.js";
import { readEvalDocs } from "./docs.js";
import type { Passage } from "./passages.js";
import type { TextEncoder } from "./sampler.js";
import { splitOf } from "./split.js";

export interface OverlapOptions {
  /** Corpus files or folders: their train-split documents are the training data. */
  corpus: string[];
  /** Output folder of `datasets build` (passages.jsonl, eval-evidence.json). */
  out: string;
  n: number;
  /** Optional token streams (uint16 little-endian, as src/train/tokens.ts writes) measured in token n-grams. */
  tokenStreams: string[];
  tokenizer: TextEncoder;
  log: (msg: string) => void;
}

export interface OverlapResult {
  /** Train split as it is, and train split minus evaluation evidence (what pre-training should use). */
  corpus: { "train-split": OverlapReport; pretraining: OverlapReport } | null;
  streams: { path: string; report: OverlapReport }[];
}

/** The evaluation passages: the gold passages listed in eval-evidence.json. */
export function evaluationPassages(out: string): { passages: Passage[]; evidence: EvalEvidence } {
  const evidence = JSON.parse(readFileSync(join(out, "eval-evidence.json"), "utf8")) as EvalEvidence;
  const gold = new Set(evidence.passage_ids);
  const passages = readLines<Passage>(join(out, "passages.jsonl")).filter((p) => gold.has(p.id));
  if (passages.length !== gold.size)
    throw new Error(`${out}: passages.jsonl holds ${passages.length} of the ${gold.size} evidence passages`);
  return { passages, evidence };
}

export function runOverlap(opts: OverlapOptions): OverlapResult {
  const { passages, evidence } = evaluationPassages(opts.out);
  const excluded = evidenceFilter(evidence);
  let corpus: OverlapResult["corpus"] = null;
  if (opts.corpus.length > 0) {
    const idx = new OverlapIndex(passages, opts.n, "word");
    opts.log(`indexed ${passages.length} evaluation passages (${opts.n}-grams of words)`);
    for (const f of listCorpusFiles(opts.corpus)) {
      if (!/\.jsonl(\.gz)?$/.test(f)) continue;
      const t = performance.now();
      let n = 0;
      for (const d of readEvalDocs(f)) {
        if (splitOf(d.id) !== "train") continue;
        idx.addDoc(d, excluded(d.id));
        n++;
      }
      opts.log(`scanned ${f}: ${n} train documents (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
    corpus = { "train-split": idx.report("train-split", true), pretraining: idx.report("pretraining", true) };
  }
  const streams: OverlapResult["streams"] = [];
  for (const path of opts.tokenStreams) {
    const buf = readFileSync(path);
    if (buf.byteLength % 2 !== 0) throw new Error(`${path}: odd byte length, not a uint16 token stream`);
    const ids = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
    const idx = new OverlapIndex(passages, opts.n, "token", opts.tokenizer);
    idx.addIds(ids, ["train-split"]);
    streams.push({ path, report: idx.report("train-split", false) });
    opts.log(`scanned token stream ${path}: ${ids.length} tokens`);
  }
  return { corpus, streams };
}
