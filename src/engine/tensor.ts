// Tensor: f32 storage with a shape, an optional gradient, and the tape entry that made it.
//
// The autograd tape is define-by-run: an op that sees a parent requiring grad records a closure that
// turns the output's gradient into its parents' gradients (accumulating with +=). `backward()` walks the
// recorded graph in reverse topological order. Inside `noGrad(...)` nothing is recorded.

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

let gradEnabled = true;

/** Run fn without recording the tape (inference, optimizer steps, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

interface TapeEntry {
  op: string;
  parents: Tensor[];
  /** Reads this tensor's grad and accumulates into the parents' grads. */
  backward: () => void;
}

export class Tensor {
  readonly shape: number[];
  data: Float32Array;
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  /** bf16 copy of the data (raw bits) used by matmuls at inference when present. */
  bf16: Uint16Array | null = null;
  /**
   * A 2-D weight [N, K] stored transposed, [K, N] (bf16 bits when bf16 is set), for the decode step's
   * K-major products (src/models/llama_decode.ts builds it on first use). Dropped with bf16.
   */
  kmajor: Float32Array | Uint16Array | null = null;
  /** kmajor in the panel layout (gemvPanels), for the decode step's many-row LM head. Dropped with bf16. */
  panels: Float32Array | Uint16Array | null = null;
  tape: TapeEntry | null = null;

  /** The data changed in place: the copies derived from it (bf16, kmajor, panels) would serve old values. */
  dropCopies(): void {
    this.bf16 = null;
    this.kmajor = null;
    this.panels = null;
  }

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    const n = numel(shape);
    if (data.length !== n)
      throw new Error(`Tensor: data has ${data.length} elements but shape ${shapeStr(shape)} needs ${n}`);
    for (const d of shape)
      if (!Number.isInteger(d) || d < 0) throw new Error(`Tensor: bad shape ${shapeStr(shape)}`);
    this.data = data;
    this.shape = [...shape];
    this.requiresGrad = requiresGrad;
  }

  static zeros(shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(numel(shape)), shape, requiresGrad);
  }

  static from(values: ArrayLike<number>, shape?: Shape): Tensor {
    return new Tensor(Float32Array.from(values), shape ?? [values.length]);
  }

  get size(): number {
    return this.data.length;
  }

  /** Size of the last dimension (row width for row-wise ops). */
  get cols(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1];
  }

  /** Number of rows when viewed as [rows, cols]. */
  get rows(): number {
    const c = this.cols;
    return c === 0 ? 0 : this.data.length / c;
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  gradBuffer(): Float32Array {
    if (this.grad === null) this.grad = new Float32Array(this.data.length);
    return this.grad;
  }

  zeroGrad(): void {
    if (this.grad !== null) this.grad.fill(0);
  }

  /** The scalar value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1)
      throw new Error(`item: tensor has shape ${shapeStr(this.shape)}, not one element`);
    return this.data[0];
  }

  toString(): string {
    return `Tensor${shapeStr(this.shape)}${this.tape ? ` (${this.tape.op})` : ""}`;
  }

  /**
   * Backpropagate from this tensor. A scalar gets seed gradient 1; otherwise pass `seed` (same size).
   * Gradients accumulate into `.grad` of every tensor that requires grad.
   */
  backward(seed?: Float32Array): void {
    if (seed === undefined && this.data.length !== 1)
      throw new Error(`backward: tensor ${shapeStr(this.shape)} is not a scalar; pass a seed gradient`);
    if (seed !== undefined && seed.length !== this.data.length)
      throw new Error(`backward: seed has ${seed.length} elements, tensor has ${this.data.length}`);
    const order = topoOrder(this);
    const g = this.gradBuffer();
    if (seed === undefined) g[0] += 1;
    else for (let i = 0; i < g.length; i++) g[i] += seed[i];
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      if (t.tape !== null && t.grad !== null) t.tape.backward();
    }
    // Free the graph: intermediate tensors and their closures become garbage.
    for (const t of order) if (t.tape !== null) t.tape = null;
  }
}

/** Tensors reachable from root through the tape, parents before children. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep stacks (many layers × many ops) must not overflow the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const parents = t.tape?.parents ?? [];
    if (i < parents.length) {
      top[1]++;
      const p = parents[i];
      if (!seen.has(p) && (p.tape !== null || p.requiresGrad)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

/**
 * Make an op's output tensor and record its backward when any parent needs a gradient.
 * `backward(grad)` receives the output's gradient and must accumulate into parents that need it.
 */
export function record(
  op: string,
  out: Tensor,
  parents: Tensor[],
  backward: (grad: Float32Array) => void,
): Tensor {
  if (!gradEnabled) return out;
  if (!parents.some((p) => p.requiresGrad || p.tape !== null)) return out;
  out.requiresGrad = true;
  out.tape = { op, parents, backward: () => backward(out.grad as Float32Array) };
  return out;
}

/** Does this tensor need a gradient (a leaf parameter or the output of a recorded op)? */
export function needsGrad(t: Tensor): boolean {
  return t.requiresGrad || t.tape !== null;
}
