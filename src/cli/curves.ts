// `refrag eval curves`: a training run's loss curves (training, validation, learning rate) as JSON + SVG.
import { basename } from "node:path";
import type { Command } from "commander";
import { readCurves, writeCurves } from "../eval/curves.js";

export function registerCurvesCommand(ev: Command): void {
  ev.command("curves")
    .description("loss curves of training runs (training, validation, learning rate) as JSON + SVG")
    .requiredOption("--run <dirs...>", "checkpoint folders of training runs (their training_state.json)")
    .option("--out <dir>", "output folder", "docs/training")
    .action(async (o: { run: string[]; out: string }) => {
      for (const dir of o.run) {
        const c = readCurves(dir, basename(dir));
        const last = c.train[c.train.length - 1];
        const v = c.validation[c.validation.length - 1];
        console.log(
          `${c.name}: ${c.stage} step ${c.step}/${c.steps}, training loss ${last?.loss.toFixed(4) ?? "-"}` +
            (v ? `, validation ${v.loss.toFixed(4)} at step ${v.step}` : "") +
            ` -> ${(await writeCurves(c, o.out)).join(", ")}`,
        );
      }
    });
}
