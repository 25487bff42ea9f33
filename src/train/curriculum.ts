// The REFRAG curriculum (paper Table 8): start by reconstructing 1 chunk from 1 vector, then 2, 4, … up to L
// chunks, moving the data mixture over 9 stages from mostly-easy to mostly-hard. The paper gives the
// mixture as a table of sample counts (rows: 1, 2, 4, … 256 chunks; columns: the stages), and that table is
// the schedule here: each row is geometric across the stages (start × ratio^stage), stage 1 is 75%
// single-chunk items, stage 9 has none, and stage sizes grow 12.8× from stage 1 to stage 9.
//
// Mapping the table onto a ladder of levels 1, 2, 4, … maxChunks (the last level is maxChunks itself):
// - level j takes row j; rows beyond the ladder fold into its top level (so at k = 16, s = 2048 the 128-chunk
//   level holds the 128- and 256-chunk rows; every stage keeps the table's size and its single-chunk share);
//   ladders longer than the table repeat its last row (rows 7–9 are equal: the table is flat at the top);
// - `stages` other than 9 resample the columns (geometric interpolation along each row);
// - steps per stage are proportional to the stage sizes (items), so stage 9 gets 12.8× stage 1's steps;
// - a step reads one level and fills its token budget with sequences of that length, so a level's chance
//   of being drawn for a step is its item count ÷ the items a step at that level holds: the items then come
//   out in the table's proportions, and (with a fixed token budget) the tokens in the table's token shares.
// `none` is the ablation of the paper's Table 11: every step at maxChunks.
import type { Rng } from "../engine/random.js";

/** Paper Table 8 (k = 8, s = 2048): sample counts, rows = 2^j chunks (j = 0 … 8), columns = stages 1 … 9. */
export const TABLE8: readonly (readonly number[])[] = [
  [1333, 445, 148, 49, 16, 6, 2, 1, 0],
  [333, 298, 267, 238, 213, 191, 171, 153, 137],
  [83, 102, 126, 156, 193, 238, 293, 362, 447],
  [20, 35, 61, 106, 185, 324, 565, 985, 1719],
  [5, 11, 23, 48, 103, 220, 468, 997, 2125],
  [1, 3, 7, 19, 50, 133, 353, 939, 2496],
  [1, 3, 9, 25, 73, 212, 618, 1802, 5259],
  [1, 3, 9, 25, 73, 212, 618, 1802, 5259],
  [1, 3, 9, 25, 73, 212, 618, 1802, 5259],
];

export type CurriculumKind = "table8" | "none";
export const CURRICULUM_KINDS: CurriculumKind[] = ["table8", "none"];

export interface Curriculum {
  kind: CurriculumKind;
  /** Chunk counts per level: 1, 2, 4, … up to maxChunks (maxChunks itself is always the last level). */
  levels: number[];
  stages: number;
  /** Item counts [level][stage] (relative sizes; Table 8 mapped onto the levels). */
  items: number[][];
}

/** A Table 8 row at fractional column x ∈ [0, 8]: geometric between neighbours (linear next to a zero). */
function rowAt(row: readonly number[], x: number): number {
  const i = Math.min(Math.floor(x), row.length - 2);
  const t = x - i;
  const [a, b] = [row[i], row[i + 1]];
  if (t === 0) return a;
  return a > 0 && b > 0 ? a * (b / a) ** t : a + (b - a) * t;
}

export function makeCurriculum(
  maxChunks: number,
  opts: { stages?: number; kind?: CurriculumKind } = {},
): Curriculum {
  const kind = opts.kind ?? "table8";
  const stages = kind === "none" ? 1 : (opts.stages ?? 9);
  if (!Number.isInteger(maxChunks) || maxChunks < 1)
    throw new Error(`curriculum: maxChunks must be a positive integer, got ${maxChunks}`);
  if (!Number.isInteger(stages) || stages < 1)
    throw new Error(`curriculum: stages must be a positive integer, got ${stages}`);
  if (!CURRICULUM_KINDS.includes(kind))
    throw new Error(`curriculum: unknown kind "${String(kind)}" (${CURRICULUM_KINDS.join(", ")})`);
  if (kind === "none") return { kind, levels: [maxChunks], stages, items: [[1]] };
  const levels: number[] = [];
  for (let n = 1; n < maxChunks; n *= 2) levels.push(n);
  levels.push(maxChunks);
  const L = levels.length;
  const cols = TABLE8[0].length;
  const rows = Math.max(L, TABLE8.length);
  const items = levels.map(() => new Array<number>(stages).fill(0));
  for (let r = 0; r < rows; r++) {
    const row = TABLE8[Math.min(r, TABLE8.length - 1)];
    const level = Math.min(r, L - 1);
    for (let i = 0; i < stages; i++)
      items[level][i] += rowAt(row, stages === 1 ? cols - 1 : (i * (cols - 1)) / (stages - 1));
  }
  return { kind, levels, stages, items };
}

/** Items of each stage (the table's column sums). */
export function stageSizes(c: Curriculum): number[] {
  return Array.from({ length: c.stages }, (_, i) => c.items.reduce((a, row) => a + row[i], 0));
}

/** Share of a stage's items at each level (sum 1). */
export function itemShares(c: Curriculum, stage: number): number[] {
  const z = stageSizes(c)[stage];
  return c.items.map((row) => row[stage] / z);
}

/** Share of a stage's tokens at each level (items × chunks; sum 1). */
export function tokenShares(c: Curriculum, stage: number): number[] {
  const t = c.items.map((row, j) => row[stage] * c.levels[j]);
  const z = t.reduce((a, b) => a + b, 0);
  return t.map((x) => x / z);
}

/** Steps of each stage when `steps` are split in proportion to the stage sizes (sums to `steps`). */
export function stageSteps(c: Curriculum, steps: number): number[] {
  const sizes = stageSizes(c);
  const total = sizes.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let cum = 0;
  let prev = 0;
  for (const s of sizes) {
    cum += s;
    const end = Math.round((steps * cum) / total);
    out.push(end - prev);
    prev = end;
  }
  return out;
}

/** The stage a step falls in. */
export function stageOf(c: Curriculum, step: number, steps: number): number {
  const per = stageSteps(c, steps);
  let end = 0;
  for (let i = 0; i < per.length; i++) {
    end += per[i];
    if (step < end) return i;
  }
  return c.stages - 1;
}

/**
 * Each level's chance of being drawn for a step of `stage`, when a step at level n holds `perStep(n)` items:
 * items ÷ items per step, so the items come out in the table's proportions. The default, perStep ∝ 1/n
 * (a fixed token budget), gives the stage's token shares.
 */
export function levelChances(
  c: Curriculum,
  stage: number,
  perStep: (chunks: number) => number = (n) => 1 / n,
): number[] {
  const w = c.items.map((row, j) => row[stage] / perStep(c.levels[j]));
  const z = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / z);
}

/** Draw a level's chunk count for this step (see levelChances). */
export function sampleChunks(
  c: Curriculum,
  step: number,
  steps: number,
  rng: Rng,
  perStep?: (chunks: number) => number,
): number {
  const w = levelChances(c, stageOf(c, step, steps), perStep);
  let r = rng.uniform();
  let last = c.levels.length - 1;
  for (let j = 0; j < w.length; j++) {
    if (w[j] === 0) continue;
    last = j;
    r -= w[j];
    if (r <= 0) return c.levels[j];
  }
  return c.levels[last];
}
