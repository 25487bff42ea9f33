// Fused scaled-dot-product attention: the TypeScript reference (the spec) and the native wrapper.
// Shapes: B batch, Tq query tokens, Tk key tokens, Hq query heads, Hkv key/value heads, D head dim.
// q, out: [B, Tq, Hq, D]; k, v: [B, Tk, Hkv, D]; lse: [B, Hq, Tq]. Query head h reads kv head h / (Hq / Hkv).
// Query row i sees the key prefix 0..lim-1, lim = min(kvLen[b] or Tk, causal ? qOffset + i + 1 : Tk).
// A row that sees no key gets out = 0 and lse = -Infinity, and contributes no gradient.
import { loadAddon } from "../native.js";
import { KERNEL_CHECKS, withChecks } from "./checks.js";
import { refGemm } from "./gemm.js";
import type { AttentionKernels, KVRows } from "./types.js";

/** Float32 for the kernels; Float64 so tests can take finite differences of the spec in double precision. */
export type Floats = Float32Array | Float64Array;

/** Number of keys (a prefix) that query row i of batch b sees. */
function keyLimit(
  b: number,
  i: number,
  Tk: number,
  qOffset: number,
  causal: boolean,
  kvLen: Int32Array | null,
): number {
  let lim = kvLen === null ? Tk : kvLen[b];
  if (causal) lim = Math.min(lim, qOffset + i + 1);
  return Math.max(lim, 0);
}

/** Reference forward: scores of each query row materialised, softmax, weighted sum of values. */
export function attentionForwardRef(
  B: number,
  Tq: number,
  Tk: number,
  Hq: number,
  Hkv: number,
  D: number,
  qOffset: number,
  causal: boolean,
  scale: number,
  q: Floats,
  k: Floats,
  v: Floats,
  kvLen: Int32Array | null,
  out: Floats,
  lse: Floats,
): void {
  KERNEL_CHECKS.attentionForward(B, Tq, Tk, Hq, Hkv, D, qOffset, causal, scale, q, k, v, kvLen, out, lse);
  const group = Hq / Hkv;
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const lim = keyLimit(b, i, Tk, qOffset, causal, kvLen);
        const qo = ((b * Tq + i) * Hq + h) * D;
        let m = -Infinity;
        for (let j = 0; j < lim; j++) {
          const ko = ((b * Tk + j) * Hkv + g) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          s[j] = dot * scale;
          m = Math.max(m, s[j]);
        }
        const lseAt = (b * Hq + h) * Tq + i;
        if (lim === 0) {
          out.fill(0, qo, qo + D);
          lse[lseAt] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < lim; j++) {
          s[j] = Math.exp(s[j] - m);
          sum += s[j];
        }
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < lim; j++) acc += s[j] * v[((b * Tk + j) * Hkv + g) * D + d];
          out[qo + d] = acc / sum;
        }
        lse[lseAt] = m + Math.log(sum);
      }
    }
  }
}

/**
 * Reference backward. With P = exp(scale·q·kᵀ − lse): dV = Pᵀ dO, dP = dO Vᵀ, dS = P ∘ (dP − rowsum(dO ∘ O)),
 * dQ = scale · dS K, dK = scale · dSᵀ Q; grouped query heads sum into their shared kv head. Overwrites dq, dk, dv.
 */
export function attentionBackwardRef(
  B: number,
  Tq: number,
  Tk: number,
  Hq: number,
  Hkv: number,
  D: number,
  qOffset: number,
  causal: boolean,
  scale: number,
  q: Floats,
  k: Floats,
  v: Floats,
  kvLen: Int32Array | null,
  out: Floats,
  lse: Floats,
  dout: Floats,
  dq: Floats,
  dk: Floats,
  dv: Floats,
): void {
  const nq = B * Tq * Hq * D;
  const nk = B * Tk * Hkv * D;
  KERNEL_CHECKS.attentionBackward(
    B,
    Tq,
    Tk,
    Hq,
    Hkv,
    D,
    qOffset,
    causal,
    scale,
    q,
    k,
    v,
    kvLen,
    out,
    lse,
    dout,
    dq,
    dk,
    dv,
  );
  dq.fill(0, 0, nq);
  dk.fill(0, 0, nk);
  dv.fill(0, 0, nk);
  const group = Hq / Hkv;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const lim = keyLimit(b, i, Tk, qOffset, causal, kvLen);
        if (lim === 0) continue;
        const qo = ((b * Tq + i) * Hq + h) * D;
        const L = lse[(b * Hq + h) * Tq + i];
        let di = 0;
        for (let d = 0; d < D; d++) di += dout[qo + d] * out[qo + d];
        for (let j = 0; j < lim; j++) {
          const ko = ((b * Tk + j) * Hkv + g) * D;
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qo + d] * k[ko + d];
            dp += dout[qo + d] * v[ko + d];
          }
          const p = Math.exp(dot * scale - L);
          const ds = p * (dp - di);
          for (let d = 0; d < D; d++) {
            dv[ko + d] += p * dout[qo + d];
            dq[qo + d] += scale * ds * k[ko + d];
            dk[ko + d] += scale * ds * q[qo + d];
          }
        }
      }
    }
  }
}

/** Reference decode attention for R sequences: the reference forward on each row and its own cache. */
export const attentionDecodeRowsRef: AttentionKernels["attentionDecodeRows"] = (
  R,
  Hq,
  Hkv,
  D,
  scale,
  q,
  keys,
  values,
  lengths,
  out,
) => {
  KERNEL_CHECKS.attentionDecodeRows(R, Hq, Hkv, D, scale, q, keys, values, lengths, out);
  const row = Hq * D;
  const lse = new Float32Array(Hq);
  // bf16 bits widen exactly to f32 (the reference conversion).
  const f32 = (a: KVRows, n: number) => {
    if (a instanceof Float32Array) return a;
    const out = new Float32Array(n * Hkv * D);
    refGemm.bf16ToF32(a.subarray(0, out.length), out);
    return out;
  };
  for (let r = 0; r < R; r++) {
    const n = lengths[r];
    const rows = (a: Float32Array) => a.subarray(r * row, (r + 1) * row);
    attentionForwardRef(
      1,
      1,
      n,
      Hq,
      Hkv,
      D,
      n - 1,
      true,
      scale,
      rows(q),
      f32(keys[r], n),
      f32(values[r], n),
      null,
      rows(out),
      lse,
    );
  }
};

export const refAttention: AttentionKernels = {
  attentionForward: attentionForwardRef,
  attentionBackward: attentionBackwardRef,
  attentionDecodeRows: attentionDecodeRowsRef,
};

interface AttentionAddon {
  attentionForward: AttentionKernels["attentionForward"];
  attentionBackward: AttentionKernels["attentionBackward"];
  attentionDecodeRows: AttentionKernels["attentionDecodeRows"];
}

function loadNative(): AttentionKernels | null {
  const addon = loadAddon();
  if (
    addon === null ||
    typeof addon.attentionForward !== "function" ||
    typeof addon.attentionBackward !== "function" ||
    typeof addon.attentionDecodeRows !== "function"
  )
    return null;
  const fns = addon as unknown as AttentionAddon;
  // Checked here first (src/engine/kernels/checks.ts); the addon checks again and throws too.
  return withChecks({
    attentionForward: fns.attentionForward,
    attentionBackward: fns.attentionBackward,
    attentionDecodeRows: fns.attentionDecodeRows,
  });
}

/** The C++ kernels, or null when the addon is not built. */
export const nativeAttention: AttentionKernels | null = loadNative();
