// Row-wise, pointwise, loss and optimizer kernels: the TypeScript reference (the spec, plain loops that
// compute in double and round on store) and the native C++ kernels behind the same interface.
// Shapes: rows × dim for row-wise ops; T tokens, H heads, D head dim for RoPE; V vocabulary.
// Length rules (both implementations): shaped arrays need at least the elements their shape implies;
// elementwise ops (no shape argument) need equal lengths.
import { loadAddon } from "../native.js";
import { withChecks } from "./checks.js";
import type { PointwiseKernels } from "./types.js";

/** Float32Array or Float64Array: the reference also runs in double, for finite-difference checks. */
export type Vec = Float32Array | Float64Array;
type Widen<T> = T extends Float32Array ? Vec : T;
type WidenArgs<A extends unknown[]> = { [I in keyof A]: Widen<A[I]> };
/** PointwiseKernels whose float arrays may also be Float64Array. */
export type PointwiseKernelsF64 = {
  [K in keyof PointwiseKernels]: (
    ...args: WidenArgs<Parameters<PointwiseKernels[K]>>
  ) => ReturnType<PointwiseKernels[K]>;
};

// ---------------------------------------------------------------- scalar math

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf in double to ~1e-15: the all-positive series e^{-x²} Σ 2ⁿx^{2n+1}/(2n+1)!! (no cancellation). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x); // erfc(6) ≈ 2e-17
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 0; term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

/** erfc in double: 1 - erf(x) below 1.5 (erfc(1.5) ≈ 0.03, little cancellation), else the continued
 * fraction e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) (120 terms: ~1e-16 from 1.5 on). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 1.5) return 1 - erf(x);
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** The normal CDF Φ(x) = erfc(-x/√2)/2, accurate in both tails. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x * SQRT1_2);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Inverse frequencies theta^(-2i/D), i < D/2, in double (both implementations use the same formula). */
function ropeInvFreq(D: number, theta: number): Float64Array {
  const f = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) f[i] = Math.pow(theta, (-2 * i) / D);
  return f;
}

// ---------------------------------------------------------------- the reference

export const refPointwiseF64: PointwiseKernelsF64 = withChecks({
  rmsnormForward(rows, dim, eps, x, w, y, rstd) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
      const s = 1 / Math.sqrt(ss / dim + eps);
      rstd[r] = s;
      for (let i = 0; i < dim; i++) y[o + i] = x[o + i] * s * w[i];
    }
  },

  rmsnormBackward(rows, dim, x, w, rstd, dy, dx, dw) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      const s = rstd[r];
      // y_i = x_i s w_i with s = (mean x² + eps)^-1/2, so dx_i = s w_i dy_i - s³/dim · x_i · Σ_j w_j dy_j x_j.
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += w[i] * dy[o + i] * x[o + i];
      const c = (s * s * s * dot) / dim;
      for (let i = 0; i < dim; i++) {
        dx[o + i] = s * w[i] * dy[o + i] - c * x[o + i];
        dw[i] += dy[o + i] * x[o + i] * s;
      }
    }
  },

  layernormForward(rows, dim, eps, x, w, b, y, mean, rstd) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let m = 0;
      for (let i = 0; i < dim; i++) m += x[o + i];
      m /= dim;
      let v = 0;
      for (let i = 0; i < dim; i++) v += (x[o + i] - m) * (x[o + i] - m);
      const s = 1 / Math.sqrt(v / dim + eps);
      mean[r] = m;
      rstd[r] = s;
      for (let i = 0; i < dim; i++) y[o + i] = (x[o + i] - m) * s * w[i] + b[i];
    }
  },

  layernormBackward(rows, dim, x, w, mean, rstd, dy, dx, dw, db) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      const m = mean[r];
      const s = rstd[r];
      // With g = w·dy and xhat = (x - mean)·s: dx = s·(g - mean(g) - xhat·mean(g·xhat)).
      let sg = 0;
      let sgx = 0;
      for (let i = 0; i < dim; i++) {
        const g = w[i] * dy[o + i];
        sg += g;
        sgx += g * (x[o + i] - m) * s;
      }
      sg /= dim;
      sgx /= dim;
      for (let i = 0; i < dim; i++) {
        const xh = (x[o + i] - m) * s;
        dx[o + i] = s * (w[i] * dy[o + i] - sg - xh * sgx);
        dw[i] += dy[o + i] * xh;
        db[i] += dy[o + i];
      }
    }
  },

  rope(T, H, D, theta, positions, x, inverse) {
    const half = D / 2;
    const inv = ropeInvFreq(D, theta);
    const sign = inverse ? -1 : 1;
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const a = positions[t] * inv[i];
        const c = Math.cos(a);
        const s = sign * Math.sin(a);
        for (let h = 0; h < H; h++) {
          const o = (t * H + h) * D;
          const x1 = x[o + i];
          const x2 = x[o + i + half];
          x[o + i] = x1 * c - x2 * s;
          x[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  },

  siluForward(x, y) {
    for (let i = 0; i < x.length; i++) y[i] = x[i] * sigmoid(x[i]);
  },

  siluBackward(x, dy, dx) {
    for (let i = 0; i < x.length; i++) {
      const s = sigmoid(x[i]);
      dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
  },

  geluForward(x, y) {
    for (let i = 0; i < x.length; i++) y[i] = x[i] * normalCdf(x[i]);
  },

  geluBackward(x, dy, dx) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      dx[i] = dy[i] * (normalCdf(v) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
    }
  },

  swigluForward(gate, up, y) {
    for (let i = 0; i < gate.length; i++) y[i] = gate[i] * sigmoid(gate[i]) * up[i];
  },

  swigluBackward(gate, up, dy, dgate, dup) {
    for (let i = 0; i < gate.length; i++) {
      const g = gate[i];
      const s = sigmoid(g);
      dgate[i] = dy[i] * up[i] * s * (1 + g * (1 - s));
      dup[i] = dy[i] * g * s;
    }
  },

  softmaxForward(rows, dim, x, y) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let m = -Infinity;
      for (let i = 0; i < dim; i++) m = Math.max(m, x[o + i]);
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += Math.exp(x[o + i] - m);
      for (let i = 0; i < dim; i++) y[o + i] = Math.exp(x[o + i] - m) / sum;
    }
  },

  softmaxBackward(rows, dim, y, dy, dx) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += y[o + i] * dy[o + i];
      for (let i = 0; i < dim; i++) dx[o + i] = y[o + i] * (dy[o + i] - dot);
    }
  },

  embeddingForward(ids, dim, table, out) {
    for (let i = 0; i < ids.length; i++)
      for (let j = 0; j < dim; j++) out[i * dim + j] = table[ids[i] * dim + j];
  },

  embeddingBackward(ids, dim, dout, dtable) {
    for (let i = 0; i < ids.length; i++)
      for (let j = 0; j < dim; j++) dtable[ids[i] * dim + j] += dout[i * dim + j];
  },

  crossEntropyForward(rows, V, logits, targets, ignoreIndex, lse) {
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) {
        lse[r] = 0; // ignored rows are not computed
        continue;
      }
      const o = r * V;
      let m = -Infinity;
      for (let i = 0; i < V; i++) m = Math.max(m, logits[o + i]);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - m);
      const l = m + Math.log(sum);
      lse[r] = l;
      total += l - logits[o + t];
    }
    return total;
  },

  crossEntropyBackward(rows, V, logits, targets, ignoreIndex, lse, gradScale, dlogits) {
    for (let r = 0; r < rows; r++) {
      const o = r * V;
      const t = targets[r];
      if (t === ignoreIndex) {
        for (let i = 0; i < V; i++) dlogits[o + i] = 0;
        continue;
      }
      for (let i = 0; i < V; i++)
        dlogits[o + i] = gradScale * (Math.exp(logits[o + i] - lse[r]) - (i === t ? 1 : 0));
    }
  },

  adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step) {
    // torch.optim.AdamW: p *= 1 - lr·wd; then Adam with bias corrections.
    const decay = 1 - lr * weightDecay;
    const stepSize = lr / (1 - Math.pow(beta1, step));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = beta1 * m[i] + (1 - beta1) * gi;
      const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  },

  sumSquares(x) {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return s;
  },

  scaleInPlace(x, s) {
    for (let i = 0; i < x.length; i++) x[i] *= s;
  },

  axpy(alpha, x, y) {
    for (let i = 0; i < x.length; i++) y[i] += alpha * x[i];
  },

  add(a, b, out) {
    for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  },

  mul(a, b, out) {
    for (let i = 0; i < a.length; i++) out[i] = a[i] * b[i];
  },

  firstNonFinite(x) {
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
    return -1;
  },

  argmax(x) {
    let best = 0;
    for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
    return best;
  },
});

export const refPointwise: PointwiseKernels = refPointwiseF64;

// ---------------------------------------------------------------- native

// Every interface member, so a kernel missing from the addon (a stale build) is noticed.
const NATIVE_NAMES: { [K in keyof PointwiseKernels]: true } = {
  rmsnormForward: true,
  rmsnormBackward: true,
  layernormForward: true,
  layernormBackward: true,
  rope: true,
  siluForward: true,
  siluBackward: true,
  geluForward: true,
  geluBackward: true,
  swigluForward: true,
  swigluBackward: true,
  softmaxForward: true,
  softmaxBackward: true,
  embeddingForward: true,
  embeddingBackward: true,
  crossEntropyForward: true,
  crossEntropyBackward: true,
  adamw: true,
  sumSquares: true,
  scaleInPlace: true,
  axpy: true,
  add: true,
  mul: true,
  firstNonFinite: true,
  argmax: true,
};

/** The native functions missing from the loaded addon (empty when complete or when there is no addon). */
export function missingNativePointwise(): string[] {
  const addon = loadAddon();
  if (addon === null) return [];
  return Object.keys(NATIVE_NAMES).filter((k) => typeof addon[k] !== "function");
}

function bindNative(): PointwiseKernels | null {
  const addon = loadAddon();
  if (addon === null || missingNativePointwise().length > 0) return null;
  // Checked first by checks.ts, then again in C++ (both throw errors naming the op); the functions take
  // no `this`, so callers may pass them around unbound.
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(NATIVE_NAMES)) out[k] = addon[k];
  return withChecks(out as unknown as PointwiseKernels);
}

export const nativePointwise: PointwiseKernels | null = bindNative();
