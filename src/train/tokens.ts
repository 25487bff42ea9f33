// Token streams for training: the documents of one split, tokenised and joined with <|eos|> into one flat
// array, cached on disk as raw little-endian uint16 (vocabularies up to 65,536) beside a JSON description,
// so a run reads its data in a second instead of re-tokenising tens of megabytes.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Rng } from "../engine/random.js";
import { splitOf, type Split } from "../data/derived/split.js";
import { listCorpusFiles, readDocs } from "../tokenizer/corpus.js";
import { writeFileAtomicSync } from "../io/atomic.js";

export type { Split } from "../data/derived/split.js";

export interface StreamTokenizer {
  encode(text: string, opts?: { allowSpecial?: boolean }): number[];
  vocabSize: number;
  tokenToId(token: string): number | undefined;
}

export interface TokenStreamInfo {
  split: Split;
  tokens: number;
  documents: number;
  sources: Record<string, number>;
  tokenizerSha256: string;
  files: string[];
  /** How a copy-rich stream was made from this one (`train repeats`, src/train/repeats.ts). */
  repeats?: Record<string, number>;
}

export interface TokenStream {
  tokens: Uint16Array;
  info: TokenStreamInfo;
}

/** Tokenise the documents of `split` from JSONL corpus files (or folders) into one stream. */
export function buildTokenStream(
  inputs: string[],
  split: Split,
  tok: StreamTokenizer,
  tokenizerSha256: string,
  opts: {
    maxDocsPerSource?: number;
    exclude?: Set<string>;
    progress?: (docs: number, tokens: number) => void;
  } = {},
): TokenStream {
  if (tok.vocabSize > 65536) throw new Error(`token stream: vocabulary ${tok.vocabSize} does not fit uint16`);
  const eos = tok.tokenToId("<|eos|>");
  if (eos === undefined) throw new Error("token stream: the tokenizer has no <|eos|> token");
  const files = listCorpusFiles(inputs);
  const chunks: Uint16Array[] = [];
  const sources: Record<string, number> = {};
  let total = 0;
  let docs = 0;
  for (const file of files) {
    for (const d of readDocs(file)) {
      if (splitOf(d.id) !== split || opts.exclude?.has(d.id)) continue;
      if (opts.maxDocsPerSource !== undefined && (sources[d.source] ?? 0) >= opts.maxDocsPerSource) continue;
      const ids = tok.encode(d.text, { allowSpecial: false });
      ids.push(eos);
      chunks.push(Uint16Array.from(ids));
      sources[d.source] = (sources[d.source] ?? 0) + 1;
      total += ids.length;
      docs++;
      if (docs % 200 === 0) opts.progress?.(docs, total);
    }
  }
  const tokens = new Uint16Array(total);
  let off = 0;
  for (const c of chunks) {
    tokens.set(c, off);
    off += c.length;
  }
  return { tokens, info: { split, tokens: total, documents: docs, sources, tokenizerSha256, files } };
}

export function saveTokenStream(path: string, s: TokenStream): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomicSync(
    path,
    new Uint8Array(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength),
    "token stream",
  );
  writeFileAtomicSync(`${path}.json`, JSON.stringify(s.info, null, 2) + "\n", "token stream");
}

export function loadTokenStream(path: string): TokenStream {
  if (!existsSync(path) || !existsSync(`${path}.json`))
    throw new Error(`token stream ${path} (and ${path}.json) not found`);
  const info = JSON.parse(readFileSync(`${path}.json`, "utf8")) as TokenStreamInfo;
  const buf = readFileSync(path);
  if (buf.byteLength !== info.tokens * 2)
    throw new Error(
      `token stream ${path}: ${buf.byteLength} bytes, expected ${info.tokens * 2} for ${info.tokens} tokens (truncated?)`,
    );
  const tokens = new Uint16Array(info.tokens);
  new Uint8Array(tokens.buffer).set(buf);
  return { tokens, info };
}

export function sha256OfFile(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * B random windows: inputs [B·T] and next-token targets [B·T]. With `bos`, every window starts with it, as
 * every prompt does at inference: inputs [bos, x_0 … x_{T-2}], targets [x_0 … x_{T-1}]; without it,
 * inputs x_0 … x_{T-1} and targets x_1 … x_T.
 */
export function sampleWindows(
  stream: Uint16Array,
  B: number,
  T: number,
  rng: Rng,
  opts: { bos?: number } = {},
): { inputs: Int32Array; targets: Int32Array } {
  if (stream.length < T + 2)
    throw new Error(`sampleWindows: stream of ${stream.length} tokens is shorter than a window of ${T + 1}`);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const shift = opts.bos === undefined ? 0 : 1;
  const bos = opts.bos ?? 0;
  for (let b = 0; b < B; b++) {
    const start = rng.int(stream.length - T - 1);
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = t < shift ? bos : stream[start + t - shift];
      targets[b * T + t] = stream[start + t + 1 - shift];
    }
  }
  return { inputs, targets };
}
