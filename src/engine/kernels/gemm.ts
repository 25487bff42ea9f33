// Dense matrix products: the TypeScript reference (plain loops, the spec) and the native kernels.
// Shape legend: op(A) is M×K, op(B) is K×N, C is M×N, all row-major and contiguous. A is stored K×M when
// transA, B is stored N×K when transB. C = alpha · op(A) · op(B) + beta · C; beta = 0 overwrites C
// without reading it (so NaN in an uninitialised C does not leak), as in BLAS.
import { loadAddon } from "../native.js";
import { KERNEL_CHECKS, withChecks } from "./checks.js";
import type { GemmKernels } from "./types.js";

/** C = alpha · op(A) · op(B) + beta · C, accumulated in f64; B (at offset offB) is a stored matrix. */
function refProduct(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: ArrayLike<number>,
  offA: number,
  B: ArrayLike<number>,
  offB: number,
  beta: number,
  C: Float32Array,
  offC: number,
): void {
  // op(B) as a K×N row-major copy, so the inner loop is a plain axpy.
  const b = new Float64Array(K * N);
  for (let p = 0; p < K; p++)
    for (let j = 0; j < N; j++) b[p * N + j] = transB ? B[offB + j * K + p] : B[offB + p * N + j];
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let p = 0; p < K; p++) {
      const a = transA ? A[offA + p * M + i] : A[offA + i * K + p];
      for (let j = 0; j < N; j++) row[j] += a * b[p * N + j];
    }
    for (let j = 0; j < N; j++) {
      const c = offC + i * N + j;
      C[c] = beta === 0 ? alpha * row[j] : alpha * row[j] + beta * C[c];
    }
  }
}

// Scratch views for bit casts between f32 and u32.
const castF = new Float32Array(1);
const castU = new Uint32Array(castF.buffer);

/** bf16 bits → f32 value (exact). */
function bf16Value(bits: number): number {
  castU[0] = bits << 16;
  return castF[0];
}

/** f32 value → bf16 bits, round-to-nearest-even; NaN keeps its sign and becomes quiet. */
export function bf16Round(x: number): number {
  castF[0] = x;
  const u = castU[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// Scratch views for the bits of an f64.
const castD = new Float64Array(1);
const castD32 = new Uint32Array(castD.buffer);

/**
 * fma(a, b, c) for f32 values, rounded once to f32 as the hardware's FMA does. a·b is exact in f64 (24 + 24
 * bits); the sum is rounded to odd in f64 (53 ≥ 2·24 + 2 bits), so the one rounding to f32 that follows is
 * the correct one (no double rounding).
 */
export function fmaf32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  if (!Number.isFinite(s)) return Math.fround(s);
  const t = s - p;
  const err = p - (s - t) + (c - t); // p + c = s + err exactly (TwoSum)
  castD[0] = s;
  if (err === 0 || (castD32[0] & 1) === 1) return Math.fround(s);
  // s has an even last bit and the exact sum lies beyond it toward err: take the odd neighbour there.
  if (err > 0 === s > 0) {
    castD32[0] += 1; // never carries: the last bit was 0
  } else if (castD32[0] === 0) {
    castD32[0] = 0xffffffff;
    castD32[1] -= 1;
  } else castD32[0] -= 1;
  return Math.fround(castD[0]);
}

/**
 * gemvKMajor's arithmetic, bit for bit: per output one fma chain over k in order, then the finish of the
 * native kernels (alpha and beta as f32; alpha · s, or fma(alpha, s, beta · y)). Wt is [K, N].
 */
function refKMajor(
  R: number,
  N: number,
  K: number,
  alpha: number,
  X: ArrayLike<number>,
  Wt: ArrayLike<number>,
  beta: number,
  Y: Float32Array,
): void {
  const a = Math.fround(alpha);
  const b = Math.fround(beta);
  for (let r = 0; r < R; r++)
    for (let n = 0; n < N; n++) {
      const y = r * N + n;
      if (K === 0 || a === 0) {
        Y[y] = b === 0 ? 0 : b * Y[y];
        continue;
      }
      let s = 0;
      for (let k = 0; k < K; k++) s = fmaf32(Math.fround(X[r * K + k]), Math.fround(Wt[k * N + n]), s);
      Y[y] = b === 0 ? a * s : fmaf32(a, s, Math.fround(b * Y[y]));
    }
}

/** Columns per panel of the panel layout (gemvPanels; native/gemm.h kPanel). */
export const PANEL = 96;

/** Where Wt[k, n] sits in the panel layout: in the K × w panel at p0 = n − n mod PANEL, w = min(PANEL, N − p0). */
function panelIndex(k: number, n: number, K: number, N: number): number {
  const p0 = n - (n % PANEL);
  return p0 * K + k * Math.min(PANEL, N - p0) + (n - p0);
}

/** Wt [K, N] (K-major) → the panel layout (gemvPanels). */
export function toPanels<T extends Float32Array | Uint16Array>(Wt: T, K: number, N: number, out: T): T {
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[panelIndex(k, n, K, N)] = Wt[k * N + n];
  return out;
}

/** The panel layout → Wt [K, N] (toPanels undone). */
function fromPanels(Wp: Float32Array, K: number, N: number): Float32Array {
  const Wt = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) Wt[k * N + n] = Wp[panelIndex(k, n, K, N)];
  return Wt;
}

export const refGemm: GemmKernels = {
  gemm(transA, transB, M, N, K, alpha, A, B, beta, C) {
    KERNEL_CHECKS.gemm(transA, transB, M, N, K, alpha, A, B, beta, C);
    refProduct(transA, transB, M, N, K, alpha, A, 0, B, 0, beta, C, 0);
  },

  gemmBatched(transA, transB, batch, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC) {
    KERNEL_CHECKS.gemmBatched(
      transA,
      transB,
      batch,
      M,
      N,
      K,
      alpha,
      A,
      strideA,
      B,
      strideB,
      beta,
      C,
      strideC,
    );
    for (let b = 0; b < batch; b++)
      refProduct(transA, transB, M, N, K, alpha, A, b * strideA, B, b * strideB, beta, C, b * strideC);
  },

  gemmBf16(transB, M, N, K, alpha, A, B, beta, C) {
    KERNEL_CHECKS.gemmBf16(transB, M, N, K, alpha, A, B, beta, C);
    const Bf = new Float32Array(K * N);
    refGemm.bf16ToF32(B.subarray(0, K * N), Bf);
    refProduct(false, transB, M, N, K, alpha, A, 0, Bf, 0, beta, C, 0);
  },

  gemvRows(R, N, K, alpha, X, W, beta, Y) {
    KERNEL_CHECKS.gemvRows(R, N, K, alpha, X, W, beta, Y);
    refProduct(false, true, R, N, K, alpha, X, 0, W, 0, beta, Y, 0);
  },

  gemvRowsBf16(R, N, K, alpha, X, W, beta, Y) {
    KERNEL_CHECKS.gemvRowsBf16(R, N, K, alpha, X, W, beta, Y);
    const Wf = new Float32Array(N * K);
    refGemm.bf16ToF32(W.subarray(0, N * K), Wf);
    refProduct(false, true, R, N, K, alpha, X, 0, Wf, 0, beta, Y, 0);
  },

  gemvKMajor(R, N, K, alpha, X, Wt, beta, Y) {
    KERNEL_CHECKS.gemvKMajor(R, N, K, alpha, X, Wt, beta, Y);
    refKMajor(R, N, K, alpha, X, Wt, beta, Y);
  },

  gemvKMajorBf16(R, N, K, alpha, X, Wt, beta, Y) {
    KERNEL_CHECKS.gemvKMajorBf16(R, N, K, alpha, X, Wt, beta, Y);
    const Wf = new Float32Array(K * N);
    refGemm.bf16ToF32(Wt.subarray(0, K * N), Wf);
    refKMajor(R, N, K, alpha, X, Wf, beta, Y);
  },

  gemvPanels(R, N, K, alpha, X, Wt, beta, Y) {
    KERNEL_CHECKS.gemvPanels(R, N, K, alpha, X, Wt, beta, Y);
    refKMajor(R, N, K, alpha, X, fromPanels(Wt.subarray(0, K * N), K, N), beta, Y);
  },

  gemvPanelsBf16(R, N, K, alpha, X, Wt, beta, Y) {
    KERNEL_CHECKS.gemvPanelsBf16(R, N, K, alpha, X, Wt, beta, Y);
    const Wf = new Float32Array(K * N);
    refGemm.bf16ToF32(Wt.subarray(0, K * N), Wf);
    refKMajor(R, N, K, alpha, X, fromPanels(Wf, K, N), beta, Y);
  },

  f32ToBf16(src, dst) {
    KERNEL_CHECKS.f32ToBf16(src, dst);
    for (let i = 0; i < src.length; i++) dst[i] = bf16Round(src[i]);
  },

  bf16ToF32(src, dst) {
    KERNEL_CHECKS.bf16ToF32(src, dst);
    for (let i = 0; i < src.length; i++) dst[i] = bf16Value(src[i]);
  },
};

interface GemmAddon {
  gemm: GemmKernels["gemm"];
  gemmBatched: GemmKernels["gemmBatched"];
  gemmBf16: GemmKernels["gemmBf16"];
  gemvRows: GemmKernels["gemvRows"];
  gemvRowsBf16: GemmKernels["gemvRowsBf16"];
  gemvKMajor: GemmKernels["gemvKMajor"];
  gemvKMajorBf16: GemmKernels["gemvKMajorBf16"];
  gemvPanels: GemmKernels["gemvPanels"];
  gemvPanelsBf16: GemmKernels["gemvPanelsBf16"];
  f32ToBf16: GemmKernels["f32ToBf16"];
  bf16ToF32: GemmKernels["bf16ToF32"];
  peakGflops(threads: number, seconds: number): number;
  readGBps(a: Float32Array, passes: number): number;
}

function gemmAddon(): GemmAddon | null {
  const a = loadAddon();
  if (a === null || typeof a.gemm !== "function") return null;
  return a as unknown as GemmAddon;
}

const addon = gemmAddon();

/** The C++ kernels (null when the addon is missing), checked first by checks.ts and again in C++. */
export const nativeGemm: GemmKernels | null =
  addon === null
    ? null
    : withChecks({
        gemm: addon.gemm,
        gemmBatched: addon.gemmBatched,
        gemmBf16: addon.gemmBf16,
        gemvRows: addon.gemvRows,
        gemvRowsBf16: addon.gemvRowsBf16,
        gemvKMajor: addon.gemvKMajor,
        gemvKMajorBf16: addon.gemvKMajorBf16,
        gemvPanels: addon.gemvPanels,
        gemvPanelsBf16: addon.gemvPanelsBf16,
        f32ToBf16: addon.f32ToBf16,
        bf16ToF32: addon.bf16ToF32,
      });

/** Measured fp32 FMA peak (GFLOP/s) on `threads` threads (at most numThreads()), over `seconds`. */
export function peakGflops(threads: number, seconds = 0.5): number {
  if (addon === null) throw new Error("peakGflops: native addon unavailable");
  return addon.peakGflops(threads, seconds);
}

/** Measured memory read bandwidth (GB/s) of one thread: the fastest of `passes` front-to-back reads of a
 * (make it several times the last-level cache). */
export function readGBps(a: Float32Array, passes = 5): number {
  if (addon === null) throw new Error("readGBps: native addon unavailable");
  return addon.readGBps(a, passes);
}
