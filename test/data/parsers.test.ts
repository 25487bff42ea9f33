// Each format parser on a small fixture cut from the real package file (test/fixtures/data/README.md).
import "../helpers.js";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { splitChapters } from "../../src/data/parsers/austen.js";
import { detokenize, parseBrown } from "../../src/data/parsers/brown.js";
import { decodeB64Number, parseDictd } from "../../src/data/parsers/dictd.js";
import { factbookCountryName, parseFactbook } from "../../src/data/parsers/factbook.js";
import { parseFortunes } from "../../src/data/parsers/fortune.js";
import { htmlTitle, htmlToText } from "../../src/data/parsers/html.js";
import { podInline, podToText } from "../../src/data/parsers/pod.js";
import { readLazyLoadDb, readRds, rStrings } from "../../src/data/parsers/rdata.js";
import { macroArgs, roffEscapes, roffInclude, roffToText } from "../../src/data/parsers/roff.js";
import { chapters, osisToText, readZText } from "../../src/data/parsers/sword.js";
import { readTar } from "../../src/data/tar.js";

const FIX = fileURLToPath(new URL("../../../test/fixtures/data/", import.meta.url));
const fx = (name: string) => readFileSync(FIX + name);
const fxText = (name: string) => readFileSync(FIX + name, "utf8");

test("dictd: base64 numbers, merged headwords, database entries dropped, sorted by offset", () => {
  assert.equal(decodeB64Number("A"), 0);
  assert.equal(decodeB64Number("Gp"), 6 * 64 + 41);
  const entries = parseDictd(fxText("elements.index"), fx("elements.dict.dz"));
  assert.deepEqual(
    entries.map((e) => e.headwords),
    [["c", "carbon"], ["helium"], ["hydrogen"], ["lithium"]].sort(
      (a, b) =>
        entries.findIndex((e) => e.headwords[0] === a[0]) - entries.findIndex((e) => e.headwords[0] === b[0]),
    ),
  );
  const h = entries.find((e) => e.headwords.includes("hydrogen"));
  assert.ok(h !== undefined && h.text.startsWith("hydrogen\nSymbol: H\nAtomic number: 1\n"), h?.text);
  assert.ok(!entries.some((e) => e.headwords.some((w) => w.startsWith("00"))));
  for (let i = 1; i < entries.length; i++) assert.ok(entries[i - 1].offset < entries[i].offset);
  assert.ok(entries.every((e) => e.text === e.text.trim() && e.text.length > 20));
});

test("SWORD zText: verse slots, chapters at OSIS markers, notes dropped without stray spaces", () => {
  const slots = readZText({ bzs: fx("sword-ot.bzs"), bzv: fx("sword-ot.bzv"), bzz: fx("sword-ot.bzz") });
  assert.equal(slots.length, 11);
  assert.equal(slots[0], ""); // the module heading slot is empty here
  assert.equal(slots[1].slice(0, 10), "<milestone");
  const ch = chapters(slots);
  assert.deepEqual(
    ch.map((c) => c.osisId),
    ["Gen.1", "Gen.2"],
  );
  assert.ok(
    ch[0].text.startsWith(
      "1 In the beginning, God created the heavens and the earth.\n2 The earth was formless",
    ),
    ch[0].text,
  );
  assert.equal(ch[0].text.split("\n").length, 4);
  assert.equal(ch[1].text, "1 The heavens, the earth.");
  assert.equal(osisToText('a<note n="1">x</note> b<note>y</note>? &amp; <w>c</w>'), "a b? & c");
});

test("R serialization: lazy-load database with a character vector, symbol references, names", () => {
  const vars = readLazyLoadDb(fx("Rdata.rdx"), fx("Rdata.rdb"));
  assert.deepEqual([...vars.keys()], ["emma"]);
  const lines = rStrings(vars.get("emma"));
  assert.equal(lines.length, 20);
  assert.equal(lines[0], "EMMA");
  const parts = splitChapters(lines);
  assert.deepEqual(
    parts.map((p) => p.split("\n")[0]),
    ["EMMA", "CHAPTER I", "CHAPTER II"],
  );
  assert.equal(parts[0], "EMMA\n\nBy Jane Austen\n\n\n\n\nVOLUME I");
  assert.throws(() => readRds(Buffer.from("RDX2\n")), /not an XDR serialization/);
});

test("Factbook JSON: `Field - sub: value` lines per section, empty sections skipped", () => {
  const json = JSON.parse(fxText("factbook-ag.json")) as Record<string, never>;
  assert.equal(factbookCountryName(json), "Algeria");
  const secs = parseFactbook(json);
  assert.deepEqual(
    secs.map((s) => s.section),
    ["Introduction", "Geography", "People and Society", "Government", "Military"],
  );
  const geo = secs[1].text.split("\n");
  assert.ok(geo.includes("Area - total: 2,381,741 sq km"), geo.join("\n"));
  assert.ok(geo.includes("Elevation extremes - highest point: Tahat 3,003 m"));
  const gov = secs[3].text;
  assert.match(gov, /^Capital - name: Algiers$/m);
  assert.match(gov, /^Independence: 5 July 1962 \(from France\)$/m);
  assert.equal(secs[4].text, "Military - note:"); // empty value: the document text is trimmed
  assert.match(secs[2].text, /religious affiliation:\n\n {10}\n\n\nPopulation: 39,542,166/); // values kept verbatim
});

test("Brown corpus: tags stripped, quotes and punctuation attached, paragraphs kept", () => {
  const text = parseBrown(fxText("brown-ca01"));
  assert.ok(
    text.startsWith(
      "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence'' that any irregularities took place.\n\nThe jury further said",
    ),
    text.slice(0, 300),
  );
  assert.ok(!/\/[a-z]/.test(text.split("\n")[0]));
  assert.equal(
    detokenize(["He", "said", "``", "yes", "''", ",", "then", "left", "."]),
    `He said "yes'', then left.`,
  );
});

test("fortunes: % separated, blank entries keep their numbers", () => {
  const f = parseFortunes(fxText("fortunes-tao"));
  assert.equal(f[0].index, 2); // the file starts with two empty entries
  assert.ok(f[0].text.startsWith("The Way\n\nThe Way that can be experienced is not true;"));
  assert.ok(f.every((e) => e.text === e.text.trim() && !e.text.includes("\n%\n")));
});

test("HTML: title, navigation dropped, blocks as paragraphs, definition terms as lines", () => {
  const html = fxText("postgres-acronyms.html");
  assert.equal(htmlTitle(html), "Appendix\u00a0L.\u00a0Acronyms");
  const text = htmlToText(html);
  assert.ok(
    text.startsWith(
      "Appendix L. Acronyms\n\nThis is a list of acronyms commonly used in the PostgreSQL\ndocumentation",
    ),
    text.slice(0, 200),
  );
  assert.ok(text.includes("\n\nANSI\n\nAmerican National Standards Institute\n\n"));
  assert.ok(text.includes("American Standard\nCode for Information Interchange"));
  assert.ok(!text.includes("Prev") && !text.includes("<"));
});

test("POD: pod2text layout, formatting codes", () => {
  assert.equal(
    podInline(
      "B<bold> I<it> C<code> C<$x> C<1> C<< a->b >> F<file> L<perlfunc/open> L<text|perlop> E<gt>X<idx>",
    ),
    'bold *it* "code" $x 1 "a->b" file "open" in perlfunc text >',
  );
  const text = podToText(fxText("perlintro.pod"));
  assert.ok(
    text.startsWith("NAME\n\n    perlintro - a brief introduction and overview of Perl\n\nDESCRIPTION\n\n"),
    text.slice(0, 200),
  );
  for (const line of text.split("\n")) assert.ok(line.length <= 76 || line.startsWith("        "), line);
  assert.match(text, /^ {5}#!\/usr\/bin\/perl$/m); // verbatim " #!/usr/bin/perl" kept, indented by 4
  assert.match(text, /^ {2}\S/m); // =head2 indented by 2
});

test("roff man pages: header, NAME, filled text, hanging tags, includes", () => {
  assert.equal(roffEscapes("\\fBbold\\fR \\- x \\(em y \\*(lqq\\*(rq \\e"), "bold - x — y “q” \\");
  assert.deepEqual(macroArgs('a "b c" d'), ["a", "b c", "d"]);
  const text = roffToText(fxText("getent.1"));
  const lines = text.split("\n");
  assert.match(lines[0], /^getent\(1\) +General Commands Manual +getent\(1\)$/);
  assert.equal(lines[0].length, 78);
  assert.ok(
    text.includes("NAME\n       getent - get entries from Name Service Switch libraries\n\nSYNOPSIS\n"),
    text.slice(0, 400),
  );
  assert.match(text, /^ {10}ahosts {4}When no key is provided, use sethostent\(3\)/m);
  assert.match(text, /^Linux man-pages 6\.03 +2023-01-07 +getent\(1\)$/m);
  for (const line of lines) assert.ok(line.length <= 78 || !line.includes(" "), line);
  assert.equal(roffInclude(fxText("so-link.3")), "man3/printf.3");
  assert.equal(roffInclude(fxText("getent.1")), null);
});

test("tar: npm tarball files, pax long names", () => {
  const files = readTar(fx("npm-sample.tgz"));
  assert.equal(files.size, 3);
  assert.ok([...files.keys()].some((k) => k.length > 100 && k.endsWith(".json")));
  const sotu = JSON.parse(
    (files.get("package/sotu/data/1790_george_washington_n.json") as Buffer).toString("utf8"),
  ) as { year: number };
  assert.equal(sotu.year, 1790);
});
