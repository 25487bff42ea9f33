// Loads the C++ addon built by `npm install` (node-gyp). Kernel families declare the functions they use
// (see kernels/*.ts); this file only finds the binary and owns the process-wide controls.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface CpuFeatures {
  avx2: boolean;
  avx512: boolean;
  avx512bf16: boolean;
  isa: "avx512" | "avx2";
}

interface AddonControls {
  setNumThreads(n: number): void;
  numThreads(): number;
  cpuFeatures(): CpuFeatures;
  setIsa(isa: "avx512" | "avx2"): void;
}

/** The package root: the nearest folder above this file holding package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error("refrag: cannot find package.json above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

let addon: Record<string, unknown> | null | undefined;
let loadError = "";

/** The raw addon exports, or null when the binary is missing (then kernels fall back to TypeScript). */
export function loadAddon(): Record<string, unknown> | null {
  if (addon !== undefined) return addon;
  const root = packageRoot();
  const candidates = [
    join(root, "build", "Release", "refrag.node"),
    join(root, "build", "Debug", "refrag.node"),
  ];
  const path = candidates.find((p) => existsSync(p));
  if (process.env.REFRAG_BACKEND === "ref" || path === undefined) {
    loadError =
      path === undefined ? `no native addon at ${candidates[0]} (run \`npm run build:native\`)` : "";
    addon = null;
    return addon;
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as Record<string, unknown>;
  return addon;
}

/** The addon, or a clear error saying how to build it. */
export function requireAddon(): Record<string, unknown> {
  const a = loadAddon();
  if (a === null)
    throw new Error("refrag: native kernels unavailable: " + (loadError || "REFRAG_BACKEND=ref"));
  return a;
}

function controls(): AddonControls {
  return requireAddon() as unknown as AddonControls;
}

/** Number of compute threads used by native kernels (default: REFRAG_THREADS or the core count). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNumThreads: expected a positive integer, got ${n}`);
  controls().setNumThreads(n);
}
export function numThreads(): number {
  return loadAddon() === null ? 1 : controls().numThreads();
}
export function cpuFeatures(): CpuFeatures {
  return controls().cpuFeatures();
}
/** Force the instruction set used by native kernels (tests run both paths). */
export function setIsa(isa: "avx512" | "avx2"): void {
  controls().setIsa(isa);
}
