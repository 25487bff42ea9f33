// The hand-written GPT-2 pre-tokeniser must split exactly like the regex (JavaScript `u` classes).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { freshRng } from "../helpers.js";
import { gpt2Regex } from "../../src/tokenizer/bytelevel.js";
import { SpanTable, forEachGpt2Word, spanHash } from "../../src/tokenizer/pretokenize.js";

const FIXTURE = new URL("../../../test/fixtures/tokenizer/heldout.txt", import.meta.url);

function byRegex(text: string): string[] {
  return [...text.matchAll(gpt2Regex())].map((m) => m[0]);
}

function byScanner(text: string): string[] {
  const out: string[] = [];
  forEachGpt2Word(text, (s, e) => out.push(text.slice(s, e)));
  return out;
}

// Awkward pieces: contractions, space kinds (NBSP, NEL, BOM, ideographic), digits of other scripts, combining
// marks, astral letters and emoji, lone surrogates.
const PIECES = [
  "a",
  "Z",
  "é",
  "ß",
  "日",
  "語",
  "𝒜",
  "😀",
  "👍🏽",
  "1",
  "²",
  "٣",
  "½",
  "'",
  "'s",
  "'t",
  "'re",
  "'ve",
  "'m",
  "'ll",
  "'d",
  "'S",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\u00a0",
  "\u0085",
  "\ufeff",
  "\u3000",
  "\u2028",
  "-",
  ".",
  "!?",
  "\u0301",
  "\ud800",
  "\udc00",
  "$",
  "_",
  "<|eos|>",
];

test("pre-tokeniser matches the GPT-2 regex on fixed cases", () => {
  const cases = [
    "",
    "x",
    " ",
    "   ",
    "Hello world",
    "Hello  world",
    "Hello\n\nworld",
    "  leading",
    "trailing  ",
    "tabs\t\tand spaces \t x",
    "I'm can't we've they'll he'd you're 'sun",
    " 's",
    "''s",
    "-'s",
    "123 4567 x1y2",
    "€100 and ½ cup",
    "a\u00a0b",
    "a\u0085b",
    "e\u0301 café",
    "emoji 😀😀 and 👍🏽!",
    "lone \ud800 surrogate \udc00",
    "\ud83d",
    "x\ufeffy",
    readFileSync(FIXTURE, "utf8"),
  ];
  for (const c of cases) assert.deepEqual(byScanner(c), byRegex(c), JSON.stringify(c.slice(0, 60)));
});

test("pre-tokeniser matches the GPT-2 regex on random strings", () => {
  const { rng, seed } = freshRng();
  for (let k = 0; k < 2000; k++) {
    const n = 1 + rng.int(k < 100 ? 5 : 40);
    let s = "";
    for (let i = 0; i < n; i++) s += PIECES[rng.int(PIECES.length)];
    const want = byRegex(s);
    assert.deepEqual(byScanner(s), want, `seed ${seed}: ${JSON.stringify(s)}`);
    assert.equal(want.join(""), s, "regex pre-tokens tile the text");
  }
});

test("SpanTable finds, inserts, grows and lists spans", () => {
  const t = new SpanTable(4);
  const text = "the cat the dog cat the end";
  const words = text.split(" ");
  let at = 0;
  for (const w of words) {
    const s = text.indexOf(w, at);
    at = s + w.length;
    const h = spanHash(text, s, at);
    const slot = t.find(text, s, at, h);
    if (slot >= 0) t.setValue(slot, t.value(slot) + 1);
    else t.insertAt(slot, text, s, at, h, 1);
    if (t.size * 2 > t.capacity) t.grow();
  }
  assert.deepEqual(
    new Map(t.entries()),
    new Map([
      ["the", 3],
      ["cat", 2],
      ["dog", 1],
      ["end", 1],
    ]),
  );
});
