// Serving benchmark over loopback: the real server (random weights of a preset shape) answering streamed
// OpenAI chat completions from 1, 8 and 32 concurrent clients. For each level: aggregate tokens/s, p50/p99
// time to first token and time per output token, errors, and whether every stream's greedy text equals the
// same request sent alone. The clients run in a worker thread (bench/serve_client.ts), so the server's
// thread does only serving, as with clients on other machines (until 2026-12-03 they shared its thread, and
// 1 and 32 streams alike paid for their SSE parsing there). Then TTFT for a 5-passage question from the
// index with stored chunk vectors against vectors computed per request. Bounded: a fixed number of requests, each with a token budget.
//   npm run bench:serve [-- --threads 1 --tokens 32 --streams 1,8,32 --requests 64 --warm-rounds 1]
// Every level answers the same number of requests (rounds of n at once), so the single stream is timed over
// as many answers as 32 streams are (with 2 requests it lasted 0.25 s and its figure swung by 1.5x), after
// one untimed round that opens the level's connections.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { nonNegInt, positiveInt } from "../src/cli/args.js";
import { numThreads, setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { RefragPipeline } from "../src/infer/pipeline.js";
import { preset, refragConfigFor } from "../src/models/presets.js";
import { RefragModel } from "../src/models/refrag.js";
import { chunkEncoderFor, storeDerived, vectorCacheFor } from "../src/rag/vectors.js";
import { PassageIndex } from "../src/retrieval/index.js";
import { buildServer } from "../src/server/app.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { defaultTokenizerPath } from "../src/tokenizer/pipeline.js";
import { readmeParagraphs, writeJson } from "./common.js";
import type { ClientBatch, ClientReply, StreamResult } from "./serve_client.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "shipped" },
    threads: { type: "string", default: "1" },
    tokens: { type: "string", default: "64" },
    streams: { type: "string", default: "1,8,32" },
    requests: { type: "string", default: "64" },
    "warm-rounds": { type: "string", default: "1" },
    "ttft-repeats": { type: "string", default: "9" },
    out: { type: "string", default: "bench/results/serve.json" },
  },
});
setNumThreads(positiveInt("--threads", values.threads));
const maxTokens = positiveInt("--tokens", values.tokens);
const levels = values.streams.split(",").map((s) => positiveInt("--streams", s));
const requests = positiveInt("--requests", values.requests);
const warmRounds = nonNegInt("--warm-rounds", values["warm-rounds"]);
const ttftRepeats = nonNegInt("--ttft-repeats", values["ttft-repeats"]);
const shape = preset(values.shape);
const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
const model = new RefragModel(
  refragConfigFor({ ...shape, vocab: tokenizer.vocabSize }, 16, 2048),
  new Rng(1),
);
// Paragraphs of the README as passages: real English, fixed.
const paragraphs = readmeParagraphs(300, 1500);
if (paragraphs.length < 10) throw new Error(`bench:serve: only ${paragraphs.length} README paragraphs`);
const passages = paragraphs.slice(0, 5).map((text, i) => ({ id: `readme#${i}`, text }));
const questions = Array.from(
  { length: 32 },
  (_, i) => `Question ${i + 1}: what does passage ${(i % 5) + 1} say?`,
);

const pct = (xs: number[], p: number) =>
  xs.length === 0
    ? NaN
    : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

// The clients: a worker thread (bench/serve_client.ts), one batch of requests at a time.
const client = new Worker(new URL("./serve_client.js", import.meta.url));
const replies: ((r: ClientReply) => void)[] = [];
client.on("message", (r: ClientReply) => replies.shift()?.(r));
client.on("error", (e) => {
  console.error(`bench:serve: the client worker failed: ${String(e)}`);
  process.exit(1);
});
/** Sends the bodies together from the client thread; their results and the batch's wall time. */
function send(url: string, bodies: object[]): Promise<ClientReply> {
  return new Promise((resolve) => {
    replies.push(resolve);
    const batch: ClientBatch = { url, bodies };
    client.postMessage(batch);
  });
}
const stream = async (url: string, body: object) => (await send(url, [body])).results[0];

const pipeline = new RefragPipeline(model, tokenizer, vectorCacheFor(model, null));
const app = buildServer({
  pipeline,
  modelName: "bench",
  limits: { maxActive: 32, maxQueue: 64, maxNewTokens: maxTokens },
});
const url = await app.listen({ host: "127.0.0.1", port: 0 });
const request = (i: number) => ({
  messages: [{ role: "user", content: questions[i % questions.length] }],
  max_tokens: maxTokens,
  temperature: 0,
  // Every chunk compressed (not the served default, query at 0.1): the figures measure batching on the
  // same prompts as the earlier runs in the README.
  refrag: { passages, selection: { mode: "none" } },
});
console.error(
  `bench:serve: ${shape.name} shape, ${numThreads()} thread(s), ${maxTokens} tokens per answer, load ${loadavg()[0].toFixed(1)}`,
);
await stream(url, request(0)); // warm-up (JIT, vectors into the cache)
const alone: StreamResult[] = [];
for (let i = 0; i < 32; i++) alone.push(await stream(url, request(i)));

interface Level {
  streams: number;
  requests: number;
  errors: number;
  mismatches: number;
  tokens: number;
  wallS: number;
  tokensPerSec: number;
  ttftP50: number;
  ttftP99: number;
  tpotP50: number;
  tpotP99: number;
}
const results: Level[] = [];
for (const n of levels) {
  const all: StreamResult[] = [];
  let mismatches = 0;
  let wall = 0;
  const round = () =>
    send(
      url,
      Array.from({ length: n }, (_, i) => request(i)),
    );
  // Untimed rounds first (default 1): they open the level's n keep-alive connections, as the warm-up
  // request did for the single stream. Timed from cold (--warm-rounds 0), the first round's requests reach
  // the server one event-loop turn apart (accepting new connections), so each is prefilled alone while
  // the others decode.
  for (let w = 0; w < warmRounds; w++) await round();
  for (let r = 0; r < Math.ceil(requests / n); r++) {
    const reply = await round();
    const got = reply.results;
    wall += reply.wallMs;
    got.forEach((g, i) => {
      if (g.ok && g.text !== alone[i % 32].text) mismatches++;
    });
    all.push(...got);
  }
  const ok = all.filter((g) => g.ok);
  const tokens = ok.reduce((a, g) => a + g.tokens, 0);
  const tpots = ok.flatMap((g) => (g.tpotMs === null ? [] : [g.tpotMs]));
  const row: Level = {
    streams: n,
    requests: all.length,
    errors: all.length - ok.length,
    mismatches,
    tokens,
    wallS: wall / 1000,
    tokensPerSec: tokens / (wall / 1000),
    ttftP50: pct(
      ok.map((g) => g.ttftMs),
      50,
    ),
    ttftP99: pct(
      ok.map((g) => g.ttftMs),
      99,
    ),
    tpotP50: pct(tpots, 50),
    tpotP99: pct(tpots, 99),
  };
  results.push(row);
  console.error(JSON.stringify(row));
}
await app.close();

// TTFT with chunk vectors stored in the index against computing them per request (5 retrieved passages).
const dir = mkdtempSync(join(tmpdir(), "refrag-bench-serve-"));
let vectors: { stored: number; perRequest: number; ratio: number } | null = null;
try {
  const docs = paragraphs.map((text, i) => ({ id: `p${i}`, doc_id: `d${i}`, title: "", text }));
  const index = await PassageIndex.build(join(dir, "index"), docs);
  await storeDerived(index.store, docs, { encoder: chunkEncoderFor(model, tokenizer) });
  const timeTtft = async (p: RefragPipeline): Promise<number> => {
    const server = buildServer({ pipeline: p, index, modelName: "bench" });
    const u = await server.listen({ host: "127.0.0.1", port: 0 });
    const ttfts: number[] = [];
    for (let i = 0; i < ttftRepeats; i++) {
      const words = paragraphs[i % paragraphs.length].split(" ").slice(0, 6).join(" ");
      const r = await stream(u, {
        messages: [{ role: "user", content: words }],
        max_tokens: 1,
        temperature: 0,
        refrag: { k: 5, selection: { mode: "none" } },
      });
      if (!r.ok) throw new Error(`bench:serve: TTFT request failed: ${r.text}`);
      ttfts.push(r.ttftMs);
    }
    await server.close();
    return pct(ttfts, 50);
  };
  if (ttftRepeats > 0) {
    const stored = await timeTtft(new RefragPipeline(model, tokenizer, vectorCacheFor(model, index.store)));
    const perRequest = await timeTtft(new RefragPipeline(model, tokenizer, null));
    vectors = { stored, perRequest, ratio: perRequest / stored };
  }
  index.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

await client.terminate();

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
console.log(
  `\nrefrag serving, ${shape.name} shape (random weights), ${numThreads()} thread(s), ${maxTokens}-token greedy answers, 5 passages per request, clients in a worker thread, ${warmRounds} untimed round(s) per level`,
);
console.log("streams  requests  errors  same as alone  tokens/s  TTFT p50 / p99 ms  time/token p50 / p99 ms");
for (const r of results)
  console.log(
    `${String(r.streams).padStart(7)}  ${String(r.requests).padStart(8)}  ${String(r.errors).padStart(6)}  ${`${r.requests - r.errors - r.mismatches}/${r.requests - r.errors}`.padStart(13)}  ${f(r.tokensPerSec).padStart(8)}  ${`${f(r.ttftP50)} / ${f(r.ttftP99)}`.padStart(17)}  ${`${f(r.tpotP50, 2)} / ${f(r.tpotP99, 2)}`.padStart(23)}`,
  );
const one = results.find((r) => r.streams === 1);
const most = results.at(-1)!;
if (one !== undefined && most.streams > 1)
  console.log(
    `\naggregate throughput, ${most.streams} streams / 1 stream: ${(most.tokensPerSec / one.tokensPerSec).toFixed(2)}×`,
  );
if (vectors !== null)
  console.log(
    `TTFT, 5 retrieved passages: stored vectors ${f(vectors.stored)} ms, computed per request ${f(vectors.perRequest)} ms (${vectors.ratio.toFixed(2)}×)`,
  );
writeJson(values.out, {
  date: new Date().toISOString(),
  shape,
  threads: numThreads(),
  maxTokens,
  requests,
  warmRounds,
  clients: "worker thread",
  loadAverage: loadavg()[0],
  levels: results,
  throughputRatio: one === undefined ? null : most.tokensPerSec / one.tokensPerSec,
  ttftVectors: vectors,
});
console.log(`\nwrote ${values.out}`);
const failed = results.some((r) => r.errors > 0 || r.mismatches > 0);
if (failed) {
  console.error("bench:serve: errors or outputs that differ from the same request alone");
  process.exit(1);
}
