// Pointwise kernels: native vs the TypeScript reference on fresh random inputs of awkward sizes, gradient
// checks of every backward (central differences in float64 through the reference), AdamW against a
// hand-computed step, firstNonFinite, argmax against the sequential scan, and argument errors.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assertClose, eachIsa, freshRng, relErr, withThreads } from "../helpers.js";
import { loadAddon } from "../../src/engine/native.js";
import type { Rng } from "../../src/engine/random.js";
import {
  erf,
  erfc,
  missingNativePointwise,
  nativePointwise,
  refPointwise,
  refPointwiseF64,
  type Vec,
} from "../../src/engine/kernels/pointwise.js";
import type { PointwiseKernels } from "../../src/engine/kernels/types.js";

const hasAddon = loadAddon() !== null;
const N = nativePointwise;
const R = refPointwise;
const skipNative = hasAddon ? false : "native addon not built";

const ROWS = [1, 7, 33, 257];
const DIMS = [1, 7, 33, 257, 1000];
const LENGTHS = [1, 7, 8, 9, 33, 257, 1000, 4099];

function native(): PointwiseKernels {
  assert.deepEqual(missingNativePointwise(), [], "addon lacks pointwise kernels (stale build?)");
  assert.ok(N !== null);
  return N;
}

// ---------------------------------------------------------------- native vs reference

/**
 * Compare a column reduction (dw, db: base + the sum over rows of terms) relative to the sum of the
 * magnitudes it adds up, the scale of its rounding error; the result itself may cancel to near zero
 * (dim 1: every term is about ±dy).
 */
function assertCloseSum(
  actual: Float32Array,
  expected: Float32Array,
  base: Float32Array,
  rows: number,
  term: (r: number, j: number) => number,
  tol: number,
  what: string,
  seed: number,
): void {
  const dim = base.length;
  let scale = 0;
  let err = 0;
  for (let j = 0; j < dim; j++) {
    let s = Math.abs(base[j]);
    for (let r = 0; r < rows; r++) s += Math.abs(term(r, j));
    scale = Math.max(scale, s);
    err = Math.max(err, Math.abs(actual[j] - expected[j]));
  }
  assert.ok(
    err <= tol * scale,
    `${what}: error ${err.toExponential(3)} > ${tol} × ${scale.toExponential(3)} (seed ${seed})`,
  );
}

/** Compare every row-wise kernel for one (rows, dim). */
function compareRowOps(
  K: PointwiseKernels,
  rng: Rng,
  seed: number,
  rows: number,
  dim: number,
  tol: number,
): void {
  const what = `rows ${rows} dim ${dim}`;
  const n = rows * dim;
  const x = rng.randn(n, 2);
  for (let i = 0; i < n; i++) x[i] += 0.5; // a non-zero mean for layernorm
  const w = rng.randn(dim);
  const b = rng.randn(dim);
  const dy = rng.randn(n);
  const eps = 1e-5;

  // RMSNorm
  const [y1, y2, s1, s2] = [
    new Float32Array(n),
    new Float32Array(n),
    new Float32Array(rows),
    new Float32Array(rows),
  ];
  K.rmsnormForward(rows, dim, eps, x, w, y1, s1);
  R.rmsnormForward(rows, dim, eps, x, w, y2, s2);
  assertClose(y1, y2, tol, `rmsnormForward y ${what}`, seed);
  assertClose(s1, s2, tol, `rmsnormForward rstd ${what}`, seed);
  const [dx1, dx2] = [new Float32Array(n), new Float32Array(n)];
  const dw0 = rng.randn(dim); // backward accumulates into dw
  const [dw1, dw2] = [dw0.slice(), dw0.slice()];
  K.rmsnormBackward(rows, dim, x, w, s2, dy, dx1, dw1);
  R.rmsnormBackward(rows, dim, x, w, s2, dy, dx2, dw2);
  // dim 1: dx = s·w·dy·(1 - s²x²) is pure cancellation (about eps/x²), nothing to compare.
  if (dim > 1) assertClose(dx1, dx2, tol, `rmsnormBackward dx ${what}`, seed);
  const rmsTerm = (r: number, j: number): number => dy[r * dim + j] * x[r * dim + j] * s2[r];
  assertCloseSum(dw1, dw2, dw0, rows, rmsTerm, tol, `rmsnormBackward dw ${what}`, seed);

  // LayerNorm
  const [m1, m2] = [new Float32Array(rows), new Float32Array(rows)];
  K.layernormForward(rows, dim, eps, x, w, b, y1, m1, s1);
  R.layernormForward(rows, dim, eps, x, w, b, y2, m2, s2);
  assertClose(y1, y2, tol, `layernormForward y ${what}`, seed);
  assertClose(m1, m2, tol, `layernormForward mean ${what}`, seed);
  if (dim > 1) assertClose(s1, s2, tol, `layernormForward rstd ${what}`, seed);
  const db0 = rng.randn(dim);
  const [dwa, dwb, dba, dbb] = [dw0.slice(), dw0.slice(), db0.slice(), db0.slice()];
  K.layernormBackward(rows, dim, x, w, m2, s2, dy, dx1, dwa, dba);
  R.layernormBackward(rows, dim, x, w, m2, s2, dy, dx2, dwb, dbb);
  if (dim > 1) assertClose(dx1, dx2, tol, `layernormBackward dx ${what}`, seed);
  const lnTerm = (r: number, j: number): number => dy[r * dim + j] * (x[r * dim + j] - m2[r]) * s2[r];
  assertCloseSum(dwa, dwb, dw0, rows, lnTerm, tol, `layernormBackward dw ${what}`, seed);
  assertCloseSum(dba, dbb, db0, rows, (r, j) => dy[r * dim + j], tol, `layernormBackward db ${what}`, seed);

  // Softmax
  K.softmaxForward(rows, dim, x, y1);
  R.softmaxForward(rows, dim, x, y2);
  assertClose(y1, y2, tol, `softmaxForward ${what}`, seed);
  K.softmaxBackward(rows, dim, y2, dy, dx1);
  R.softmaxBackward(rows, dim, y2, dy, dx2);
  if (dim > 1) assertClose(dx1, dx2, tol, `softmaxBackward ${what}`, seed);
}

/** Every elementwise kernel for one length. */
function compareElementwise(K: PointwiseKernels, rng: Rng, seed: number, n: number, tol: number): void {
  const what = `n ${n}`;
  const x = rng.randn(n, 3);
  const u = rng.randn(n);
  const dy = rng.randn(n);
  const pairs: [string, (k: PointwiseKernels, o: Float32Array) => void][] = [
    ["siluForward", (k, o) => k.siluForward(x, o)],
    ["siluBackward", (k, o) => k.siluBackward(x, dy, o)],
    ["geluForward", (k, o) => k.geluForward(x, o)],
    ["geluBackward", (k, o) => k.geluBackward(x, dy, o)],
    ["swigluForward", (k, o) => k.swigluForward(x, u, o)],
    ["swigluBackward dgate", (k, o) => k.swigluBackward(x, u, dy, o, new Float32Array(n))],
    ["swigluBackward dup", (k, o) => k.swigluBackward(x, u, dy, new Float32Array(n), o)],
    ["add", (k, o) => k.add(x, u, o)],
    ["mul", (k, o) => k.mul(x, u, o)],
    ["axpy", (k, o) => (o.set(u), k.axpy(-0.37, x, o))],
    ["scaleInPlace", (k, o) => (o.set(x), k.scaleInPlace(o, 1.7))],
  ];
  for (const [name, run] of pairs) {
    const [a, b] = [new Float32Array(n), new Float32Array(n)];
    run(K, a);
    run(R, b);
    // Relative to at least the inputs' scale (~1): at short lengths every output can sit near a zero of
    // the function (gelu' at x ≈ -0.75), where the relative error of an approximation has no bound.
    assertClose(a, b, tol, `${name} ${what}`, seed, 1);
  }
  const ss = K.sumSquares(x);
  const ssRef = R.sumSquares(x);
  assert.ok(Math.abs(ss - ssRef) <= 1e-12 * ssRef, `sumSquares ${what}: ${ss} vs ${ssRef} (seed ${seed})`);
}

describe("pointwise native vs reference", { skip: skipNative }, () => {
  it("row-wise kernels (rmsnorm, layernorm, softmax) on awkward shapes", () => {
    const K = native();
    const { rng, seed } = freshRng();
    eachIsa(() => {
      for (const rows of ROWS) for (const dim of DIMS) compareRowOps(K, rng, seed, rows, dim, 2e-5);
    });
  });

  it("elementwise kernels on awkward lengths", () => {
    const K = native();
    const { rng, seed } = freshRng();
    eachIsa(() => {
      for (const n of LENGTHS) compareElementwise(K, rng, seed, n, 2e-6);
    });
  });

  it("elementwise kernels over far tails (|x| up to 60) and at zero", () => {
    const K = native();
    const { rng, seed } = freshRng();
    const x = rng.rand(1001, -60, 60);
    x[0] = 0;
    x[1] = -0;
    const dy = rng.randn(x.length);
    for (const name of ["siluForward", "geluForward"] as const) {
      const [a, b] = [new Float32Array(x.length), new Float32Array(x.length)];
      K[name](x, a);
      R[name](x, b);
      assertClose(a, b, 2e-6, name, seed);
    }
    for (const name of ["siluBackward", "geluBackward"] as const) {
      const [a, b] = [new Float32Array(x.length), new Float32Array(x.length)];
      K[name](x, dy, a);
      R[name](x, dy, b);
      assertClose(a, b, 2e-6, name, seed);
    }
    // GELU keeps relative accuracy in the negative tail (erfc-based), where values are tiny: the error is
    // the f32 rounding of the exponent argument (≈ x²/2), so it grows like 6e-8·x²/2.
    const neg = Float32Array.from({ length: 64 }, (_, i) => -0.5 - i * 0.14);
    const [a, b] = [new Float32Array(64), new Float32Array(64)];
    K.geluForward(neg, a);
    R.geluForward(neg, b);
    for (let i = 0; i < 64; i++)
      assert.ok(
        Math.abs(a[i] - b[i]) <= 1e-7 * (4 + neg[i] * neg[i]) * Math.abs(b[i]),
        `gelu(${neg[i]}) = ${a[i]} vs ${b[i]}`,
      );
  });

  it("cross-entropy with ignored rows, V up to 8000", () => {
    const K = native();
    const { rng, seed } = freshRng();
    const shapes: [number, number][] = [
      [1, 1],
      [7, 7],
      [33, 33],
      [7, 257],
      [33, 1000],
      [257, 33],
      [5, 8000],
    ];
    for (const [rows, V] of shapes) {
      const logits = rng.randn(rows * V, 3);
      const targets = Int32Array.from({ length: rows }, () => (rng.uniform() < 0.25 ? -100 : rng.int(V)));
      if (rows > 1) targets[rows - 1] = -100;
      const [l1, l2] = [new Float32Array(rows), new Float32Array(rows)];
      const loss1 = K.crossEntropyForward(rows, V, logits, targets, -100, l1);
      const loss2 = R.crossEntropyForward(rows, V, logits, targets, -100, l2);
      assert.ok(
        Math.abs(loss1 - loss2) <= 1e-5 * Math.max(1, Math.abs(loss2)),
        `CE loss ${rows}×${V}: ${loss1} vs ${loss2} (seed ${seed})`,
      );
      if (l2.some((v) => v !== 0)) assertClose(l1, l2, 1e-6, `CE lse ${rows}×${V}`, seed);
      const [d1, d2] = [new Float32Array(rows * V).fill(9), new Float32Array(rows * V)];
      K.crossEntropyBackward(rows, V, logits, targets, -100, l2, 0.25, d1);
      R.crossEntropyBackward(rows, V, logits, targets, -100, l2, 0.25, d2);
      if (V > 1 && targets.some((t) => t !== -100))
        assertClose(d1, d2, 2e-6, `CE dlogits ${rows}×${V}`, seed);
      for (let r = 0; r < rows; r++)
        if (targets[r] === -100)
          for (let i = 0; i < V; i++) assert.equal(d1[r * V + i], 0, `ignored row ${r} not zeroed`);
    }
  });

  it("cross-entropy stays finite and correct for large-magnitude logits", () => {
    const K = native();
    const { rng, seed } = freshRng();
    const rows = 9;
    const V = 513;
    for (const scale of [1e2, 1e4, 3e4]) {
      const logits = rng.randn(rows * V, scale);
      for (let i = 0; i < V; i += 3) logits[i] += scale; // a large common offset on row 0
      const targets = Int32Array.from({ length: rows }, () => rng.int(V));
      const [l1, l2] = [new Float32Array(rows), new Float32Array(rows)];
      const loss1 = K.crossEntropyForward(rows, V, logits, targets, -100, l1);
      const loss2 = R.crossEntropyForward(rows, V, logits, targets, -100, l2);
      assert.ok(Number.isFinite(loss1), `CE loss not finite at scale ${scale}`);
      assert.ok(
        Math.abs(loss1 - loss2) <= 1e-6 * Math.abs(loss2),
        `CE loss at scale ${scale}: ${loss1} vs ${loss2} (seed ${seed})`,
      );
      const d = new Float32Array(rows * V);
      K.crossEntropyBackward(rows, V, logits, targets, -100, l1, 1, d);
      assert.equal(K.firstNonFinite(d), -1);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let i = 0; i < V; i++) s += d[r * V + i];
        // softmax sums to 1 up to the f32 rounding of the saved lse (|lse| · 2^-24 in the exponent)
        assert.ok(
          Math.abs(s) <= 2 * Math.abs(l1[r]) * 2 ** -23 + 1e-5,
          `row ${r} gradient sums to ${s} at scale ${scale}`,
        );
      }
    }
    // A hand value: two equal logits, loss log 2 per row.
    const l = new Float32Array(1);
    assert.ok(
      Math.abs(K.crossEntropyForward(1, 2, Float32Array.of(5e4, 5e4), Int32Array.of(1), -100, l) - Math.LN2) <
        1e-9,
    );
  });

  it("RoPE: the cached angle table and the direct path (negative or far positions) both match", () => {
    const K = native();
    const { rng, seed } = freshRng();
    const T = 9;
    for (const theta of [10000, 500000])
      for (const D of [8, 66])
        for (const far of [0, -3, 70000, 12]) {
          const x = rng.randn(T * 2 * D);
          const pos = Int32Array.from({ length: T }, (_, t) => (t === 4 ? far : rng.int(3000)));
          const [a, b] = [x.slice(), x.slice()];
          K.rope(T, 2, D, theta, pos, a, false);
          R.rope(T, 2, D, theta, pos, b, false);
          assertClose(a, b, 2e-6, `rope theta ${theta} D ${D} position ${far}`, seed);
        }
  });

  it("RoPE forward and inverse match the reference; inverse undoes forward", () => {
    const K = native();
    const { rng, seed } = freshRng();
    for (const T of [1, 7, 33]) {
      for (const H of [1, 3]) {
        for (const D of [2, 8, 64, 66]) {
          const x = rng.randn(T * H * D);
          const pos = Int32Array.from({ length: T }, () => rng.int(8192) - 16);
          for (const inverse of [false, true]) {
            const [a, b] = [x.slice(), x.slice()];
            K.rope(T, H, D, 10000, pos, a, inverse);
            R.rope(T, H, D, 10000, pos, b, inverse);
            assertClose(a, b, 2e-6, `rope T ${T} H ${H} D ${D} inverse ${inverse}`, seed);
            K.rope(T, H, D, 10000, pos, a, !inverse);
            assertClose(a, x, 2e-6, `rope round trip T ${T} H ${H} D ${D}`, seed);
          }
        }
      }
    }
  });

  it("embedding gather and scatter-add with repeated ids", () => {
    const K = native();
    const { rng, seed } = freshRng();
    for (const dim of [1, 7, 33, 257]) {
      for (const count of [1, 7, 300]) {
        const V = 13;
        const table = rng.randn(V * dim);
        const ids = Int32Array.from({ length: count }, () => rng.int(V));
        const [o1, o2] = [new Float32Array(count * dim), new Float32Array(count * dim)];
        K.embeddingForward(ids, dim, table, o1);
        R.embeddingForward(ids, dim, table, o2);
        assert.deepEqual(o1, o2, `embeddingForward dim ${dim} count ${count}`);
        const dout = rng.randn(count * dim);
        const dt0 = rng.randn(V * dim);
        const [t1, t2] = [dt0.slice(), dt0.slice()];
        K.embeddingBackward(ids, dim, dout, t1);
        R.embeddingBackward(ids, dim, dout, t2);
        assertClose(t1, t2, 1e-6, `embeddingBackward dim ${dim} count ${count}`, seed);
      }
    }
  });

  it("AdamW matches the reference over several steps", () => {
    const K = native();
    const { rng, seed } = freshRng();
    for (const n of [1, 7, 33, 1000]) {
      const p = rng.randn(n);
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const [p2, m2, v2] = [p.slice(), m.slice(), v.slice()];
      for (let step = 1; step <= 4; step++) {
        const g = rng.randn(n, 0.1);
        K.adamw(p, g, m, v, 1e-2, 0.9, 0.95, 1e-8, 0.1, step);
        R.adamw(p2, g, m2, v2, 1e-2, 0.9, 0.95, 1e-8, 0.1, step);
      }
      assertClose(p, p2, 1e-6, `adamw p n ${n}`, seed);
      // Moments can cancel (m near 0 after sign changes): compare them on the gradients' scale (0.1).
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(m[i] - m2[i]) <= 1e-7, `adamw m[${i}] n ${n}: ${m[i]} vs ${m2[i]} (seed ${seed})`);
        assert.ok(
          Math.abs(v[i] - v2[i]) <= 1e-6 * Math.max(v2[i], 1e-4),
          `adamw v[${i}] n ${n}: ${v[i]} vs ${v2[i]} (seed ${seed})`,
        );
      }
    }
  });

  it("large inputs split over 2 threads match the reference", () => {
    const K = native();
    const { rng, seed } = freshRng();
    withThreads(2, () => {
      compareRowOps(K, rng, seed, 129, 1000, 2e-5);
      compareElementwise(K, rng, seed, 100003, 2e-6);
      const x = rng.randn(200003);
      x[150001] = NaN;
      assert.equal(K.firstNonFinite(x), 150001);
      const rows = 16;
      const V = 8000;
      const logits = rng.randn(rows * V, 2);
      const targets = Int32Array.from({ length: rows }, (_, i) => (i % 5 === 0 ? -1 : rng.int(V)));
      const [l1, l2] = [new Float32Array(rows), new Float32Array(rows)];
      const loss1 = K.crossEntropyForward(rows, V, logits, targets, -1, l1);
      const loss2 = R.crossEntropyForward(rows, V, logits, targets, -1, l2);
      assert.ok(Math.abs(loss1 - loss2) <= 1e-5 * loss2, `CE 2 threads ${loss1} vs ${loss2}`);
      const ids = Int32Array.from({ length: 4096 }, () => rng.int(50));
      const dout = rng.randn(4096 * 64);
      const [t1, t2] = [new Float32Array(50 * 64), new Float32Array(50 * 64)];
      K.embeddingBackward(ids, 64, dout, t1);
      R.embeddingBackward(ids, 64, dout, t2);
      assertClose(t1, t2, 1e-5, "embeddingBackward 2 threads", seed);
    });
  });
});

// ---------------------------------------------------------------- gradient checks (float64 reference)

const F = refPointwiseF64;

/** Σ c·y: a scalar loss whose gradient with respect to y is c. */
function dot(c: Vec, y: Vec): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += c[i] * y[i];
  return s;
}

/** Central differences of loss() with respect to every element of x, compared with the analytic grad. */
function checkGrad(what: string, x: Float64Array, grad: Vec, loss: () => number, tol = 1e-6): void {
  const h = 1e-5;
  const num = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    num[i] = (lp - lm) / (2 * h);
  }
  const e = relErr(grad, num);
  assert.ok(e <= tol, `${what}: gradient relative error ${e.toExponential(3)} > ${tol}`);
  assert.ok(
    num.some((v) => v !== 0),
    `${what}: numeric gradient all zero`,
  );
}

function randn64(rng: Rng, n: number, std = 1): Float64Array {
  return Float64Array.from(rng.randn(n, std));
}

describe("pointwise gradients (central differences, float64 reference)", () => {
  const rows = 3;
  const dim = 7;
  const n = rows * dim;

  it("rmsnorm: x and w", () => {
    const { rng } = freshRng();
    const [x, w, c] = [randn64(rng, n), randn64(rng, dim), randn64(rng, n)];
    const y = new Float64Array(n);
    const rstd = new Float64Array(rows);
    const loss = (): number => (F.rmsnormForward(rows, dim, 1e-5, x, w, y, rstd), dot(c, y));
    loss();
    const [dx, dw] = [new Float64Array(n), new Float64Array(dim)];
    F.rmsnormBackward(rows, dim, x, w, rstd, c, dx, dw);
    checkGrad("rmsnorm dx", x, dx, loss);
    checkGrad("rmsnorm dw", w, dw, loss);
  });

  it("layernorm: x, w and b", () => {
    const { rng } = freshRng();
    const [x, w, b, c] = [randn64(rng, n), randn64(rng, dim), randn64(rng, dim), randn64(rng, n)];
    const y = new Float64Array(n);
    const [mean, rstd] = [new Float64Array(rows), new Float64Array(rows)];
    const loss = (): number => (F.layernormForward(rows, dim, 1e-5, x, w, b, y, mean, rstd), dot(c, y));
    loss();
    const [dx, dw, db] = [new Float64Array(n), new Float64Array(dim), new Float64Array(dim)];
    F.layernormBackward(rows, dim, x, w, mean, rstd, c, dx, dw, db);
    checkGrad("layernorm dx", x, dx, loss);
    checkGrad("layernorm dw", w, dw, loss);
    checkGrad("layernorm db", b, db, loss);
  });

  it("silu, gelu, swiglu", () => {
    const { rng } = freshRng();
    const [x, u, c] = [randn64(rng, n, 2), randn64(rng, n), randn64(rng, n)];
    const y = new Float64Array(n);
    const dx = new Float64Array(n);
    let loss = (): number => (F.siluForward(x, y), dot(c, y));
    F.siluBackward(x, c, dx);
    checkGrad("silu", x, dx, loss);
    loss = (): number => (F.geluForward(x, y), dot(c, y));
    F.geluBackward(x, c, dx);
    checkGrad("gelu", x, dx, loss);
    loss = (): number => (F.swigluForward(x, u, y), dot(c, y));
    const du = new Float64Array(n);
    F.swigluBackward(x, u, c, dx, du);
    checkGrad("swiglu dgate", x, dx, loss);
    checkGrad("swiglu dup", u, du, loss);
  });

  it("softmax", () => {
    const { rng } = freshRng();
    const [x, c] = [randn64(rng, n, 2), randn64(rng, n)];
    const y = new Float64Array(n);
    const loss = (): number => (F.softmaxForward(rows, dim, x, y), dot(c, y));
    loss();
    const dx = new Float64Array(n);
    F.softmaxBackward(rows, dim, y, c, dx);
    checkGrad("softmax", x, dx, loss);
  });

  it("cross-entropy with an ignored row and a gradient scale", () => {
    const { rng } = freshRng();
    const logits = randn64(rng, n, 2);
    const targets = Int32Array.of(2, -100, 6);
    const lse = new Float64Array(rows);
    const loss = (): number => 0.5 * F.crossEntropyForward(rows, dim, logits, targets, -100, lse);
    loss();
    const d = new Float64Array(n);
    F.crossEntropyBackward(rows, dim, logits, targets, -100, lse, 0.5, d);
    checkGrad("crossEntropy", logits, d, loss);
  });

  it("embedding table (repeated ids)", () => {
    const { rng } = freshRng();
    const V = 4;
    const ids = Int32Array.of(1, 3, 1, 0, 1);
    const table = randn64(rng, V * dim);
    const c = randn64(rng, ids.length * dim);
    const out = new Float64Array(ids.length * dim);
    const loss = (): number => (F.embeddingForward(ids, dim, table, out), dot(c, out));
    const dt = new Float64Array(V * dim);
    F.embeddingBackward(ids, dim, c, dt);
    checkGrad("embedding", table, dt, loss);
  });

  it("rope: the backward (inverse rotation) is the transpose", () => {
    const { rng } = freshRng();
    const [T, H, D] = [3, 2, 6];
    const pos = Int32Array.of(0, 5, 1234);
    const x = randn64(rng, T * H * D);
    const c = randn64(rng, T * H * D);
    const loss = (): number => {
      const y = x.slice();
      F.rope(T, H, D, 10000, pos, y, false);
      return dot(c, y);
    };
    const dx = c.slice();
    F.rope(T, H, D, 10000, pos, dx, true);
    checkGrad("rope", x, dx, loss);
  });
});

// ---------------------------------------------------------------- fixed values, both implementations

const impls: [string, PointwiseKernels | null][] = [
  ["ref", R],
  ["native", N],
];

describe("pointwise fixed values and errors", () => {
  it("erf (reference) against known values", () => {
    const known: [number, number][] = [
      [0, 0],
      [0.01, 0.011283415555849618],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [-3, -0.9999779095030014],
      [4.5, 0.9999999998033839],
    ];
    for (const [x, e] of known)
      assert.ok(Math.abs(erf(x) - e) <= 1e-15 + 1e-14 * Math.abs(e), `erf(${x}) = ${erf(x)}, expected ${e}`);
    const knownC: [number, number][] = [
      [-1, 1.8427007929497148],
      [0.5, 0.4795001221869535],
      [1.4, 0.04771488023735121],
      [1.6, 0.023651616655355985],
      [2.9, 4.1097878099458886e-5],
      [3, 2.209049699858544e-5],
      [5, 1.5374597944280351e-12],
      [10, 2.088487583762545e-45],
    ];
    for (const [x, e] of knownC)
      assert.ok(Math.abs(erfc(x) - e) <= 1e-13 * e, `erfc(${x}) = ${erfc(x)}, expected ${e}`);
  });

  for (const [name, K] of impls) {
    const skip = K === null ? "native addon not built" : false;

    it(`${name}: RoPE uses the Hugging Face rotate-half layout`, { skip }, () => {
      assert.ok(K !== null);
      // D = 4: pairs (0, 2) at frequency 1 and (1, 3) at frequency 10000^(-1/2) = 0.01; position 1.
      const x = Float32Array.of(1, 1, 0, 0);
      K.rope(1, 1, 4, 10000, Int32Array.of(1), x, false);
      const want = [Math.cos(1), Math.cos(0.01), Math.sin(1), Math.sin(0.01)];
      for (let i = 0; i < 4; i++)
        assert.ok(Math.abs(x[i] - want[i]) < 1e-7, `rope[${i}] = ${x[i]}, want ${want[i]}`);
    });

    it(`${name}: AdamW against a hand-computed torch.optim.AdamW step`, { skip }, () => {
      assert.ok(K !== null);
      const [lr, b1, b2, eps, wd] = [0.1, 0.9, 0.999, 1e-8, 0.01];
      const p = Float32Array.of(1, -2, 0.5);
      const m = new Float32Array(3);
      const v = new Float32Array(3);
      // Step 1: m̂ = g, v̂ = g², so p1 = p0·(1 - lr·wd) - lr·g/(|g| + eps).
      K.adamw(p, Float32Array.of(0.1, -0.2, 0.3), m, v, lr, b1, b2, eps, wd, 1);
      const step1 = [
        0.999 - 0.1 * (0.1 / (0.1 + 1e-8)),
        -2 * 0.999 + 0.1 * (0.2 / (0.2 + 1e-8)),
        0.4995 - 0.1 * (0.3 / (0.3 + 1e-8)),
      ];
      for (let i = 0; i < 3; i++)
        assert.ok(Math.abs(p[i] - step1[i]) < 1e-6, `step 1 p[${i}] = ${p[i]}, want ${step1[i]}`);
      assert.ok(Math.abs(m[0] - 0.01) < 1e-9 && Math.abs(v[2] - 0.001 * 0.09) < 1e-10, "step 1 moments");
      // Steps 2 and 3 against the formula written out in double.
      const P = Float64Array.from(p);
      const M = Float64Array.from(m);
      const Vv = Float64Array.from(v);
      const grads = [Float32Array.of(-0.05, 0.4, 0.3), Float32Array.of(0.2, 0.1, -1)];
      for (let s = 2; s <= 3; s++) {
        const g = grads[s - 2];
        K.adamw(p, g, m, v, lr, b1, b2, eps, wd, s);
        for (let i = 0; i < 3; i++) {
          P[i] *= 1 - lr * wd;
          M[i] = b1 * M[i] + (1 - b1) * g[i];
          Vv[i] = b2 * Vv[i] + (1 - b2) * g[i] * g[i];
          const mh = M[i] / (1 - b1 ** s);
          const vh = Vv[i] / (1 - b2 ** s);
          P[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
        }
        for (let i = 0; i < 3; i++)
          assert.ok(Math.abs(p[i] - P[i]) < 2e-6, `step ${s} p[${i}] = ${p[i]}, want ${P[i]}`);
      }
    });

    it(`${name}: firstNonFinite finds NaN, +Inf and -Inf anywhere`, { skip }, () => {
      assert.ok(K !== null);
      for (const len of [1, 7, 8, 9, 33, 257, 70001]) {
        const x = new Float32Array(len).fill(1.5);
        assert.equal(K.firstNonFinite(x), -1, `clean array of ${len}`);
        x[len - 1] = 3.4e38; // the largest finite values are finite
        assert.equal(K.firstNonFinite(x), -1);
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of [0, Math.floor(len / 2), len - 1]) {
            const y = x.slice();
            y[at] = bad;
            if (at + 3 < len) y[at + 3] = NaN; // a later one does not matter
            assert.equal(K.firstNonFinite(y), at, `${bad} at ${at} of ${len}`);
          }
        }
      }
      assert.equal(K.firstNonFinite(new Float32Array(0)), -1);
    });

    it(
      `${name}: argmax picks what the sequential scan picks (ties, NaN, -0 and +0, infinities)`,
      { skip },
      () => {
        assert.ok(K !== null);
        const { rng, seed } = freshRng();
        const scan = (x: Float32Array) => {
          let best = 0;
          for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
          return best;
        };
        const cases: [string, (x: Float32Array) => void][] = [
          ["random", () => {}],
          ["the max twice", (x) => (x[x.length - 1] = x[scan(x)])],
          ["the max at 0 and later", (x) => (x[0] = x[x.length - 1] = 99)],
          ["NaN at 0", (x) => (x[0] = NaN)],
          ["NaN elsewhere", (x) => (x[Math.floor(x.length / 2)] = NaN)],
          ["NaN after the max", (x) => ((x[0] = 50), x.fill(NaN, 1))],
          ["-0 then +0", (x) => (x.fill(-1), (x[Math.floor(x.length / 3)] = -0), (x[x.length - 1] = 0))],
          ["+0 then -0", (x) => (x.fill(-1), (x[Math.floor(x.length / 3)] = 0), (x[x.length - 1] = -0))],
          ["+Inf twice", (x) => (x[x.length - 1] = x[Math.floor(x.length / 2)] = Infinity)],
          ["all -Inf", (x) => x.fill(-Infinity)],
          ["all -Inf, one NaN at the end", (x) => (x.fill(-Infinity), (x[x.length - 1] = NaN))],
        ];
        for (const len of [1, 2, 7, 8, 9, 16, 17, 33, 8192])
          for (const [what, make] of cases) {
            const x = rng.randn(len);
            make(x);
            assert.equal(K.argmax(x), scan(x), `${what}, length ${len} (seed ${seed})`);
          }
        assert.equal(K.argmax(new Float32Array(0)), 0);
      },
    );

    it(`${name}: sumSquares accumulates in double`, { skip }, () => {
      assert.ok(K !== null);
      const x = new Float32Array(1 << 20).fill(1);
      x[0] = 4096; // 2^24 + 2^20 ones: exact in double, not in a float accumulator
      assert.equal(K.sumSquares(x), 4096 * 4096 + (1 << 20) - 1);
    });

    it(`${name}: clear errors on bad arguments`, { skip }, () => {
      assert.ok(K !== null);
      const a = new Float32Array(5);
      assert.throws(() => K.add(a, new Float32Array(4), new Float32Array(5)), /add: .*length mismatch.*5.*4/);
      assert.throws(() => K.axpy(1, a, new Float32Array(6)), /axpy: .*length mismatch/);
      assert.throws(
        () => K.adamw(a, a, a, new Float32Array(3), 1, 0.9, 0.99, 1e-8, 0, 1),
        /adamw: .*length mismatch/,
      );
      assert.throws(
        () => K.adamw(a, a, a, a, 1, 0.9, 0.99, 1e-8, 0, 0),
        /adamw: step must be an integer in \[1, 2147483647\], got 0/,
      );
      const table = new Float32Array(3 * 4);
      assert.throws(
        () => K.embeddingForward(Int32Array.of(0, 3), 4, table, new Float32Array(8)),
        /embeddingForward: id 3 at position 1 outside table rows \[0, 3\)/,
      );
      assert.throws(
        () => K.embeddingBackward(Int32Array.of(-1), 4, new Float32Array(4), table),
        /embeddingBackward: id -1 at position 0/,
      );
      assert.throws(
        () => K.embeddingForward(Int32Array.of(0), 5, table, new Float32Array(5)),
        /embeddingForward: table length 12 is not a multiple of dim 5/,
      );
      assert.throws(
        () => K.rmsnormForward(2, 4, 1e-5, new Float32Array(7), a, new Float32Array(8), new Float32Array(2)),
        /rmsnormForward: .*7 elements, needs 8/,
      );
      assert.throws(
        () => K.rmsnormForward(-1, 4, 1e-5, a, a, a, a),
        /rmsnormForward: rows must be an integer in \[0, 2147483647\]/,
      );
      assert.throws(
        () => K.rope(1, 1, 3, 10000, Int32Array.of(0), new Float32Array(3), false),
        /rope: head dim D = 3 must be even/,
      );
      const logits = new Float32Array(2 * 3);
      assert.throws(
        () => K.crossEntropyForward(2, 3, logits, Int32Array.of(0, 3), -100, new Float32Array(2)),
        /crossEntropyForward: target 3 at row 1 outside \[0, 3\)/,
      );
      assert.throws(
        () =>
          K.crossEntropyBackward(2, 3, logits, Int32Array.of(-5, 0), -100, new Float32Array(2), 1, logits),
        /crossEntropyBackward: target -5 at row 0/,
      );
      // Rows whose target is the ignore index are fine, even when negative.
      assert.equal(
        K.crossEntropyForward(2, 3, logits, Int32Array.of(-100, -100), -100, new Float32Array(2)),
        0,
      );
    });
  }
});
