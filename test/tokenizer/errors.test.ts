// Malformed tokenizer.json files fail with a TokenizerFormatError that names the file and the field.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { TokenizerFormatError } from "../../src/tokenizer/json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";

function bpe(vocab: unknown, merges: unknown, extra: Record<string, unknown> = {}): unknown {
  return { model: { type: "BPE", vocab, merges }, ...extra };
}

const OK_VOCAB = { a: 0, b: 1, ab: 2 };

test("structurally malformed tokenizer.json objects are rejected with clear messages", () => {
  const cases: [unknown, RegExp][] = [
    [[1, 2], /expected a JSON object at the top level, got an array/],
    [{}, /"model" must be an object, got nothing/],
    [{ model: "BPE" }, /"model" must be an object/],
    [{ model: {} }, /"model" has neither "type" nor "vocab"/],
    [bpe([["a", 0]], []), /model\.vocab must be an object/],
    [bpe({ a: -1 }, []), /model\.vocab\["a"\] must be a non-negative integer id, got number -1/],
    [bpe({ a: 0, b: 0 }, []), /gives id 0 to both "a" and "b"/],
    [bpe(OK_VOCAB, "a b"), /model\.merges must be an array/],
    [bpe(OK_VOCAB, ["a b c"]), /model\.merges\[0\] must be "left right" or \[left, right\]/],
    [bpe(OK_VOCAB, ["a x"]), /model\.merges\[0\] \("a" \+ "x"\) uses "x", which is not in model\.vocab/],
    [bpe({ a: 0, b: 1 }, [["a", "b"]]), /uses "ab", which is not in model\.vocab/],
    [bpe(OK_VOCAB, [], { added_tokens: {} }), /"added_tokens" must be an array/],
    [
      bpe(OK_VOCAB, [], { added_tokens: [{ id: "1", content: "<s>" }] }),
      /added_tokens\[0\]\.id must be a non-negative integer/,
    ],
    [
      bpe(OK_VOCAB, [], { added_tokens: [{ id: 3, content: "" }] }),
      /added_tokens\[0\]\.content must be a non-empty string/,
    ],
    [bpe(OK_VOCAB, [], { decoder: "ByteLevel" }), /"decoder" must be an object or null/],
  ];
  for (const [obj, re] of cases) {
    assert.throws(
      () => Tokenizer.fromJSON(obj, "bad.json"),
      (e: unknown) =>
        e instanceof TokenizerFormatError && /^bad\.json: /.test(e.message) && re.test(e.message),
      `expected ${re}`,
    );
  }
});

test("a byte-level tokenizer.json missing byte tokens is rejected", () => {
  const json = bpe(OK_VOCAB, ["a b"], {
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
    decoder: { type: "ByteLevel" },
  });
  assert.throws(
    () => Tokenizer.fromJSON(json, "bytes.json"),
    /bytes\.json: byte-level vocabulary lacks the token for byte 0/,
  );
});

test("files that are missing, empty or not JSON name the path", () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-tokerr-"));
  try {
    assert.throws(() => Tokenizer.fromFile(join(dir, "nope.json")), /nope\.json: cannot read tokenizer file/);
    const empty = join(dir, "empty.json");
    writeFileSync(empty, "");
    assert.throws(() => Tokenizer.fromFile(empty), /empty\.json: not valid JSON/);
    const trunc = join(dir, "trunc.json");
    writeFileSync(trunc, '{"model": {"type": "BPE", "vocab": {"a": 0');
    assert.throws(
      () => Tokenizer.fromFile(trunc),
      (e: unknown) => e instanceof TokenizerFormatError && /trunc\.json: not valid JSON/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("decode rejects ids outside the vocabulary; encode needs the requested BOS", () => {
  const tok = Tokenizer.fromJSON(bpe(OK_VOCAB, ["a b"]), "tiny");
  assert.throws(() => tok.decode([0, 7]), /id 7 is not in the vocabulary \(size 3\)/);
  assert.throws(() => tok.decode([1.5]), /id 1\.5 is not in the vocabulary/);
  assert.throws(() => tok.encode("ab", { addBos: true }), /has no bos token/);
  assert.throws(() => tok.requireId("<|chunk|>"), /token "<\|chunk\|>" is not in the vocabulary/);
});
