// `generate` and `serve` without --model use the shipped model (one owner: src/cli/model_dir.ts), here a
// tiny random checkpoint that REFRAG_MODEL_DIR points at; with nothing shipped they fail as `demo` does.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { MODEL_DIR_ENV } from "../../src/cli/model_dir.js";
import { saveTinyRefrag } from "../tiny_refrag.js";

const main = new URL("../../src/cli/main.js", import.meta.url).pathname;

function env(modelDir: string): NodeJS.ProcessEnv {
  return { ...process.env, REFRAG_THREADS: "1", [MODEL_DIR_ENV]: modelDir };
}

function refrag(args: string[], modelDir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], {
    encoding: "utf8",
    env: env(modelDir),
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `refrag serve ARGS` and resolves with its first stdout line (or rejects with its stderr on exit). */
function serveFirstLine(args: string[], modelDir: string): Promise<string> {
  const child = spawn(process.execPath, [main, "serve", ...args], { env: env(modelDir) });
  let out = "";
  let err = "";
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`serve printed nothing in 60 s: ${err}`));
    }, 60_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) {
        clearTimeout(timer);
        child.kill();
        resolve(out.split("\n")[0]!);
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before serving: ${err}`));
    });
  });
}

test("generate and serve without --model use the shipped model; with none shipped they say so", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-shipped-"));
  try {
    const shipped = join(dir, "model");
    await saveTinyRefrag(shipped, 4, 256, 7);
    const empty = join(dir, "empty");
    mkdirSync(empty);

    const question = ["generate", "--question", "what is zlib?", "--passage", "zlib compresses data."];
    let r = refrag([...question, "--max-tokens", "2", "--stats"], shipped);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /prompt positions \d+/);

    r = refrag(question, empty);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no trained model ships in .*empty yet: train one .* and pass --model DIR/);
    r = refrag([...question, "--model", empty], shipped);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /empty: no config\.json \(not a REFRAG checkpoint folder\)/);

    assert.match(await serveFirstLine(["--port", "0"], shipped), new RegExp(`serving ${shipped} at http`));
    await assert.rejects(serveFirstLine(["--port", "0"], empty), /no trained model ships in .*empty yet/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
