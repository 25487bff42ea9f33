// The thread pool: restarting it (setNumThreads) between jobs leaves no worker running astray. A worker
// started after earlier jobs once ran a pass of its own at once; its extra decrement of the pool's count of
// busy workers could land just after a job's last one, and the caller then waited forever (CI hung in
// test/engine/gemv_kmajor.test.ts, which switches between 1 and 2 threads many times). Each case runs in
// a child process with a timeout, so a hang fails the test instead of stopping the runner.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { loadAddon } from "../../src/engine/native.js";
import { describeExit, runModule } from "../../src/fuzz/child.js";

const nativeUrl = new URL("../../src/engine/native.js", import.meta.url).href;
const noAddon = { skip: loadAddon() === null || process.env.REFRAG_BACKEND === "ref" };

// A product split over the threads: R = 1, N = 1,024 outputs in several blocks, K = 256 (above the
// one-thread cut-off), so every call with 2 threads wakes the worker.
const prelude = `import { loadAddon } from ${JSON.stringify(nativeUrl)};
  const a = loadAddon();
  const N = 1024, K = 256;
  const x = new Float32Array(K).fill(1), w = new Float32Array(K * N).fill(0.5), y = new Float32Array(N);
  const job = () => a.gemvKMajor(1, N, K, 1, x, w, 0, y);
  const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);`;

test(
  "thread pool: a restarted pool's workers wait for the next job (none busy between jobs)",
  noAddon,
  () => {
    const r = runModule(
      `${prelude}
     const seen = [];
     a.setNumThreads(2);
     job();
     seen.push(a.poolActive());
     for (let i = 0; i < 5; i++) {
       a.setNumThreads(1);
       a.setNumThreads(2);
       sleep(30);  // time for a new worker to run astray, if it would
       seen.push(a.poolActive());
       job();
       seen.push(a.poolActive());
     }
     if (y[0] !== 128 || y[N - 1] !== 128) throw new Error("wrong product " + y[0] + " " + y[N - 1]);
     console.log(JSON.stringify(seen));`,
      { timeoutMs: 30_000 },
    );
    assert.equal(r.status, 0, `the child process failed: ${describeExit(r)}`);
    assert.deepEqual(JSON.parse(r.stdout), new Array(11).fill(0));
  },
);

test("thread pool: 20,000 restarts between jobs never hang", noAddon, () => {
  const r = runModule(
    `${prelude}
     for (let i = 0; i < 20000; i++) {
       a.setNumThreads(2);
       job();
       a.setNumThreads(1);
     }
     console.log("done");`,
    { timeoutMs: 60_000 },
  );
  assert.equal(r.status, 0, `the child process failed: ${describeExit(r)}`);
  assert.equal(r.stdout.trim(), "done");
});
