// The shipped 8k tokenizer (assets/tokenizer/tokenizer.json): loads, has our special tokens, round-trips,
// compresses held-out English, and agrees with @huggingface/tokenizers.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import "../helpers.js";
import { defaultTokenizerPath } from "../../src/tokenizer/pipeline.js";
import { SPECIAL_TOKENS } from "../../src/tokenizer/train.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { TRICKY } from "./strings.js";

const HELDOUT = readFileSync(
  new URL("../../../test/fixtures/tokenizer/heldout.txt", import.meta.url),
  "utf8",
);

test("shipped tokenizer loads with 8192 entries and our special tokens at 0..", () => {
  const tok = Tokenizer.fromFile(defaultTokenizerPath());
  assert.equal(tok.vocabSize, 8192);
  assert.ok(tok.isFastPath);
  SPECIAL_TOKENS.forEach((s, i) => {
    assert.equal(tok.tokenToId(s), i, s);
    assert.deepEqual(tok.encode(s), [i], s);
  });
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId, tok.unkId], [0, 1, 2, 3]);
});

test("shipped tokenizer round-trips held-out text and compresses English 3.4+ chars/token", () => {
  const tok = Tokenizer.fromFile(defaultTokenizerPath());
  for (const s of [HELDOUT, ...TRICKY])
    assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s.slice(0, 40)));
  const cpt = HELDOUT.length / tok.encode(HELDOUT).length;
  assert.ok(cpt > 3.4 && cpt < 5, `held-out fixture: ${cpt.toFixed(3)} chars/token`);
});

test("shipped tokenizer: @huggingface/tokenizers gives the same ids", () => {
  const json: object = JSON.parse(readFileSync(defaultTokenizerPath(), "utf8"));
  const hf = new HfTokenizer(json, {});
  const tok = Tokenizer.fromJSON(json);
  for (const s of [HELDOUT, ...TRICKY]) {
    assert.deepEqual(
      hf.encode(s, { add_special_tokens: false }).ids,
      tok.encode(s),
      JSON.stringify(s.slice(0, 40)),
    );
  }
});
