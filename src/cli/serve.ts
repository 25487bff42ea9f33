// `refrag serve`: the HTTP server with the demo page (src/server/app.ts).
import { basename, join } from "node:path";
import type { Command } from "commander";
import { RefragPipeline } from "../infer/pipeline.js";
import { loadRefrag } from "../models/load.js";
import { vectorCacheFor } from "../rag/vectors.js";
import { Tokenizer } from "../tokenizer/index.js";
import { port } from "./args.js";

/** Loads a checkpoint (and an index), starts the server and closes it cleanly on SIGINT / SIGTERM. */
export async function serveModel(o: {
  model: string;
  index: string | null;
  host: string;
  port: number;
  log?: boolean;
}): Promise<{ address: string; passages: number }> {
  const model = await loadRefrag(o.model);
  const tokenizer = Tokenizer.fromFile(join(o.model, "tokenizer.json"));
  // Fastify and LanceDB load only for the commands that serve.
  const [{ buildServer }, { PassageIndex }] = await Promise.all([
    import("../server/app.js"),
    import("../retrieval/index.js"),
  ]);
  // Vectors stored with the index (`refrag index build --model`) are read, never recomputed; passages a
  // request brings are encoded once and kept in memory (least recently used dropped).
  const cache = vectorCacheFor(model, o.index);
  const pipeline = new RefragPipeline(model, tokenizer, cache);
  const index = o.index === null ? null : await PassageIndex.open(o.index);
  const app = buildServer({
    pipeline,
    index,
    modelName: basename(o.model),
    logger: o.log ?? false,
    encodedPassages: () => cache.encoded,
  });
  const address = await app.listen({ host: o.host, port: o.port });
  const close = () => {
    void app.close().then(() => {
      index?.close();
      process.exit(0);
    });
  };
  process.once("SIGINT", close);
  process.once("SIGTERM", close);
  return { address, passages: index === null ? 0 : await index.count() };
}

export function registerServeCommands(program: Command): void {
  program
    .command("serve")
    .description(
      "HTTP server: the demo page at /, OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/models, POST /v1/answer (streamed), POST /v1/retrieve, GET /metrics, GET /health",
    )
    .requiredOption("--model <dir>", "REFRAG checkpoint folder (with tokenizer.json)")
    .option("--index <dir>", "passage index from `refrag index build` (else requests bring their passages)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0 picks a free one)", "8080")
    .option("--log", "log every request", false)
    .action(async (o: { model: string; index?: string; host: string; port: string; log: boolean }) => {
      const { address, passages } = await serveModel({
        model: o.model,
        index: o.index ?? null,
        host: o.host,
        port: port("--port", o.port),
        log: o.log,
      });
      console.log(
        `refrag: serving ${o.model}${passages > 0 ? ` with ${passages} passages` : ""} at ${address}`,
      );
    });
}
