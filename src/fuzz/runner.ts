// The fuzz runner: runs a target's cases in worker processes (worker.ts), one case at a time, and counts
// how each ended. A worker that dies mid-case is a crash, one that takes longer than the timeout is a hang,
// one whose memory passes the bound is over-memory; the next worker resumes at the following case.
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TargetName } from "./targets.js";
import type { WorkerMessage } from "./worker.js";

export const KINDS = [
  "accepted",
  "clear",
  "unclear",
  "crash",
  "hang",
  "overMemory",
  "http500",
  "garbage",
] as const;
export type Kind = (typeof KINDS)[number];
/** The kinds that must never happen (the suite and `npm run fuzz` fail on them). */
export const FAILURES: readonly Kind[] = ["unclear", "crash", "hang", "overMemory", "http500", "garbage"];

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Per case (default 20 s). */
  timeoutMs?: number;
  /** Resident memory bound of a worker process in MiB (default 1024). */
  maxRssMb?: number;
}

export interface FuzzExample {
  kind: Kind;
  case: number;
  label: string;
  detail?: string;
}

export interface FuzzReport {
  target: TargetName;
  cases: number;
  counts: Record<Kind, number>;
  /** The first few cases of every kind other than accepted (three clear ones, ten of each failure). */
  examples: FuzzExample[];
  seconds: number;
  peakRssMb: number;
}

const workerPath = fileURLToPath(new URL("./worker.js", import.meta.url));

/** Resident memory of a process in MiB (0 when it is gone). */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

/** Run cases [0, o.cases) of a target. */
export async function fuzzTarget(target: TargetName, o: FuzzOptions): Promise<FuzzReport> {
  const timeoutMs = o.timeoutMs ?? 20_000;
  const maxRssMb = o.maxRssMb ?? 1024;
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  const examples: FuzzExample[] = [];
  const record = (kind: Kind, i: number, label: string, detail?: string) => {
    counts[kind]++;
    if (kind !== "accepted" && counts[kind] <= (kind === "clear" ? 3 : 10))
      examples.push({ kind, case: i, label, detail });
  };
  const root = mkdtempSync(join(tmpdir(), `refrag-fuzz-${target}-`));
  const t0 = performance.now();
  let peak = 0;

  /** One worker from case `from`; resolves with the first case not yet counted. */
  const runWorker = (from: number) =>
    new Promise<number>((resolve, reject) => {
      const child: ChildProcess = fork(
        workerPath,
        [target, String(o.seed), String(from), String(o.cases), root],
        {
          env: { ...process.env, REFRAG_THREADS: "1" },
          execArgv: [],
          stdio: ["ignore", "ignore", "pipe", "ipc"],
        },
      );
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
      const state = { running: from, ready: false, ended: false, verdict: null as Kind | null };
      let timer: NodeJS.Timeout | null = null;
      const kill = (kind: Kind) => {
        if (state.verdict === null) state.verdict = kind;
        child.kill("SIGKILL");
      };
      const arm = () => {
        if (timer !== null) clearTimeout(timer);
        timer = setTimeout(() => kill("hang"), timeoutMs);
      };
      const poll = setInterval(() => {
        if (child.pid === undefined) return;
        const mb = rssMb(child.pid);
        peak = Math.max(peak, mb);
        if (mb > maxRssMb && state.ready) kill("overMemory");
      }, 50);
      child.on("message", (m: WorkerMessage) => {
        if (m.type === "ready") {
          state.ready = true;
          arm();
        } else if (m.type === "done") {
          peak = Math.max(peak, m.rssMb);
          state.running = m.i + 1;
          if (m.rssMb > maxRssMb) {
            // The process's peak passed the bound during this case: count it, and start a fresh process
            // so the next case's peak is its own.
            record("overMemory", m.i, m.label, `${m.rssMb} MiB`);
            state.verdict = "accepted";
            child.kill("SIGKILL");
            return;
          }
          record(m.outcome as Kind, m.i, m.label, m.detail);
          arm();
        } else if (m.type === "end") state.ended = true;
      });
      child.on("exit", (code, signal) => {
        clearInterval(poll);
        if (timer !== null) clearTimeout(timer);
        const { running, ready, ended, verdict } = state;
        if (!ready && verdict === null)
          return reject(
            new Error(`fuzz ${target}: worker setup failed (${signal ?? code}): ${stderr.trim()}`),
          );
        if (ended || running >= o.cases) return resolve(o.cases);
        if (verdict === "accepted") return resolve(running); // restarted after an over-memory case
        const kind: Kind = verdict ?? "crash";
        const detail =
          kind === "crash" ? `${signal ?? `exit ${code}`}: ${stderr.trim().slice(-300)}` : undefined;
        record(kind, running, `case ${running} of seed ${o.seed}`, detail);
        resolve(running + 1);
      });
    });

  let next = 0;
  try {
    while (next < o.cases) next = await runWorker(next);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  return { target, cases: o.cases, counts, examples, seconds, peakRssMb: Math.round(peak) };
}
