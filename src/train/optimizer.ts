// AdamW (Loshchilov & Hutter), global-norm gradient clipping, and the warm-up + cosine schedule used by
// every training stage (4% linear warm-up, cosine decay, as in the REFRAG recipe).
import { kernels } from "../engine/kernels/index.js";
import type { Parameter } from "../nn/module.js";

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Parameters that get no weight decay (default: every 1-D tensor: norms and biases). */
  noDecay?: (name: string, p: Parameter) => boolean;
}

export class AdamW {
  readonly params: Map<string, Parameter>;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  step = 0;
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly decay = new Map<string, boolean>();

  constructor(params: Map<string, Parameter>, o: AdamWOptions) {
    this.params = params;
    this.lr = o.lr;
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.95;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.1;
    const noDecay = o.noDecay ?? ((_n: string, p: Parameter) => p.shape.length < 2);
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.size));
      this.v.set(name, new Float32Array(p.size));
      this.decay.set(name, !noDecay(name, p));
    }
  }

  /** One update of every parameter that has a gradient. */
  stepAll(lr = this.lr): void {
    this.step++;
    for (const [name, p] of this.params) {
      if (p.grad === null) continue;
      const wd = this.decay.get(name) ? this.weightDecay : 0;
      kernels.pointwise.adamw(
        p.data,
        p.grad,
        this.m.get(name)!,
        this.v.get(name)!,
        lr,
        this.beta1,
        this.beta2,
        this.eps,
        wd,
        this.step,
      );
      p.dropCopies(); // a stale bf16 or transposed copy would silently serve old weights
    }
  }

  zeroGrad(): void {
    for (const p of this.params.values()) p.zeroGrad();
  }
}

/** Scale gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Iterable<Parameter>, maxNorm: number): number {
  const list = [...params].filter((p) => p.grad !== null);
  let sq = 0;
  for (const p of list) sq += kernels.pointwise.sumSquares(p.grad!);
  const norm = Math.sqrt(sq);
  if (!Number.isFinite(norm)) return norm;
  if (norm > maxNorm) for (const p of list) kernels.pointwise.scaleInPlace(p.grad!, maxNorm / (norm + 1e-6));
  return norm;
}

/** Learning rate at `step` (0-based) of `total`: linear warm-up then cosine decay to minRatio · peak. */
export function cosineSchedule(
  step: number,
  total: number,
  peak: number,
  warmupFrac = 0.04,
  minRatio = 0.1,
): number {
  const warm = Math.max(1, Math.round(total * warmupFrac));
  if (step < warm) return (peak * (step + 1)) / warm;
  const progress = Math.min(1, (step - warm) / Math.max(1, total - warm));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
