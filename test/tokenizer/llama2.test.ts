// LLaMA-2's tokenizer.json rebuilt from llama-tokenizer-js: the acceptance ids and agreement with that
// package's own encoder.
import assert from "node:assert/strict";
import { test } from "node:test";
import llamaTokenizer from "llama-tokenizer-js";
import "../helpers.js";
import { buildLlama2TokenizerJson } from "../../src/tokenizer/llama2.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const tokP = buildLlama2TokenizerJson().then((json) => Tokenizer.fromJSON(json, "llama-2"));

test('LLaMA-2 encodes "Hello world" as [1, 15043, 3186]', async () => {
  const tok = await tokP;
  assert.deepEqual(tok.encode("Hello world", { addBos: true }), [1, 15043, 3186]);
  assert.deepEqual([tok.vocabSize, tok.bosId, tok.eosId, tok.unkId], [32000, 1, 2, 0]);
  assert.equal(tok.tokenToId("<0x0A>"), 13);
});

test("LLaMA-2 ids equal llama-tokenizer-js on awkward strings, and decode back", async () => {
  const tok = await tokP;
  const cases = [
    "Hello world",
    "  two leading spaces",
    "trailing space ",
    "line one\nline two\n\n",
    "tabs\tand\ttabs",
    "naïve café — “quotes” ‘single’",
    "日本語のテキスト and 中文",
    "emoji 😀👍🏽 and 🇫🇷",
    "The quick brown fox jumps over the lazy dog. 1234567890",
    "function f(x) { return x ** 2; }",
    "x",
  ];
  for (const s of cases) {
    const ours = tok.encode(s, { addBos: true });
    assert.deepEqual(ours, llamaTokenizer.encode(s), JSON.stringify(s));
    assert.equal(tok.decode(ours.slice(1)), s, JSON.stringify(s));
  }
});
