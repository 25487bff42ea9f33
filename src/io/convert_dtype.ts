// Re-save a checkpoint folder with its floating-point weights in another dtype (bf16 halves a shipped
// model's size; f32 is what training resumes from). Config and tokenizer.json are kept as written; the
// training state and optimizer moments are left out: the result is a model, not a run to resume.
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./half.js";
import type { StTensor, TensorMap } from "./safetensors.js";

export type FloatType = "f32" | "f16" | "bf16";

function toF32(t: StTensor): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  if (t.dtype === "BF16") return bf16ToF32(t.data as Uint16Array);
  if (t.dtype === "F16") return f16ToF32(t.data as Uint16Array);
  throw new Error(`convert: cannot convert a ${t.dtype} tensor`);
}

/** Convert every F32/F16/BF16 tensor of `src` to `type`, writing the checkpoint folder `out`. */
export async function convertCheckpointDtype(src: string, out: string, type: FloatType): Promise<number> {
  const ck = await loadCheckpoint(src);
  const tensors: TensorMap = new Map();
  for (const [name, t] of ck.tensors) {
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") {
      tensors.set(name, t);
      continue;
    }
    const f = toF32(t);
    const shape = [...t.shape];
    if (type === "f32") tensors.set(name, { dtype: "F32", shape, data: f });
    else if (type === "bf16") tensors.set(name, { dtype: "BF16", shape, data: f32ToBf16(f) });
    else tensors.set(name, { dtype: "F16", shape, data: f32ToF16(f) });
  }
  await saveCheckpoint(out, {
    config: ck.rawConfig,
    tensors,
    metadata: ck.metadata,
    tokenizerJson: ck.tokenizerJson ?? undefined,
  });
  return tensors.size;
}
