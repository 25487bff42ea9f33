// A short seeded fuzz run of every target (the big run is `npm run fuzz`): mutated safetensors,
// tokenizer.json, config.json, GGUF files, API bodies and kernel arguments, each case in a worker process.
// No crash, hang, memory over 1 GiB, HTTP 500, unclear error or silently accepted garbage.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { loadAddon } from "../../src/engine/native.js";
import { FAILURES, fuzzTarget } from "../../src/fuzz/runner.js";
import { TARGETS } from "../../src/fuzz/targets.js";

const CASES = Number(process.env.REFRAG_FUZZ_CASES ?? 150);

for (const target of TARGETS)
  test(
    `fuzz ${target}: ${CASES} seeded cases end in clear errors or valid results`,
    {
      skip: target === "kernels" && loadAddon() === null,
    },
    async () => {
      const r = await fuzzTarget(target, { cases: CASES, seed: 20261202, timeoutMs: 30_000 });
      const bad = r.examples.filter((e) => FAILURES.includes(e.kind));
      for (const k of FAILURES)
        assert.equal(
          r.counts[k],
          0,
          `${target}: ${r.counts[k]} ${k}\n${bad.map((e) => `  case ${e.case}: ${e.label} -> ${e.detail}`).join("\n")}`,
        );
      assert.equal(r.counts.accepted + r.counts.clear, CASES);
      assert.ok(
        r.counts.clear > 0 && r.counts.accepted > 0,
        `${target}: both outcomes occur (${JSON.stringify(r.counts)})`,
      );
    },
  );

test("the fuzz runner sees crashes, hangs and memory over the bound, and carries on after each", async () => {
  // Cases 0-3: fine, a segfault, a busy loop, 1.5 GB filled; the timeout leaves a loaded machine room to
  // fill the memory before the hang verdict would come.
  const r = await fuzzTarget("selftest", { cases: 4, seed: 1, timeoutMs: 15_000, maxRssMb: 512 });
  assert.deepEqual(
    {
      accepted: r.counts.accepted,
      crash: r.counts.crash,
      hang: r.counts.hang,
      overMemory: r.counts.overMemory,
    },
    { accepted: 1, crash: 1, hang: 1, overMemory: 1 },
  );
  assert.match(r.examples.find((e) => e.kind === "crash")!.detail ?? "", /SIGSEGV/);
});
