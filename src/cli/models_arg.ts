// Named checkpoints for the table commands: `--model refrag16=DIR` (repeatable; a bare DIR is named after
// its folder), loaded by their config's model_type (a REFRAG composite or a plain LLaMA decoder) through
// the checked loaders, with one tokenizer shared by all of them (the tables compare token-level scores, so
// every model must read the same token ids).
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE } from "../io/checkpoint.js";
import type { LlamaForCausalLM } from "../models/llama.js";
import { loadLlama, loadRefrag } from "../models/load.js";
import type { RefragModel } from "../models/refrag.js";
import { Tokenizer } from "../tokenizer/index.js";

export interface ModelSpec {
  name: string;
  dir: string;
}

/** Commander's collector for a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `name=DIR` or `DIR` (named after the folder); names are unique. */
export function parseModelSpecs(flag: string, values: readonly string[]): ModelSpec[] {
  const specs = values.map((v) => {
    const eq = v.indexOf("=");
    const spec =
      eq > 0 ? { name: v.slice(0, eq), dir: v.slice(eq + 1) } : { name: basename(resolve(v)), dir: v };
    if (!/^[A-Za-z0-9._-]+$/.test(spec.name))
      throw new Error(
        `${flag}: model name "${spec.name}" must be letters, digits, '.', '_' or '-' (give name=DIR)`,
      );
    if (spec.dir === "") throw new Error(`${flag}: "${v}" names no folder`);
    return spec;
  });
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new Error(`${flag}: model name "${s.name}" given twice`);
    seen.add(s.name);
  }
  return specs;
}

export type LoadedModel =
  | { name: string; dir: string; kind: "refrag"; model: RefragModel; fingerprint: string }
  | { name: string; dir: string; kind: "llama"; model: LlamaForCausalLM; fingerprint: string };

/** Folder, weights size and modification time: enough to tell a retrained checkpoint from the old one. */
export function weightsFingerprint(dir: string): string {
  const w = join(dir, WEIGHTS_FILE);
  const st = existsSync(w) ? statSync(w) : null;
  return `${resolve(dir)}:${st?.size ?? 0}:${st?.mtimeMs ?? 0}`;
}

/** Loads a REFRAG or LLaMA checkpoint by its config's model_type. */
export async function loadAnyModel(spec: ModelSpec): Promise<LoadedModel> {
  const cfgPath = join(spec.dir, CONFIG_FILE);
  if (!existsSync(cfgPath)) throw new Error(`model ${spec.name}: ${cfgPath} does not exist`);
  const type = (JSON.parse(readFileSync(cfgPath, "utf8")) as { model_type?: unknown }).model_type;
  const fingerprint = weightsFingerprint(spec.dir);
  if (type === "refrag") return { ...spec, kind: "refrag", model: await loadRefrag(spec.dir), fingerprint };
  if (type === "llama") return { ...spec, kind: "llama", model: await loadLlama(spec.dir), fingerprint };
  throw new Error(`model ${spec.name}: ${cfgPath} has model_type ${String(type)}, expected refrag or llama`);
}

/** The one tokenizer of a set of checkpoints; a clear error when any folder's tokenizer.json differs. */
export function sharedTokenizer(dirs: readonly string[]): Tokenizer {
  if (dirs.length === 0) throw new Error("no model folders given");
  const hash = (d: string) => {
    const p = join(d, TOKENIZER_FILE);
    if (!existsSync(p)) throw new Error(`${d}: no ${TOKENIZER_FILE}`);
    return createHash("sha256").update(readFileSync(p)).digest("hex");
  };
  const first = hash(dirs[0]);
  for (const d of dirs.slice(1))
    if (hash(d) !== first)
      throw new Error(
        `${join(d, TOKENIZER_FILE)} differs from ${join(dirs[0], TOKENIZER_FILE)}: the table compares token-level scores, so every model must use the same tokenizer`,
      );
  return Tokenizer.fromFile(join(dirs[0], TOKENIZER_FILE));
}

/** A comma-separated list of values, each parsed by `parse` (which names the flag in its errors). */
export function listOf<T>(flag: string, value: string, parse: (flag: string, v: string) => T): T[] {
  const parts = value
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
  if (parts.length === 0) throw new Error(`${flag}: empty list`);
  return parts.map((p) => parse(flag, p));
}
