// A training stage killed with SIGKILL (no handler runs, no checkpoint is written on the way out) and run
// again with the same command ends with exactly the weights of a run that was never interrupted. The run
// is the real CLI in a child process, at tiny scale, saving every step so the kill can land anywhere,
// including in the middle of a save.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { Rng } from "../../src/engine/random.js";
import { saveTokenStream } from "../../src/train/tokens.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const STEPS = 24;

function trainArgs(dir: string, out: string): string[] {
  return [
    CLI,
    "--threads",
    "1",
    "train",
    "decoder",
    "--config",
    join(dir, "config.json"),
    "--data",
    join(dir, "train.u16"),
    "--valid",
    join(dir, "train.u16"),
    "--eval-every",
    "5",
    "--out",
    out,
    "--steps",
    String(STEPS),
    "--batch",
    "2",
    "--seq",
    "32",
    "--save-every",
    "1",
  ];
}

function run(args: string[], killAtStep?: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      // Progress lines say "step N"; kill once the run is past the wanted step (mid-step or mid-save).
      const m = [...err.matchAll(/step (\d+) /g)];
      if (killAtStep !== undefined && m.length > 0 && Number(m[m.length - 1][1]) >= killAtStep)
        child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (killAtStep === undefined && code !== 0) reject(new Error(`training failed (${code}): ${err}`));
      else resolve({ code, signal });
    });
  });
}

test("a stage killed with SIGKILL and run again ends with the same weights as an uninterrupted run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-sigkill-"));
  try {
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        model_type: "llama",
        vocab_size: 8192,
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        bos_token_id: 1,
        eos_token_id: 2,
      }),
    );
    const rng = new Rng(3);
    const tokens = Uint16Array.from({ length: 4000 }, () => 16 + rng.int(200));
    saveTokenStream(join(dir, "train.u16"), {
      tokens,
      info: {
        split: "train",
        tokens: tokens.length,
        documents: 1,
        sources: {},
        tokenizerSha256: "",
        files: [],
      },
    });
    await run(trainArgs(dir, join(dir, "a")));
    const killed = await run(trainArgs(dir, join(dir, "b")), 9);
    assert.equal(killed.signal, "SIGKILL", "the second run was killed, not finished");
    const partial = JSON.parse(readFileSync(join(dir, "b", "training_state.json"), "utf8")) as {
      step: number;
    };
    assert.ok(partial.step < STEPS, `killed run saved step ${partial.step} of ${STEPS}`);
    await run(trainArgs(dir, join(dir, "b")));
    const a = readFileSync(join(dir, "a", "model.safetensors"));
    const b = readFileSync(join(dir, "b", "model.safetensors"));
    assert.ok(a.equals(b), "weights after kill + resume differ from the uninterrupted run");
    const state = (d: string) =>
      JSON.parse(readFileSync(join(dir, d, "training_state.json"), "utf8")) as { validation: unknown[] };
    assert.deepEqual(state("b").validation, state("a").validation, "validation history differs");
    assert.ok(existsSync(join(dir, "b", "optimizer.safetensors")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
