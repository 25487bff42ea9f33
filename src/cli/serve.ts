// `refrag serve`: the HTTP server with the demo page (src/server/app.ts).
import { basename } from "node:path";
import type { Command } from "commander";
import { RefragPipeline } from "../infer/pipeline.js";
import { ChunkVectorCache, weightsId } from "../infer/vector_cache.js";
import { loadRefrag } from "../models/load.js";
import { PassageIndex } from "../retrieval/index.js";
import { buildServer } from "../server/app.js";
import { Tokenizer } from "../tokenizer/index.js";

export function registerServeCommands(program: Command): void {
  program
    .command("serve")
    .description(
      "HTTP server: the demo page at /, POST /v1/answer (streamed), POST /v1/retrieve, GET /health",
    )
    .requiredOption("--model <dir>", "REFRAG checkpoint folder (with tokenizer.json)")
    .option("--index <dir>", "passage index from `refrag index build` (else requests bring their passages)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0 picks a free one)", "8080")
    .option("--log", "log every request", false)
    .action(async (o: { model: string; index?: string; host: string; port: string; log: boolean }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error(`--port must be an integer in [0, 65535], got "${o.port}"`);
      const model = await loadRefrag(o.model);
      const tokenizer = Tokenizer.fromFile(`${o.model}/tokenizer.json`);
      // Passage vectors are computed once per passage and kept in memory for the server's lifetime.
      const cache = new ChunkVectorCache(null, weightsId(model.encoder), model.chunkSize);
      const pipeline = new RefragPipeline(model, tokenizer, cache);
      const index = o.index === undefined ? null : await PassageIndex.open(o.index);
      const app = buildServer({ pipeline, index, modelName: basename(o.model), logger: o.log });
      const address = await app.listen({ host: o.host, port });
      console.log(
        `refrag: serving ${o.model}${index ? ` with ${await index.count()} passages` : ""} at ${address}`,
      );
      const close = () => {
        void app.close().then(() => {
          index?.close();
          process.exit(0);
        });
      };
      process.once("SIGINT", close);
      process.once("SIGTERM", close);
    });
}
