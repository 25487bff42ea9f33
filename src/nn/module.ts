// Module: a tree of named parameters. Field names are the Hugging Face names, so walking the fields gives
// the state-dict keys directly (model.layers.0.self_attn.q_proj.weight) with no rename table.
import { kernels } from "../engine/kernels/index.js";
import { Tensor } from "../engine/tensor.js";

export class Parameter extends Tensor {
  constructor(data: Float32Array, shape: readonly number[]) {
    super(data, shape, true);
  }
}

export abstract class Module {
  /** Parameters keyed by their dotted Hugging Face name, in field order. */
  namedParameters(prefix = ""): Map<string, Parameter> {
    const out = new Map<string, Parameter>();
    for (const [key, value] of Object.entries(this)) {
      const name = prefix === "" ? key : `${prefix}.${key}`;
      if (value instanceof Parameter) out.set(name, value);
      else if (value instanceof Module) for (const [n, p] of value.namedParameters(name)) out.set(n, p);
      else if (Array.isArray(value))
        value.forEach((item, i) => {
          if (item instanceof Module)
            for (const [n, p] of item.namedParameters(`${name}.${i}`)) out.set(n, p);
        });
    }
    return out;
  }

  parameters(): Parameter[] {
    return [...this.namedParameters().values()];
  }

  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.size;
    return n;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Copy tensors in by name; every parameter must be present with the right size unless `strict` is false. */
  loadStateDict(tensors: Map<string, Float32Array>, strict = true): void {
    const params = this.namedParameters();
    for (const [name, p] of params) {
      const t = tensors.get(name);
      if (t === undefined) {
        if (strict) throw new Error(`loadStateDict: missing tensor ${name} (shape [${p.shape.join(", ")}])`);
        continue;
      }
      if (t.length !== p.size)
        throw new Error(
          `loadStateDict: ${name} has ${t.length} values, parameter [${p.shape.join(", ")}] needs ${p.size}`,
        );
      p.data.set(t);
      p.dropCopies();
    }
    if (strict)
      for (const name of tensors.keys())
        if (!params.has(name)) throw new Error(`loadStateDict: unexpected tensor ${name}`);
  }

  /**
   * Keep a bf16 copy of every matrix (2-D parameter) for inference: matmuls then read half the bytes,
   * which is what decode (memory-bound) needs. Training keeps using the f32 weights. `false` drops the copies.
   */
  useBf16Weights(on = true): void {
    for (const p of this.parameters()) {
      p.dropCopies();
      if (!on || p.shape.length !== 2) continue;
      p.bf16 = new Uint16Array(p.size);
      kernels.gemm.f32ToBf16(p.data, p.bf16);
    }
  }

  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }
}
