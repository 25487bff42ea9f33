// The split rule is fixed (other code and saved token streams depend on it): pinned ids per split.
import "../helpers.js";
import assert from "node:assert/strict";
import { test } from "node:test";
import { splitBucket, splitOf } from "../../src/data/split.js";

test("splitOf: pinned ids keep their split (sha256 bucket mod 100)", () => {
  const pins: [string, number, string][] = [
    ["sotu/1790_george_washington_n", 0, "train"],
    ["factbook/ag/Government", 26, "train"],
    ["manpages/man1/getent.1.gz", 76, "train"],
    ["sotu/1815_james_madison_dr", 90, "validation"],
    ["sotu/1809_james_madison_dr", 99, "test"],
  ];
  for (const [id, bucket, split] of pins) {
    assert.equal(splitBucket(id), bucket, id);
    assert.equal(splitOf(id), split, id);
  }
});

test("splitOf: about 90/5/5 over many ids", () => {
  const n = { train: 0, validation: 0, test: 0 };
  for (let i = 0; i < 20000; i++) n[splitOf(`doc/${i}`)]++;
  assert.ok(Math.abs(n.train / 20000 - 0.9) < 0.01, JSON.stringify(n));
  assert.ok(Math.abs(n.validation / 20000 - 0.05) < 0.01, JSON.stringify(n));
});
