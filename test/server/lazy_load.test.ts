// Commands that do not serve or search do not load Fastify or LanceDB (startup time, and a training run
// should not need the server's dependencies); the ones that do, do.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** Packages a command resolved (an ESM resolve hook prints the heavy ones). */
function loaded(args: string[]): { heavy: string[]; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), "refrag-lazy-"));
  try {
    const hooks = join(dir, "hooks.mjs");
    writeFileSync(
      hooks,
      `export async function resolve(spec, ctx, next) {
  if (/^(fastify|@lancedb\\/lancedb|prom-client)$/.test(spec)) process.stderr.write("LOADED " + spec + "\\n");
  return next(spec, ctx);
}\n`,
    );
    const register = join(dir, "register.mjs");
    writeFileSync(
      register,
      `import { register } from "node:module";\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
    );
    const r = spawnSync(
      process.execPath,
      ["--import", `file://${register}`, main, "--threads", "1", ...args],
      {
        encoding: "utf8",
      },
    );
    return { heavy: [...r.stderr.matchAll(/^LOADED (.*)$/gm)].map((m) => m[1]).sort(), status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("lazy loading: `refrag info` and `train --help` load neither Fastify nor LanceDB", () => {
  const info = loaded(["info"]);
  assert.equal(info.status, 0);
  assert.deepEqual(info.heavy, []);
  assert.deepEqual(loaded(["train", "decoder", "--help"]).heavy, []);
  // The check itself works: searching an index loads LanceDB (and fails on the missing folder).
  const search = loaded(["retrieve", "q", "--index", join(tmpdir(), "refrag-no-such-index")]);
  assert.notEqual(search.status, 0);
  assert.deepEqual(search.heavy, ["@lancedb/lancedb"]);
});
