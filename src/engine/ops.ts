// The differentiable ops. Each op: check shapes (errors name the op and the shapes), run the forward
// kernel, and record a backward that calls kernels and accumulates (+=) into the parents' gradients.
// Tensors are treated as [rows, cols] by row-wise ops (cols = last dimension).
import { kernels } from "./kernels/index.js";
import { isGradEnabled, needsGrad, record, shapeStr, Tensor, type Shape } from "./tensor.js";

const K = kernels;

function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    fail(op, `shapes differ: ${shapeStr(a.shape)} vs ${shapeStr(b.shape)}`);
}

/** g += x */
function accumulate(g: Float32Array, x: Float32Array): void {
  K.pointwise.axpy(1, x, g);
}

/**
 * t.grad += fresh, where `fresh` is a temporary this backward allocated and nobody else holds: on a
 * tensor's first gradient it becomes the gradient buffer (no zero-fill, no add).
 */
function accumulateFresh(t: Tensor, fresh: Float32Array): void {
  if (t.grad === null) t.grad = fresh;
  else K.pointwise.axpy(1, fresh, t.grad);
}

// ---------------------------------------------------------------- shape ops

/** A view with a new shape (same data); the gradient passes through unchanged. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const out = new Tensor(x.data, shape);
  if (out.size !== x.size) fail("reshape", `cannot view ${shapeStr(x.shape)} as ${shapeStr(shape)}`);
  return record("reshape", out, [x], (g) => accumulate(x.gradBuffer(), g));
}

/** Concatenate along the first dimension (rows); all parts have the same trailing shape. */
export function concatRows(parts: Tensor[]): Tensor {
  if (parts.length === 0) fail("concatRows", "no tensors");
  const tail = parts[0].shape.slice(1);
  let rows = 0;
  for (const p of parts) {
    if (p.shape.length !== tail.length + 1 || p.shape.slice(1).some((d, i) => d !== tail[i]))
      fail("concatRows", `trailing shapes differ: ${parts.map((q) => shapeStr(q.shape)).join(", ")}`);
    rows += p.shape[0];
  }
  const out = Tensor.zeros([rows, ...tail]);
  let off = 0;
  for (const p of parts) {
    out.data.set(p.data, off);
    off += p.size;
  }
  return record("concatRows", out, parts, (g) => {
    let o = 0;
    for (const p of parts) {
      if (needsGrad(p)) accumulate(p.gradBuffer(), g.subarray(o, o + p.size));
      o += p.size;
    }
  });
}

/** Rows [start, end) of x along the first dimension (a copy). */
export function sliceRows(x: Tensor, start: number, end: number): Tensor {
  const rows = x.shape[0];
  if (!(0 <= start && start <= end && end <= rows))
    fail("sliceRows", `range [${start}, ${end}) outside ${shapeStr(x.shape)}`);
  const inner = rows === 0 ? 0 : x.size / rows;
  const out = new Tensor(x.data.slice(start * inner, end * inner), [end - start, ...x.shape.slice(1)]);
  return record("sliceRows", out, [x], (g) =>
    accumulate(x.gradBuffer().subarray(start * inner, end * inner), g),
  );
}

/** out[i, :] = table[ids[i], :] (an embedding lookup, or gathering rows of any 2-D tensor). */
export function gatherRows(table: Tensor, ids: Int32Array): Tensor {
  if (table.shape.length !== 2) fail("gatherRows", `table must be 2-D, got ${shapeStr(table.shape)}`);
  const dim = table.shape[1];
  const out = Tensor.zeros([ids.length, dim]);
  K.pointwise.embeddingForward(ids, dim, table.data, out.data);
  return record("gatherRows", out, [table], (g) =>
    K.pointwise.embeddingBackward(ids, dim, g, table.gradBuffer()),
  );
}

// ---------------------------------------------------------------- arithmetic

export function add(a: Tensor, b: Tensor): Tensor {
  sameShape("add", a, b);
  const out = Tensor.zeros(a.shape);
  K.pointwise.add(a.data, b.data, out.data);
  return record("add", out, [a, b], (g) => {
    if (needsGrad(a)) accumulate(a.gradBuffer(), g);
    if (needsGrad(b)) accumulate(b.gradBuffer(), g);
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape("mul", a, b);
  const out = Tensor.zeros(a.shape);
  K.pointwise.mul(a.data, b.data, out.data);
  return record("mul", out, [a, b], (g) => {
    const tmp = new Float32Array(g.length);
    if (needsGrad(a)) {
      K.pointwise.mul(g, b.data, tmp);
      accumulate(a.gradBuffer(), tmp);
    }
    if (needsGrad(b)) {
      K.pointwise.mul(g, a.data, tmp);
      accumulate(b.gradBuffer(), tmp);
    }
  });
}

export function scale(x: Tensor, s: number): Tensor {
  const out = new Tensor(x.data.slice(), x.shape);
  K.pointwise.scaleInPlace(out.data, s);
  return record("scale", out, [x], (g) => K.pointwise.axpy(s, g, x.gradBuffer()));
}

/** x + bias, bias broadcast over rows (bias has x.cols elements). */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const cols = x.cols;
  if (bias.size !== cols)
    fail("addBias", `bias ${shapeStr(bias.shape)} does not match x ${shapeStr(x.shape)}`);
  const out = new Tensor(x.data.slice(), x.shape);
  for (let r = 0; r < x.rows; r++)
    K.pointwise.axpy(1, bias.data, out.data.subarray(r * cols, (r + 1) * cols));
  return record("addBias", out, [x, bias], (g) => {
    if (needsGrad(x)) accumulate(x.gradBuffer(), g);
    if (needsGrad(bias)) {
      const gb = bias.gradBuffer();
      for (let r = 0; r < x.rows; r++) K.pointwise.axpy(1, g.subarray(r * cols, (r + 1) * cols), gb);
    }
  });
}

/** Sum of all elements (a scalar). */
export function sum(x: Tensor): Tensor {
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.data[i];
  const out = Tensor.from([s], []);
  return record("sum", out, [x], (g) => {
    const gx = x.gradBuffer();
    const v = g[0];
    for (let i = 0; i < gx.length; i++) gx[i] += v;
  });
}

/** Mean over rows: [rows, cols] → [1, cols]. */
export function meanRows(x: Tensor): Tensor {
  const rows = x.rows;
  const cols = x.cols;
  if (rows === 0) fail("meanRows", `no rows in ${shapeStr(x.shape)}`);
  const out = Tensor.zeros([1, cols]);
  for (let r = 0; r < rows; r++)
    K.pointwise.axpy(1 / rows, x.data.subarray(r * cols, (r + 1) * cols), out.data);
  return record("meanRows", out, [x], (g) => {
    const gx = x.gradBuffer();
    for (let r = 0; r < rows; r++) K.pointwise.axpy(1 / rows, g, gx.subarray(r * cols, (r + 1) * cols));
  });
}

// ---------------------------------------------------------------- matmul

/**
 * y = x · wᵀ (+ bias): x [..., in], w [out, in] (Hugging Face / torch Linear layout), y [..., out].
 * Uses the bf16 copy of w when present (inference).
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  if (w.shape.length !== 2) fail("linear", `weight must be 2-D [out, in], got ${shapeStr(w.shape)}`);
  const [N, Kd] = w.shape;
  if (x.cols !== Kd)
    fail("linear", `input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)} (in = ${Kd})`);
  const M = x.rows;
  const out = Tensor.zeros([...x.shape.slice(0, -1), N]);
  // bf16 weights serve inference only: under the tape the f32 master copy is used.
  if (w.bf16 !== null && !(isGradEnabled() && needsGrad(w)))
    K.gemm.gemmBf16(true, M, N, Kd, 1, x.data, w.bf16, 0, out.data);
  else K.gemm.gemm(false, true, M, N, Kd, 1, x.data, w.data, 0, out.data);
  const y = record("linear", out, [x, w], (g) => {
    // dx[M,K] += g[M,N] · w[N,K];  dw[N,K] += gᵀ[N,M] · x[M,K]
    if (needsGrad(x)) K.gemm.gemm(false, false, M, Kd, N, 1, g, w.data, 1, x.gradBuffer());
    if (needsGrad(w)) K.gemm.gemm(true, false, N, Kd, M, 1, g, x.data, 1, w.gradBuffer());
  });
  return bias === undefined ? y : addBias(y, bias);
}

/** a [M, K] · b [K, N] → [M, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0])
    fail("matmul", `cannot multiply ${shapeStr(a.shape)} by ${shapeStr(b.shape)}`);
  const [M, Kd] = a.shape;
  const N = b.shape[1];
  const out = Tensor.zeros([M, N]);
  K.gemm.gemm(false, false, M, N, Kd, 1, a.data, b.data, 0, out.data);
  return record("matmul", out, [a, b], (g) => {
    if (needsGrad(a)) K.gemm.gemm(false, true, M, Kd, N, 1, g, b.data, 1, a.gradBuffer());
    if (needsGrad(b)) K.gemm.gemm(true, false, Kd, N, M, 1, a.data, g, 1, b.gradBuffer());
  });
}

// ---------------------------------------------------------------- norms and activations

export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const dim = x.cols;
  if (w.size !== dim)
    fail("rmsnorm", `weight ${shapeStr(w.shape)} does not match input ${shapeStr(x.shape)}`);
  const rows = x.rows;
  const out = Tensor.zeros(x.shape);
  const rstd = new Float32Array(rows);
  K.pointwise.rmsnormForward(rows, dim, eps, x.data, w.data, out.data, rstd);
  return record("rmsnorm", out, [x, w], (g) => {
    const dx = new Float32Array(x.size);
    const dw = needsGrad(w) ? w.gradBuffer() : new Float32Array(dim);
    K.pointwise.rmsnormBackward(rows, dim, x.data, w.data, rstd, g, dx, dw);
    if (needsGrad(x)) accumulateFresh(x, dx);
  });
}

export function layernorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const dim = x.cols;
  if (w.size !== dim || b.size !== dim)
    fail(
      "layernorm",
      `weight ${shapeStr(w.shape)} / bias ${shapeStr(b.shape)} do not match input ${shapeStr(x.shape)}`,
    );
  const rows = x.rows;
  const out = Tensor.zeros(x.shape);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  K.pointwise.layernormForward(rows, dim, eps, x.data, w.data, b.data, out.data, mean, rstd);
  return record("layernorm", out, [x, w, b], (g) => {
    const dx = new Float32Array(x.size);
    const dw = needsGrad(w) ? w.gradBuffer() : new Float32Array(dim);
    const db = needsGrad(b) ? b.gradBuffer() : new Float32Array(dim);
    K.pointwise.layernormBackward(rows, dim, x.data, w.data, mean, rstd, g, dx, dw, db);
    if (needsGrad(x)) accumulateFresh(x, dx);
  });
}

type Unary = "silu" | "gelu";

function unary(op: Unary, x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape);
  const fwd = op === "silu" ? K.pointwise.siluForward : K.pointwise.geluForward;
  const bwd = op === "silu" ? K.pointwise.siluBackward : K.pointwise.geluBackward;
  fwd(x.data, out.data);
  return record(op, out, [x], (g) => {
    const dx = new Float32Array(x.size);
    bwd(x.data, g, dx);
    accumulateFresh(x, dx);
  });
}

export const silu = (x: Tensor): Tensor => unary("silu", x);
export const gelu = (x: Tensor): Tensor => unary("gelu", x);

/** silu(gate) · up (the LLaMA MLP gate). */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  sameShape("swiglu", gate, up);
  const out = Tensor.zeros(gate.shape);
  K.pointwise.swigluForward(gate.data, up.data, out.data);
  return record("swiglu", out, [gate, up], (g) => {
    const dg = new Float32Array(gate.size);
    const du = new Float32Array(up.size);
    K.pointwise.swigluBackward(gate.data, up.data, g, dg, du);
    if (needsGrad(gate)) accumulateFresh(gate, dg);
    if (needsGrad(up)) accumulateFresh(up, du);
  });
}

/** Row-wise softmax over the last dimension. */
export function softmax(x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape);
  K.pointwise.softmaxForward(x.rows, x.cols, x.data, out.data);
  return record("softmax", out, [x], (g) => {
    const dx = new Float32Array(x.size);
    K.pointwise.softmaxBackward(x.rows, x.cols, out.data, g, dx);
    accumulateFresh(x, dx);
  });
}

/**
 * Rotary position embedding on x viewed as [T, H, D] (rows = T, cols = H·D), Hugging Face rotate-half
 * layout, one position per row.
 */
export function rope(x: Tensor, heads: number, positions: Int32Array, theta: number): Tensor {
  const T = x.rows;
  const HD = x.cols;
  if (HD % heads !== 0 || (HD / heads) % 2 !== 0)
    fail("rope", `width ${HD} is not heads (${heads}) × an even head dim`);
  if (positions.length !== T) fail("rope", `${positions.length} positions for ${T} rows`);
  const D = HD / heads;
  const out = new Tensor(x.data.slice(), x.shape);
  K.pointwise.rope(T, heads, D, theta, positions, out.data, false);
  return record("rope", out, [x], (g) => {
    const dx = g.slice();
    K.pointwise.rope(T, heads, D, theta, positions, dx, true);
    accumulateFresh(x, dx);
  });
}

// ---------------------------------------------------------------- attention

export interface AttentionOptions {
  /** Independent sequences stacked along rows: q has B·Tq rows, k and v have B·Tk rows. */
  batch?: number;
  heads: number;
  kvHeads: number;
  causal: boolean;
  /** Absolute position of the first query (for a KV cache holding earlier keys). */
  qOffset?: number;
  /** Per-sequence number of valid keys (padding mask), or null. */
  kvLen?: Int32Array | null;
}

/**
 * Fused scaled-dot-product attention. q: [B·Tq, Hq·D], k, v: [B·Tk, Hkv·D] → [B·Tq, Hq·D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  const B = o.batch ?? 1;
  const Hq = o.heads;
  const Hkv = o.kvHeads;
  if (
    q.cols % Hq !== 0 ||
    k.cols % Hkv !== 0 ||
    q.cols / Hq !== k.cols / Hkv ||
    k.cols !== v.cols ||
    k.rows !== v.rows
  )
    fail(
      "attention",
      `q ${shapeStr(q.shape)} (${Hq} heads), k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} (${Hkv} kv heads) do not fit`,
    );
  if (Hq % Hkv !== 0) fail("attention", `query heads ${Hq} not a multiple of kv heads ${Hkv}`);
  if (q.rows % B !== 0 || k.rows % B !== 0) fail("attention", `rows not divisible by batch ${B}`);
  const D = q.cols / Hq;
  const Tq = q.rows / B;
  const Tk = k.rows / B;
  const qOffset = o.qOffset ?? 0;
  const kvLen = o.kvLen ?? null;
  const scale = 1 / Math.sqrt(D);
  const out = Tensor.zeros(q.shape);
  const lse = new Float32Array(B * Hq * Tq);
  K.attention.attentionForward(
    B,
    Tq,
    Tk,
    Hq,
    Hkv,
    D,
    qOffset,
    o.causal,
    scale,
    q.data,
    k.data,
    v.data,
    kvLen,
    out.data,
    lse,
  );
  return record("attention", out, [q, k, v], (g) => {
    const dq = new Float32Array(q.size);
    const dk = new Float32Array(k.size);
    const dv = new Float32Array(v.size);
    K.attention.attentionBackward(
      B,
      Tq,
      Tk,
      Hq,
      Hkv,
      D,
      qOffset,
      o.causal,
      scale,
      q.data,
      k.data,
      v.data,
      kvLen,
      out.data,
      lse,
      g,
      dq,
      dk,
      dv,
    );
    if (needsGrad(q)) accumulateFresh(q, dq);
    if (needsGrad(k)) accumulateFresh(k, dk);
    if (needsGrad(v)) accumulateFresh(v, dv);
  });
}

// ---------------------------------------------------------------- losses

/**
 * Mean softmax cross-entropy of logits [rows, V] against targets (Int32Array of rows), skipping rows whose
 * target is ignoreIndex. Returns a scalar; 0 when every row is ignored.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = -100): Tensor {
  const rows = logits.rows;
  const V = logits.cols;
  if (targets.length !== rows)
    fail("crossEntropy", `${targets.length} targets for logits ${shapeStr(logits.shape)}`);
  let kept = 0;
  for (let i = 0; i < rows; i++) {
    const t = targets[i];
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= V) fail("crossEntropy", `target ${t} at row ${i} outside vocabulary [0, ${V})`);
    kept++;
  }
  const lse = new Float32Array(rows);
  const total = K.pointwise.crossEntropyForward(rows, V, logits.data, targets, ignoreIndex, lse);
  const out = Tensor.from([kept === 0 ? 0 : total / kept], []);
  return record("crossEntropy", out, [logits], (g) => {
    if (kept === 0) return;
    const dl = new Float32Array(logits.size);
    K.pointwise.crossEntropyBackward(rows, V, logits.data, targets, ignoreIndex, lse, g[0] / kept, dl);
    accumulateFresh(logits, dl);
  });
}

/** Per-row negative log-likelihood of the targets (no gradient); NaN for ignored rows. For evaluation. */
export function crossEntropyRows(logits: Tensor, targets: Int32Array, ignoreIndex = -100): Float64Array {
  const rows = logits.rows;
  const V = logits.cols;
  if (targets.length !== rows)
    fail("crossEntropyRows", `${targets.length} targets for logits ${shapeStr(logits.shape)}`);
  for (let r = 0; r < rows; r++)
    if (targets[r] !== ignoreIndex && (targets[r] < 0 || targets[r] >= V))
      fail("crossEntropyRows", `target ${targets[r]} at row ${r} outside vocabulary [0, ${V})`);
  const lse = new Float32Array(rows);
  K.pointwise.crossEntropyForward(rows, V, logits.data, targets, ignoreIndex, lse);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++)
    out[r] = targets[r] === ignoreIndex ? NaN : lse[r] - logits.data[r * V + targets[r]];
  return out;
}

/**
 * Log-probability of drawing `picks` in order, without replacement, from softmax(logits) over a 1-D tensor
 * (a pointer network's selection: after each draw the chosen logit is masked to -inf). A scalar.
 * Gradient: d/dl_j = Σ_t [1{j = pick_t} − p_t(j)·1{j still available at step t}].
 */
export function selectionLogProb(logits: Tensor, picks: readonly number[]): Tensor {
  const L = logits.size;
  const seen = new Set<number>();
  for (const p of picks) {
    if (!Number.isInteger(p) || p < 0 || p >= L) fail("selectionLogProb", `pick ${p} outside [0, ${L})`);
    if (seen.has(p)) fail("selectionLogProb", `pick ${p} repeated (draws are without replacement)`);
    seen.add(p);
  }
  const l = logits.data;
  const available = new Uint8Array(L).fill(1);
  const probs: Float64Array[] = []; // p_t over the available set, per step
  let total = 0;
  for (const pick of picks) {
    let mx = -Infinity;
    for (let j = 0; j < L; j++) if (available[j]) mx = Math.max(mx, l[j]);
    let z = 0;
    for (let j = 0; j < L; j++) if (available[j]) z += Math.exp(l[j] - mx);
    const p = new Float64Array(L);
    for (let j = 0; j < L; j++) if (available[j]) p[j] = Math.exp(l[j] - mx) / z;
    probs.push(p);
    total += l[pick] - mx - Math.log(z);
    available[pick] = 0;
  }
  const out = Tensor.from([total], []);
  return record("selectionLogProb", out, [logits], (g) => {
    const gl = logits.gradBuffer();
    picks.forEach((pick, t) => {
      const p = probs[t];
      for (let j = 0; j < L; j++) gl[j] -= g[0] * p[j];
      gl[pick] += g[0];
    });
  });
}
