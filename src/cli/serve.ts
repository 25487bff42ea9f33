// `refrag serve`: the HTTP server with the demo page (src/server/app.ts). One option selects the passage
// store: a LanceDB folder (this process owns it) or postgres://… (any number of replicas share it).
import { basename, join } from "node:path";
import type { Command } from "commander";
import { RefragPipeline } from "../infer/pipeline.js";
import { KV_CACHE_DTYPES, type KVCacheDtype } from "../models/llama.js";
import { loadRefrag } from "../models/load.js";
import { chunkEncoderFor, checkNotVectorFolder, legacyVectorsNote, vectorCacheFor } from "../rag/vectors.js";
import { RETRIEVAL_MODES, type RetrievalMode } from "../retrieval/dense.js";
import { Tokenizer } from "../tokenizer/index.js";
import { choice, nonNegNumber, port } from "./args.js";
import { modelDirOrShipped } from "./model_dir.js";

/** Where the ingestion token comes from when --ingest-token is not given. */
export const INGEST_TOKEN_ENV = "REFRAG_INGEST_TOKEN";

export interface ServeOptions {
  model: string;
  /** A LanceDB index folder or a postgres:// store (null: requests bring their passages). */
  index: string | null;
  host: string;
  port: number;
  log?: boolean;
  /** Retrieval for questions without passages (default bm25; dense and hybrid need `embedder`). */
  retrieval?: RetrievalMode;
  /** Encoder checkpoint of the dense stage: dense / hybrid retrieval, and embeddings for ingested passages. */
  embedder?: string | null;
  /** Hybrid retrieval: the dense list's weight in rank fusion (default 1). */
  denseWeight?: number;
  /** Enables POST /v1/documents behind this bearer token. */
  ingestToken?: string | null;
  /** KV cache storage (default bf16; RagServiceOptions.kvCache). */
  kvCache?: KVCacheDtype;
}

/** Loads a checkpoint (and a store), starts the server and closes it cleanly on SIGINT / SIGTERM. */
export async function serveModel(o: ServeOptions): Promise<{ address: string; passages: number }> {
  const ingestToken = o.ingestToken ?? null;
  if (ingestToken !== null && o.index === null)
    throw new Error("ingestion (--ingest-token) needs a store to write to: give --index or --store");
  const retrieval = o.retrieval ?? "bm25";
  if (retrieval !== "bm25" && !o.embedder) throw new Error(`--retrieval ${retrieval} needs --embedder <dir>`);
  if (o.index !== null) checkNotVectorFolder(o.index);
  const model = await loadRefrag(o.model);
  const tokenizer = Tokenizer.fromFile(join(o.model, "tokenizer.json"));
  // Fastify, LanceDB and pg load only for the commands that serve.
  const [{ buildServer }, { openStore }, { loadEmbedder, retriever }] = await Promise.all([
    import("../server/app.js"),
    import("../store/index.js"),
    import("../retrieval/dense.js"),
  ]);
  const store = o.index === null ? null : await openStore(o.index);
  if (store?.kind === "lancedb") {
    const note = legacyVectorsNote(o.index!);
    if (note !== null) console.error(`refrag: ${note}`);
  }
  const embedder = o.embedder ? await loadEmbedder(o.embedder) : null;
  const index =
    store === null
      ? null
      : {
          dir: store.location,
          search: retriever(store, retrieval, embedder, { denseWeight: o.denseWeight }),
          count: () => store.count(),
        };
  // Chunk vectors stored with the passages are read, never recomputed; passages a request brings are
  // encoded once and kept in memory (least recently used dropped).
  const cache = vectorCacheFor(model, store);
  const pipeline = new RefragPipeline(model, tokenizer, cache);
  const app = buildServer({
    pipeline,
    index,
    modelName: basename(o.model),
    logger: o.log ?? false,
    encodedPassages: () => cache.encoded,
    kvCache: o.kvCache,
    ingest:
      store === null || ingestToken === null
        ? null
        : { store, token: ingestToken, chunkEncoder: chunkEncoderFor(model, tokenizer), embedder },
  });
  const address = await app.listen({ host: o.host, port: o.port });
  const close = () => {
    void app
      .close()
      .then(() => store?.close())
      .finally(() => process.exit(0));
  };
  process.once("SIGINT", close);
  process.once("SIGTERM", close);
  return { address, passages: store === null ? 0 : await store.count() };
}

export function registerServeCommands(program: Command): void {
  program
    .command("serve")
    .description(
      "HTTP server: the demo page at /, OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/models, POST /v1/answer (streamed), POST /v1/retrieve, POST /v1/documents (with a token), GET /metrics, GET /health",
    )
    .option("--model <dir>", "REFRAG checkpoint folder (default: the model shipped in assets/model)")
    .option(
      "--index <spec>",
      "passage store: an index folder from `refrag index build`, or postgres://… (else requests bring their passages)",
    )
    .option("--store <spec>", "same as --index")
    .option("--retrieval <mode>", "bm25, dense or hybrid (dense and hybrid need --embedder)", "bm25")
    .option(
      "--embedder <dir>",
      "dense-stage encoder: dense/hybrid retrieval and embeddings of ingested passages",
    )
    .option("--dense-weight <w>", "hybrid: weight of the dense list in rank fusion (full text: 1)", "1")
    .option(
      "--ingest-token <token>",
      `enable POST /v1/documents behind this bearer token (or set ${INGEST_TOKEN_ENV}; the option shows in ps)`,
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0 picks a free one)", "8080")
    .option("--log", "log every request", false)
    .option(
      "--kv-cache <dtype>",
      `KV cache storage: ${KV_CACHE_DTYPES.join(", ")} (bf16 halves what a decode step reads)`,
      "bf16",
    )
    .action(
      async (o: {
        model?: string;
        index?: string;
        store?: string;
        retrieval: string;
        embedder?: string;
        denseWeight: string;
        ingestToken?: string;
        host: string;
        port: string;
        log: boolean;
        kvCache: string;
      }) => {
        if (o.index !== undefined && o.store !== undefined) throw new Error("give one of --index or --store");
        const retrievalMode = choice("--retrieval", o.retrieval, RETRIEVAL_MODES);
        const token = o.ingestToken ?? process.env[INGEST_TOKEN_ENV] ?? null;
        const modelDir = modelDirOrShipped(o.model);
        const { address, passages } = await serveModel({
          model: modelDir,
          index: o.index ?? o.store ?? null,
          host: o.host,
          port: port("--port", o.port),
          log: o.log,
          retrieval: retrievalMode,
          kvCache: choice("--kv-cache", o.kvCache, KV_CACHE_DTYPES),
          embedder: o.embedder ?? null,
          denseWeight: nonNegNumber("--dense-weight", o.denseWeight),
          ingestToken: token === "" ? null : token,
        });
        console.log(
          `refrag: serving ${modelDir}${passages > 0 ? ` with ${passages} passages` : ""} at ${address}${token ? " (ingestion at POST /v1/documents)" : ""}`,
        );
      },
    );
}
