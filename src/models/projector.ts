// REFRAG projector: a 2-layer MLP mapping encoder chunk vectors into the decoder's token-embedding space
// (encoder width → decoder width → decoder width). Field names follow LLaVA's multi-modal projector.
import { gelu, silu } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import type { Tensor } from "../engine/tensor.js";
import { Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";

export interface ProjectorConfig {
  model_type: "refrag_projector";
  input_size: number; // encoder hidden size
  hidden_size: number; // decoder hidden size
  output_size: number; // decoder hidden size
  hidden_act: "gelu" | "silu";
  initializer_range?: number;
}

export function projectorConfig(encoderWidth: number, decoderWidth: number, act: "gelu" | "silu" = "gelu"): ProjectorConfig {
  return { model_type: "refrag_projector", input_size: encoderWidth, hidden_size: decoderWidth, output_size: decoderWidth, hidden_act: act, initializer_range: 0.02 };
}

export class RefragProjector extends Module {
  linear_1: Linear; // [hidden, input]
  linear_2: Linear; // [output, hidden]

  constructor(
    readonly config: ProjectorConfig,
    rng: Rng,
  ) {
    super();
    for (const k of ["input_size", "hidden_size", "output_size"] as const)
      if (!Number.isInteger(config[k]) || config[k] < 1) throw new Error(`ProjectorConfig: ${k} must be a positive integer, got ${config[k]}`);
    const std = config.initializer_range ?? 0.02;
    this.linear_1 = new Linear(config.input_size, config.hidden_size, rng, { bias: true, std });
    this.linear_2 = new Linear(config.hidden_size, config.output_size, rng, { bias: true, std });
  }

  /** [L, input] → [L, output]. */
  forward(x: Tensor): Tensor {
    const h = this.linear_1.forward(x);
    return this.linear_2.forward(this.config.hidden_act === "gelu" ? gelu(h) : silu(h));
  }
}
