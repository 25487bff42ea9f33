// GEMM family: native kernels against the TypeScript reference on fresh random inputs of awkward sizes.
// Every native check runs under each instruction set the CPU has (AVX-512 12×32 tiles and AVX2 6×16 tiles
// on a Zen 4; AVX2 only on a Zen 3), so both packed paths are tested on an AVX-512 machine.
import { assertClose, eachIsa, freshRng, withThreads } from "../helpers.js";
import assert from "node:assert/strict";
import { test } from "node:test";
import { bf16Round, nativeGemm, peakGflops, refGemm } from "../../src/engine/kernels/gemm.js";
import type { GemmKernels } from "../../src/engine/kernels/types.js";
import type { Rng } from "../../src/engine/random.js";

const TOL = 2e-5;
const native = nativeGemm;
const skip = native === null ? "native addon not built" : false;

/** Compare native and reference gemm on one random case. */
function checkGemm(
  k: GemmKernels,
  rng: Rng,
  seed: number,
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  beta: number,
  what: string,
): void {
  const A = rng.randn(M * K);
  const B = rng.randn(K * N);
  const C0 = rng.randn(M * N);
  const want = C0.slice();
  const got = C0.slice();
  refGemm.gemm(tA, tB, M, N, K, alpha, A, B, beta, want);
  k.gemm(tA, tB, M, N, K, alpha, A, B, beta, got);
  assertClose(
    got,
    want,
    TOL,
    `${what} gemm tA=${tA} tB=${tB} ${M}x${N}x${K} alpha=${alpha} beta=${beta}`,
    seed,
  );
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 33, 1],
  [33, 7, 257],
  [257, 33, 7],
  [6, 16, 256],
  [12, 32, 64],
  [13, 17, 300],
  [1, 257, 33],
  [33, 1, 257],
  [2, 3, 4],
  // Around the AVX-512 tile (12×32) and its 16-wide k blocks: one short, one over, several tiles.
  [11, 31, 15],
  [25, 33, 17],
  [24, 64, 48],
  [37, 97, 129],
];

test("reference gemm matches a hand-computed product", () => {
  // op(A) = [[1, 2], [3, 4]], op(B) = [[5, 6], [7, 8]] -> [[19, 22], [43, 50]]
  for (const impl of [refGemm, ...(native ? [native] : [])]) {
    const C = new Float32Array([1, 1, 1, 1]);
    impl.gemm(false, false, 2, 2, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 0, C);
    assert.deepEqual(Array.from(C), [19, 22, 43, 50]);
    impl.gemm(true, true, 2, 2, 2, 2, new Float32Array([1, 3, 2, 4]), new Float32Array([5, 7, 6, 8]), 1, C);
    assert.deepEqual(Array.from(C), [57, 66, 129, 150]);
  }
});

test("gemm: every transpose combination, awkward sizes, alpha/beta", { skip }, () => {
  const { rng, seed } = freshRng();
  eachIsa((isa) => {
    for (const [M, N, K] of SHAPES)
      for (const tA of [false, true])
        for (const tB of [false, true]) {
          const [alpha, beta] = [
            [1, 0],
            [0.5, -1.5],
            [-2, 1],
          ][rng.int(3)];
          checkGemm(native!, rng, seed, tA, tB, M, N, K, alpha, beta, isa);
        }
  });
});

test("gemm: sizes spanning several cache blocks (M > MC, N > NC, K > KC)", { skip }, () => {
  const { rng, seed } = freshRng();
  eachIsa((isa) => {
    checkGemm(native!, rng, seed, false, true, 7, 2061, 260, 1, 0.5, `${isa} blocks`);
    checkGemm(native!, rng, seed, false, false, 9, 2100, 33, 1, 0, `${isa} blocks`);
    checkGemm(native!, rng, seed, true, false, 131, 40, 530, 0.75, 0, `${isa} blocks`);
    checkGemm(native!, rng, seed, true, true, 150, 70, 520, 1, -1, `${isa} blocks`);
  });
});

test("gemm writes only inside C (a view with NaN guards on both sides)", { skip }, () => {
  const { rng, seed } = freshRng();
  const GUARD = 40;
  eachIsa((isa) => {
    for (const [M, N, K] of [
      [13, 33, 17],
      [11, 31, 40],
      [25, 47, 300],
    ])
      for (const tA of [false, true])
        for (const tB of [false, true]) {
          const A = rng.randn(M * K);
          const B = rng.randn(K * N);
          const buf = new Float32Array(M * N + 2 * GUARD).fill(NaN);
          const got = buf.subarray(GUARD, GUARD + M * N);
          got.set(rng.randn(M * N));
          const want = got.slice();
          refGemm.gemm(tA, tB, M, N, K, 1, A, B, 0.5, want);
          native!.gemm(tA, tB, M, N, K, 1, A, B, 0.5, got);
          const what = `${isa} guards ${M}x${N}x${K} tA=${tA} tB=${tB}`;
          assertClose(got, want, TOL, what, seed);
          for (let j = 0; j < GUARD; j++) {
            assert.ok(Number.isNaN(buf[j]), `${what}: wrote before C at ${j - GUARD}`);
            assert.ok(Number.isNaN(buf[GUARD + M * N + j]), `${what}: wrote past C at ${M * N + j}`);
          }
        }
  });
});

test("gemm: beta = 0 ignores NaN in C; K = 0 and alpha = 0 scale C", { skip }, () => {
  const { rng, seed } = freshRng();
  for (const [M, N, K] of [
    [7, 33, 5],
    [1, 40, 9],
    [20, 1, 9],
    [13, 35, 19],
  ])
    eachIsa((isa) => {
      for (const tB of [false, true]) {
        const A = rng.randn(M * K);
        const B = rng.randn(K * N);
        const got = new Float32Array(M * N).fill(NaN);
        const want = new Float32Array(M * N);
        native!.gemm(false, tB, M, N, K, 1, A, B, 0, got);
        refGemm.gemm(false, tB, M, N, K, 1, A, B, 0, want);
        assertClose(got, want, TOL, `${isa} beta=0 over NaN ${M}x${N}x${K} tB=${tB}`, seed);
      }
    });
  const C = rng.randn(6);
  const want = C.map((x) => 3 * x);
  native!.gemm(false, false, 2, 3, 0, 1, new Float32Array(0), new Float32Array(0), 3, C);
  assertClose(C, want, 0, "K=0");
  native!.gemm(false, false, 2, 3, 4, 0, rng.randn(8), rng.randn(12), 0.5, C);
  assertClose(
    C,
    want.map((x) => 0.5 * x),
    0,
    "alpha=0",
  );
});

test("gemm: GEMV paths (M = 1 and N = 1), both layouts, 1 and 2 threads", { skip }, () => {
  const { rng, seed } = freshRng();
  const cases: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 33],
    [1, 257, 7],
    [1, 300, 257],
    [1, 1030, 131],
    [7, 1, 33],
    [300, 1, 257],
  ];
  for (const threads of [1, 2])
    withThreads(threads, () =>
      eachIsa((isa) => {
        for (const [M, N, K] of cases)
          for (const tA of [false, true])
            for (const tB of [false, true])
              checkGemm(
                native!,
                rng,
                seed,
                tA,
                tB,
                M,
                N,
                K,
                1.5,
                rng.int(2) ? 0 : 0.25,
                `${isa} threads=${threads}`,
              );
      }),
    );
});

test("gemm: 2 threads on a few shapes (split over M and over N)", { skip }, () => {
  const { rng, seed } = freshRng();
  withThreads(2, () =>
    eachIsa((isa) => {
      for (const [M, N, K] of [
        [257, 33, 70],
        [263, 40, 530], // three K slices per task
        [33, 257, 70],
        [130, 130, 33],
        [7, 300, 300],
        [600, 70, 40], // M split into tasks of whole 12-row tiles and a ragged last one
      ] as [number, number, number][])
        for (const tA of [false, true])
          for (const tB of [false, true])
            checkGemm(native!, rng, seed, tA, tB, M, N, K, 1, 0.5, `${isa} threads=2`);
    }),
  );
});

test("gemmBatched: strides, broadcast (stride 0), batch over threads", { skip }, () => {
  const { rng, seed } = freshRng();
  const cases: { batch: number; M: number; N: number; K: number; bcast: "A" | "B" | "none" }[] = [
    { batch: 3, M: 7, N: 33, K: 5, bcast: "none" },
    { batch: 4, M: 33, N: 7, K: 17, bcast: "A" },
    { batch: 5, M: 1, N: 40, K: 9, bcast: "B" },
    { batch: 1, M: 20, N: 20, K: 20, bcast: "none" },
    { batch: 0, M: 3, N: 3, K: 3, bcast: "none" },
    { batch: 6, M: 40, N: 30, K: 70, bcast: "B" },
    { batch: 3, M: 25, N: 33, K: 20, bcast: "none" },
  ];
  for (const threads of [1, 2])
    withThreads(threads, () =>
      eachIsa((isa) => {
        for (const { batch, M, N, K, bcast } of cases)
          for (const tA of [false, true])
            for (const tB of [false, true]) {
              const sA = bcast === "A" ? 0 : M * K + rng.int(3);
              const sB = bcast === "B" ? 0 : K * N + rng.int(3);
              const sC = M * N + rng.int(3);
              const A = rng.randn(Math.max(1, (batch - 1) * sA + M * K));
              const B = rng.randn(Math.max(1, (batch - 1) * sB + K * N));
              const C0 = rng.randn(Math.max(1, (batch - 1) * sC + M * N));
              const want = C0.slice();
              const got = C0.slice();
              refGemm.gemmBatched(tA, tB, batch, M, N, K, 0.5, A, sA, B, sB, 1, want, sC);
              native!.gemmBatched(tA, tB, batch, M, N, K, 0.5, A, sA, B, sB, 1, got, sC);
              assertClose(
                got,
                want,
                TOL,
                `${isa} batched threads=${threads} batch=${batch} ${M}x${N}x${K} tA=${tA} tB=${tB} bcast=${bcast}`,
                seed,
              );
            }
      }),
    );
});

test("gemmBf16: matches the f32 reference on bf16-rounded weights (GEMV and packed paths)", { skip }, () => {
  const { rng, seed } = freshRng();
  const cases: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 33],
    [1, 257, 300],
    [1, 1030, 131],
    [7, 33, 1],
    [33, 7, 257],
    [257, 33, 7],
    [263, 40, 530],
    [20, 40, 70],
    [25, 47, 19],
  ];
  for (const threads of [1, 2])
    withThreads(threads, () =>
      eachIsa((isa) => {
        for (const [M, N, K] of cases)
          for (const tB of [false, true]) {
            const A = rng.randn(M * K);
            const Bbits = new Uint16Array(K * N);
            refGemm.f32ToBf16(rng.randn(K * N), Bbits);
            const Bf = new Float32Array(K * N);
            refGemm.bf16ToF32(Bbits, Bf);
            const C0 = rng.randn(M * N);
            const want = C0.slice();
            const got = C0.slice();
            const beta = rng.int(2) ? 0 : -0.5;
            refGemm.gemm(false, tB, M, N, K, 1.25, A, Bf, beta, want);
            native!.gemmBf16(tB, M, N, K, 1.25, A, Bbits, beta, got);
            assertClose(got, want, 1e-5, `${isa} bf16 threads=${threads} ${M}x${N}x${K} tB=${tB}`, seed);
            const viaRef = C0.slice();
            refGemm.gemmBf16(tB, M, N, K, 1.25, A, Bbits, beta, viaRef);
            assertClose(viaRef, want, 1e-6, `ref bf16 ${M}x${N}x${K} tB=${tB}`, seed);
          }
      }),
    );
});

test("f32ToBf16 / bf16ToF32: rounding to nearest even, NaN, Inf, round trip", { skip }, () => {
  const bits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];
  const specials: [number, number][] = [
    [0x3f800000, 0x3f80], // 1.0 exact
    [0x3f808000, 0x3f80], // tie, even stays
    [0x3f818000, 0x3f82], // tie, odd rounds up
    [0x3f808001, 0x3f81], // above the tie
    [0x3f807fff, 0x3f80], // below the tie
    [0xbf818000, 0xbf82], // negative tie
    [0x7f800000, 0x7f80], // +Inf
    [0xff800000, 0xff80], // -Inf
    [0x7f7fffff, 0x7f80], // max float rounds to Inf
    [0x00000000, 0x0000],
    [0x80000000, 0x8000],
    [0x00008000, 0x0000], // subnormal tie to even (zero)
    [0x00018000, 0x0002], // subnormal tie to odd
  ];
  const nans = [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0xffc12345];
  for (const impl of [refGemm, native!]) {
    const n = specials.length + nans.length + 9; // odd length: vector body plus a scalar tail
    const src = new Float32Array(n);
    specials.forEach(([u], i) => (src[i] = bits(u)));
    nans.forEach((u, i) => (src[specials.length + i] = bits(u)));
    const dst = new Uint16Array(n);
    impl.f32ToBf16(src, dst);
    specials.forEach(([u, want], i) => assert.equal(dst[i], want, `f32ToBf16(0x${u.toString(16)})`));
    nans.forEach((u, i) => {
      const h = dst[specials.length + i];
      assert.ok(
        (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0,
        `NaN 0x${u.toString(16)} -> 0x${h.toString(16)} is not NaN`,
      );
      assert.equal(h >>> 15, u >>> 31, "NaN sign kept");
    });
    // Every non-NaN bf16 survives bf16 -> f32 -> bf16 unchanged.
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = new Float32Array(65536);
    impl.bf16ToF32(all, wide);
    const back = new Uint16Array(65536);
    impl.f32ToBf16(wide, back);
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (!isNan) assert.equal(back[i], i, `round trip of bf16 0x${i.toString(16)}`);
      else assert.ok(Number.isNaN(wide[i]));
    }
  }
  // Random values: native agrees bit for bit with the reference, and the error is within half an ulp.
  const { rng } = freshRng();
  const x = rng.randn(1001, 100);
  const a = new Uint16Array(x.length);
  const b = new Uint16Array(x.length);
  refGemm.f32ToBf16(x, a);
  native!.f32ToBf16(x, b);
  assert.deepEqual(b, a);
  for (let i = 0; i < x.length; i++) assert.equal(a[i], bf16Round(x[i]));
  const back = new Float32Array(x.length);
  native!.bf16ToF32(a, back);
  for (let i = 0; i < x.length; i++)
    assert.ok(Math.abs(back[i] - x[i]) <= Math.abs(x[i]) * 2 ** -8, `bf16 error at ${x[i]}`);
});

test("bad arguments throw errors naming the op and shapes", { skip }, () => {
  const f = (n: number) => new Float32Array(n);
  for (const impl of [refGemm, native!]) {
    assert.throws(
      () => impl.gemm(false, false, 2, 3, 4, 1, f(7), f(12), 0, f(6)),
      /gemm: A has 7 elements, needs 8 \(M=2 N=3 K=4/,
    );
    assert.throws(
      () => impl.gemm(false, true, 2, 3, 4, 1, f(8), f(11), 0, f(6)),
      /gemm: B has 11 elements, needs 12/,
    );
    assert.throws(
      () => impl.gemm(false, false, 2, 3, 4, 1, f(8), f(12), 0, f(5)),
      /gemm: C has 5 elements, needs 6/,
    );
    assert.throws(
      () => impl.gemm(false, false, -1, 3, 4, 1, f(8), f(12), 0, f(6)),
      /gemm: M must be an integer in \[0, 2147483647\], got -1/,
    );
    assert.throws(
      () => impl.gemm(false, false, 2, 1.5, 4, 1, f(8), f(12), 0, f(6)),
      /gemm: N must be an integer in \[0, 2147483647\]/,
    );
    assert.throws(
      () => impl.gemmBf16(false, 2, 3, 4, 1, f(8), new Uint16Array(11), 0, f(6)),
      /gemmBf16: B has 11 elements, needs 12/,
    );
    assert.throws(
      () => impl.gemmBatched(false, false, 3, 2, 2, 2, 1, f(12), 4, f(4), 0, 0, f(12), 3),
      /gemmBatched: strideC 3 < M\*N/,
    );
    assert.throws(
      () => impl.gemmBatched(false, false, 3, 2, 2, 2, 1, f(11), 4, f(4), 0, 0, f(12), 4),
      /gemmBatched: A has 11 elements, needs 12/,
    );
    assert.throws(() => impl.f32ToBf16(f(5), new Uint16Array(4)), /f32ToBf16: dst has 4 elements, needs 5/);
    assert.throws(() => impl.bf16ToF32(new Uint16Array(5), f(4)), /bf16ToF32: dst has 4 elements, needs 5/);
  }
  // Wrong types only reach the native side through untyped callers.
  const loose = native as unknown as Record<string, (...args: unknown[]) => void>;
  assert.throws(
    () => loose.gemm(false, false, 2, 3, 4, 1, new Float64Array(8), f(12), 0, f(6)),
    /gemm: A \(argument 6\) must be a Float32Array/,
  );
  assert.throws(
    () => loose.gemmBf16(false, 2, 3, 4, 1, f(8), f(12), 0, f(6)),
    /gemmBf16: B \(argument 6\) must be a Uint16Array/,
  );
  assert.throws(
    () => loose.gemm(0, false, 2, 3, 4, 1, f(8), f(12), 0, f(6)),
    /gemm: argument 0 must be a boolean/,
  );
  assert.throws(() => loose.gemm(false, false, 2, 3, 4), /gemm: expected 10 arguments, got 5/);
});

test("peakGflops measures a positive rate and rejects bad thread counts", { skip }, () => {
  assert.ok(peakGflops(1, 0.02) > 1);
  assert.throws(() => peakGflops(0, 0.02), /peakGflops: threads must be in/);
});
