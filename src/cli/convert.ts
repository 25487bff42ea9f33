// `refrag convert gguf`: export a LLaMA checkpoint folder to GGUF so llama.cpp runs the same weights.
import type { Command } from "commander";
import { convertCheckpointDtype } from "../io/convert_dtype.js";
import { exportCheckpointToGguf } from "../io/gguf_llama.js";

export function registerConvertCommands(program: Command): void {
  const convert = program.command("convert").description("convert checkpoints to other formats");
  convert
    .command("gguf <checkpoint> <out>")
    .description(
      "export a LLaMA checkpoint folder (config.json + model.safetensors [+ tokenizer.json]) to GGUF",
    )
    .option("--type <type>", "2-D weight type: f32, f16 or bf16 (norms stay f32)", "f32")
    .option("--name <name>", "general.name written into the file")
    .action(async (checkpoint: string, out: string, o: { type: string; name?: string }) => {
      if (o.type !== "f32" && o.type !== "f16" && o.type !== "bf16")
        throw new Error(`--type must be f32, f16 or bf16, got "${o.type}"`);
      await exportCheckpointToGguf(checkpoint, out, { weightType: o.type, name: o.name });
      console.log(`wrote ${out}`);
    });
  convert
    .command("dtype <checkpoint> <out>")
    .description(
      "re-save a checkpoint folder with its weights as f32, f16 or bf16 (no optimizer or training state)",
    )
    .option("--type <type>", "f32, f16 or bf16", "bf16")
    .action(async (checkpoint: string, out: string, o: { type: string }) => {
      if (o.type !== "f32" && o.type !== "f16" && o.type !== "bf16")
        throw new Error(`--type must be f32, f16 or bf16, got "${o.type}"`);
      const n = await convertCheckpointDtype(checkpoint, out, o.type);
      console.log(`wrote ${out}: ${n} tensors as ${o.type}`);
    });
}
