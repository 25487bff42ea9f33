// Live ingestion over HTTP: POST /v1/documents adds or replaces whole documents in the server's passage
// store while it answers. Behind a bearer token (no token configured: the route does not exist, 404).
//
//   POST /v1/documents   Authorization: Bearer TOKEN
//                        {documents: [{id, title, text, source?, meta?}], all_or_nothing?: boolean}
//   -> 200 {object: "ingestion", documents, passages, removed, failed: [{index, id, error}]}
//
// Documents are cut into passages with the corpus's cutter, given the served encoder's chunk vectors (and
// dense embeddings when the server has an embedder) and written as one transaction (src/store/ingest.ts):
// every replica on the same store sees all of them at once, or none. A document that cannot be used is
// reported in `failed` and left out; with all_or_nothing one such document means nothing is written (400).
// Encoding runs on the server's thread: answers pause while a request's documents are encoded (the body
// size bounds that time).
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { ingestParsed, parseDocumentList, type ChunkEncoder, type PassageEmbedder } from "../store/ingest.js";
import { StoreUnavailableError, type PassageStore } from "../store/types.js";
import { HttpError, statusOf } from "./errors.js";
import { openAiError } from "./openai.js";

export interface IngestRouteOptions {
  store: PassageStore;
  /** The bearer token clients must send. */
  token: string;
  /** The served model's encoder: chunk vectors are stored with the passages (null: none). */
  chunkEncoder: ChunkEncoder | null;
  /** Dense embeddings stored with the passages (null: none). */
  embedder?: PassageEmbedder | null;
  /** Largest request body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Most documents per request (default 1000). */
  maxDocuments?: number;
  /** Longest document text in characters (default 1,000,000). */
  maxChars?: number;
}

export const DEFAULT_INGEST_BODY_BYTES = 8 << 20;
/** Shortest token accepted (a short token is guessable). */
export const MIN_TOKEN_CHARS = 16;

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Does the Authorization header carry the token (compared in constant time)? */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m !== null && timingSafeEqual(digest(m[1]), digest(token));
}

export function checkIngestToken(token: string): void {
  if (token.length < MIN_TOKEN_CHARS || /\s/.test(token))
    throw new Error(
      `the ingestion token must be at least ${MIN_TOKEN_CHARS} characters without spaces (e.g. \`openssl rand -hex 32\`)`,
    );
}

export function registerIngestRoute(app: FastifyInstance, o: IngestRouteOptions): void {
  checkIngestToken(o.token);
  const maxDocuments = o.maxDocuments ?? 1000;
  const maxChars = o.maxChars ?? 1_000_000;
  app.register(
    async (api) => {
      api.setErrorHandler((e, _req, reply) => {
        const status = e instanceof StoreUnavailableError ? 503 : statusOf(e);
        if (status === 401) void reply.header("www-authenticate", 'Bearer realm="refrag ingestion"');
        void reply.status(status).send(openAiError(e, status));
      });
      // The token is checked before the body is read (a client without it cannot make us parse 8 MiB).
      api.addHook("onRequest", async (req) => {
        if (!bearerMatches(req.headers.authorization, o.token))
          throw new HttpError(401, "ingestion needs the server's token: Authorization: Bearer <token>");
      });
      api.post(
        "/documents",
        { bodyLimit: o.maxBodyBytes ?? DEFAULT_INGEST_BODY_BYTES },
        async (req, reply) => {
          const body = req.body;
          if (typeof body !== "object" || body === null || Array.isArray(body))
            throw new HttpError(400, "the body must be a JSON object {documents: [...]}");
          const b = body as Record<string, unknown>;
          if (!Array.isArray(b.documents) || b.documents.length === 0)
            throw new HttpError(
              400,
              "documents must be a non-empty list of {id, title, text, source?, meta?}",
              "documents",
            );
          if (b.documents.length > maxDocuments)
            throw new HttpError(
              413,
              `${b.documents.length} documents; the limit is ${maxDocuments} per request`,
              "documents",
            );
          const aon = b.all_or_nothing ?? false;
          if (typeof aon !== "boolean")
            throw new HttpError(400, "all_or_nothing must be a boolean", "all_or_nothing");
          let report;
          try {
            report = await ingestParsed(o.store, parseDocumentList(b.documents, maxChars), {
              chunkEncoder: o.chunkEncoder,
              embedder: o.embedder ?? null,
              allOrNothing: aon,
            });
          } catch (e) {
            if (e instanceof StoreUnavailableError) throw e;
            throw new HttpError(500, `nothing was written: ${e instanceof Error ? e.message : String(e)}`);
          }
          const failed = report.failures.map((f) => ({ index: f.line - 1, id: f.id, error: f.error }));
          if (aon && failed.length > 0) {
            const e = new HttpError(
              400,
              `${failed.length} of ${b.documents.length} documents cannot be used, so nothing was written (item ${failed[0].index}: ${failed[0].error})`,
              "documents",
            );
            return reply.status(400).send({ ...openAiError(e, 400), failed });
          }
          return {
            object: "ingestion",
            documents: report.documents,
            passages: report.passages,
            removed: report.removed,
            failed,
          };
        },
      );
    },
    { prefix: "/v1" },
  );
}
