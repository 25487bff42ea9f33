// A LangChain.js retriever over the passage index: in-process (a PassageIndex, or anything with its
// search) or through a REFRAG server's POST /v1/retrieve. Documents carry the passage id, title and score
// in their metadata, which RefragChatModel passes back as the passages to read.
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import { Document } from "@langchain/core/documents";
import { BaseRetriever, type BaseRetrieverInput } from "@langchain/core/retrievers";
import type { Retriever } from "../rag/service.js";
import { postJson } from "./client.js";

export interface RefragRetrieverInput extends BaseRetrieverInput {
  /** An open passage index (in-process) … */
  index?: Pick<Retriever, "search">;
  /** … or a REFRAG server started with --index. */
  baseUrl?: string;
  /** Passages per query (default 5). */
  k?: number;
}

interface Hit {
  id: string;
  title: string;
  text: string;
  score: number;
}

export class RefragRetriever extends BaseRetriever {
  lc_namespace = ["refrag", "retrievers"];
  private readonly index?: Pick<Retriever, "search">;
  private readonly baseUrl?: string;
  readonly k: number;

  constructor(fields: RefragRetrieverInput) {
    super(fields);
    if ((fields.index === undefined) === (fields.baseUrl === undefined))
      throw new Error("RefragRetriever: give exactly one of index and baseUrl");
    this.index = fields.index;
    this.baseUrl = fields.baseUrl?.replace(/\/+$/, "");
    this.k = fields.k ?? 5;
  }

  override async _getRelevantDocuments(
    query: string,
    _runManager?: CallbackManagerForRetrieverRun,
  ): Promise<Document[]> {
    const hits =
      this.index !== undefined
        ? await this.index.search(query, this.k)
        : (await postJson<{ passages: Hit[] }>(`${this.baseUrl}/v1/retrieve`, { question: query, k: this.k }))
            .passages;
    return hits.map(
      (h) =>
        new Document({
          id: h.id,
          pageContent: h.text,
          metadata: { id: h.id, title: h.title, score: h.score },
        }),
    );
  }
}
