// A fuzz worker (a child process of runner.ts): sets up one target, runs cases [from, to) in order and
// reports each over IPC when it ends (flushed before the next starts), so the parent knows that the case
// after the last one reported is the one a crash or hang belongs to.
// Usage (by the runner only): node worker.js TARGET SEED FROM TO DIR
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../engine/random.js";
import { setupTarget, TARGETS, type TargetName } from "./targets.js";

export type WorkerMessage =
  | { type: "ready" }
  | { type: "done"; i: number; outcome: string; label: string; detail?: string; rssMb: number }
  | { type: "end" };

/** The seed of case i of a target: independent of which worker runs it. */
export function caseSeed(seed: number, target: TargetName, i: number): number {
  return (
    (Math.imul(seed ^ 0x9e3779b9, 31) +
      Math.imul((TARGETS as readonly string[]).indexOf(target) + 2, 0x85ebca6b) +
      Math.imul(i, 0xc2b2ae35)) >>>
    0
  );
}

async function main(): Promise<void> {
  const [target, seedText, fromText, toText, root] = process.argv.slice(2);
  const send = (m: WorkerMessage) =>
    new Promise<void>((resolve) => {
      if (process.send === undefined) throw new Error("fuzz worker: run by runner.ts only (no IPC channel)");
      process.send(m, undefined, {}, () => resolve());
    });
  const dir = join(root, `w${fromText}`);
  mkdirSync(dir, { recursive: true });
  try {
    const run = await setupTarget(target as TargetName, dir);
    await send({ type: "ready" });
    for (let i = Number(fromText); i < Number(toText); i++) {
      const r = await run(i, new Rng(caseSeed(Number(seedText), target as TargetName, i)));
      const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
      await send({ type: "done", i, ...r, rssMb });
      // Case files are small, but thousands add up.
      for (const f of [`c${i}`, `t${i}.json`]) rmSync(join(dir, f), { recursive: true, force: true });
    }
    await send({ type: "end" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Exit now: open handles (a server, a database) would keep the process alive.
  process.exit(0);
}

await main();
