// Sizes that reach native code: the C++ side (called directly, past the TypeScript checks) and the checked
// kernels both throw errors naming the op and the sizes, never crash or abort, and RoPE's tables stay
// bounded. Each case runs in a child process, so a segfault or an abort fails the test instead of the runner.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { kernels } from "../../src/engine/kernels/index.js";
import { loadAddon } from "../../src/engine/native.js";
import { describeExit, runModule } from "../../src/fuzz/child.js";

const nativeUrl = new URL("../../src/engine/native.js", import.meta.url).href;
const noAddon = { skip: loadAddon() === null || process.env.REFRAG_BACKEND === "ref" };

/** Calls `a.<op>(...)` for each case in a child; returns each case's error message (or "accepted"). */
function runCases(cases: [string, string][]): Map<string, string> {
  const body = cases
    .map(
      ([name, call]) =>
        `try { ${call}; out[${JSON.stringify(name)}] = "accepted"; } catch (e) { out[${JSON.stringify(name)}] = String(e.message); }`,
    )
    .join("\n");
  const r = runModule(
    `import { loadAddon } from ${JSON.stringify(nativeUrl)};
     const a = loadAddon(); const f = (n) => new Float32Array(n); const out = {};
     ${body}
     console.log(JSON.stringify(out));`,
  );
  assert.equal(r.status, 0, `the child process died: ${describeExit(r)}`);
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, string>));
}

const ATTN = (dims: string, scale = "1", n = 8) =>
  `a.attentionForward(${dims}, false, ${scale}, f(${n}), f(${n}), f(${n}), null, f(${n}), f(${n}))`;

test("native attention refuses sizes whose products overflow or exceed the limits", noAddon, () => {
  const got = runCases([
    ["Tq 2^32", ATTN("1, 2 ** 32, 1, 2 ** 32, 1, 1, 0")],
    ["Tk 2^62", ATTN("1, 1, 2 ** 62, 1, 1, 1, 0")],
    ["product wraps", ATTN("2 ** 31 - 1, 2 ** 31 - 1, 1, 2 ** 31 - 1, 1, 2 ** 31 - 1, 0")],
    ["fraction", ATTN("1, 1.5, 1, 1, 1, 1, 0")],
    ["NaN size", ATTN("1, NaN, 1, 1, 1, 1, 0")],
    ["NaN scale", ATTN("1, 1, 1, 1, 1, 1, 0", "NaN")],
    ["qOffset", ATTN("1, 1, 1, 1, 1, 1, 2 ** 40")],
    ["scratch", ATTN("1, 17, 1, 1, 1, 2 ** 22, 0")],
    [
      "backward wraps",
      `a.attentionBackward(2 ** 31 - 1, 2 ** 31 - 1, 1, 2 ** 31 - 1, 1, 2, 0, false, 1, ${"f(8), ".repeat(3)}null, ${"f(8), ".repeat(5)}f(8))`,
    ],
    ["ok", ATTN("1, 1, 1, 1, 1, 8, 0")],
  ]);
  const expect: [string, RegExp][] = [
    ["Tq 2^32", /^attentionForward: Tq must be an integer in \[0, 2147483647\], got 4294967296$/],
    ["Tk 2^62", /^attentionForward: Tk must be an integer in \[0, 2147483647\], got 4\.6\d*e\+18$/],
    ["product wraps", /^attentionForward: size of q \(B=2147483647 Tq=2147483647 .*\) overflows 64 bits$/],
    ["fraction", /Tq must be an integer .* got 1\.5$/],
    ["NaN size", /Tq must be an integer .* got nan$/],
    ["NaN scale", /scale must be a finite number, got nan$/],
    ["qOffset", /qOffset must be an integer in \[0, 2147483647\], got 1099511627776$/],
    ["scratch", /^attentionForward: scratch of \d+ bytes exceeds the limit of 536870912 \(B=1 Tq=17/],
    ["backward wraps", /^attentionBackward: size of q .* overflows 64 bits$/],
    ["ok", /^accepted$/],
  ];
  for (const [name, re] of expect) assert.match(got.get(name) ?? "", re, name);
});

test("native rope refuses huge head dims and non-finite theta, and its tables stay bounded", noAddon, () => {
  const got = runCases([
    ["D 2^40", "a.rope(0, 0, 2 ** 40, 10000, new Int32Array(0), f(0), false)"],
    ["theta NaN", "a.rope(1, 1, 4, NaN, new Int32Array(1), f(4), false)"],
    ["theta 0", "a.rope(1, 1, 4, 0, new Int32Array(1), f(4), false)"],
    ["T*H*D wraps", "a.rope(2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 2, 1e4, new Int32Array(0), f(0), false)"],
    ["empty with a huge D", "a.rope(0, 1, 2 ** 30, 10000, new Int32Array(0), f(0), false)"],
    ["ignoreIndex NaN", "a.crossEntropyForward(1, 2, f(2), new Int32Array(1), NaN, f(1))"],
    ["threads 1.5", "a.setNumThreads(1.5)"],
    [
      "300 thetas",
      `for (let i = 0; i < 300; i++) a.rope(1, 1, 64, 10000 + i, new Int32Array([65535]), f(64), false);
       if (process.memoryUsage().rss > 600 * 2 ** 20) throw new Error("rss " + process.memoryUsage().rss)`,
    ],
  ]);
  const expect: [string, RegExp][] = [
    ["D 2^40", /^rope: D must be an integer in \[0, 2147483647\], got 1099511627776$/],
    ["theta NaN", /^rope: theta must be a finite number, got nan$/],
    ["theta 0", /^rope: theta must be > 0, got 0$/],
    ["T*H*D wraps", /^rope: size of x .* overflows 64 bits$/],
    ["empty with a huge D", /^accepted$/],
    [
      "ignoreIndex NaN",
      /^crossEntropyForward: ignoreIndex must be an integer in \[-2147483648, 2147483647\], got nan$/,
    ],
    ["threads 1.5", /^setNumThreads: thread count must be an integer in \[1, 256\], got 1\.5$/],
    ["300 thetas", /^accepted$/],
  ];
  for (const [name, re] of expect) assert.match(got.get(name) ?? "", re, name);
});

test("the checked kernels refuse the same sizes before the call, naming op and sizes", () => {
  const f = (n: number) => new Float32Array(n);
  const attn = (B: number, Tq: number, Tk: number, D: number) => () =>
    kernels.attention.attentionForward(B, Tq, Tk, 1, 1, D, 0, false, 1, f(8), f(8), f(8), null, f(8), f(8));
  assert.throws(
    attn(1, 2 ** 32, 1, 1),
    /^TypeError: attentionForward: Tq must be an integer in \[0, 2147483647\]/,
  );
  assert.throws(
    attn(2 ** 31 - 1, 2 ** 31 - 1, 1, 2 ** 31 - 1),
    /attentionForward: size of q \(B=2147483647 Tq=2147483647 .*\) overflows/,
  );
  assert.throws(
    attn(1, 2, 1, 8),
    /attentionForward: q has 8 elements, needs 16 \(B=1 Tq=2 Tk=1 Hq=1 Hkv=1 D=8\)/,
  );
  assert.throws(
    () => kernels.pointwise.rope(0, 0, 2 ** 40, 10000, new Int32Array(0), f(0), false),
    /^TypeError: rope: D must be an integer/,
  );
  assert.throws(
    () => kernels.pointwise.rope(1, 1, 4, NaN, new Int32Array(1), f(4), false),
    /rope: theta must be a finite number, got NaN/,
  );
  assert.throws(
    () => kernels.gemm.gemm(false, false, 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1, 1, f(1), f(1), 0, f(1)),
    /gemm: size of A \(2147483647 x 2147483647\) overflows/,
  );
  const add = kernels.pointwise.add as (...a: Float32Array[]) => void;
  assert.throws(() => add(f(2), f(2)), /add: expected 3 arguments, got 2/);
});
