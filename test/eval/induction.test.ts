// The copy probe scores exactly the two copies of each span: an oracle that predicts every token it has
// seen `length` positions before (a perfect induction head) scores 0 on the repeat and its own guess loss
// on the first copy; an off-by-one in the rows read would mix the two.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { inductionRows, probeCopies } from "../../src/eval/induction.js";
import { Rng } from "../../src/engine/random.js";

const BOS = 1;
/** Loss 0 where the next token equals the token `n` back (the span's length), else 5; the row before the
 * span's first token (predicting it from <bos>) costs 9. */
function oracle(n: number) {
  return (ids: Int32Array) =>
    Float32Array.from(ids, (_, i) =>
      i + 1 >= ids.length ? NaN : i === 0 ? 9 : i + 1 - n >= 1 && ids[i + 1] === ids[i + 1 - n] ? 0 : 5,
    );
}

test("induction probe: a perfect copier scores 0 on the repeat, the first copy is scored apart", () => {
  const rng = new Rng(1);
  // Distinct ids, so no token equals another by chance.
  const draw = () => rng.shuffle(Array.from({ length: 1000 }, (_, i) => 100 + i)).slice(0, 10);
  const r = probeCopies(oracle(10), BOS, draw, 4);
  assert.deepEqual([r.first, r.repeat], [5, 0]);
  // A copier that looks one position too far back copies nothing.
  const wrong = probeCopies(oracle(11), BOS, draw, 4);
  assert.equal(wrong.repeat, 5);
  const rows = inductionRows(oracle(50), {
    bos: BOS,
    vocab: 8192,
    text: Uint16Array.from({ length: 500 }, (_, i) => 200 + (i % 97)),
  });
  assert.deepEqual(
    rows.map((x) => [x.kind, x.first, x.repeat]),
    [
      ["random ids", 5, 0],
      ["text", 5, 0],
    ],
  );
  assert.throws(
    () => inductionRows(oracle(50), { bos: BOS, vocab: 8192, text: new Uint16Array(10) }),
    /fewer than 51/,
  );
});
