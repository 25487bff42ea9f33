// Checkpoint folders in Hugging Face layout:
//   config.json                  model config (kept as written)
//   model.safetensors            weights with Hugging Face tensor names
//     or model.safetensors.index.json + shards (read only, as transformers shards large models)
//   tokenizer.json               optional, kept byte-exact
//   training_state.json          optional, for resuming (step, schedule, rng state...)
//   optimizer.safetensors        optional, optimizer moments
// Saving writes a complete sibling temp folder and renames it into place, so a failure mid-write never
// leaves a half checkpoint where a good one was; recoverCheckpoint finishes or removes what a crash left.
// A folder reached through a symbolic link is saved into the link's target (the link stays).
import { mkdir, open, readFile, rename, rm, stat, readdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { parseConfig, configToJson, type JsonObject, type ModelConfig } from "./config.js";
import { followLink, otherProcessAlive, parseTempSibling, tempSibling } from "./atomic.js";
import { SafetensorsFile, writeSafetensors, type StTensor, type TensorMap } from "./safetensors.js";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";
export const TOKENIZER_FILE = "tokenizer.json";
export const TRAINING_STATE_FILE = "training_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";

/** The files a checkpoint folder owns; anything else in the folder is the user's and survives a save. */
const CHECKPOINT_FILES = new Set([
  "config.json",
  "model.safetensors",
  "model.safetensors.index.json",
  "tokenizer.json",
  "training_state.json",
  "optimizer.safetensors",
]);

export interface CheckpointToSave {
  /** The config as it should be written (a typed config or any JSON object with a model_type). */
  config: ModelConfig | JsonObject;
  tensors: TensorMap;
  /** Stored in model.safetensors' __metadata__ (transformers writes {"format": "pt"}). */
  metadata?: Record<string, string>;
  /** tokenizer.json text, written byte-exact. */
  tokenizerJson?: string;
  trainingState?: JsonObject;
  optimizer?: TensorMap;
}

export interface Checkpoint {
  dir: string;
  /** config.json as written. */
  rawConfig: JsonObject;
  /** Typed, defaulted view. */
  config: ModelConfig;
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
  tokenizerJson: string | null;
  trainingState: JsonObject | null;
  optimizer: Map<string, StTensor> | null;
}

export interface SaveOptions {
  /** Test hook: called after every file is written into the temp folder, before it replaces dir. */
  beforeCommit?: (tempDir: string) => void | Promise<void>;
}

/** Test seam for crash tests: runs between the two renames of a save that replaces a checkpoint. */
export const saveHooks: { betweenRenames?: () => void } = {};

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeTextFile(path: string, text: string): Promise<void> {
  const fh = await open(path, "wx");
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  // Make the renames durable; some file systems refuse fsync on directories, which is harmless here.
  try {
    const fh = await open(path, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

const isOwned = (name: string) => CHECKPOINT_FILES.has(name) || /^model-\d+-of-\d+\.safetensors$/.test(name);

/** Move files the checkpoint does not own (a log, evaluation output) from `from` into `dir`, same names. */
async function carryUserFiles(from: string, dir: string): Promise<void> {
  for (const name of await readdir(from))
    if (!isOwned(name) && !(await exists(join(dir, name)))) await rename(join(from, name), join(dir, name));
}

/** Refuse targets a save must not replace: a file, or a non-empty folder that is not a checkpoint. */
async function checkSaveTarget(dir: string): Promise<void> {
  const s = await stat(dir).catch(() => null);
  if (s === null) return;
  if (!s.isDirectory())
    throw new Error(`checkpoint ${dir}: exists and is not a folder; refusing to replace it`);
  const names = await readdir(dir);
  if (names.length > 0 && !names.includes(CONFIG_FILE))
    throw new Error(
      `checkpoint ${dir}: a folder that is not a checkpoint (no ${CONFIG_FILE}, ${names.length} other entries); refusing to replace it`,
    );
}

/** dir becomes `complete` (a finished checkpoint folder beside it); the previous one's user files carry over. */
async function swapIn(dir: string, complete: string): Promise<void> {
  if (await exists(dir)) {
    const backup = tempSibling(dir, "old");
    await rename(dir, backup);
    saveHooks.betweenRenames?.();
    await rename(complete, dir);
    await syncDir(dirname(dir));
    await carryUserFiles(backup, dir);
    await rm(backup, { recursive: true, force: true });
  } else {
    await rename(complete, dir);
    await syncDir(dirname(dir));
  }
}

/**
 * Finish or undo saves of dir that a crash interrupted, and say what was done. Leftovers beside dir:
 * `.NAME.tmp-*` (a folder still being written: removed), `.NAME.new-*` (complete, not yet in place: the
 * newest becomes dir), `.NAME.old-*` (the previous checkpoint: its user files carried into dir, then
 * removed; restored as dir when dir is missing). Leftovers of a live process are left alone.
 */
export async function recoverCheckpoint(dir: string): Promise<string[]> {
  dir = await followLink(dir, "checkpoint");
  const parent = dirname(dir);
  const entries = await readdir(parent).catch(() => [] as string[]);
  const found: Record<string, string[]> = { tmp: [], new: [], old: [] };
  for (const name of entries) {
    const t = parseTempSibling(dir, name);
    if (t !== null && t.tag in found && !otherProcessAlive(t.pid)) found[t.tag].push(join(parent, name));
  }
  const notes: string[] = [];
  for (const p of found.tmp) {
    await rm(p, { recursive: true, force: true });
    notes.push(`removed ${p}, an interrupted checkpoint write (incomplete)`);
  }
  const byTime = async (ps: string[]) =>
    (await Promise.all(ps.map(async (p) => ({ p, t: (await stat(p)).mtimeMs })))).sort((a, b) => b.t - a.t);
  const complete = await byTime(found.new);
  for (const { p } of complete.slice(1)) {
    await rm(p, { recursive: true, force: true });
    notes.push(`removed ${p}, a complete checkpoint superseded by a newer one`);
  }
  const old = await byTime(found.old);
  if (complete.length > 0) {
    await swapIn(dir, complete[0].p);
    notes.push(`finished an interrupted save: ${dir} now holds the checkpoint written last`);
  } else if (!(await exists(dir)) && old.length > 0) {
    await rename(old[0].p, dir);
    old.shift();
    notes.push(
      `restored ${dir} from the previous checkpoint (a save was interrupted before its new folder was complete)`,
    );
  }
  for (const { p } of old) {
    if (await exists(dir)) await carryUserFiles(p, dir);
    await rm(p, { recursive: true, force: true });
    notes.push(`removed ${p}, the previous checkpoint of an interrupted save`);
  }
  return notes;
}

/**
 * What a writer does before saving into dir (saveCheckpoint, and a training run before it starts): finish
 * or remove an interrupted save's leftovers (the notes say what was done), then refuse a target that is a
 * file or a folder that is not a checkpoint, so a run fails at once rather than at its first save.
 */
export async function prepareCheckpointDir(dir: string): Promise<string[]> {
  dir = await followLink(dir, "checkpoint");
  const notes = await recoverCheckpoint(dir);
  await checkSaveTarget(dir);
  return notes;
}

/**
 * Save a checkpoint folder atomically. The whole folder is written beside dir (`.NAME.tmp-*`), renamed to
 * `.NAME.new-*` once complete, then swapped in with two renames (dir -> `.NAME.old-*`, new -> dir) and the
 * old one removed. A crash at any point leaves leftovers that recoverCheckpoint finishes or removes (the
 * next save, or the next training run, calls it). Refuses to replace a file or a folder that is not a
 * checkpoint; files in dir that a checkpoint does not own (a log) carry over to the new folder.
 */
export async function saveCheckpoint(
  dir: string,
  ckpt: CheckpointToSave,
  opts: SaveOptions = {},
): Promise<string[]> {
  dir = await followLink(dir, "checkpoint");
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const configText = configToJson(ckpt.config);
  if (typeof (ckpt.config as JsonObject).model_type !== "string")
    throw new Error(`checkpoint ${dir}: config has no model_type`);
  const notes = await prepareCheckpointDir(dir);
  const tmp = tempSibling(dir, "tmp");
  await mkdir(tmp);
  try {
    await writeTextFile(join(tmp, CONFIG_FILE), configText);
    await writeSafetensors(join(tmp, WEIGHTS_FILE), ckpt.tensors, ckpt.metadata ?? { format: "pt" });
    if (ckpt.tokenizerJson !== undefined) await writeTextFile(join(tmp, TOKENIZER_FILE), ckpt.tokenizerJson);
    if (ckpt.trainingState !== undefined)
      await writeTextFile(join(tmp, TRAINING_STATE_FILE), JSON.stringify(ckpt.trainingState, null, 2) + "\n");
    if (ckpt.optimizer !== undefined) await writeSafetensors(join(tmp, OPTIMIZER_FILE), ckpt.optimizer);
    await syncDir(tmp);
    if (opts.beforeCommit !== undefined) await opts.beforeCommit(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const complete = tempSibling(dir, "new");
  await rename(tmp, complete);
  await swapIn(dir, complete);
  return notes;
}

export interface LoadOptions {
  /** Also load optimizer.safetensors when present (default false: inference does not need it). */
  optimizer?: boolean;
}

async function readTensors(
  files: SafetensorsFile[],
  into: Map<string, StTensor>,
  metadata: Record<string, string>,
): Promise<void> {
  for (const f of files) {
    Object.assign(metadata, f.metadata);
    for (const name of f.names()) {
      if (into.has(name))
        throw new Error(`checkpoint: tensor "${name}" appears in more than one shard (${f.path})`);
      into.set(name, await f.read(name));
    }
  }
}

/** Open the weight files of a checkpoint folder (single file or sharded with an index) lazily. */
export async function openWeights(dir: string): Promise<SafetensorsFile[]> {
  const single = join(dir, WEIGHTS_FILE);
  if (await exists(single)) return [await SafetensorsFile.open(single)];
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  if (!(await exists(indexPath)))
    throw new Error(`checkpoint ${dir}: neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE} found`);
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (e) {
    throw new Error(`checkpoint ${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map))
    throw new Error(`checkpoint ${indexPath}: no "weight_map" object`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  const files: SafetensorsFile[] = [];
  try {
    for (const s of shards) {
      if (typeof s !== "string" || s.includes("/") || s.includes("\\"))
        throw new Error(`checkpoint ${indexPath}: bad shard name ${JSON.stringify(s)}`);
      files.push(await SafetensorsFile.open(join(dir, s)));
    }
    for (const [name, shard] of Object.entries(map as Record<string, string>)) {
      const f = files[shards.indexOf(shard)];
      if (!f.has(name))
        throw new Error(
          `checkpoint ${indexPath}: weight_map puts "${name}" in ${shard}, which does not hold it`,
        );
    }
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
  return files;
}

async function missingDirError(dir: string): Promise<Error> {
  let hint = "";
  try {
    const prefix = `.${basename(dir)}.old-`;
    const left = (await readdir(dirname(dir))).filter((n) => n.startsWith(prefix));
    if (left.length > 0)
      hint = ` (a save was interrupted; the previous checkpoint is at ${join(dirname(dir), left[0])})`;
  } catch {
    /* parent missing too */
  }
  return new Error(`checkpoint ${dir}: folder not found${hint}`);
}

export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  dir = resolve(dir);
  if (!(await exists(dir))) throw await missingDirError(dir);
  const configPath = join(dir, CONFIG_FILE);
  let rawConfig: JsonObject;
  try {
    const parsed: unknown = JSON.parse(await readFile(configPath, "utf8"));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new Error("not a JSON object");
    rawConfig = parsed as JsonObject;
  } catch (e) {
    throw new Error(`checkpoint ${configPath}: ${(e as Error).message}`);
  }
  const config = parseConfig(rawConfig, configPath);
  const tensors = new Map<string, StTensor>();
  const metadata: Record<string, string> = {};
  const files = await openWeights(dir);
  try {
    await readTensors(files, tensors, metadata);
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
  const tokPath = join(dir, TOKENIZER_FILE);
  const tokenizerJson = (await exists(tokPath)) ? await readFile(tokPath, "utf8") : null;
  const statePath = join(dir, TRAINING_STATE_FILE);
  let trainingState: JsonObject | null = null;
  if (await exists(statePath)) {
    try {
      trainingState = JSON.parse(await readFile(statePath, "utf8")) as JsonObject;
    } catch (e) {
      throw new Error(`checkpoint ${statePath}: not valid JSON (${(e as Error).message})`);
    }
  }
  let optimizer: Map<string, StTensor> | null = null;
  const optPath = join(dir, OPTIMIZER_FILE);
  if (opts.optimizer === true && (await exists(optPath))) {
    const f = await SafetensorsFile.open(optPath);
    try {
      optimizer = await f.readAll();
    } finally {
      await f.close();
    }
  }
  return { dir, rawConfig, config, tensors, metadata, tokenizerJson, trainingState, optimizer };
}
