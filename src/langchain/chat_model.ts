// A LangChain.js chat model over a REFRAG server (its OpenAI-compatible endpoint), with token streaming.
// Passages come from the server's index (searched with the conversation's questions) unless a call passes
// them, e.g. the documents a RefragRetriever returned; each answer's response_metadata.refrag says which
// passages were read and which of their chunks were expanded.
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import type { DocumentInterface } from "@langchain/core/documents";
import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BaseChatModelParams,
} from "@langchain/core/language_models/chat_models";
import { AIMessage, AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import { ChatGenerationChunk, type ChatResult } from "@langchain/core/outputs";
import { postJson, streamChat, type ChatMessageIn, type ChatRequest, type ChatResponse } from "./client.js";

export interface RefragChatCallOptions extends BaseChatModelCallOptions {
  /** Passages to read instead of the server's retrieval (strings or LangChain documents). */
  passages?: (string | DocumentInterface)[];
  /** Passages the server retrieves (default 5). */
  k?: number;
  /** Which chunks to expand to raw tokens: mode none | all | random | perplexity-desc | perplexity-asc | policy | query. */
  selection?: { mode: string; fraction?: number };
}

export interface RefragChatParams extends BaseChatModelParams {
  /** The server, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** The served model's name (GET /v1/models). */
  model: string;
  maxTokens?: number;
  /** 0 = greedy (the default here). */
  temperature?: number;
  topP?: number;
  seed?: number;
}

function role(m: BaseMessage): ChatMessageIn["role"] {
  const t = m.getType();
  if (t === "human") return "user";
  if (t === "ai") return "assistant";
  if (t === "system") return "system";
  throw new Error(`RefragChatModel: ${t} messages are not supported (human, ai and system only)`);
}

function text(m: BaseMessage): string {
  if (typeof m.content === "string") return m.content;
  return m.content.map((p) => (p.type === "text" && typeof p.text === "string" ? p.text : "")).join("");
}

export class RefragChatModel extends BaseChatModel<RefragChatCallOptions> {
  baseUrl: string;
  model: string;
  maxTokens?: number;
  temperature: number;
  topP?: number;
  seed?: number;

  constructor(fields: RefragChatParams) {
    super(fields);
    this.baseUrl = fields.baseUrl.replace(/\/+$/, "");
    this.model = fields.model;
    this.maxTokens = fields.maxTokens;
    this.temperature = fields.temperature ?? 0;
    this.topP = fields.topP;
    this.seed = fields.seed;
  }

  _llmType(): string {
    return "refrag";
  }

  private request(messages: BaseMessage[], o: this["ParsedCallOptions"]): ChatRequest {
    const passages = o.passages?.map((p) =>
      typeof p === "string"
        ? { text: p }
        : {
            id: typeof p.metadata.id === "string" ? p.metadata.id : p.id,
            title: typeof p.metadata.title === "string" ? p.metadata.title : undefined,
            text: p.pageContent,
          },
    );
    return {
      model: this.model,
      messages: messages.map((m) => ({ role: role(m), content: text(m) })),
      max_tokens: this.maxTokens,
      temperature: this.temperature,
      top_p: this.topP,
      seed: this.seed,
      stop: o.stop,
      refrag: { passages, k: o.k, selection: o.selection },
    };
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    _runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    const res = await postJson<ChatResponse>(
      `${this.baseUrl}/v1/chat/completions`,
      this.request(messages, options),
      options.signal,
    );
    const content = res.choices[0].message.content;
    const message = new AIMessage({
      content,
      response_metadata: { finish_reason: res.choices[0].finish_reason, refrag: res.refrag },
      usage_metadata: {
        input_tokens: res.usage.prompt_tokens,
        output_tokens: res.usage.completion_tokens,
        total_tokens: res.usage.total_tokens,
      },
    });
    return { generations: [{ text: content, message }], llmOutput: { refrag: res.refrag } };
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    let refrag: Record<string, unknown> | undefined;
    for await (const c of streamChat(this.baseUrl, this.request(messages, options), options.signal)) {
      refrag = c.refrag ?? refrag;
      const choice = c.choices[0];
      const piece = choice?.delta.content ?? "";
      const last = choice?.finish_reason ?? null;
      if (piece === "" && last === null && c.usage === undefined) continue;
      const chunk = new ChatGenerationChunk({
        text: piece,
        message: new AIMessageChunk({
          content: piece,
          response_metadata: last === null ? {} : { finish_reason: last, refrag },
          usage_metadata:
            c.usage === undefined
              ? undefined
              : {
                  input_tokens: c.usage.prompt_tokens,
                  output_tokens: c.usage.completion_tokens,
                  total_tokens: c.usage.total_tokens,
                },
        }),
      });
      yield chunk;
      if (piece !== "") await runManager?.handleLLMNewToken(piece);
    }
  }
}
