// Training a small byte-level BPE on the committed fixture: exact round trips, determinism, agreement with
// @huggingface/tokenizers, special tokens, and the incremental trainer against a recount-everything reference.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import "../helpers.js";
import { BYTE_TO_CHAR } from "../../src/tokenizer/bytelevel.js";
import { SPECIAL_TOKENS, WordCounter, trainBpe, trainByteLevelBpe } from "../../src/tokenizer/train.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { TRICKY } from "./strings.js";

const FIX = (name: string): string =>
  readFileSync(new URL(`../../../test/fixtures/tokenizer/${name}`, import.meta.url), "utf8");
const TRAIN = FIX("train.txt");
const HELDOUT = FIX("heldout.txt");

let trained: ReturnType<typeof trainByteLevelBpe> | undefined;
function small(): ReturnType<typeof trainByteLevelBpe> {
  trained ??= trainByteLevelBpe([TRAIN], { vocabSize: 700 });
  return trained;
}

test("vocabulary layout: special tokens at 0.., then 256 bytes, then merges", () => {
  const { tokenizer: tok, merges, json } = small();
  assert.equal(tok.vocabSize, 700);
  assert.equal(merges.length, 700 - SPECIAL_TOKENS.length - 256);
  SPECIAL_TOKENS.forEach((s, i) => assert.equal(tok.tokenToId(s), i, s));
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId, tok.unkId], [0, 1, 2, 3]);
  assert.equal(tok.tokenToId(BYTE_TO_CHAR[0]), SPECIAL_TOKENS.length);
  assert.equal(tok.tokenToId("Ġ"), SPECIAL_TOKENS.length + 32);
  assert.equal(json.model.type, "BPE");
  assert.deepEqual(json.pre_tokenizer, {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  });
  assert.equal(json.decoder?.type, "ByteLevel");
  assert.equal(json.added_tokens.length, SPECIAL_TOKENS.length);
  assert.ok(json.added_tokens.every((t) => t.special && !t.normalized));
  assert.ok(tok.isFastPath);
});

test("held-out text and tricky strings round-trip exactly", () => {
  const tok = small().tokenizer;
  for (const s of [HELDOUT, ...TRICKY]) {
    const ids = tok.encode(s);
    assert.equal(tok.decode(ids), s, JSON.stringify(s.slice(0, 50)));
    assert.ok(ids.every((id) => id >= SPECIAL_TOKENS.length && id < tok.vocabSize));
  }
  // Compression is real even at 700 entries: fewer tokens than UTF-8 bytes.
  const ids = tok.encode(HELDOUT);
  assert.ok(HELDOUT.length / ids.length > 2, `chars/token ${(HELDOUT.length / ids.length).toFixed(2)}`);
});

test("merges are deterministic across runs and input order", () => {
  const a = small().merges;
  // Same word counts in another order (split at a paragraph so no word is cut): same merges.
  const cut = TRAIN.indexOf("\n\n", TRAIN.length >> 1);
  const reordered = trainByteLevelBpe([TRAIN.slice(cut), TRAIN.slice(0, cut)], { vocabSize: 700 }).merges;
  assert.deepEqual(reordered, a);
  const again = trainByteLevelBpe([TRAIN], { vocabSize: 700 }).merges;
  assert.deepEqual(again, a);
});

test("@huggingface/tokenizers loads the tokenizer.json and gives identical ids", () => {
  const { json, tokenizer: tok } = small();
  const hf = new HfTokenizer(JSON.parse(JSON.stringify(json)), {});
  for (const s of [HELDOUT, ...TRICKY, "<|question|> what? <|context|>text<|answer|>"]) {
    const ours = tok.encode(s);
    assert.deepEqual(hf.encode(s, { add_special_tokens: false }).ids, ours, JSON.stringify(s.slice(0, 50)));
    if (ours.length > 0) assert.equal(hf.decode(ours, { clean_up_tokenization_spaces: false }), s);
  }
  // Hugging Face's default adds BOS through the post-processor, as our addBos does.
  assert.deepEqual(hf.encode("Hello").ids, tok.encode("Hello", { addBos: true }));
});

test("special tokens encode as single ids and can be disabled", () => {
  const tok = small().tokenizer;
  const text = "<|bos|><|question|>Who?<|context|>Emma.<|answer|>Emma<|eos|>";
  const ids = tok.encode(text);
  assert.deepEqual(ids.slice(0, 2), [1, 4]);
  assert.equal(ids[ids.length - 1], 2);
  assert.equal(tok.decode(ids), text);
  assert.equal(tok.decode(ids, { skipSpecial: true }), "Who?Emma.Emma");
  for (const s of SPECIAL_TOKENS) assert.deepEqual(tok.encode(s), [tok.tokenToId(s)], s);
  const plain = tok.encode("<|eos|>", { allowSpecial: false });
  assert.ok(plain.length > 1 && !plain.includes(2));
  assert.equal(tok.decode(plain), "<|eos|>");
  assert.deepEqual(tok.encode("hi", { addBos: true, addEos: true }).slice(-1), [2]);
});

test("save and fromFile give the same tokenizer", () => {
  const { tokenizer: tok } = small();
  const dir = mkdtempSync(join(tmpdir(), "refrag-tok-"));
  try {
    const path = join(dir, "sub", "tokenizer.json");
    tok.save(path);
    const back = Tokenizer.fromFile(path);
    assert.deepEqual(back.json, tok.json);
    assert.deepEqual(back.encode(HELDOUT), tok.encode(HELDOUT));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Reference trainer: recount every pair over every word at each step (slow, obviously right). */
function naiveMerges(counts: Map<string, number>, nMerges: number): [string, string][] {
  const specials = SPECIAL_TOKENS.length;
  const idStr = [...SPECIAL_TOKENS, ...BYTE_TO_CHAR];
  const words = [...counts].map(([w, c]) => ({
    sym: [...Buffer.from(w, "utf8")].map((b) => b + specials),
    c,
  }));
  const merges: [string, string][] = [];
  while (merges.length < nMerges) {
    const pc = new Map<string, number>();
    for (const { sym, c } of words)
      for (let i = 0; i + 1 < sym.length; i++)
        pc.set(`${sym[i]},${sym[i + 1]}`, (pc.get(`${sym[i]},${sym[i + 1]}`) ?? 0) + c);
    let best: [number, number] | null = null;
    let bestC = 0;
    for (const [k, c] of pc) {
      const [a, b] = k.split(",").map(Number);
      if (c > bestC || (c === bestC && best !== null && (a < best[0] || (a === best[0] && b < best[1]))))
        [best, bestC] = [[a, b], c];
    }
    if (best === null || bestC < 2) break;
    const [a, b] = best;
    const merged = idStr[a] + idStr[b];
    let t = idStr.indexOf(merged);
    if (t < 0) t = idStr.push(merged) - 1;
    merges.push([idStr[a], idStr[b]]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.sym.length; i++) {
        if (i + 1 < w.sym.length && w.sym[i] === a && w.sym[i + 1] === b) {
          out.push(t);
          i++;
        } else out.push(w.sym[i]);
      }
      w.sym = out;
    }
  }
  return merges;
}

test("incremental pair counts give the same merges as recounting from scratch", () => {
  const counter = new WordCounter();
  // Repeated letters and spaces exercise overlapping pairs (aaaa, spaces runs).
  counter.add(TRAIN.slice(0, 6000) + " aaaa aaa aaaaaaa  \n\n\n\n    x   y zzzzzz abab ababab ");
  const counts = counter.toMap();
  const nMerges = 150;
  const fast = trainBpe(counts, { vocabSize: SPECIAL_TOKENS.length + 256 + nMerges }).merges;
  assert.deepEqual(fast, naiveMerges(counts, nMerges));
});

test("training rejects bad options with clear errors", () => {
  assert.throws(
    () => trainBpe(new Map([["ab", 3]]), { vocabSize: 100 }),
    /vocabSize 100 must be an integer >= 270/,
  );
  assert.throws(
    () => trainBpe(new Map(), { vocabSize: 300, specialTokens: ["<a>", "<a>"] }),
    /duplicate special tokens/,
  );
  // Nothing frequent enough: stops early with only the base vocabulary.
  const r = trainBpe(new Map([["xy", 1]]), { vocabSize: 400 });
  assert.equal(r.merges.length, 0);
  assert.equal(r.tokenizer.decode(r.tokenizer.encode("any text ✓")), "any text ✓");
});
