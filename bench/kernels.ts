// Kernel benchmark: GEMM, GEMV (cache-resident and cold, f32 and bf16) and attention, on 1 and 2 threads,
// each with its fraction of the machine's measured FMA peak. Prints one table, writes bench/results/kernels.json.
//   npm run bench:kernels [-- --threads 1,2]
import { parseArgs } from "node:util";
import { numThreads, setNumThreads } from "../src/engine/native.js";
import { cpuFeatures } from "../src/engine/native.js";
import { run as runAttention } from "./attention.js";
import { printTable, writeJson } from "./common.js";
import { run as runGemm } from "./gemm.js";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "1,2" },
    out: { type: "string", default: "bench/results/kernels.json" },
  },
});
const threads = values.threads.split(",").map(Number);
const before = numThreads();
const gemm = await runGemm(threads);
const attention = await runAttention(threads);
setNumThreads(before);
const rows = [...gemm, ...attention];
printTable(`Kernels (${JSON.stringify(cpuFeatures())})`, rows);
writeJson(values.out, { date: new Date().toISOString(), cpu: cpuFeatures(), rows });
console.log(`\nwrote ${values.out}`);
