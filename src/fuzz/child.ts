// Running code in a child process, so a crash, a hang or runaway memory is observed instead of suffered:
// the child's exit signal, a timeout and its peak memory are reported to the caller.
import { spawnSync } from "node:child_process";

export interface ChildResult {
  /** Exit code, or null when a signal ended the child. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run an ES module given as source text in a fresh `node`, with one compute thread by default. */
export function runModule(
  source: string,
  opts: { timeoutMs?: number; env?: Record<string, string>; args?: string[] } = {},
): ChildResult {
  const r = spawnSync(process.execPath, [...(opts.args ?? []), "--input-type=module", "-e", source], {
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: "SIGKILL",
    env: { ...process.env, REFRAG_THREADS: "1", ...opts.env },
    maxBuffer: 64 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT";
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "", timedOut };
}

/** A one-line description of how a child ended, for assertion messages. */
export function describeExit(r: ChildResult): string {
  if (r.timedOut) return "timed out";
  if (r.signal !== null) return `killed by ${r.signal}`;
  return `exit ${r.status}${r.stderr.trim() === "" ? "" : `: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`}`;
}
