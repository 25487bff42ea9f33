// Latency benchmark: the same as `refrag bench latency` (see src/cli/bench.ts for the options).
//   npm run bench:latency -- --shape wide --contexts 1024,16384 --ks 16
import { Command } from "commander";
import { registerBenchCommands } from "../src/cli/bench.js";

const program = new Command("bench-latency");
registerBenchCommands(program);
await program.parseAsync(["node", "bench-latency", "bench", "latency", ...process.argv.slice(2)]);
