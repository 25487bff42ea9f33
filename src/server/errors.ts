// Request errors with their HTTP status, and the status of any error a route throws: the caller's fault
// (bad request, context too long, queue full) versus our own failure.
import { EngineClosedError, QueueFullError } from "../infer/batch.js";
import { ContextLengthError } from "../infer/generate.js";
import { RequestError } from "../infer/pipeline.js";

/** A request error with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The request field at fault (OpenAI's error "param"). */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** Seconds a client refused for a full queue should wait (Retry-After). */
export const RETRY_AFTER_S = 1;

export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof QueueFullError) return 429;
  if (e instanceof EngineClosedError) return 503;
  if (e instanceof ContextLengthError) return 413;
  if (e instanceof RequestError) return 400;
  const code = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" && code >= 400 && code < 600 ? code : 500;
}

/** The message a client sees ("request: " prefixes are for logs). */
export function messageOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/^request: /, "");
}
