// writeFileAtomicSync, the synchronous atomic writer behind data files, token streams, reports and settings:
// it replaces a file whole, writes through a symbolic link (the link stays), refuses a folder before writing
// anything, and leaves no temp file beside its target: its own, or one an interrupted writer left.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeFileAtomicSync } from "../../src/io/atomic.js";

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "refrag-atomic-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("writeFileAtomicSync writes and replaces whole files, strings and bytes, with no temp left", () => {
  withDir((dir) => {
    const f = join(dir, "a.json");
    writeFileAtomicSync(f, "first, and longer than the second\n");
    writeFileAtomicSync(f, "second\n");
    assert.equal(readFileSync(f, "utf8"), "second\n");
    const bytes = new Uint8Array([0, 1, 2, 250, 251]);
    writeFileAtomicSync(join(dir, "b.u16"), bytes.subarray(1, 4));
    assert.deepEqual([...readFileSync(join(dir, "b.u16"))], [1, 2, 250]);
    assert.deepEqual(readdirSync(dir).sort(), ["a.json", "b.u16"]);
  });
});

test("writeFileAtomicSync writes through a symbolic link and keeps the link", () => {
  withDir((dir) => {
    mkdirSync(join(dir, "real"));
    writeFileSync(join(dir, "real", "t.json"), "old");
    symlinkSync(join(dir, "real", "t.json"), join(dir, "link.json"));
    writeFileAtomicSync(join(dir, "link.json"), "new");
    assert.ok(lstatSync(join(dir, "link.json")).isSymbolicLink());
    assert.equal(readFileSync(join(dir, "real", "t.json"), "utf8"), "new");
    symlinkSync(join(dir, "missing"), join(dir, "dangling"));
    assert.throws(
      () => writeFileAtomicSync(join(dir, "dangling"), "x", "report"),
      /report .*dangling: a symbolic link to something missing/,
    );
  });
});

test("writeFileAtomicSync refuses a folder before writing, leaving nothing beside it", () => {
  withDir((dir) => {
    mkdirSync(join(dir, "out"));
    writeFileSync(join(dir, "out", "keep.txt"), "mine");
    assert.throws(
      () => writeFileAtomicSync(join(dir, "out"), "x", "token stream"),
      /token stream .*out: is a folder; refusing to replace it/,
    );
    assert.deepEqual(readdirSync(dir), ["out"]);
    assert.equal(readFileSync(join(dir, "out", "keep.txt"), "utf8"), "mine");
  });
});

test("writeFileAtomicSync removes the temp file a dead writer left, and keeps a live writer's", () => {
  withDir((dir) => {
    const dead = Number(spawnSync(process.execPath, ["-p", "process.pid"], { encoding: "utf8" }).stdout);
    const live = 1; // init: always alive, another process
    writeFileSync(join(dir, `.a.json.tmp-${dead}-0badcafe`), "half a file");
    writeFileSync(join(dir, `.a.json.tmp-${live}-0badcafe`), "another writer's, in progress");
    writeFileSync(join(dir, `.b.json.tmp-${dead}-0badcafe`), "another target's");
    writeFileAtomicSync(join(dir, "a.json"), "whole");
    assert.deepEqual(readdirSync(dir).sort(), [
      `.a.json.tmp-${live}-0badcafe`,
      `.b.json.tmp-${dead}-0badcafe`,
      "a.json",
    ]);
  });
});
