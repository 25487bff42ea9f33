// convert dtype: weights re-saved as bf16 round exactly as f32ToBf16 does, back to f32 loses nothing more,
// config and tokenizer are kept, the training state and optimizer are not.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Rng } from "../../src/engine/random.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.js";
import { convertCheckpointDtype } from "../../src/io/convert_dtype.js";
import { bf16ToF32, f32ToBf16 } from "../../src/io/half.js";

test("convert dtype: bf16 rounding, back to f32, config and tokenizer kept, no optimizer", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-convert-"));
  try {
    const rng = new Rng(5);
    const w = Float32Array.from({ length: 48 }, () => rng.normal());
    await saveCheckpoint(join(dir, "src"), {
      config: {
        model_type: "llama",
        vocab_size: 6,
        hidden_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 16,
      },
      tensors: new Map([["model.w", { dtype: "F32", shape: [6, 8], data: w }]]),
      tokenizerJson: '{"x": 1}',
      trainingState: { step: 3 },
      optimizer: new Map([["m.model.w", { dtype: "F32", shape: [48], data: new Float32Array(48) }]]),
    });
    await convertCheckpointDtype(join(dir, "src"), join(dir, "bf16"), "bf16");
    const b = await loadCheckpoint(join(dir, "bf16"));
    const t = b.tensors.get("model.w")!;
    assert.equal(t.dtype, "BF16");
    assert.deepEqual([...t.shape], [6, 8]);
    assert.deepEqual(t.data, f32ToBf16(w));
    assert.equal(readFileSync(join(dir, "bf16", "tokenizer.json"), "utf8"), '{"x": 1}');
    assert.equal(b.rawConfig.hidden_size, 8);
    assert.ok(!existsSync(join(dir, "bf16", "optimizer.safetensors")));
    assert.ok(!existsSync(join(dir, "bf16", "training_state.json")));
    await convertCheckpointDtype(join(dir, "bf16"), join(dir, "f32"), "f32");
    const f = (await loadCheckpoint(join(dir, "f32"))).tensors.get("model.w")!;
    assert.equal(f.dtype, "F32");
    assert.deepEqual(f.data, bf16ToF32(f32ToBf16(w)));
    assert.notDeepEqual(f.data, w, "bf16 rounding changed some weights");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
