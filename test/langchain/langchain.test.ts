// LangChain.js on the real @langchain/core: the retriever finds passages in the index (in-process and
// through the server), the chat model streams the same greedy answer the pipeline gives, and a call can
// pass the retrieved documents as the passages to read.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import "../helpers.js";
import { passages, tinyServerFixture } from "../server/fixture.js";
import { RefragChatModel, RefragRetriever } from "../../src/langchain/index.js";
import { buildServer } from "../../src/server/app.js";

const { pipeline, index, dispose } = await tinyServerFixture("refrag-langchain-");
const app = buildServer({ pipeline, index, modelName: "tiny" });
let baseUrl = "";
before(async () => {
  baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });
});
after(async () => {
  await app.close();
  dispose();
});

test("langchain: the retriever returns passages from the index, in-process and over HTTP", async () => {
  for (const retriever of [new RefragRetriever({ index, k: 1 }), new RefragRetriever({ baseUrl, k: 1 })]) {
    const docs = await retriever.invoke("erupting volcano lava");
    assert.equal(docs.length, 1);
    assert.equal(docs[0].metadata.id, "b#0");
    assert.equal(docs[0].metadata.title, "Volcanoes");
    assert.equal(docs[0].pageContent, passages[1].text);
  }
  assert.throws(() => new RefragRetriever({ k: 1 }), /exactly one of index and baseUrl/);
});

test("langchain: the chat model streams the pipeline's greedy answer over retrieved documents", async () => {
  const chat = new RefragChatModel({ baseUrl, model: "tiny", maxTokens: 6, temperature: 0 });
  const docs = await new RefragRetriever({ index, k: 1 }).invoke("lighthouse ships");
  const question = "What guides ships at night?";
  // The same passages (titles too: the prompt reads them) that the chat model sends.
  const read0 = docs.map((d) => ({
    id: String(d.metadata.id),
    title: String(d.metadata.title),
    text: d.pageContent,
  }));
  const want = await pipeline.answer({ question, passages: read0, maxNewTokens: 6 });
  const pieces: string[] = [];
  let last: Record<string, unknown> = {};
  const tokens: string[] = [];
  for await (const chunk of await chat.stream(
    [new SystemMessage("Answer briefly."), new HumanMessage(question)],
    {
      passages: docs,
      callbacks: [{ handleLLMNewToken: (t: string) => void tokens.push(t) }],
    },
  )) {
    pieces.push(chunk.content as string);
    if (chunk.response_metadata.finish_reason !== undefined) last = chunk.response_metadata;
  }
  assert.ok(pieces.filter((p) => p !== "").length >= 2, `streamed in ${pieces.length} chunks`);
  assert.equal(pieces.join(""), want);
  assert.equal(tokens.join(""), want);
  assert.equal(last.finish_reason, "length");
  const read = (last.refrag as { passages: { id: string; title: string }[] }).passages;
  assert.deepEqual(
    read.map((p) => [p.id, p.title]),
    [["a#0", "Lighthouses"]],
  );
  // Not streamed, and with the server's own retrieval.
  const res = await chat.invoke([new HumanMessage("erupting volcano lava")], { k: 1 });
  assert.equal(
    res.content,
    await pipeline.answer({
      question: "erupting volcano lava",
      passages: [passages[1]],
      maxNewTokens: 6,
    }),
  );
  assert.equal((res.response_metadata.refrag as { passages: { id: string }[] }).passages[0].id, "b#0");
  assert.equal(res.usage_metadata?.output_tokens, 6);
  await assert.rejects(
    new RefragChatModel({ baseUrl, model: "other" }).invoke("hi"),
    /404 the model other does not exist/,
  );
});
