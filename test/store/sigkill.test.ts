// An ingesting process killed (SIGKILL) in the middle of a batch: the store then holds all of the batch
// or none of it, and keeps answering. LanceDB: the killed process owned the folder; Postgres: the store is a
// pglite-socket server in this process and the killed child was its client over the wire protocol.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import "../helpers.js";
import { LanceStore } from "../../src/store/lancedb.js";
import { openStore } from "../../src/store/index.js";
import type { PassageStore } from "../../src/store/types.js";
import { CORPUS } from "./suite.js";
import { pgliteWireBackend } from "./backends.js";

const child = fileURLToPath(new URL("./ingest_child.js", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "refrag-sigkill-"));
after(() => rmSync(root, { recursive: true, force: true }));
const N = 1500;

/** Runs the child and SIGKILLs it after its second progress line (mid-batch). */
function ingestAndKill(spec: string): Promise<{ progress: string[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, spec, String(N)], { stdio: ["ignore", "pipe", "pipe"] });
    const progress: string[] = [];
    let err = "";
    p.stderr.on("data", (d) => (err += String(d)));
    p.stdout.on("data", (d) => {
      for (const line of String(d).split("\n").filter(Boolean)) {
        progress.push(line);
        if (progress.length === 2) p.kill("SIGKILL");
      }
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      if (signal === null) reject(new Error(`child exited with ${code} before it was killed: ${err}`));
      else resolve({ progress, signal });
    });
  });
}

async function checkAllOrNone(s: PassageStore, before: number): Promise<void> {
  const n = await s.count();
  assert.ok(
    n === before || n === before + N,
    `store holds ${n} passages: neither ${before} nor ${before + N}`,
  );
  assert.equal(n, before, "the kill came before the commit, so none of the batch may be visible");
  assert.deepEqual(await s.get(["kill0#0", `kill${N - 1}#0`]), []);
  assert.equal((await s.getChunkVectors(["kill0#0"], "enc", 16)).size, 0);
  assert.equal((await s.searchText("Which lamp guides ships at night?", 1))[0].id, "lighthouse#0");
}

test("sigkill: LanceDB store holds none of a batch whose writer was killed, and recovers", async () => {
  const dir = join(root, "lance");
  const s0 = await LanceStore.create(dir, [], { allowEmpty: true });
  await s0.upsertDocuments(CORPUS);
  await s0.close();
  const { progress, signal } = await ingestAndKill(dir);
  assert.equal(signal, "SIGKILL");
  assert.match(progress[1], /^progress \d+ 1500$/);
  assert.ok(!progress.includes("committed"));
  const s = await LanceStore.open(dir);
  await checkAllOrNone(s, 7);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith(".pending-")).length, 1, "the cut batch's marker");
  // The next write cleans up what the killed batch left.
  await s.upsertDocuments([{ docId: "bees", passages: [] }]);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith(".pending-")).length, 0);
  assert.equal(await s.count(), 6);
  await s.close();
  assert.ok(existsSync(dir));
});

test("sigkill: Postgres store (pglite-socket server) holds none of a killed client's batch and keeps answering", async () => {
  const wire = await pgliteWireBackend();
  try {
    const spec = `${wire.url}?schema=killed`;
    const s = await openStore(spec, { migrate: true });
    await s.upsertDocuments(CORPUS);
    const { progress, signal } = await ingestAndKill(spec);
    assert.equal(signal, "SIGKILL");
    assert.match(progress[1], /^progress \d+ 1500$/);
    await checkAllOrNone(s, 7);
    // The server still takes writes (the killed connection's transaction was rolled back).
    await s.upsertDocuments([{ docId: "bees", passages: [] }]);
    assert.equal(await s.count(), 6);
    await s.close();
  } finally {
    await wire.teardown();
  }
});
