// The native addon must be built and complete: kernel tests elsewhere skip their native halves when it is
// missing, so this test is what fails a broken build.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { kernels } from "../../src/engine/kernels/index.js";
import { cpuFeatures, loadAddon, numThreads, setNumThreads } from "../../src/engine/native.js";

test(
  "the native addon is built and every kernel family binds to it",
  { skip: process.env.REFRAG_BACKEND === "ref" },
  () => {
    assert.notEqual(loadAddon(), null, "build/Release/refrag.node is missing: run `npm run build:native`");
    assert.equal(kernels.native, true, "a kernel family fell back to the TypeScript reference");
    const cpu = cpuFeatures();
    assert.ok(cpu.avx2 || cpu.avx512, "x86-64 with AVX2 or AVX-512 expected");
  },
);

test(
  "thread count is configurable and tests run on one thread",
  { skip: process.env.REFRAG_BACKEND === "ref" },
  () => {
    assert.equal(numThreads(), 1);
    setNumThreads(2);
    assert.equal(numThreads(), 2);
    setNumThreads(1);
    assert.throws(() => setNumThreads(0), /positive integer/);
  },
);
