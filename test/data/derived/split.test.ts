import assert from "node:assert/strict";
import { test } from "node:test";
import "../../helpers.js";
import { parseSplits, splitOf } from "../../../src/data/derived/split.js";
import { splitBucket } from "../../../src/tokenizer/corpus.js";

test("splitOf pins real document ids to their splits", () => {
  const pinned: [string, number, string][] = [
    ["factbook/ag/Government", 26, "train"],
    ["factbook/ja/Geography", 80, "train"],
    ["factbook/ja/People and Society", 92, "validation"],
    ["austen/emma/20", 91, "validation"],
    ["dict-elements/0", 91, "validation"],
    ["austen/emma/18", 98, "test"],
    ["sotu/1809_james_madison_dr", 99, "test"],
    ["manpages/man1/iconv.1.gz", 48, "train"],
  ];
  for (const [id, bucket, split] of pinned) {
    assert.equal(splitBucket(id), bucket, id);
    assert.equal(splitOf(id), split, id);
  }
});

test("split proportions are about 90/5/5", () => {
  const n = 20000;
  const c = { train: 0, validation: 0, test: 0 };
  for (let i = 0; i < n; i++) c[splitOf(`doc/${i}`)]++;
  assert.ok(Math.abs(c.train / n - 0.9) < 0.01, JSON.stringify(c));
  assert.ok(Math.abs(c.validation / n - 0.05) < 0.01, JSON.stringify(c));
  assert.ok(Math.abs(c.test / n - 0.05) < 0.01, JSON.stringify(c));
});

test("parseSplits", () => {
  assert.deepEqual(parseSplits("validation,test"), ["validation", "test"]);
  assert.deepEqual(parseSplits("all"), ["train", "validation", "test"]);
  assert.throws(() => parseSplits("dev"), /unknown split "dev"/);
});
