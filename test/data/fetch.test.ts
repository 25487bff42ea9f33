// fetchDeb extracts a Debian package found in its cache with dpkg-deb. The cache folder may be given
// relative to the working directory (`refrag demo --home runs/demo-home`): dpkg-deb runs in another
// folder, so every path it gets must be absolute (a relative one named a file that is not there).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { debRoot, fetchDeb } from "../../src/data/fetch.js";

const noDpkg = spawnSync("dpkg-deb", ["--version"]).status !== 0;

test(
  "fetchDeb: a cached .deb is extracted, also with a relative cache folder",
  { skip: noDpkg && "no dpkg-deb" },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "refrag-fetch-"));
    try {
      // A one-file package built here (offline): usr/share/doc/refrag-probe/hello.txt.
      const src = join(dir, "src");
      mkdirSync(join(src, "DEBIAN"), { recursive: true });
      mkdirSync(join(src, "usr/share/doc/refrag-probe"), { recursive: true });
      writeFileSync(
        join(src, "DEBIAN/control"),
        "Package: refrag-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: refrag <refrag@localhost>\nDescription: test\n",
      );
      writeFileSync(join(src, "usr/share/doc/refrag-probe/hello.txt"), "hello\n");
      const cache = join(dir, "cache");
      mkdirSync(join(cache, "deb"), { recursive: true });
      const built = spawnSync("dpkg-deb", ["--build", src, join(cache, "deb", "refrag-probe_1.0_all.deb")]);
      assert.equal(built.status, 0, String(built.stderr));
      const rec = fetchDeb(relative(process.cwd(), cache), "refrag-probe");
      assert.equal(rec.version, "1.0");
      assert.equal(rec.file, join("deb", "refrag-probe_1.0_all.deb"));
      const hello = join(debRoot(cache, "refrag-probe"), "usr/share/doc/refrag-probe/hello.txt");
      assert.equal(readFileSync(hello, "utf8"), "hello\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
