// The OpenAI-compatible endpoints driven by the official `openai` client over a loopback socket: chat
// completions (streamed and not), completions, models, retrieval with history, errors the client parses
// (400, 404, 413, 429 with Retry-After, 503), and /metrics counting the requests just made.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import "../helpers.js";
import { passages, tinyServerFixture } from "./fixture.js";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { RagService } from "../../src/rag/service.js";
import { buildServer } from "../../src/server/app.js";

const { pipeline, index, dispose } = await tinyServerFixture("refrag-openai-");
const app = buildServer({ pipeline, index, modelName: "tiny" });
let client: OpenAI;
let address: string;
before(async () => {
  address = await app.listen({ host: "127.0.0.1", port: 0 });
  client = new OpenAI({ baseURL: `${address}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await app.close();
  dispose();
});

interface Extension {
  passages: { number: number; id: string; expanded: boolean[]; tokens: number }[];
  prompt_positions: number;
  full_context_positions: number;
  context_tokens: number;
  chunk_size: number;
}
const ext = (x: object) => (x as { refrag: Extension }).refrag;
/** Request parameters with the `refrag` extension field (not in OpenAI's types). */
const withRefrag = <T extends object>(params: T, refrag: object): T => ({ ...params, refrag });

const question = "What guides ships at night?";
const given = { passages: [{ id: "mine", title: "Lamps", text: passages[0].text }] };

test("openai: models, and a chat completion equal to the pipeline's greedy answer", async () => {
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["tiny"],
  );
  assert.equal((await client.models.retrieve("tiny")).owned_by, "refrag");
  const want = await pipeline.answer({ question, passages: [passages[0].text], maxNewTokens: 6 });
  const res = await client.chat.completions.create(
    withRefrag(
      {
        model: "tiny",
        messages: [
          { role: "system", content: "You answer from the passages." },
          { role: "user", content: question },
        ],
        max_tokens: 6,
        temperature: 0,
      },
      given,
    ),
  );
  assert.equal(res.object, "chat.completion");
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].message.content, want);
  assert.equal(res.choices[0].finish_reason, "length");
  assert.equal(res.usage?.completion_tokens, 6);
  const r = ext(res);
  assert.equal(res.usage?.prompt_tokens, r.prompt_positions);
  assert.equal(r.passages[0].id, "mine");
  assert.equal(r.passages[0].number, 1);
  assert.equal(r.context_tokens, tokenizer.encode(passages[0].text).length);
  assert.equal(r.passages[0].expanded.length, Math.ceil(r.context_tokens / 8));
  assert.ok(r.full_context_positions > r.prompt_positions);
});

test("openai: a streamed chat completion arrives in chunks, ends with finish_reason, usage and [DONE]", async () => {
  const want = await pipeline.answer({ question, passages: [passages[0].text], maxNewTokens: 6 });
  const stream = await client.chat.completions.create(
    withRefrag(
      {
        model: "tiny",
        messages: [{ role: "user", content: question }],
        max_tokens: 6,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      },
      { ...given, selection: { mode: "random", fraction: 0.5 } },
    ),
  );
  let pieces = 0;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  let first: Extension | null = null;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    first ??= ext(c) ?? null;
    if ((c.choices[0]?.delta.content ?? "") !== "") pieces++;
    finish = c.choices[0]?.finish_reason ?? finish;
    usage = c.usage ?? usage;
  }
  assert.ok(chunks >= 4 && pieces >= 2, `${chunks} chunks, ${pieces} with text`);
  assert.equal(finish, "length");
  assert.equal(usage?.completion_tokens, 6);
  assert.ok(first !== null, "the first chunk carries the layout");
  // Half the chunks expanded: the random selection is reported per passage.
  assert.equal(
    first.passages[0].expanded.filter((e) => e).length,
    Math.round(first.passages[0].expanded.length / 2),
  );
  const plain = await client.chat.completions.create(
    withRefrag(
      {
        model: "tiny",
        messages: [{ role: "user", content: question }],
        max_tokens: 6,
        temperature: 0,
        stream: true,
      },
      given,
    ),
  );
  let plainText = "";
  for await (const c of plain) plainText += c.choices[0]?.delta.content ?? "";
  assert.equal(plainText, want);
  // The raw stream really is OpenAI's wire format.
  const raw = await fetch(`${address}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny",
      messages: [{ role: "user", content: "q" }],
      max_tokens: 2,
      stream: true,
      refrag: given,
    }),
  });
  const body = await raw.text();
  assert.match(raw.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.ok(body.trimEnd().endsWith("data: [DONE]"), body.slice(-80));
  assert.ok(
    body
      .split("\n\n")
      .filter((b) => b !== "")
      .every((b) => b.startsWith("data: ")),
  );
});

test("openai: retrieval from the index uses the conversation's questions; completions", async () => {
  const follow = await client.chat.completions.create(
    withRefrag(
      {
        model: "tiny",
        messages: [
          { role: "user", content: "What does a lighthouse guide?" },
          { role: "assistant", content: "ships" },
          { role: "user", content: "and at what time?" },
        ],
        max_tokens: 2,
        temperature: 0,
      },
      { k: 1 },
    ),
  );
  assert.equal(ext(follow).passages[0].id, "a#0");
  const want = await pipeline.answer({
    question: "volcano lava",
    passages: [passages[1].text],
    maxNewTokens: 5,
  });
  const c = await client.completions.create({
    model: "tiny",
    prompt: "volcano lava",
    max_tokens: 5,
    temperature: 0,
    seed: 3,
  });
  assert.equal(c.object, "text_completion");
  assert.equal(c.choices[0].text, want);
  assert.equal(ext(c).passages[0].id, "b#0");
  let streamed = "";
  for await (const s of await client.completions.create({
    model: "tiny",
    prompt: "volcano lava",
    max_tokens: 5,
    temperature: 0,
    stream: true,
  }))
    streamed += s.choices[0]?.text ?? "";
  assert.equal(streamed, want);
});

test("openai: errors in OpenAI's shape with the right status, parsed by the client", async () => {
  const chat = (extra: object) =>
    client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: question }],
      max_tokens: 2,
      ...extra,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  const cases: [object, number, RegExp, string | null][] = [
    [{ n: 2 }, 400, /n > 1 is not supported/, "n"],
    [{ model: "gpt-9" }, 404, /the model gpt-9 does not exist/, "model"],
    [
      { messages: [{ role: "assistant", content: "hi" }] },
      400,
      /last message must be from the user/,
      "messages",
    ],
    [{ logprobs: true }, 400, /logprobs is not supported/, "logprobs"],
    [{ temperature: 3 }, 400, /temperature must be a number in \[0, 2\]/, "temperature"],
    [{ max_tokens: 100000 }, 400, /max_tokens must be an integer in \[1, 512\]/, "max_tokens"],
    [{ refrag: { passages: Array(65).fill("x") } }, 413, /65 passages; the limit is 64/, "refrag.passages"],
    [{ refrag: { selection: { mode: "magic" } } }, 400, /mode must be one of none/, "mode"],
  ];
  for (const [extra, status, message, param] of cases) {
    await assert.rejects(chat(extra), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, status, `${JSON.stringify(extra)}: ${e.message}`);
      assert.match(e.message, message);
      assert.equal(e.param, param);
      if (status === 404) assert.equal(e.code, "model_not_found");
      return true;
    });
  }
  // Read in full, long passages do not fit the 256-position window.
  const long = "The quick brown fox jumps over the lazy dog. ".repeat(30);
  await assert.rejects(
    chat({ refrag: { passages: [long, long], selection: { mode: "all" } } }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError && e.status === 413 && /context window of 256/.test(e.message));
      return true;
    },
  );
  await assert.rejects(client.models.retrieve("nope"), OpenAI.NotFoundError);
  const missing = await fetch(`${address}/v1/embeddings`, { method: "POST" });
  assert.equal(missing.status, 404);
  assert.match(
    ((await missing.json()) as { error: { message: string } }).error.message,
    /no route POST \/v1\/embeddings/,
  );
});

test("openai: a full queue is 429 with Retry-After, a closed engine 503", async () => {
  const slow = tinyRefrag(8, 256, 12);
  const norm = slow.decoder.model.norm;
  const forward = norm.forward.bind(norm);
  norm.forward = (...args: Parameters<typeof forward>) => {
    const until = performance.now() + 3;
    while (performance.now() < until);
    return forward(...args);
  };
  const rag = new RagService(new RefragPipeline(slow, tokenizer), null, { maxActive: 1, maxQueue: 0 });
  const busy = buildServer({ pipeline: rag.pipeline, rag, modelName: "tiny" });
  const url = await busy.listen({ host: "127.0.0.1", port: 0 });
  const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
  try {
    const first = await c.chat.completions.create(
      withRefrag(
        {
          model: "tiny",
          messages: [{ role: "user", content: "q" }],
          max_tokens: 150,
          stream: true,
        },
        given,
      ),
    );
    const it = first[Symbol.asyncIterator]();
    await it.next();
    await assert.rejects(
      c.chat.completions.create(
        withRefrag(
          {
            model: "tiny",
            messages: [{ role: "user", content: "q" }],
          },
          given,
        ),
      ),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.RateLimitError, String(e));
        assert.equal(e.headers?.get("retry-after"), "1");
        return true;
      },
    );
    await it.return?.();
    rag.engine.close();
    await assert.rejects(
      c.chat.completions.create(
        withRefrag(
          {
            model: "tiny",
            messages: [{ role: "user", content: "q" }],
          },
          given,
        ),
      ),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 503 && /shutting down/.test(e.message),
    );
  } finally {
    await busy.close();
  }
});

test("metrics: /metrics counts the request just made, its tokens and the positions saved", async () => {
  const scrape = async () => (await fetch(`${address}/metrics`)).text();
  const count = (text: string, line: RegExp) => Number(line.exec(text)?.[1] ?? 0);
  const reqLine = /^refrag_requests_total\{route="\/v1\/completions",status="200"\} (\d+)$/m;
  const before = await scrape();
  await client.completions.create(
    withRefrag(
      {
        model: "tiny",
        prompt: "lighthouse",
        max_tokens: 3,
        temperature: 0,
      },
      given,
    ),
  );
  const after = await scrape();
  assert.equal(count(after, reqLine), count(before, reqLine) + 1);
  const tokens = /^refrag_generated_tokens_total (\d+)$/m;
  assert.ok(count(after, tokens) >= count(before, tokens) + 1);
  const saved = /^refrag_decoder_positions_saved_total (\d+)$/m;
  assert.ok(count(after, saved) > count(before, saved));
  assert.match(after, /^refrag_time_to_first_token_seconds_count \d+$/m);
  assert.match(after, /^refrag_queue_depth 0$/m);
  assert.match(after, /^refrag_active_streams 0$/m);
  await fetch(`${address}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.match(await scrape(), /^refrag_requests_total\{route="\/v1\/completions",status="400"\} 1$/m);
});
