// The API target: mutated request bodies against the real server (a tiny REFRAG model with a policy on
// the shipped tokenizer, a small passage index), through Fastify's inject. A 500, or an "error" event in
// an answer stream, is a server failure; a 4xx must carry a message; an invalid field must not be accepted.
import { join } from "node:path";
import { Rng } from "../engine/random.js";
import { refragConfigFor, SHAPES } from "../models/presets.js";
import { parseRefragConfig } from "../io/config.js";
import { ChunkVectorCache, weightsId } from "../infer/vector_cache.js";
import { RefragPipeline } from "../infer/pipeline.js";
import { policyConfig } from "../models/policy.js";
import { RefragModel } from "../models/refrag.js";
import { PassageIndex } from "../retrieval/index.js";
import { buildServer } from "../server/app.js";
import { Tokenizer } from "../tokenizer/index.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";
import { mutateBytes, mutateJson } from "./mutate.js";
import type { RunCase } from "./targets.js";

const PASSAGES = [
  {
    id: "a#0",
    doc_id: "a",
    title: "Lighthouses",
    text: "A lighthouse guides ships at night with a bright lamp.",
  },
  {
    id: "b#0",
    doc_id: "b",
    title: "Volcanoes",
    text: "Lava flows from an erupting volcano down its slopes.",
  },
  { id: "c#0", doc_id: "c", title: "Bees", text: "Bees carry pollen between flowers and make honey." },
];

const VALID_BODIES: Record<string, unknown>[] = [
  {
    question: "What guides ships?",
    passages: ["A lighthouse guides ships.", "Bees make honey."],
    max_tokens: 4,
  },
  { question: "Where does lava flow?", k: 2, max_tokens: 3, selection: { mode: "policy", fraction: 0.5 } },
  {
    question: "And bees?",
    history: [{ question: "What guides ships?", answer: "A lighthouse." }],
    passages: ["Bees carry pollen."],
    selection: { mode: "random", fraction: 0.25 },
    temperature: 0.7,
    top_p: 0.9,
    seed: 5,
    stop: ["."],
    max_tokens: 4,
  },
  { question: "honey", passages: ["x ".repeat(200)], selection: { mode: "perplexity-desc" }, max_tokens: 2 },
];

/** True when a field of an /v1/answer body is certainly out of its documented range (null means default). */
function invalidBody(body: unknown): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return true;
  const b = body as Record<string, unknown>;
  const bad = (v: unknown, ok: (v: unknown) => boolean) => v !== undefined && v !== null && !ok(v);
  const int = (lo: number, hi: number) => (v: unknown) =>
    Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  const num = (lo: number, hi: number) => (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi;
  const sel = b.selection;
  const selBad =
    sel !== undefined &&
    sel !== null &&
    (typeof sel !== "object" ||
      Array.isArray(sel) ||
      bad((sel as Record<string, unknown>).fraction, num(0, 1)));
  return (
    typeof b.question !== "string" ||
    b.question.trim() === "" ||
    bad(b.max_tokens, int(1, 16)) ||
    bad(b.k, int(1, 32)) ||
    bad(b.seed, int(0, 2 ** 31 - 1)) ||
    bad(b.temperature, num(0, 10)) ||
    bad(b.top_p, (v) => num(0, 1)(v) && v !== 0) ||
    bad(b.passages, (v) => Array.isArray(v) && v.every((p) => typeof p === "string")) ||
    selBad
  );
}

export async function apiTarget(dir: string): Promise<RunCase> {
  const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
  const shape = {
    ...SHAPES.shipped,
    vocab: tokenizer.vocabSize,
    decoder: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24 },
    encoder: { hidden: 8, layers: 1, heads: 2, intermediate: 16 },
  };
  const config = parseRefragConfig({ ...refragConfigFor(shape, 4, 256), policy: policyConfig(8, 8, 1, 2) });
  const model = new RefragModel(config, new Rng(1));
  const cache = new ChunkVectorCache(null, weightsId(model.encoder), model.chunkSize, "F32", 1000, 8 << 20);
  const index = await PassageIndex.build(join(dir, "index"), PASSAGES);
  const app = buildServer({
    pipeline: new RefragPipeline(model, tokenizer, cache),
    index,
    limits: { maxNewTokens: 16, maxQueue: 2 },
  });
  return async (_i, rng) => {
    const url = rng.int(5) === 0 ? "/v1/retrieve" : "/v1/answer";
    const base = VALID_BODIES[rng.int(VALID_BODIES.length)];
    let payload: string;
    let label: string;
    let invalid = false;
    const r = rng.int(10);
    if (r === 0) {
      const m = mutateBytes(rng, new TextEncoder().encode(JSON.stringify(base)));
      payload = Buffer.from(m.value).toString("latin1");
      label = `bytes: ${m.label}`;
    } else if (r === 1) {
      const big = {
        ...base,
        passages: Array.from({ length: 60 }, () => "word ".repeat(3000 + rng.int(2000))),
      };
      payload = JSON.stringify(big);
      label = `${payload.length} bytes of passages`;
    } else {
      const rounds = 1 + rng.int(3);
      let body: unknown = base;
      const labels: string[] = [];
      for (let j = 0; j < rounds; j++) {
        const m = mutateJson(rng, body);
        body = m.value;
        labels.push(m.label);
      }
      payload = JSON.stringify(body);
      // Judge what is sent: JSON has no Infinity or NaN (they go out as null, which means "default").
      invalid = url === "/v1/answer" && invalidBody(JSON.parse(payload));
      label = labels.join("; ");
    }
    const res = await app.inject({
      method: "POST",
      url,
      payload,
      headers: { "content-type": "application/json" },
    });
    if (res.statusCode >= 500)
      return { outcome: "http500", label, detail: `${res.statusCode} ${res.body.slice(0, 200)}` };
    if (res.statusCode >= 400) {
      let msg = "";
      try {
        msg = String((res.json() as { error?: unknown }).error ?? "");
      } catch {
        /* not JSON */
      }
      return msg.length > 0
        ? { outcome: "clear", label, detail: `${res.statusCode} ${msg.slice(0, 200)}` }
        : { outcome: "unclear", label, detail: `${res.statusCode} ${res.body.slice(0, 200)}` };
    }
    if (/^event: error$/m.test(res.body))
      return { outcome: "http500", label, detail: res.body.slice(0, 300) };
    if (invalid) return { outcome: "garbage", label, detail: "an out-of-range field was accepted" };
    return { outcome: "accepted", label };
  };
}
