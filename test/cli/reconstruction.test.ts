// `refrag eval reconstruction --out` names the exact held-out stream it read (token count and sha256): the
// stream is rebuilt from registries whose package versions move, so a path alone does not say which one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import "../helpers.js";
import { saveTokenStream } from "../../src/train/tokens.js";
import { saveTinyRefrag, tokenizer } from "../tiny_refrag.js";

const main = new URL("../../src/cli/main.js", import.meta.url).pathname;

test("eval reconstruction records the held-out stream's token count and sha256", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refrag-rec-"));
  try {
    await saveTinyRefrag(join(dir, "m"), 4, 64, 1);
    const tokens = new Uint16Array(600).map((_, i) => 10 + ((i * 7919) % (tokenizer.vocabSize - 10)));
    const data = join(dir, "valid.u16");
    saveTokenStream(data, {
      tokens,
      info: {
        split: "validation",
        tokens: tokens.length,
        documents: 1,
        sources: {},
        tokenizerSha256: "",
        files: [],
      },
    });
    const out = join(dir, "table.json");
    const r = spawnSync(
      process.execPath,
      [
        main,
        "--threads",
        "1",
        "eval",
        "reconstruction",
        "--model",
        `a=${join(dir, "m")}`,
        "--data",
        data,
        "--chunks",
        "1,2",
        "--windows",
        "2",
        "--out",
        out,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const sha = createHash("sha256").update(readFileSync(data)).digest("hex");
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      data: string;
      dataTokens: number;
      dataSha256: string;
    };
    assert.equal(json.data, data);
    assert.equal(json.dataTokens, 600);
    assert.equal(json.dataSha256, sha);
    assert.match(
      readFileSync(join(dir, "table.md"), "utf8"),
      new RegExp(`600 tokens, sha256 ${sha.slice(0, 16)}`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
