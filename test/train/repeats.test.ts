// Copy-rich streams (`train repeats`): every repeat is the segment just before it, text segments are the
// source's tokens, random ids are ordinary ids, and the share of repeats follows the probability asked for.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { Rng } from "../../src/engine/random.js";
import { copiedFraction, repeatStream, type RepeatOptions } from "../../src/train/repeats.js";

const source = Uint16Array.from({ length: 5000 }, (_, i) => 10 + ((i * 7919) % 3000));
const base: RepeatOptions = {
  tokens: 60_000,
  repeat: 0.5,
  random: 0.25,
  min: 4,
  max: 24,
  firstOrdinary: 5,
  vocab: 8192,
};

test("repeats: each repeat equals the segment right before it; text comes from the source", () => {
  const { tokens, segments } = repeatStream(source, base, new Rng(3));
  assert.equal(tokens.length, base.tokens);
  let at = 0;
  let copies = 0;
  let randoms = 0;
  segments.forEach((s, i) => {
    assert.equal(s.start, at, `segment ${i} starts where the one before ended`);
    at += s.length;
    const mine = tokens.subarray(s.start, s.start + s.length);
    if (s.copyOf !== null) {
      copies++;
      const prev = segments[i - 1];
      assert.equal(s.copyOf, prev.start);
      assert.equal(s.length, prev.length);
      assert.deepEqual(mine, tokens.subarray(prev.start, prev.start + prev.length), `segment ${i}`);
    } else if (s.random) {
      randoms++;
      for (const id of mine) assert.ok(id >= base.firstOrdinary && id < base.vocab, `random id ${id}`);
    } else {
      assert.notEqual(s.from, null);
      assert.deepEqual(mine, source.subarray(s.from!, s.from! + s.length));
    }
    if (s.copyOf === null)
      assert.ok(s.length >= base.min && (s.length <= base.max || i === segments.length - 1));
  });
  assert.equal(at, base.tokens);
  assert.ok(copies > 100 && randoms > 100);
  // Half the segments are repeated: a third of the tokens are copies.
  const f = copiedFraction(segments, tokens.length);
  assert.ok(Math.abs(f - 1 / 3) < 0.03, `copied fraction ${f}`);
});

test("repeats: no repeats and no random ids when their probabilities are 0; seeds reproduce", () => {
  const o = { ...base, repeat: 0, random: 0, tokens: 5000 };
  const a = repeatStream(source, o, new Rng(1));
  assert.equal(copiedFraction(a.segments, a.tokens.length), 0);
  assert.ok(a.segments.every((s) => s.from !== null && !s.random));
  assert.deepEqual(repeatStream(source, o, new Rng(1)).tokens, a.tokens);
  assert.notDeepEqual(repeatStream(source, o, new Rng(2)).tokens, a.tokens);
});

test("repeats: bad options are refused with the option's name", () => {
  assert.throws(
    () => repeatStream(source, { ...base, repeat: 1.5 }, new Rng(1)),
    /repeat must be in \[0, 1\]/,
  );
  assert.throws(
    () => repeatStream(source, { ...base, min: 30, max: 20 }, new Rng(1)),
    /max must be an integer ≥ 30/,
  );
  assert.throws(
    () => repeatStream(source.subarray(0, 10), base, new Rng(1)),
    /source stream \(10 tokens\) is shorter than a segment/,
  );
});
