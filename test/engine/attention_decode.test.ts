// attentionDecodeRows (one call for a batched decode step's attention): close to the reference, and every
// row bit-identical to attentionForward on that row and its cache alone (B = 1, Tq = 1), whatever the
// other rows are, with 1 and 2 threads (rows then run on both threads) and caches long enough to be split
// into key ranges.
import assert from "node:assert/strict";
import { test } from "node:test";
import { eachIsa, freshRng, assertClose } from "../helpers.js";
import { cpuFeatures, setNumThreads } from "../../src/engine/native.js";
import { nativeAttention, refAttention } from "../../src/engine/kernels/attention.js";
import { kernels } from "../../src/engine/kernels/index.js";

const gemmKernels = kernels.gemm;

const native = nativeAttention;
const skip = native === null ? "native addon not built" : false;
const bits = (a: Float32Array | Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// [Hq, Hkv, D]: multi-head, grouped-query, a head dim that is not a multiple of 8.
const HEADS: [number, number, number][] = [
  [4, 4, 64],
  [4, 2, 16],
  [3, 1, 12],
];

test("attentionDecodeRows: matches the reference and each row alone, bit for bit", { skip }, () => {
  const { rng, seed } = freshRng();
  for (const threads of [1, 2]) {
    setNumThreads(threads);
    try {
      for (const [Hq, Hkv, D] of HEADS)
        for (const R of [1, 3, 9]) {
          const lengths = Int32Array.from({ length: R }, (_, r) =>
            r === 0 ? 1 : 1 + rng.int(r === 1 ? 600 : 70),
          );
          // Caches longer than their valid prefix (capacity beyond lengths[r]), as a KV cache is.
          const keys = Array.from(lengths, (n) => rng.randn((n + 5) * Hkv * D));
          const values = Array.from(lengths, (n) => rng.randn((n + 5) * Hkv * D));
          const q = rng.randn(R * Hq * D);
          const scale = 1 / Math.sqrt(D);
          const got = new Float32Array(R * Hq * D);
          native!.attentionDecodeRows(R, Hq, Hkv, D, scale, q, keys, values, lengths, got);
          const want = new Float32Array(R * Hq * D);
          refAttention.attentionDecodeRows(R, Hq, Hkv, D, scale, q, keys, values, lengths, want);
          const what = `threads=${threads} R=${R} Hq=${Hq} Hkv=${Hkv} D=${D}`;
          assertClose(got, want, 2e-5, what, seed);
          const row = Hq * D;
          for (let r = 0; r < R; r++) {
            const n = lengths[r];
            const alone = new Float32Array(row);
            const lse = new Float32Array(Hq);
            native!.attentionForward(
              1,
              1,
              n,
              Hq,
              Hkv,
              D,
              n - 1,
              true,
              scale,
              q.subarray(r * row, (r + 1) * row),
              keys[r],
              values[r],
              null,
              alone,
              lse,
            );
            assert.ok(
              bits(got.subarray(r * row, (r + 1) * row)).equals(bits(alone)),
              `${what} row ${r} (${n} keys) differs from attentionForward alone (seed ${seed})`,
            );
          }
        }
    } finally {
      setNumThreads(1);
    }
  }
});

// Under AVX-512 one query row with D % 16 == 0 and Hq·D <= 256 takes the all-heads path (forward_direct
// reads the cache in address order, every head at once); under AVX2 the per-head path. Same bits: the
// per-head arithmetic is the same, only the loops are turned.
test(
  "attentionDecodeRows: the all-heads path gives the per-head path's bits",
  {
    skip: native === null ? "native addon not built" : !cpuFeatures().avx512 ? "no AVX-512" : false,
  },
  () => {
    const { rng, seed } = freshRng();
    // [Hq, Hkv, D]: 16 outputs (one register), GQA, 6 registers, 16 heads × 16, the shipped 4 × 64.
    const heads: [number, number, number][] = [
      [1, 1, 16],
      [4, 2, 16],
      [2, 1, 48],
      [16, 16, 16],
      [4, 4, 64],
    ];
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      try {
        for (const [Hq, Hkv, D] of heads)
          for (const n of [1, 7, 8, 33, 100, 257, 1000]) {
            const keys = [rng.randn((n + 3) * Hkv * D)];
            const values = [rng.randn((n + 3) * Hkv * D)];
            const q = rng.randn(Hq * D);
            const out: Record<string, Float32Array> = {};
            eachIsa((isa) => {
              out[isa] = new Float32Array(Hq * D);
              native!.attentionDecodeRows(
                1,
                Hq,
                Hkv,
                D,
                1 / Math.sqrt(D),
                q,
                keys,
                values,
                Int32Array.of(n),
                out[isa],
              );
            });
            assert.ok(
              bits(out.avx512).equals(bits(out.avx2)),
              `threads=${threads} Hq=${Hq} Hkv=${Hkv} D=${D} ${n} keys: avx512 and avx2 differ (seed ${seed})`,
            );
          }
      } finally {
        setNumThreads(1);
      }
    }
  },
);

// A bf16 KV cache (Uint16Array of bf16 bits) is read as its exact f32 values: the bits of the same call on
// the widened caches, native and reference alike, on both paths (all heads, per head) and 1 or 2 threads.
test("attentionDecodeRows: bf16 caches give the bits of their widened f32 caches", { skip }, () => {
  const { rng, seed } = freshRng();
  const widen = (a: Uint16Array) => new Float32Array(Uint32Array.from(a, (b) => b << 16).buffer);
  const toBf16 = (a: Float32Array) => {
    const out = new Uint16Array(a.length);
    gemmKernels.f32ToBf16(a, out);
    return out;
  };
  for (const threads of [1, 2]) {
    setNumThreads(threads);
    try {
      for (const [Hq, Hkv, D] of HEADS)
        for (const R of [1, 5]) {
          const lengths = Int32Array.from({ length: R }, (_, r) => 1 + rng.int(r === 1 ? 600 : 70));
          const keys = Array.from(lengths, (n) => toBf16(rng.randn((n + 5) * Hkv * D)));
          const values = Array.from(lengths, (n) => toBf16(rng.randn((n + 5) * Hkv * D)));
          const q = rng.randn(R * Hq * D);
          const args = [R, Hq, Hkv, D, 1 / Math.sqrt(D), q] as const;
          const what = `threads=${threads} R=${R} Hq=${Hq} Hkv=${Hkv} D=${D}`;
          const check = (impl: typeof refAttention, label: string) => {
            const got = new Float32Array(R * Hq * D);
            impl.attentionDecodeRows(...args, keys, values, lengths, got);
            const want = new Float32Array(R * Hq * D);
            impl.attentionDecodeRows(...args, keys.map(widen), values.map(widen), lengths, want);
            assert.ok(
              bits(got).equals(bits(want)),
              `${what} ${label}: bf16 and widened f32 differ (seed ${seed})`,
            );
          };
          eachIsa((isa) => check(native!, isa));
          check(refAttention, "reference");
        }
    } finally {
      setNumThreads(1);
    }
  }
  const f = (n: number) => new Float32Array(n);
  assert.throws(
    () =>
      native!.attentionDecodeRows(
        2,
        2,
        1,
        4,
        0.5,
        f(16),
        [new Uint16Array(8), f(8)],
        [new Uint16Array(8), new Uint16Array(8)],
        Int32Array.of(2, 2),
        f(16),
      ),
    /keys\[1\] .*must be a Uint16Array like keys\[0\]/,
  );
});

test("attentionDecodeRows: argument errors name the op", () => {
  for (const impl of [refAttention, ...(native ? [native] : [])]) {
    const f = (n: number) => new Float32Array(n);
    assert.throws(
      () =>
        impl.attentionDecodeRows(2, 2, 1, 4, 0.5, f(16), [f(8)], [f(8), f(8)], Int32Array.of(2, 2), f(16)),
      /attentionDecodeRows: keys and values need R = 2 arrays/,
    );
    assert.throws(
      () => impl.attentionDecodeRows(1, 2, 1, 4, 0.5, f(8), [f(7)], [f(8)], Int32Array.of(2), f(8)),
      /attentionDecodeRows: keys\[0\] has 7 elements, needs 8/,
    );
    assert.throws(
      () => impl.attentionDecodeRows(1, 2, 1, 4, 0.5, f(8), [f(8)], [f(8)], Int32Array.of(0), f(8)),
      /attentionDecodeRows: lengths\[0\] = 0 must be >= 1/,
    );
  }
});
