// bench:serve's load generator, run in a worker thread (bench/serve.ts starts it) so that the server's
// thread does only serving, as it would with its clients on other machines: the streamed chat completions
// of one batch of requests, sent together, each timed at the client. Messages: in {url, bodies}, out
// {results, wallMs} (wallMs from the first request sent to the last stream's end).
import { parentPort } from "node:worker_threads";

export interface StreamResult {
  ok: boolean;
  text: string;
  ttftMs: number;
  tpotMs: number | null;
  tokens: number;
}

export interface ClientBatch {
  url: string;
  bodies: object[];
}

export interface ClientReply {
  results: StreamResult[];
  wallMs: number;
}

/** One streamed chat completion, timed at the client. */
async function stream(url: string, body: object): Promise<StreamResult> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "bench",
        stream: true,
        stream_options: { include_usage: true },
        ...body,
      }),
    });
    if (res.status !== 200 || res.body === null)
      return { ok: false, text: await res.text(), ttftMs: 0, tpotMs: null, tokens: 0 };
    const decoder = new TextDecoder();
    let buf = "";
    let text = "";
    let first = 0;
    let tokens = 0;
    let done = false;
    for await (const part of res.body) {
      buf += decoder.decode(part as Uint8Array, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, cut).replace(/^data: /, "");
        buf = buf.slice(cut + 2);
        if (line === "[DONE]") {
          done = true;
          continue;
        }
        const c = JSON.parse(line) as {
          choices: { delta: { content?: string } }[];
          usage?: { completion_tokens: number };
          error?: unknown;
        };
        if (c.error !== undefined)
          return { ok: false, text: JSON.stringify(c.error), ttftMs: 0, tpotMs: null, tokens: 0 };
        const piece = c.choices[0]?.delta.content ?? "";
        if (piece !== "" && first === 0) first = performance.now();
        text += piece;
        if (c.usage !== undefined) tokens = c.usage.completion_tokens;
      }
    }
    const end = performance.now();
    if (first === 0) first = end;
    return {
      ok: done,
      text,
      ttftMs: first - t0,
      tpotMs: tokens > 1 ? (end - first) / (tokens - 1) : null,
      tokens,
    };
  } catch (e) {
    return { ok: false, text: String(e), ttftMs: 0, tpotMs: null, tokens: 0 };
  }
}

parentPort?.on("message", (m: ClientBatch) => {
  const t0 = performance.now();
  void Promise.all(m.bodies.map((b) => stream(m.url, b))).then((results) => {
    const reply: ClientReply = { results, wallMs: performance.now() - t0 };
    parentPort!.postMessage(reply);
  });
});
