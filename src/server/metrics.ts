// Prometheus metrics (prom-client, a registry per server): requests by route and status, time to first
// token and time per output token, tokens generated, queue depth, active streams, and the decoder
// positions compression saved. Served at GET /metrics.
import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BatchEngine, EngineStats } from "../infer/batch.js";
import type { RagLayout } from "../rag/service.js";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "status">;
  readonly ttft: Histogram;
  readonly timePerToken: Histogram;
  readonly tokens: Counter;
  readonly positionsRead: Counter;
  readonly positionsSaved: Counter;
  readonly passagesEncoded: Counter;

  /** @param encoded passages encoded on the request path so far (the vector cache's count) */
  constructor(engine: BatchEngine, encoded: () => number = () => 0) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "refrag_requests_total",
      help: "HTTP requests by route and status code",
      labelNames: ["route", "status"],
      registers,
    });
    this.ttft = new Histogram({
      name: "refrag_time_to_first_token_seconds",
      help: "From the request's start (retrieval, chunk vectors, queue) to its first token",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.timePerToken = new Histogram({
      name: "refrag_time_per_output_token_seconds",
      help: "Mean time per output token after the first, per request",
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: "refrag_generated_tokens_total",
      help: "Answer tokens generated",
      registers,
    });
    this.positionsRead = new Counter({
      name: "refrag_decoder_prompt_positions_total",
      help: "Prompt positions the decoder read (question, chunk vectors, expanded chunks)",
      registers,
    });
    this.positionsSaved = new Counter({
      name: "refrag_decoder_positions_saved_total",
      help: "Prompt positions compression saved against reading every passage token",
      registers,
    });
    this.passagesEncoded = new Counter({
      name: "refrag_passages_encoded_total",
      help: "Passages whose chunk vectors were computed on the request path (not stored, not cached)",
      registers,
      collect() {
        this.reset();
        this.inc(encoded());
      },
    });
    new Gauge({
      name: "refrag_queue_depth",
      help: "Requests waiting for a decoder row",
      registers,
      collect() {
        this.set(engine.queueDepth);
      },
    });
    new Gauge({
      name: "refrag_active_streams",
      help: "Requests being decoded",
      registers,
      collect() {
        this.set(engine.activeRows);
      },
    });
  }

  /** One finished generation. */
  observe(layout: RagLayout, stats: Partial<EngineStats>, prepareMs = 0): void {
    const n = stats.generated ?? 0;
    if (stats.ttftMs !== undefined && n > 0) this.ttft.observe((prepareMs + stats.ttftMs) / 1000);
    if (n > 1 && stats.ttftMs !== undefined && stats.totalMs !== undefined)
      this.timePerToken.observe((stats.totalMs - stats.ttftMs) / 1000 / (n - 1));
    this.tokens.inc(n);
    this.positionsRead.inc(layout.positions);
    this.positionsSaved.inc(layout.fullPositions - layout.positions);
  }

  /** Counts every response by route and status, and serves /metrics. */
  register(app: FastifyInstance): void {
    app.addHook("onRequest", async (req, reply) => {
      const route = req.routeOptions.url ?? "unmatched";
      reply.raw.once("finish", () => this.requests.inc({ route, status: String(reply.raw.statusCode) }));
    });
    app.get("/metrics", async (_req, reply) =>
      reply.type(this.registry.contentType).send(await this.registry.metrics()),
    );
  }
}
