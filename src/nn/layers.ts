// The basic layers. Weight shapes follow torch / Hugging Face: Linear.weight is [out, in].
import { gatherRows, layernorm, linear, rmsnorm } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import type { Tensor } from "../engine/tensor.js";
import { Module, Parameter } from "./module.js";

export function normalParam(rng: Rng, shape: number[], std: number): Parameter {
  let n = 1;
  for (const d of shape) n *= d;
  return new Parameter(rng.randn(n, std), shape);
}

export function constParam(shape: number[], value: number): Parameter {
  let n = 1;
  for (const d of shape) n *= d;
  return new Parameter(new Float32Array(n).fill(value), shape);
}

export class Linear extends Module {
  weight: Parameter; // [out, in]
  bias?: Parameter; // [out]

  constructor(
    inFeatures: number,
    outFeatures: number,
    rng: Rng,
    opts: { bias?: boolean; std?: number } = {},
  ) {
    super();
    this.weight = normalParam(rng, [outFeatures, inFeatures], opts.std ?? 0.02);
    if (opts.bias) this.bias = constParam([outFeatures], 0);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  weight: Parameter; // [num, dim]

  constructor(num: number, dim: number, rng: Rng, std = 0.02) {
    super();
    this.weight = normalParam(rng, [num, dim], std);
  }

  forward(ids: Int32Array): Tensor {
    return gatherRows(this.weight, ids);
  }
}

export class RMSNorm extends Module {
  weight: Parameter; // [dim]
  constructor(
    dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = constParam([dim], 1);
  }
  forward(x: Tensor): Tensor {
    return rmsnorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  weight: Parameter; // [dim]
  bias: Parameter; // [dim]
  constructor(
    dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = constParam([dim], 1);
    this.bias = constParam([dim], 0);
  }
  forward(x: Tensor): Tensor {
    return layernorm(x, this.weight, this.bias, this.eps);
  }
}
