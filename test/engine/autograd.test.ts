// Finite-difference checks of every differentiable op through the tape (native kernels when built).
import assert from "node:assert/strict";
import { test } from "node:test";
import { freshRng, relErr } from "../helpers.js";
import * as ops from "../../src/engine/ops.js";
import { Tensor, noGrad } from "../../src/engine/tensor.js";
import type { Rng } from "../../src/engine/random.js";

function param(rng: Rng, shape: number[], std = 1): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  return new Tensor(rng.randn(n, std), shape, true);
}

/**
 * loss = Σ f(inputs) ∘ R for a fixed random R; compare the tape's gradient of every input with central
 * differences at up to `probes` random coordinates.
 */
function gradcheck(
  name: string,
  rng: Rng,
  seed: number,
  inputs: Tensor[],
  f: () => Tensor,
  tol = 2e-2,
  eps = 1e-2,
  probes = 24,
): void {
  const out0 = noGrad(f);
  const R = new Tensor(rng.randn(out0.size), out0.shape);
  const lossOf = () => noGrad(() => ops.sum(ops.mul(f(), R)).item());
  for (const x of inputs) x.grad = null;
  ops.sum(ops.mul(f(), R)).backward();
  for (const [i, x] of inputs.entries()) {
    assert.ok(x.grad !== null, `${name}: input ${i} got no gradient`);
    const analytic: number[] = [];
    const numeric: number[] = [];
    for (let p = 0; p < Math.min(probes, x.size); p++) {
      const j = x.size <= probes ? p : rng.int(x.size);
      const old = x.data[j];
      x.data[j] = old + eps;
      const up = lossOf();
      x.data[j] = old - eps;
      const down = lossOf();
      x.data[j] = old;
      numeric.push((up - down) / (2 * eps));
      analytic.push(x.grad[j]);
    }
    const e = relErr(analytic, numeric);
    assert.ok(
      e < tol,
      `${name}: input ${i} gradient relative error ${e.toExponential(2)} (seed ${seed})\n analytic ${analytic.slice(0, 6)}\n numeric  ${numeric.slice(0, 6)}`,
    );
  }
}

test("linear, matmul and bias gradients", () => {
  const { rng, seed } = freshRng();
  const x = param(rng, [7, 5]);
  const w = param(rng, [3, 5]);
  const b = param(rng, [3]);
  gradcheck("linear", rng, seed, [x, w, b], () => ops.linear(x, w, b));
  const a = param(rng, [4, 6]);
  const m = param(rng, [6, 3]);
  gradcheck("matmul", rng, seed, [a, m], () => ops.matmul(a, m));
});

test("elementwise gradients: add, mul, scale, silu, gelu, swiglu", () => {
  const { rng, seed } = freshRng();
  const a = param(rng, [5, 7]);
  const b = param(rng, [5, 7]);
  gradcheck("add", rng, seed, [a, b], () => ops.add(a, b));
  gradcheck("mul", rng, seed, [a, b], () => ops.mul(a, b));
  gradcheck("scale", rng, seed, [a], () => ops.scale(a, -1.7));
  gradcheck("silu", rng, seed, [a], () => ops.silu(a));
  gradcheck("gelu", rng, seed, [a], () => ops.gelu(a));
  gradcheck("swiglu", rng, seed, [a, b], () => ops.swiglu(a, b));
});

test("shape op gradients: reshape, concatRows, sliceRows, gatherRows, meanRows, sum", () => {
  const { rng, seed } = freshRng();
  const a = param(rng, [4, 6]);
  const b = param(rng, [3, 6]);
  gradcheck("reshape", rng, seed, [a], () => ops.mul(ops.reshape(a, [6, 4]), ops.reshape(a, [6, 4])));
  gradcheck("concatRows", rng, seed, [a, b], () => ops.concatRows([a, b, a]));
  gradcheck("sliceRows", rng, seed, [a], () => ops.sliceRows(a, 1, 3));
  gradcheck("gatherRows", rng, seed, [a], () => ops.gatherRows(a, Int32Array.of(3, 0, 3, 1)));
  gradcheck("meanRows", rng, seed, [a], () => ops.meanRows(a));
  gradcheck("sum", rng, seed, [a], () => ops.sum(ops.mul(a, a)));
});

test("norm and softmax gradients", () => {
  const { rng, seed } = freshRng();
  const x = param(rng, [5, 9]);
  const w = param(rng, [9]);
  const b = param(rng, [9]);
  gradcheck("rmsnorm", rng, seed, [x, w], () => ops.rmsnorm(x, w, 1e-5));
  gradcheck("layernorm", rng, seed, [x, w, b], () => ops.layernorm(x, w, b, 1e-5));
  gradcheck("softmax", rng, seed, [x], () => ops.softmax(x));
});

test("rope gradient", () => {
  const { rng, seed } = freshRng();
  const x = param(rng, [5, 2 * 8]);
  const positions = Int32Array.of(0, 3, 4, 9, 100);
  gradcheck("rope", rng, seed, [x], () => ops.rope(x, 2, positions, 10000));
});

test("attention gradients: causal, grouped-query, batch, padding, query offset", () => {
  const { rng, seed } = freshRng();
  const D = 4;
  const q = param(rng, [2 * 5, 4 * D]);
  const k = param(rng, [2 * 5, 2 * D]);
  const v = param(rng, [2 * 5, 2 * D]);
  gradcheck("attention causal gqa", rng, seed, [q, k, v], () =>
    ops.attention(q, k, v, { batch: 2, heads: 4, kvHeads: 2, causal: true }),
  );
  gradcheck("attention padded", rng, seed, [q, k, v], () =>
    ops.attention(q, k, v, { batch: 2, heads: 4, kvHeads: 2, causal: false, kvLen: Int32Array.of(3, 5) }),
  );
  const q1 = param(rng, [3, 2 * D]);
  const k1 = param(rng, [7, 2 * D]);
  const v1 = param(rng, [7, 2 * D]);
  gradcheck("attention qOffset", rng, seed, [q1, k1, v1], () =>
    ops.attention(q1, k1, v1, { heads: 2, kvHeads: 2, causal: true, qOffset: 4 }),
  );
});

test("cross-entropy gradient and value", () => {
  const { rng, seed } = freshRng();
  const logits = param(rng, [6, 11], 2);
  const targets = Int32Array.of(3, -100, 0, 10, 5, 5);
  gradcheck("crossEntropy", rng, seed, [logits], () => ops.crossEntropy(logits, targets), 2e-2, 1e-2);
  // Value against a direct computation.
  let total = 0;
  let kept = 0;
  for (let r = 0; r < 6; r++) {
    if (targets[r] === -100) continue;
    const row = Array.from(logits.data.subarray(r * 11, (r + 1) * 11));
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((s, z) => s + Math.exp(z - mx), 0));
    total += lse - row[targets[r]];
    kept++;
  }
  const got = noGrad(() => ops.crossEntropy(logits, targets).item());
  assert.ok(
    Math.abs(got - total / kept) < 1e-4 * Math.max(1, Math.abs(total / kept)),
    `crossEntropy ${got} vs ${total / kept}`,
  );
});

test("ops name the op and the shapes in errors", () => {
  const a = Tensor.zeros([2, 3]);
  const b = Tensor.zeros([3, 2]);
  assert.throws(() => ops.add(a, b), /add: shapes differ: \[2, 3\] vs \[3, 2\]/);
  assert.throws(
    () => ops.linear(a, Tensor.zeros([4, 5])),
    /linear: input \[2, 3\] does not match weight \[4, 5\]/,
  );
  assert.throws(() => ops.matmul(a, a), /matmul: cannot multiply \[2, 3\] by \[2, 3\]/);
  assert.throws(
    () => ops.crossEntropy(a, Int32Array.of(0, 7)),
    /crossEntropy: target 7 at row 1 outside vocabulary \[0, 3\)/,
  );
  assert.throws(() => ops.sliceRows(a, 1, 5), /sliceRows: range \[1, 5\) outside \[2, 3\]/);
  assert.throws(() => Tensor.zeros([2, 2]).backward(), /not a scalar/);
});

test("no-grad mode records nothing", () => {
  const { rng } = freshRng();
  const w = param(rng, [3, 4]);
  const x = param(rng, [2, 4]);
  const y = noGrad(() => ops.linear(x, w));
  assert.equal(y.tape, null);
  assert.equal(y.requiresGrad, false);
  const z = ops.linear(x, w);
  assert.notEqual(z.tape, null);
});

test("selection log-probability (sampling without replacement) gradient and value", () => {
  const { rng, seed } = freshRng();
  const logits = param(rng, [7]);
  gradcheck(
    "selectionLogProb",
    rng,
    seed,
    [logits],
    () => ops.scale(ops.selectionLogProb(logits, [3, 0, 5]), 1),
    2e-2,
    1e-2,
  );
  // Drawing every index: the probabilities of all orders sum to 1 (checked for L = 3).
  const small = Tensor.from([0.3, -1.2, 2.0]);
  let total = 0;
  for (const order of [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ])
    total += Math.exp(noGrad(() => ops.selectionLogProb(small, order).item()));
  assert.ok(Math.abs(total - 1) < 1e-6, `orders sum to ${total}`);
  assert.throws(() => ops.selectionLogProb(small, [1, 1]), /repeated/);
  assert.throws(() => ops.selectionLogProb(small, [3]), /outside \[0, 3\)/);
});
