// The Hugging Face tokenizer.json format: types for the parts we read, validation with clear errors, and
// the builder for our byte-level BPE layout (the layout Python `tokenizers` writes for ByteLevelBPETokenizer).

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BpeModelJson {
  type: "BPE";
  dropout: number | null;
  unk_token: string | null;
  continuing_subword_prefix: string | null;
  end_of_word_suffix: string | null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges?: boolean;
  vocab: Record<string, number>;
  /** "left right" strings (every tokenizers version) or [left, right] pairs (tokenizers >= 0.20). */
  merges: string[] | [string, string][];
}

export interface TokenizerJson {
  version: string;
  truncation: JsonValue;
  padding: JsonValue;
  added_tokens: AddedTokenJson[];
  normalizer: JsonObject | null;
  pre_tokenizer: JsonObject | null;
  post_processor: JsonObject | null;
  decoder: JsonObject | null;
  model: JsonObject;
}

/** A tokenizer.json that cannot be used; the message names the file and the offending field. */
export class TokenizerFormatError extends Error {
  override name = "TokenizerFormatError";
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 31;
}

/** Check the structure of a parsed tokenizer.json; `where` (a file path or "object") goes into errors. */
export function validateTokenizerJson(value: unknown, where = "tokenizer.json"): TokenizerJson {
  const fail = (msg: string): never => {
    throw new TokenizerFormatError(`${where}: ${msg}`);
  };
  if (!isObject(value)) fail(`expected a JSON object at the top level, got ${describe(value)}`);
  const obj = value as JsonObject;
  const model = obj.model;
  if (!isObject(model)) fail(`"model" must be an object, got ${describe(model)}`);
  const m = model as JsonObject;

  const added = obj.added_tokens ?? [];
  if (!Array.isArray(added)) fail(`"added_tokens" must be an array, got ${describe(added)}`);
  const addedTokens: AddedTokenJson[] = (added as JsonValue[]).map((t, i) => {
    if (!isObject(t)) return fail(`added_tokens[${i}] must be an object`);
    if (!isId(t.id))
      return fail(`added_tokens[${i}].id must be a non-negative integer, got ${describe(t.id)}`);
    if (typeof t.content !== "string" || t.content.length === 0)
      return fail(`added_tokens[${i}].content must be a non-empty string`);
    return {
      id: t.id,
      content: t.content,
      single_word: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: t.normalized === true,
      special: t.special === true,
    };
  });

  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"] as const) {
    const v = obj[key];
    if (v !== undefined && v !== null && !isObject(v))
      fail(`"${key}" must be an object or null, got ${describe(v)}`);
  }

  if (m.type === "BPE" || (m.type === undefined && m.merges !== undefined)) validateBpeModel(m, fail);
  else if (m.type === undefined && m.vocab === undefined) fail(`"model" has neither "type" nor "vocab"`);
  checkIdsDense(m, addedTokens, fail);

  return {
    version: typeof obj.version === "string" ? obj.version : "1.0",
    truncation: obj.truncation ?? null,
    padding: obj.padding ?? null,
    added_tokens: addedTokens,
    normalizer: (obj.normalizer as JsonObject | undefined) ?? null,
    pre_tokenizer: (obj.pre_tokenizer as JsonObject | undefined) ?? null,
    post_processor: (obj.post_processor as JsonObject | undefined) ?? null,
    decoder: (obj.decoder as JsonObject | undefined) ?? null,
    model: m,
  };
}

/**
 * Token ids index tables (id → token, id → bytes), so they must be dense enough: a single id of 2^31 - 1
 * would ask for a table of two billion entries. The largest id must be below twice the number of tokens
 * plus 256 (room for reserved ranges, not for a lone far-away id).
 */
function checkIdsDense(m: JsonObject, added: AddedTokenJson[], fail: (msg: string) => never): void {
  const ids = new Set<number>();
  let maxId = -1;
  let maxWhere = "";
  const see = (id: number, where: string) => {
    ids.add(id);
    if (id > maxId) [maxId, maxWhere] = [id, where];
  };
  if (isObject(m.vocab))
    for (const [tok, id] of Object.entries(m.vocab)) {
      if (!isId(id))
        fail(`model.vocab[${JSON.stringify(tok)}] must be a non-negative integer id, got ${describe(id)}`);
      see(id as number, `model.vocab[${JSON.stringify(tok)}]`);
    }
  else if (Array.isArray(m.vocab)) see(m.vocab.length - 1, "model.vocab");
  added.forEach((t, i) => see(t.id, `added_tokens[${i}]`));
  const limit = 2 * ids.size + 256;
  if (maxId >= limit)
    fail(
      `${maxWhere} has id ${maxId}, but there are only ${ids.size} distinct ids: ids must be dense (below ${limit})`,
    );
}

function validateBpeModel(m: JsonObject, fail: (msg: string) => never): void {
  const vocab = m.vocab;
  if (!isObject(vocab)) fail(`model.vocab must be an object {token: id}, got ${describe(vocab)}`);
  const seen = new Map<number, string>();
  for (const [tok, id] of Object.entries(vocab as JsonObject)) {
    if (!isId(id))
      fail(`model.vocab[${JSON.stringify(tok)}] must be a non-negative integer id, got ${describe(id)}`);
    const prev = seen.get(id as number);
    if (prev !== undefined)
      fail(`model.vocab gives id ${id} to both ${JSON.stringify(prev)} and ${JSON.stringify(tok)}`);
    seen.set(id as number, tok);
  }
  const merges = m.merges;
  if (!Array.isArray(merges)) fail(`model.merges must be an array, got ${describe(merges)}`);
  const v = vocab as Record<string, number>;
  (merges as JsonValue[]).forEach((mg, i) => {
    const pair = mergePair(mg);
    if (pair === null)
      fail(`model.merges[${i}] must be "left right" or [left, right], got ${JSON.stringify(mg)}`);
    const [a, b] = pair as [string, string];
    for (const part of [a, b, a + b]) {
      if (!Object.hasOwn(v, part))
        fail(
          `model.merges[${i}] (${JSON.stringify(a)} + ${JSON.stringify(b)}) uses ${JSON.stringify(part)}, which is not in model.vocab`,
        );
    }
  });
}

/** A merge entry as a [left, right] pair, or null when malformed. */
export function mergePair(mg: JsonValue): [string, string] | null {
  if (typeof mg === "string") {
    const sp = mg.indexOf(" ");
    if (sp <= 0 || sp === mg.length - 1 || mg.indexOf(" ", sp + 1) !== -1) return null;
    return [mg.slice(0, sp), mg.slice(sp + 1)];
  }
  if (Array.isArray(mg) && mg.length === 2 && typeof mg[0] === "string" && typeof mg[1] === "string") {
    return [mg[0], mg[1]];
  }
  return null;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return `${typeof v} ${typeof v === "object" ? "" : String(v)}`.trim();
}

export function addedToken(id: number, content: string, special = true): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/**
 * tokenizer.json for a byte-level BPE: special tokens at ids 0..S-1 (also in model.vocab, as the Python
 * trainer does), the 256 byte characters next, merged tokens after. The post-processor adds `bos` when a
 * caller asks Hugging Face for special tokens (add_special_tokens, the default there).
 */
export function buildByteLevelBpeJson(opts: {
  vocab: Map<string, number>;
  merges: [string, string][];
  specials: string[];
  bos?: string;
}): TokenizerJson {
  const vocab: Record<string, number> = {};
  for (const [tok, id] of [...opts.vocab].sort((x, y) => x[1] - y[1])) vocab[tok] = id;
  const added = opts.specials.map((s) => {
    const id = opts.vocab.get(s);
    if (id === undefined)
      throw new Error(`buildByteLevelBpeJson: special token ${s} is not in the vocabulary`);
    return addedToken(id, s);
  });
  const byteLevel: JsonObject = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  const bos = opts.bos;
  const postProcessor: JsonObject | null =
    bos === undefined
      ? null
      : {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
        };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: postProcessor,
    decoder: { ...byteLevel },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: opts.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/**
 * JSON text in the shape the Python library writes (2-space indent), but with each merge and each
 * added-token object on one line so an 8k vocabulary stays a few hundred KB and diffs stay readable.
 */
export function stringifyTokenizerJson(json: TokenizerJson): string {
  const text = JSON.stringify(json, null, 2);
  // Collapse small leaf arrays/objects (merge pairs, template items) onto one line.
  return (
    text
      .replace(/\[\n\s+("(?:[^"\\]|\\.)*"),\n\s+("(?:[^"\\]|\\.)*")\n\s+\]/g, "[$1, $2]")
      .replace(
        /\{\n\s+"id": (\d+),\n\s+"content": ("(?:[^"\\]|\\.)*"),\n\s+"single_word": (\w+),\n\s+"lstrip": (\w+),\n\s+"rstrip": (\w+),\n\s+"normalized": (\w+),\n\s+"special": (\w+)\n\s+\}/g,
        '{"id": $1, "content": $2, "single_word": $3, "lstrip": $4, "rstrip": $5, "normalized": $6, "special": $7}',
      ) + "\n"
  );
}
