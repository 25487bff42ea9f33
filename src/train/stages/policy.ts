// The RL selection policy (REFRAG §"selective compression"): a small transformer over a context's chunk
// vectors picks which chunks to expand back to raw tokens. Trained GRPO-style: for each context draw G
// selections (sampling without replacement, pointer masking), reward each with the negative log-perplexity
// of the o continuation tokens given that mixed input (read as the perplexity evaluation reads it: <bos>,
// the chunks, the continuation), and use the group-normalised reward as advantage:
//   A_g = (r_g − mean r) / (std r + 1e-6),   loss = −mean_g min(ρ_g A_g, clip(ρ_g, 1 ± ε) A_g)
// with ρ_g = π(selection_g) / π_old(selection_g). Each rollout batch is used for `ppoEpochs` consecutive
// optimizer steps, so the clipping has an old policy to clip against. Encoder, projector and decoder are
// frozen. Our choices (the paper leaves them open): G = 4, ε = 0.2, 2 epochs per rollout, policy width 128.
// Contexts are cut into passages as in the other REFRAG stages (each ends in a short chunk); the number
// of chunks expanded follows the one expansion rule (expandCount), drawn once per context so a group's
// selections are the same size.
import { add, scale, selectionLogProb } from "../../engine/ops.js";
import { Rng } from "../../engine/random.js";
import { noGrad, Tensor } from "../../engine/tensor.js";
import { parseRefragConfig, type RefragPolicyConfig } from "../../io/config.js";
import { RefragModel } from "../../models/refrag.js";
import { continuationNll } from "../../eval/perplexity.js";
import { lmSegments } from "../../infer/prompt.js";
import { policyConfig } from "../../models/policy.js";
import { expandCount, maxExpandCount, sampleWithoutReplacement } from "../../infer/selection.js";
import { ioOptions, trainLoop, type LoopConfig, type TrainingState, type StageIO } from "../loop.js";
import { DEFAULT_CONTINUATION, DEFAULT_MAX_CHUNKS, sampleBatch } from "./refrag.js";

export interface PolicyStageConfig extends LoopConfig {
  /** Chunks per context (s ≤ contextChunks · k); default 128, the evaluated length at k = 16. */
  contextChunks?: number;
  /** Continuation tokens whose perplexity is the reward (default 256). */
  continuation?: number;
  /** Fraction of chunks expanded per selection. */
  expandFraction: number;
  /** Contexts per rollout batch. */
  contexts: number;
  group?: number;
  clip?: number;
  ppoEpochs?: number;
}

/** A copy of `model` with a (new, randomly initialised) selection policy attached. */
export function withPolicy(
  model: RefragModel,
  policy: RefragPolicyConfig = policyConfig(model.config.encoder.hidden_size),
  seed = 0,
): RefragModel {
  const config = parseRefragConfig({ ...model.config, policy });
  const out = new RefragModel(config, new Rng(seed));
  const tensors = new Map([...model.namedParameters()].map(([n, p]) => [n, p.data]));
  out.loadStateDict(tensors, false);
  return out;
}

interface Rollout {
  vectors: Tensor; // [n, Ce] encoder chunk vectors (policy input)
  picks: number[][]; // G selections
  oldLogProb: number[];
  advantage: number[];
  meanReward: number;
}

/** What a reward sees: one context, one selection. */
export interface RewardInput {
  chunks: Int32Array[];
  projected: Tensor;
  expand: boolean[];
  continuation: Int32Array;
}

/** The default reward: minus the log-perplexity of the continuation after <bos> and the mixed input. */
export function continuationReward(model: RefragModel, x: RewardInput): number {
  return -continuationNll(
    model,
    lmSegments(model, { chunks: x.chunks, projected: x.projected, expand: x.expand }),
    x.continuation,
  );
}

export async function trainPolicy(
  model: RefragModel,
  stream: Uint16Array,
  c: PolicyStageConfig,
  io: StageIO,
  rewardFn: (x: RewardInput) => number = (x) => continuationReward(model, x),
): Promise<TrainingState & { rewards: number[] }> {
  if (model.policy === null) throw new Error("policy stage: the model has no policy (use withPolicy)");
  const policy = model.policy;
  const k = model.chunkSize;
  const G = c.group ?? 4;
  const eps = c.clip ?? 0.2;
  const epochs = c.ppoEpochs ?? 2;
  const n = c.contextChunks ?? DEFAULT_MAX_CHUNKS;
  const o = c.continuation ?? DEFAULT_CONTINUATION;
  if (!(c.expandFraction >= 0 && c.expandFraction <= 1))
    throw new Error(`policy stage: expandFraction must be in [0, 1], got ${c.expandFraction}`);
  const limit = model.config.decoder.max_position_embeddings;
  const positions = 1 + n + maxExpandCount(n, c.expandFraction) * (k - 1) + o - 1;
  if (positions > limit)
    throw new Error(
      `policy stage: rewards read up to ${positions} positions (<bos>, ${n} chunks, ${o} continuation tokens), beyond the decoder's max_position_embeddings ${limit}; lower --chunks or --continuation`,
    );
  if (G < 2) throw new Error("policy stage: group must be at least 2 (the baseline is the group mean)");
  if ((c.saveEvery ?? 100) % epochs !== 0)
    throw new Error(
      `policy stage: saveEvery must be a multiple of ppoEpochs (${epochs}) so a resume starts a fresh rollout`,
    );
  const rewards: number[] = [];
  let cache: { block: number; rollouts: Rollout[] } | null = null;

  const collect = (block: number): Rollout[] => {
    const rng = new Rng((c.seed ?? 0) * 7_919 + block);
    const out: Rollout[] = [];
    for (let i = 0; i < c.contexts; i++) {
      const sample = sampleBatch(
        stream,
        { stage: "cpt", n, k, B: 1, continuation: o, expandFraction: 0 },
        rng,
      );
      const chunks = sample.chunks[0];
      const continuation = sample.predicted[0];
      const e = expandCount(n, c.expandFraction, rng);
      const vectors = noGrad(() => model.encodeChunks(chunks));
      const projected = noGrad(() => model.project(vectors));
      const logits = noGrad(() => policy.forward(vectors)).data;
      const picks: number[][] = [];
      const oldLogProb: number[] = [];
      const r: number[] = [];
      for (let g = 0; g < G; g++) {
        const { picks: p, logProb } = sampleWithoutReplacement(logits, e, rng);
        const mask = new Array<boolean>(n).fill(false);
        for (const j of p) mask[j] = true;
        picks.push(p);
        oldLogProb.push(logProb);
        r.push(rewardFn({ chunks, projected, expand: mask, continuation }));
      }
      const mean = r.reduce((a, b) => a + b, 0) / G;
      const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / G);
      out.push({
        vectors,
        picks,
        oldLogProb,
        advantage: r.map((x) => (x - mean) / (std + 1e-6)),
        meanReward: mean,
      });
    }
    return out;
  };

  const state = await trainLoop({
    stage: "policy",
    model,
    trainable: (name) => name.startsWith("policy."),
    config: c,
    modelConfig: model.config,
    ...ioOptions(io),
    loss: (step) => {
      const block = Math.floor(step / epochs);
      if (cache === null || cache.block !== block) {
        cache = { block, rollouts: collect(block) };
        rewards.push(cache.rollouts.reduce((a, r) => a + r.meanReward, 0) / cache.rollouts.length);
      }
      // Surrogate whose gradient is the clipped PPO objective's: Σ coef_g · log π(selection_g), where
      // coef_g = −ρ_g A_g / N when the unclipped term is the active minimum, else 0.
      const terms: Tensor[] = [];
      const N = cache.rollouts.length * G;
      for (const ro of cache.rollouts) {
        const logits = policy.forward(ro.vectors);
        ro.picks.forEach((picks, g) => {
          const lp = selectionLogProb(logits, picks);
          const ratio = Math.exp(lp.item() - ro.oldLogProb[g]);
          const A = ro.advantage[g];
          const clipped = Math.min(Math.max(ratio, 1 - eps), 1 + eps);
          const active = ratio * A <= clipped * A;
          terms.push(scale(lp, active ? (-ratio * A) / N : 0));
        });
      }
      return terms.reduce((a, b) => add(a, b));
    },
  });
  return { ...state, rewards };
}
