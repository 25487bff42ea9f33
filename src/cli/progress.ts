// Progress on stderr: a bar on a terminal, plain lines in a log.
import cliProgress from "cli-progress";
import type { Progress } from "../data/build.js";

export function progressBar(label: string): { update: Progress; stop(): void } {
  if (!process.stderr.isTTY) {
    // Logs get a line per step, or per 5% of a long count.
    let last = -1;
    return {
      update(done, total, what) {
        const pct = Math.floor((20 * done) / Math.max(1, total));
        if (total > 100 && pct === last && done !== total) return;
        last = pct;
        process.stderr.write(`${label} ${done}/${total} ${what}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {what}`, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, what) {
      if (!started) bar.start(total, done, { what });
      started = true;
      bar.update(done, { what });
    },
    stop: () => bar.stop(),
  };
}
