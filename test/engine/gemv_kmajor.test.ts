// gemvKMajor (the decode step's weight product on the transposed weight): the TypeScript reference computes
// the kernel's arithmetic bit for bit (one fma chain over k per output, fmaf32 emulating the FMA), the
// native kernel gives exactly those bits, and, the point of the kernel, every row's bits are the same alone
// or among R = 3 or 32 rows, on 1 or 2 threads, under AVX-512 or AVX2, f32 and bf16 weights, beta 0 and 1,
// on shapes with N mod 16 ≠ 0 and N mod 8 ≠ 0 (masked last vector), odd K and K = 1, and both shapes of
// the one-row path (outputs in registers; blocks of rows of Wt with running sums in memory).
import { assertClose, eachIsa, freshRng, withThreads } from "../helpers.js";
import assert from "node:assert/strict";
import { test } from "node:test";
import { PANEL, fmaf32, nativeGemm, refGemm, toPanels } from "../../src/engine/kernels/gemm.js";

const native = nativeGemm;
const skip = native === null ? "native addon not built" : false;

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// [N, K]: one output, N below a vector, a masked last vector (N mod 16 ≠ 0, N mod 8 ≠ 0), a partial output
// block, K = 1 and odd K, and the shipped widths (the LM head's is cut to 1,000 outputs). One row under
// AVX-512 holds up to 384 outputs in registers ([384, 5]: all 24 vectors) and goes wider in blocks of 8
// rows of Wt, 128 outputs at a time ([385, 23]: one masked lane past them, a block of 7 rows at the end;
// [700, 37]: 5 full chunks and a masked partial one). Several row blocks (R > 4) under AVX-512 apply Wt in
// K blocks of 64 rows (f32) or 128 (bf16) with running sums in a scratch between them: K = 131 ends in a
// 3-row block, 688 in 48 and 256 in a full one.
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 7],
  [17, 1],
  [23, 29],
  [61, 131],
  [100, 16],
  [384, 5],
  [385, 23],
  [700, 37],
  [258, 688],
  [1000, 256],
];

/**
 * Runs body on rows [r0, r0 + R) of 32, on 1 and 2 threads under each ISA: one row (7), R = 3 from row 5 (a
 * row block's middle) and all 32.
 */
function eachRowSpan(body: (R: number, r0: number, where: string) => void): void {
  for (const threads of [1, 2])
    withThreads(threads, () =>
      eachIsa((isa) => {
        for (const [R, r0] of [
          [1, 7],
          [3, 5],
          [32, 0],
        ])
          body(R, r0, `${isa} threads=${threads}`);
      }),
    );
}

/** w [N, K] → [K, N]. */
function transposed(w: Float32Array, N: number, K: number): Float32Array {
  const t = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) t[k * N + n] = w[n * K + k];
  return t;
}

test("fmaf32 rounds once, where a*b + c in f64 then f32 would round twice", () => {
  // a·b + c = 1 + 2^-24 + 2^-60: in f64 the 2^-60 is lost and the tie then rounds to even (1); the FMA
  // rounds up to 1 + 2^-23.
  const a = 2 ** -24 * (1 + 2 ** -12);
  const b = 1 - 2 ** -12 + 2 ** -24;
  assert.equal(Math.fround(a * b + 1), 1);
  assert.equal(fmaf32(a, b, 1), 1 + 2 ** -23);
  assert.equal(fmaf32(-a, b, -1), -(1 + 2 ** -23));
  assert.equal(fmaf32(2, 3, 4), 10);
  assert.equal(fmaf32(2 ** 100, 2 ** 100, 0), Infinity);
  assert.ok(Number.isNaN(fmaf32(Infinity, 0, 1)));
});

test("gemvKMajor: the reference is close to a product computed in f64 (f32 and bf16)", () => {
  const { rng, seed } = freshRng();
  for (const [N, K] of SHAPES.slice(0, 6))
    for (const R of [1, 3]) {
      const X = rng.randn(R * K);
      const Wt = rng.randn(K * N);
      const Y0 = rng.randn(R * N);
      for (const [alpha, beta] of [
        [1, 0],
        [1, 1],
        [-0.75, 0.5],
      ]) {
        const want = Y0.slice();
        refGemm.gemm(false, false, R, N, K, alpha, X, Wt, beta, want);
        const got = Y0.slice();
        refGemm.gemvKMajor(R, N, K, alpha, X, Wt, beta, got);
        assertClose(got, want, 1e-5, `ref gemvKMajor R=${R} N=${N} K=${K} alpha=${alpha} beta=${beta}`, seed);
        const Wb = new Uint16Array(K * N);
        refGemm.f32ToBf16(Wt, Wb);
        const Wf = new Float32Array(K * N);
        refGemm.bf16ToF32(Wb, Wf);
        const wantB = Y0.slice();
        refGemm.gemm(false, false, R, N, K, alpha, X, Wf, beta, wantB);
        const gotB = Y0.slice();
        refGemm.gemvKMajorBf16(R, N, K, alpha, X, Wb, beta, gotB);
        assertClose(gotB, wantB, 1e-5, `ref gemvKMajorBf16 R=${R} N=${N} K=${K}`, seed);
      }
    }
});

test(
  "gemvKMajor: native gives the reference's bits (both ISAs, f32 and bf16, alpha and beta)",
  { skip },
  () => {
    const { rng, seed } = freshRng();
    eachIsa((isa) => {
      for (const [N, K] of SHAPES.slice(0, 10))
        for (const R of [1, 3, 5]) {
          const X = rng.randn(R * K);
          const Wt = rng.randn(K * N);
          const Wb = new Uint16Array(K * N);
          refGemm.f32ToBf16(Wt, Wb);
          const Y0 = rng.randn(R * N);
          for (const [alpha, beta] of [
            [1, 0],
            [1, 1],
            [-0.75, 0.5],
            [0, 0.5],
          ]) {
            const what = `${isa} R=${R} N=${N} K=${K} alpha=${alpha} beta=${beta} (seed ${seed})`;
            const want = Y0.slice();
            const got = Y0.slice();
            refGemm.gemvKMajor(R, N, K, alpha, X, Wt, beta, want);
            native!.gemvKMajor(R, N, K, alpha, X, Wt, beta, got);
            assert.ok(bits(got).equals(bits(want)), `f32 ${what}`);
            const wantB = Y0.slice();
            const gotB = Y0.slice();
            refGemm.gemvKMajorBf16(R, N, K, alpha, X, Wb, beta, wantB);
            native!.gemvKMajorBf16(R, N, K, alpha, X, Wb, beta, gotB);
            assert.ok(bits(gotB).equals(bits(wantB)), `bf16 ${what}`);
          }
        }
    });
  },
);

test(
  "gemvKMajor: a row's bits do not depend on R, its position, the thread count or the ISA",
  { skip },
  () => {
    const { rng, seed } = freshRng();
    for (const [N, K] of SHAPES)
      for (const beta of [0, 1]) {
        const X = rng.randn(32 * K);
        const W = rng.randn(N * K);
        const Wt = transposed(W, N, K);
        const Wb = new Uint16Array(K * N);
        refGemm.f32ToBf16(Wt, Wb);
        const Y0 = rng.randn(32 * N);
        // Each row alone: R = 1, one thread, the detected ISA.
        const alone = Y0.slice();
        const aloneB = Y0.slice();
        for (let r = 0; r < 32; r++) {
          const x = X.subarray(r * K, (r + 1) * K);
          native!.gemvKMajor(1, N, K, 1, x, Wt, beta, alone.subarray(r * N, (r + 1) * N));
          native!.gemvKMajorBf16(1, N, K, 1, x, Wb, beta, aloneB.subarray(r * N, (r + 1) * N));
        }
        eachRowSpan((R, r0, where) => {
          const x = X.subarray(r0 * K, (r0 + R) * K);
          const many = Y0.slice(r0 * N, (r0 + R) * N);
          const manyB = many.slice();
          native!.gemvKMajor(R, N, K, 1, x, Wt, beta, many);
          native!.gemvKMajorBf16(R, N, K, 1, x, Wb, beta, manyB);
          const what = `${where} R=${R} N=${N} K=${K} beta=${beta} (seed ${seed})`;
          assert.ok(bits(many).equals(bits(alone.subarray(r0 * N, (r0 + R) * N))), `f32 ${what}`);
          assert.ok(bits(manyB).equals(bits(aloneB.subarray(r0 * N, (r0 + R) * N))), `bf16 ${what}`);
        });
      }
  },
);

test("toPanels: each panel of PANEL columns (the last one narrower) row-major and contiguous", () => {
  const K = 3;
  const N = PANEL + 2;
  const Wt = Float32Array.from({ length: K * N }, (_, i) => i);
  const p = toPanels(Wt, K, N, new Float32Array(K * N));
  assert.deepEqual([...p.subarray(0, 3)], [0, 1, 2]); // Wt[0, 0..2]
  assert.equal(p[PANEL], N); // Wt[1, 0]
  assert.deepEqual([...p.subarray(PANEL * K, PANEL * K + 4)], [PANEL, PANEL + 1, N + PANEL, N + PANEL + 1]);
});

// gemvPanels (the many-row LM head): the same chains on the panel layout, so every output's bits equal the
// reference's and gemvKMajor's on the K-major weight, at any R, thread count and ISA, also where the last
// panel is narrower than PANEL (N = 1000, 385, 258) or N < PANEL.
test(
  "gemvPanels: the bits of gemvKMajor on the K-major weight (R, threads, ISA, f32 and bf16)",
  { skip },
  () => {
    const { rng, seed } = freshRng();
    for (const [N, K] of [...SHAPES, [8192, 16] as [number, number]])
      for (const beta of [0, 1]) {
        const X = rng.randn(32 * K);
        const Wt = rng.randn(K * N);
        const Wb = new Uint16Array(K * N);
        refGemm.f32ToBf16(Wt, Wb);
        const Wp = toPanels(Wt, K, N, new Float32Array(K * N));
        const Wpb = toPanels(Wb, K, N, new Uint16Array(K * N));
        const Y0 = rng.randn(32 * N);
        const want = Y0.slice();
        const wantB = Y0.slice();
        native!.gemvKMajor(32, N, K, 1, X, Wt, beta, want);
        native!.gemvKMajorBf16(32, N, K, 1, X, Wb, beta, wantB);
        if (N * K <= 30000) {
          const ref = Y0.slice();
          refGemm.gemvPanels(32, N, K, 1, X, Wp, beta, ref);
          assert.ok(bits(ref).equals(bits(want)), `ref gemvPanels N=${N} K=${K} beta=${beta} (seed ${seed})`);
        }
        eachRowSpan((R, r0, where) => {
          const x = X.subarray(r0 * K, (r0 + R) * K);
          const got = Y0.slice(r0 * N, (r0 + R) * N);
          const gotB = got.slice();
          native!.gemvPanels(R, N, K, 1, x, Wp, beta, got);
          native!.gemvPanelsBf16(R, N, K, 1, x, Wpb, beta, gotB);
          const what = `${where} R=${R} N=${N} K=${K} beta=${beta} (seed ${seed})`;
          assert.ok(bits(got).equals(bits(want.subarray(r0 * N, (r0 + R) * N))), `f32 ${what}`);
          assert.ok(bits(gotB).equals(bits(wantB.subarray(r0 * N, (r0 + R) * N))), `bf16 ${what}`);
        });
      }
  },
);

test("gemvKMajor: close to gemvRows on the untransposed weight", { skip }, () => {
  const { rng, seed } = freshRng();
  for (const [N, K] of SHAPES) {
    const R = 4;
    const X = rng.randn(R * K);
    const W = rng.randn(N * K);
    const Y0 = rng.randn(R * N);
    const a = Y0.slice();
    const b = Y0.slice();
    native!.gemvRows(R, N, K, 1, X, W, 1, a);
    native!.gemvKMajor(R, N, K, 1, X, transposed(W, N, K), 1, b);
    assertClose(b, a, 2e-5, `gemvKMajor vs gemvRows N=${N} K=${K}`, seed);
  }
});

test("gemvKMajor: argument errors name the op and the sizes", () => {
  for (const impl of [refGemm, ...(native ? [native] : [])]) {
    const f = (n: number) => new Float32Array(n);
    assert.throws(
      () => impl.gemvKMajor(2, 3, 4, 1, f(7), f(12), 0, f(6)),
      /gemvKMajor: X has 7 elements, needs 8/,
    );
    assert.throws(() => impl.gemvKMajor(2, 3, 4, 1, f(8), f(11), 0, f(6)), /gemvKMajor: Wt has 11 elements/);
    assert.throws(() => impl.gemvKMajor(2, 3, 4, 1, f(8), f(12), 0, f(5)), /gemvKMajor: Y has 5 elements/);
    assert.throws(
      () => impl.gemvKMajorBf16(2, 3, 4, 1, f(8), new Uint16Array(11), 0, f(6)),
      /gemvKMajorBf16: Wt has 11 elements, needs 12/,
    );
    assert.throws(() => impl.gemvPanels(2, 3, 4, 1, f(8), f(11), 0, f(6)), /gemvPanels: Wt has 11 elements/);
  }
});
