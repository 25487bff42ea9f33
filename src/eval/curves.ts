// Loss curves of a training run, from the training_state.json its checkpoint folder holds: the training loss
// averaged over bins of steps (single steps are noisy), the validation loss where the stage measured one,
// and the learning rate. Written as JSON (the numbers) and SVG (the plot) into docs/training/.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FileHandle } from "node:fs/promises";
import { writeAll, writeFileAtomic } from "../io/atomic.js";
import { TRAINING_STATE_FILE } from "../io/checkpoint.js";
import type { TrainingState } from "../train/loop.js";
import { renderSvg } from "./plot.js";

export interface Curves {
  name: string;
  stage: string;
  /** Steps done / planned. */
  step: number;
  steps: number;
  /** Mean training loss over each bin of `bin` steps, at the bin's last step. */
  train: { step: number; loss: number; lr: number }[];
  validation: { step: number; loss: number }[];
  bin: number;
}

/** Curves from a run's saved training state. */
export function curvesOf(state: TrainingState, name: string, bins = 60): Curves {
  if (!Array.isArray(state.history)) throw new Error(`${name}: training state has no history`);
  const h = state.history;
  const bin = Math.max(1, Math.ceil(h.length / bins));
  const train: Curves["train"] = [];
  for (let i = 0; i < h.length; i += bin) {
    const part = h.slice(i, i + bin);
    const loss = part.reduce((a, p) => a + p.loss, 0) / part.length;
    const last = part[part.length - 1];
    train.push({ step: last.step + 1, loss, lr: last.lr });
  }
  return {
    name,
    stage: state.stage,
    step: state.step,
    steps: state.steps,
    train,
    validation: state.validation ?? [],
    bin,
  };
}

export function readCurves(runDir: string, name: string): Curves {
  const path = join(runDir, TRAINING_STATE_FILE);
  let state: TrainingState;
  try {
    state = JSON.parse(readFileSync(path, "utf8")) as TrainingState;
  } catch (e) {
    throw new Error(`${path}: cannot read the training state (${(e as Error).message})`);
  }
  return curvesOf(state, name);
}

export function curvesSvg(c: Curves): string {
  return renderSvg(
    [
      {
        title: `loss (${c.stage}, step ${c.step}/${c.steps})`,
        xLabel: "step",
        // The policy stage's loss is the clipped PPO objective (src/train/stages/policy.ts), not a cross-entropy.
        yLabel: c.stage === "policy" ? "PPO loss (clipped, negated)" : "cross-entropy (nats/token)",
        series: [
          { name: `training (mean of ${c.bin} steps)`, points: c.train.map((p) => [p.step, p.loss]) },
          ...(c.validation.length > 0
            ? [{ name: "validation", points: c.validation.map((p): [number, number] => [p.step, p.loss]) }]
            : []),
        ],
      },
      {
        title: "learning rate",
        xLabel: "step",
        yLabel: "lr",
        series: [{ name: "lr", points: c.train.map((p) => [p.step, p.lr]) }],
      },
    ],
    { title: c.name },
  );
}

/** Write <out>/<name>.json and <out>/<name>.svg; returns the two paths. */
export async function writeCurves(c: Curves, outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, `${c.name}.json`);
  const svg = join(outDir, `${c.name}.svg`);
  const text = (t: string) => (fh: FileHandle) => writeAll(fh, Buffer.from(t, "utf8"));
  await writeFileAtomic(json, "loss curves", text(JSON.stringify(c, null, 1) + "\n"));
  await writeFileAtomic(svg, "loss plot", text(curvesSvg(c)));
  return [json, svg];
}
