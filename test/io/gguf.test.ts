// GGUF: write -> read round trip, and the LLaMA export (names, Q/K permutation, types, tokenizer metadata).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { freshRng } from "../helpers.js";
import {
  decodeGguf,
  encodeGgufHeader,
  readGguf,
  writeGguf,
  type GgufTensor,
  type GgufValue,
} from "../../src/io/gguf.js";
import {
  bytesToUnicode,
  exportLlamaGguf,
  llamaToGguf,
  permuteQK,
  TOKEN_TYPE,
} from "../../src/io/gguf_llama.js";
import { exportCheckpointToGguf } from "../../src/io/gguf_llama.js";
import { saveCheckpoint } from "../../src/io/checkpoint.js";
import { parseLlamaConfig } from "../../src/io/config.js";
import { bf16ToF32, f32ToBf16, f32ToF16 } from "../../src/io/half.js";
import { HF_LLAMA_CONFIG, hfLlamaTensors, tinyTokenizerJson, TINY_TOKENIZER_SIZE } from "./tiny_llama.js";

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "refrag-gguf-"));
}

test("write -> read round trip of every metadata type and tensor type", async () => {
  const { rng, seed } = freshRng();
  const md = new Map<string, GgufValue>([
    ["general.architecture", { type: "string", value: "llama" }],
    ["u8", { type: "u8", value: 255 }],
    ["i8", { type: "i8", value: -128 }],
    ["u16", { type: "u16", value: 65535 }],
    ["i16", { type: "i16", value: -3 }],
    ["u32", { type: "u32", value: 4000000000 }],
    ["i32", { type: "i32", value: -2000000000 }],
    ["f32", { type: "f32", value: 1e-5 }],
    ["f64", { type: "f64", value: Math.E }],
    ["bool", { type: "bool", value: true }],
    ["u64", { type: "u64", value: 2n ** 63n + 5n }],
    ["i64", { type: "i64", value: -(2n ** 40n) }],
    ["unicode", { type: "string", value: "héllo ✓ Ġ" }],
    ["strs", { type: "array", itemType: "string", value: ["a", "", "Ċ"] }],
    ["ints", { type: "array", itemType: "i32", value: [1, -2, 3] }],
    ["empty", { type: "array", itemType: "string", value: [] }],
  ]);
  const tensors: GgufTensor[] = [
    { name: "a", type: "F32", shape: [7, 33], data: rng.randn(7 * 33) },
    { name: "b", type: "F16", shape: [5], data: f32ToF16(rng.randn(5)) },
    { name: "c", type: "BF16", shape: [2, 3, 1], data: f32ToBf16(rng.randn(6)) },
    { name: "d", type: "F32", shape: [1], data: new Float32Array([3]) },
  ];
  const dir = await tmp();
  try {
    const path = join(dir, "x.gguf");
    await writeGguf(path, md, tensors);
    const bytes = new Uint8Array(await readFile(path));
    assert.equal(bytes.byteLength % 32, 0);
    const { header, offsets } = encodeGgufHeader(md, tensors);
    assert.equal(header.byteLength % 32, 0);
    assert.ok(offsets.every((o) => o % 32 === 0));
    const g = await readGguf(path);
    assert.equal(g.version, 3);
    md.set("f32", { type: "f32", value: Math.fround(1e-5) });
    assert.deepEqual(g.metadata, md);
    assert.equal(g.tensors.length, tensors.length);
    for (let i = 0; i < tensors.length; i++) {
      assert.equal(g.tensors[i].name, tensors[i].name);
      assert.equal(g.tensors[i].type, tensors[i].type);
      assert.deepEqual(g.tensors[i].shape, tensors[i].shape);
      assert.deepEqual(g.tensors[i].data, tensors[i].data, `tensor ${tensors[i].name} (seed ${seed})`);
    }
    assert.throws(() => decodeGguf(bytes.subarray(0, 40), "cut.gguf"), /gguf cut\.gguf: truncated/);
    const bad = bytes.slice();
    bad[0] = 0;
    assert.throws(() => decodeGguf(bad, "bad.gguf"), /bad magic/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("writer rejects bad tensors and metadata with clear errors", () => {
  const md = new Map<string, GgufValue>();
  assert.throws(
    () => encodeGgufHeader(md, [{ name: "t", type: "F16", shape: [2], data: new Float32Array(2) }]),
    /tensor "t": type F16 needs a Uint16Array/,
  );
  assert.throws(
    () => encodeGgufHeader(md, [{ name: "t", type: "F32", shape: [2, 2], data: new Float32Array(3) }]),
    /has 4 elements but data has 3/,
  );
  assert.throws(
    () => encodeGgufHeader(new Map([["k", { type: "u8", value: 300 }]]), []),
    /"k": 300 is not a valid u8/,
  );
});

test("permuteQK matches convert_hf_to_gguf's reshape(n_head, 2, d/2, cols).swapaxes(1, 2)", () => {
  const nHead = 3;
  const hd = 6;
  const cols = 2;
  const w = new Float32Array(nHead * hd * cols).map((_, i) => i);
  const p = permuteQK(w, nHead * hd, cols, nHead);
  // numpy: out[h, i, j, c] = w[h, j, i, c] with shapes (nHead, d/2, 2, cols) / (nHead, 2, d/2, cols)
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let j = 0; j < 2; j++)
        for (let c = 0; c < cols; c++)
          assert.equal(p[(h * hd + i * 2 + j) * cols + c], w[(h * hd + j * (hd / 2) + i) * cols + c]);
  assert.throws(() => permuteQK(w, nHead * hd, cols, 4), /cannot permute/);
});

test("LLaMA export: llama.cpp names, permuted q/k, f32 norms, hyperparameters and tokenizer", async () => {
  const { rng } = freshRng();
  const cfg = parseLlamaConfig({
    ...HF_LLAMA_CONFIG,
    vocab_size: TINY_TOKENIZER_SIZE + 5,
    bos_token_id: 0,
    eos_token_id: 1,
    pad_token_id: 2,
  });
  const tensors = hfLlamaTensors(cfg, rng);
  const tokenizerJson = tinyTokenizerJson(bytesToUnicode());
  // The generated tokenizer.json is a valid Hugging Face tokenizer.
  const tok = new Tokenizer(JSON.parse(tokenizerJson) as object, {});
  assert.deepEqual(tok.tokenize("Hello the world"), ["Hello", "Ġthe", "Ġworld"]);

  const dir = await tmp();
  try {
    const ckDir = join(dir, "ckpt");
    await saveCheckpoint(ckDir, { config: cfg, tensors, tokenizerJson });
    const out = join(dir, "m.gguf");
    await exportCheckpointToGguf(ckDir, out, { weightType: "bf16", name: "tiny" });
    const g = await readGguf(out);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    const names = [...byName.keys()];
    assert.equal(names.length, 2 + 9 * cfg.num_hidden_layers + 1);
    for (const n of [
      "token_embd.weight",
      "output_norm.weight",
      "output.weight",
      "blk.1.attn_q.weight",
      "blk.1.attn_k.weight",
      "blk.1.attn_v.weight",
      "blk.1.attn_output.weight",
      "blk.1.ffn_gate.weight",
      "blk.1.ffn_up.weight",
      "blk.1.ffn_down.weight",
      "blk.1.attn_norm.weight",
      "blk.1.ffn_norm.weight",
    ]) {
      assert.ok(byName.has(n), n);
    }
    assert.equal(byName.get("blk.0.attn_norm.weight")!.type, "F32");
    assert.deepEqual(
      byName.get("blk.0.attn_norm.weight")!.data,
      tensors.get("model.layers.0.input_layernorm.weight")!.data,
    );
    const k = byName.get("blk.0.attn_k.weight")!;
    assert.equal(k.type, "BF16");
    assert.deepEqual(k.shape, [cfg.num_key_value_heads * cfg.head_dim, cfg.hidden_size]);
    const hfK = tensors.get("model.layers.0.self_attn.k_proj.weight")!.data as Float32Array;
    const want = permuteQK(f32ToBf16(hfK), k.shape[0], k.shape[1], cfg.num_key_value_heads);
    assert.deepEqual(k.data, want);
    // v is not permuted.
    assert.deepEqual(
      bf16ToF32(byName.get("blk.0.attn_v.weight")!.data as Uint16Array),
      bf16ToF32(f32ToBf16(tensors.get("model.layers.0.self_attn.v_proj.weight")!.data as Float32Array)),
    );

    const md = (key: string): unknown => g.metadata.get(key)?.value;
    assert.equal(md("general.architecture"), "llama");
    assert.equal(md("general.name"), "tiny");
    assert.equal(md("general.file_type"), 32);
    assert.equal(md("llama.embedding_length"), 16);
    assert.equal(md("llama.block_count"), 2);
    assert.equal(md("llama.feed_forward_length"), 40);
    assert.equal(md("llama.attention.head_count"), 4);
    assert.equal(md("llama.attention.head_count_kv"), 2);
    assert.equal(md("llama.rope.dimension_count"), 4);
    assert.equal(md("llama.context_length"), 128);
    assert.equal(md("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
    assert.equal(md("llama.rope.freq_base"), 10000);
    assert.equal(md("tokenizer.ggml.model"), "gpt2");
    assert.equal(md("tokenizer.ggml.pre"), "gpt-2");
    const tokens = md("tokenizer.ggml.tokens") as string[];
    const types = md("tokenizer.ggml.token_type") as number[];
    assert.equal(tokens.length, cfg.vocab_size);
    assert.deepEqual(tokens.slice(0, 4), ["<s>", "</s>", "<pad>", "Ā"]);
    assert.deepEqual(types.slice(0, 4), [
      TOKEN_TYPE.control,
      TOKEN_TYPE.control,
      TOKEN_TYPE.control,
      TOKEN_TYPE.normal,
    ]);
    assert.equal(tokens[cfg.vocab_size - 1], `[PAD${cfg.vocab_size - 1}]`);
    assert.equal(types[cfg.vocab_size - 1], TOKEN_TYPE.unused);
    assert.equal((md("tokenizer.ggml.merges") as string[])[0], "h e");
    assert.equal(md("tokenizer.ggml.bos_token_id"), 0);
    assert.equal(md("tokenizer.ggml.eos_token_id"), 1);
    assert.equal(md("tokenizer.ggml.padding_token_id"), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("LLaMA export: tied embeddings drop output.weight; bad inputs fail clearly", async () => {
  const { rng } = freshRng();
  const cfg = parseLlamaConfig({ ...HF_LLAMA_CONFIG, tie_word_embeddings: true });
  const tensors = hfLlamaTensors(cfg, rng);
  const { tensors: gt, metadata } = llamaToGguf({ config: cfg, tensors, weightType: "f16" });
  assert.ok(!gt.some((t) => t.name === "output.weight"));
  assert.equal(gt.find((t) => t.name === "token_embd.weight")!.type, "F16");
  // No tokenizer: a placeholder byte vocabulary padded to vocab_size.
  assert.equal((metadata.get("tokenizer.ggml.tokens")!.value as string[]).length, cfg.vocab_size);

  const missing = new Map(tensors);
  missing.delete("model.layers.1.mlp.up_proj.weight");
  assert.throws(
    () => llamaToGguf({ config: cfg, tensors: missing }),
    /missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
  );
  const extra = new Map(tensors);
  extra.set("model.layers.0.self_attn.q_proj.bias", {
    dtype: "F32",
    shape: [16],
    data: new Float32Array(16),
  });
  assert.throws(
    () => llamaToGguf({ config: cfg, tensors: extra }),
    /"model\.layers\.0\.self_attn\.q_proj\.bias" has no llama\.cpp counterpart/,
  );
  const wrong = new Map(tensors);
  wrong.set("model.norm.weight", { dtype: "F32", shape: [15], data: new Float32Array(15) });
  assert.throws(
    () => llamaToGguf({ config: cfg, tensors: wrong }),
    /"model\.norm\.weight" has shape \[15\], config expects \[16\]/,
  );

  const dir = await tmp();
  try {
    const tokenizerJson = tinyTokenizerJson(bytesToUnicode());
    await assert.rejects(
      exportLlamaGguf(join(dir, "t.gguf"), { config: cfg, tensors, tokenizerJson }),
      /token ".*" has id \d+ outside the model's vocab_size 50/,
    );
    const big = parseLlamaConfig({
      ...HF_LLAMA_CONFIG,
      tie_word_embeddings: true,
      vocab_size: TINY_TOKENIZER_SIZE,
    });
    await exportLlamaGguf(join(dir, "t.gguf"), {
      config: big,
      tensors: hfLlamaTensors(big, rng),
      tokenizerJson,
    });
    const g = decodeGguf(new Uint8Array(await readFile(join(dir, "t.gguf"))));
    assert.equal(g.metadata.get("general.file_type")!.value, 0);
    assert.ok(g.tensors.every((t) => t.type === "F32"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
