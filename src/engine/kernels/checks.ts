// The argument rules of every kernel, in one place: sizes are exact integers within limits, products of
// sizes are checked before they are compared with array lengths (a product past 2^53 is refused, so it can
// never round or wrap into a length check that passes), arrays have the elements their shape implies.
// The TypeScript references call these checks; the native bindings are wrapped with them (withChecks), and
// the C++ side applies the same rules again (native/checks.h). Errors name the op, the argument and the
// sizes, and always throw.
import type { AttentionKernels, GemmKernels, PointwiseKernels } from "./types.js";

/** Largest value of any one size argument (the int32 range, as in native/checks.h). */
export const MAX_DIM = 2147483647;
/** Head dims, rows and the like whose scratch the native side bounds: see kernelScratchLimit. */
const MAX_SCRATCH_FLOATS = 2 ** 27;

type AllKernels = GemmKernels & AttentionKernels & PointwiseKernels;
export type KernelName = keyof AllKernels;
/** The same parameters with float arrays widened to any array of numbers (the references run in f64 too). */
type Loose<A extends unknown[]> = { [I in keyof A]: A[I] extends Float32Array ? ArrayLike<number> : A[I] };
type CheckTable = { [K in KernelName]: (...args: Loose<Parameters<AllKernels[K]>>) => void };

function fail(op: string, msg: string): never {
  throw new TypeError(`${op}: ${msg}`);
}

/** An exact integer in [min, MAX_DIM]. */
export function dim(op: string, name: string, v: number, min = 0): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > MAX_DIM)
    fail(op, `${name} must be an integer in [${min}, ${MAX_DIM}], got ${v}`);
  return v;
}

function finite(op: string, name: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(op, `${name} must be a finite number, got ${v}`);
}

/** The product of sizes, refused when it passes 2^53 (where doubles stop counting exactly). */
export function product(op: string, what: string, ...sizes: number[]): number {
  let p = 1;
  for (const s of sizes) p *= s;
  if (p > Number.MAX_SAFE_INTEGER) fail(op, `size of ${what} (${sizes.join(" x ")}) overflows`);
  return p;
}

/** A call's sizes for an error message, built only when one is thrown (checks run on every kernel call). */
type Sizes = () => string;

function atLeast(
  op: string,
  name: string,
  a: ArrayLike<number>,
  n: number,
  shape: string | Sizes = "",
): void {
  if (a === null || typeof a !== "object" || typeof a.length !== "number")
    fail(op, `${name} must be an array, got ${a === null ? "null" : typeof a}`);
  if (a.length < n) {
    const sizes = typeof shape === "function" ? shape() : shape;
    fail(op, `${name} has ${a.length} elements, needs ${n}${sizes === "" ? "" : ` (${sizes})`}`);
  }
}

function sameLength(op: string, names: string[], arrays: ArrayLike<number>[]): void {
  for (const [i, a] of arrays.entries()) atLeast(op, names[i], a, 0);
  const n = arrays[0].length;
  for (let i = 1; i < arrays.length; i++)
    if (arrays[i].length !== n)
      fail(op, `length mismatch: ${names[0]} has ${n} elements, ${names[i]} has ${arrays[i].length}`);
}

function rows(op: string, r: number, d: number, dName = "dim"): number {
  return product(op, `${r} x ${d}`, dim(op, "rows", r), dim(op, dName, d));
}

function targetsIn(op: string, r: number, V: number, targets: Int32Array, ignoreIndex: number): void {
  if (!Number.isInteger(ignoreIndex) || ignoreIndex < -MAX_DIM - 1 || ignoreIndex > MAX_DIM)
    fail(op, `ignoreIndex must be an int32, got ${ignoreIndex}`);
  for (let i = 0; i < r; i++) {
    const t = targets[i];
    if (t !== ignoreIndex && (t < 0 || t >= V))
      fail(op, `target ${t} at row ${i} outside [0, ${V}) (ignoreIndex ${ignoreIndex})`);
  }
}

function embedding(
  op: string,
  ids: Int32Array,
  d: number,
  table: ArrayLike<number>,
  rowsArray: string,
): void {
  dim(op, "dim", d, 1);
  atLeast(op, rowsArray, table, 0);
  if (table.length % d !== 0) fail(op, `table length ${table.length} is not a multiple of dim ${d}`);
  const V = table.length / d;
  for (let i = 0; i < ids.length; i++)
    if (ids[i] < 0 || ids[i] >= V) fail(op, `id ${ids[i]} at position ${i} outside table rows [0, ${V})`);
}

function gemmShape(op: string, sizes: [string, number][], extra = ""): Sizes {
  for (const [n, v] of sizes) dim(op, n, v);
  return () => sizes.map(([n, v]) => `${n}=${v}`).join(" ") + extra;
}

/** gemvRows (W [N, K], named "W") and gemvKMajor (Wt [K, N], named "Wt"): the same sizes. */
function gemvRowsCheck(
  op: string,
  R: number,
  N: number,
  K: number,
  X: ArrayLike<number>,
  W: ArrayLike<number>,
  Y: ArrayLike<number>,
  wName = "W",
): void {
  const s = gemmShape(op, [
    ["R", R],
    ["N", N],
    ["K", K],
  ]);
  atLeast(op, "X", X, product(op, "X", R, K), s);
  atLeast(op, wName, W, product(op, wName, N, K), s);
  atLeast(op, "Y", Y, product(op, "Y", R, N), s);
}

function attention(
  op: string,
  B: number,
  Tq: number,
  Tk: number,
  Hq: number,
  Hkv: number,
  D: number,
  qOffset: number,
  scale: number,
  kvLen: Int32Array | null,
  backward: boolean,
): { nq: number; nk: number; nlse: number; dims: string } {
  dim(op, "B", B, 1);
  dim(op, "Tq", Tq);
  dim(op, "Tk", Tk);
  dim(op, "Hq", Hq, 1);
  dim(op, "Hkv", Hkv, 1);
  dim(op, "D", D, 1);
  dim(op, "qOffset", qOffset);
  finite(op, "scale", scale);
  const dims = `B=${B} Tq=${Tq} Tk=${Tk} Hq=${Hq} Hkv=${Hkv} D=${D}`;
  if (Hq % Hkv !== 0) fail(op, `Hq (${Hq}) must be a multiple of Hkv (${Hkv}) (${dims})`);
  const nq = product(op, `q (${dims})`, B, Tq, Hq, D);
  const nk = product(op, `k (${dims})`, B, Tk, Hkv, D);
  const nlse = product(op, `lse (${dims})`, B, Hq, Tq);
  // The native kernel's scratch (packed keys or per-thread partial sums), bounded the same way there.
  const Dp = Math.ceil(D / 8) * 8;
  const work = backward ? 4 * (nq / D) * Dp : Tq > 16 ? B * Hkv * (Math.ceil(Tk / 64) * 64 * D + Tk * Dp) : 0;
  if (work > MAX_SCRATCH_FLOATS)
    fail(op, `scratch of ${work * 4} bytes exceeds the limit of ${MAX_SCRATCH_FLOATS * 4} (${dims})`);
  if (kvLen !== null) {
    if (!(kvLen instanceof Int32Array)) fail(op, "kvLen must be an Int32Array or null");
    if (kvLen.length < B) fail(op, `kvLen has ${kvLen.length} elements, needs B=${B}`);
    for (let b = 0; b < B; b++)
      if (kvLen[b] < 0 || kvLen[b] > Tk) fail(op, `kvLen[${b}] = ${kvLen[b]} is outside [0, Tk=${Tk}]`);
  }
  return { nq, nk, nlse, dims };
}

/** Every kernel's rules (a missing kernel is a compile error). */
export const KERNEL_CHECKS: CheckTable = {
  gemm(transA, transB, M, N, K, _alpha, A, B, _beta, C) {
    const s = gemmShape(
      "gemm",
      [
        ["M", M],
        ["N", N],
        ["K", K],
      ],
      ` transA=${transA} transB=${transB}`,
    );
    atLeast("gemm", "A", A, product("gemm", "A", M, K), s);
    atLeast("gemm", "B", B, product("gemm", "B", K, N), s);
    atLeast("gemm", "C", C, product("gemm", "C", M, N), s);
  },
  gemmBatched(transA, transB, batch, M, N, K, _alpha, A, strideA, B, strideB, _beta, C, strideC) {
    const op = "gemmBatched";
    const s = gemmShape(
      op,
      [
        ["batch", batch],
        ["M", M],
        ["N", N],
        ["K", K],
        ["strideA", strideA],
        ["strideB", strideB],
        ["strideC", strideC],
      ],
      ` transA=${transA} transB=${transB}`,
    );
    const mn = product(op, "C", M, N);
    if (batch > 1 && mn > 0 && strideC < mn)
      fail(op, `strideC ${strideC} < M*N would make outputs overlap (${s()})`);
    const need = (stride: number, size: number) =>
      batch === 0 ? 0 : product(op, "a batch", batch - 1, stride) + size;
    atLeast(op, "A", A, need(strideA, product(op, "A", M, K)), s);
    atLeast(op, "B", B, need(strideB, product(op, "B", K, N)), s);
    atLeast(op, "C", C, need(strideC, mn), s);
  },
  gemmBf16(transB, M, N, K, _alpha, A, B, _beta, C) {
    const s = gemmShape(
      "gemmBf16",
      [
        ["M", M],
        ["N", N],
        ["K", K],
      ],
      ` transB=${transB}`,
    );
    atLeast("gemmBf16", "A", A, product("gemmBf16", "A", M, K), s);
    atLeast("gemmBf16", "B", B, product("gemmBf16", "B", K, N), s);
    atLeast("gemmBf16", "C", C, product("gemmBf16", "C", M, N), s);
  },
  gemvRows(R, N, K, _alpha, X, W, _beta, Y) {
    gemvRowsCheck("gemvRows", R, N, K, X, W, Y);
  },
  gemvRowsBf16(R, N, K, _alpha, X, W, _beta, Y) {
    gemvRowsCheck("gemvRowsBf16", R, N, K, X, W, Y);
  },
  gemvKMajor(R, N, K, _alpha, X, Wt, _beta, Y) {
    gemvRowsCheck("gemvKMajor", R, N, K, X, Wt, Y, "Wt");
  },
  gemvKMajorBf16(R, N, K, _alpha, X, Wt, _beta, Y) {
    gemvRowsCheck("gemvKMajorBf16", R, N, K, X, Wt, Y, "Wt");
  },
  gemvPanels(R, N, K, _alpha, X, Wt, _beta, Y) {
    gemvRowsCheck("gemvPanels", R, N, K, X, Wt, Y, "Wt");
  },
  gemvPanelsBf16(R, N, K, _alpha, X, Wt, _beta, Y) {
    gemvRowsCheck("gemvPanelsBf16", R, N, K, X, Wt, Y, "Wt");
  },
  f32ToBf16(src, dst) {
    atLeast("f32ToBf16", "src", src, 0);
    atLeast("f32ToBf16", "dst", dst, src.length, `n=${src.length}`);
  },
  bf16ToF32(src, dst) {
    atLeast("bf16ToF32", "src", src, 0);
    atLeast("bf16ToF32", "dst", dst, src.length, `n=${src.length}`);
  },
  attentionForward(B, Tq, Tk, Hq, Hkv, D, qOffset, _causal, scale, q, k, v, kvLen, out, lse) {
    const op = "attentionForward";
    const z = attention(op, B, Tq, Tk, Hq, Hkv, D, qOffset, scale, kvLen, false);
    for (const [name, a, n] of [
      ["q", q, z.nq],
      ["k", k, z.nk],
      ["v", v, z.nk],
      ["out", out, z.nq],
      ["lse", lse, z.nlse],
    ] as const)
      atLeast(op, name, a, n, z.dims);
  },
  attentionBackward(
    B,
    Tq,
    Tk,
    Hq,
    Hkv,
    D,
    qOffset,
    _causal,
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
  ) {
    const op = "attentionBackward";
    const z = attention(op, B, Tq, Tk, Hq, Hkv, D, qOffset, scale, kvLen, true);
    for (const [name, a, n] of [
      ["q", q, z.nq],
      ["k", k, z.nk],
      ["v", v, z.nk],
      ["out", out, z.nq],
      ["lse", lse, z.nlse],
      ["dout", dout, z.nq],
      ["dq", dq, z.nq],
      ["dk", dk, z.nk],
      ["dv", dv, z.nk],
    ] as const)
      atLeast(op, name, a, n, z.dims);
  },
  attentionDecodeRows(R, Hq, Hkv, D, scale, q, keys, values, lengths, out) {
    const op = "attentionDecodeRows";
    dim(op, "R", R);
    dim(op, "Hq", Hq, 1);
    dim(op, "Hkv", Hkv, 1);
    dim(op, "D", D, 1);
    finite(op, "scale", scale);
    if (Hq % Hkv !== 0) fail(op, `Hq (${Hq}) must be a multiple of Hkv (${Hkv})`);
    if (!Array.isArray(keys) || !Array.isArray(values))
      fail(op, "keys and values must be arrays of Float32Array or of Uint16Array (bf16)");
    if (keys.length < R || values.length < R)
      fail(op, `keys and values need R = ${R} arrays, got ${keys.length} and ${values.length}`);
    if (!(lengths instanceof Int32Array)) fail(op, "lengths must be an Int32Array");
    atLeast(op, "lengths", lengths, R);
    const nq = product(op, "q", R, Hq, D);
    atLeast(op, "q", q, nq);
    atLeast(op, "out", out, nq);
    for (let r = 0; r < R; r++) {
      if (lengths[r] < 1) fail(op, `lengths[${r}] = ${lengths[r]} must be >= 1`);
      const need = product(op, "a cache", lengths[r], Hkv, D);
      for (const [name, a] of [
        ["keys", keys[r]],
        ["values", values[r]],
      ] as const) {
        const bf16 = keys[0] instanceof Uint16Array;
        if (bf16 ? !(a instanceof Uint16Array) : !(a instanceof Float32Array))
          fail(op, `${name}[${r}] must be a ${bf16 ? "Uint16Array" : "Float32Array"} like keys[0]`);
        atLeast(op, `${name}[${r}]`, a, need);
      }
    }
  },
  rmsnormForward(r, d, _eps, x, w, y, rstd) {
    const n = rows("rmsnormForward", r, d);
    for (const [name, a, len] of [
      ["x", x, n],
      ["w", w, d],
      ["y", y, n],
      ["rstd", rstd, r],
    ] as const)
      atLeast("rmsnormForward", name, a, len);
  },
  rmsnormBackward(r, d, x, w, rstd, dy, dx, dw) {
    const n = rows("rmsnormBackward", r, d);
    for (const [name, a, len] of [
      ["x", x, n],
      ["w", w, d],
      ["rstd", rstd, r],
      ["dy", dy, n],
      ["dx", dx, n],
      ["dw", dw, d],
    ] as const)
      atLeast("rmsnormBackward", name, a, len);
  },
  layernormForward(r, d, _eps, x, w, b, y, mean, rstd) {
    const n = rows("layernormForward", r, d);
    for (const [name, a, len] of [
      ["x", x, n],
      ["w", w, d],
      ["b", b, d],
      ["y", y, n],
      ["mean", mean, r],
      ["rstd", rstd, r],
    ] as const)
      atLeast("layernormForward", name, a, len);
  },
  layernormBackward(r, d, x, w, mean, rstd, dy, dx, dw, db) {
    const n = rows("layernormBackward", r, d);
    for (const [name, a, len] of [
      ["x", x, n],
      ["w", w, d],
      ["mean", mean, r],
      ["rstd", rstd, r],
      ["dy", dy, n],
      ["dx", dx, n],
      ["dw", dw, d],
      ["db", db, d],
    ] as const)
      atLeast("layernormBackward", name, a, len);
  },
  rope(T, H, D, theta, positions, x, _inverse) {
    dim("rope", "T", T);
    dim("rope", "H", H);
    dim("rope", "D", D);
    finite("rope", "theta", theta);
    if (theta <= 0) fail("rope", `theta must be > 0, got ${theta}`);
    if (D % 2 !== 0) fail("rope", `head dim D = ${D} must be even`);
    if (!(positions instanceof Int32Array)) fail("rope", "positions must be an Int32Array");
    if (positions.length < T) fail("rope", `positions has ${positions.length} elements, needs T = ${T}`);
    atLeast("rope", "x", x, product("rope", "x", T, H, D), `T=${T} H=${H} D=${D}`);
  },
  siluForward: (x, y) => sameLength("siluForward", ["x", "y"], [x, y]),
  siluBackward: (x, dy, dx) => sameLength("siluBackward", ["x", "dy", "dx"], [x, dy, dx]),
  geluForward: (x, y) => sameLength("geluForward", ["x", "y"], [x, y]),
  geluBackward: (x, dy, dx) => sameLength("geluBackward", ["x", "dy", "dx"], [x, dy, dx]),
  swigluForward: (gate, up, y) => sameLength("swigluForward", ["gate", "up", "y"], [gate, up, y]),
  swigluBackward: (gate, up, dy, dgate, dup) =>
    sameLength("swigluBackward", ["gate", "up", "dy", "dgate", "dup"], [gate, up, dy, dgate, dup]),
  softmaxForward(r, d, x, y) {
    const n = rows("softmaxForward", r, d);
    atLeast("softmaxForward", "x", x, n);
    atLeast("softmaxForward", "y", y, n);
  },
  softmaxBackward(r, d, y, dy, dx) {
    const n = rows("softmaxBackward", r, d);
    for (const [name, a] of [
      ["y", y],
      ["dy", dy],
      ["dx", dx],
    ] as const)
      atLeast("softmaxBackward", name, a, n);
  },
  embeddingForward(ids, d, table, out) {
    embedding("embeddingForward", ids, d, table, "table");
    atLeast("embeddingForward", "out", out, product("embeddingForward", "out", ids.length, d));
  },
  embeddingBackward(ids, d, dout, dtable) {
    embedding("embeddingBackward", ids, d, dtable, "dtable");
    atLeast("embeddingBackward", "dout", dout, product("embeddingBackward", "dout", ids.length, d));
  },
  crossEntropyForward(r, V, logits, targets, ignoreIndex, lse) {
    const op = "crossEntropyForward";
    const n = rows(op, r, V, "V");
    atLeast(op, "logits", logits, n);
    atLeast(op, "targets", targets, r);
    atLeast(op, "lse", lse, r);
    targetsIn(op, r, V, targets, ignoreIndex);
  },
  crossEntropyBackward(r, V, logits, targets, ignoreIndex, lse, _gradScale, dlogits) {
    const op = "crossEntropyBackward";
    const n = rows(op, r, V, "V");
    atLeast(op, "logits", logits, n);
    atLeast(op, "dlogits", dlogits, n);
    atLeast(op, "targets", targets, r);
    atLeast(op, "lse", lse, r);
    targetsIn(op, r, V, targets, ignoreIndex);
  },
  adamw(p, g, m, v, _lr, _beta1, _beta2, _eps, _weightDecay, step) {
    sameLength("adamw", ["p", "g", "m", "v"], [p, g, m, v]);
    dim("adamw", "step", step, 1);
  },
  sumSquares: (x) => atLeast("sumSquares", "x", x, 0),
  scaleInPlace: (x, _s) => atLeast("scaleInPlace", "x", x, 0),
  axpy: (_alpha, x, y) => sameLength("axpy", ["x", "y"], [x, y]),
  add: (a, b, out) => sameLength("add", ["a", "b", "out"], [a, b, out]),
  mul: (a, b, out) => sameLength("mul", ["a", "b", "out"], [a, b, out]),
  firstNonFinite: (x) => atLeast("firstNonFinite", "x", x, 0),
  argmax: (x) => atLeast("argmax", "x", x, 0),
};

/** The kernels of `impl` with their checks run first (native bindings: no call reaches C++ unchecked). */
export function withChecks<T extends { [K in keyof T]: K extends KernelName ? unknown : never }>(impl: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(impl)) {
    const check = KERNEL_CHECKS[name as KernelName] as (...a: unknown[]) => void;
    const f = fn as (...a: unknown[]) => unknown;
    out[name] = (...args: unknown[]) => {
      if (args.length !== check.length) fail(name, `expected ${check.length} arguments, got ${args.length}`);
      check(...args);
      return f(...args);
    };
  }
  return out as T;
}
