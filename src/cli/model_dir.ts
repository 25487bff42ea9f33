// Which REFRAG checkpoint a command serves when --model is not given: the one owner of the shipped model's
// location (`demo`, `serve` and `generate` all resolve --model here).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../engine/native.js";

/** Overrides the shipped model's folder (tests, or a model kept outside the package). */
export const MODEL_DIR_ENV = "REFRAG_MODEL_DIR";

/** Where the trained model that ships with the package lives: $REFRAG_MODEL_DIR, else assets/model. */
export function shippedModelDir(): string {
  const dir = process.env[MODEL_DIR_ENV];
  return dir !== undefined && dir !== "" ? dir : join(packageRoot(), "assets", "model");
}

/** The checkpoint folder for `--model` (the shipped model when undefined); fails clearly when it holds no
 * config.json, before anything loads. */
export function modelDirOrShipped(model: string | undefined): string {
  const dir = model ?? shippedModelDir();
  if (!existsSync(join(dir, "config.json")))
    throw new Error(
      model === undefined
        ? `no trained model ships in ${dir} yet: train one (README, "Training") and pass --model DIR`
        : `${dir}: no config.json (not a REFRAG checkpoint folder)`,
    );
  return dir;
}
