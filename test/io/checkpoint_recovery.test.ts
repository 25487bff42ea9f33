// Interrupted checkpoint saves: a run killed (SIGKILL) between the two renames of a save is resumed by
// the next run from the newest complete checkpoint, and every leftover is finished or removed, and said so.
// Saves never replace what they did not create: a file, or a folder that is not a checkpoint.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { describeExit, runModule } from "../../src/fuzz/child.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { loadCheckpoint, recoverCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.js";
import { LlamaForCausalLM, llamaConfig } from "../../src/models/llama.js";
import { trainLoop, type LoopOptions } from "../../src/train/loop.js";

const cfg = llamaConfig({
  vocab_size: 32,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 32,
});

function options(model: LlamaForCausalLM, outDir: string, steps: number[]): LoopOptions {
  return {
    stage: "lm",
    model,
    config: { steps: 6, lr: 1e-2, saveEvery: 2, seed: 3 },
    outDir,
    modelConfig: cfg,
    loss: (step, rng: Rng) => {
      steps.push(step);
      const ids = Int32Array.from({ length: 9 }, () => rng.int(32));
      return crossEntropy(model.forward([{ ids: ids.subarray(0, 8) }]).logits, ids.subarray(1));
    },
  };
}

const leftovers = (dir: string, name: string) => readdirSync(dir).filter((n) => n.startsWith(`.${name}.`));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refrag-recover-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("SIGKILL between the two renames of a save: the next run resumes from the newest checkpoint", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "run");
    const url = (p: string) => JSON.stringify(new URL(`../../src/${p}`, import.meta.url).href);
    // The child trains; its second save (step 4, replacing step 2's folder) is killed between renames.
    const r = runModule(`
      import { saveHooks } from ${url("io/checkpoint.js")};
      import { crossEntropy } from ${url("engine/ops.js")};
      import { Rng } from ${url("engine/random.js")};
      import { LlamaForCausalLM, llamaConfig } from ${url("models/llama.js")};
      import { trainLoop } from ${url("train/loop.js")};
      const cfg = llamaConfig(${JSON.stringify(cfg)});
      const model = new LlamaForCausalLM(cfg, new Rng(1));
      saveHooks.betweenRenames = () => process.kill(process.pid, "SIGKILL");
      await trainLoop({ stage: "lm", model, config: { steps: 6, lr: 1e-2, saveEvery: 2, seed: 3 },
        outDir: ${JSON.stringify(out)}, modelConfig: cfg,
        loss: (step, rng) => { const ids = Int32Array.from({ length: 9 }, () => rng.int(32));
          return crossEntropy(model.forward([{ ids: ids.subarray(0, 8) }]).logits, ids.subarray(1)); } });`);
    assert.equal(r.signal, "SIGKILL", `the child should die in the save: ${describeExit(r)}`);
    assert.equal(existsSync(out), false, "killed after the first rename: the folder is away");
    assert.deepEqual(
      leftovers(dir, "run")
        .map((n) => n.replace(/-\d+-[0-9a-f]+$/, ""))
        .sort(),
      [".run.new", ".run.old"],
    );
    // The next run: recovers (said on stderr), resumes at step 4 and ends like an unbroken run.
    const said: string[] = [];
    const origError = console.error;
    console.error = (...a: unknown[]) => void said.push(a.join(" "));
    const steps: number[] = [];
    const resumed = new LlamaForCausalLM(cfg, new Rng(42));
    try {
      await trainLoop(options(resumed, out, steps));
    } finally {
      console.error = origError;
    }
    assert.deepEqual(steps, [4, 5], "resumed from the step-4 checkpoint written before the kill");
    assert.match(
      said.join("\n"),
      /lm: finished an interrupted save: .*run now holds the checkpoint written last/,
    );
    assert.match(said.join("\n"), /lm: removed .*\.run\.old-\d+-[0-9a-f]+, the previous checkpoint/);
    assert.deepEqual(leftovers(dir, "run"), [], "no leftovers");
    const unbroken = new LlamaForCausalLM(cfg, new Rng(1));
    await trainLoop(options(unbroken, join(dir, "unbroken"), []));
    for (const [n, p] of unbroken.namedParameters())
      assert.deepEqual(resumed.namedParameters().get(n)!.data, p.data, n);
  });
});

test("leftovers of the older save layout and of writes in progress elsewhere are handled", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "ck");
    const tensors = { w: { dtype: "F32" as const, shape: [2], data: new Float32Array([1, 2]) } };
    await saveCheckpoint(out, { config: cfg, tensors });
    writeFileSync(join(out, "train.log"), "step 1\n");
    // A crash between the renames of the earlier layout: only `.ck.old-*` (complete) and `.ck.tmp-*`.
    const old = join(dir, `.ck.old-999999-abcd0123`);
    const partial = join(dir, `.ck.tmp-999998-abcd0124`);
    mkdirSync(partial);
    writeFileSync(join(partial, "config.json"), "{");
    const { renameSync } = await import("node:fs");
    renameSync(out, old);
    // A temp folder of a live process (this one's parent) is not touched.
    const live = join(dir, `.ck.tmp-${process.ppid}-abcd0125`);
    mkdirSync(live);
    const notes = await recoverCheckpoint(out);
    assert.equal(notes.length, 2, notes.join("\n"));
    assert.match(notes[0], /removed .*\.ck\.tmp-999998-abcd0124, an interrupted checkpoint write/);
    assert.match(notes[1], /restored .*ck from the previous checkpoint/);
    assert.deepEqual([...(await loadCheckpoint(out)).tensors.get("w")!.data], [1, 2]);
    assert.equal(readFileSync(join(out, "train.log"), "utf8"), "step 1\n", "the user's log is where it was");
    assert.deepEqual(leftovers(dir, "ck"), [`.ck.tmp-${process.ppid}-abcd0125`]);
  });
});

test("a save refuses to replace a file or a folder that is not a checkpoint", async () => {
  await withDir(async (dir) => {
    const tensors = { w: { dtype: "F32" as const, shape: [1], data: new Float32Array([1]) } };
    const file = join(dir, "notes.txt");
    writeFileSync(file, "mine");
    await assert.rejects(
      saveCheckpoint(file, { config: cfg, tensors }),
      /checkpoint .*notes\.txt: exists and is not a folder; refusing to replace it/,
    );
    assert.equal(readFileSync(file, "utf8"), "mine");
    const folder = join(dir, "photos");
    mkdirSync(folder);
    writeFileSync(join(folder, "a.jpg"), "x");
    await assert.rejects(
      saveCheckpoint(folder, { config: cfg, tensors }),
      /photos: a folder that is not a checkpoint \(no config\.json, 1 other entries\); refusing to replace it/,
    );
    assert.deepEqual(readdirSync(folder), ["a.jpg"]);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith(".")),
      [],
      "nothing left beside them",
    );
  });
});
