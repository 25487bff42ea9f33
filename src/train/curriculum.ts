// The REFRAG curriculum: start by reconstructing 1 chunk from 1 vector, then 2, 4, … up to L chunks, moving
// the data mixture over 9 stages from mostly-easy to mostly-hard (the paper's Table 8 uses geometric
// per-stage weights; it gives the shape, not a formula, so this is ours):
//   weight of level j (2^j chunks) at stage i ∝ ratio^(j · (2·i/(S-1) − 1))
// Stage 0 favours level 0 geometrically, the last stage favours the longest level, the middle is flat.
import type { Rng } from "../engine/random.js";

export interface Curriculum {
  /** Chunk counts per level: 1, 2, 4, … up to maxChunks (maxChunks itself is always the last level). */
  levels: number[];
  stages: number;
  ratio: number;
}

export function makeCurriculum(maxChunks: number, stages = 9, ratio = 2): Curriculum {
  if (!Number.isInteger(maxChunks) || maxChunks < 1)
    throw new Error(`curriculum: maxChunks must be a positive integer, got ${maxChunks}`);
  if (!Number.isInteger(stages) || stages < 1)
    throw new Error(`curriculum: stages must be a positive integer, got ${stages}`);
  const levels: number[] = [];
  for (let n = 1; n < maxChunks; n *= 2) levels.push(n);
  levels.push(maxChunks);
  return { levels, stages, ratio };
}

/** Mixture weights over levels at a given stage (sum 1). */
export function stageWeights(c: Curriculum, stage: number): number[] {
  const u = c.stages === 1 ? 1 : (2 * Math.min(stage, c.stages - 1)) / (c.stages - 1) - 1;
  const w = c.levels.map((_, j) => c.ratio ** (j * u));
  const z = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / z);
}

/** The stage a step falls in when `steps` are split evenly over the stages. */
export function stageOf(c: Curriculum, step: number, steps: number): number {
  return Math.min(c.stages - 1, Math.floor((step * c.stages) / Math.max(1, steps)));
}

/** Draw a level's chunk count for this step. */
export function sampleChunks(c: Curriculum, step: number, steps: number, rng: Rng): number {
  const w = stageWeights(c, stageOf(c, step, steps));
  let r = rng.uniform();
  for (let j = 0; j < w.length; j++) {
    r -= w[j];
    if (r <= 0) return c.levels[j];
  }
  return c.levels[c.levels.length - 1];
}
