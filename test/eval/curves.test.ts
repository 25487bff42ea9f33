// Loss curves: bins average the training loss, validation points pass through, the SVG has both series.
import assert from "node:assert/strict";
import { test } from "node:test";
import { curvesOf, curvesSvg } from "../../src/eval/curves.js";
import type { TrainingState } from "../../src/train/loop.js";

test("curves: training loss averaged per bin at the bin's last step; validation kept; SVG draws both", () => {
  const state: TrainingState = {
    stage: "pretrain-decoder",
    step: 10,
    steps: 20,
    seed: 1,
    history: Array.from({ length: 10 }, (_, i) => ({
      step: i,
      loss: i % 2 === 0 ? 4 : 2,
      lr: 0.1 * (i + 1),
    })),
    validation: [{ step: 10, loss: 3.5 }],
  };
  const c = curvesOf(state, "run", 5);
  assert.equal(c.bin, 2);
  assert.deepEqual(
    c.train.map((p) => [p.step, p.loss]),
    [
      [2, 3],
      [4, 3],
      [6, 3],
      [8, 3],
      [10, 3],
    ],
  );
  assert.equal(c.train[4].lr, 1.0);
  assert.deepEqual(c.validation, [{ step: 10, loss: 3.5 }]);
  const svg = curvesSvg(c);
  assert.match(svg, /validation/);
  assert.match(svg, /training \(mean of 2 steps\)/);
  assert.match(svg, /cross-entropy \(nats\/token\)/);
  // The policy stage's loss is its PPO objective, and says so.
  assert.match(curvesSvg({ ...c, stage: "policy" }), /PPO loss/);
  assert.throws(() => curvesOf({ ...state, history: undefined as never }, "bad"), /no history/);
});
