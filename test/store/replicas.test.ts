// Two `refrag serve` processes (stateless replicas) on one Postgres store: PGlite behind pglite-socket in
// this process, the replicas its clients over the wire protocol, as they would be of any Postgres server.
// A document added through one replica's ingestion route is retrieved by both at once, its chunk vectors
// are read from the store by the other (which never encodes it), and the same greedy question gets the same
// answer from both. Then an ingesting process is SIGKILLed in the middle of a batch: both replicas keep
// answering, and none of the killed batch is visible.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import "../helpers.js";
import { saveTinyRefrag, tokenizer } from "../tiny_refrag.js";
import { chunkEncoderFor, storeDerived } from "../../src/rag/vectors.js";
import { openStore } from "../../src/store/index.js";
import { pgliteWireBackend } from "./backends.js";
import { CORPUS } from "./suite.js";

const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const ingestChild = fileURLToPath(new URL("./ingest_child.js", import.meta.url));
const TOKEN = "replica-token-0123456789abcdef";
const root = mkdtempSync(join(tmpdir(), "refrag-replicas-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/** Starts `refrag serve` and resolves with its base URL once it listens. */
function serve(model: string, store: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [main, "--threads", "1", "serve", "--model", model, "--store", store, "--port", "0"],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, REFRAG_THREADS: "1", REFRAG_INGEST_TOKEN: TOKEN },
      },
    );
    children.push(p);
    let out = "";
    let err = "";
    p.stderr.on("data", (d) => (err += String(d)));
    p.stdout.on("data", (d) => {
      out += String(d);
      const m = / at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    p.on("exit", (code) => reject(new Error(`refrag serve exited with ${code}: ${err}`)));
  });
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${path}: ${r.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

const retrieve = async (base: string, question: string, k = 3) =>
  ((await post(base, "/v1/retrieve", { question, k })).passages as { id: string }[]).map((p) => p.id);

async function answer(base: string, question: string) {
  const r = await post(base, "/v1/chat/completions", {
    model: "tiny",
    messages: [{ role: "user", content: question }],
    max_tokens: 8,
    temperature: 0,
    refrag: { k: 2 },
  });
  const choices = r.choices as { message: { content: string } }[];
  const ext = r.refrag as { passages: { id: string }[] };
  return { text: choices[0].message.content, passages: ext.passages.map((p) => p.id) };
}

async function encodedTotal(base: string): Promise<number> {
  const m = /^refrag_passages_encoded_total (\d+)/m.exec(await (await fetch(`${base}/metrics`)).text());
  assert.ok(m, "metrics carry refrag_passages_encoded_total");
  return Number(m[1]);
}

function ingestAndKill(spec: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [ingestChild, spec, "1500"], { stdio: ["ignore", "pipe", "pipe"] });
    let lines = 0;
    p.stdout.on("data", (d) => {
      lines += String(d).split("\n").filter(Boolean).length;
      if (lines >= 2) p.kill("SIGKILL");
    });
    p.on("exit", (_code, signal) =>
      signal === "SIGKILL" ? resolve() : reject(new Error("ingester was not killed")),
    );
  });
}

test("replicas: two servers on one Postgres store see one ingestion at once and answer alike", async () => {
  const wire = await pgliteWireBackend();
  try {
    const spec = `${wire.url}?schema=replicas`;
    const store = await openStore(spec, { migrate: true });
    await store.upsertDocuments(CORPUS);
    const model = join(root, "tiny");
    const tiny = await saveTinyRefrag(model, 8, 256, 31);
    // The corpus's chunk vectors, stored once (as `refrag index vectors --model` does).
    const stored = await storeDerived(
      store,
      CORPUS.flatMap((d) => d.passages.map((p) => p.passage)),
      { encoder: chunkEncoderFor(tiny, tokenizer) },
    );
    assert.equal(stored.attached, 7);
    const [a, b] = await Promise.all([serve(model, spec), serve(model, spec)]);

    // Add a document through replica A; both retrieve it at once.
    const added = await post(
      a,
      "/v1/documents",
      {
        documents: [{ id: "owls", title: "Owls", text: "Owls hunt mice at night and see well in the dark." }],
      },
      { authorization: `Bearer ${TOKEN}` },
    );
    assert.equal(added.passages, 1);
    const q = "What do owls hunt at night?";
    assert.equal((await retrieve(a, q))[0], "owls#0");
    assert.equal((await retrieve(b, q))[0], "owls#0");
    // Replica B reads the chunk vectors A stored (and those of the corpus): its encoder never runs.
    const [ra, rb] = [await answer(a, q), await answer(b, q)];
    assert.deepEqual(ra.passages, rb.passages);
    assert.equal(ra.passages[0], "owls#0");
    assert.equal(ra.text, rb.text, "the same greedy answer from both replicas");
    assert.equal(await encodedTotal(b), 0);
    // B's ingestion route needs the token too.
    const denied = await fetch(`${b}/v1/documents`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ documents: [{ id: "x", title: "x", text: "x" }] }),
    });
    assert.equal(denied.status, 401);

    // An ingester killed mid-batch: the servers keep answering, and nothing of the batch shows.
    const killed = ingestAndKill(spec);
    const during = await Promise.all([answer(a, q), answer(b, q)]);
    await killed;
    assert.deepEqual(during[0], ra);
    assert.deepEqual(during[1], rb);
    for (const base of [a, b]) {
      assert.deepEqual(await retrieve(base, "sigkill batch passage"), []);
      assert.deepEqual(await answer(base, q), ra);
    }
    assert.equal(await store.count(), 8);
    assert.deepEqual(await store.get(["kill0#0"]), []);
    // And they still take writes: replace the document through B, A sees the new text.
    await post(
      b,
      "/v1/documents",
      { documents: [{ id: "owls", title: "Owls", text: "Owls swallow their prey whole." }] },
      { authorization: `Bearer ${TOKEN}` },
    );
    assert.equal((await retrieve(a, "What do owls swallow?"))[0], "owls#0");
    await store.close();
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once("exit", r)),
      ),
    );
    await wire.teardown();
  }
});
