// Tokenizer: a tokenizer.json (Hugging Face format) with encode/decode. Byte-level BPE files (ours, GPT-2
// style) run on our own fast encoder with a word cache; every other layout (LLaMA's sentencepiece-style BPE,
// WordPiece, Unigram) runs through @huggingface/tokenizers.
import { readFileSync, mkdirSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import { dirname } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { BYTE_TO_CHAR, byteLevelToBytes } from "./bytelevel.js";
import { SpanTable, gpt2WordEnd, spanHash } from "./pretokenize.js";
import { MergeTable } from "./bpe.js";
import {
  type AddedTokenJson,
  type JsonObject,
  type JsonValue,
  type TokenizerJson,
  TokenizerFormatError,
  mergePair,
  stringifyTokenizerJson,
  validateTokenizerJson,
} from "./json.js";

export interface EncodeOptions {
  /** Prepend the BOS id (throws if the tokenizer has none). */
  addBos?: boolean;
  /** Append the EOS id (throws if the tokenizer has none). */
  addEos?: boolean;
  /** Recognise added/special token strings in the text (default true, as Hugging Face does). */
  allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (bos, eos, pad, prompt markers) from the text. */
  skipSpecial?: boolean;
}

// Special-token names by role, first match wins: ours, then LLaMA / GPT / BERT conventions.
const ROLE_NAMES = {
  bos: ["<|bos|>", "<s>", "<|begin_of_text|>", "[CLS]"],
  eos: ["<|eos|>", "</s>", "<|end_of_text|>", "<|endoftext|>", "[SEP]"],
  pad: ["<|pad|>", "<pad>", "[PAD]"],
  unk: ["<|unk|>", "<unk>", "[UNK]"],
} as const;

/** Text every loaded tokenizer must encode and decode (ASCII, punctuation, digits, accents, CJK, emoji). */
const PROBE_TEXT = "Hello, world! 42 café — 東京 🙂\n\tend";

const CACHE_SLOTS = 1 << 17; // half of them used at most
const MAX_CACHED_WORD = 64;

export class Tokenizer {
  readonly json: TokenizerJson;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly unkId: number | undefined;

  private readonly tokenIds = new Map<string, number>();
  private readonly idTokens: (string | undefined)[] = [];
  private readonly added: AddedTokenJson[];
  private readonly specialIds = new Set<number>();
  private readonly addedSplitter: RegExp | null;
  private readonly addedIds = new Map<string, number>();
  private readonly fast: ByteLevelBpe | null;
  private hf: HfTokenizer | null = null;

  private constructor(json: TokenizerJson, where: string) {
    this.json = json;
    const model = json.model;
    if (model.vocab !== null && typeof model.vocab === "object" && !Array.isArray(model.vocab)) {
      for (const [tok, id] of Object.entries(model.vocab)) this.setToken(tok, id as number);
    } else if (Array.isArray(model.vocab)) {
      // Unigram: [[piece, score], ...] with ids by position.
      model.vocab.forEach((entry, id) => {
        if (Array.isArray(entry) && typeof entry[0] === "string") this.setToken(entry[0], id);
      });
    }
    this.added = json.added_tokens;
    for (const t of this.added) {
      this.setToken(t.content, t.id);
      this.addedIds.set(t.content, t.id);
      if (t.special) this.specialIds.add(t.id);
    }
    this.vocabSize = this.idTokens.length;
    this.addedSplitter = this.added.length === 0 ? null : splitterFor(this.added.map((t) => t.content));
    const role = (names: readonly string[]): number | undefined => {
      for (const n of names) if (this.tokenIds.has(n)) return this.tokenIds.get(n);
      return undefined;
    };
    this.bosId = role(ROLE_NAMES.bos);
    this.eosId = role(ROLE_NAMES.eos);
    this.padId = role(ROLE_NAMES.pad);
    const unkName = typeof model.unk_token === "string" ? model.unk_token : undefined;
    this.unkId =
      unkName !== undefined && this.tokenIds.has(unkName) ? this.tokenIds.get(unkName) : role(ROLE_NAMES.unk);
    this.fast = ByteLevelBpe.tryCreate(json, this.tokenIds, new Set(this.addedIds.values()), where);
    this.probe(where);
  }

  /**
   * Fail at load, naming the file, rather than at first use: build the general tokenizer now (when the
   * fast path does not apply) and round-trip a sample through encode and decode.
   */
  private probe(where: string): void {
    try {
      if (this.fast === null) this.hfTokenizer();
      const ids = this.encode(PROBE_TEXT, { allowSpecial: false });
      for (const id of ids)
        if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idTokens[id] === undefined)
          throw new Error(`encoding a sample gave id ${id}, which is not in the vocabulary`);
      this.decode(ids);
    } catch (e) {
      if (e instanceof TokenizerFormatError) throw e;
      throw new TokenizerFormatError(`${where}: the tokenizer does not work: ${(e as Error).message}`);
    }
  }

  private setToken(tok: string, id: number): void {
    this.tokenIds.set(tok, id);
    while (this.idTokens.length <= id) this.idTokens.push(undefined);
    this.idTokens[id] = tok;
  }

  /** Load a tokenizer.json file; malformed files throw TokenizerFormatError naming the file and field. */
  static fromFile(path: string): Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new TokenizerFormatError(`${path}: cannot read tokenizer file (${(e as Error).message})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new TokenizerFormatError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    return Tokenizer.fromJSON(parsed, path);
  }

  /** Build from a parsed tokenizer.json object. */
  static fromJSON(obj: unknown, where = "tokenizer.json"): Tokenizer {
    return new Tokenizer(validateTokenizerJson(obj, where), where);
  }

  /** True when encode/decode run on our own byte-level BPE code rather than @huggingface/tokenizers. */
  get isFastPath(): boolean {
    return this.fast !== null;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenIds.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idTokens[id];
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Id of a token that must exist (prompt-format markers); throws naming the token otherwise. */
  requireId(token: string): number {
    const id = this.tokenIds.get(token);
    if (id === undefined)
      throw new Error(`Tokenizer: token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.addBos) out.push(this.roleId("bos", this.bosId));
    const allowSpecial = opts.allowSpecial ?? true;
    if (allowSpecial && this.addedSplitter !== null) {
      const re = this.addedSplitter;
      re.lastIndex = 0;
      let last = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m.index > last) this.encodeOrdinary(text.slice(last, m.index), out);
        out.push(this.addedIds.get(m[0]) as number);
        last = m.index + m[0].length;
      }
      if (last < text.length) this.encodeOrdinary(last === 0 ? text : text.slice(last), out);
    } else {
      this.encodeOrdinary(text, out);
    }
    if (opts.addEos) out.push(this.roleId("eos", this.eosId));
    return out;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idTokens[id] === undefined)
        throw new RangeError(`Tokenizer.decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    }
    const skip = opts.skipSpecial ?? false;
    if (ids.length === 0) return ""; // @huggingface/tokenizers throws on []
    if (this.fast !== null) return this.fast.decode(ids, skip ? this.specialIds : null);
    return this.hfTokenizer().decode(ids as number[], {
      skip_special_tokens: skip,
      clean_up_tokenization_spaces: false,
    });
  }

  /** Write tokenizer.json (creating the folder). */
  save(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomicSync(path, stringifyTokenizerJson(this.json));
  }

  private roleId(role: string, id: number | undefined): number {
    if (id === undefined) throw new Error(`Tokenizer.encode: this tokenizer has no ${role} token`);
    return id;
  }

  private encodeOrdinary(text: string, out: number[]): void {
    if (text.length === 0) return;
    if (this.fast !== null) {
      this.fast.encode(text, out);
      return;
    }
    const ids = this.hfTokenizer().encode(text, { add_special_tokens: false }).ids;
    for (const id of ids) out.push(id);
  }

  private hfTokenizer(): HfTokenizer {
    if (this.hf === null) this.hf = new HfTokenizer(this.json, {});
    return this.hf;
  }
}

/** Leftmost-longest matcher for added-token strings. */
function splitterFor(contents: string[]): RegExp {
  const sorted = [...new Set(contents)].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gu");
}

/** The fast path: GPT-2 regex, UTF-8 bytes to byte-level symbols, merges, and a word -> ids cache. */
class ByteLevelBpe {
  // Word cache: text span -> ids, in flat arrays (see pretokenize.ts for why not a Map<string, ...>).
  private readonly cache = new SpanTable(CACHE_SLOTS);
  private readonly idsPool = new Int32Array(CACHE_SLOTS * 4);
  private idsUsed = 0;
  private readonly byteIds = new Int32Array(256);
  private readonly idBytes: Uint8Array[];
  private scratch = new Int32Array(1024);
  private readonly utf8 = new TextEncoder();
  private readonly utf8Decoder = new TextDecoder("utf-8");

  private constructor(
    private readonly merges: MergeTable,
    tokenIds: Map<string, number>,
    idTokens: (string | undefined)[],
    addedIds: Set<number>,
    private readonly addPrefixSpace: boolean,
    where: string,
  ) {
    for (let b = 0; b < 256; b++) {
      const id = tokenIds.get(BYTE_TO_CHAR[b]);
      if (id === undefined)
        throw new TokenizerFormatError(
          `${where}: byte-level vocabulary lacks the token for byte ${b} (${JSON.stringify(BYTE_TO_CHAR[b])})`,
        );
      this.byteIds[b] = id;
    }
    // Added tokens decode to their literal text; model tokens through the byte alphabet.
    this.idBytes = idTokens.map((t, id) => {
      if (t === undefined) return new Uint8Array(0);
      if (addedIds.has(id)) return this.utf8.encode(t);
      return byteLevelToBytes(t) ?? this.utf8.encode(t);
    });
  }

  /** A fast encoder when the json is plain byte-level BPE (no normalizer, GPT-2 regex), else null. */
  static tryCreate(
    json: TokenizerJson,
    tokenIds: Map<string, number>,
    addedIds: Set<number>,
    where: string,
  ): ByteLevelBpe | null {
    const m = json.model;
    if (m.type !== "BPE" || json.normalizer !== null) return null;
    if (m.dropout != null || m.continuing_subword_prefix != null || m.end_of_word_suffix != null) return null;
    if (m.byte_fallback === true || m.ignore_merges === true) return null;
    const pre = byteLevelPart(json.pre_tokenizer);
    const dec = byteLevelPart(json.decoder);
    if (pre === null || dec === null || pre.use_regex === false) return null;
    for (const t of json.added_tokens) if (t.lstrip || t.rstrip || t.single_word) return null;
    const vocab = m.vocab as Record<string, number>;
    const triples: [number, number, number][] = (m.merges as JsonValue[]).map((mg) => {
      const [a, b] = mergePair(mg) as [string, string];
      return [vocab[a], vocab[b], vocab[a + b]];
    });
    const idTokens: (string | undefined)[] = [];
    for (const [t, id] of tokenIds) idTokens[id] = t;
    for (let i = 0; i < idTokens.length; i++) if (!(i in idTokens)) idTokens[i] = undefined;
    return new ByteLevelBpe(
      new MergeTable(triples),
      tokenIds,
      idTokens,
      addedIds,
      pre.add_prefix_space === true,
      where,
    );
  }

  encode(text: string, out: number[]): void {
    if (this.addPrefixSpace && !text.startsWith(" ")) text = " " + text;
    const n = text.length;
    const cache = this.cache;
    for (let i = 0; i < n; ) {
      const e = gpt2WordEnd(text, i, n);
      if (e - i > MAX_CACHED_WORD) {
        const m = this.encodeWord(text, i, e);
        for (let j = 0; j < m; j++) out.push(this.scratch[j]);
        i = e;
        continue;
      }
      const h = spanHash(text, i, e);
      let slot = cache.find(text, i, e, h);
      if (slot < 0) {
        if (
          cache.size * 2 >= cache.capacity ||
          this.idsUsed + MAX_CACHED_WORD * 3 + 1 > this.idsPool.length
        ) {
          cache.clear(); // full: start over rather than track recency
          this.idsUsed = 0;
          slot = cache.find(text, i, e, h);
        }
        // Pool layout per word: count, then the ids.
        const m = this.encodeWord(text, i, e);
        const at = this.idsUsed;
        this.idsPool[at] = m;
        this.idsPool.set(this.scratch.subarray(0, m), at + 1);
        this.idsUsed += m + 1;
        slot = cache.insertAt(slot, text, i, e, h, at);
      }
      const pool = this.idsPool;
      const at = cache.value(slot);
      for (let j = at + 1, end = at + 1 + pool[at]; j < end; j++) out.push(pool[j]);
      i = e;
    }
  }

  /** BPE of text[s, e) into this.scratch; returns the number of ids. */
  private encodeWord(text: string, s: number, e: number): number {
    if (this.scratch.length < (e - s) * 3) this.scratch = new Int32Array((e - s) * 3 + 64);
    const sym = this.scratch;
    const ids = this.byteIds;
    let n = 0;
    for (let i = s; i < e; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        sym[n++] = ids[c];
        continue;
      }
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < e) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: UTF-8 has no form for it
      if (c < 0x800) {
        sym[n++] = ids[0xc0 | (c >> 6)];
      } else if (c < 0x10000) {
        sym[n++] = ids[0xe0 | (c >> 12)];
        sym[n++] = ids[0x80 | ((c >> 6) & 63)];
      } else {
        sym[n++] = ids[0xf0 | (c >> 18)];
        sym[n++] = ids[0x80 | ((c >> 12) & 63)];
        sym[n++] = ids[0x80 | ((c >> 6) & 63)];
      }
      sym[n++] = ids[0x80 | (c & 63)];
    }
    return this.merges.apply(sym, n);
  }

  decode(ids: readonly number[], skip: Set<number> | null): string {
    let len = 0;
    for (const id of ids) if (skip === null || !skip.has(id)) len += this.idBytes[id].length;
    const buf = new Uint8Array(len);
    let o = 0;
    for (const id of ids) {
      if (skip !== null && skip.has(id)) continue;
      const b = this.idBytes[id];
      buf.set(b, o);
      o += b.length;
    }
    return this.utf8Decoder.decode(buf);
  }
}

/** The ByteLevel component of a pre_tokenizer/decoder (alone or as the only member of a Sequence). */
function byteLevelPart(part: JsonObject | null): JsonObject | null {
  if (part === null) return null;
  if (part.type === "ByteLevel") return part;
  const inner = part.pretokenizers ?? part.decoders;
  if (part.type === "Sequence" && Array.isArray(inner) && inner.length === 1) {
    const only = inner[0];
    if (only !== null && typeof only === "object" && !Array.isArray(only) && only.type === "ByteLevel")
      return only;
  }
  return null;
}
