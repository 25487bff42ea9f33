// Commands never replace or move what they did not create, and read-only commands write nothing:
// convert gguf onto a folder or an existing file, retrieve --index on any folder, train --out onto a file,
// generate with a negative seed; the GGUF reader names the file and the field of a bad string.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { saveCheckpoint } from "../../src/io/checkpoint.js";
import { parseLlamaConfig } from "../../src/io/config.js";
import { decodeGguf, encodeGgufHeader, writeGguf, type GgufValue } from "../../src/io/gguf.js";
import { LlamaForCausalLM } from "../../src/models/llama.js";
import { PassageIndex } from "../../src/retrieval/index.js";
import { trainLoop } from "../../src/train/loop.js";
import { HF_LLAMA_CONFIG, hfLlamaTensors } from "../io/tiny_llama.js";

const main = new URL("../../src/cli/main.js", import.meta.url).pathname;

function refrag(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], {
    encoding: "utf8",
    env: { ...process.env, REFRAG_THREADS: "1" },
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refrag-cli-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("convert gguf refuses a folder and an existing file, and leaves no temp file", async () => {
  await withDir(async (dir) => {
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    await saveCheckpoint(join(dir, "ck"), { config: cfg, tensors: hfLlamaTensors(cfg, new Rng(1)) });
    const folder = join(dir, "out");
    mkdirSync(folder);
    writeFileSync(join(folder, "keep.txt"), "mine");
    let r = refrag(["convert", "gguf", join(dir, "ck"), folder]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /convert gguf: .*out is a folder; give a file path/);
    // The writer itself refuses too (for library callers), before writing a temp file.
    await assert.rejects(writeGguf(folder, new Map(), []), /gguf .*out: is a folder; refusing to replace it/);
    const file = join(dir, "model.gguf");
    writeFileSync(file, "not mine to replace");
    r = refrag(["convert", "gguf", join(dir, "ck"), file]);
    assert.match(r.stderr, /convert gguf: .*model\.gguf exists \(pass --force to replace it\)/);
    assert.equal(readFileSync(file, "utf8"), "not mine to replace");
    assert.deepEqual(readdirSync(folder), ["keep.txt"]);
    assert.deepEqual(readdirSync(dir).sort(), ["ck", "model.gguf", "out"], "no temp file left beside them");
    r = refrag(["convert", "gguf", join(dir, "ck"), file, "--force"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      decodeGguf(readFileSync(file)).tensors.length,
      3 + 9 * 2,
      "embeddings, norm, head and 9 per layer",
    );
  });
});

test("retrieve --index on a folder that is not an index writes nothing into it", async () => {
  await withDir(async (dir) => {
    writeFileSync(join(dir, "notes.txt"), "x");
    await assert.rejects(PassageIndex.open(dir), /is not a passage index \(no "passages" table/);
    const r = refrag(["retrieve", "--index", dir, "what"]);
    assert.equal(r.status, 1);
    assert.deepEqual(readdirSync(dir), ["notes.txt"]);
  });
});

test("train --out onto a file fails at once and leaves the file where it was", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "run.txt");
    writeFileSync(file, "mine");
    const cfg = parseLlamaConfig(HF_LLAMA_CONFIG);
    let steps = 0;
    await assert.rejects(
      trainLoop({
        stage: "lm",
        model: new LlamaForCausalLM(cfg, new Rng(1)),
        config: { steps: 2, lr: 1e-3 },
        outDir: file,
        modelConfig: cfg,
        loss: () => {
          throw new Error(`step ${++steps} ran`);
        },
      }),
      /checkpoint .*run\.txt: exists and is not a folder; refusing to replace it/,
    );
    assert.equal(steps, 0, "refused before the first step");
    assert.equal(readFileSync(file, "utf8"), "mine");
    assert.deepEqual(readdirSync(dir), ["run.txt"]);
  });
});

test("generate refuses a negative seed and other bad numbers before loading anything", () => {
  for (const [flag, value, re] of [
    ["--seed", "-1", /--seed must be a non-negative integer, got "-1"/],
    ["--top-p", "0", /--top-p must be a number in \(0, 1\], got "0"/],
    ["--fraction", "1.5", /--fraction must be a number in \[0, 1\], got "1\.5"/],
    ["--temperature", "-0.5", /--temperature must be a non-negative number, got "-0\.5"/],
    ["--max-tokens", "0", /--max-tokens must be a positive integer, got "0"/],
  ] as const) {
    const r = refrag(["generate", "--model", "/nonexistent", "--question", "q", flag, value]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, re);
  }
});

test("a GGUF string that is not UTF-8 is an error naming the file and the field", () => {
  const meta = new Map<string, GgufValue>([
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: "abc" }],
  ]);
  const { header } = encodeGgufHeader(meta, []);
  const bytes = header.slice();
  // Corrupt the first byte of the value "abc" (a key, then type, then u64 length, then the bytes).
  const at = Buffer.from(bytes).indexOf(Buffer.from("abc"));
  bytes[at] = 0xff;
  assert.throws(
    () => decodeGguf(bytes, "m.gguf"),
    /^Error: gguf m\.gguf: the value of metadata "general\.name" at byte \d+ is not valid UTF-8$/,
  );
  const keyAt = Buffer.from(bytes).indexOf(Buffer.from("general.arch"));
  bytes[keyAt] = 0xc3;
  assert.throws(
    () => decodeGguf(bytes, "m.gguf"),
    /gguf m\.gguf: metadata key 0 at byte \d+ is not valid UTF-8/,
  );
});
