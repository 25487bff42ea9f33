// The kernel interfaces. Every family has a plain TypeScript reference (the spec, used by tests) and a
// native C++ implementation with the same signature. All arrays are row-major and contiguous; pass
// `subarray` views to work on part of a buffer (zero-copy on both sides).
//
// Shape legend: M, N, K matmul sizes; T tokens; H heads (Hq query, Hkv key/value); D head dim;
// B batch; V vocabulary; rows × dim for row-wise ops.

/** Dense matrix products. C = alpha · op(A) · op(B) + beta · C, op(A) is M×K, op(B) is K×N. */
export interface GemmKernels {
  /** A is M×K (or K×M when transA), B is K×N (or N×K when transB), C is M×N. M = 1 takes a GEMV path. */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    B: Float32Array,
    beta: number,
    C: Float32Array,
  ): void;
  /** `batch` independent products; stride 0 broadcasts an operand across the batch. */
  gemmBatched(
    transA: boolean,
    transB: boolean,
    batch: number,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    strideA: number,
    B: Float32Array,
    strideB: number,
    beta: number,
    C: Float32Array,
    strideC: number,
  ): void;
  /** Same as gemm with B stored as bf16 (raw bits in a Uint16Array): the weight-side operand. */
  gemmBf16(
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    B: Uint16Array,
    beta: number,
    C: Float32Array,
  ): void;
  /**
   * Y [R, N] = alpha · X [R, K] · Wᵀ + beta · Y, W stored [N, K] (a Linear weight): R rows of activations
   * against one weight (a batched decode step). Each row gets exactly the bits of the one-row product
   * (gemm with M = 1, transB) on that row alone, whatever R is; the native kernel loads each weight tile
   * once for several rows.
   */
  gemvRows(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    W: Float32Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /** gemvRows with W stored as bf16 bits (the same bits as gemmBf16 with M = 1 on each row). */
  gemvRowsBf16(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    W: Uint16Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /**
   * Y [R, N] = alpha · X [R, K] · Wt + beta · Y with the weight stored transposed, Wt [K, N] (a Linear
   * weight [N, K] transposed once for decoding). Every output is one sequential fused multiply-add chain
   * over k, s = fma(X[r, k], Wt[k, n], s) from s = 0, then alpha · s (beta = 0) or fma(alpha, s, beta · y):
   * no horizontal sum, so an output's bits do not depend on R, on the row's position, on the thread count
   * or on the instruction set (the decode step's products; batch invariant by construction).
   */
  gemvKMajor(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    Wt: Float32Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /** gemvKMajor with Wt stored as bf16 bits. */
  gemvKMajorBf16(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    Wt: Uint16Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /**
   * gemvKMajor with Wt in the panel layout (toPanels): column n lives in the K × w panel starting at
   * column p0 = n − n mod PANEL (w = min(PANEL, N − p0)), row-major from Wt[p0 · K]. The same chains, so
   * the same bits as gemvKMajor; each panel is contiguous (R > 1 reads it from cache without the set
   * conflicts a large N's row stride causes: the LM head).
   */
  gemvPanels(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    Wt: Float32Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /** gemvPanels with Wt stored as bf16 bits. */
  gemvPanelsBf16(
    R: number,
    N: number,
    K: number,
    alpha: number,
    X: Float32Array,
    Wt: Uint16Array,
    beta: number,
    Y: Float32Array,
  ): void;
  /** f32 → bf16 with round-to-nearest-even (NaN stays NaN). */
  f32ToBf16(src: Float32Array, dst: Uint16Array): void;
  /** bf16 → f32 (exact). */
  bf16ToF32(src: Uint16Array, dst: Float32Array): void;
}

/**
 * Fused scaled-dot-product attention (flash style: never a T×T matrix).
 * q: [B, Tq, Hq, D], k/v: [B, Tk, Hkv, D] (token-major, as a projection's output), out: [B, Tq, Hq, D],
 * lse: [B, Hq, Tq] log-sum-exp of the scaled scores (saved for backward). Hq must be a multiple of Hkv
 * (grouped-query: query head h reads kv head floor(h / (Hq / Hkv))).
 * causal: query i sits at absolute position qOffset + i and sees keys j <= qOffset + i (a KV cache holds
 * keys 0..Tk-1, so decode is Tq = 1, qOffset = Tk - 1).
 * kvLen: null, or per-batch number of valid keys (padding mask for bidirectional encoders).
 */
/** One sequence's cached keys or values: f32, or bf16 bits (a bf16 KV cache). */
export type KVRows = Float32Array | Uint16Array;

export interface AttentionKernels {
  attentionForward(
    B: number,
    Tq: number,
    Tk: number,
    Hq: number,
    Hkv: number,
    D: number,
    qOffset: number,
    causal: boolean,
    scale: number,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    kvLen: Int32Array | null,
    out: Float32Array,
    lse: Float32Array,
  ): void;
  /**
   * Decode attention for R sequences, one query row each, every sequence over its own KV cache:
   * q, out: [R, Hq, D]; keys[r], values[r]: [≥ lengths[r], Hkv, D] token-major; row r's query sits at
   * position lengths[r] - 1 and sees keys [0, lengths[r]). Row r gets exactly the bits of attentionForward
   * with B = 1, Tq = 1, Tk = lengths[r], qOffset = lengths[r] - 1, causal (one call instead of R).
   * The caches are all Float32Array, or all Uint16Array holding bf16 bits (a bf16 KV cache), read as
   * their exact f32 values: the bits of attentionForward on the widened keys and values.
   */
  attentionDecodeRows(
    R: number,
    Hq: number,
    Hkv: number,
    D: number,
    scale: number,
    q: Float32Array,
    keys: readonly KVRows[],
    values: readonly KVRows[],
    lengths: Int32Array,
    out: Float32Array,
  ): void;
  /** Overwrites dq, dk, dv. */
  attentionBackward(
    B: number,
    Tq: number,
    Tk: number,
    Hq: number,
    Hkv: number,
    D: number,
    qOffset: number,
    causal: boolean,
    scale: number,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    kvLen: Int32Array | null,
    out: Float32Array,
    lse: Float32Array,
    dout: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
  ): void;
}

/** Row-wise, pointwise and optimizer kernels. Backward kernels overwrite dx and accumulate (+=) into
 * parameter gradients (dw, db, dtable). */
export interface PointwiseKernels {
  /** y = x / rms(x) * w; rstd[rows] saved. x, y: [rows, dim], w: [dim]. */
  rmsnormForward(
    rows: number,
    dim: number,
    eps: number,
    x: Float32Array,
    w: Float32Array,
    y: Float32Array,
    rstd: Float32Array,
  ): void;
  rmsnormBackward(
    rows: number,
    dim: number,
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
  ): void;
  /** y = (x - mean) * rstd * w + b; mean, rstd: [rows] saved. */
  layernormForward(
    rows: number,
    dim: number,
    eps: number,
    x: Float32Array,
    w: Float32Array,
    b: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
  ): void;
  layernormBackward(
    rows: number,
    dim: number,
    x: Float32Array,
    w: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
    db: Float32Array,
  ): void;
  /**
   * Rotary embedding in place on x: [T, H, D], Hugging Face LLaMA "rotate half" layout (pairs i, i + D/2),
   * angle = positions[t] * theta^(-2i/D). inverse = true rotates by the negative angle (the backward).
   */
  rope(
    T: number,
    H: number,
    D: number,
    theta: number,
    positions: Int32Array,
    x: Float32Array,
    inverse: boolean,
  ): void;
  siluForward(x: Float32Array, y: Float32Array): void;
  siluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** Exact GELU, 0.5·x·(1 + erf(x/√2)) (Hugging Face "gelu"). */
  geluForward(x: Float32Array, y: Float32Array): void;
  geluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** y = silu(gate) · up. */
  swigluForward(gate: Float32Array, up: Float32Array, y: Float32Array): void;
  swigluBackward(
    gate: Float32Array,
    up: Float32Array,
    dy: Float32Array,
    dgate: Float32Array,
    dup: Float32Array,
  ): void;
  /** Row-wise softmax over the last dim. */
  softmaxForward(rows: number, dim: number, x: Float32Array, y: Float32Array): void;
  softmaxBackward(rows: number, dim: number, y: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** out[i, :] = table[ids[i], :]. Throws on an id outside [0, table rows). */
  embeddingForward(ids: Int32Array, dim: number, table: Float32Array, out: Float32Array): void;
  /** dtable[ids[i], :] += dout[i, :]. */
  embeddingBackward(ids: Int32Array, dim: number, dout: Float32Array, dtable: Float32Array): void;
  /**
   * Softmax cross-entropy per row of logits [rows, V] against targets [rows]; rows whose target equals
   * ignoreIndex are skipped. Writes lse[rows] and returns the summed loss over the kept rows.
   */
  crossEntropyForward(
    rows: number,
    V: number,
    logits: Float32Array,
    targets: Int32Array,
    ignoreIndex: number,
    lse: Float32Array,
  ): number;
  /** dlogits = gradScale · (softmax(logits) - onehot(target)), zero rows for ignored targets. */
  crossEntropyBackward(
    rows: number,
    V: number,
    logits: Float32Array,
    targets: Int32Array,
    ignoreIndex: number,
    lse: Float32Array,
    gradScale: number,
    dlogits: Float32Array,
  ): void;
  /** One AdamW step (decoupled weight decay, bias correction with `step` >= 1), updating p, m, v in place. */
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
  /** Σ x² in double precision. */
  sumSquares(x: Float32Array): number;
  /** x *= s in place. */
  scaleInPlace(x: Float32Array, s: number): void;
  /** y += alpha · x. */
  axpy(alpha: number, x: Float32Array, y: Float32Array): void;
  /** out = a + b, out = a · b (elementwise, equal lengths). */
  add(a: Float32Array, b: Float32Array, out: Float32Array): void;
  mul(a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** Index of the first NaN or ±Inf, or -1. */
  firstNonFinite(x: Float32Array): number;
  /**
   * Index of the largest element, as the scan best = 0; if (x[i] > x[best]) best = i: the first of equal
   * values (also -0 and +0), a NaN never wins unless at index 0; 0 when empty (greedy sampling).
   */
  argmax(x: Float32Array): number;
}
