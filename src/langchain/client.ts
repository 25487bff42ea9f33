// The HTTP client both LangChain classes share: a REFRAG server's OpenAI-compatible chat endpoint
// (streamed or not) and its retrieval endpoint, with OpenAI-shaped errors turned into exceptions.

export interface ChatMessageIn {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The `refrag` extension of a request (src/server/openai.ts). */
export interface RefragRequestExtension {
  passages?: { id?: string; title?: string; text: string }[];
  k?: number;
  selection?: { mode: string; fraction?: number };
}

export interface ChatRequest {
  model: string;
  messages: ChatMessageIn[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  seed?: number;
  refrag?: RefragRequestExtension;
}

/** One parsed chunk of a streamed chat completion. */
export interface ChatChunk {
  choices: { delta: { content?: string }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  refrag?: Record<string, unknown>;
}

export interface ChatResponse {
  choices: { message: { content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  refrag: Record<string, unknown>;
}

async function failure(res: Response): Promise<Error> {
  const text = await res.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { error: { message: string } }).error.message ?? text;
  } catch {
    // not JSON: keep the text
  }
  return new Error(`refrag server: ${res.status} ${message}`);
}

export async function postJson<T>(url: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** Streams a chat completion's chunks (OpenAI's `data:` lines, up to `[DONE]`). */
export async function* streamChat(
  baseUrl: string,
  req: ChatRequest,
  signal?: AbortSignal,
): AsyncGenerator<ChatChunk> {
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...req, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok || res.body === null) throw await failure(res);
  const decoder = new TextDecoder();
  let buf = "";
  for await (const part of res.body) {
    buf += decoder.decode(part as Uint8Array, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const data = buf.slice(0, cut).replace(/^data: /, "");
      buf = buf.slice(cut + 2);
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data) as ChatChunk & { error?: { message: string } };
      if (chunk.error !== undefined) throw new Error(`refrag server: ${chunk.error.message}`);
      yield chunk;
    }
  }
}
