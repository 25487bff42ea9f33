// LangChain.js integration (needs the peer dependency @langchain/core): `refrag/langchain`.
export { RefragChatModel, type RefragChatCallOptions, type RefragChatParams } from "./chat_model.js";
export { RefragRetriever, type RefragRetrieverInput } from "./retriever.js";
