// The HTTP server on a small random REFRAG model and a real passage index: the page, streamed answers
// equal to the pipeline's own, retrieval, and clear errors for bad requests.
import assert from "node:assert/strict";
import vm from "node:vm";
import { after, test } from "node:test";
import "../helpers.js";
import { passages, tinyServerFixture } from "./fixture.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { buildServer } from "../../src/server/app.js";
import { ChunkVectorCache, weightsId } from "../../src/infer/vector_cache.js";
import { Tensor } from "../../src/engine/tensor.js";

const { model, pipeline, index, dispose } = await tinyServerFixture("refrag-server-");
after(() => {
  dispose();
});

interface Event {
  event: string;
  data: Record<string, unknown> & Record<number, unknown>;
}
function parseSse(body: string): Event[] {
  return body
    .split("\n\n")
    .filter((b) => b.trim() !== "")
    .map((b) => ({
      event: /^event: (.*)$/m.exec(b)![1],
      data: JSON.parse(/^data: (.*)$/m.exec(b)![1]) as Event["data"],
    }));
}

test("server: page and health", async () => {
  const app = buildServer({ pipeline, index, modelName: "tiny" });
  const page = await app.inject({ method: "GET", url: "/" });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers["content-type"] as string, /text\/html/);
  assert.match(page.body, /<form id="ask">/);
  assert.match(page.body, /tiny/);
  // The page's script parses (it is a template literal: a lost backslash breaks it) and has its panel.
  const script = /<script>([\s\S]*)<\/script>/.exec(page.body)![1];
  assert.doesNotThrow(() => new vm.Script(script));
  assert.match(script, /\\\[\(\\d\+\)\\\]/, "the passage-number pattern keeps its backslashes");
  assert.match(page.body, /<fieldset class="row" id="panel">/);
  const health = await app.inject({ method: "GET", url: "/health" });
  assert.deepEqual(
    { ...(health.json() as object), limits: undefined },
    {
      status: "ok",
      model: "tiny",
      chunk_size: 8,
      context_window: 256,
      index: index.dir,
      ingestion: false,
      passages: 2,
      limits: undefined,
    },
  );
  await app.close();
});

test("server: a streamed answer equals the pipeline's own; retrieval feeds the answer", async () => {
  const app = buildServer({ pipeline, index });
  const question = "What guides ships at night?";
  const res = await app.inject({
    method: "POST",
    url: "/v1/answer",
    payload: { question, passages: [passages[0].text], max_tokens: 6 },
  });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers["content-type"] as string, /text\/event-stream/);
  const events = parseSse(res.body);
  assert.equal(events[0].event, "passages");
  assert.equal(events.at(-1)!.event, "done");
  const text = events
    .filter((e) => e.event === "token")
    .map((e) => e.data.text)
    .join("");
  const want = await pipeline.answer({ question, passages: [passages[0].text], maxNewTokens: 6 });
  assert.equal(text, want);
  const done = events.at(-1)!.data;
  assert.equal(done.generated, 6);
  assert.equal(done.contextTokens, tokenizer.encode(passages[0].text).length);
  assert.equal(done.chunkSize, 8);
  // Without passages the index supplies them.
  const retrieved = await app.inject({
    method: "POST",
    url: "/v1/retrieve",
    payload: { question: "erupting volcano lava", k: 1 },
  });
  assert.equal(retrieved.json().passages[0].id, "b#0");
  const rag = parseSse(
    (
      await app.inject({
        method: "POST",
        url: "/v1/answer",
        payload: { question: "volcano lava", k: 1, max_tokens: 2 },
      })
    ).body,
  );
  assert.equal((rag[0].data[0] as { id: string }).id, "b#0");
  // The title reaches the decoder: the prompt read is the pipeline's with the titled passage.
  const b0 = passages.find((p) => p.id === "b#0")!;
  const titled = await pipeline.prepare({ question: "volcano lava", passages: [b0] });
  const untitled = await pipeline.prepare({ question: "volcano lava", passages: [b0.text] });
  assert.ok(titled.positions > untitled.positions);
  assert.equal(rag.at(-1)!.data.promptPositions, titled.positions);
  // Request passages may carry a title too.
  const own = parseSse(
    (
      await app.inject({
        method: "POST",
        url: "/v1/answer",
        payload: { question: "volcano lava", passages: [{ title: b0.title, text: b0.text }], max_tokens: 2 },
      })
    ).body,
  );
  assert.equal((own[0].data[0] as { title: string }).title, b0.title);
  assert.equal(own.at(-1)!.data.promptPositions, titled.positions);
  // A follow-up ("and at what time?") names nothing itself: the earlier question finds the passage.
  const follow = parseSse(
    (
      await app.inject({
        method: "POST",
        url: "/v1/answer",
        payload: {
          question: "and at what time?",
          history: [{ question: "What does a lighthouse guide?", answer: "ships" }],
          k: 1,
          max_tokens: 2,
        },
      })
    ).body,
  );
  assert.equal((follow[0].data[0] as { id: string }).id, "a#0");
  assert.equal(follow.at(-1)!.event, "done");
  await app.close();
});

test("server: bad requests get clear errors and the right status", async () => {
  const app = buildServer({ pipeline, index, limits: { maxPassages: 2 } });
  const noIndex = buildServer({ pipeline });
  const post = (a: typeof app, url: string, payload: unknown) =>
    a.inject({
      method: "POST",
      url,
      payload: payload as object,
      headers: { "content-type": "application/json" },
    });
  const cases: [typeof app, string, unknown, number, RegExp][] = [
    [app, "/v1/answer", { question: "" }, 400, /question must be a non-empty string/],
    [app, "/v1/answer", "{bad", 400, /not valid JSON/],
    [app, "/v1/answer", [1, 2], 400, /must be a JSON object/],
    [app, "/v1/answer", { question: "q", passages: ["a", "b", "c"] }, 413, /3 passages; the limit is 2/],
    [
      app,
      "/v1/answer",
      { question: "q", passages: [7] },
      400,
      /passages must be a list of strings or \{id\?, title\?, text\}/,
    ],
    [app, "/v1/answer", { question: "q", max_tokens: 0 }, 400, /max_tokens must be an integer in \[1, 512\]/],
    [app, "/v1/answer", { question: "q", selection: { mode: "magic" } }, 400, /mode must be one of none/],
    [app, "/v1/answer", { question: "q", top_p: 0 }, 400, /top_p must be a number in \(0, 1\]/],
    [app, "/v1/answer", { question: "q".repeat(3000) }, 413, /the limit is 2000/],
    [app, "/v1/answer", { question: "q", history: "no" }, 400, /history must be a list/],
    [app, "/v1/answer", { question: "q", history: [{ question: "a" }] }, 400, /history turn 0 must be/],
    [
      app,
      "/v1/answer",
      { question: "q", history: Array.from({ length: 17 }, () => ({ question: "a", answer: "b" })) },
      413,
      /17 history turns; the limit is 16/,
    ],
    [noIndex, "/v1/answer", { question: "q" }, 400, /passages are required/],
    [noIndex, "/v1/retrieve", { question: "q" }, 404, /no passage index/],
  ];
  for (const [a, url, payload, status, message] of cases) {
    const res = await post(a, url, payload);
    assert.equal(res.statusCode, status, `${JSON.stringify(payload).slice(0, 60)}: ${res.body}`);
    assert.match(res.json().error, message);
  }
  // Read in full, two long passages do not fit the 256-position window; compressed they do.
  const long = "The quick brown fox jumps over the lazy dog. ".repeat(30);
  const full = await post(app, "/v1/answer", {
    question: "q",
    passages: [long, long],
    selection: { mode: "all" },
  });
  assert.equal(full.statusCode, 413);
  assert.match(full.json().error, /exceeds the decoder's context window of 256/);
  const compressed = await post(app, "/v1/answer", { question: "q", passages: [long, long], max_tokens: 2 });
  assert.equal(compressed.statusCode, 200);
  await app.close();
  await noIndex.close();
});

test("server: a client that disconnects mid-answer stops the generation", async () => {
  const slow = tinyRefrag(8, 512, 12);
  let forwards = 0;
  // The final norm runs once per forward pass: the prefill and every (batched) decode step.
  const norm = slow.decoder.model.norm;
  const forward = norm.forward.bind(norm);
  norm.forward = (...args: Parameters<typeof forward>) => {
    forwards++;
    const until = performance.now() + 5; // slow enough that 200 tokens would take a second
    while (performance.now() < until);
    return forward(...args);
  };
  const app = buildServer({ pipeline: new RefragPipeline(slow, tokenizer) });
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  try {
    const controller = new AbortController();
    const res = await fetch(`${address}/v1/answer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question: "q", passages: ["some words here"], max_tokens: 200 }),
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes("event: token")) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await new Promise((r) => setTimeout(r, 300));
    const after = forwards;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(forwards, after, "no forward passes after the client left");
    assert.ok(forwards < 100, `${forwards} forward passes of 200`);
  } finally {
    await app.close();
  }
});

test("server: oversized contexts are refused before tokenising or encoding, and nothing is cached", async () => {
  const cache = new ChunkVectorCache(null, weightsId(model.encoder), model.chunkSize);
  const app = buildServer({ pipeline: new RefragPipeline(model, tokenizer, cache) });
  const post = (payload: unknown) =>
    app.inject({ method: "POST", url: "/v1/answer", payload: payload as object });
  // About 1 MB of passages: refused by size at once (it used to take ~5 s of encoding before its 413).
  const big = Array.from(
    { length: 60 },
    (_, i) => `Passage ${i}: ` + "lorem ipsum dolor sit amet ".repeat(600),
  );
  // Spies: the longest text tokenised and the chunks encoded while the request is handled.
  let longest = 0;
  let encoded = 0;
  const encode = tokenizer.encode.bind(tokenizer);
  const encodeChunks = model.encodeChunks.bind(model);
  tokenizer.encode = (text, o) => {
    longest = Math.max(longest, text.length);
    return encode(text, o);
  };
  model.encodeChunks = (chunks, batchSize) => {
    encoded += chunks.length;
    return encodeChunks(chunks, batchSize);
  };
  let res;
  try {
    res = await post({ question: "q", passages: big });
  } finally {
    tokenizer.encode = encode;
    model.encodeChunks = encodeChunks;
  }
  assert.equal(res.statusCode, 413, res.body);
  assert.match(
    res.json().error,
    /the passages hold \d+ characters; this model's window of 256 positions .* takes at most 12288/,
  );
  assert.ok(longest < big[0].length, `a text of ${longest} characters was tokenised`);
  assert.equal(encoded, 0, "chunks encoded");
  // Small enough by characters, too long once tokenised: refused before the encoder runs.
  const mid = await post({ question: "q", passages: ["a b c d e f g h ".repeat(700)] });
  assert.equal(mid.statusCode, 413, mid.body);
  assert.match(
    mid.json().error,
    /take at least \d+ positions .* which exceeds the decoder's context window of 256/,
  );
  assert.equal(cache.size, 0, "no vectors cached for rejected requests");
  // Policy selection on a model without a policy is the client's error.
  const pol = await post({ question: "q", passages: ["x"], selection: { mode: "policy" } });
  assert.equal(pol.statusCode, 400, pol.body);
  assert.match(pol.json().error, /selection mode 'policy' needs a model with a trained policy/);
  await app.close();
});

test("the chunk-vector cache is bounded by bytes as well as entries", async () => {
  const cache = new ChunkVectorCache(null, "enc", 4, "F32", 10_000, 64 * 1024);
  for (let i = 0; i < 30; i++) {
    const ids = Int32Array.from({ length: 4 * 100 }, (_, j) => i * 1000 + j);
    await cache.put(ids, new Tensor(new Float32Array(100 * 64), [100, 64])); // 25.6 KB each
  }
  assert.ok(cache.memoryBytes <= 64 * 1024, `${cache.memoryBytes} bytes held`);
  assert.equal(cache.size, 2);
});
