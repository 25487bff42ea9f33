// Checkpoint folders in Hugging Face layout, atomic saves, and config.json validation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshRng } from "../helpers.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.js";
import { encodeSafetensors, type StTensor } from "../../src/io/safetensors.js";
import { writeFileAtomic } from "../../src/io/atomic.js";
import { f32ToBf16 } from "../../src/io/half.js";
import {
  parseConfig,
  parseLlamaConfig,
  parseRobertaConfig,
  parseRefragConfig,
  readConfigFile,
  type LlamaConfig,
} from "../../src/io/config.js";
import { HF_LLAMA_CONFIG, hfLlamaTensors } from "./tiny_llama.js";

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "refrag-ckpt-"));
}

function sameBytes(a: StTensor, b: StTensor, what: string): void {
  assert.equal(a.dtype, b.dtype, what);
  assert.deepEqual(a.shape, b.shape, what);
  assert.deepEqual(
    new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength),
    new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength),
    what,
  );
}

test("a Hugging Face layout folder (written by hand, as transformers would) loads", async () => {
  const { rng } = freshRng();
  const dir = await tmp();
  try {
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    const tensors = hfLlamaTensors(cfg, rng);
    await writeFile(join(dir, "config.json"), JSON.stringify(HF_LLAMA_CONFIG, null, 2));
    // transformers' save_pretrained stores {"format": "pt"} metadata; we write the bytes ourselves here.
    await writeFile(join(dir, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
    const ck = await loadCheckpoint(dir);
    assert.equal(ck.config.model_type, "llama");
    const c = ck.config as LlamaConfig;
    assert.equal(c.head_dim, 4);
    assert.equal(c.num_key_value_heads, 2);
    assert.equal(c.rms_norm_eps, 1e-5);
    assert.deepEqual(ck.rawConfig, HF_LLAMA_CONFIG);
    assert.deepEqual(ck.metadata, { format: "pt" });
    assert.equal(ck.tensors.size, 2 + 9 * 2 + 1);
    for (const [name, t] of tensors) sameBytes(ck.tensors.get(name)!, t, name);
    assert.equal(ck.tokenizerJson, null);
    assert.equal(ck.trainingState, null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a sharded folder (model.safetensors.index.json) loads", async () => {
  const { rng } = freshRng();
  const dir = await tmp();
  try {
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    const all = [...hfLlamaTensors(cfg, rng)];
    const shards = [new Map(all.slice(0, 10)), new Map(all.slice(10))];
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < 2; i++) {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      await writeFile(join(dir, name), encodeSafetensors(shards[i], { format: "pt" }));
      for (const k of shards[i].keys()) weightMap[k] = name;
    }
    await writeFile(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
    await writeFile(join(dir, "config.json"), JSON.stringify(HF_LLAMA_CONFIG));
    const ck = await loadCheckpoint(dir);
    assert.equal(ck.tensors.size, all.length);
    for (const [name, t] of all) sameBytes(ck.tensors.get(name)!, t, name);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("save/load round-trips bit-exactly with tokenizer, training state and optimizer", async () => {
  const { rng } = freshRng();
  const dir = await tmp();
  try {
    const cfg = parseLlamaConfig({ ...HF_LLAMA_CONFIG, tie_word_embeddings: true });
    const tensors = hfLlamaTensors(cfg, rng);
    tensors.set("model.norm.weight", { dtype: "BF16", shape: [16], data: f32ToBf16(rng.randn(16)) });
    const optimizer = new Map<string, StTensor>([
      ["exp_avg.model.norm.weight", { dtype: "F32", shape: [16], data: rng.randn(16) }],
    ]);
    const tokenizerJson = '{"version":"1.0","model":{"type":"BPE"}}\n';
    const ckDir = join(dir, "ckpt");
    await saveCheckpoint(ckDir, {
      config: cfg,
      tensors,
      tokenizerJson,
      trainingState: { step: 7, lr: 1e-3 },
      optimizer,
    });
    assert.deepEqual((await readdir(ckDir)).sort(), [
      "config.json",
      "model.safetensors",
      "optimizer.safetensors",
      "tokenizer.json",
      "training_state.json",
    ]);
    const ck = await loadCheckpoint(ckDir, { optimizer: true });
    assert.deepEqual(ck.config, cfg);
    for (const [name, t] of tensors) sameBytes(ck.tensors.get(name)!, t, name);
    assert.equal(ck.tokenizerJson, tokenizerJson);
    assert.deepEqual(ck.trainingState, { step: 7, lr: 1e-3 });
    sameBytes(
      ck.optimizer!.get("exp_avg.model.norm.weight")!,
      optimizer.get("exp_avg.model.norm.weight")!,
      "optimizer",
    );
    // Saving again over the same folder replaces it and leaves nothing else beside it.
    await saveCheckpoint(ckDir, { config: cfg, tensors });
    assert.deepEqual((await readdir(ckDir)).sort(), ["config.json", "model.safetensors"]);
    assert.deepEqual(await readdir(dir), ["ckpt"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a failed save leaves the previous checkpoint intact", async () => {
  const { rng } = freshRng();
  const dir = await tmp();
  try {
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    const ckDir = join(dir, "ckpt");
    await saveCheckpoint(ckDir, { config: cfg, tensors: hfLlamaTensors(cfg, rng) });
    const before = await readFile(join(ckDir, "model.safetensors"));
    const beforeCfg = await readFile(join(ckDir, "config.json"));
    // 1) a bad tensor midway through writing (config.json already written into the temp folder)
    const bad = hfLlamaTensors(cfg, rng);
    bad.set("model.norm.weight", { dtype: "F32", shape: [16], data: new Float32Array(15) });
    await assert.rejects(
      saveCheckpoint(ckDir, { config: cfg, tensors: bad }),
      /model\.norm\.weight.*16 elements but data has 15/,
    );
    // 2) a crash after all files are written, just before the swap
    await assert.rejects(
      saveCheckpoint(
        ckDir,
        { config: cfg, tensors: hfLlamaTensors(cfg, rng) },
        {
          beforeCommit: () => {
            throw new Error("simulated crash");
          },
        },
      ),
      /simulated crash/,
    );
    assert.deepEqual(await readFile(join(ckDir, "model.safetensors")), before);
    assert.deepEqual(await readFile(join(ckDir, "config.json")), beforeCfg);
    assert.deepEqual(await readdir(dir), ["ckpt"]);
    await loadCheckpoint(ckDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loading a missing or broken folder fails clearly", async () => {
  const dir = await tmp();
  try {
    await assert.rejects(loadCheckpoint(join(dir, "nope")), /folder not found/);
    await mkdir(join(dir, "a"));
    await assert.rejects(loadCheckpoint(join(dir, "a")), /config\.json/);
    await writeFile(join(dir, "a", "config.json"), JSON.stringify(HF_LLAMA_CONFIG));
    await assert.rejects(
      loadCheckpoint(join(dir, "a")),
      /neither model\.safetensors nor model\.safetensors\.index\.json/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("config validation: defaults as transformers, clear errors", async () => {
  const minimal = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
  };
  const c = parseLlamaConfig(minimal);
  assert.equal(c.num_key_value_heads, 4);
  assert.equal(c.head_dim, 16);
  assert.equal(c.rms_norm_eps, 1e-6);
  assert.equal(c.rope_theta, 10000);
  assert.equal(c.max_position_embeddings, 2048);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.bos_token_id, 1);
  assert.equal(c.eos_token_id, 2);
  assert.equal(c.pad_token_id, null);
  assert.deepEqual(parseLlamaConfig({ ...minimal, eos_token_id: [2, 7] }).eos_token_id, [2, 7]);
  assert.equal(parseLlamaConfig({ ...minimal, head_dim: 32 }).head_dim, 32);

  const { intermediate_size: _drop, ...noInter } = minimal;
  void _drop;
  assert.throws(
    () => parseLlamaConfig(noInter, "x/config.json"),
    /config x\/config\.json: missing required field "intermediate_size"/,
  );
  assert.throws(
    () => parseLlamaConfig({ ...minimal, hidden_size: 66 }),
    /hidden_size 66 is not divisible by num_attention_heads 4/,
  );
  assert.throws(
    () => parseLlamaConfig({ ...minimal, num_key_value_heads: 3 }),
    /num_attention_heads 4 is not divisible by num_key_value_heads 3/,
  );
  assert.throws(() => parseLlamaConfig({ ...minimal, vocab_size: "100" }), /"vocab_size" must be an integer/);
  assert.throws(() => parseLlamaConfig({ ...minimal, rms_norm_eps: 0 }), /"rms_norm_eps" must be > 0/);
  assert.throws(
    () => parseLlamaConfig({ ...minimal, model_type: "mistral" }),
    /model_type "mistral" is not "llama"/,
  );
  assert.throws(() => parseLlamaConfig([1]), /not a JSON object/);
  assert.throws(() => parseConfig({ model_type: "gpt9" }), /unknown model_type "gpt9"/);

  const roberta = {
    model_type: "roberta",
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: 64,
    vocab_size: 90,
    max_position_embeddings: 66,
    layer_norm_eps: 1e-5,
  };
  const r = parseRobertaConfig(roberta);
  assert.equal(r.hidden_act, "gelu");
  assert.equal(r.pad_token_id, 1);
  assert.equal(r.type_vocab_size, 2);
  assert.equal(parseRobertaConfig({ ...roberta, model_type: "bert" }).pad_token_id, 0);
  assert.throws(
    () => parseRobertaConfig({ ...roberta, num_attention_heads: 5 }),
    /hidden_size 32 is not divisible by num_attention_heads 5/,
  );
  assert.throws(
    () => parseRobertaConfig({ ...roberta, hidden_act: "swish" }),
    /hidden_act "swish" is not supported/,
  );

  const refrag = {
    model_type: "refrag",
    chunk_size: 16,
    encoder: roberta,
    decoder: minimal,
    projector: { model_type: "refrag_projector", input_size: 32, hidden_size: 64, output_size: 64 },
    policy: { model_type: "refrag_policy", input_size: 64, hidden_size: 32, num_attention_heads: 2 },
  };
  const rc = parseRefragConfig(refrag);
  assert.equal(rc.policy!.num_hidden_layers, 2);
  assert.equal(rc.decoder.head_dim, 16);
  assert.throws(
    () => parseRefragConfig({ ...refrag, projector: { ...refrag.projector, input_size: 31 } }),
    /projector\.input_size 31 != encoder\.hidden_size 32/,
  );
  assert.throws(
    () => parseRefragConfig({ ...refrag, decoder: { ...minimal, vocab_size: -1 } }),
    /\[decoder\]: "vocab_size" must be >= 1/,
  );

  const dir = await tmp();
  try {
    await writeFile(join(dir, "config.json"), "{ oops");
    await assert.rejects(readConfigFile(join(dir, "config.json")), /config .*config\.json: not valid JSON/);
    await writeFile(join(dir, "config.json"), JSON.stringify(roberta));
    const loaded = await readConfigFile(join(dir, "config.json"));
    assert.deepEqual(loaded.raw, roberta);
    assert.equal(loaded.config.model_type, "roberta");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("saving over a folder keeps the user's files (a training log) but not stale checkpoint files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "refrag-ckpt-keep-"));
  try {
    const ck = join(dir, "run");
    const tensors = hfLlamaTensors(parseLlamaConfig(HF_LLAMA_CONFIG), freshRng().rng);
    await saveCheckpoint(ck, { config: HF_LLAMA_CONFIG, tensors, optimizer: tensors });
    await writeFile(join(ck, "train.log"), "step 1\n");
    await saveCheckpoint(ck, { config: HF_LLAMA_CONFIG, tensors });
    const names = (await readdir(ck)).sort();
    assert.ok(names.includes("train.log"), `train.log kept: ${names}`);
    assert.equal(await readFile(join(ck, "train.log"), "utf8"), "step 1\n");
    assert.ok(
      !names.includes("optimizer.safetensors"),
      "a stale optimizer file from the previous save is dropped",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("saving through a symbolic link writes into its target and keeps the link", async () => {
  const dir = await mkdtemp(join(tmpdir(), "refrag-ckpt-link-"));
  try {
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    const { rng } = freshRng();
    const [first, second] = [hfLlamaTensors(cfg, rng), hfLlamaTensors(cfg, rng)];
    const real = join(dir, "real");
    const link = join(dir, "link");
    await saveCheckpoint(real, { config: HF_LLAMA_CONFIG, tensors: first });
    await symlink(real, link);
    await saveCheckpoint(link, { config: HF_LLAMA_CONFIG, tensors: second });
    assert.ok((await lstat(link)).isSymbolicLink(), "the link is still a link");
    const saved = await loadCheckpoint(real);
    for (const [name, t] of second) sameBytes(saved.tensors.get(name)!, t, `${name} in the link's target`);
    assert.deepEqual((await readdir(dir)).sort(), ["link", "real"], "nothing left beside them");
    // A link to nothing is refused before anything is written.
    await symlink(join(dir, "gone"), join(dir, "dangling"));
    await assert.rejects(
      () => saveCheckpoint(join(dir, "dangling"), { config: HF_LLAMA_CONFIG, tensors: first }),
      /symbolic link to something missing/,
    );
    // Files too: an atomic write through a link replaces the target's content, not the link.
    await writeFile(join(dir, "notes.txt"), "old\n");
    await symlink(join(dir, "notes.txt"), join(dir, "notes-link"));
    await writeFileAtomic(join(dir, "notes-link"), "notes", (fh) =>
      fh.writeFile("new\n").then(() => undefined),
    );
    assert.ok((await lstat(join(dir, "notes-link"))).isSymbolicLink());
    assert.equal(await readFile(join(dir, "notes.txt"), "utf8"), "new\n");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
