// The prompt layout's answer rule on the shipped tokenizer: an answer is read after a space, like the words of
// the passage it is copied from, and handed out without that space.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { tokenizer } from "../tiny_refrag.js";
import {
  answerDecoder,
  answerTokens,
  chunkQueryTexts,
  promptIds,
  promptPassages,
  QUERY_OVERLAP,
} from "../../src/infer/prompt.js";
import { AnswerText } from "../../src/infer/text_stream.js";

const contains = (hay: number[], needle: number[]) => hay.join(",").includes(needle.join(","));

test("prompt: an answer's tokens are the tokens of the same words inside a passage", () => {
  for (const [passage, answer] of [
    ["Capital - name: Algiers\nCapital - geographic coordinates: 36 45 N", "Algiers"],
    ["Area - total: 2,381,741 sq km", "2,381,741 sq km"],
    ["The element was discovered by Marie Curie in 1898.", "Marie Curie"],
  ]) {
    const p = tokenizer.encode(passage, { allowSpecial: false });
    assert.ok(contains(p, answerTokens(tokenizer, answer)), `${answer}: copied tokens`);
    assert.deepEqual(answerTokens(tokenizer, `  ${answer}`), answerTokens(tokenizer, answer));
  }
});

test("prompt: generated answer text drops the leading space and prompt-format tokens, also when streamed", () => {
  const answerMark = promptIds(tokenizer, "q").after[0]; // <|answer|>, a prompt-format token
  for (const answer of ["Algiers", "2,381,741 sq km", " x", "Ünïcode ✓"]) {
    const ids = answerTokens(tokenizer, answer);
    const want = answer.replace(/^\s+/, "");
    assert.equal(answerDecoder(tokenizer).decode([...ids, answerMark]), want);
    const stream = new AnswerText(answerDecoder(tokenizer));
    const text = ids.map((id) => stream.push(id).text).join("") + stream.flush();
    assert.equal(text, want);
  }
  // Only one space is the prompt's: an answer that starts with more keeps the rest.
  assert.equal(answerDecoder(tokenizer).decode(tokenizer.encode("  two")), " two");
});

test("prompt: earlier turns' answers are read by the same rule", () => {
  const withHistory = [
    ...promptIds(tokenizer, "And its area?", undefined, [{ question: "Capital?", answer: "Algiers" }]).before,
  ];
  assert.ok(contains(withHistory, answerTokens(tokenizer, "Algiers")));
  assert.ok(!contains(withHistory, tokenizer.encode("Algiers", { allowSpecial: false })));
});

test("prompt: the query heuristic reads each chunk with its passage's title and the end of the chunk before", () => {
  const passages = promptPassages(
    tokenizer,
    [
      {
        title: "Algeria — Government",
        text: "Country name: Algeria\nGovernment type: republic\nCapital - name: Algiers\nCapital - time: UTC+1",
      },
      "Another passage without a title, long enough for two chunks of sixteen tokens each here.",
    ],
    16,
  );
  const chunks = chunkQueryTexts(tokenizer, passages);
  const texts = chunks.map((c) => c.text);
  assert.deepEqual(
    chunks.map((c) => c.title),
    passages.flatMap((p, i) => p.chunks.map(() => ["Algeria — Government", ""][i])),
    "each chunk carries its passage's title",
  );
  assert.equal(texts.length, passages[0].chunks.length + passages[1].chunks.length);
  assert.ok(texts.slice(0, passages[0].chunks.length).every((t) => t.startsWith("1 Algeria — Government ")));
  assert.ok(texts.slice(passages[0].chunks.length).every((t) => t.startsWith("2 ")));
  // The chunk that holds the answer also shows the key before it, and never text of another passage.
  const j = passages[0].chunks.findIndex((c) => tokenizer.decode([...c]).includes("Algiers"));
  assert.ok(j > 0, "the value is not in the first chunk");
  const prev = tokenizer.decode([...passages[0].chunks[j - 1].subarray(-QUERY_OVERLAP)]);
  assert.ok(texts[j].includes(prev + tokenizer.decode([...passages[0].chunks[j]])));
  assert.ok(!texts[passages[0].chunks.length].includes("UTC"), "no overlap across passages");
});
