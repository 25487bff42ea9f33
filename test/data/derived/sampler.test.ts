import assert from "node:assert/strict";
import { test } from "node:test";
import "../../helpers.js";
import {
  paragraphSegments,
  sampleTextWindows,
  sampleWindows,
  tokenizeDoc,
  type TextEncoder,
} from "../../../src/data/derived/sampler.js";
import { defaultTokenizerPath } from "../../../src/tokenizer/pipeline.js";
import { Tokenizer } from "../../../src/tokenizer/tokenizer.js";
import { fixtureDoc } from "./fixtures.js";

const tok = Tokenizer.fromFile(defaultTokenizerPath());
/** A toy tokenizer: one token per character. */
const chars: TextEncoder = { encode: (t) => [...t].map((c) => c.codePointAt(0) as number) };

const man = fixtureDoc("manpages/man1/iconv.1.gz").text;

test("segment encodings concatenate to the whole-text encoding (project tokenizer)", () => {
  for (const text of [
    man,
    fixtureDoc("sotu/1809_james_madison_dr").text,
    fixtureDoc("austen/emma/20").text,
  ]) {
    const segs = paragraphSegments(text);
    assert.ok(segs.length > 3);
    assert.equal(segs.join(""), text);
    assert.deepEqual(tokenizeDoc(tok, text).tokens, tok.encode(text));
  }
});

test("windows have exactly s and o tokens, are deterministic, and are paragraph aligned", () => {
  for (const [s, o] of [
    [64, 32],
    [256, 128],
    [100, 7],
  ]) {
    const w1 = sampleTextWindows(tok, man, { s, o, count: 20, seed: 7 });
    const w2 = sampleTextWindows(tok, man, { s, o, count: 20, seed: 7 });
    assert.deepEqual(w1, w2);
    assert.notDeepEqual(sampleTextWindows(tok, man, { s, o, count: 20, seed: 8 }), w1);
    const all = tok.encode(man);
    const { boundaries } = tokenizeDoc(tok, man);
    for (const w of w1) {
      assert.equal(w.context.length, s);
      assert.equal(w.continuation.length, o);
      assert.deepEqual([...w.context, ...w.continuation], all.slice(w.cut - s, w.cut + o));
      assert.equal(w.paragraphAligned, boundaries.includes(w.cut));
    }
    assert.ok(w1.filter((w) => w.paragraphAligned).length >= 15, `s=${s} o=${o}: few aligned windows`);
  }
});

test("aligned continuations start with the paragraph break (character tokenizer)", () => {
  const text = Array.from({ length: 30 }, (_, i) => `Paragraph ${i} says something rather plain.`).join(
    "\n\n",
  );
  for (const w of sampleTextWindows(chars, text, { s: 80, o: 40, count: 25, seed: 3, snap: 60 })) {
    assert.ok(w.paragraphAligned);
    const cont = String.fromCodePoint(...w.continuation);
    assert.match(cont, /^\n\nParagraph \d+/);
    assert.match(String.fromCodePoint(...w.context), /\.$/);
  }
});

test("short documents give no windows; bad s/o throw", () => {
  assert.deepEqual(
    sampleWindows({ tokens: [1, 2, 3], boundaries: [] }, { s: 2, o: 2, count: 5, seed: 1 }),
    [],
  );
  const w = sampleWindows({ tokens: [1, 2, 3, 4], boundaries: [] }, { s: 2, o: 2, count: 3, seed: 1 });
  assert.deepEqual(
    w.map((x) => [x.context, x.continuation, x.paragraphAligned]),
    Array(3).fill([[1, 2], [3, 4], false]),
  );
  assert.throws(
    () => sampleWindows({ tokens: [1], boundaries: [] }, { s: 0, o: 2, count: 1, seed: 1 }),
    /positive integers/,
  );
});
