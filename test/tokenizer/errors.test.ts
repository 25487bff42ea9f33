// Malformed tokenizer.json files fail with a TokenizerFormatError that names the file and the field.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { TokenizerFormatError } from "../../src/tokenizer/json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { describeExit, runModule } from "../../src/fuzz/child.js";

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

test("far-away ids are refused at load (a lone 2^31 - 1 used to kill V8, 1e8 took 40 s and 2.7 GB)", () => {
  const tokUrl = new URL("../../src/tokenizer/tokenizer.js", import.meta.url).href;
  for (const id of [2 ** 31 - 1, 1e8]) {
    const r = runModule(
      `import { Tokenizer } from ${JSON.stringify(tokUrl)};
       const t0 = performance.now();
       try { Tokenizer.fromJSON({ model: { type: "BPE", vocab: { a: 0, b: ${id} }, merges: [] } }, "far.json");
             console.log("loaded"); }
       catch (e) { console.log(e.name + ": " + e.message); }
       console.log(Math.round(performance.now() - t0), process.memoryUsage().rss);`,
      { timeoutMs: 30_000 },
    );
    assert.equal(r.status, 0, `id ${id}: ${describeExit(r)}`);
    const [msg, ms, rss] = r.stdout
      .trim()
      .split("\n")
      .flatMap((l) => l.split(/ (?=\d+$)/));
    assert.match(
      msg,
      new RegExp(
        `^TokenizerFormatError: far\\.json: model\\.vocab\\["b"\\] has id ${id}, but there are only 2 distinct ids: ids must be dense \\(below 260\\)$`,
      ),
    );
    assert.ok(Number(ms) < 2000 && Number(rss) < 300 * 2 ** 20, `id ${id}: ${ms} ms, rss ${rss}`);
  }
});

test("tokenizers that used to load and fail at first use now fail at load, naming the file", () => {
  const cases: [unknown, RegExp][] = [
    [{ model: { type: "WordPiece", vocab: { a: 0, b: 1 }, unk_token: "[UNK]" } }, /gave id undefined/],
    [{ model: { type: "WordLevel", vocab: { a: 0 }, unk_token: "<unk>" } }, /gave id undefined/],
    [
      { model: { type: "Unigram", vocab: [["a", 0]], unk_id: 5 } },
      /gave id 5, which is not in the vocabulary/,
    ],
    [bpe({ a: 0 }, [], { decoder: { type: "Nope" } }), /Unknown Decoder type: Nope/],
    [bpe({ a: 0 }, [], { pre_tokenizer: { type: "Nope" } }), /Unknown PreTokenizer type: Nope/],
  ];
  for (const [obj, re] of cases)
    assert.throws(
      () => Tokenizer.fromJSON(obj, "late.json"),
      (e: unknown) =>
        e instanceof TokenizerFormatError &&
        /^late\.json: the tokenizer does not work: /.test(e.message) &&
        re.test(e.message),
      `expected ${re}`,
    );
});
