// The fuzz targets: each builds valid inputs once (a tiny REFRAG checkpoint, a tokenizer.json, a GGUF
// file, a server, kernel shapes), then runs one mutated case at a time and says how it ended:
//   accepted  the input loaded (or the call ran) and works
//   clear     an error that names the file / op / field (4xx with a message for the API)
//   unclear   an error that names nothing the user could act on
//   http500   the server answered 500
//   garbage   invalid input accepted: a known-bad mutation loaded, or a loaded file fails at first use
// Crashes, hangs and memory over the bound are seen by the parent process (runner.ts).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KERNEL_CHECKS, type KernelName } from "../engine/kernels/checks.js";
import { requireAddon } from "../engine/native.js";
import { Rng } from "../engine/random.js";
import { noGrad } from "../engine/tensor.js";
import { refragConfigFor, SHAPES } from "../models/presets.js";
import { saveCheckpoint } from "../io/checkpoint.js";
import { decodeGguf, writeGguf } from "../io/gguf.js";
import { llamaToGguf } from "../io/gguf_llama.js";
import { loadRefrag } from "../models/load.js";
import { policyConfig } from "../models/policy.js";
import { RefragModel } from "../models/refrag.js";
import { parseRefragConfig } from "../io/config.js";
import type { StTensor } from "../io/safetensors.js";
import { Tokenizer } from "../tokenizer/index.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";
import { mutateBytes, mutateJson, EXTREME_NUMBERS } from "./mutate.js";
import { apiTarget } from "./api_target.js";

export type Outcome = "accepted" | "clear" | "unclear" | "http500" | "garbage";
export interface CaseResult {
  outcome: Outcome;
  label: string;
  detail?: string;
}
export type RunCase = (i: number, rng: Rng) => Promise<CaseResult>;
export const TARGETS = ["safetensors", "tokenizer", "config", "gguf", "api", "kernels"] as const;
/** The six targets, and "selftest" (cases that crash, hang and eat memory on purpose: the runner's test). */
export type TargetName = (typeof TARGETS)[number] | "selftest";

/** Case i % 4: fine, a segfault, a hang, 1.5 GB of memory; proves the runner sees each. */
async function selfTarget(): Promise<RunCase> {
  return async (i) => {
    switch (i % 4) {
      case 1:
        process.kill(process.pid, "SIGSEGV");
        break;
      case 2:
        for (;;);
      case 3:
        Buffer.alloc(1536 * 2 ** 20, 1);
        await new Promise((r) => setTimeout(r, 2000));
    }
    return { outcome: "accepted", label: "ok" };
  };
}

/** A tiny REFRAG model (vocab `vocab`, chunk size 4, window 64) with a selection policy. */
export function tinyModel(vocab: number, seed = 1): RefragModel {
  const shape = {
    ...SHAPES.shipped,
    vocab,
    decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24 },
    encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
  };
  const base = refragConfigFor(shape, 4, 64);
  return new RefragModel(parseRefragConfig({ ...base, policy: policyConfig(8, 8, 1, 2) }), new Rng(seed));
}

function tensorsOf(m: RefragModel): Map<string, StTensor> {
  return new Map(
    [...m.namedParameters()].map(([n, p]) => [n, { dtype: "F32", shape: [...p.shape], data: p.data }]),
  );
}

/** An error that names `where` (a path or folder) is clear; anything else is not. */
function classify(e: unknown, label: string, ...where: string[]): CaseResult {
  const msg = e instanceof Error ? e.message : String(e);
  const clear = where.some((w) => msg.includes(w));
  return { outcome: clear ? "clear" : "unclear", label, detail: msg.slice(0, 300) };
}

/** The model works: encode one chunk, project it, run the decoder on it. */
function smoke(model: RefragModel): void {
  noGrad(() => {
    const k = model.chunkSize;
    const vectors = model.encodeChunks([Int32Array.from({ length: k }, (_, i) => 1 + (i % 3))]);
    const embeds = model.project(vectors);
    const out = model.decoder.forward([{ ids: Int32Array.of(1, 2) }, { embeds }]).logits;
    if (out.data.some((x) => !Number.isFinite(x))) throw new Error("non-finite logits");
  });
}

const sameWeights = (a: RefragModel, b: RefragModel) => {
  const pb = b.namedParameters();
  return [...a.namedParameters()].every(([n, p]) => {
    const q = pb.get(n)!.data;
    return p.data.every((x, i) => Object.is(x, q[i]));
  });
};

async function safetensorsTarget(dir: string): Promise<RunCase> {
  const model = tinyModel(40);
  const base = join(dir, "base");
  await saveCheckpoint(base, { config: model.config, tensors: tensorsOf(model) });
  const bytes = new Uint8Array(readFileSync(join(base, "model.safetensors")));
  const configText = readFileSync(join(base, "config.json"));
  const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, headerEnd))) as Record<
    string,
    unknown
  >;
  return async (i, rng) => {
    const ck = join(dir, `c${i}`);
    mkdirSync(ck, { recursive: true });
    writeFileSync(join(ck, "config.json"), configText);
    let m: { value: Uint8Array; label: string; invalid: boolean; inHeader: boolean };
    if (rng.int(3) === 0) {
      // The header as JSON: a member replaced or removed, then re-encoded with a consistent length.
      const j = mutateJson(rng, header, (path) => path.length >= 2 && path[0] !== "__metadata__");
      const text = new TextEncoder().encode(JSON.stringify(j.value));
      const value = new Uint8Array(8 + text.length + bytes.length - headerEnd);
      new DataView(value.buffer).setBigUint64(0, BigInt(text.length), true);
      value.set(text, 8);
      value.set(bytes.subarray(headerEnd), 8 + text.length);
      m = { ...j, value, inHeader: true };
    } else {
      const inHeader = rng.int(2) === 0;
      const r = mutateBytes(rng, bytes, inHeader ? [0, headerEnd] : [headerEnd, bytes.length]);
      m = { ...r, inHeader };
    }
    writeFileSync(join(ck, "model.safetensors"), m.value);
    try {
      const loaded = await loadRefrag(ck);
      smoke(loaded);
      // A changed header that still loads different weights is a misread file.
      if ((m.invalid || m.inHeader) && !sameWeights(model, loaded))
        return { outcome: "garbage", label: m.label, detail: "loaded with different weights" };
      return { outcome: "accepted", label: m.label };
    } catch (e) {
      return classify(e, m.label, ck);
    }
  };
}

async function configTarget(dir: string): Promise<RunCase> {
  const model = tinyModel(40);
  const base = join(dir, "base");
  await saveCheckpoint(base, { config: model.config, tensors: tensorsOf(model) });
  const weights = readFileSync(join(base, "model.safetensors"));
  const config = JSON.parse(readFileSync(join(base, "config.json"), "utf8")) as unknown;
  const configBytes = new Uint8Array(readFileSync(join(base, "config.json")));
  return async (i, rng) => {
    const ck = join(dir, `c${i}`);
    mkdirSync(ck, { recursive: true });
    writeFileSync(join(ck, "model.safetensors"), weights);
    const m =
      rng.int(4) === 0
        ? mutateBytes(rng, configBytes)
        : (() => {
            const j = mutateJson(rng, config);
            return { ...j, value: new TextEncoder().encode(JSON.stringify(j.value, null, 2)) };
          })();
    writeFileSync(join(ck, "config.json"), m.value);
    let loaded: RefragModel;
    try {
      loaded = await loadRefrag(ck);
    } catch (e) {
      return classify(e, m.label, ck);
    }
    try {
      smoke(loaded);
      return { outcome: "accepted", label: m.label };
    } catch (e) {
      return {
        outcome: "garbage",
        label: m.label,
        detail: `loaded, then failed: ${(e as Error).message.slice(0, 200)}`,
      };
    }
  };
}

/** The shipped tokenizer cut to its first `merges` merges (ids stay dense): a small valid tokenizer.json. */
function smallTokenizerJson(merges: number): Record<string, unknown> {
  const json = JSON.parse(readFileSync(defaultTokenizerPath(), "utf8")) as {
    model: { vocab: Record<string, number>; merges: unknown[] };
    added_tokens: { id: number }[];
  };
  const keep = json.added_tokens.length + 256 + merges;
  json.model.merges = json.model.merges.slice(0, merges);
  json.model.vocab = Object.fromEntries(Object.entries(json.model.vocab).filter(([, id]) => id < keep));
  return json as unknown as Record<string, unknown>;
}

const PROBES = [
  "The quick brown fox.",
  "  spaces\tand\nlines ",
  "ümlaut 北京 😀",
  "<|bos|> special?",
  "1234567890",
];

async function tokenizerTarget(dir: string): Promise<RunCase> {
  const json = smallTokenizerJson(400);
  const text = new TextEncoder().encode(JSON.stringify(json));
  return async (i, rng) => {
    const path = join(dir, `t${i}.json`);
    const m =
      rng.int(4) === 0
        ? mutateBytes(rng, text)
        : (() => {
            const j = mutateJson(
              rng,
              json,
              (p, _old, next) =>
                // A vocabulary entry that is not an id (a deleted one may be covered by added_tokens).
                p[0] === "model" &&
                p[1] === "vocab" &&
                p.length === 3 &&
                next !== undefined &&
                typeof next !== "number",
            );
            return { ...j, value: new TextEncoder().encode(JSON.stringify(j.value)) };
          })();
    writeFileSync(path, m.value);
    let tok: Tokenizer;
    try {
      tok = Tokenizer.fromFile(path);
    } catch (e) {
      return classify(e, m.label, path);
    }
    if (m.invalid)
      return { outcome: "garbage", label: m.label, detail: "an invalid vocabulary entry loaded" };
    try {
      for (const p of PROBES) {
        const ids = tok.encode(p);
        for (const id of ids)
          if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize)
            throw new Error(`id ${id} out of range`);
        tok.decode(ids);
      }
      return { outcome: "accepted", label: m.label };
    } catch (e) {
      return {
        outcome: "garbage",
        label: m.label,
        detail: `loaded, then failed: ${(e as Error).message.slice(0, 200)}`,
      };
    }
  };
}

async function ggufTarget(dir: string): Promise<RunCase> {
  const model = tinyModel(40);
  const tensors = new Map(
    [...tensorsOf(model)].filter(([n]) => n.startsWith("decoder.")).map(([n, t]) => [n.slice(8), t]),
  );
  const path = join(dir, "base.gguf");
  const g = llamaToGguf({ config: model.config.decoder, tensors, tokenizerJson: null });
  await writeGguf(path, g.metadata, g.tensors);
  const bytes = new Uint8Array(readFileSync(path));
  return async (i, rng) => {
    const m = mutateBytes(
      rng,
      bytes,
      rng.int(2) === 0 ? [0, Math.min(bytes.length, 2048)] : [0, bytes.length],
    );
    const file = join(dir, `g${i}.gguf`);
    try {
      const f = decodeGguf(m.value, file);
      for (const t of f.tensors)
        if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error("tensor size mismatch");
      return { outcome: m.invalid ? "garbage" : "accepted", label: m.label };
    } catch (e) {
      return classify(e, m.label, file);
    }
  };
}

// ---------------------------------------------------------------- kernel arguments

const SIZE_VALUES = [0, 1, 2, 3, 4, 7, 8, 16, 17, 33, ...EXTREME_NUMBERS, NaN, Infinity, -Infinity];

/** Positions of size arguments per kernel, and which arguments are arrays (with their element type). */
function kernelArgs(name: KernelName, rng: Rng, arity: number): unknown[] {
  const small = () => [0, 1, 2, 3, 4, 5, 8, 16][rng.int(8)];
  const size = () => (rng.int(4) === 0 ? SIZE_VALUES[rng.int(SIZE_VALUES.length)] : small());
  const len = () => (rng.int(5) === 0 ? rng.int(4096) : [0, 1, 4, 8, 16, 32, 64, 256][rng.int(8)]);
  const floats = () => {
    const r = rng.int(12);
    if (r === 0) return null;
    if (r === 1) return new Int32Array(len());
    if (r === 2) return new Float64Array(len());
    return new Float32Array(len()).map(() => rng.normal());
  };
  const ints = () =>
    rng.int(10) === 0 ? new Float32Array(len()) : Int32Array.from({ length: len() }, () => rng.int(8) - 1);
  const template = KERNEL_TEMPLATES[name];
  const args = template.map((kind) => {
    switch (kind) {
      case "n":
        return size();
      case "x":
        return rng.int(8) === 0 ? SIZE_VALUES[rng.int(SIZE_VALUES.length)] : rng.normal();
      case "b":
        return rng.int(10) === 0 ? 1 : rng.int(2) === 0;
      case "f":
        return floats();
      case "i":
        return ints();
      case "h":
        return rng.int(10) === 0 ? new Float32Array(len()) : new Uint16Array(len());
      case "k":
        return rng.int(2) === 0 ? null : ints();
      case "F":
        return rng.int(10) === 0 ? floats() : Array.from({ length: rng.int(4) }, floats);
    }
  });
  // Sometimes a wrong argument count.
  if (rng.int(20) === 0) return args.slice(0, Math.max(0, arity - 1));
  return args;
}

type ArgKind = "n" | "x" | "b" | "f" | "i" | "h" | "k" | "F";
const KERNEL_TEMPLATES: Record<KernelName, ArgKind[]> = {
  gemm: ["b", "b", "n", "n", "n", "x", "f", "f", "x", "f"],
  gemmBatched: ["b", "b", "n", "n", "n", "n", "x", "f", "n", "f", "n", "x", "f", "n"],
  gemmBf16: ["b", "n", "n", "n", "x", "f", "h", "x", "f"],
  gemvRows: ["n", "n", "n", "x", "f", "f", "x", "f"],
  gemvRowsBf16: ["n", "n", "n", "x", "f", "h", "x", "f"],
  gemvKMajor: ["n", "n", "n", "x", "f", "f", "x", "f"],
  gemvKMajorBf16: ["n", "n", "n", "x", "f", "h", "x", "f"],
  gemvPanels: ["n", "n", "n", "x", "f", "f", "x", "f"],
  gemvPanelsBf16: ["n", "n", "n", "x", "f", "h", "x", "f"],
  f32ToBf16: ["f", "h"],
  bf16ToF32: ["h", "f"],
  attentionForward: ["n", "n", "n", "n", "n", "n", "n", "b", "x", "f", "f", "f", "k", "f", "f"],
  attentionBackward: [
    "n",
    "n",
    "n",
    "n",
    "n",
    "n",
    "n",
    "b",
    "x",
    "f",
    "f",
    "f",
    "k",
    "f",
    "f",
    "f",
    "f",
    "f",
    "f",
  ],
  attentionDecodeRows: ["n", "n", "n", "n", "x", "f", "F", "F", "i", "f"],
  rmsnormForward: ["n", "n", "x", "f", "f", "f", "f"],
  rmsnormBackward: ["n", "n", "f", "f", "f", "f", "f", "f"],
  layernormForward: ["n", "n", "x", "f", "f", "f", "f", "f", "f"],
  layernormBackward: ["n", "n", "f", "f", "f", "f", "f", "f", "f", "f"],
  rope: ["n", "n", "n", "x", "i", "f", "b"],
  siluForward: ["f", "f"],
  siluBackward: ["f", "f", "f"],
  geluForward: ["f", "f"],
  geluBackward: ["f", "f", "f"],
  swigluForward: ["f", "f", "f"],
  swigluBackward: ["f", "f", "f", "f", "f"],
  softmaxForward: ["n", "n", "f", "f"],
  softmaxBackward: ["n", "n", "f", "f", "f"],
  embeddingForward: ["i", "n", "f", "f"],
  embeddingBackward: ["i", "n", "f", "f"],
  crossEntropyForward: ["n", "n", "f", "i", "x", "f"],
  crossEntropyBackward: ["n", "n", "f", "i", "x", "f", "x", "f"],
  adamw: ["f", "f", "f", "f", "x", "x", "x", "x", "x", "n"],
  sumSquares: ["f"],
  scaleInPlace: ["f", "x"],
  axpy: ["x", "f", "f"],
  argmax: ["f"],
  add: ["f", "f", "f"],
  mul: ["f", "f", "f"],
  firstNonFinite: ["f"],
};

async function kernelsTarget(): Promise<RunCase> {
  const addon = requireAddon();
  const names = Object.keys(KERNEL_TEMPLATES) as KernelName[];
  return async (_i, rng) => {
    const name = names[rng.int(names.length)];
    const args = kernelArgs(name, rng, KERNEL_TEMPLATES[name].length);
    const label = `${name}(${args.map((a) => (ArrayBuffer.isView(a) ? `${a.constructor.name}(${(a as Float32Array).length})` : String(a))).join(", ")})`;
    // The rules (checks.ts) say whether the call is valid; the native side must agree.
    let valid = true;
    try {
      if (args.length !== KERNEL_TEMPLATES[name].length) throw new Error("arity");
      (KERNEL_CHECKS[name] as (...a: unknown[]) => void)(...args);
    } catch {
      valid = false;
    }
    try {
      (addon[name] as (...a: unknown[]) => unknown)(...args);
    } catch (e) {
      // Refused with the op's name: clear (natively stricter about array types than checks.ts, which
      // also admits the references' Float64Arrays, is fine).
      const msg = (e as Error).message;
      const note = valid ? " (valid by checks.ts)" : "";
      return {
        outcome: msg.startsWith(`${name}:`) ? "clear" : "unclear",
        label,
        detail: msg.slice(0, 200) + note,
      };
    }
    return valid
      ? { outcome: "accepted", label }
      : { outcome: "garbage", label, detail: "native accepted a call checks.ts refuses" };
  };
}

/** Set up a target in `dir` (once per worker process) and return its case runner. */
export async function setupTarget(name: TargetName, dir: string): Promise<RunCase> {
  switch (name) {
    case "safetensors":
      return safetensorsTarget(dir);
    case "tokenizer":
      return tokenizerTarget(dir);
    case "config":
      return configTarget(dir);
    case "gguf":
      return ggufTarget(dir);
    case "api":
      return apiTarget(dir);
    case "kernels":
      return kernelsTarget();
    case "selftest":
      return selfTarget();
    default:
      throw new Error(`fuzz: unknown target ${String(name satisfies never)}`);
  }
}
