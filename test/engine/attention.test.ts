// Attention kernels: native vs the TypeScript reference on fresh random inputs, the reference backward vs
// central finite differences in float64, masks (causal, KV cache offset, kvLen padding), GQA, errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertClose, freshRng } from "../helpers.js";
import {
  attentionBackwardRef,
  attentionForwardRef,
  nativeAttention,
  refAttention,
} from "../../src/engine/kernels/attention.js";
import type { AttentionKernels } from "../../src/engine/kernels/types.js";
import { cpuFeatures, setIsa, setNumThreads } from "../../src/engine/native.js";
import type { Rng } from "../../src/engine/random.js";

interface Case {
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  qOffset: number;
  causal: boolean;
  kvLen?: number[];
  scale?: number;
}

function name(c: Case): string {
  return (
    `B${c.B} Tq${c.Tq} Tk${c.Tk} Hq${c.Hq} Hkv${c.Hkv} D${c.D} off${c.qOffset} ${c.causal ? "causal" : "full"}` +
    (c.kvLen ? ` kvLen[${c.kvLen}]` : "")
  );
}

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
  kvLen: Int32Array | null;
  scale: number;
}

function inputs(rng: Rng, c: Case): Inputs {
  const nq = c.B * c.Tq * c.Hq * c.D;
  const nk = c.B * c.Tk * c.Hkv * c.D;
  return {
    q: rng.randn(nq),
    k: rng.randn(nk),
    v: rng.randn(nk),
    dout: rng.randn(nq),
    kvLen: c.kvLen ? Int32Array.from(c.kvLen) : null,
    scale: c.scale ?? 1 / Math.sqrt(c.D),
  };
}

function forward(kern: AttentionKernels, c: Case, x: Inputs): { out: Float32Array; lse: Float32Array } {
  const out = new Float32Array(c.B * c.Tq * c.Hq * c.D).fill(NaN);
  const lse = new Float32Array(c.B * c.Hq * c.Tq).fill(NaN);
  kern.attentionForward(
    c.B,
    c.Tq,
    c.Tk,
    c.Hq,
    c.Hkv,
    c.D,
    c.qOffset,
    c.causal,
    x.scale,
    x.q,
    x.k,
    x.v,
    x.kvLen,
    out,
    lse,
  );
  return { out, lse };
}

function backward(kern: AttentionKernels, c: Case, x: Inputs, out: Float32Array, lse: Float32Array) {
  // Garbage in the outputs proves they are overwritten.
  const dq = new Float32Array(x.q.length).fill(NaN);
  const dk = new Float32Array(x.k.length).fill(NaN);
  const dv = new Float32Array(x.v.length).fill(NaN);
  kern.attentionBackward(
    c.B,
    c.Tq,
    c.Tk,
    c.Hq,
    c.Hkv,
    c.D,
    c.qOffset,
    c.causal,
    x.scale,
    x.q,
    x.k,
    x.v,
    x.kvLen,
    out,
    lse,
    x.dout,
    dq,
    dk,
    dv,
  );
  return { dq, dk, dv };
}

const native = nativeAttention;
const isas: ("avx2" | "avx512")[] =
  native === null ? [] : cpuFeatures().avx512 ? ["avx2", "avx512"] : ["avx2"];

/** Native forward and backward against the reference (the backward of both from the reference's out, lse). */
function compare(c: Case, fwdTol = 2e-5, bwdTol = 1e-4): void {
  assert.ok(native !== null, "native attention kernels are not built");
  const { rng, seed } = freshRng();
  const x = inputs(rng, c);
  const want = forward(refAttention, c, x);
  const wantGrad = backward(refAttention, c, x, want.out, want.lse);
  for (const isa of isas) {
    setIsa(isa);
    const what = `${name(c)} ${isa}`;
    const got = forward(native, c, x);
    assertClose(got.out, want.out, fwdTol, `out ${what}`, seed);
    assertClose(got.lse, want.lse, fwdTol, `lse ${what}`, seed);
    const grad = backward(native, c, x, want.out, want.lse);
    // With one visible key the softmax is constant: dq and dk are exactly zero.
    for (const [label, g, w] of [
      ["dq", grad.dq, wantGrad.dq],
      ["dk", grad.dk, wantGrad.dk],
    ] as const) {
      if (w.some((e) => e !== 0)) assertClose(g, w, bwdTol, `${label} ${what}`, seed);
      else
        assert.ok(
          g.every((e) => Math.abs(e) < 1e-4),
          `${label} ${what}: expected zeros, got ${g.reduce((m, e) => Math.max(m, Math.abs(e)), 0)}`,
        );
    }
    assertClose(grad.dv, wantGrad.dv, bwdTol, `dv ${what}`, seed);
  }
}

test("reference backward matches central finite differences (float64)", () => {
  const cases: Case[] = [
    { B: 2, Tq: 5, Tk: 5, Hq: 4, Hkv: 2, D: 3, qOffset: 0, causal: true },
    { B: 2, Tq: 3, Tk: 6, Hq: 2, Hkv: 1, D: 4, qOffset: 2, causal: true },
    { B: 2, Tq: 4, Tk: 5, Hq: 2, Hkv: 2, D: 3, qOffset: 0, causal: false, kvLen: [3, 5] },
  ];
  for (const c of cases) {
    const { rng, seed } = freshRng();
    const x = inputs(rng, c);
    const [q, k, v] = [Float64Array.from(x.q), Float64Array.from(x.k), Float64Array.from(x.v)];
    const R = Float64Array.from(x.dout);
    const nq = q.length;
    const loss = (): number => {
      const out = new Float64Array(nq);
      const lse = new Float64Array(c.B * c.Hq * c.Tq);
      attentionForwardRef(
        c.B,
        c.Tq,
        c.Tk,
        c.Hq,
        c.Hkv,
        c.D,
        c.qOffset,
        c.causal,
        x.scale,
        q,
        k,
        v,
        x.kvLen,
        out,
        lse,
      );
      let s = 0;
      for (let i = 0; i < nq; i++) s += out[i] * R[i];
      return s;
    };
    const out = new Float64Array(nq);
    const lse = new Float64Array(c.B * c.Hq * c.Tq);
    attentionForwardRef(
      c.B,
      c.Tq,
      c.Tk,
      c.Hq,
      c.Hkv,
      c.D,
      c.qOffset,
      c.causal,
      x.scale,
      q,
      k,
      v,
      x.kvLen,
      out,
      lse,
    );
    const [dq, dk, dv] = [new Float64Array(q.length), new Float64Array(k.length), new Float64Array(v.length)];
    attentionBackwardRef(
      c.B,
      c.Tq,
      c.Tk,
      c.Hq,
      c.Hkv,
      c.D,
      c.qOffset,
      c.causal,
      x.scale,
      q,
      k,
      v,
      x.kvLen,
      out,
      lse,
      R,
      dq,
      dk,
      dv,
    );
    const eps = 1e-6;
    for (const [label, param, grad] of [
      ["q", q, dq],
      ["k", k, dk],
      ["v", v, dv],
    ] as const) {
      const fd = new Float64Array(param.length);
      for (let i = 0; i < param.length; i++) {
        const keep = param[i];
        param[i] = keep + eps;
        const up = loss();
        param[i] = keep - eps;
        const down = loss();
        param[i] = keep;
        fd[i] = (up - down) / (2 * eps);
      }
      assertClose(grad, fd, 1e-6, `d${label} vs finite differences, ${name(c)}`, seed);
    }
  }
});

test("native forward and backward match the reference: causal self-attention, awkward T and D", () => {
  for (const T of [1, 7, 33])
    for (const D of [1, 7, 33, 64, 80, 128])
      compare({ B: 1, Tq: T, Tk: T, Hq: 2, Hkv: 2, D, qOffset: 0, causal: true });
  compare({ B: 1, Tq: 257, Tk: 257, Hq: 2, Hkv: 1, D: 64, qOffset: 0, causal: true });
  compare({ B: 1, Tq: 257, Tk: 257, Hq: 1, Hkv: 1, D: 7, qOffset: 0, causal: true, scale: 1.5 });
});

test("native matches the reference: bidirectional with per-batch kvLen padding, B > 1", () => {
  compare({ B: 3, Tq: 33, Tk: 33, Hq: 2, Hkv: 2, D: 16, qOffset: 0, causal: false, kvLen: [33, 1, 20] });
  compare({ B: 2, Tq: 70, Tk: 130, Hq: 2, Hkv: 1, D: 33, qOffset: 0, causal: false, kvLen: [129, 65] });
  compare({ B: 2, Tq: 7, Tk: 7, Hq: 1, Hkv: 1, D: 8, qOffset: 0, causal: false });
  compare({ B: 2, Tq: 40, Tk: 90, Hq: 2, Hkv: 2, D: 9, qOffset: 10, causal: true, kvLen: [90, 33] });
});

test("native matches the reference: KV cache (qOffset > 0, Tk > Tq), decode Tq = 1, GQA", () => {
  compare({ B: 2, Tq: 37, Tk: 100, Hq: 4, Hkv: 2, D: 64, qOffset: 63, causal: true });
  compare({ B: 1, Tq: 3, Tk: 70, Hq: 4, Hkv: 1, D: 20, qOffset: 67, causal: true });
  compare({ B: 1, Tq: 5, Tk: 70, Hq: 4, Hkv: 4, D: 33, qOffset: 65, causal: true });
  // Keys past the causal horizon exist in the cache but must stay invisible.
  compare({ B: 1, Tq: 9, Tk: 80, Hq: 2, Hkv: 1, D: 16, qOffset: 20, causal: true });
  for (const [Hq, Hkv] of [
    [4, 2],
    [4, 1],
  ]) {
    compare({ B: 2, Tq: 1, Tk: 300, Hq, Hkv, D: 64, qOffset: 299, causal: true });
    compare({ B: 1, Tq: 1, Tk: 257, Hq, Hkv, D: 7, qOffset: 256, causal: true });
    compare({ B: 2, Tq: 50, Tk: 50, Hq, Hkv, D: 33, qOffset: 0, causal: true });
  }
});

test("native on 2 threads: split-key decode matches, backward is deterministic", () => {
  setNumThreads(2);
  try {
    compare({ B: 1, Tq: 1, Tk: 2600, Hq: 2, Hkv: 1, D: 64, qOffset: 2599, causal: true });
    compare({ B: 1, Tq: 2, Tk: 1500, Hq: 1, Hkv: 1, D: 33, qOffset: 1498, causal: false, kvLen: [1400] });
    const c: Case = { B: 2, Tq: 150, Tk: 150, Hq: 4, Hkv: 2, D: 24, qOffset: 0, causal: true };
    compare(c);
    assert.ok(native !== null);
    const { rng } = freshRng();
    const x = inputs(rng, c);
    const f = forward(native, c, x);
    const a = backward(native, c, x, f.out, f.lse);
    const b = backward(native, c, x, f.out, f.lse);
    assert.deepEqual(a.dq, b.dq, "dq differs between identical runs");
    assert.deepEqual(a.dk, b.dk, "dk differs between identical runs");
  } finally {
    setNumThreads(1);
  }
});

test("rows that see no key give out 0, lse -inf and zero gradients", () => {
  // Tq = 20 takes the tiled path, Tq = 2 the decode path.
  const c: Case = { B: 2, Tq: 20, Tk: 20, Hq: 2, Hkv: 1, D: 5, qOffset: 0, causal: false, kvLen: [0, 4] };
  const { rng } = freshRng();
  const x = inputs(rng, c);
  for (const kern of native === null ? [refAttention] : [refAttention, native]) {
    for (const cc of [c, { ...c, Tq: 2 }]) {
      const xx = {
        ...x,
        q: x.q.subarray(0, cc.B * cc.Tq * cc.Hq * cc.D),
        dout: x.dout.subarray(0, cc.B * cc.Tq * cc.Hq * cc.D),
      };
      const { out, lse } = forward(kern, cc, xx);
      const half = out.length / 2;
      assert.ok(
        out.subarray(0, half).every((o) => o === 0),
        "batch 0 output is not zero",
      );
      assert.ok(
        lse.subarray(0, lse.length / 2).every((l) => l === -Infinity),
        "batch 0 lse is not -inf",
      );
      assert.ok(
        out.subarray(half).some((o) => o !== 0),
        "batch 1 output is zero",
      );
      const g = backward(kern, cc, xx, out, lse);
      assert.ok(
        g.dq.subarray(0, half).every((d) => d === 0),
        "batch 0 dq is not zero",
      );
      assert.ok(
        g.dk.every((d) => Number.isFinite(d)) && g.dv.every((d) => Number.isFinite(d)),
        "non-finite dk/dv",
      );
      assert.ok(
        g.dk.subarray(0, g.dk.length / 2).every((d) => d === 0),
        "batch 0 dk is not zero",
      );
      // Keys past kvLen of batch 1 get no gradient.
      assert.ok(
        g.dv.subarray(g.dv.length / 2 + 4 * cc.D).every((d) => d === 0),
        "padding keys got a gradient",
      );
    }
  }
});

test("bad shapes throw errors naming the op", () => {
  const kerns = native === null ? [refAttention] : [refAttention, native];
  const f = (n: number) => new Float32Array(n);
  for (const kern of kerns) {
    const fwd = (
      B: number,
      Tq: number,
      Tk: number,
      Hq: number,
      Hkv: number,
      D: number,
      kvLen: Int32Array | null,
      short = 0,
    ) =>
      kern.attentionForward(
        B,
        Tq,
        Tk,
        Hq,
        Hkv,
        D,
        0,
        true,
        1,
        f(B * Tq * Hq * D - short),
        f(B * Tk * Hkv * D),
        f(B * Tk * Hkv * D),
        kvLen,
        f(B * Tq * Hq * D),
        f(B * Hq * Tq),
      );
    assert.throws(() => fwd(1, 4, 4, 3, 2, 8, null), /attentionForward.*multiple/);
    assert.throws(() => fwd(1, 4, 4, 2, 2, 8, null, 1), /attentionForward/);
    assert.throws(() => fwd(2, 4, 4, 2, 2, 8, Int32Array.from([4, 5])), /attentionForward.*kvLen/);
    assert.throws(() => fwd(2, 4, 4, 2, 2, 8, Int32Array.from([-1, 2])), /attentionForward.*kvLen/);
    assert.throws(() => fwd(2, 4, 4, 2, 2, 8, Int32Array.from([4])), /attentionForward/);
    assert.throws(() => fwd(1, 4, 4, 2, 2, 0, null), /attentionForward/);
    const n = 1 * 4 * 2 * 8;
    assert.throws(
      () =>
        kern.attentionBackward(
          1,
          4,
          4,
          2,
          2,
          8,
          0,
          true,
          1,
          f(n),
          f(n),
          f(n),
          null,
          f(n),
          f(8),
          f(n),
          f(n),
          f(n),
          f(n - 1),
        ),
      /attentionBackward/,
    );
  }
});

test("native forward at T = 2048 (tiled, no T×T buffer) matches reference rows", () => {
  assert.ok(native !== null);
  const c: Case = { B: 1, Tq: 2048, Tk: 2048, Hq: 2, Hkv: 1, D: 64, qOffset: 0, causal: true };
  const { rng, seed } = freshRng();
  const x = inputs(rng, c);
  const got = forward(native, c, x);
  // The reference for row i alone: one query at qOffset = i against the same cache.
  const row = c.Hq * c.D;
  for (const i of [0, 1, 63, 64, 1000, 2047]) {
    const one: Case = { ...c, Tq: 1, qOffset: i };
    const want = forward(refAttention, one, { ...x, q: x.q.subarray(i * row, (i + 1) * row) });
    assertClose(got.out.subarray(i * row, (i + 1) * row), want.out, 2e-5, `row ${i}`, seed);
    for (let h = 0; h < c.Hq; h++)
      // Row 0's lse is one scaled score and may be near zero: compare relative to max(1, |lse|).
      assert.ok(
        Math.abs(got.lse[h * c.Tq + i] - want.lse[h]) <= 1e-5 * Math.max(1, Math.abs(want.lse[h])),
        `lse row ${i} head ${h} (seed ${seed})`,
      );
  }
});
