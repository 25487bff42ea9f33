// Shared test utilities: one compute thread, fresh seeds, relative-error comparisons.
import assert from "node:assert/strict";
import { cpuFeatures, loadAddon, setIsa, setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";

if (loadAddon() !== null) setNumThreads(1);

/** A fresh seed per call (printed on failure through the message), so random inputs vary run to run. */
export function freshRng(label = ""): { rng: Rng; seed: number } {
  const seed = (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
  void label;
  return { rng: new Rng(seed), seed };
}

/** max |a - b| / max(max |b|, floor): a scale-aware relative error (floor: the smallest scale used). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  assert.equal(a.length, b.length, "relErr: length mismatch");
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, floor);
}

/**
 * Assert a relative error below tol, with the seed in the message so a failure can be replayed. floor: the
 * smallest scale the error is relative to (a few values near a zero of the function would otherwise make
 * the error of the approximation unbounded).
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
  seed?: number,
  floor?: number,
): void {
  const e = relErr(actual, expected, floor);
  assert.ok(
    e <= tol,
    `${what}: relative error ${e.toExponential(3)} > ${tol}` + (seed === undefined ? "" : ` (seed ${seed})`),
  );
  let nonzero = false;
  for (let i = 0; i < expected.length && !nonzero; i++) nonzero = expected[i] !== 0;
  assert.ok(
    expected.length === 0 || nonzero,
    `${what}: expected values are all zero; the comparison proves nothing`,
  );
}

/** Runs body under every instruction set this CPU runs (AVX-512 first when present), then restores the detected one. */
export function eachIsa(body: (isa: "avx512" | "avx2") => void): void {
  const detected = cpuFeatures().isa;
  try {
    for (const isa of cpuFeatures().avx512 ? (["avx512", "avx2"] as const) : (["avx2"] as const)) {
      setIsa(isa);
      body(isa);
    }
  } finally {
    setIsa(detected);
  }
}

/** Runs body with n compute threads, then back to the tests' one. */
export function withThreads(n: number, body: () => void): void {
  setNumThreads(n);
  try {
    body();
  } finally {
    setNumThreads(1);
  }
}
