// gemvRows (the batched decode step's weight product): close to the TypeScript reference, and, the point
// of the kernel, every row bit-identical to the one-row GEMV on that row alone (gemm with M = 1), for any
// number of rows, under each instruction set, f32 and bf16 weights, on shapes that hit every edge of the
// one-row arithmetic: N mod 4 ≠ 0 (lone outputs), K mod 16 ≥ 8 (the "8 more" step), K mod 8 ≠ 0 (the
// scalar tail).
import { assertClose, eachIsa, freshRng, withThreads } from "../helpers.js";
import assert from "node:assert/strict";
import { test } from "node:test";
import { nativeGemm, refGemm } from "../../src/engine/kernels/gemm.js";

const native = nativeGemm;
const skip = native === null ? "native addon not built" : false;

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// [N, K]: lone outputs, the "8 more" step, scalar tails, a single output, K below 8, the shipped widths.
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 7],
  [5, 8],
  [7, 23],
  [9, 29],
  [13, 16],
  [30, 45],
  [61, 131],
  [64, 256],
  [258, 688],
];

test("gemvRows: reference and native agree with a product computed in f64 (f32 and bf16)", { skip }, () => {
  const { rng, seed } = freshRng();
  eachIsa((isa) => {
    for (const [N, K] of SHAPES)
      for (const R of [1, 3, 32]) {
        const X = rng.randn(R * K);
        const W = rng.randn(N * K);
        const Y0 = rng.randn(R * N);
        const [alpha, beta] = [
          [1, 0],
          [1, 1],
          [-0.75, 0.5],
        ][rng.int(3)];
        const want = Y0.slice();
        refGemm.gemm(false, true, R, N, K, alpha, X, W, beta, want);
        const ref = Y0.slice();
        refGemm.gemvRows(R, N, K, alpha, X, W, beta, ref);
        assertClose(ref, want, 1e-6, `ref gemvRows R=${R} N=${N} K=${K}`, seed);
        const got = Y0.slice();
        native!.gemvRows(R, N, K, alpha, X, W, beta, got);
        assertClose(got, want, 2e-5, `${isa} gemvRows R=${R} N=${N} K=${K}`, seed);
        const Wb = new Uint16Array(N * K);
        refGemm.f32ToBf16(W, Wb);
        const wantB = Y0.slice();
        refGemm.gemvRowsBf16(R, N, K, alpha, X, Wb, beta, wantB);
        const gotB = Y0.slice();
        native!.gemvRowsBf16(R, N, K, alpha, X, Wb, beta, gotB);
        assertClose(gotB, wantB, 2e-5, `${isa} gemvRowsBf16 R=${R} N=${N} K=${K}`, seed);
      }
  });
});

test("gemvRows: every row is bit-identical to the one-row GEMV on that row alone", { skip }, () => {
  const { rng, seed } = freshRng();
  for (const threads of [1, 2])
    withThreads(threads, () =>
      eachIsa((isa) => {
        for (const [N, K] of SHAPES)
          for (const R of [1, 3, 32])
            for (const beta of [0, 1]) {
              const X = rng.randn(R * K);
              const W = rng.randn(N * K);
              const Wb = new Uint16Array(N * K);
              refGemm.f32ToBf16(W, Wb);
              const Y0 = rng.randn(R * N);
              const many = Y0.slice();
              const manyB = Y0.slice();
              native!.gemvRows(R, N, K, 1, X, W, beta, many);
              native!.gemvRowsBf16(R, N, K, 1, X, Wb, beta, manyB);
              for (let r = 0; r < R; r++) {
                const x = X.subarray(r * K, (r + 1) * K);
                const one = Y0.slice(r * N, (r + 1) * N);
                native!.gemm(false, true, 1, N, K, 1, x, W, beta, one);
                const what = `${isa} threads=${threads} R=${R} N=${N} K=${K} beta=${beta} row ${r} (seed ${seed})`;
                assert.ok(bits(many.subarray(r * N, (r + 1) * N)).equals(bits(one)), `f32 ${what}`);
                const oneB = Y0.slice(r * N, (r + 1) * N);
                native!.gemmBf16(true, 1, N, K, 1, x, Wb, beta, oneB);
                assert.ok(bits(manyB.subarray(r * N, (r + 1) * N)).equals(bits(oneB)), `bf16 ${what}`);
                // And R = 1 through the multi-row kernel itself.
                const single = Y0.slice(r * N, (r + 1) * N);
                native!.gemvRows(1, N, K, 1, x, W, beta, single);
                assert.ok(bits(single).equals(bits(one)), `R=1 ${what}`);
              }
            }
      }),
    );
});

test("gemvRows: argument errors name the op and the sizes", () => {
  for (const impl of [refGemm, ...(native ? [native] : [])]) {
    const f = (n: number) => new Float32Array(n);
    assert.throws(
      () => impl.gemvRows(2, 3, 4, 1, f(7), f(12), 0, f(6)),
      /gemvRows: X has 7 elements, needs 8/,
    );
    assert.throws(() => impl.gemvRows(2, 3, 4, 1, f(8), f(12), 0, f(5)), /gemvRows: Y has 5 elements/);
    assert.throws(
      () => impl.gemvRowsBf16(2, 3, 4, 1, f(8), new Uint16Array(11), 0, f(6)),
      /gemvRowsBf16: W has 11 elements, needs 12/,
    );
  }
});
