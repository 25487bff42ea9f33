// The training loop shared by every stage: AdamW with warm-up + cosine decay, global-norm clipping,
// periodic atomic checkpoints, and exact resume. Read it top to bottom: one step = batch → loss →
// backward → clip → update.
//
// Exact resume: a step's batch depends only on (seed, step), never on a running random state, so a run
// stopped after step n and resumed from its checkpoint computes the same parameters as an unbroken run.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../engine/random.js";
import { noGrad, type Tensor } from "../engine/tensor.js";
import { loadCheckpoint, prepareCheckpointDir, saveCheckpoint } from "../io/checkpoint.js";
import type { JsonObject, ModelConfig } from "../io/config.js";
import type { StTensor } from "../io/safetensors.js";
import { checkShapes, finiteFloat32, loadWeights } from "../models/load.js";
import type { Module, Parameter } from "../nn/module.js";
import { AdamW, clipGradNorm, cosineSchedule } from "./optimizer.js";

export interface LoopConfig {
  steps: number;
  lr: number;
  warmupFrac?: number;
  minLrRatio?: number;
  weightDecay?: number;
  beta2?: number;
  gradClip?: number;
  /** Save a checkpoint every this many steps (and at the end). */
  saveEvery?: number;
  logEvery?: number;
  /** Measure the validation loss every this many steps (and at the end), when the stage has a validation set. */
  evalEvery?: number;
  seed?: number;
}

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  ms: number;
}

export interface TrainingState extends JsonObject {
  stage: string;
  step: number;
  steps: number;
  seed: number;
  history: { step: number; loss: number; lr: number }[];
  /** Validation loss after `step` steps (when the stage has a validation set). */
  validation?: { step: number; loss: number }[];
}

/** Where a training stage writes and how it reports: the part of a stage's options the CLI supplies. */
export interface StageIO {
  out: string;
  tokenizerJson?: string;
  log?: (info: StepInfo) => void;
  shouldStop?: () => boolean;
  logValidation?: (step: number, loss: number) => void;
}

/** The loop options that come straight from a stage's StageIO. */
export function ioOptions(
  io: StageIO,
): Pick<LoopOptions, "outDir" | "tokenizerJson" | "log" | "shouldStop" | "logValidation"> {
  return {
    outDir: io.out,
    tokenizerJson: io.tokenizerJson,
    log: io.log,
    shouldStop: io.shouldStop,
    logValidation: io.logValidation,
  };
}

export interface LoopOptions {
  stage: string;
  model: Module;
  /** Which parameters train (default all); the rest stay frozen. */
  trainable?: (name: string) => boolean;
  config: LoopConfig;
  /** Checkpoint folder written during training (resumed from when it holds this stage's state). */
  outDir: string;
  /** config.json of the saved checkpoint. */
  modelConfig: ModelConfig | JsonObject;
  tokenizerJson?: string;
  /** The loss of step `step`; draw the batch from `rng` only. */
  loss: (step: number, rng: Rng) => Tensor;
  /** Mean loss on a fixed held-out set (run without gradients; the same batches every time). */
  validate?: () => number;
  /** Called every logEvery steps and at the end. */
  log?: (info: StepInfo) => void;
  /** Stop early (e.g. on SIGINT) after the current step, saving a checkpoint first. */
  shouldStop?: () => boolean;
  /** Called with each validation measurement. */
  logValidation?: (step: number, loss: number) => void;
}

function stateTensors(opt: AdamW): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const [name, m] of opt.m) out.set(`m.${name}`, { dtype: "F32", shape: [m.length], data: m });
  for (const [name, v] of opt.v) out.set(`v.${name}`, { dtype: "F32", shape: [v.length], data: v });
  return out;
}

/** Save model + optimizer + training state atomically. */
export async function saveTrainingCheckpoint(
  o: LoopOptions,
  opt: AdamW,
  state: TrainingState,
): Promise<void> {
  const tensors = new Map<string, StTensor>();
  for (const [name, p] of o.model.namedParameters())
    tensors.set(name, { dtype: "F32", shape: [...p.shape], data: p.data });
  await saveCheckpoint(o.outDir, {
    config: o.modelConfig,
    tensors,
    tokenizerJson: o.tokenizerJson,
    trainingState: state,
    optimizer: stateTensors(opt),
  });
}

/** Run (or resume) a stage. Returns the final training state. */
export async function trainLoop(o: LoopOptions): Promise<TrainingState> {
  const c = o.config;
  const seed = c.seed ?? 0;
  if (!Number.isInteger(c.steps) || c.steps < 1)
    throw new Error(`${o.stage}: steps must be a positive integer, got ${c.steps}`);
  if (!(c.lr > 0)) throw new Error(`${o.stage}: lr must be > 0, got ${c.lr}`);
  const all = o.model.namedParameters();
  const params = new Map<string, Parameter>([...all].filter(([n]) => (o.trainable ? o.trainable(n) : true)));
  if (params.size === 0) throw new Error(`${o.stage}: no trainable parameters`);
  for (const [n, p] of all) p.requiresGrad = params.has(n);
  const opt = new AdamW(params, { lr: c.lr, weightDecay: c.weightDecay ?? 0.1, beta2: c.beta2 ?? 0.95 });
  let state: TrainingState = { stage: o.stage, step: 0, steps: c.steps, seed, history: [] };

  // Resume when the output folder holds this stage's checkpoint (after finishing or removing what an
  // interrupted save left beside it).
  for (const note of await prepareCheckpointDir(o.outDir)) console.error(`${o.stage}: ${note}`);
  const existing = existsSync(join(o.outDir, "config.json"))
    ? await loadCheckpoint(o.outDir, { optimizer: true })
    : null;
  if (existing?.trainingState?.stage === o.stage) {
    const s = existing.trainingState as TrainingState;
    if (s.steps !== c.steps || s.seed !== seed)
      throw new Error(
        `${o.stage}: ${o.outDir} holds a run with steps=${s.steps}, seed=${s.seed}; this run asks steps=${c.steps}, seed=${seed} (use a new --out)`,
      );
    loadWeights(o.model, existing.tensors, `checkpoint ${existing.dir}`);
    for (const [name, m] of opt.m) {
      const mt = existing.optimizer?.get(`m.${name}`);
      const vt = existing.optimizer?.get(`v.${name}`);
      if (mt === undefined || vt === undefined)
        throw new Error(`${o.stage}: ${o.outDir} has no optimizer state for ${name}`);
      const where = `checkpoint ${existing.dir} optimizer`;
      checkShapes(
        new Map([
          [`m.${name}`, [m.length]],
          [`v.${name}`, [m.length]],
        ]),
        new Map([
          [`m.${name}`, mt],
          [`v.${name}`, vt],
        ]),
        where,
      );
      m.set(finiteFloat32(mt, `${where}: m.${name}`));
      opt.v.get(name)!.set(finiteFloat32(vt, `${where}: v.${name}`));
    }
    opt.step = s.step;
    state = s;
  }

  const logEvery = c.logEvery ?? 10;
  const saveEvery = c.saveEvery ?? 100;
  const evalEvery = c.evalEvery ?? saveEvery;
  const validate = o.validate;
  for (let step = state.step; step < c.steps; step++) {
    const t0 = performance.now();
    const lr = cosineSchedule(step, c.steps, c.lr, c.warmupFrac ?? 0.04, c.minLrRatio ?? 0.1);
    const loss = o.loss(step, new Rng(seed * 1_000_003 + step));
    opt.zeroGrad();
    loss.backward();
    const gradNorm = clipGradNorm(params.values(), c.gradClip ?? 1.0);
    const value = loss.item();
    if (!Number.isFinite(value) || !Number.isFinite(gradNorm))
      throw new Error(
        `${o.stage}: step ${step}: loss ${value}, gradient norm ${gradNorm}; stopping before the weights are damaged (the last checkpoint is intact)`,
      );
    opt.stepAll(lr);
    state.step = step + 1;
    state.history.push({ step, loss: value, lr });
    const info = { step, loss: value, lr, gradNorm, ms: performance.now() - t0 };
    if (o.log && (step % logEvery === 0 || step + 1 === c.steps)) o.log(info);
    // Steps are synchronous: give the event loop a turn so a pending SIGINT handler runs now, not at
    // the next checkpoint.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const stop = o.shouldStop?.() ?? false;
    if (validate && ((step + 1) % evalEvery === 0 || step + 1 === c.steps)) {
      const v = noGrad(validate);
      (state.validation ??= []).push({ step: step + 1, loss: v });
      o.logValidation?.(step + 1, v);
    }
    if ((step + 1) % saveEvery === 0 || step + 1 === c.steps || stop)
      await saveTrainingCheckpoint(o, opt, state);
    if (stop) break;
  }
  return state;
}
