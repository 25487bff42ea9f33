// Continuous batching: a request's logits are bit-identical alone and among 31 others (batch invariance),
// its greedy tokens equal the unbatched generate()'s, the queue is bounded, a leaving client frees its row,
// and a KV cache handed on from a finished request (old keys past its length) gives a fresh cache's bits.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { BatchEngine, KVCachePool, QueueFullError, type BatchRequest } from "../../src/infer/batch.js";
import { ContextLengthError, generate } from "../../src/infer/generate.js";
import { llamaConfig, LlamaForCausalLM, type KVCacheDtype } from "../../src/models/llama.js";
import { tokenizer } from "../tiny_refrag.js";

const decoder = new LlamaForCausalLM(
  llamaConfig({
    vocab_size: tokenizer.vocabSize,
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 96,
    max_position_embeddings: 128,
  }),
  new Rng(5),
);
// Logits of a random model are tiny; scale the head so greedy choices are not near-ties.
decoder.model.embed_tokens.weight.data.forEach((v, i, a) => (a[i] = v * 40));

function prompts(n: number, seed: number): Int32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () =>
    Int32Array.from({ length: 3 + rng.int(30) }, () => 1 + rng.int(tokenizer.vocabSize - 1)),
  );
}

interface Run {
  ids: number[];
  logits: Float32Array[];
}

async function run(engine: BatchEngine, prompt: Int32Array, maxNewTokens: number): Promise<Run> {
  const out: Run = { ids: [], logits: [] };
  const req: BatchRequest = {
    prompt: [{ ids: prompt }],
    maxNewTokens,
    onLogits: (l) => out.logits.push(l.slice()),
  };
  for await (const t of engine.submit(req)) if (t.id >= 0) out.ids.push(t.id);
  return out;
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** 32 requests alone, then in a crowd: the same tokens and logits; the first runs alone, for comparisons. */
async function crowdCheck(kvCache: KVCacheDtype): Promise<Run[]> {
  const ps = prompts(32, 7);
  const engine = new BatchEngine(decoder, { maxActive: 32, kvCache });
  const alone: Run[] = [];
  for (const p of ps) alone.push(await run(engine, p, 10));
  // The unbatched loop agrees token for token.
  for (const [i, p] of ps.slice(0, 4).entries()) {
    const ids: number[] = [];
    for await (const t of generate(decoder, [{ ids: p }], null, { maxNewTokens: 10, kvCache }))
      ids.push(t.id);
    assert.deepEqual(ids, alone[i].ids, `${kvCache} request ${i}: generate() and the engine disagree`);
  }
  // The crowd: 20 at once, the other 12 join while those decode.
  let steps = 0;
  let widest = 0;
  let joined = 0;
  engine.onStep = (rows) => {
    steps++;
    widest = Math.max(widest, rows);
  };
  engine.onPrefill = (requests) => (joined = Math.max(joined, requests));
  const first = ps.slice(0, 20).map((p) => run(engine, p, 10));
  await new Promise((r) => setTimeout(r, 5));
  const rest = ps.slice(20).map((p) => run(engine, p, 10));
  const crowd = await Promise.all([...first, ...rest]);
  assert.ok(widest >= 20, `the steps were not batched (widest step ${widest} rows)`);
  assert.ok(joined >= 20, `the prefills were not batched (at most ${joined} prompts in one)`);
  assert.ok(steps < 32 * 9, `${steps} steps for 32 requests of 10 tokens: not shared`);
  crowd.forEach((c, i) => {
    assert.deepEqual(c.ids, alone[i].ids, `request ${i}: tokens differ in the crowd`);
    assert.equal(c.logits.length, alone[i].logits.length);
    c.logits.forEach((l, s) =>
      assert.ok(
        bits(l).equals(bits(alone[i].logits[s])),
        `request ${i}, step ${s}: logits differ in the crowd`,
      ),
    );
  });
  // Different prompts gave different answers (no row read another's cache).
  assert.ok(new Set(crowd.map((c) => c.ids.join(","))).size > 16);
  return alone;
}

test("batch: logits are bit-identical alone and in a crowd of 32 joining at different steps", async () => {
  await crowdCheck("f32");
});

test("batch: with bf16 KV caches too; their logits are close to f32's, not equal", async () => {
  const f32 = await crowdCheck("f32");
  const bf16 = await crowdCheck("bf16");
  let diff = 0;
  let equalRows = 0;
  f32.forEach((r, i) =>
    r.logits.forEach((l, s) => {
      const m = bf16[i].logits[s];
      if (m === undefined) return;
      if (bits(l).equals(bits(m))) equalRows++;
      l.forEach((x, j) => (diff = Math.max(diff, Math.abs(x - m[j]))));
    }),
  );
  assert.ok(equalRows < 32, `${equalRows} logits rows equal: the bf16 caches were not used`);
  assert.ok(diff < 1e-3, `bf16 caches moved a logit by ${diff}`);
  const engine = new BatchEngine(decoder, { kvCache: "bf16" });
  assert.throws(
    () => engine.submit({ prompt: [{ ids: Int32Array.of(1, 2) }], kvCache: "f32" }),
    /KV caches are bf16/,
  );
});

test("batch: one-position prompts prefill alone; longer ones together, within prefillPositions", async () => {
  const rng = new Rng(12);
  const ps = [1, 5, 1, 1, 2, 30, 1, 9, 30, 40].map((n) =>
    Int32Array.from({ length: n }, () => 1 + rng.int(tokenizer.vocabSize - 1)),
  );
  const engine = new BatchEngine(decoder, { prefillPositions: 45 });
  const alone: Run[] = [];
  for (const p of ps) alone.push(await run(engine, p, 4));
  const groups: [number, number][] = [];
  engine.onPrefill = (requests, positions) => groups.push([requests, positions]);
  const crowd = await Promise.all(ps.map((p) => run(engine, p, 4)));
  // A one-position prompt ends a group and goes alone; 9 + 30 fit in 45 positions, 40 more do not.
  assert.deepEqual(groups, [
    [1, 1],
    [1, 5],
    [1, 1],
    [1, 1],
    [2, 32],
    [1, 1],
    [2, 39],
    [1, 40],
  ]);
  crowd.forEach((c, i) =>
    c.logits.forEach((l, s) =>
      assert.ok(
        bits(l).equals(bits(alone[i].logits[s])),
        `request ${i} (${ps[i].length} positions), step ${s}`,
      ),
    ),
  );
});

/** Each prompt's logits, 6 steps, bit-identical alone and with the others at once. */
async function aloneEqualsCrowd(d: LlamaForCausalLM, ps: Int32Array[]): Promise<void> {
  const engine = new BatchEngine(d);
  const alone: Run[] = [];
  for (const p of ps) alone.push(await run(engine, p, 6));
  const crowd = await Promise.all(ps.map((p) => run(engine, p, 6)));
  crowd.forEach((c, i) =>
    c.logits.forEach((l, s) =>
      assert.ok(bits(l).equals(bits(alone[i].logits[s])), `request ${i}, step ${s}`),
    ),
  );
}

test("batch: bf16 weights are batch-invariant too", async () => {
  const d = new LlamaForCausalLM(decoder.config, new Rng(5));
  d.model.embed_tokens.weight.data.set(decoder.model.embed_tokens.weight.data);
  d.useBf16Weights();
  await aloneEqualsCrowd(d, prompts(6, 9));
});

// Several rows run q/k/v and gate/up as one product each (fused panels); biases are added after the split.
test("batch: biases are batch-invariant too (fused products)", async () => {
  const d = new LlamaForCausalLM({ ...decoder.config, attention_bias: true, mlp_bias: true }, new Rng(6));
  d.model.embed_tokens.weight.data.set(decoder.model.embed_tokens.weight.data);
  for (const p of d.parameters())
    if (p.shape.length === 1) p.data.forEach((_, i) => (p.data[i] = 0.02 * (i % 5) - 0.04));
  await aloneEqualsCrowd(d, prompts(6, 10));
});

test("batch: text, stop strings and finish reasons match generate()", async () => {
  const engine = new BatchEngine(decoder, { tokenizer });
  const prompt = [{ ids: prompts(1, 3)[0] }];
  const want: string[] = [];
  for await (const t of generate(decoder, prompt, tokenizer, { maxNewTokens: 12 })) want.push(t.text);
  const stop = want.join("").slice(3, 5);
  for (const o of [
    { maxNewTokens: 12 },
    { maxNewTokens: 12, stop: [stop] },
    { maxNewTokens: 12, stopTokenIds: [] },
  ]) {
    const a: string[] = [];
    const sa: Record<string, unknown> = {};
    for await (const t of generate(decoder, prompt, tokenizer, o, sa)) a.push(t.text);
    const b: string[] = [];
    const sb: Record<string, unknown> = {};
    for await (const t of engine.submit({ prompt, ...o }, sb)) b.push(t.text);
    assert.deepEqual(b, a, JSON.stringify(o));
    assert.equal(sb.finishReason, sa.finishReason);
    assert.equal(sb.generated, sa.generated);
  }
});

test("batch: the queue is bounded, a context too long fails at submit, a leaving client frees its row", async () => {
  const engine = new BatchEngine(decoder, { maxActive: 1, maxQueue: 1 });
  const [p] = prompts(1, 4);
  assert.throws(
    () => engine.submit({ prompt: [{ ids: new Int32Array(120) }], maxNewTokens: 20 }),
    ContextLengthError,
  );
  const a = engine.submit({ prompt: [{ ids: p }], maxNewTokens: 50 });
  const b = engine.submit({ prompt: [{ ids: p }], maxNewTokens: 3 });
  assert.throws(() => engine.submit({ prompt: [{ ids: p }], maxNewTokens: 3 }), QueueFullError);
  assert.equal(engine.queueDepth, 2);
  // a leaves after two tokens; b then gets the row and finishes.
  let n = 0;
  for await (const t of a) if (t.id >= 0 && ++n === 2) break;
  const got: number[] = [];
  for await (const t of b) got.push(t.id);
  assert.equal(got.length, 3);
  assert.equal(engine.activeRows, 0);
  // An aborted signal ends a waiting request without a token.
  const ctl = new AbortController();
  ctl.abort();
  const s: Record<string, unknown> = {};
  const none: number[] = [];
  for await (const t of engine.submit({ prompt: [{ ids: p }], maxNewTokens: 3, signal: ctl.signal }, s))
    none.push(t.id);
  assert.deepEqual(none, []);
  assert.equal(s.finishReason, "aborted");
});

test("batch: a kept KV cache, dirty past its length, gives the bits of a fresh one", async () => {
  const [long, short] = prompts(2, 11);
  const engine = new BatchEngine(decoder, { maxActive: 4 });
  await run(engine, long, 40); // leaves a cache written up to ~70 positions
  assert.equal(engine.caches.size, 1);
  const reused = await run(engine, short, 20);
  assert.equal(engine.caches.size, 1, "the short request took the kept cache and gave it back");
  const fresh = await run(new BatchEngine(decoder), short, 20);
  assert.deepEqual(reused.ids, fresh.ids);
  fresh.logits.forEach((l, i) => assert.ok(bits(reused.logits[i]).equals(bits(l)), `logits of token ${i}`));
});

test("KVCachePool: the smallest kept cache that fits, emptied; capacities rounded up; bounded", () => {
  const pool = new KVCachePool(decoder.config, 2, "f32", 2 * 2 ** 20);
  const a = pool.take(70);
  assert.equal(a.capacity, 128);
  const b = pool.take(10);
  assert.equal(b.capacity, 64);
  a.length = b.length = 9;
  pool.give(a);
  pool.give(b);
  assert.equal(pool.take(20), b, "the smaller one that fits");
  assert.equal(b.length, 0);
  assert.equal(pool.take(100), a);
  assert.notEqual(pool.take(100), a, "nothing kept: a new cache");
  // At most 2 caches (the oldest goes), and none past maxBytes (512 bytes a position here: 2 MiB is 4,096).
  for (let i = 0; i < 3; i++) pool.give(pool.take(64));
  assert.equal(pool.size, 1, "one cache, taken and given back");
  const other = () => new KVCachePool(decoder.config, 1).take(64);
  const [c1, c2] = [other(), other()];
  pool.give(c1);
  pool.give(c2);
  assert.equal(pool.size, 2);
  assert.equal(
    pool.take(64),
    c1,
    "the loop's cache (kept first) went when c2 came: c1 is the first that fits",
  );
  assert.equal(pool.size, 1);
  assert.equal(pool.take(64), c2);
  const big = new KVCachePool(decoder.config, 1).take(4100);
  pool.give(big);
  assert.equal(pool.size, 0);
  assert.notEqual(pool.take(4100), big, "a cache past maxBytes is not kept");
});
