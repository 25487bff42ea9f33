// REFRAG projector: a 2-layer MLP mapping encoder chunk vectors into the decoder's token-embedding space
// (encoder width → decoder width → decoder width). Field names follow LLaVA's multi-modal projector.
import { gelu, silu } from "../engine/ops.js";
import { Rng } from "../engine/random.js";
import type { Tensor } from "../engine/tensor.js";
import { Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import type { RefragProjectorConfig } from "../io/config.js";

export type ProjectorConfig = RefragProjectorConfig;

export function projectorConfig(
  encoderWidth: number,
  decoderWidth: number,
  act: "gelu" | "silu" = "gelu",
): ProjectorConfig {
  return {
    model_type: "refrag_projector",
    input_size: encoderWidth,
    hidden_size: decoderWidth,
    output_size: decoderWidth,
    hidden_act: act,
  };
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
      if (!Number.isInteger(config[k]) || config[k] < 1)
        throw new Error(`ProjectorConfig: ${k} must be a positive integer, got ${config[k]}`);
    if (config.hidden_act !== "gelu" && config.hidden_act !== "silu")
      throw new Error(`ProjectorConfig: hidden_act "${config.hidden_act}" unsupported (gelu or silu)`);
    const std = 0.02;
    this.linear_1 = new Linear(config.input_size, config.hidden_size, rng, { bias: true, std });
    this.linear_2 = new Linear(config.hidden_size, config.output_size, rng, { bias: true, std });
  }

  /** [L, input] → [L, output]. */
  forward(x: Tensor): Tensor {
    const h = this.linear_1.forward(x);
    return this.linear_2.forward(this.config.hidden_act === "gelu" ? gelu(h) : silu(h));
  }
}
