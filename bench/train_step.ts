// Training-step benchmark: forward + backward + AdamW on a LLaMA-style stack (width 256, 6 layers,
// 1024-token sequences). Reports tokens/s and model-FLOPs utilisation (MFU) against the measured peak.
// `--isa avx2,avx512` times both instruction sets on the same model, alternating steps (medians), so a
// busy neighbour slows both alike.
//   npm run bench:train-step [-- --threads 1,2 --steps 5 --batch 1 --seq 1024 --isa avx2,avx512]
import { parseArgs } from "node:util";
import { crossEntropy } from "../src/engine/ops.js";
import { cpuFeatures, numThreads, setIsa, setNumThreads } from "../src/engine/native.js";
import { peakGflops } from "../src/engine/kernels/gemm.js";
import { Rng } from "../src/engine/random.js";
import { LlamaForCausalLM, llamaConfig, type LlamaConfig } from "../src/models/llama.js";
import { AdamW, clipGradNorm } from "../src/train/optimizer.js";
import { printTable, writeJson, type BenchRow } from "./common.js";

/** Model FLOPs per trained token (PaLM appendix B): 6·N for the matmul weights + 6·L·C·T causal attention. */
export function trainFlopsPerToken(c: LlamaConfig, T: number): number {
  const C = c.hidden_size;
  const D = c.head_dim ?? C / c.num_attention_heads;
  const attn = C * (c.num_attention_heads * D) * 2 + C * (c.num_key_value_heads * D) * 2;
  const mlp = 3 * C * c.intermediate_size;
  const matmulParams = c.num_hidden_layers * (attn + mlp) + c.vocab_size * C;
  return 6 * matmulParams + 6 * c.num_hidden_layers * (c.num_attention_heads * D) * T;
}

type Isa = "avx2" | "avx512";

export function run(
  threadCounts: number[],
  steps: number,
  batch: number,
  seq: number,
  isas: Isa[] = [cpuFeatures().isa],
): BenchRow[] {
  const detected = cpuFeatures().isa;
  const cfg = llamaConfig({
    vocab_size: 8192,
    hidden_size: 256,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    intermediate_size: 688,
    max_position_embeddings: seq,
  });
  const rows: BenchRow[] = [];
  for (const threads of threadCounts) {
    setNumThreads(threads);
    const model = new LlamaForCausalLM(cfg, new Rng(0));
    const opt = new AdamW(model.namedParameters(), { lr: 1e-4 });
    const rng = new Rng(1);
    const ids = Int32Array.from({ length: batch * seq }, () => rng.int(cfg.vocab_size));
    const targets = Int32Array.from({ length: batch * seq }, () => rng.int(cfg.vocab_size));
    const times = new Map<Isa, number[]>(isas.map((i) => [i, []]));
    for (let s = 0; s < steps + 1; s++)
      for (const isa of isas) {
        setIsa(isa);
        const t0 = performance.now();
        const { logits } = model.forward([{ ids }], { batch });
        const loss = crossEntropy(logits, targets);
        opt.zeroGrad();
        loss.backward();
        clipGradNorm(model.parameters(), 1);
        opt.stepAll();
        if (s > 0) times.get(isa)!.push(performance.now() - t0); // the first step warms caches and allocations
      }
    for (const isa of isas) {
      setIsa(isa);
      const sorted = times.get(isa)!.sort((a, b) => a - b);
      const ms = sorted[Math.floor(sorted.length / 2)];
      const tokens = batch * seq;
      const gflops = (trainFlopsPerToken(cfg, seq) * tokens) / (ms * 1e6);
      const peak = peakGflops(threads);
      rows.push({
        name: `train step llama C=256 L=6 T=${seq} B=${batch} (${(model.numParameters() / 1e6).toFixed(1)}M params)${isas.length > 1 ? " " + isa : ""}`,
        threads,
        ms,
        gflops,
        ofPeak: gflops / peak,
        target: threads === 1 ? ">= 40% MFU" : "",
        note: `${((tokens / ms) * 1000).toFixed(0)} tok/s, peak ${peak.toFixed(0)} GFLOP/s (${isa})`,
      });
    }
  }
  setIsa(detected);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      threads: { type: "string", default: "1,2" },
      steps: { type: "string", default: "5" },
      batch: { type: "string", default: "1" },
      seq: { type: "string", default: "1024" },
      isa: { type: "string", default: cpuFeatures().isa },
      out: { type: "string", default: "bench/results/train_step.json" },
    },
  });
  const threads = values.threads.split(",").map(Number);
  const before = numThreads();
  const isas = values.isa.split(",").map((i): Isa => {
    if (i !== "avx2" && i !== "avx512")
      throw new Error(`bench train-step: --isa takes avx2 and/or avx512, got '${i}'`);
    return i;
  });
  const rows = run(threads, Number(values.steps), Number(values.batch), Number(values.seq), isas);
  setNumThreads(before);
  printTable(
    "Training step: forward + backward + AdamW (model FLOPs utilisation vs measured FMA peak)",
    rows,
  );
  writeJson(values.out, { date: new Date().toISOString(), rows });
  console.log(`\nwrote ${values.out}`);
}
