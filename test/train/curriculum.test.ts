// The curriculum against the paper's Table 8 (REFRAG.md), copied here by hand: the test's own numbers,
// not the code's, so a change to the schedule shows up as a mismatch with the paper.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import {
  itemShares,
  levelChances,
  makeCurriculum,
  sampleChunks,
  stageOf,
  stageSizes,
  stageSteps,
  tokenShares,
} from "../../src/train/curriculum.js";

// Rows: 1, 2, 4, … 256 chunks (k = 8); columns: stages 1 … 9.
const PAPER = [
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
const col = (i: number) => PAPER.map((r) => r[i]);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("curriculum at k = 16, s = 2048 (levels 1 … 128): Table 8's item shares, stage growth, token shares", () => {
  const c = makeCurriculum(128);
  assert.deepEqual(c.levels, [1, 2, 4, 8, 16, 32, 64, 128]);
  assert.equal(c.stages, 9);
  // Stage sizes: 1,778 items in stage 1, 22,701 in stage 9 (12.8×).
  const sizes = stageSizes(c);
  close(sizes[0], 1778, 1e-9, "stage 1 items");
  close(sizes[8], 22701, 1e-9, "stage 9 items");
  close(sizes[8] / sizes[0], 22701 / 1778, 1e-9, "growth");
  for (let i = 0; i < 9; i++) {
    const paper = col(i);
    // The 256-chunk row is beyond the ladder: it joins the top level (128 chunks).
    const folded = [...paper.slice(0, 7), paper[7] + paper[8]];
    const want = folded.map((x) => x / sum(paper));
    itemShares(c, i).forEach((x, j) => close(x, want[j], 1e-12, `stage ${i + 1} level ${j}`));
    const tokens = folded.map((x, j) => x * 2 ** j);
    tokenShares(c, i).forEach((x, j) => close(x, tokens[j] / sum(tokens), 1e-12, `tokens ${i + 1}/${j}`));
  }
  close(itemShares(c, 0)[0], 0.75, 0.001, "stage 1 is 75% single-chunk items");
  assert.equal(itemShares(c, 8)[0], 0, "stage 9 has no single-chunk item");
  const last = tokenShares(c, 8);
  assert.ok(
    last[7] > 0.7 && last[6] + last[7] > 0.9,
    `by tokens, stage 9 is mostly the longest levels: ${last}`,
  );
  // Over the whole run (steps ∝ stage sizes), most tokens go to the longest levels.
  const run = c.levels.map((_, j) => sum(sizes.map((z, i) => z * itemShares(c, i)[j] * c.levels[j])));
  assert.ok((run[6] + run[7]) / sum(run) > 0.85, `token shares over the run ${run.map((x) => x / sum(run))}`);
});

test("curriculum: steps per stage follow the stage sizes; a step's level makes the items come out as in Table 8", () => {
  const c = makeCurriculum(128);
  const per = stageSteps(c, 10_000);
  assert.equal(sum(per), 10_000);
  const total = sum(PAPER.map(sum));
  for (let i = 0; i < 9; i++) close(per[i], (10_000 * sum(col(i))) / total, 1, `stage ${i + 1} steps`);
  close(per[8] / per[0], 22701 / 1778, 0.2, "stage 9 gets 12.8× stage 1's steps");
  assert.equal(stageOf(c, 0, 10_000), 0);
  assert.equal(stageOf(c, per[0] - 1, 10_000), 0);
  assert.equal(stageOf(c, per[0], 10_000), 1);
  assert.equal(stageOf(c, 9_999, 10_000), 8);
  // A step at level n holds 4096 / (16 n) sequences (at least 1): draws at stage 1 give 75% single-chunk
  // items, and at stage 9 none.
  const perStep = (n: number) => Math.max(1, Math.floor(4096 / (16 * n)));
  for (const [stage, step] of [
    [0, 0],
    [8, 9_999],
  ]) {
    const rng = new Rng(7);
    const items = new Map<number, number>();
    for (let d = 0; d < 20_000; d++) {
      const n = sampleChunks(c, step, 10_000, rng, perStep);
      items.set(n, (items.get(n) ?? 0) + perStep(n));
    }
    const all = sum([...items.values()]);
    const want = itemShares(c, stage);
    c.levels.forEach((n, j) =>
      close((items.get(n) ?? 0) / all, want[j], 0.02, `stage ${stage + 1}, ${n} chunks`),
    );
    close(sum(levelChances(c, stage, perStep)), 1, 1e-12, "chances sum to 1");
  }
});

test("curriculum: other ladders and stage counts keep the table's shape; 'none' is every step at the top", () => {
  // Nine levels (k = 8, s = 2048): the table itself.
  const t = makeCurriculum(256);
  for (let i = 0; i < 9; i++)
    itemShares(t, i).forEach((x, j) => close(x, PAPER[j][i] / sum(col(i)), 1e-12, `k=8 ${i}/${j}`));
  // A short ladder folds the rest into its top level: still 75% single-chunk first, none last.
  const short = makeCurriculum(24);
  assert.deepEqual(short.levels, [1, 2, 4, 8, 16, 24]);
  close(itemShares(short, 0)[0], 1333 / 1778, 1e-12, "short ladder, stage 1");
  assert.equal(itemShares(short, 8)[0], 0);
  close(stageSizes(short)[8] / stageSizes(short)[0], 22701 / 1778, 1e-9, "short ladder growth");
  // Five stages: the first and last are the table's first and last columns, the middle its middle one.
  const five = makeCurriculum(256, { stages: 5 });
  for (const [i, paperCol] of [
    [0, 0],
    [2, 4],
    [4, 8],
  ])
    itemShares(five, i).forEach((x, j) =>
      close(x, PAPER[j][paperCol] / sum(col(paperCol)), 1e-9, `5 stages ${i}/${j}`),
    );
  const none = makeCurriculum(128, { kind: "none" });
  assert.deepEqual(none.levels, [128]);
  const rng = new Rng(1);
  for (let step = 0; step < 100; step += 7) assert.equal(sampleChunks(none, step, 100, rng), 128);
  assert.throws(() => makeCurriculum(0), /maxChunks must be a positive integer/);
  assert.throws(() => makeCurriculum(8, { stages: 0 }), /stages must be a positive integer/);
});
